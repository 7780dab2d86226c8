import type { Duplex } from 'node:stream';
import {
  FileNotFoundError,
  writeFiles,
  type BatchWrite,
  type BatchedFile,
  type ExecOptions,
  type ExecResult,
  type FileStat,
  type Forward,
  type Host,
  type ReadFilesOptions,
  type ReadOptions,
  type RemoveOptions,
  type StreamingExec,
  type WriteOptions,
  type WriteFilesOptions,
  type WriteResult,
} from '@pe-stack/pe-host';

/** A file a flow will read on a host: fetched with the others on the first miss (host.readFiles: one command on SshHost). */
export interface FileHint {
  path: string;
  /** false: only whether it exists and its attributes (private keys: their content never travels for a cache). */
  content?: boolean;
}

interface Entry {
  /** lstat: null = the path does not exist; undefined = not known. */
  stat?: FileStat | null;
  /** Content (symlinks followed), when known: only of the files the flow names with their content. */
  data?: Buffer;
  /** It exists (read or written), attributes unknown. */
  present?: boolean;
}

const numeric = (v: string | number | undefined): number | undefined =>
  typeof v === 'number' ? v : v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined;
const copyStat = (s: FileStat): FileStat => ({ ...s });

/**
 * What a run knows of the files on its hosts, so that the same file is not
 * read again by a step's check, its apply and its re-check (nor by the next
 * step). One `CachingHost` per host; they share this registry because a
 * command on one host can create files on another (an agent's request
 * stored by the CA): such a command makes every host forget what it knew to
 * be absent.
 *
 * Rules (correctness before savings):
 * - A command that is not `readOnly` (also spawn, tunnels) makes its host
 *   forget everything, before it starts and after it ends; while any change
 *   is in flight on a host nothing read there is kept. A command that
 *   declares `changesFiles` makes its host forget only those paths (and
 *   what lies below them, and symlinks), and no other host anything.
 * - A write keeps what it wrote as the file's content (and its attributes
 *   when they are certain); a write whose content and attributes are known
 *   to be equal already is answered without a round trip (no-op when equal,
 *   as Host.writeFile promises). Other writes go to the host unchanged:
 *   atomic, backup, owner and mode kept.
 * - Symlinks and paths whose type is unknown are forgotten after any write or
 *   removal (the target may have changed under another name).
 * - Content is kept only of the files the flow names (hints); of any other
 *   file only whether it exists (a private key read to be copied is not
 *   held longer than its reader holds it).
 * - Reads with `sudo: false` are answered only from what was read that way
 *   (what root may read, the login user may not), unless the host says every
 *   access of its is root's (SshHost `actsAsRoot`).
 * Tunnels (forward, connect) pass through: they reach services, not files.
 */
export class FileCache {
  private readonly hosts = new Set<CachingHost>();

  constructor(private readonly hints: (host: string) => readonly FileHint[] = () => []) {}

  wrap(inner: Host): CachingHost {
    const h = new CachingHost(inner, this.hints(inner.name), (from) => {
      for (const o of this.hosts) if (o !== from) o.forgetAbsent();
    });
    this.hosts.add(h);
    return h;
  }
}

export class CachingHost implements Host {
  private readonly entries = new Map<string, Entry & { priv: boolean }>();
  private gen = 0;
  /** Bumped when another host's command may have created files here: only what was read as absent meanwhile is dropped. */
  private absentGen = 0;
  private busy = 0;
  private filling: Promise<void> | undefined;
  private readonly keepContent: Set<string>;
  private readonly asRoot: boolean;
  /** Round trips saved (reads answered here), for tests and benchmarks. */
  readonly counts = { hits: 0, misses: 0, batches: 0, noopWrites: 0 };

  constructor(
    readonly inner: Host,
    private readonly hints: readonly FileHint[],
    private readonly othersMayChange: (from: CachingHost) => void,
  ) {
    // a host whose every access is root's (SshHost logged in as root): what sudo reads, a plain read sees too
    this.asRoot = inner.actsAsRoot;
    this.keepContent = new Set(hints.filter((h) => h.content !== false).map((h) => h.path));
  }

  get name(): string {
    return this.inner.name;
  }

  get redactor() {
    return this.inner.redactor;
  }

  get actsAsRoot(): boolean {
    return this.asRoot;
  }

  /** Passed on: fresh from the host (the cache answers readFile, stat and exists). */
  readFiles(paths: readonly string[], opts?: ReadFilesOptions): Promise<Map<string, BatchedFile>> {
    return this.inner.readFiles(paths, opts);
  }

  /** Forget what is known absent (another host ran a command that may have created files here). */
  forgetAbsent(): void {
    this.absentGen++;
    for (const [p, e] of this.entries) if (e.stat === null) this.entries.delete(p);
  }

  private forgetAll(): void {
    this.gen++;
    this.entries.clear();
  }

  /** Forget these paths and everything below them, and symlinks and paths of unknown type (they may point there). */
  private forgetUnder(paths: readonly string[]): void {
    this.forgetIndirect();
    const roots = paths.map((p) => p.replace(/\/+$/, '') || '/');
    for (const p of [...this.entries.keys()])
      if (roots.some((r) => r === '/' || p === r || p.startsWith(`${r}/`))) this.entries.delete(p);
  }

  /** Forget symlinks and paths of unknown type (a write or removal may have changed what they point at). */
  private forgetIndirect(): void {
    for (const [p, e] of this.entries) if (e.stat !== null && (!e.stat || e.stat.isSymlink)) this.entries.delete(p);
  }

  private known(path: string, opts?: ReadOptions): Entry | undefined {
    const e = this.entries.get(path);
    if (!e || (e.priv && opts?.sudo === false && !this.asRoot)) return undefined;
    return e;
  }

  private store(path: string, e: Entry, priv: boolean, gen: number, absentGen: number): void {
    if (gen !== this.gen || this.busy > 0) return;
    if (e.stat === null) {
      // another host's command ran while this was read: the file may exist now
      if (absentGen !== this.absentGen) return;
      this.entries.set(path, { stat: null, priv });
      return;
    }
    const old = this.entries.get(path);
    const m = { ...(old && old.priv === priv && old.stat !== null ? old : {}), ...e, priv };
    this.entries.set(path, m);
  }

  /** On a miss: the missing path and every hinted path not known yet, with one host.readFiles (when some are). */
  private async fill(path: string, opts?: ReadOptions): Promise<void> {
    if (this.busy > 0) return;
    if (this.filling) {
      await this.filling;
      if (this.known(path, opts)) return;
    }
    const missing = this.hints.filter((h) => !this.entries.has(h.path) && h.path !== path).map((h) => h.path);
    // nothing named is missing: one plain read or stat is as many round trips and lighter than a command
    if (missing.length === 0) return;
    const want = [path, ...missing];
    const statOnly = want.filter((p) => !this.keepContent.has(p));
    const gen = this.gen;
    const ag = this.absentGen;
    const run = (async () => {
      this.counts.batches++;
      const got = await this.inner.readFiles(want, {
        statOnly,
        ...(opts?.sudo === undefined ? {} : { sudo: opts.sudo }),
      });
      for (const f of got.values()) {
        if (f.unknown) continue;
        this.store(
          f.path,
          f.stat === undefined ? { stat: null } : { stat: f.stat, ...(f.data ? { data: f.data } : {}) },
          opts?.sudo !== false,
          gen,
          ag,
        );
      }
    })();
    this.filling = run;
    try {
      await run;
    } finally {
      if (this.filling === run) this.filling = undefined;
    }
  }

  async readFile(path: string, opts?: ReadOptions): Promise<Buffer> {
    const keep = this.keepContent.has(path);
    let e = this.known(path, opts);
    if (keep && !e?.data && e?.stat !== null) {
      await this.fill(path, opts);
      e = this.known(path, opts);
    }
    if (e?.stat === null) {
      this.counts.hits++;
      throw new FileNotFoundError(this.name, path);
    }
    if (e?.data) {
      this.counts.hits++;
      return Buffer.from(e.data); // a copy: callers may wipe what they got (secrets)
    }
    this.counts.misses++;
    const gen = this.gen;
    const ag = this.absentGen;
    const priv = opts?.sudo !== false;
    try {
      const data = await this.inner.readFile(path, opts);
      this.store(path, keep ? { data: Buffer.from(data) } : { present: true }, priv, gen, ag);
      return data;
    } catch (err) {
      if (err instanceof FileNotFoundError) this.store(path, { stat: null }, priv, gen, ag);
      throw err;
    }
  }

  async stat(path: string, opts?: ReadOptions): Promise<FileStat | undefined> {
    let e = this.known(path, opts);
    if (e?.stat === undefined) {
      await this.fill(path, opts);
      e = this.known(path, opts);
    }
    if (e?.stat !== undefined) {
      this.counts.hits++;
      return e.stat === null ? undefined : copyStat(e.stat);
    }
    this.counts.misses++;
    const gen = this.gen;
    const ag = this.absentGen;
    const st = await this.inner.stat(path, opts);
    this.store(path, { stat: st ?? null }, opts?.sudo !== false, gen, ag);
    return st;
  }

  async exists(path: string, opts?: ReadOptions): Promise<boolean> {
    const e = this.known(path, opts);
    if (e?.stat === null) {
      this.counts.hits++;
      return false;
    }
    if (e?.stat || e?.data || e?.present) {
      this.counts.hits++;
      return true;
    }
    return (await this.stat(path, opts)) !== undefined;
  }

  /** Runs a change: nothing read meanwhile is kept; `after` updates what is known once it is done (unless another change overlapped). */
  private async change<T>(
    fn: () => Promise<T>,
    after: (r: T, alone: boolean) => void,
    onError: () => void = () => this.forgetAll(),
  ): Promise<T> {
    this.busy++;
    const gen = ++this.gen;
    try {
      const r = await fn();
      after(r, gen === this.gen && this.busy === 1);
      return r;
    } catch (e) {
      onError();
      throw e;
    } finally {
      this.gen++;
      this.busy--;
    }
  }

  async exec(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    if (opts.readOnly) return this.inner.exec(argv, opts);
    const declared = opts.changesFiles;
    if (declared) {
      // the command says which files it may change: only those (and what lies below them) are forgotten, before and after
      const forget = () => this.forgetUnder(declared);
      forget();
      return this.change(() => this.inner.exec(argv, opts), forget, forget);
    }
    this.forgetAll();
    this.othersMayChange(this);
    return this.change(
      () => this.inner.exec(argv, opts),
      () => {
        this.forgetAll();
        this.othersMayChange(this);
      },
      () => {
        this.forgetAll();
        this.othersMayChange(this);
      },
    );
  }

  async spawn(argv: readonly string[], opts: Omit<ExecOptions, 'stdin' | 'allowFailure'> = {}): Promise<StreamingExec> {
    if (opts.readOnly) return this.inner.spawn(argv, opts);
    this.forgetAll();
    this.othersMayChange(this);
    this.busy++;
    let s: StreamingExec;
    try {
      s = await this.inner.spawn(argv, opts);
    } catch (e) {
      this.busy--;
      throw e;
    }
    // the command runs until `done`: nothing is kept meanwhile, everything forgotten after
    const settle = () => {
      this.busy--;
      this.forgetAll();
      this.othersMayChange(this);
    };
    s.done.then(settle, settle);
    return s;
  }

  /** The file is known to hold these bytes with these attributes already (a write would be a no-op). */
  private knownEqual(path: string, buf: Buffer, opts: WriteOptions): boolean {
    const e = this.known(path, opts);
    if (!e?.data || !e.stat || this.busy !== 0) return false;
    const st = e.stat;
    const attrsKnown =
      !st.isSymlink || (opts.mode === undefined && opts.owner === undefined && opts.group === undefined);
    return (
      attrsKnown &&
      e.data.equals(buf) &&
      (opts.mode === undefined || opts.mode === st.mode) &&
      (opts.owner === undefined || numeric(opts.owner) === st.uid) &&
      (opts.group === undefined || numeric(opts.group) === st.gid)
    );
  }

  /** What is known of a file after this run wrote it (`old`: its lstat before, when known). */
  private wrote(
    path: string,
    buf: Buffer,
    opts: WriteOptions,
    old: FileStat | undefined,
    r: WriteResult,
    alone: boolean,
  ): void {
    if (!alone || r.path !== path) {
      this.entries.delete(path);
      return;
    }
    const uid = numeric(opts.owner);
    const gid = numeric(opts.group);
    // attributes as the atomic write decides them: given, else the old file's (kept), else 0644 and the writer
    const certain =
      old !== undefined &&
      old.isFile &&
      (opts.owner === undefined || uid !== undefined) &&
      (opts.group === undefined || gid !== undefined);
    const stat: FileStat | undefined = certain
      ? {
          ...old,
          size: buf.length,
          mode: opts.mode ?? old.mode,
          uid: uid ?? old.uid,
          gid: gid ?? old.gid,
          mtimeMs: r.changed ? Date.now() : old.mtimeMs,
        }
      : undefined;
    this.entries.set(path, {
      priv: opts.sudo !== false,
      present: true,
      ...(this.keepContent.has(path) ? { data: Buffer.from(buf) } : {}),
      ...(stat ? { stat } : {}),
    });
  }

  async writeFile(path: string, data: string | Buffer, opts: WriteOptions = {}): Promise<WriteResult> {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    if (this.knownEqual(path, buf, opts)) {
      this.counts.noopWrites++;
      return { path, changed: false };
    }
    const old = this.known(path, opts)?.stat ?? undefined;
    return this.change(
      () => this.inner.writeFile(path, buf, opts),
      (r, alone) => {
        this.forgetIndirect();
        for (const [p, x] of this.entries) if (x.stat === null) this.entries.delete(p); // a backup beside it now exists
        this.wrote(path, buf, opts, old, r, alone);
      },
      () => this.entries.delete(path),
    );
  }

  /**
   * Several files written together (pe-host `writeFiles`: one round trip on
   * a host that can): files known to be equal already are answered here, the
   * others written as writeFile writes them; what is known afterwards as for writeFile.
   */
  async writeFiles(files: readonly BatchWrite[], opts: WriteFilesOptions = {}): Promise<WriteResult[]> {
    const sudo = opts.sudo === undefined ? {} : { sudo: opts.sudo };
    const out: (WriteResult | undefined)[] = files.map(() => undefined);
    const todo: { i: number; buf: Buffer; o: WriteOptions; old: FileStat | undefined }[] = [];
    files.forEach((f, i) => {
      const buf = typeof f.data === 'string' ? Buffer.from(f.data) : f.data;
      const o: WriteOptions = { ...f.opts, ...sudo };
      if (this.knownEqual(f.path, buf, o)) {
        this.counts.noopWrites++;
        out[i] = { path: f.path, changed: false };
      } else todo.push({ i, buf, o, old: this.known(f.path, o)?.stat ?? undefined });
    });
    if (todo.length > 0) {
      const paths = new Set(todo.map((t) => files[t.i]!.path));
      const rs = await this.change(
        () =>
          writeFiles(
            this.inner,
            todo.map((t) => ({
              path: files[t.i]!.path,
              data: t.buf,
              ...(files[t.i]!.opts ? { opts: files[t.i]!.opts } : {}),
            })),
            opts,
          ),
        (rs, alone) => {
          this.forgetIndirect();
          for (const [p, x] of this.entries) if (x.stat === null) this.entries.delete(p);
          todo.forEach((t, k) => this.wrote(files[t.i]!.path, t.buf, t.o, t.old, rs[k]!, alone));
        },
        () => {
          for (const p of paths) this.entries.delete(p);
          this.forgetIndirect();
        },
      );
      todo.forEach((t, k) => (out[t.i] = rs[k]));
    }
    return out as WriteResult[];
  }

  async remove(path: string, opts?: RemoveOptions): Promise<boolean> {
    const ag = this.absentGen;
    return this.change(
      () => this.inner.remove(path, opts),
      (_r, alone) => {
        this.forgetIndirect();
        const under = `${path.replace(/\/+$/, '')}/`;
        for (const p of this.entries.keys()) if (p.startsWith(under)) this.entries.delete(p);
        // absent now, unless another host's command may have created it meanwhile
        if (alone && ag === this.absentGen) this.entries.set(path, { stat: null, priv: true });
        else this.entries.delete(path);
      },
      () => {
        const under = `${path.replace(/\/+$/, '')}/`;
        for (const p of this.entries.keys()) if (p === path || p.startsWith(under)) this.entries.delete(p);
        this.forgetIndirect();
      },
    );
  }

  async mkdir(path: string, opts?: { mode?: number; sudo?: boolean }): Promise<void> {
    return this.change(
      () => this.inner.mkdir(path, opts),
      () => {
        for (const [p, x] of this.entries) if (x.stat === null || p === path) this.entries.delete(p);
      },
    );
  }

  forward(port: number, host?: string): Promise<Forward> {
    return this.inner.forward(port, host);
  }

  connect(port: number, host?: string): Promise<Duplex> {
    return this.inner.connect(port, host);
  }

  /** Hosts are owned by the run's caller: closing is a no-op here. */
  async close(): Promise<void> {}
}
