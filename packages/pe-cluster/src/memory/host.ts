import { PassThrough, Writable, type Duplex } from 'node:stream';
import {
  backupPath,
  CommandFailedError,
  FileNotFoundError,
  HostError,
  InvalidInputError,
  isProtectedPath,
  readFilesOneByOne,
  Redactor,
  validateRemotePath,
  writeFilesOneByOne,
  type BatchedFile,
  type BatchWrite,
  type ExecOptions,
  type ExecResult,
  type FileStat,
  type Forward,
  type Host,
  type ReadFilesOptions,
  type RemoveOptions,
  type StreamingExec,
  type WriteFilesOptions,
  type WriteOptions,
  type WriteResult,
} from '@pe-stack/pe-host';

/** A file as a MemoryHost holds it (and as `files` seeds it). */
export interface MemoryFile {
  content: string | Buffer;
  /** Permission bits; default 0o644. */
  mode?: number;
  /** A user name (from `users`) or a uid; default root. */
  owner?: string | number;
  /** A group name (from `groups`) or a gid; default root. */
  group?: string | number;
}

export interface MemoryHostOptions {
  /** The name in messages and records (the inventory name). */
  name: string;
  redactor?: Redactor;
  /** Files the host starts with, by absolute path; their directories exist too. */
  files?: Record<string, string | Buffer | MemoryFile>;
  /** User names and their uids for owners given by name (root is 0); an unknown name gets the next free id from 1000. */
  users?: Record<string, number>;
  /** Group names and their gids (root is 0); an unknown name gets the next free id from 1000. */
  groups?: Record<string, number>;
}

/** What a command reply sees: the command as a real host would have run it. */
export interface CommandCall {
  readonly argv: readonly string[];
  readonly sudo: boolean;
  readonly stdin: Buffer | undefined;
  /** The variables of `ExecOptions.env` (secrets: a reply may check them, never log them). */
  readonly env: Readonly<Record<string, string>>;
  readonly cwd: string | undefined;
  /** The host that runs it: a reply may read or change its files. */
  readonly host: MemoryHost;
}

/** A command's outcome; unset fields are code 0 and empty output. */
export interface CommandAnswer {
  code?: number;
  stdout?: string;
  stderr?: string;
}

/**
 * Which commands a reply answers: a prefix of argv (each string equal to the word at its place, each RegExp
 * matching it), or a predicate.
 */
export type CommandMatcher = readonly (string | RegExp)[] | ((call: CommandCall) => boolean);

/** A fixed answer, a stdout string (exit 0), or a function of the call. */
export type CommandReply = CommandAnswer | string | ((call: CommandCall) => CommandAnswer | Promise<CommandAnswer>);

/** One command the host was asked to run (argv masked by the host's redactor). */
export interface CommandRecord {
  argv: string[];
  sudo: boolean;
  code: number;
}

interface Node {
  kind: 'file' | 'dir';
  data: Buffer;
  mode: number;
  uid: number;
  gid: number;
  mtimeMs: number;
}

/** The exit status of a command no reply answers, as a shell's "command not found". */
export const UNANSWERED_EXIT = 127;

/**
 * A Host that lives in memory: files with their owner and mode, and commands
 * answered by replies registered with `onCommand` (the last registered match
 * wins; a command nothing answers exits 127, so `exec` throws
 * CommandFailedError as a real host would). Every access acts as root.
 * `commands` records what ran; `file(path)` shows what was written. Meant for
 * programmatic plans (wrap it in pe-host's DryRunHost, or pass it to
 * `Cluster` as `hostFactory`) and for tests of code that takes a Host.
 */
export class MemoryHost implements Host {
  readonly name: string;
  readonly redactor: Redactor;
  readonly actsAsRoot = true;
  /** Every command asked of the host, in order. */
  readonly commands: CommandRecord[] = [];
  private readonly nodes = new Map<string, Node>();
  private readonly replies: { matcher: CommandMatcher; reply: CommandReply }[] = [];
  private readonly users: Map<string, number>;
  private readonly groups: Map<string, number>;

  constructor(opts: MemoryHostOptions) {
    this.name = opts.name;
    this.redactor = opts.redactor ?? new Redactor();
    this.users = new Map(Object.entries({ root: 0, ...opts.users }));
    this.groups = new Map(Object.entries({ root: 0, ...opts.groups }));
    this.dirNode('/', 0o755);
    for (const [path, f] of Object.entries(opts.files ?? {})) this.setFile(path, f);
    this.onCommand(['true'], {});
  }

  /** Answers the commands `matcher` matches with `reply`; later registrations win over earlier ones. */
  onCommand(matcher: CommandMatcher, reply: CommandReply): this {
    this.replies.unshift({ matcher, reply });
    return this;
  }

  /** Puts a file in place (its directories too) without a record or a backup: the host's state before a run. */
  setFile(path: string, file: string | Buffer | MemoryFile): this {
    validateRemotePath(path);
    const f: MemoryFile = typeof file === 'string' || Buffer.isBuffer(file) ? { content: file } : file;
    this.ensureDirs(parentOf(path));
    this.nodes.set(path, {
      kind: 'file',
      data: Buffer.from(f.content),
      mode: f.mode ?? 0o644,
      uid: this.idOf(this.users, f.owner ?? 0),
      gid: this.idOf(this.groups, f.group ?? 0),
      mtimeMs: Date.now(),
    });
    return this;
  }

  /** A file's content and attributes as the host holds them now; undefined when there is no such file. */
  file(path: string): { content: Buffer; text: string; mode: number; uid: number; gid: number } | undefined {
    const n = this.nodes.get(path);
    if (n?.kind !== 'file') return undefined;
    return { content: n.data, text: n.data.toString('utf8'), mode: n.mode, uid: n.uid, gid: n.gid };
  }

  /** Every file path below `dir` (default: all), sorted. */
  paths(dir = '/'): string[] {
    const prefix = dir.endsWith('/') ? dir : `${dir}/`;
    return [...this.nodes]
      .filter(([p, n]) => n.kind === 'file' && p.startsWith(prefix))
      .map(([p]) => p)
      .sort();
  }

  /** The uid of a user name (as owners given by name are stored). */
  uidOf(user: string): number {
    return this.idOf(this.users, user);
  }

  /** The gid of a group name. */
  gidOf(group: string): number {
    return this.idOf(this.groups, group);
  }

  async exec(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const t0 = performance.now();
    const call = this.callOf(argv, opts);
    const answer = await this.answer(call);
    const r = this.redactor.with([...(opts.secrets ?? []), ...Object.values(opts.env ?? {})]);
    const code = answer.code ?? 0;
    this.commands.push({ argv: r.redactArgv(argv), sudo: call.sudo, code });
    const stdout = answer.stdout ?? '';
    const stderr = answer.stderr ?? '';
    if (code !== 0 && !opts.allowFailure)
      throw new CommandFailedError(this.name, r.redactArgv(argv), code, r.redact(stderr), r.redact(stdout));
    return { code, stdout, stderr, ms: performance.now() - t0 };
  }

  /** Answered as exec answers; what is written to stdin is accepted and dropped (no tar is emulated). */
  async spawn(argv: readonly string[], opts: Omit<ExecOptions, 'stdin' | 'allowFailure'> = {}): Promise<StreamingExec> {
    const r = await this.exec(argv, { ...opts, allowFailure: true });
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    stdout.end(r.stdout);
    stderr.end(r.stderr);
    const stdin = new Writable({ write: (_chunk, _enc, cb) => cb() });
    return { stdin, stdout, stderr, done: Promise.resolve({ ...r, stdout: '', stderr: '' }) };
  }

  readFiles(paths: readonly string[], opts?: ReadFilesOptions): Promise<Map<string, BatchedFile>> {
    return readFilesOneByOne(this, paths, opts);
  }

  writeFiles(files: readonly BatchWrite[], opts?: WriteFilesOptions): Promise<WriteResult[]> {
    return writeFilesOneByOne(this, files, opts);
  }

  async readFile(path: string): Promise<Buffer> {
    validateRemotePath(path);
    const n = this.nodes.get(path);
    if (!n) throw new FileNotFoundError(this.name, path);
    if (n.kind === 'dir') throw new HostError('E_IO', `${path}: is a directory.`, { host: this.name });
    return Buffer.from(n.data);
  }

  async stat(path: string): Promise<FileStat | undefined> {
    validateRemotePath(path);
    const n = this.nodes.get(path);
    if (!n) return undefined;
    const { mode, uid, gid, mtimeMs } = n;
    const isFile = n.kind === 'file';
    return { size: n.data.length, mode, uid, gid, mtimeMs, isFile, isDirectory: !isFile, isSymlink: false };
  }

  async exists(path: string): Promise<boolean> {
    return (await this.stat(path)) !== undefined;
  }

  /** As an atomic write: no change for equal bytes and attributes, the old content kept as a backup beside it. */
  async writeFile(path: string, data: string | Buffer, opts: WriteOptions = {}): Promise<WriteResult> {
    validateRemotePath(path);
    const parent = this.nodes.get(parentOf(path));
    if (parent?.kind !== 'dir') throw new FileNotFoundError(this.name, parentOf(path));
    const old = this.nodes.get(path);
    if (old?.kind === 'dir') throw new HostError('E_IO', `${path}: is a directory.`, { host: this.name });
    const next: Node = {
      kind: 'file',
      data: Buffer.from(data),
      mode: opts.mode ?? old?.mode ?? 0o644,
      uid: opts.owner === undefined ? (old?.uid ?? 0) : this.idOf(this.users, opts.owner),
      gid: opts.group === undefined ? (old?.gid ?? 0) : this.idOf(this.groups, opts.group),
      mtimeMs: Date.now(),
    };
    if (old && sameFile(old, next)) return { path, changed: false };
    const result: WriteResult = { path, changed: true };
    if (old && opts.backup !== false) {
      result.backup = backupPath(path);
      this.nodes.set(result.backup, { ...old });
    }
    this.nodes.set(path, next);
    return result;
  }

  async remove(path: string, opts: RemoveOptions = {}): Promise<boolean> {
    validateRemotePath(path);
    const n = this.nodes.get(path);
    if (!n) return false;
    if (n.kind === 'dir') {
      if (isProtectedPath(path))
        throw new InvalidInputError(`refusing to remove ${path}: it is too close to the root of the file system.`, {
          host: this.name,
        });
      const below = [...this.nodes.keys()].filter((p) => p.startsWith(`${path}/`));
      if (below.length && !opts.recursive)
        throw new HostError('E_IO', `${path}: the directory is not empty.`, { host: this.name });
      for (const p of below) this.nodes.delete(p);
    }
    this.nodes.delete(path);
    return true;
  }

  async mkdir(path: string, opts: { mode?: number } = {}): Promise<void> {
    validateRemotePath(path);
    if (this.nodes.get(path)?.kind === 'file')
      throw new HostError('E_IO', `${path}: a file is in the way of the directory.`, { host: this.name });
    this.ensureDirs(path, opts.mode);
  }

  /** A memory host has no network. */
  async forward(port: number, host = '127.0.0.1'): Promise<Forward> {
    throw this.noNetwork(port, host);
  }

  async connect(port: number, host = '127.0.0.1'): Promise<Duplex> {
    throw this.noNetwork(port, host);
  }

  /** Nothing to release; files and records stay readable after close. */
  async close(): Promise<void> {}

  private noNetwork(port: number, host: string): HostError {
    return new HostError('E_CHANNEL', `a memory host has no network: cannot reach ${host}:${port}.`, {
      host: this.name,
      hint: 'Answer the command that would use the connection with onCommand instead.',
    });
  }

  private callOf(argv: readonly string[], opts: ExecOptions): CommandCall {
    const stdin = opts.stdin === undefined ? undefined : Buffer.from(opts.stdin);
    return { argv: [...argv], sudo: Boolean(opts.sudo), stdin, env: { ...opts.env }, cwd: opts.cwd, host: this };
  }

  private async answer(call: CommandCall): Promise<CommandAnswer> {
    const found = this.replies.find((r) => matches(r.matcher, call));
    if (!found)
      return {
        code: UNANSWERED_EXIT,
        stderr: `memory host ${this.name}: no answer for \`${call.argv[0] ?? ''}\` (register one with onCommand)\n`,
      };
    const { reply } = found;
    if (typeof reply === 'string') return { stdout: reply };
    return typeof reply === 'function' ? reply(call) : reply;
  }

  private ensureDirs(path: string, mode = 0o755): void {
    if (path !== '/') this.ensureDirs(parentOf(path));
    const n = this.nodes.get(path);
    if (n?.kind === 'file') throw new HostError('E_IO', `${path}: is a file, not a directory.`, { host: this.name });
    if (!n) this.dirNode(path, mode);
  }

  private dirNode(path: string, mode: number): void {
    this.nodes.set(path, { kind: 'dir', data: Buffer.alloc(0), mode, uid: 0, gid: 0, mtimeMs: Date.now() });
  }

  private idOf(ids: Map<string, number>, who: string | number): number {
    if (typeof who === 'number') return who;
    let id = ids.get(who);
    if (id === undefined) {
      id = Math.max(999, ...ids.values()) + 1;
      ids.set(who, id);
    }
    return id;
  }
}

function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

function sameFile(a: Node, b: Node): boolean {
  return a.data.equals(b.data) && a.mode === b.mode && a.uid === b.uid && a.gid === b.gid;
}

function matches(matcher: CommandMatcher, call: CommandCall): boolean {
  if (typeof matcher === 'function') return matcher(call);
  if (matcher.length > call.argv.length) return false;
  return matcher.every((m, i) => {
    const word = call.argv[i]!;
    return typeof m === 'string' ? m === word : m.test(word);
  });
}
