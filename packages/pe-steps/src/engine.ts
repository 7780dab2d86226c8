import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DryRunHost, PeError, Redactor, Semaphore, type Host, type Mutation } from '@pe-stack/pe-host';
import { StepsError, StepVerifyError } from './errors.js';
import { findResumable, Journal, newRunId, type JournalSummary } from './journal.js';
import { FileCache } from './file-cache.js';
import { RecordingHost, type Recorded } from './recording-host.js';
import {
  flowSteps,
  isGroup,
  stepKey,
  type CheckResult,
  type ErrorInfo,
  type Flow,
  type FlowEvent,
  type RunResult,
  type RunStatus,
  type Step,
  type StepContext,
  type StepGroup,
  type StepOutcome,
  type StepStatus,
} from './types.js';

export interface RunOptions {
  /** The real host for a name (the caller owns and closes it). */
  host: (name: string) => Host;
  /** Record and print the plan; change nothing (every host wrapped in a DryRunHost). */
  dryRun?: boolean;
  /** Continue the newest unfinished run of this flow on the same target (its journal); start a new one if there is none. */
  resume?: boolean;
  /** Lanes of a group at once (default 4). */
  concurrency?: number;
  /** Where journals go; no journal when undefined. Dry runs write none. */
  journalDir?: string | undefined;
  /** Append-only audit log of every mutation (JSON lines); none when undefined. Dry runs write none. */
  auditLog?: string | undefined;
  /** Identifies what the run acts on (e.g. the joined hosts), so --resume picks the right journal. */
  target?: string;
  signal?: AbortSignal;
  onEvent?: (e: FlowEvent) => void;
  /** Shared across hosts; masks secrets in events, journal, audit log and errors. */
  redactor?: Redactor;
  now?: () => Date;
}

function errorInfo(e: unknown, redactor: Redactor, step: Step): ErrorInfo {
  if (e instanceof PeError) {
    return {
      code: String(e.code),
      message: redactor.redact(e.message),
      host: e.host ?? step.host,
      step: e.step ?? step.id,
    };
  }
  const msg = e instanceof Error ? e.message : String(e);
  return { code: 'E_INTERNAL', message: redactor.redact(msg), host: step.host, step: step.id };
}

/** What a run reads once from its options. */
interface RunSettings {
  readonly now: () => Date;
  readonly redactor: Redactor;
  readonly dryRun: boolean;
  readonly signal: AbortSignal;
  readonly target: string;
}

/** Where the run's journal starts: a new run, or the continuation of the newest unfinished one. */
interface JournalStart {
  readonly runId: string;
  readonly journal: Journal | undefined;
  /** Steps that finished in an earlier attempt of a resumed run. */
  readonly completedEarlier: Set<string>;
  /** Hosts on which the run (any attempt) changed something. */
  readonly touched: Set<string>;
  readonly resumedFrom: string | undefined;
}

type AuditWriter = (step: Step, m: Recorded) => void;

/** One run in progress: what all of its steps share. */
interface Run extends RunSettings, JournalStart {
  readonly flow: Flow;
  readonly opts: RunOptions;
  readonly audit: AuditWriter | undefined;
  /** The host a step's RecordingHost wraps. */
  readonly baseHost: (name: string) => Host;
  readonly claimed: WeakSet<Mutation>;
  readonly state: Map<string, unknown>;
  readonly outcomes: Map<string, StepOutcome>;
  /** Keys of the steps running now (recorded when the run is interrupted). */
  readonly running: Set<string>;
  /** The first failure; no item after the current one starts once set. */
  failed: ErrorInfo | undefined;
  /** Steps a dry run found to do so far. */
  planned: number;
}

/** One step being run: its outcome (filled in as it goes) and when it started. */
interface StepAttempt {
  readonly step: Step;
  readonly key: string;
  readonly out: StepOutcome;
  readonly started: number;
}

/**
 * Run a flow: for each step, `check`; when done, skip; otherwise `apply`
 * and check again (E_VERIFY if still not done). Groups run their lanes in
 * parallel under `concurrency`. Every step is journaled and every mutation
 * audited; under `dryRun` hosts are DryRunHosts and the result's steps carry
 * the planned mutations (masked commands, unified diffs).
 *
 * A failure stops its lane; the other lanes of the group go on (hosts are
 * independent: one bad secondary does not leave the others half done), and
 * no item after the group starts. After an abort (SIGINT) no new step starts.
 */
export async function runFlow(flow: Flow, opts: RunOptions): Promise<RunResult> {
  const startedAt = Date.now();
  const settings = runSettings(opts);
  const steps = flowSteps(flow);
  const keys = distinctStepKeys(flow.name, steps);
  const journalStart = await openJournal({ flow, keys, settings, journalDir: opts.journalDir, resume: opts.resume });
  const run = startRun({ flow, steps, opts, settings, journalStart });
  announceStart(run);
  await runItems(run);
  return finishRun(run, startedAt);
}

function runSettings(opts: RunOptions): RunSettings {
  return {
    now: opts.now ?? (() => new Date()),
    redactor: opts.redactor ?? new Redactor(),
    dryRun: Boolean(opts.dryRun),
    signal: opts.signal ?? new AbortController().signal,
    target: opts.target ?? '',
  };
}

/** The keys of a flow's steps, in order; a key twice is a bug in the flow. */
function distinctStepKeys(flowName: string, steps: Step[]): string[] {
  const keys = new Set<string>();
  for (const s of steps) {
    const k = stepKey(s);
    if (keys.has(k)) throw new StepsError('E_INTERNAL', `flow ${flowName} has the step ${k} twice.`);
    keys.add(k);
  }
  return [...keys];
}

/** Open the journal: continue the newest unfinished run under `resume`, else start a new one. Dry runs write none. */
async function openJournal(args: {
  flow: Flow;
  keys: string[];
  settings: RunSettings;
  journalDir: string | undefined;
  resume: boolean | undefined;
}): Promise<JournalStart> {
  const { flow, keys, settings, journalDir } = args;
  const { now, redactor } = settings;
  const runId = newRunId(now());
  const noJournal = { runId, journal: undefined, completedEarlier: new Set<string>(), touched: new Set<string>() };
  if (settings.dryRun || !journalDir) return { ...noJournal, resumedFrom: undefined };
  const prev = args.resume ? await findResumable(journalDir, flow.name, settings.target) : undefined;
  if (prev) return continueJournal(prev, settings);
  const journal = Journal.create(journalDir, flow.name, runId, redactor);
  const t = now().toISOString();
  journal.write({
    type: 'run-start',
    t,
    runId,
    flow: flow.name,
    target: settings.target,
    steps: keys,
    pid: process.pid,
  });
  return { ...noJournal, journal, resumedFrom: undefined };
}

function continueJournal(prev: JournalSummary, settings: RunSettings): JournalStart {
  const journal = new Journal(prev.path, settings.redactor);
  journal.write({ type: 'resume', t: settings.now().toISOString(), runId: prev.runId, pid: process.pid });
  return {
    runId: prev.runId,
    journal,
    completedEarlier: prev.completed,
    touched: new Set(prev.touched),
    resumedFrom: prev.stoppedAt ?? '(start)',
  };
}

function startRun(args: {
  flow: Flow;
  steps: Step[];
  opts: RunOptions;
  settings: RunSettings;
  journalStart: JournalStart;
}): Run {
  const { flow, opts, settings, journalStart } = args;
  const audit = auditWriter({ file: opts.auditLog, flow, settings, runId: journalStart.runId });
  const baseHost = baseHosts({ flow, host: opts.host, dryRun: settings.dryRun });
  const outcomes = new Map<string, StepOutcome>();
  for (const s of args.steps) outcomes.set(stepKey(s), { ...stepRef(s), status: 'not-run', mutations: [] });
  return {
    ...settings,
    ...journalStart,
    flow,
    opts,
    audit,
    baseHost,
    claimed: new WeakSet<Mutation>(),
    state: new Map<string, unknown>(),
    outcomes,
    running: new Set<string>(),
    failed: undefined,
    planned: 0,
  };
}

/** Appends every mutation to the audit log (JSON lines, masked); none for a dry run or without a file. */
function auditWriter(args: {
  file: string | undefined;
  flow: Flow;
  settings: RunSettings;
  runId: string;
}): AuditWriter | undefined {
  const { file, flow, settings, runId } = args;
  if (settings.dryRun || !file) return undefined;
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  return (step, m) => {
    const rec = { t: settings.now().toISOString(), runId, flow: flow.name, step: step.id, ...m };
    appendFileSync(file, `${settings.redactor.redactJson(rec)}\n`, { mode: 0o600 });
  };
}

/**
 * The host under each step's RecordingHost: the real host (through the flow's FileCache when it has hints);
 * in a dry run one DryRunHost per real host, so planned writes are seen by later checks.
 */
function baseHosts(args: { flow: Flow; host: (name: string) => Host; dryRun: boolean }): (name: string) => Host {
  const { flow, host, dryRun } = args;
  const dryHosts = new Map<string, DryRunHost>();
  const fileCache = flow.fileCache ? new FileCache(flow.fileCache.hints) : undefined;
  const cached = new Map<string, Host>();
  const realFor = (name: string): Host => {
    if (!fileCache) return host(name);
    let c = cached.get(name);
    if (!c) cached.set(name, (c = fileCache.wrap(host(name))));
    return c;
  };
  return (name) => {
    const real = realFor(name);
    if (!dryRun) return real;
    let d = dryHosts.get(name);
    if (!d) dryHosts.set(name, (d = new DryRunHost(real)));
    return d;
  };
}

function emit(run: Run, e: FlowEvent): void {
  try {
    run.opts.onEvent?.(e);
  } catch {
    // a broken listener must not break the run
  }
}

function stepRef(s: Step): { key: string; id: string; host: string; title: string } {
  return { key: stepKey(s), id: s.id, host: s.host, title: s.title };
}

function stamp(run: Run): { t: string; runId: string } {
  return { t: run.now().toISOString(), runId: run.runId };
}

function announceStart(run: Run): void {
  const { flow } = run;
  emit(run, {
    type: 'flow-start',
    ...stamp(run),
    flow: flow.name,
    dryRun: run.dryRun,
    resume: Boolean(run.opts.resume),
    resumedFrom: run.resumedFrom,
    journal: run.journal?.path,
    steps: flow.items.flatMap((i) =>
      isGroup(i) ? i.lanes.flat().map((s) => ({ ...stepRef(s), group: i.group })) : [stepRef(i)],
    ),
  });
}

/** The flow's items in order; none starts after a failure or an abort. */
async function runItems(run: Run): Promise<void> {
  const lanesAtOnce = new Semaphore(Math.max(1, run.opts.concurrency ?? 4));
  for (const item of run.flow.items) {
    if (run.failed || run.signal.aborted) break;
    if (isGroup(item)) await runGroup(run, item, lanesAtOnce);
    else await runStep(run, item);
  }
}

/** A group's lanes at once, as many as the semaphore lets through. */
async function runGroup(run: Run, group: StepGroup, lanesAtOnce: Semaphore): Promise<void> {
  await Promise.all(group.lanes.map((lane) => lanesAtOnce.run(() => runLane(run, lane))));
}

/** A lane's steps in order; a failure stops the lane. */
async function runLane(run: Run, lane: Step[]): Promise<void> {
  for (const s of lane) if (!(await runStep(run, s))) return;
}

/** Run one step; false when it failed or did not start (after an abort). */
async function runStep(run: Run, step: Step): Promise<boolean> {
  const key = stepKey(step);
  const out = run.outcomes.get(key)!;
  if (run.signal.aborted) return false;
  const attempt: StepAttempt = { step, key, out, started: Date.now() };
  run.running.add(key);
  const ctx = stepContext(run, attempt);
  emit(run, { type: 'step-start', ...stamp(run), ...stepRef(step) });
  run.journal?.write({ type: 'step', t: run.now().toISOString(), key, status: 'start' });
  try {
    await checkApplyVerify(run, attempt, ctx);
    return true;
  } catch (e) {
    recordFailure(run, attempt, e);
    return false;
  } finally {
    run.running.delete(key);
  }
}

/** What the step sees: its hosts wrapped so that every mutation is recorded in its outcome and audited. */
function stepContext(run: Run, attempt: StepAttempt): StepContext {
  const { step, key, out } = attempt;
  const record = (m: Recorded) => {
    const masked = maskedMutation(m, run.redactor);
    out.mutations.push(masked);
    run.touched.add(m.host);
    run.audit?.(step, masked);
  };
  const wrap = (name: string) => new RecordingHost(run.baseHost(name), record, run.claimed);
  return {
    host: wrap(step.host),
    hostFor: wrap,
    runId: run.runId,
    flow: run.flow.name,
    dryRun: run.dryRun,
    redactor: run.redactor,
    signal: run.signal,
    completedEarlier: run.completedEarlier.has(key),
    changedInRun: (h) => run.touched.has(h),
    state: run.state,
  };
}

/** The mutation with its command's secrets masked. */
function maskedMutation(m: Recorded, redactor: Redactor): Recorded {
  const masked = { ...m, argv: 'argv' in m ? redactor.redactArgv(m.argv) : undefined } as Recorded;
  if (!('argv' in m)) delete (masked as { argv?: unknown }).argv;
  return masked;
}

/** Check; when done, skip; otherwise apply and (for real, unless the step opts out) check again. */
async function checkApplyVerify(run: Run, attempt: StepAttempt, ctx: StepContext): Promise<void> {
  const { step, out } = attempt;
  const c = await checkOrPlan(run, attempt, ctx);
  if (!c) return;
  const why = run.redactor.redact(c.why);
  emit(run, { type: 'step-check', ...stamp(run), ...stepRef(step), done: c.done, why });
  if (c.done) {
    recordSkip(run, attempt, why);
    return;
  }
  out.why = why;
  await step.apply(ctx);
  if (!run.dryRun && step.verify !== false) {
    const after = await step.check(ctx);
    if (!after.done) throw new StepVerifyError(step.host, step.id, run.redactor.redact(after.why));
  }
  recordDone(run, attempt);
}

/**
 * The step's check. In a plan, a check may need what an earlier planned step would create (a certificate,
 * a file): it cannot be predicted, so the step is shown as to do with the reason (undefined is returned);
 * for real, it fails.
 */
async function checkOrPlan(run: Run, attempt: StepAttempt, ctx: StepContext): Promise<CheckResult | undefined> {
  try {
    return await attempt.step.check(ctx);
  } catch (e) {
    if (!run.dryRun || run.planned === 0) throw e;
    recordUncheckable(run, attempt, e);
    return undefined;
  }
}

function recordUncheckable(run: Run, attempt: StepAttempt, e: unknown): void {
  const { step, out } = attempt;
  const why = `cannot be checked before the planned changes are made (${errorInfo(e, run.redactor, step).message})`;
  out.why = run.redactor.redact(why);
  out.status = 'planned';
  out.ms = Date.now() - attempt.started;
  emit(run, { type: 'step-check', ...stamp(run), ...stepRef(step), done: false, why: out.why });
  emit(run, { type: 'step-planned', ...stamp(run), ...stepRef(step), ms: out.ms, changes: 0 });
}

function recordSkip(run: Run, attempt: StepAttempt, why: string): void {
  const { step, key, out } = attempt;
  out.status = 'skipped';
  out.why = why;
  out.ms = Date.now() - attempt.started;
  emit(run, { type: 'step-skip', ...stamp(run), ...stepRef(step), why });
  run.journal?.write({ type: 'step', t: run.now().toISOString(), key, status: 'skip', why, ms: out.ms });
}

function recordDone(run: Run, attempt: StepAttempt): void {
  const { step, key, out } = attempt;
  out.status = run.dryRun ? 'planned' : 'done';
  if (run.dryRun) run.planned++;
  out.ms = Date.now() - attempt.started;
  const type = run.dryRun ? 'step-planned' : 'step-done';
  emit(run, { type, ...stamp(run), ...stepRef(step), ms: out.ms, changes: out.mutations.length });
  run.journal?.write({
    type: 'step',
    t: run.now().toISOString(),
    key,
    status: 'done',
    ms: out.ms,
    changes: out.mutations.length,
    touched: touchedHosts(out),
  });
}

function recordFailure(run: Run, attempt: StepAttempt, e: unknown): void {
  const { step, key, out } = attempt;
  const info = errorInfo(e, run.redactor, step);
  out.status = 'failed';
  out.error = info;
  out.ms = Date.now() - attempt.started;
  run.failed ??= info;
  emit(run, { type: 'step-fail', ...stamp(run), ...stepRef(step), ms: out.ms, error: info });
  run.journal?.write({
    type: 'step',
    t: run.now().toISOString(),
    key,
    status: 'fail',
    ms: out.ms,
    touched: touchedHosts(out),
    error: info,
  });
}

/** The hosts a step changed, each once. */
function touchedHosts(out: StepOutcome): string[] {
  return [...new Set(out.mutations.map((m) => m.host))];
}

/** Close the journal, announce the end, and build the result. */
function finishRun(run: Run, startedAt: number): RunResult {
  const counts = { done: 0, skipped: 0, planned: 0, failed: 0, 'not-run': 0 } satisfies Record<StepStatus, number>;
  for (const o of run.outcomes.values()) counts[o.status]++;
  const interrupted = counts['not-run'] > 0 && run.signal.aborted;
  const status: RunStatus = run.failed ? 'failed' : interrupted ? 'interrupted' : 'ok';
  const t = () => run.now().toISOString();
  if (status === 'interrupted') run.journal?.write({ type: 'interrupted', t: t(), running: [...run.running] });
  const ms = Date.now() - startedAt;
  run.journal?.write({ type: 'run-end', t: t(), status, ms });
  emit(run, { type: 'flow-end', ...stamp(run), flow: run.flow.name, status, ms, counts });
  return {
    type: 'result',
    runId: run.runId,
    flow: run.flow.name,
    status,
    dryRun: run.dryRun,
    ms,
    journal: run.journal?.path,
    auditLog: run.dryRun ? undefined : run.opts.auditLog,
    resumedFrom: run.resumedFrom,
    steps: [...run.outcomes.values()],
    error: run.failed,
  };
}
