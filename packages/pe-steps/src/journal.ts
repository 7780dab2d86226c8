import { appendFileSync, mkdirSync, promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { Redactor } from '@pe-stack/pe-host';
import type { ErrorInfo, RunStatus } from './types.js';

/**
 * The journal of one run: a JSON-lines file `<dir>/<flow>-<runId>.jsonl`,
 * one record per line, appended synchronously so that a crash loses at most
 * the record being written. `--resume` reads it back.
 */
export type JournalRecord =
  | { type: 'run-start'; t: string; runId: string; flow: string; target: string; steps: string[]; pid: number }
  | { type: 'resume'; t: string; runId: string; pid: number }
  | {
      type: 'step';
      t: string;
      key: string;
      status: 'start' | 'done' | 'skip' | 'fail';
      why?: string | undefined;
      ms?: number | undefined;
      changes?: number | undefined;
      touched?: string[] | undefined;
      error?: ErrorInfo | undefined;
    }
  | { type: 'interrupted'; t: string; running: string[] }
  | { type: 'run-end'; t: string; status: RunStatus; ms: number };

export class Journal {
  constructor(
    readonly path: string,
    private readonly redactor: Redactor,
  ) {}

  static create(dir: string, flow: string, runId: string, redactor: Redactor): Journal {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    return new Journal(join(dir, `${flow}-${runId}.jsonl`), redactor);
  }

  write(rec: JournalRecord): void {
    // a journal is read by people and tools: no secret may reach it
    appendFileSync(this.path, `${this.redactor.redactJson(rec)}\n`, { mode: 0o600 });
  }
}

export interface JournalSummary {
  path: string;
  runId: string;
  flow: string;
  target: string;
  startedAt: string;
  /** undefined when the run never recorded its end (a crash or kill). */
  status: RunStatus | undefined;
  /** Steps that finished (done or skipped) in any attempt of the run. */
  completed: Set<string>;
  /** Hosts on which a step of the run changed something (any attempt). */
  touched: Set<string>;
  /** The first step that failed (else the first still running when the record ends) and has not finished since. */
  stoppedAt: string | undefined;
}

export async function readJournal(path: string): Promise<JournalSummary | undefined> {
  let text: string;
  try {
    text = await fs.readFile(path, 'utf8');
  } catch {
    return undefined;
  }
  let start: Extract<JournalRecord, { type: 'run-start' }> | undefined;
  let status: RunStatus | undefined;
  const completed = new Set<string>();
  const touched = new Set<string>();
  // steps started or failed and not finished since, in journal order (lanes interleave)
  const pending = new Map<string, 'start' | 'fail'>();
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    let rec: JournalRecord;
    try {
      rec = JSON.parse(line) as JournalRecord;
    } catch {
      continue; // a torn last line after a crash
    }
    if (rec.type === 'run-start') start = rec;
    else if (rec.type === 'resume') status = undefined;
    else if (rec.type === 'run-end') status = rec.status;
    else if (rec.type === 'step') {
      for (const h of rec.touched ?? []) touched.add(h);
      if (rec.status === 'done' || rec.status === 'skip') {
        completed.add(rec.key);
        pending.delete(rec.key);
      } else pending.set(rec.key, rec.status);
    }
  }
  if (!start) return undefined;
  const entries = [...pending.entries()];
  const stoppedAt = (entries.find(([, st]) => st === 'fail') ?? entries[0])?.[0];
  return {
    path,
    runId: start.runId,
    flow: start.flow,
    target: start.target,
    startedAt: start.t,
    status,
    completed,
    touched,
    stoppedAt,
  };
}

/** The newest run of `flow` on `target` that did not end ok, if the newest run of it did not end ok. */
export async function findResumable(dir: string, flow: string, target: string): Promise<JournalSummary | undefined> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch {
    return undefined;
  }
  const runs: JournalSummary[] = [];
  for (const n of names) {
    if (!n.startsWith(`${flow}-`) || !n.endsWith('.jsonl')) continue;
    const s = await readJournal(join(dir, n));
    if (s && s.flow === flow && s.target === target) runs.push(s);
  }
  runs.sort((a, b) => (a.startedAt < b.startedAt ? 1 : a.startedAt > b.startedAt ? -1 : a.runId < b.runId ? 1 : -1));
  const newest = runs[0];
  return newest && newest.status !== 'ok' ? newest : undefined;
}

/** A sortable, unique run id: UTC time plus random. */
export function newRunId(now = new Date()): string {
  const ts = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return `${ts}-${Math.random().toString(36).slice(2, 8)}`;
}
