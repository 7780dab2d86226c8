import { execFile, spawn } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { LabError } from './errors.js';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  allowFailure?: boolean;
  timeoutMs?: number;
  input?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** Runs a program with an argv array (never a shell string). */
export function run(file: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      [...args],
      {
        timeout: opts.timeoutMs ?? 120_000,
        maxBuffer: 64 * 1024 * 1024,
        env: opts.env ?? process.env,
        cwd: opts.cwd,
        killSignal: 'SIGKILL',
      },
      (err, stdout, stderr) => {
        const code = err
          ? typeof (err as { code?: unknown }).code === 'number'
            ? (err as { code: number }).code
            : -1
          : 0;
        const res = { code, stdout: String(stdout), stderr: String(stderr) };
        if (err && !opts.allowFailure) {
          const detail = res.stderr.trim().split('\n').slice(-8).join('\n') || (err as Error).message;
          reject(
            new LabError('E_LAB_COMMAND', `\`${[file, ...args].join(' ')}\` failed (exit ${code}): ${detail}`, {
              cause: err,
            }),
          );
          return;
        }
        resolve(res);
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
  });
}

/** Runs a program with inherited stdio; resolves with its exit code. */
export function runInherit(file: string, args: readonly string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, [...args], { stdio: 'inherit' });
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 + 1 : 1)));
  });
}

function nsInode(path: string): number | undefined {
  try {
    return statSync(path).ino;
  } catch {
    return undefined;
  }
}

/**
 * The lab's "home": the process whose mount and network namespaces are the
 * machine's own as the lab sees them (where /run/netns and the guard route
 * live). `lab run` exports its own PID as PE_STACK_LAB_HOME_PID before it
 * enters the controller; everything else runs at home itself.
 */
export function homePid(): number {
  const v = Number(process.env.PE_STACK_LAB_HOME_PID);
  if (Number.isInteger(v) && v > 0 && nsInode(`/proc/${v}/ns/mnt`) !== undefined) return v;
  return process.pid;
}

/** True when this process shares the home mount and network namespaces. */
export function atHome(): boolean {
  const h = homePid();
  return (
    h === process.pid ||
    (nsInode(`/proc/${h}/ns/mnt`) === nsInode('/proc/self/ns/mnt') &&
      nsInode(`/proc/${h}/ns/net`) === nsInode('/proc/self/ns/net'))
  );
}

/**
 * argv prefix that runs a management command in the home mount and network
 * namespaces. `ip netns exec` gives its children a slave mount namespace,
 * where `ip netns add/del` would not reach the machine's /run/netns; so when
 * this process runs inside the controller (tests), management goes through
 * nsenter into the home namespaces.
 */
export function rootPrefix(): string[] {
  if (atHome()) return [];
  return ['nsenter', '--target', String(homePid()), '--mount', '--net', '--'];
}

/** Runs a management command (ip, kill...) in the root mount + network namespaces. */
export function runRoot(file: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const p = rootPrefix();
  return p.length ? run(p[0]!, [...p.slice(1), file, ...args], opts) : run(file, args, opts);
}

/** Maps over items with at most `limit` in flight. */
export async function pool<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  });
  await Promise.all(workers);
  return out;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Path of a named network namespace as the home mount namespace sees it
 * (through the home process's root), valid also from inside `ip netns exec`
 * children.
 */
export function netnsPath(name: string): string {
  return `/proc/${homePid()}/root/run/netns/${name}`;
}

/** Inode of a named network namespace, or undefined when it does not exist. */
export function netnsInode(name: string): number | undefined {
  return nsInode(netnsPath(name));
}

/** True when this process runs in the given named network namespace. */
export function inNetns(name: string): boolean {
  const want = netnsInode(name);
  return want !== undefined && want === nsInode('/proc/self/ns/net');
}

/** PIDs of every process whose network namespace is the named one. */
export function pidsInNetns(name: string): number[] {
  const want = netnsInode(name);
  if (want === undefined) return [];
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    if (nsInode(`/proc/${entry}/ns/net`) === want) out.push(Number(entry));
  }
  return out;
}

/** The host-side PID of the process that is PID 1 of its own PID namespace, among `pids`. */
export function namespaceInit(pids: readonly number[]): number | undefined {
  for (const pid of pids) {
    try {
      const m = /^NSpid:\s+(.*)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      const ids = m?.[1]?.trim().split(/\s+/) ?? [];
      if (ids.length > 1 && ids[ids.length - 1] === '1') return pid;
    } catch {
      // the process went away while we looked
    }
  }
  return undefined;
}

/** Resident memory of the processes, in bytes. */
export function rssBytes(pids: readonly number[]): number {
  let kb = 0;
  for (const pid of pids) {
    try {
      const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) kb += Number(m[1]);
    } catch {
      // gone
    }
  }
  return kb * 1024;
}
