import type { Duplex } from 'node:stream';
import {
  DryRunHost,
  writeFiles,
  writeFilesOneByOne,
  type BatchedFile,
  type BatchWrite,
  type ReadFilesOptions,
  type WriteFilesOptions,
  type ExecOptions,
  type ExecResult,
  type FileStat,
  type Forward,
  type Host,
  type Mutation,
  type ReadOptions,
  type RemoveOptions,
  type StreamingExec,
  type WriteOptions,
  type WriteResult,
} from '@pe-stack/pe-host';

/** One mutation as the audit log and a step's outcome record it (masked). */
export type Recorded = Mutation & { ms?: number; code?: number; changed?: boolean; backup?: string };

/**
 * A Host as one step sees it: every call goes to `inner`; every mutation
 * is handed to `record`. Over a DryRunHost the record is the planned
 * mutation (with its masked diff); over a real host it is what was done.
 * Reads (and exec with readOnly) are not recorded.
 */
export class RecordingHost implements Host {
  private readonly claimed: WeakSet<Mutation>;

  constructor(
    readonly inner: Host,
    private readonly record: (m: Recorded) => void,
    claimed?: WeakSet<Mutation>,
  ) {
    this.claimed = claimed ?? new WeakSet();
  }

  get name(): string {
    return this.inner.name;
  }

  get redactor() {
    return this.inner.redactor;
  }

  get actsAsRoot(): boolean {
    return this.inner.actsAsRoot;
  }

  private get dry(): DryRunHost | undefined {
    return this.inner instanceof DryRunHost ? this.inner : undefined;
  }

  /** The DryRunHost mutation this call produced: the first unclaimed one since `from` that matches. */
  private claim(from: number, match: (m: Mutation) => boolean): Mutation | undefined {
    const list = this.dry?.mutations ?? [];
    for (let i = from; i < list.length; i++) {
      const m = list[i]!;
      if (!this.claimed.has(m) && match(m)) {
        this.claimed.add(m);
        return m;
      }
    }
    return undefined;
  }

  async exec(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    if (opts.readOnly) return this.inner.exec(argv, opts);
    const from = this.dry?.mutations.length ?? 0;
    const masked = () =>
      this.redactor.with([...(opts.secrets ?? []), ...Object.values(opts.env ?? {})]).redactArgv(argv);
    try {
      const r = await this.inner.exec(argv, opts);
      const m = this.claim(from, (x) => x.kind === 'exec');
      this.record(
        m ?? { kind: 'exec', host: this.name, argv: masked(), sudo: Boolean(opts.sudo), code: r.code, ms: r.ms },
      );
      return r;
    } catch (e) {
      const code = (e as { exitCode?: number | null }).exitCode;
      this.record({
        kind: 'exec',
        host: this.name,
        argv: masked(),
        sudo: Boolean(opts.sudo),
        code: typeof code === 'number' ? code : -1,
      });
      throw e;
    }
  }

  async spawn(argv: readonly string[], opts: Omit<ExecOptions, 'stdin' | 'allowFailure'> = {}): Promise<StreamingExec> {
    if (!opts.readOnly)
      this.record({
        kind: 'exec',
        host: this.name,
        argv: this.redactor.with(opts.secrets ?? []).redactArgv(argv),
        sudo: Boolean(opts.sudo),
      });
    return this.inner.spawn(argv, opts);
  }

  readFile(path: string, opts?: ReadOptions): Promise<Buffer> {
    return this.inner.readFile(path, opts);
  }

  stat(path: string, opts?: ReadOptions): Promise<FileStat | undefined> {
    return this.inner.stat(path, opts);
  }

  readFiles(paths: readonly string[], opts?: ReadFilesOptions): Promise<Map<string, BatchedFile>> {
    return this.inner.readFiles(paths, opts);
  }

  exists(path: string, opts?: ReadOptions): Promise<boolean> {
    return this.inner.exists(path, opts);
  }

  async writeFile(path: string, data: string | Buffer, opts?: WriteOptions): Promise<WriteResult> {
    const from = this.dry?.mutations.length ?? 0;
    const r = await this.inner.writeFile(path, data, opts);
    if (!r.changed) return r;
    const m = this.claim(from, (x) => x.kind === 'write' && x.path === path);
    const rec: Recorded = m ?? { kind: 'write', host: this.name, path, diff: '', created: false };
    if (!m) {
      rec.changed = true;
      if (r.backup) rec.backup = r.backup;
      if (opts?.mode !== undefined) (rec as { mode?: number }).mode = opts.mode;
    }
    this.record(rec);
    return r;
  }

  /** Several files: as the inner host writes them (one command on SshHost), each changed file recorded as a write; in a plan one writeFile after another (each with its diff). */
  async writeFiles(files: readonly BatchWrite[], opts: WriteFilesOptions = {}): Promise<WriteResult[]> {
    if (this.dry) return writeFilesOneByOne(this, files, opts);
    const rs = await writeFiles(this.inner, files, opts);
    rs.forEach((r, i) => {
      if (!r.changed) return;
      const f = files[i]!;
      const rec: Recorded = { kind: 'write', host: this.name, path: f.path, diff: '', created: false, changed: true };
      if (r.backup) rec.backup = r.backup;
      if (f.opts?.mode !== undefined) (rec as { mode?: number }).mode = f.opts.mode;
      this.record(rec);
    });
    return rs;
  }

  async remove(path: string, opts?: RemoveOptions): Promise<boolean> {
    const from = this.dry?.mutations.length ?? 0;
    const removed = await this.inner.remove(path, opts);
    if (removed)
      this.record(
        this.claim(from, (x) => x.kind === 'remove' && x.path === path) ?? {
          kind: 'remove',
          host: this.name,
          path,
          recursive: Boolean(opts?.recursive),
        },
      );
    return removed;
  }

  async mkdir(path: string, opts?: { mode?: number; sudo?: boolean }): Promise<void> {
    const from = this.dry?.mutations.length ?? 0;
    const existed = this.dry ? false : await this.inner.exists(path);
    await this.inner.mkdir(path, opts);
    if (this.dry) {
      const m = this.claim(from, (x) => x.kind === 'mkdir' && x.path === path);
      if (m) this.record(m);
    } else if (!existed) this.record({ kind: 'mkdir', host: this.name, path });
  }

  forward(port: number, host?: string): Promise<Forward> {
    return this.inner.forward(port, host);
  }

  connect(port: number, host?: string): Promise<Duplex> {
    return this.inner.connect(port, host);
  }

  /** Hosts are owned by the run, not the step: closing is a no-op here. */
  async close(): Promise<void> {}
}
