// The pe-cluster CLI as a child process, for the lab tests (its dist build: what users run).
import { execFile } from 'node:child_process';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** `node <cli> ...args`, NO_COLOR set; resolves with the exit code (never rejects on a non-zero exit). */
export function runCli(cli: string, args: readonly string[], timeoutMs = 20 * 60_000): Promise<CliRun> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [cli, ...args],
      { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, NO_COLOR: '1' } },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr, ms: performance.now() - t0 });
      },
    );
  });
}

/** The last line of a --json run: the result (or error) object. */
export function lastJson<T>(r: CliRun): T {
  return JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}') as T;
}

/** On a failed --json run, the failed steps and the result on stderr: what a lab log needs to say why. */
export function reportFailure(r: CliRun): void {
  if (r.code === 0) return;
  const lines = r.stdout.split('\n').filter((l) => l.includes('step-fail') || l.includes('"type":"result"'));
  process.stderr.write(`${lines.join('\n')}\n`);
}
