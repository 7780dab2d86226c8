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

export type StepState = { done: true; why?: string } | { done: false; why: string };

/** A unit of work with a check, so a rerun skips what is done and a dry run shows what is not. */
export interface McoStep {
  id: string;
  /** The host the step changes. */
  host: string;
  title: string;
  check(): Promise<StepState>;
  apply(): Promise<void>;
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
export async function runSteps(steps: readonly McoStep[], opts: { dryRun?: boolean; log?: (o: StepOutcome) => void } = {}): Promise<StepOutcome[]> {
  const out: StepOutcome[] = [];
  for (const s of steps) {
    const t0 = performance.now();
    const before = await s.check();
    let o: StepOutcome;
    if (before.done) o = { id: s.id, host: s.host, title: s.title, status: 'already-done', ms: 0 };
    else {
      await s.apply();
      if (!opts.dryRun) {
        const after = await s.check();
        if (!after.done) throw new McoError('E_MCO_STEP', `step ${s.id} (${s.title}) is still not done after applying it: ${after.why}`, { host: s.host, step: s.id });
      }
      o = { id: s.id, host: s.host, title: s.title, status: opts.dryRun ? 'planned' : 'applied', why: before.why, ms: 0 };
    }
    o.ms = performance.now() - t0;
    opts.log?.(o);
    out.push(o);
  }
  return out;
}
