// Helpers for this package's tests (excluded from the build).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import {
  DryRunHost,
  FileNotFoundError,
  LocalHost,
  readFiles,
  writeFiles as pehostWriteFiles,
  type BatchWrite,
  type BatchedFile,
  type ExecOptions,
  type ExecResult,
  type FileStat,
  type Forward,
  type Host,
  type ReadOptions,
  type RemoveOptions,
  type StreamingExec,
  type WriteFilesOptions,
  type WriteOptions,
  type WriteResult,
} from '@pe-stack/pe-host';
import { OpensslCa } from './ca-openssl.js';
import { OpensslAgent } from './enroll.js';

export async function tempDir(prefix: string): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `pe-certs-${prefix}-`));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** A small fast CA (EC keys) on LocalHost. */
export async function testCa(
  dir: string,
  name = 'primary.example.com',
  opts: { certDays?: number; crlDays?: number } = {},
): Promise<OpensslCa> {
  const host = new LocalHost({ name });
  return OpensslCa.init(host, join(dir, `ca-${name}`), {
    commonName: `Puppet CA: ${name}`,
    key: { type: 'ec' },
    ...opts,
  });
}

/** Enrols a node (EC key) with the CA: its ssldir ends up in Puppet layout with cert, key, ca.pem, crl.pem. */
export async function enrolNode(
  ca: OpensslCa,
  node: LocalHost,
  ssldir: string,
  certname: string,
  altNames: string[],
): Promise<OpensslAgent> {
  const agent = new OpensslAgent(ca, ssldir, { key: { type: 'ec' } });
  await agent.submit(node, certname, altNames);
  await ca.sign(certname, { allowed: altNames });
  await agent.fetch(node, certname);
  return agent;
}

/** The rejection of a promise that must fail; throws if it resolves. */
export async function failure<E = Error>(p: Promise<unknown>): Promise<E> {
  try {
    await p;
  } catch (e) {
    return e as E;
  }
  throw new Error('expected the operation to fail, but it succeeded');
}

export interface ScriptedReply {
  code?: number;
  stdout?: string;
  stderr?: string;
}

/**
 * LocalHost whose exec answers some commands from a script (keyed by the
 * argv joined with spaces, or by a predicate) and records every argv; other
 * commands and all file operations are real.
 */
export class ScriptedHost extends LocalHost {
  readonly calls: string[][] = [];
  private readonly script: {
    match: (argv: readonly string[]) => boolean;
    reply: (argv: readonly string[]) => ScriptedReply;
  }[] = [];

  on(
    match: string | ((argv: readonly string[]) => boolean),
    reply: ScriptedReply | ((argv: readonly string[]) => ScriptedReply),
  ): this {
    this.script.unshift({
      match: typeof match === 'string' ? (a) => a.join(' ') === match : match,
      reply: typeof reply === 'function' ? reply : () => reply,
    });
    return this;
  }

  override async exec(
    argv: readonly string[],
    opts: Parameters<LocalHost['exec']>[1] = {},
  ): ReturnType<LocalHost['exec']> {
    this.calls.push([...argv]);
    const s = this.script.find((x) => x.match(argv));
    if (!s) return super.exec(argv, opts);
    const r = s.reply(argv);
    const res = { code: r.code ?? 0, stdout: r.stdout ?? '', stderr: r.stderr ?? '', ms: 1 };
    if (res.code !== 0 && !opts.allowFailure) throw new Error(`scripted failure of ${argv.join(' ')}`);
    return res;
  }
}

// ---- round trips -------------------------------------------------------------------------------------------
// What pe-cluster's engine does to a step, reduced to what costs round trips: every operation that reaches a
// host is one (CountingHost), a run-wide file cache answers reads of the files it was told about (ModelFileCache,
// the rules of pe-cluster's FileCache: a batched read on a miss, a command forgets everything on its host and
// what other hosts knew absent, a command declaring `changesFiles` only those paths), and a step is check (the
// function against DryRunHosts that stop at the first change), apply, re-check (runStep).

/** Every operation that reaches the host is one round trip, logged as `host: what`. */
export class CountingHost implements Host {
  constructor(
    readonly inner: Host,
    readonly log: string[],
  ) {}
  get name(): string {
    return this.inner.name;
  }
  get redactor() {
    return this.inner.redactor;
  }
  private count(what: string): void {
    this.log.push(`${this.name}: ${what}`);
  }
  exec(argv: readonly string[], opts?: ExecOptions): Promise<ExecResult> {
    const script = argv[0] === 'sh' && argv[1] === '-c';
    this.count(
      `exec ${
        script
          ? `sh -c ${argv
              .slice(4)
              .map((a) => a.slice(a.lastIndexOf('/') + 1))
              .join(' ')
              .slice(0, 60)}`
          : argv.join(' ').slice(0, 60)
      }`,
    );
    return this.inner.exec(argv, opts);
  }
  spawn(argv: readonly string[], opts?: Omit<ExecOptions, 'stdin' | 'allowFailure'>): Promise<StreamingExec> {
    this.count(`spawn ${argv.join(' ').slice(0, 60)}`);
    return this.inner.spawn(argv, opts);
  }
  readFile(path: string, opts?: ReadOptions): Promise<Buffer> {
    this.count(`readFile ${path}`);
    return this.inner.readFile(path, opts);
  }
  writeFile(path: string, data: string | Buffer, opts?: WriteOptions): Promise<WriteResult> {
    this.count(`writeFile ${path}`);
    return this.inner.writeFile(path, data, opts);
  }
  /** As SshHost: several files written in one round trip. */
  async writeFiles(files: readonly BatchWrite[], opts: WriteFilesOptions = {}): Promise<WriteResult[]> {
    this.count(`writeFiles ${files.length}`);
    const out: WriteResult[] = [];
    for (const f of files)
      out.push(
        await this.inner.writeFile(f.path, f.data, {
          ...f.opts,
          ...(opts.sudo === undefined ? {} : { sudo: opts.sudo }),
        }),
      );
    return out;
  }
  /** As SshHost: many files read in one round trip. */
  readFiles(
    paths: readonly string[],
    opts: { statOnly?: readonly string[]; sudo?: boolean } = {},
  ): Promise<Map<string, BatchedFile>> {
    this.count(`readFiles ${paths.length}`);
    return readFiles(this.inner, paths, opts);
  }
  stat(path: string, opts?: ReadOptions): Promise<FileStat | undefined> {
    this.count(`stat ${path}`);
    return this.inner.stat(path, opts);
  }
  exists(path: string, opts?: ReadOptions): Promise<boolean> {
    this.count(`stat ${path}`);
    return this.inner.exists(path, opts);
  }
  remove(path: string, opts?: RemoveOptions): Promise<boolean> {
    this.count(`remove ${path}`);
    return this.inner.remove(path, opts);
  }
  mkdir(path: string, opts?: { mode?: number; sudo?: boolean }): Promise<void> {
    this.count(`mkdir ${path}`);
    return this.inner.mkdir(path, opts);
  }
  forward(port: number, host?: string): Promise<Forward> {
    return this.inner.forward(port, host);
  }
  connect(port: number, host?: string): Promise<Duplex> {
    return this.inner.connect(port, host);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

export interface TestFileHint {
  path: string;
  /** false: attributes only (private keys). */
  content?: boolean;
}

interface CacheEntry {
  /** null: absent; undefined: not known. */
  stat?: FileStat | null;
  data?: Buffer;
  present?: boolean;
}

/** The rules of pe-cluster's run-wide FileCache that decide round trips (a model for this package's tests). */
export class ModelFileCache {
  private readonly hosts = new Set<ModelCachingHost>();
  wrap(inner: CountingHost, hints: readonly TestFileHint[]): ModelCachingHost {
    const h = new ModelCachingHost(inner, hints, (from) => {
      for (const o of this.hosts) if (o !== from) o.forgetAbsent();
    });
    this.hosts.add(h);
    return h;
  }
}

export class ModelCachingHost implements Host {
  private readonly entries = new Map<string, CacheEntry>();
  private readonly content: Set<string>;
  constructor(
    readonly inner: CountingHost,
    private readonly hints: readonly TestFileHint[],
    private readonly othersMayChange: (from: ModelCachingHost) => void,
  ) {
    this.content = new Set(hints.filter((h) => h.content !== false).map((h) => h.path));
  }
  get name(): string {
    return this.inner.name;
  }
  get redactor() {
    return this.inner.redactor;
  }
  forgetAbsent(): void {
    for (const [p, e] of this.entries) if (e.stat === null) this.entries.delete(p);
  }
  private forgetAll(): void {
    this.entries.clear();
  }
  private forgetIndirect(): void {
    for (const [p, e] of this.entries) if (e.stat !== null && (!e.stat || e.stat.isSymlink)) this.entries.delete(p);
  }
  private forgetUnder(paths: readonly string[]): void {
    this.forgetIndirect();
    const roots = paths.map((p) => p.replace(/\/+$/, '') || '/');
    for (const p of [...this.entries.keys()])
      if (roots.some((r) => r === '/' || p === r || p.startsWith(`${r}/`))) this.entries.delete(p);
  }
  private filling: Promise<void> | undefined;
  /** On a miss: the path and every hinted path not known yet, in one batched read; concurrent misses wait for the one in flight. */
  private async fill(path: string, opts?: ReadOptions): Promise<void> {
    if (this.filling) {
      await this.filling;
      if (this.entries.has(path)) return;
    }
    const run = this.fillNow(path, opts);
    this.filling = run;
    try {
      await run;
    } finally {
      if (this.filling === run) this.filling = undefined;
    }
  }
  private async fillNow(path: string, opts?: ReadOptions): Promise<void> {
    const missing = this.hints.filter((h) => !this.entries.has(h.path) && h.path !== path).map((h) => h.path);
    if (missing.length === 0) return;
    const want = [path, ...missing];
    const got = await this.inner.readFiles(want, {
      statOnly: want.filter((p) => !this.content.has(p)),
      ...(opts?.sudo === undefined ? {} : { sudo: opts.sudo }),
    });
    for (const f of got.values()) {
      if (f.unknown) continue;
      this.entries.set(
        f.path,
        f.stat === undefined ? { stat: null } : { stat: f.stat, ...(f.data ? { data: f.data } : {}) },
      );
    }
  }
  async readFile(path: string, opts?: ReadOptions): Promise<Buffer> {
    let e = this.entries.get(path);
    if (this.content.has(path) && !e?.data && e?.stat !== null) {
      await this.fill(path, opts);
      e = this.entries.get(path);
    }
    if (e?.stat === null) throw new FileNotFoundError(this.name, path);
    if (e?.data) return Buffer.from(e.data);
    try {
      const data = await this.inner.readFile(path, opts);
      this.entries.set(path, this.content.has(path) ? { ...e, data: Buffer.from(data) } : { ...e, present: true });
      return data;
    } catch (err) {
      if (err instanceof FileNotFoundError) this.entries.set(path, { stat: null });
      throw err;
    }
  }
  async stat(path: string, opts?: ReadOptions): Promise<FileStat | undefined> {
    let e = this.entries.get(path);
    if (e?.stat === undefined) {
      await this.fill(path, opts);
      e = this.entries.get(path);
    }
    if (e?.stat !== undefined) return e.stat === null ? undefined : { ...e.stat };
    const st = await this.inner.stat(path, opts);
    this.entries.set(path, { ...e, stat: st ?? null });
    return st;
  }
  async exists(path: string, opts?: ReadOptions): Promise<boolean> {
    const e = this.entries.get(path);
    if (e?.stat === null) return false;
    if (e?.stat || e?.data || e?.present) return true;
    return (await this.stat(path, opts)) !== undefined;
  }
  async exec(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    if (opts.readOnly) return this.inner.exec(argv, opts);
    const declared = opts.changesFiles;
    const forget = () => {
      if (declared) this.forgetUnder(declared);
      else {
        this.forgetAll();
        this.othersMayChange(this);
      }
    };
    forget();
    try {
      return await this.inner.exec(argv, opts);
    } finally {
      forget();
    }
  }
  async spawn(argv: readonly string[], opts: Omit<ExecOptions, 'stdin' | 'allowFailure'> = {}): Promise<StreamingExec> {
    if (!opts.readOnly) {
      this.forgetAll();
      this.othersMayChange(this);
    }
    return this.inner.spawn(argv, opts);
  }
  private wrote(path: string, buf: Buffer): void {
    this.forgetIndirect();
    this.forgetAbsent(); // a backup beside it now exists
    const old = this.entries.get(path)?.stat ?? undefined;
    this.entries.set(path, {
      present: true,
      ...(this.content.has(path) ? { data: Buffer.from(buf) } : {}),
      ...(old ? { stat: { ...old, size: buf.length } } : {}),
    });
  }
  private equal(path: string, buf: Buffer, o: WriteOptions): boolean {
    const e = this.entries.get(path);
    return Boolean(e?.data && e.stat && e.data.equals(buf) && (o.mode === undefined || o.mode === e.stat.mode));
  }
  async writeFile(path: string, data: string | Buffer, opts: WriteOptions = {}): Promise<WriteResult> {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    if (this.equal(path, buf, opts)) return { path, changed: false };
    try {
      const r = await this.inner.writeFile(path, buf, opts);
      this.wrote(path, buf);
      return r;
    } catch (e) {
      this.entries.delete(path);
      throw e;
    }
  }
  async writeFiles(files: readonly BatchWrite[], opts: WriteFilesOptions = {}): Promise<WriteResult[]> {
    const todo = files.filter(
      (f) => !this.equal(f.path, typeof f.data === 'string' ? Buffer.from(f.data) : f.data, f.opts ?? {}),
    );
    const rs = await pehostWriteFiles(this.inner, todo, opts);
    todo.forEach((f) => this.wrote(f.path, typeof f.data === 'string' ? Buffer.from(f.data) : f.data));
    return files.map((f) => rs[todo.indexOf(f)] ?? { path: f.path, changed: false });
  }
  async remove(path: string, opts?: RemoveOptions): Promise<boolean> {
    try {
      return await this.inner.remove(path, opts);
    } finally {
      this.forgetUnder([path]);
      this.entries.set(path, { stat: null });
    }
  }
  async mkdir(path: string, opts?: { mode?: number; sudo?: boolean }): Promise<void> {
    try {
      await this.inner.mkdir(path, opts);
    } finally {
      this.forgetAbsent();
      this.entries.delete(path);
    }
  }
  forward(port: number, host?: string): Promise<Forward> {
    return this.inner.forward(port, host);
  }
  connect(port: number, host?: string): Promise<Duplex> {
    return this.inner.connect(port, host);
  }
  async close(): Promise<void> {}
}

class ProbeDone extends Error {}

/** pe-cluster's probe host: a DryRunHost that ends the probe at the first planned change. */
export class StoppingDryRunHost extends DryRunHost {
  private stop<T>(r: T): T {
    if (this.mutations.length > 0) throw new ProbeDone('a change is planned');
    return r;
  }
  override async exec(argv: readonly string[], opts?: ExecOptions): Promise<ExecResult> {
    return this.stop(await super.exec(argv, opts));
  }
  override async writeFile(path: string, data: string | Buffer, opts?: WriteOptions): Promise<WriteResult> {
    return this.stop(await super.writeFile(path, data, opts));
  }
  override async remove(path: string, opts?: RemoveOptions): Promise<boolean> {
    return this.stop(await super.remove(path, opts));
  }
  override async mkdir(path: string): Promise<void> {
    this.stop(await super.mkdir(path));
  }
}

/** A check as pe-cluster's ensureStep makes it: the function against stopping DryRunHosts; done when nothing would change. */
export async function probeDone<H extends Record<string, Host>>(
  hosts: H,
  fn: (h: H) => Promise<unknown>,
): Promise<boolean> {
  const dry = Object.fromEntries(
    Object.entries(hosts).map(([k, h]) => [k, new StoppingDryRunHost(h)]),
  ) as unknown as H & Record<string, StoppingDryRunHost>;
  try {
    await fn(dry);
  } catch (e) {
    if (Object.values(dry).every((d) => (d as StoppingDryRunHost).mutations.length === 0)) throw e;
  }
  return Object.values(dry).every((d) => (d as StoppingDryRunHost).mutations.length === 0);
}

export interface StepRoundTrips {
  check: string[];
  apply: string[];
  recheck: string[];
  /** What the check said. */
  checkDone: boolean;
  /** What the re-check said (must be true). */
  recheckDone: boolean;
}

/** check, apply (unless the check says done), re-check; the round trips of each phase. */
export async function runStep<H extends Record<string, Host>>(
  log: string[],
  hosts: H,
  fn: (h: H) => Promise<unknown>,
): Promise<StepRoundTrips> {
  const phase = async (f: () => Promise<unknown>) => {
    const from = log.length;
    await f();
    return log.slice(from);
  };
  let checkDone = false;
  let recheckDone = false;
  const check = await phase(async () => (checkDone = await probeDone(hosts, fn)));
  const apply = checkDone ? [] : await phase(() => fn(hosts));
  const recheck = checkDone ? [] : await phase(async () => (recheckDone = await probeDone(hosts, fn)));
  return { check, apply, recheck, checkDone, recheckDone: checkDone || recheckDone };
}
