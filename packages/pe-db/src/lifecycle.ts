import { DbFencedError, DbQueryError } from './errors.js';
import { isRunning, waitFor, type PgInstance } from './instance.js';

/** Name of the fence marker in a data directory. */
export const FENCE_MARKER = 'pe-db.fenced';

export interface FenceRecord {
  host: string;
  dataDir: string;
  /** ISO time the fence was set. */
  at: string;
  /** Who is primary now. */
  newPrimary: string;
  /** 'stopped': we stopped it and left the marker; 'unreachable': recorded while we could not reach it. */
  how: 'stopped' | 'unreachable';
  reason: string;
}

export function fenceMarkerPath(inst: PgInstance): string {
  return `${inst.dataDir}/${FENCE_MARKER}`;
}

/** The fence marker on the instance's host, if there is one. */
export async function readFenceMarker(inst: PgInstance): Promise<FenceRecord | undefined> {
  const p = fenceMarkerPath(inst);
  if (!(await inst.host.exists(p, { sudo: true }))) return undefined;
  return parseFenceMarker(inst, (await inst.host.readFile(p, { sudo: true })).toString('utf8'));
}

/**
 * Files a start or stop of the server changes that a file cache may hold
 * (ExecOptions.changesFiles): the lock files in the data directory and the
 * socket directory (socket, its lock, Debian's external pid file).
 */
export function serverRunFiles(inst: PgInstance): string[] {
  return [`${inst.dataDir}/postmaster.pid`, `${inst.dataDir}/postmaster.opts`, inst.socketDir];
}

/** The sentence of E_DB_FENCED for this instance and its marker. */
export function fencedError(inst: PgInstance, fence: FenceRecord): DbFencedError {
  return new DbFencedError(
    inst.host.name,
    `PostgreSQL in ${inst.dataDir} was fenced${fence.at ? ` at ${fence.at}` : ''}${fence.newPrimary ? ` when ${fence.newPrimary} became primary` : ''}; it is not started.`,
  );
}

/** A fence marker's text as a record (a marker that is not our JSON still fences: its text is the reason). */
export function parseFenceMarker(inst: PgInstance, text: string): FenceRecord {
  try {
    return JSON.parse(text) as FenceRecord;
  } catch {
    return { host: inst.host.name, dataDir: inst.dataDir, at: '', newPrimary: '', how: 'stopped', reason: text.trim() };
  }
}

export interface StartOptions {
  /** Wait this long for the server to accept connections. Default 60 s. */
  timeoutMs?: number;
  /** Internal: rejoin starts a rebuilt standby whose marker it has just removed. */
  allowFenced?: boolean;
  /** Internal: the caller has just seen the server stopped (restartInstance): the start command runs without asking again. */
  knownStopped?: boolean;
}

/**
 * Starts PostgreSQL through the instance's own command, and refuses when the
 * data directory carries a fence marker: an old primary never comes back as
 * a primary through our tools.
 */
export async function startInstance(inst: PgInstance, opts: StartOptions = {}): Promise<{ ms: number }> {
  const t0 = performance.now();
  if (!opts.allowFenced) {
    const fence = await readFenceMarker(inst);
    if (fence) throw fencedError(inst, fence);
  }
  if (!opts.knownStopped && (await isRunning(inst))) return { ms: performance.now() - t0 };
  await inst.host.exec(inst.control.start, {
    sudo: true,
    cwd: '/',
    timeoutMs: (opts.timeoutMs ?? 60_000) + 10_000,
    changesFiles: serverRunFiles(inst),
  });
  const up = await waitFor(() => isRunning(inst), opts.timeoutMs ?? 60_000, 100);
  if (!up.ok)
    throw new DbQueryError(
      inst.host.name,
      `PostgreSQL on port ${inst.port} did not accept connections within ${opts.timeoutMs ?? 60_000} ms after start.`,
      { hint: 'Read the server log.' },
    );
  return { ms: performance.now() - t0 };
}

export async function stopInstance(
  inst: PgInstance,
  opts: { timeoutMs?: number } = {},
): Promise<{ ms: number; wasRunning: boolean }> {
  const t0 = performance.now();
  if (!(await isRunning(inst))) return { ms: performance.now() - t0, wasRunning: false };
  await inst.host.exec(inst.control.stop, {
    sudo: true,
    cwd: '/',
    timeoutMs: opts.timeoutMs ?? 90_000,
    changesFiles: serverRunFiles(inst),
  });
  const down = await waitFor(async () => !(await isRunning(inst)), opts.timeoutMs ?? 90_000, 100);
  if (!down.ok)
    throw new DbQueryError(inst.host.name, `PostgreSQL on port ${inst.port} still accepts connections after stop.`);
  return { ms: performance.now() - t0, wasRunning: true };
}

export async function restartInstance(inst: PgInstance): Promise<void> {
  await stopInstance(inst);
  // just seen down: no second look before the start command
  await startInstance(inst, { knownStopped: true });
}

/**
 * After a power cut the data directory still holds postmaster.pid, and the
 * socket directory `.s.PGSQL.<port>.lock`; PostgreSQL refuses to start (and
 * pg_rewind to run crash recovery) while the PID in either names a live
 * process: after a reboot an unrelated process may carry it, and a killed
 * postmaster nobody reaped stays a zombie. Each file is removed only when the
 * server does not answer and its PID is not a running postgres.
 */
export async function clearStaleLock(inst: PgInstance): Promise<boolean> {
  const files = [`${inst.dataDir}/postmaster.pid`, `${inst.socketDir}/.s.PGSQL.${inst.port}.lock`];
  const present = [];
  for (const f of files) if (await inst.host.exists(f, { sudo: true })) present.push(f);
  if (present.length === 0 || (await isRunning(inst))) return false;
  let cleared = false;
  for (const f of present) {
    const pid = Number((await inst.host.readFile(f, { sudo: true })).toString('utf8').split('\n')[0]);
    if (await runningPostgres(inst, pid)) continue;
    await inst.host.remove(f, { sudo: true });
    cleared = true;
  }
  return cleared;
}

/** PID names a running (not zombie) postgres process on the instance's host. */
async function runningPostgres(inst: PgInstance, pid: number): Promise<boolean> {
  if (!Number.isInteger(pid) || pid <= 1) return false;
  const st = await inst.host.exec(['cat', `/proc/${pid}/stat`], { sudo: true, allowFailure: true, readOnly: true });
  // /proc/PID/stat: "pid (comm) state ..."
  const m = /^\d+ \((.*)\) (\S)/.exec(st.stdout);
  return st.code === 0 && m !== null && m[1] === 'postgres' && m[2] !== 'Z';
}
