import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DryRunHost, PeError, Redactor, Semaphore, type Host, type Mutation } from '@pe-stack/pe-host';
import { StepsError, StepVerifyError } from './errors.js';
import { findResumable, Journal, newRunId } from './journal.js';
import { FileCache } from './file-cache.js';
import { RecordingHost, type Recorded } from './recording-host.js';
import {
  flowSteps,
  isGroup,
  stepKey,
  type ErrorInfo,
  type Flow,
  type FlowEvent,
  type RunResult,
  type RunStatus,
  type Step,
  type StepContext,
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
  const now = opts.now ?? (() => new Date());
  const t0 = Date.now();
  const redactor = opts.redactor ?? new Redactor();
  const dryRun = Boolean(opts.dryRun);
  const signal = opts.signal ?? new AbortController().signal;
  const target = opts.target ?? '';
  const steps = flowSteps(flow);
  const keys = new Set<string>();
  for (const s of steps) {
    const k = stepKey(s);
    if (keys.has(k)) throw new StepsError('E_INTERNAL', `flow ${flow.name} has the step ${k} twice.`);
    keys.add(k);
  }

  // journal: a new run, or the continuation of the newest unfinished one
  let runId = newRunId(now());
  let journal: Journal | undefined;
  let completedEarlier = new Set<string>();
  const touched = new Set<string>();
  let resumedFrom: string | undefined;
  if (!dryRun && opts.journalDir) {
    const prev = opts.resume ? await findResumable(opts.journalDir, flow.name, target) : undefined;
    if (prev) {
      runId = prev.runId;
      resumedFrom = prev.stoppedAt ?? '(start)';
      completedEarlier = prev.completed;
      for (const h of prev.touched) touched.add(h);
      journal = new Journal(prev.path, redactor);
      journal.write({ type: 'resume', t: now().toISOString(), runId, pid: process.pid });
    } else {
      journal = Journal.create(opts.journalDir, flow.name, runId, redactor);
      journal.write({
        type: 'run-start',
        t: now().toISOString(),
        runId,
        flow: flow.name,
        target,
        steps: [...keys],
        pid: process.pid,
      });
    }
  }
  let audit: ((step: Step, m: Recorded) => void) | undefined;
  if (!dryRun && opts.auditLog) {
    const file = opts.auditLog;
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    audit = (step, m) => {
      const rec = { t: now().toISOString(), runId, flow: flow.name, step: step.id, ...m };
      appendFileSync(file, `${redactor.redact(JSON.stringify(rec))}\n`, { mode: 0o600 });
    };
  }

  const emit = (e: FlowEvent) => {
    try {
      opts.onEvent?.(e);
    } catch {
      // a broken listener must not break the run
    }
  };
  const ref = (s: Step) => ({ key: stepKey(s), id: s.id, host: s.host, title: s.title });
  const stamp = () => ({ t: now().toISOString(), runId });

  // hosts: one DryRunHost per real host (so planned writes are seen by later checks), a RecordingHost per step
  const dryHosts = new Map<string, DryRunHost>();
  const claimed = new WeakSet<Mutation>();
  const fileCache = flow.fileCache ? new FileCache(flow.fileCache.hints) : undefined;
  const cached = new Map<string, Host>();
  const realFor = (name: string): Host => {
    if (!fileCache) return opts.host(name);
    let c = cached.get(name);
    if (!c) cached.set(name, (c = fileCache.wrap(opts.host(name))));
    return c;
  };
  const baseFor = (name: string): Host => {
    const real = realFor(name);
    if (!dryRun) return real;
    let d = dryHosts.get(name);
    if (!d) dryHosts.set(name, (d = new DryRunHost(real)));
    return d;
  };
  const state = new Map<string, unknown>();
  const outcomes = new Map<string, StepOutcome>();
  for (const s of steps) outcomes.set(stepKey(s), { ...ref(s), status: 'not-run', mutations: [] });

  emit({
    type: 'flow-start',
    ...stamp(),
    flow: flow.name,
    dryRun,
    resume: Boolean(opts.resume),
    resumedFrom,
    journal: journal?.path,
    steps: flow.items.flatMap((i) =>
      isGroup(i) ? i.lanes.flat().map((s) => ({ ...ref(s), group: i.group })) : [ref(i)],
    ),
  });

  let failed: ErrorInfo | undefined;
  /** Steps a dry run found to do so far. */
  let planned = 0;
  const running = new Set<string>();

  const runStep = async (step: Step): Promise<boolean> => {
    const key = stepKey(step);
    const out = outcomes.get(key)!;
    if (signal.aborted) return false;
    const started = Date.now();
    running.add(key);
    const record = (m: Recorded) => {
      const masked = { ...m, argv: 'argv' in m ? redactor.redactArgv(m.argv) : undefined } as Recorded;
      if (!('argv' in m)) delete (masked as { argv?: unknown }).argv;
      out.mutations.push(masked);
      touched.add(m.host);
      audit?.(step, masked);
    };
    const wrap = (name: string) => new RecordingHost(baseFor(name), record, claimed);
    const ctx: StepContext = {
      host: wrap(step.host),
      hostFor: wrap,
      runId,
      flow: flow.name,
      dryRun,
      redactor,
      signal,
      completedEarlier: completedEarlier.has(key),
      changedInRun: (h) => touched.has(h),
      state,
    };
    emit({ type: 'step-start', ...stamp(), ...ref(step) });
    journal?.write({ type: 'step', t: now().toISOString(), key, status: 'start' });
    try {
      let c: { done: boolean; why: string };
      try {
        c = await step.check(ctx);
      } catch (e) {
        // In a plan, a check may need what an earlier planned step would create (a certificate,
        // a file): it cannot be predicted, so the step is shown as to do with the reason; for real, it fails.
        if (!dryRun || planned === 0) throw e;
        c = {
          done: false,
          why: `cannot be checked before the planned changes are made (${errorInfo(e, redactor, step).message})`,
        };
        out.why = redactor.redact(c.why);
        out.status = 'planned';
        out.ms = Date.now() - started;
        emit({ type: 'step-check', ...stamp(), ...ref(step), done: false, why: out.why });
        emit({ type: 'step-done', ...stamp(), ...ref(step), ms: out.ms, changes: 0 });
        return true;
      }
      const why = redactor.redact(c.why);
      emit({ type: 'step-check', ...stamp(), ...ref(step), done: c.done, why });
      if (c.done) {
        out.status = 'skipped';
        out.why = why;
        out.ms = Date.now() - started;
        emit({ type: 'step-skip', ...stamp(), ...ref(step), why });
        journal?.write({ type: 'step', t: now().toISOString(), key, status: 'skip', why, ms: out.ms });
        return true;
      }
      out.why = why;
      await step.apply(ctx);
      if (!dryRun && step.verify !== false) {
        const after = await step.check(ctx);
        if (!after.done) throw new StepVerifyError(step.host, step.id, redactor.redact(after.why));
      }
      out.status = dryRun ? 'planned' : 'done';
      if (dryRun) planned++;
      out.ms = Date.now() - started;
      emit({ type: 'step-done', ...stamp(), ...ref(step), ms: out.ms, changes: out.mutations.length });
      journal?.write({
        type: 'step',
        t: now().toISOString(),
        key,
        status: 'done',
        ms: out.ms,
        changes: out.mutations.length,
        touched: [...new Set(out.mutations.map((m) => m.host))],
      });
      return true;
    } catch (e) {
      const info = errorInfo(e, redactor, step);
      out.status = 'failed';
      out.error = info;
      out.ms = Date.now() - started;
      failed ??= info;
      emit({ type: 'step-fail', ...stamp(), ...ref(step), ms: out.ms, error: info });
      journal?.write({
        type: 'step',
        t: now().toISOString(),
        key,
        status: 'fail',
        ms: out.ms,
        touched: [...new Set(out.mutations.map((m) => m.host))],
        error: info,
      });
      return false;
    } finally {
      running.delete(key);
    }
  };

  const sem = new Semaphore(Math.max(1, opts.concurrency ?? 4));
  for (const item of flow.items) {
    if (failed || signal.aborted) break;
    if (!isGroup(item)) {
      await runStep(item);
      continue;
    }
    await Promise.all(
      item.lanes.map((lane) =>
        sem.run(async () => {
          for (const s of lane) if (!(await runStep(s))) return;
        }),
      ),
    );
  }

  const counts = { done: 0, skipped: 0, planned: 0, failed: 0, 'not-run': 0 } satisfies Record<StepStatus, number>;
  for (const o of outcomes.values()) counts[o.status]++;
  const status: RunStatus = failed ? 'failed' : counts['not-run'] > 0 && signal.aborted ? 'interrupted' : 'ok';
  if (status === 'interrupted') journal?.write({ type: 'interrupted', t: now().toISOString(), running: [...running] });
  const ms = Date.now() - t0;
  journal?.write({ type: 'run-end', t: now().toISOString(), status, ms });
  emit({ type: 'flow-end', ...stamp(), flow: flow.name, status, ms, counts });
  return {
    type: 'result',
    runId,
    flow: flow.name,
    status,
    dryRun,
    ms,
    journal: journal?.path,
    auditLog: dryRun ? undefined : opts.auditLog,
    resumedFrom,
    steps: [...outcomes.values()],
    error: failed,
  };
}
