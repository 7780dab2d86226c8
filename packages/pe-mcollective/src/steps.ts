import type { Host } from '@pe-stack/pe-host';
import type { Layout } from '@pe-stack/pe-config-files';
import type { MasterRef } from './brokers.js';
import { McoError } from './errors.js';

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

/** A step's verdict: done (nothing to do) or to do, and why. */
export interface StepState {
  done: boolean;
  why: string;
}

/**
 * What a step may be given when it runs: a way to get the host to act on by
 * name. pe-cluster's engine passes its StepContext (whose hostFor returns
 * the audited or DryRunHost-wrapped host); without one, the masters' own
 * hosts are used.
 */
export interface StepHosts {
  hostFor?(name: string): Host;
  /**
   * Whether the hosts are DryRunHosts (pe-cluster's StepContext has it).
   * Only an explicit `false` lets a step skip reads that exist to mask a
   * plan (the target's old secrets before a copy).
   */
  readonly dryRun?: boolean;
}

/**
 * A unit of work with a check, so a rerun skips what is done and a dry run
 * shows what is not. Structurally a pe-cluster engine Step.
 */
export interface McoStep {
  id: string;
  /** The host the step changes. */
  host: string;
  title: string;
  check(ctx?: StepHosts): Promise<StepState>;
  apply(ctx?: StepHosts): Promise<void>;
}

/** A master with its host replaced by the one the context gives for its name. */
export function bindMaster<M extends Master>(m: M, ctx?: StepHosts): M {
  return ctx?.hostFor ? { ...m, host: ctx.hostFor(m.host.name) } : m;
}

/** The cluster with every host replaced by the context's. */
export function bindCluster(c: McoCluster, ctx?: StepHosts): McoCluster {
  return ctx?.hostFor
    ? { ...c, primary: bindMaster(c.primary, ctx), secondaries: c.secondaries.map((s) => bindMaster(s, ctx)) }
    : c;
}

export interface StepOutcome {
  id: string;
  host: string;
  title: string;
  status: 'already-done' | 'applied' | 'planned';
  why?: string;
  ms: number;
}

/**
 * Run steps in order: check, apply when not done, check again (a step whose
 * check still fails after apply is an error). With `dryRun` (hosts wrapped in
 * DryRunHost) the second check is skipped and the step is reported planned.
 */
export async function runSteps(
  steps: readonly McoStep[],
  opts: { dryRun?: boolean; hosts?: StepHosts; log?: (o: StepOutcome) => void } = {},
): Promise<StepOutcome[]> {
  const out: StepOutcome[] = [];
  const hosts: StepHosts = {
    ...(opts.hosts?.hostFor ? { hostFor: opts.hosts.hostFor.bind(opts.hosts) } : {}),
    dryRun: opts.hosts?.dryRun ?? Boolean(opts.dryRun),
  };
  for (const s of steps) {
    const t0 = performance.now();
    const before = await s.check(hosts);
    let o: StepOutcome;
    if (before.done) o = { id: s.id, host: s.host, title: s.title, status: 'already-done', why: before.why, ms: 0 };
    else {
      await s.apply(hosts);
      if (!opts.dryRun) {
        const after = await s.check(hosts);
        if (!after.done)
          throw new McoError(
            'E_MCO_STEP',
            `step ${s.id} (${s.title}) is still not done after applying it: ${after.why}`,
            { host: s.host, step: s.id },
          );
      }
      o = {
        id: s.id,
        host: s.host,
        title: s.title,
        status: opts.dryRun ? 'planned' : 'applied',
        why: before.why,
        ms: 0,
      };
    }
    o.ms = performance.now() - t0;
    opts.log?.(o);
    out.push(o);
  }
  return out;
}
