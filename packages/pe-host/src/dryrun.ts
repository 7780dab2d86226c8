import { PassThrough, Writable } from 'node:stream';
import { toBuffer } from './common.js';
import { maskedDiff } from './diff.js';
import type {
  ExecOptions,
  ExecResult,
  FileStat,
  Forward,
  Host,
  Mutation,
  ReadOptions,
  RemoveOptions,
  StreamingExec,
  WriteOptions,
  WriteResult,
} from './host.js';
import type { Redactor } from './redact.js';
import { readFilesOneByOne, type BatchedFile, type ReadFilesOptions } from './batch.js';
import { writeFilesOneByOne, type BatchWrite, type WriteFilesOptions } from './batch-write.js';
import { FileNotFoundError } from './errors.js';
import { validateRemotePath } from './validate.js';

/**
 * Wraps a real host: reads (and commands marked readOnly) go through, every
 * mutation is recorded with a masked diff and NOT done. Later reads of a
 * file written during the dry run see the planned content, so a flow's
 * checks behave as they would for real. `mutations` is the plan.
 */
export class DryRunHost implements Host {
  readonly mutations: Mutation[] = [];
  private readonly overlay = new Map<string, Buffer | null>();

  constructor(readonly inner: Host) {}

  get name(): string {
    return this.inner.name;
  }

  get redactor(): Redactor {
    return this.inner.redactor;
  }

  async exec(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    if (opts.readOnly) return this.inner.exec(argv, opts);
    const r = this.redactor.with([...(opts.secrets ?? []), ...Object.values(opts.env ?? {})]);
    this.mutations.push({ kind: 'exec', host: this.name, argv: r.redactArgv(argv), sudo: Boolean(opts.sudo) });
    return { code: 0, stdout: '', stderr: '', ms: 0 };
  }

  async spawn(argv: readonly string[], opts: Omit<ExecOptions, 'stdin' | 'allowFailure'> = {}): Promise<StreamingExec> {
    if (opts.readOnly) return this.inner.spawn(argv, opts);
    this.mutations.push({
      kind: 'exec',
      host: this.name,
      argv: this.redactor.with(opts.secrets ?? []).redactArgv(argv),
      sudo: Boolean(opts.sudo),
    });
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    const stdin = new Writable({ write: (_c, _e, cb) => cb() });
    stdin.on('finish', () => {
      stdout.end();
      stderr.end();
    });
    const done = new Promise<ExecResult>((resolve) =>
      stdin.on('finish', () => resolve({ code: 0, stdout: '', stderr: '', ms: 0 })),
    );
    return { stdin, stdout, stderr, done };
  }

  get actsAsRoot(): boolean {
    return this.inner.actsAsRoot;
  }

  /** File by file, so that planned writes are seen as readFile sees them. */
  readFiles(paths: readonly string[], opts?: ReadFilesOptions): Promise<Map<string, BatchedFile>> {
    return readFilesOneByOne(this, paths, opts);
  }

  /** Each file recorded as its own write, with its masked diff. */
  writeFiles(files: readonly BatchWrite[], opts?: WriteFilesOptions): Promise<WriteResult[]> {
    return writeFilesOneByOne(this, files, opts);
  }

  async readFile(path: string, opts?: ReadOptions): Promise<Buffer> {
    const o = this.overlay.get(path);
    if (o === null) throw new FileNotFoundError(this.name, path);
    return o ?? this.inner.readFile(path, opts);
  }

  async stat(path: string, opts?: ReadOptions): Promise<FileStat | undefined> {
    const o = this.overlay.get(path);
    if (o === null) return undefined;
    const real = await this.inner.stat(path, opts);
    if (o === undefined) return real;
    return {
      size: o.length,
      mode: real?.mode ?? 0o644,
      uid: real?.uid ?? 0,
      gid: real?.gid ?? 0,
      isFile: true,
      isDirectory: false,
      isSymlink: false,
      mtimeMs: Date.now(),
    };
  }

  async exists(path: string, opts?: ReadOptions): Promise<boolean> {
    return (await this.stat(path, opts)) !== undefined;
  }

  async writeFile(path: string, data: string | Buffer, opts: WriteOptions = {}): Promise<WriteResult> {
    validateRemotePath(path);
    const buf = toBuffer(data);
    const st = await this.stat(path, opts);
    const before = st?.isFile ? await this.readFile(path, opts) : undefined;
    const modeChange = opts.mode !== undefined && st !== undefined && st.mode !== opts.mode;
    if (before?.equals(buf) && !modeChange) return { path, changed: false };
    const diff = maskedDiff(
      path,
      before?.toString('utf8'),
      buf.toString('utf8'),
      this.redactor.with(opts.secrets ?? []),
    );
    const m: Mutation = { kind: 'write', host: this.name, path, diff, created: before === undefined };
    if (opts.mode !== undefined) m.mode = opts.mode;
    if (opts.owner !== undefined) m.owner = opts.owner;
    if (opts.group !== undefined) m.group = opts.group;
    this.mutations.push(m);
    this.overlay.set(path, buf);
    return { path, changed: true };
  }

  async remove(path: string, opts: RemoveOptions = {}): Promise<boolean> {
    if (!(await this.exists(path, opts))) return false;
    this.mutations.push({ kind: 'remove', host: this.name, path, recursive: Boolean(opts.recursive) });
    this.overlay.set(path, null);
    return true;
  }

  async mkdir(path: string): Promise<void> {
    if (await this.exists(path)) return;
    this.mutations.push({ kind: 'mkdir', host: this.name, path });
  }

  forward(port: number, host?: string): Promise<Forward> {
    return this.inner.forward(port, host);
  }

  connect(port: number, host?: string) {
    return this.inner.connect(port, host);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
