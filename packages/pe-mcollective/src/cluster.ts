import type { Host } from '@pe-stack/pe-host';
import type { Layout } from '@pe-stack/pe-config-files';
import type { StepContext } from '@pe-stack/pe-steps';
import type { MasterRef } from './brokers.js';

/** A master: its names, how to reach it, and its layout (inventory overrides included). */
export interface Master extends MasterRef {
  host: Host;
  layout: Layout;
}

/** The primary (CA, PostgreSQL, console) and the secondaries. */
export interface McoCluster {
  primary: Master;
  secondaries: Master[];
  /** Run commands and file access as root through sudo (default true; tests on temp dirs pass false). */
  sudo?: boolean;
}

export function allMasters(c: McoCluster): Master[] {
  return [c.primary, ...c.secondaries];
}

/** How a running step reaches a host by name (the engine's audited or DryRunHost-wrapped host). */
export type StepHosts = Pick<StepContext, 'hostFor'>;

/** A master with its host replaced by the one the step context gives for its name. */
export function bindMaster<M extends Master>(m: M, ctx: StepHosts): M {
  return { ...m, host: ctx.hostFor(m.host.name) };
}

/** The cluster with every host replaced by the step context's. */
export function bindCluster(c: McoCluster, ctx: StepHosts): McoCluster {
  return { ...c, primary: bindMaster(c.primary, ctx), secondaries: c.secondaries.map((s) => bindMaster(s, ctx)) };
}
