import { spawn as spawnChild } from 'node:child_process';
import { constants as fsc, promises as fs } from 'node:fs';
import { connect as netConnect } from 'node:net';
import type { Duplex } from 'node:stream';
import { atomicWrite, commitStepwise, type FilePrimitives, type StepPrimitives, type TempHandle } from './atomic.js';
import { listenForward } from './forward.js';
import { assertRemovable, DEFAULT_TIMEOUT_MS, finish, type RawResult } from './common.js';
import { CommandTimeoutError, FileNotFoundError, HostError, PeError, PermissionDeniedError } from './errors.js';
import type {
  ExecOptions,
  ExecResult,
  FileStat,
  Forward,
  Host,
  ReadOptions,
  RemoveOptions,
  StreamingExec,
  WriteOptions,
  WriteResult,
} from './host.js';
import { readFilesOneByOne, type BatchedFile, type ReadFilesOptions } from './batch.js';
import { writeFilesOneByOne, type BatchWrite, type WriteFilesOptions } from './batch-write.js';
import { Redactor } from './redact.js';
import { validateEnvName, validateRemotePath } from './validate.js';

export interface LocalHostOptions {
  name?: string;
  redactor?: Redactor;
}

/** The Host interface on the machine the CLI runs on: argv without a shell, fs for files. */
export class LocalHost implements Host {
  readonly name: string;
  readonly redactor: Redactor;
  private readonly isRoot = process.getuid?.() === 0;

  constructor(opts: LocalHostOptions = {}) {
    this.name = opts.name ?? 'localhost';
    this.redactor = opts.redactor ?? new Redactor();
  }

  private argvFor(argv: readonly string[], opts: ExecOptions): string[] {
    for (const k of Object.keys(opts.env ?? {})) validateEnvName(k);
    return opts.sudo && !this.isRoot ? ['sudo', '-n', '--', ...argv] : [...argv];
  }

  private start(argv: readonly string[], opts: ExecOptions) {
    const full = this.argvFor(argv, opts);
    const child = spawnChild(full[0]!, full.slice(1), {
      cwd: opts.cwd,
      env: { ...process.env, ...(opts.env ?? {}) },
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true, // own process group, so a timeout kills the whole tree
    });
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          child.kill('SIGKILL');
        }
      }
    }, timeoutMs);
    const done = new Promise<{ code: number | null; signal: string | undefined; spawnError?: Error }>((resolve) => {
      child.once('error', (e) => resolve({ code: 127, signal: undefined, spawnError: e }));
      child.once('close', (code, signal) => resolve({ code, signal: signal ?? undefined }));
    }).finally(() => clearTimeout(timer));
    return { child, done, timedOut: () => timedOut, timeoutMs };
  }

  async exec(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const t0 = performance.now();
    const { child, done, timedOut, timeoutMs } = this.start(argv, opts);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.stdin ?? '');
    const r = await done;
    if (timedOut())
      throw new CommandTimeoutError(this.name, this.redactor.with(opts.secrets ?? []).redactArgv(argv), timeoutMs);
    if (r.spawnError) err.push(Buffer.from(`${r.spawnError.message}\n`));
    const raw: RawResult = {
      code: r.code,
      signal: r.signal,
      stdout: Buffer.concat(out),
      stderr: Buffer.concat(err),
      ms: performance.now() - t0,
      timedOut: false,
    };
    return finish(this.name, argv, raw, opts, this.redactor);
  }

  async spawn(argv: readonly string[], opts: ExecOptions = {}): Promise<StreamingExec> {
    const t0 = performance.now();
    const { child, done, timedOut, timeoutMs } = this.start(argv, opts);
    child.stdin.on('error', () => undefined);
    const result = done.then((r) => {
      if (timedOut()) throw new CommandTimeoutError(this.name, argv, timeoutMs);
      const raw: RawResult = {
        code: r.code,
        signal: r.signal,
        stdout: Buffer.alloc(0),
        stderr: Buffer.from(r.spawnError?.message ?? ''),
        ms: performance.now() - t0,
        timedOut: false,
      };
      return finish(this.name, argv, raw, opts, this.redactor);
    });
    return { stdin: child.stdin, stdout: child.stdout, stderr: child.stderr, done: result };
  }

  private fsError(path: string, e: unknown): unknown {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return new FileNotFoundError(this.name, path, e);
    if (code === 'EACCES' || code === 'EPERM') return new PermissionDeniedError(this.name, path, e);
    return e instanceof PeError
      ? e
      : new HostError('E_IO', `${path}: ${(e as Error).message}`, { host: this.name, cause: e });
  }

  private async guard<T>(path: string, fn: () => Promise<T>): Promise<T> {
    validateRemotePath(path);
    try {
      return await fn();
    } catch (e) {
      throw this.fsError(path, e);
    }
  }

  /** Not declared, also when this process runs as root: a sudo-less read stays apart from a read with sudo. */
  readonly actsAsRoot = false;

  readFiles(paths: readonly string[], opts?: ReadFilesOptions): Promise<Map<string, BatchedFile>> {
    return readFilesOneByOne(this, paths, opts);
  }

  writeFiles(files: readonly BatchWrite[], opts?: WriteFilesOptions): Promise<WriteResult[]> {
    return writeFilesOneByOne(this, files, opts);
  }

  readFile(path: string, _opts?: ReadOptions): Promise<Buffer> {
    return this.guard(path, () => fs.readFile(path));
  }

  async stat(path: string, _opts?: ReadOptions): Promise<FileStat | undefined> {
    return this.guard(path, () => lstatOrUndefined(path));
  }

  async exists(path: string, opts?: ReadOptions): Promise<boolean> {
    return (await this.stat(path, opts)) !== undefined;
  }

  writeFile(path: string, data: string | Buffer, opts: WriteOptions = {}): Promise<WriteResult> {
    return this.guard(path, () => atomicWrite(this.primitives(), path, data, opts));
  }

  async remove(path: string, opts: RemoveOptions = {}): Promise<boolean> {
    return this.guard(path, async () => {
      const st = await lstatOrUndefined(path);
      if (!st) return false;
      if (st.isDirectory) {
        assertRemovable(this.name, path);
        await fs.rm(path, { recursive: opts.recursive ?? false, force: true });
      } else {
        await fs.unlink(path);
      }
      return true;
    });
  }

  async mkdir(path: string, opts: { mode?: number } = {}): Promise<void> {
    await this.guard(path, () => fs.mkdir(path, { recursive: true, mode: opts.mode ?? 0o755 }));
  }

  async connect(port: number, host = '127.0.0.1'): Promise<Duplex> {
    return new Promise((resolve, reject) => {
      const s = netConnect({ port, host }, () => resolve(s));
      s.once('error', reject);
    });
  }

  forward(port: number, host = '127.0.0.1'): Promise<Forward> {
    return listenForward(() => this.connect(port, host));
  }

  async close(): Promise<void> {}

  private primitives(): FilePrimitives {
    const steps: StepPrimitives = {
      createExclusive: async (p) => openExclusive(p),
      link: (a, b) => fs.link(a, b),
      rename: (a, b) => fs.rename(a, b),
      unlink: (p) => fs.unlink(p),
    };
    return {
      host: this.name,
      lstat: lstatOrUndefined,
      readlink: (p) => fs.readlink(p),
      realpath: (p) => fs.realpath(p),
      read: readNoFollow,
      writerUid: async () => process.geteuid?.() ?? 0,
      resolveUser: async (n) => Number((await this.exec(['id', '-u', '--', n], { readOnly: true })).stdout.trim()),
      resolveGroup: async (n) =>
        Number((await this.exec(['getent', 'group', n], { readOnly: true })).stdout.split(':')[2]),
      commit: (plan) => commitStepwise(steps, plan),
      list: async (dir) =>
        Promise.all(
          (await fs.readdir(dir)).map(async (name) => ({
            name,
            mtimeMs: (await fs.lstat(`${dir}/${name}`).catch(() => ({ mtimeMs: Date.now() }))).mtimeMs,
          })),
        ),
      unlink: (p) => fs.unlink(p),
    };
  }
}

/** A new file, O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600; owner, mode and fsync through the handle (fchown, fchmod, fsync). */
async function openExclusive(path: string): Promise<TempHandle> {
  const fh = await fs.open(path, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
  return {
    write: async (data) => void (await fh.writeFile(data)),
    chown: (uid, gid) => fh.chown(uid, gid),
    chmod: (mode) => fh.chmod(mode),
    sync: () => fh.sync(),
    close: () => fh.close(),
  };
}

/** A file's bytes, never through a symlink, never blocking on a FIFO someone put in its place. */
async function readNoFollow(path: string): Promise<Buffer> {
  const fh = await fs.open(path, fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK);
  try {
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}

async function lstatOrUndefined(path: string): Promise<FileStat | undefined> {
  try {
    const s = await fs.lstat(path);
    return {
      size: s.size,
      mode: s.mode & 0o7777,
      uid: s.uid,
      gid: s.gid,
      isFile: s.isFile(),
      isDirectory: s.isDirectory(),
      isSymlink: s.isSymbolicLink(),
      mtimeMs: s.mtimeMs,
    };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}
