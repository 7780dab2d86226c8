import type { Host, Mutation, Redactor } from '@pe-stack/pe-host';
import type { FileHint } from './file-cache.js';

export type { FileHint } from './file-cache.js';

/** A step's own verdict: done (nothing to do) or to do, and why, in words an operator reads. */
export interface CheckResult {
  done: boolean;
  why: string;
}

/** What a step sees while it runs. */
export interface StepContext {
  /** The step's host: under --dry-run a DryRunHost, otherwise the real host with every mutation audited. */
  readonly host: Host;
  /** Any other host of the run by name, wrapped the same way (e.g. the primary, to sign a certificate). */
  hostFor(name: string): Host;
  readonly runId: string;
  readonly flow: string;
  readonly dryRun: boolean;
  readonly redactor: Redactor;
  /** Aborted on SIGINT: long waits inside a step may stop early; the engine starts no new step. */
  readonly signal: AbortSignal;
  /** The step finished (done or skipped) in an earlier attempt of this run (--resume). For steps whose effect cannot be observed (restarts). */
  readonly completedEarlier: boolean;
  /** Whether any step of this run (this attempt or, when resuming, an earlier one) changed something on `host`: restarts and validations key on it. */
  changedInRun(host: string): boolean;
  /** Shared by the steps of one run (values read once, e.g. the primary's database credentials). Never journaled. */
  readonly state: Map<string, unknown>;
}

export interface Step {
  /** Stable name within the flow, e.g. `secondary.disable-ca`; with the host it is the journal key. */
  id: string;
  /** The host the step acts on (shown in the plan; `ctx.host`). */
  host: string;
  title: string;
  check(ctx: StepContext): Promise<CheckResult>;
  apply(ctx: StepContext): Promise<void>;
  /** Re-run check after apply and fail with E_VERIFY if it still says "to do" (default true). */
  verify?: boolean;
}

/** Steps that run across hosts in parallel: each lane is an ordered list (usually one host's steps), lanes run at once up to --concurrency. */
export interface StepGroup {
  group: string;
  lanes: Step[][];
}

export type FlowItem = Step | StepGroup;

export interface Flow {
  name: string;
  items: FlowItem[];
  /**
   * Keep what the run reads of files on each host (engine FileCache): a
   * step's check, apply and re-check, and the next steps, read a file once;
   * `hints` names the files a host's steps will read, fetched together in
   * one command on the first miss (on hosts that can, e.g. SshHost).
   * Off unless a flow asks: a flow that waits for a file another program
   * writes must not use it.
   */
  fileCache?: { hints?: (host: string) => readonly FileHint[] };
}

export function isGroup(item: FlowItem): item is StepGroup {
  return 'lanes' in item;
}

export function flowSteps(flow: Flow): Step[] {
  return flow.items.flatMap((i) => (isGroup(i) ? i.lanes.flat() : [i]));
}

export function stepKey(s: Pick<Step, 'id' | 'host'>): string {
  return `${s.id}@${s.host}`;
}

/** An error as events, journals and results carry it: secrets masked. */
export interface ErrorInfo {
  code: string;
  message: string;
  host?: string | undefined;
  step?: string | undefined;
}

interface EventBase {
  /** ISO timestamp */
  t: string;
  runId: string;
}

interface StepRef {
  key: string;
  id: string;
  host: string;
  title: string;
}

export type FlowEvent =
  | (EventBase & {
      type: 'flow-start';
      flow: string;
      dryRun: boolean;
      resume: boolean;
      resumedFrom?: string | undefined;
      journal?: string | undefined;
      steps: (StepRef & { group?: string | undefined })[];
    })
  | (EventBase & StepRef & { type: 'step-start' })
  | (EventBase & StepRef & { type: 'step-check'; done: boolean; why: string })
  | (EventBase & StepRef & { type: 'step-done'; ms: number; changes: number })
  /** A dry run's step that would be applied: `changes` is what it would change. */
  | (EventBase & StepRef & { type: 'step-planned'; ms: number; changes: number })
  | (EventBase & StepRef & { type: 'step-skip'; why: string })
  | (EventBase & StepRef & { type: 'step-fail'; ms: number; error: ErrorInfo })
  | (EventBase & { type: 'flow-end'; flow: string; status: RunStatus; ms: number; counts: Record<StepStatus, number> });

export type FlowEventType = FlowEvent['type'];

export type RunStatus = 'ok' | 'failed' | 'interrupted';
/** done: applied now; skipped: its check said done; planned: a dry run would apply it; not-run: never started. */
export type StepStatus = 'done' | 'skipped' | 'planned' | 'failed' | 'not-run';

export interface StepOutcome {
  key: string;
  id: string;
  host: string;
  title: string;
  status: StepStatus;
  why?: string | undefined;
  ms?: number | undefined;
  /** Mutations (masked): under --dry-run what would change; otherwise what changed. */
  mutations: Mutation[];
  error?: ErrorInfo | undefined;
}

/** The final object of a run (also the last NDJSON line under --json, as `{type: "result", ...}`). */
export interface RunResult {
  type: 'result';
  runId: string;
  flow: string;
  status: RunStatus;
  dryRun: boolean;
  ms: number;
  journal?: string | undefined;
  auditLog?: string | undefined;
  resumedFrom?: string | undefined;
  steps: StepOutcome[];
  error?: ErrorInfo | undefined;
}
