import { randomBytes } from 'node:crypto';
import { CommandFailedError, InvalidInputError, SudoPasswordError, SudoTtyError } from './errors.js';
import type { ExecOptions, ExecResult } from './host.js';
import type { Redactor } from './redact.js';

/** Default command timeout: 10 minutes. */
export const DEFAULT_TIMEOUT_MS = 10 * 60_000;

export interface RawResult {
  code: number | null;
  signal?: string | undefined;
  stdout: Buffer;
  stderr: Buffer;
  ms: number;
  timedOut: boolean;
}

export function sudoProblem(stderr: string): 'password' | 'tty' | undefined {
  if (/sudo: (a terminal is required|sorry, you must have a tty)/.test(stderr)) return 'tty';
  if (/sudo: (a password is required|\d+ incorrect password attempts?)/.test(stderr)) return 'password';
  return undefined;
}

/** Turns a raw result into the public one, or the right typed error. */
export function finish(
  host: string,
  argv: readonly string[],
  raw: RawResult,
  opts: ExecOptions,
  redactor: Redactor,
): ExecResult {
  const r = redactor.with([...(opts.secrets ?? []), ...Object.values(opts.env ?? {})]);
  const stdout = raw.stdout.toString('utf8');
  const stderr = raw.stderr.toString('utf8');
  const code = raw.code ?? 128 + 9;
  if (code !== 0 && opts.sudo) {
    const problem = sudoProblem(stderr);
    if (problem === 'password') throw new SudoPasswordError(host, 'missing');
    if (problem === 'tty') throw new SudoTtyError(host);
  }
  if (code !== 0 && !opts.allowFailure) {
    throw new CommandFailedError(host, r.redactArgv(argv), raw.code, r.redact(stderr), r.redact(stdout), raw.signal);
  }
  return { code, stdout, stderr, ms: raw.ms };
}

/** `path.pe-backup-20261125T161500123Z`: beside the file, with a suffix no config loader picks up. */
export function backupPath(path: string, now = new Date()): string {
  return `${path}.pe-backup-${now.toISOString().replace(/[-:.]/g, '')}`;
}

export function toBuffer(data: string | Buffer): Buffer {
  return typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
}

export function splitDir(path: string): { dir: string; base: string } {
  const i = path.lastIndexOf('/');
  return { dir: i <= 0 ? '/' : path.slice(0, i), base: path.slice(i + 1) };
}

/** The prefix of every temp entry (file or private directory) a write of `base` makes beside it. */
export function tempPrefix(base: string): string {
  return `.${base}.pe-tmp-`;
}

/** A temp file name beside `path` that nobody can guess (96 random bits), so none can be planted in advance. */
export function tempName(path: string): string {
  const { dir, base } = splitDir(path);
  return `${dir === '/' ? '' : dir}/${tempPrefix(base)}${randomBytes(12).toString('hex')}`;
}

/** Directories no tool may ever remove or clear: the file system's top and Puppet's configuration roots. */
export const PROTECTED_PATHS: readonly string[] = [
  '/',
  '/etc',
  '/usr',
  '/var',
  '/bin',
  '/sbin',
  '/lib',
  '/boot',
  '/home',
  '/root',
  '/opt',
  '/tmp',
  '/var/lib',
  '/etc/puppet',
  '/etc/puppetlabs',
];

/** Whether `path` is too close to the root of the file system to remove: a PROTECTED_PATHS entry, or one level below `/`. */
export function isProtectedPath(path: string): boolean {
  const norm = path.replace(/\/+$/, '') || '/';
  return PROTECTED_PATHS.includes(norm) || norm.split('/').length < 3;
}

/** Guard against removing something no tool should ever remove. */
export function assertRemovable(host: string, path: string): void {
  if (isProtectedPath(path)) {
    throw new InvalidInputError(`refusing to remove ${path}: it is too close to the root of the file system.`, {
      host,
    });
  }
}
