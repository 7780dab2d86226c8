import {
  DryRunHost,
  PeError,
  type ExecOptions,
  type ExecResult,
  type Host,
  type Mutation,
  type RemoveOptions,
  type StreamingExec,
  type WriteOptions,
  type WriteResult,
} from '@pe-stack/pe-host';
import type { CheckResult, Step, StepContext } from './types.js';

function summary(m: Mutation): string {
  switch (m.kind) {
    case 'exec':
      return `run ${m.argv.slice(0, 3).join(' ')}${m.argv.length > 3 ? ' …' : ''}`;
    case 'write':
      return `${m.created ? 'create' : 'change'} ${m.path}`;
    case 'remove':
      return `remove ${m.path}`;
    case 'mkdir':
      return `create ${m.path}/`;
  }
}

/** Hosts for an ensure function: the step's own host, and any other by name. */
export interface EnsureHosts {
  host: Host;
  hostFor(name: string): Host;
}

/** Thrown into a probed function at its first planned change: the verdict ("to do") is known. */
class ProbeDone extends Error {}

/** A DryRunHost that ends a probe once something would change: what follows would cost round trips for a known verdict. */
class StoppingDryRunHost extends DryRunHost {
  private stopIfChanged<T>(r: T): T {
    if (this.mutations.length > 0) throw new ProbeDone('a change is planned');
    return r;
  }
  override async exec(argv: readonly string[], opts?: ExecOptions): Promise<ExecResult> {
    return this.stopIfChanged(await super.exec(argv, opts));
  }
  override async spawn(
    argv: readonly string[],
    opts?: Omit<ExecOptions, 'stdin' | 'allowFailure'>,
  ): Promise<StreamingExec> {
    return this.stopIfChanged(await super.spawn(argv, opts));
  }
  override async writeFile(path: string, data: string | Buffer, opts?: WriteOptions): Promise<WriteResult> {
    return this.stopIfChanged(await super.writeFile(path, data, opts));
  }
  override async remove(path: string, opts?: RemoveOptions): Promise<boolean> {
    return this.stopIfChanged(await super.remove(path, opts));
  }
  override async mkdir(path: string): Promise<void> {
    this.stopIfChanged(await super.mkdir(path));
  }
}

export interface ProbeOptions {
  /**
   * End the probe at the first planned change (its reason names only that
   * one; a plan, run through the step's apply, still lists every change):
   * what would follow costs round trips for a verdict already known.
   */
  stopAtFirstChange?: boolean;
}

/**
 * Check an idempotent "ensure" function (the concern packages' operations:
 * applyEdits, grantAccess, writeCredentials, reinitPuppetdbSsl, ...) without
 * changing anything: run it against DryRunHosts and look at what it would
 * do. No mutation: done. Mutations: to do, and they are the reason. An
 * error before any mutation is a real problem and is thrown; an error after
 * one is a consequence of the planned (not made) change and means "to do".
 */
export async function probe(
  ctx: StepContext,
  fn: (h: EnsureHosts) => Promise<unknown>,
  opts: ProbeOptions = {},
): Promise<CheckResult> {
  const dry = new Map<string, DryRunHost>();
  const wrap = (h: Host): DryRunHost => {
    let d = dry.get(h.name);
    if (!d) dry.set(h.name, (d = opts.stopAtFirstChange ? new StoppingDryRunHost(h) : new DryRunHost(h)));
    return d;
  };
  const all = () => [...dry.values()].flatMap((d) => d.mutations);
  try {
    await fn({ host: wrap(ctx.host), hostFor: (n) => wrap(ctx.hostFor(n)) });
  } catch (e) {
    if (all().length === 0) throw e;
  }
  const muts = all();
  if (muts.length === 0) return { done: true, why: 'already so' };
  const parts = [...new Set(muts.map(summary))];
  return {
    done: false,
    why: `would ${parts.slice(0, 4).join('; ')}${parts.length > 4 ? `; and ${parts.length - 4} more` : ''}`,
  };
}

/** A step made from an idempotent ensure function: check = probe, apply = the function for real. */
export function ensureStep(
  id: string,
  host: string,
  title: string,
  fn: (h: EnsureHosts, ctx: StepContext) => Promise<unknown>,
  opts: { verify?: boolean } & ProbeOptions = {},
): Step {
  return {
    id,
    host,
    title,
    check: (ctx) => probe(ctx, (h) => fn(h, ctx), { stopAtFirstChange: opts.stopAtFirstChange ?? false }),
    apply: async (ctx) => {
      try {
        await fn({ host: ctx.host, hostFor: ctx.hostFor }, ctx);
      } catch (e) {
        // in a plan, a later read may depend on a change that was only recorded: the plan of this step ends there
        if (ctx.dryRun && e instanceof PeError) return;
        throw e;
      }
    },
    ...(opts.verify === false ? { verify: false } : {}),
  };
}
