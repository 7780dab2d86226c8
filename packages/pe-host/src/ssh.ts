import { promises as fs } from 'node:fs';
import { parseStat } from './batch.js';
import { connect as netConnect, type Socket } from 'node:net';
import { PassThrough, type Duplex } from 'node:stream';
import {
  Client,
  type ClientChannel,
  type ConnectConfig,
  type ExecOptions as ExecOptions_,
  type FileEntry,
  type SFTPWrapper,
  type Stats,
} from 'ssh2';
import { readFiles, type BatchedFile, type ReadFilesOptions } from './batch.js';
import { execWriteFiles, type BatchWrite, type WriteFilesOptions } from './batch-write.js';
import {
  atomicWrite,
  commitStepwise,
  type CommitPlan,
  type FilePrimitives,
  type StepPrimitives,
  type TempHandle,
  PRIVATE_DIR_SH,
  UNSAFE_EXIT,
} from './atomic.js';
import { listenForward } from './forward.js';
import { assertRemovable, DEFAULT_TIMEOUT_MS, finish, sudoProblem, type RawResult } from './common.js';
import {
  AuthFailedError,
  CommandTimeoutError,
  FileNotFoundError,
  HostKeyChangedError,
  HostKeyRevokedError,
  HostKeyUnknownError,
  HostUnreachableError,
  HostError,
  PeError,
  PermissionDeniedError,
  SudoPasswordError,
  SudoTtyError,
  UnsafePathError,
} from './errors.js';
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
import { appendKnownHost, fingerprint, knownHostsName, readKnownHosts, verifyAgainstKnownHosts } from './knownhosts.js';
import { Redactor } from './redact.js';
import { buildRemoteCommand, type RemoteCommand } from './remote.js';
import { Semaphore } from './semaphore.js';
import { validateHostname, validateRemotePath } from './validate.js';

export interface SshHostConfig {
  /** Name used in messages and records (e.g. the FQDN from the inventory). */
  name: string;
  /** Address to connect to; default: name. */
  address?: string;
  port?: number;
  user?: string;
  /** Private key: a file path or the key itself. */
  privateKey?: string | Buffer;
  passphrase?: string;
  /** ssh-agent socket (default $SSH_AUTH_SOCK when no key is given). */
  agent?: string;
  /** OpenSSH known_hosts file (hashed entries supported). */
  knownHosts?: string;
  /** Pinned host key fingerprints (`SHA256:...`); either this or knownHosts must accept the key. */
  hostKeys?: string[];
  /** Explicit opt-in: accept an unknown key once and append it to knownHosts. A changed key is still refused. */
  trustOnFirstUse?: boolean;
  /** Password answered at sudo's prompt (on a pty). Treated as a secret. */
  sudoPassword?: string;
  /** Force a pty for sudo (requiretty hosts); detected automatically otherwise. */
  sudoTty?: boolean;
  connectTimeoutMs?: number;
  keepaliveIntervalMs?: number;
  /** Commands at once on the connection; sshd's MaxSessions is 10 and SFTP needs one. Default 8. */
  maxChannels?: number;
  /** A bastion to reach this host through (ProxyJump). */
  jump?: SshHostConfig | SshHost;
  redactor?: Redactor;
  /** ssh2's protocol trace (packet names, no payloads), for troubleshooting. */
  debug?: (message: string) => void;
}

interface ChannelExit {
  code: number | null;
  signal: string | undefined;
}

interface OpenChannel {
  ch: ClientChannel;
  exited: Promise<ChannelExit>;
}

/** What a command's channel gave back: its output, and a failure found on the way (sudo refused). */
interface ChannelOutput {
  out: Buffer[];
  err: Buffer[];
  failure: PeError | undefined;
}

/**
 * The remote `timeout` kills the command; this local timer is the fallback
 * when the host stops answering: the channel is killed and closed a few
 * seconds after the command's own timeout.
 */
function killAfter(ch: ClientChannel, timeoutMs: number): { timer: NodeJS.Timeout; timedOut: () => boolean } {
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      ch.signal('KILL');
    } catch {
      /* channel already gone */
    }
    ch.close();
  }, timeoutMs + 3000);
  return { timer, timedOut: () => timedOut };
}

/**
 * The commit through sudo, as root, in one program (see PRIVATE_DIR_SH for
 * why naming `new` in the private directory is race-free): the bytes from
 * stdin into `new`, fsync, owner, mode, the backup link, rename over the target.
 */
export const SUDO_COMMIT_SCRIPT = [
  'set -eu',
  'path=$1; mode=$2; owner=$3; backup=$4',
  'umask 077',
  'dir=${path%/*}; [ -n "$dir" ] || dir=/',
  PRIVATE_DIR_SH,
  'trap pe_leave EXIT',
  'pe_clean "$dir" "${path##*/}"',
  'pe_enter "$dir" "${path##*/}"',
  'cat > new',
  'sync -- new',
  'if [ -n "$owner" ]; then chown -- "$owner" new; fi',
  'chmod -- "$mode" new',
  'if [ -n "$backup" ]; then ln -P -- "$path" "$backup"; fi',
  'mv -fT -- new "$path"',
  'pe_leave',
  'sync -- "$dir" 2>/dev/null || true',
].join('\n');

/** Statistics a benchmark or a flow can report. */
export interface SshStats {
  connects: number;
  commands: number;
  peakChannels: number;
}

/**
 * What a failed command said: its stderr, or, on a pty (sudo with
 * requiretty), where stderr arrives mixed into stdout, the last line of its
 * stdout (only the last line: a command that failed half-way may have
 * printed file content first).
 */
function failureText(r: RawResult): string {
  const err = r.stderr.toString();
  if (err.trim()) return err;
  return r.stdout.toString().replace(/\r/g, '').trim().split('\n').at(-1)?.slice(0, 300) ?? '';
}

/**
 * A Host over one ssh2 connection: commands are channels on it (at most
 * maxChannels at once), files go over one SFTP session (or through sudo when
 * the login user is not root), host keys are pinned.
 */
export class SshHost implements Host {
  readonly name: string;
  readonly redactor: Redactor;
  readonly config: Readonly<SshHostConfig>;
  readonly stats: SshStats = { connects: 0, commands: 0, peakChannels: 0 };
  private conn: Promise<Client> | undefined;
  private sftpSession: Promise<SFTPWrapper> | undefined;
  private readonly channels: Semaphore;
  private readonly sftpLock = new Semaphore(1);
  private jumpHost: SshHost | undefined;
  private needsTty: boolean;
  private closed = false;

  constructor(config: SshHostConfig) {
    validateHostname(config.name);
    if (config.address) validateHostname(config.address);
    this.config = config;
    this.name = config.name;
    this.redactor = config.redactor ?? new Redactor();
    this.redactor.add(config.sudoPassword).add(config.passphrase);
    this.channels = new Semaphore(Math.min(Math.max(config.maxChannels ?? 8, 1), 9));
    this.needsTty = config.sudoTty ?? false;
  }

  get user(): string {
    return this.config.user ?? 'root';
  }

  private get isRoot(): boolean {
    return this.user === 'root';
  }

  /** Every command and file access runs as root (the login user is root): `sudo` makes no difference to what is seen. */
  get actsAsRoot(): boolean {
    return this.isRoot;
  }

  /** Opens the connection now (it is otherwise opened on first use). */
  async ready(): Promise<void> {
    await this.client();
  }

  private client(): Promise<Client> {
    if (this.closed)
      return Promise.reject(
        new HostError('E_CLOSED', 'the connection was closed by the program.', { host: this.name }),
      );
    if (!this.conn) {
      this.conn = this.handshake();
      this.conn.catch(() => (this.conn = undefined));
    }
    return this.conn;
  }

  private async socket(address: string, port: number, timeoutMs: number): Promise<Duplex> {
    const jump = this.config.jump;
    if (jump) {
      this.jumpHost = jump instanceof SshHost ? jump : new SshHost({ ...jump, redactor: this.redactor });
      return this.jumpHost.connect(port, address);
    }
    return new Promise<Socket>((resolve, reject) => {
      const s = netConnect({ host: address, port });
      s.setNoDelay(true);
      const timer = setTimeout(() => {
        s.destroy();
        reject(new HostUnreachableError(this.name, `no TCP connection to ${address}:${port} within ${timeoutMs} ms`));
      }, timeoutMs);
      s.once('connect', () => {
        clearTimeout(timer);
        resolve(s);
      });
      s.once('error', (e) => {
        clearTimeout(timer);
        reject(
          new HostUnreachableError(
            this.name,
            `${(e as NodeJS.ErrnoException).code ?? e.message} at ${address}:${port}`,
            e,
          ),
        );
      });
    });
  }

  private async handshake(): Promise<Client> {
    const address = this.config.address ?? this.name;
    const port = this.config.port ?? 22;
    const timeoutMs = this.config.connectTimeoutMs ?? 15_000;
    const names = [...new Set([knownHostsName(this.name, port), knownHostsName(address, port)])];
    const known = this.config.knownHosts ? await readKnownHosts(this.config.knownHosts) : [];
    let refusal: PeError | undefined;
    let tofu: Buffer | undefined;
    const verify = (key: Buffer): boolean => {
      const fp = fingerprint(key);
      const v = verifyAgainstKnownHosts(known, names, key);
      // a revoked key is refused even when the inventory pins its fingerprint
      if (!v.ok && v.reason === 'revoked') {
        refusal = new HostKeyRevokedError(this.name, fp, { file: this.config.knownHosts, line: v.line });
        return false;
      }
      if (this.config.hostKeys?.includes(fp)) return true;
      if (v.ok) return true;
      if (
        v.reason === 'unknown' &&
        !this.config.hostKeys?.length &&
        this.config.trustOnFirstUse &&
        this.config.knownHosts
      ) {
        tofu = key;
        return true;
      }
      const expected = [...(this.config.hostKeys ?? []), ...v.expected];
      refusal =
        v.reason === 'unknown' && expected.length === 0
          ? new HostKeyUnknownError(this.name, fp)
          : new HostKeyChangedError(this.name, fp, expected);
      return false;
    };
    const sock = await this.socket(address, port, timeoutMs);
    const cfg: ConnectConfig = {
      sock: sock as ConnectConfig['sock'],
      username: this.user,
      readyTimeout: timeoutMs,
      keepaliveInterval: this.config.keepaliveIntervalMs ?? 15_000,
      keepaliveCountMax: 3,
      hostVerifier: verify,
    };
    if (this.config.debug) cfg.debug = this.config.debug;
    if (this.config.privateKey !== undefined) {
      const k = this.config.privateKey;
      cfg.privateKey = Buffer.isBuffer(k) || k.includes('PRIVATE KEY') ? k : await fs.readFile(k);
      if (this.config.passphrase) cfg.passphrase = this.config.passphrase;
    } else {
      const agent = this.config.agent ?? process.env.SSH_AUTH_SOCK;
      if (agent) cfg.agent = agent;
    }
    const client = new Client();
    // ssh2 may emit more than one error for one failure (a timeout, then the
    // lost socket): keep a listener for good so none goes unhandled.
    client.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      client.once('ready', () => resolve());
      client.once('error', (e: Error & { level?: string }) => {
        sock.destroy();
        if (refusal) return reject(refusal);
        if (e.level === 'client-authentication') return reject(new AuthFailedError(this.name, this.user, e));
        if (/Timed out while waiting for handshake/.test(e.message)) {
          return reject(new HostUnreachableError(this.name, `no SSH handshake within ${timeoutMs} ms`, e));
        }
        reject(new HostUnreachableError(this.name, e.message, e));
      });
      client.connect(cfg);
    });
    this.stats.connects++;
    if (tofu && this.config.knownHosts)
      await appendKnownHost(this.config.knownHosts, knownHostsName(this.name, port), tofu);
    client.once('close', () => {
      this.conn = undefined;
      this.sftpSession = undefined;
    });
    return client;
  }

  private usePty(opts: ExecOptions): boolean {
    return Boolean(opts.sudo && !this.isRoot && (this.needsTty || this.config.sudoPassword !== undefined));
  }

  async exec(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const raw = await this.execRaw(argv, opts);
    return finish(this.name, argv, raw, { ...opts, sudo: opts.sudo && !this.isRoot }, this.redactor);
  }

  /** Like exec, but stdout/stderr stay Buffers and a non-zero exit is returned, not thrown. */
  async execRaw(argv: readonly string[], opts: ExecOptions = {}): Promise<RawResult> {
    const sudo = Boolean(opts.sudo) && !this.isRoot;
    const raw = await this.runChannel(argv, { ...opts, sudo }, { pty: this.usePty({ ...opts, sudo }) });
    if (sudo && !this.needsTty && raw.code !== 0 && sudoProblem(raw.stderr.toString()) === 'tty') {
      this.needsTty = true; // requiretty: every later sudo goes through a pty
      return this.runChannel(argv, { ...opts, sudo }, { pty: true });
    }
    return raw;
  }

  private async runChannel(argv: readonly string[], opts: ExecOptions, mode: { pty: boolean }): Promise<RawResult> {
    const { pty } = mode;
    const stdin =
      opts.stdin === undefined ? Buffer.alloc(0) : Buffer.isBuffer(opts.stdin) ? opts.stdin : Buffer.from(opts.stdin);
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const cmd = buildRemoteCommand(argv, {
      sudo: Boolean(opts.sudo),
      pty,
      timeoutMs,
      env: opts.env,
      cwd: opts.cwd,
      stdinLength: stdin.length,
    });
    const conn = await this.client();
    return this.channels.run(async () => {
      this.stats.commands++;
      this.stats.peakChannels = Math.max(this.stats.peakChannels, this.channels.peak);
      const t0 = performance.now();
      const { ch, exited } = await this.openExec(
        conn,
        cmd.line,
        pty ? { pty: { term: 'dumb', rows: 24, cols: 200, modes: { ECHO: 0 } } } : {},
      );
      const output: ChannelOutput = { out: [], err: [], failure: undefined };
      const deadline = killAfter(ch, timeoutMs);
      if (pty) this.talkThroughPty(ch, { cmd, stdin, output });
      else {
        ch.on('data', (b: Buffer) => output.out.push(b));
        ch.stderr.on('data', (b: Buffer) => output.err.push(b));
        ch.end(Buffer.concat([cmd.prelude, stdin]));
      }
      const { code, signal } = await exited;
      clearTimeout(deadline.timer);
      const ms = performance.now() - t0;
      this.judgeExit(argv, opts, { code, ms, timeoutMs, timedOut: deadline.timedOut(), pty, output });
      const { out, err } = output;
      return { code, signal, stdout: Buffer.concat(out), stderr: Buffer.concat(err), ms, timedOut: false };
    });
  }

  /**
   * pty mode: sudo's output (its password prompt, answered once with the
   * configured password) comes before the ready marker; after it, the
   * command's output, and only then is its stdin sent.
   */
  private talkThroughPty(ch: ClientChannel, o: { cmd: RemoteCommand; stdin: Buffer; output: ChannelOutput }): void {
    const { cmd, stdin, output } = o;
    let pending = Buffer.alloc(0);
    let prompts = 0;
    let ready = false;
    ch.on('data', (b: Buffer) => {
      if (ready) return void output.out.push(b);
      pending = Buffer.concat([pending, b]);
      const text = pending.toString('latin1');
      const r = text.indexOf(`${cmd.ready!}\n`);
      if (r >= 0) {
        ready = true;
        const rest = pending.subarray(r + cmd.ready!.length + 1);
        if (rest.length) output.out.push(rest);
        ch.write(Buffer.concat([cmd.prelude, stdin]));
        return;
      }
      const seen = text.split(cmd.prompt!).length - 1;
      if (seen > prompts) {
        prompts = seen;
        if (this.config.sudoPassword === undefined || prompts > 1) {
          output.failure = new SudoPasswordError(
            this.name,
            this.config.sudoPassword === undefined ? 'missing' : 'wrong',
          );
          ch.close();
        } else {
          ch.write(`${this.config.sudoPassword}\n`);
        }
      }
    });
    ch.stderr.on('data', (b: Buffer) => output.err.push(b));
  }

  /** Throws what the channel's end means when it is not the command's own exit: sudo refused, a timeout, no tty. */
  private judgeExit(
    argv: readonly string[],
    opts: ExecOptions,
    e: { code: number | null; ms: number; timeoutMs: number; timedOut: boolean; pty: boolean; output: ChannelOutput },
  ): void {
    const { code, ms, timeoutMs } = e;
    if (e.output.failure) throw e.output.failure;
    const redacted = this.redactor.with(opts.secrets ?? []).redactArgv(argv);
    if (e.timedOut || ((code === 124 || code === 137) && ms >= timeoutMs - 50))
      throw new CommandTimeoutError(this.name, redacted, timeoutMs);
    if (
      e.pty &&
      code !== 0 &&
      /sudo: (a terminal is required|sorry, you must have a tty)/.test(Buffer.concat(e.output.out).toString())
    ) {
      throw new SudoTtyError(this.name);
    }
  }

  /**
   * sshd frees a session slot only once it has reaped the session's child,
   * which can lag behind the channel close we saw; a new channel opened in
   * that gap is refused ("open failed") although we stay under MaxSessions.
   * Such refusals are retried with a short backoff.
   */
  private async openExec(conn: Client, line: string, options: ExecOptions_): Promise<OpenChannel> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await new Promise<OpenChannel>((resolve, reject) =>
          conn.exec(line, options, (err, ch) => {
            if (err) return reject(err);
            // ssh2 may parse the command's whole life (data, exit-status,
            // close) from one TCP read before our continuation runs: listen
            // for the exit right here, synchronously, or it is lost.
            const exited = new Promise<ChannelExit>((done) => {
              let code: number | null = null;
              let signal: string | undefined;
              ch.once('exit', (c: number | null, sig?: string) => {
                code = c;
                signal = sig ?? undefined;
              });
              ch.once('close', () => done({ code, signal }));
            });
            resolve({ ch, exited });
          }),
        );
      } catch (err) {
        if (attempt >= 40 || !/open failed/i.test((err as Error).message)) throw this.channelError(err as Error);
        await new Promise((r) => setTimeout(r, Math.min(5 * (attempt + 1), 100)));
      }
    }
  }

  private channelError(err: Error): HostError {
    return new HostError('E_CHANNEL', `could not open an SSH channel (${err.message}).`, {
      host: this.name,
      cause: err,
      hint: 'The server may limit sessions (MaxSessions); lower maxChannels.',
    });
  }

  async spawn(argv: readonly string[], opts: Omit<ExecOptions, 'stdin' | 'allowFailure'> = {}): Promise<StreamingExec> {
    const sudo = Boolean(opts.sudo) && !this.isRoot;
    if (this.usePty({ ...opts, sudo })) throw new SudoTtyError(this.name);
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const cmd = buildRemoteCommand(argv, { sudo, pty: false, timeoutMs, env: opts.env, cwd: opts.cwd, stdinLength: 0 });
    const conn = await this.client();
    const release = await this.channels.acquire();
    this.stats.commands++;
    const t0 = performance.now();
    let ch: ClientChannel;
    let exited: Promise<ChannelExit>;
    try {
      ({ ch, exited } = await this.openExec(conn, cmd.line, {}));
    } catch (e) {
      release();
      throw e;
    }
    if (cmd.prelude.length) ch.write(cmd.prelude);
    const stderrTail: Buffer[] = [];
    const stderr = new PassThrough();
    ch.stderr.on('data', (b: Buffer) => {
      stderrTail.push(b);
      if (stderrTail.length > 64) stderrTail.shift();
    });
    ch.stderr.pipe(stderr);
    const done = exited.then(({ code, signal }) => {
      release();
      const raw: RawResult = {
        code,
        signal,
        stdout: Buffer.alloc(0),
        stderr: Buffer.concat(stderrTail),
        ms: performance.now() - t0,
        timedOut: false,
      };
      return finish(this.name, argv, raw, { ...opts, sudo }, this.redactor);
    });
    return { stdin: ch, stdout: ch, stderr, done };
  }

  // ---- files --------------------------------------------------------------

  private fileSudo(opts: { sudo?: boolean } | undefined): boolean {
    return !this.isRoot && (opts?.sudo ?? true);
  }

  private sftp(): Promise<SFTPWrapper> {
    if (!this.sftpSession) {
      this.sftpSession = this.client().then(
        (c) =>
          new Promise<SFTPWrapper>((resolve, reject) =>
            c.sftp((err, s) => (err ? reject(this.channelError(err)) : resolve(s))),
          ),
      );
      this.sftpSession.catch(() => (this.sftpSession = undefined));
    }
    return this.sftpSession;
  }

  private sftpError(path: string, e: unknown): unknown {
    const code = (e as { code?: number }).code;
    if (code === 2) return new FileNotFoundError(this.name, path, e);
    if (code === 3) return new PermissionDeniedError(this.name, path, e);
    return e instanceof PeError
      ? e
      : new HostError('E_IO', `${path}: ${(e as Error).message}`, { host: this.name, cause: e });
  }

  private async sftpCall<T>(
    path: string,
    fn: (s: SFTPWrapper, cb: (err: Error | null | undefined, v?: T) => void) => void,
  ): Promise<T> {
    const s = await this.sftp();
    return new Promise<T>((resolve, reject) =>
      fn(s, (err, v) => (err ? reject(this.sftpError(path, err)) : resolve(v as T))),
    );
  }

  async readFile(path: string, opts?: ReadOptions): Promise<Buffer> {
    validateRemotePath(path);
    if (this.fileSudo(opts)) {
      const r = await this.execRaw(['cat', '--', path], { sudo: true, readOnly: true });
      if (r.code !== 0) throw this.shellFileError(path, r);
      return r.stdout;
    }
    return this.sftpCall<Buffer>(path, (s, cb) =>
      s.readFile(path, (e: Error | null | undefined, b?: Buffer) => cb(e, b)),
    );
  }

  private shellFileError(path: string, r: RawResult): HostError {
    const msg = failureText(r);
    if (/No such file/.test(msg)) return new FileNotFoundError(this.name, path);
    if (/Permission denied|Operation not permitted/.test(msg)) return new PermissionDeniedError(this.name, path);
    const problem = sudoProblem(msg);
    if (problem === 'password') return new SudoPasswordError(this.name, 'missing');
    if (problem === 'tty') return new SudoTtyError(this.name);
    return new HostError('E_IO', `${path}: ${this.redactor.redact(msg.trim()) || `exit ${r.code}`}`, {
      host: this.name,
    });
  }

  async stat(path: string, opts?: ReadOptions): Promise<FileStat | undefined> {
    validateRemotePath(path);
    if (this.fileSudo(opts)) {
      const r = await this.execRaw(['stat', '-c', '%s %a %u %g %Y %F', '--', path], { sudo: true, readOnly: true });
      if (r.code !== 0) {
        if (/No such file/.test(failureText(r))) return undefined;
        throw this.shellFileError(path, r);
      }
      return parseStat(r.stdout.toString().trim());
    }
    try {
      const st = await this.sftpCall<Stats>(path, (s, cb) => s.lstat(path, cb));
      return {
        size: st.size,
        mode: st.mode & 0o7777,
        uid: st.uid,
        gid: st.gid,
        mtimeMs: st.mtime * 1000,
        isFile: st.isFile(),
        isDirectory: st.isDirectory(),
        isSymlink: st.isSymbolicLink(),
      };
    } catch (e) {
      if (e instanceof FileNotFoundError) return undefined;
      throw e;
    }
  }

  async exists(path: string, opts?: ReadOptions): Promise<boolean> {
    return (await this.stat(path, opts)) !== undefined;
  }

  /** Many files' lstat and content in one command (one round trip): see `readFiles`. Sudo as for readFile. */
  readFiles(
    paths: readonly string[],
    opts: Omit<ReadFilesOptions, 'sudo'> & ReadOptions = {},
  ): Promise<Map<string, BatchedFile>> {
    return readFiles(this, paths, { ...opts, sudo: this.fileSudo(opts) });
  }

  /**
   * Many files written in ONE command (one round trip), each as writeFile
   * writes it (atomic, backup, owner and mode kept, no-op when equal): see
   * pe-host `writeFiles`. The bytes travel on the command's stdin. Sudo as for writeFile.
   */
  writeFiles(files: readonly BatchWrite[], opts: WriteFilesOptions = {}): Promise<WriteResult[]> {
    return execWriteFiles(this, files, {
      sudo: this.fileSudo(opts),
      ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}),
    });
  }

  async writeFile(path: string, data: string | Buffer, opts: WriteOptions = {}): Promise<WriteResult> {
    validateRemotePath(path);
    return atomicWrite(this.filePrimitives(this.fileSudo(opts)), path, data, opts);
  }

  private filePrimitives(sudo: boolean): FilePrimitives {
    const id = async (argv: string[]) =>
      Number((await this.exec(argv, { readOnly: true })).stdout.trim().split(':')[2] ?? NaN);
    const base = {
      host: this.name,
      lstat: (p: string) => this.stat(p, { sudo }),
      read: (p: string) => this.readFile(p, { sudo }),
      resolveUser: async (n: string) =>
        Number((await this.exec(['id', '-u', '--', n], { readOnly: true })).stdout.trim()),
      resolveGroup: (n: string) => id(['getent', 'group', n]),
    };
    return sudo ? { ...base, ...this.sudoFilePrimitives() } : { ...base, ...this.sftpFilePrimitives() };
  }

  private sudoFilePrimitives(): Omit<FilePrimitives, 'host' | 'lstat' | 'read' | 'resolveUser' | 'resolveGroup'> {
    const out = async (argv: string[]) => (await this.exec(argv, { sudo: true, readOnly: true })).stdout;
    return {
      readlink: async (p) => (await out(['readlink', '--', p])).replace(/\n$/, ''),
      realpath: async (p) => (await out(['readlink', '-f', '--', p])).replace(/\n$/, ''),
      writerUid: async () => 0,
      commit: (plan) => this.commitWithSudo(plan),
      list: async (dir) => {
        // name and mtime of each entry, NUL-separated: names may hold anything but NUL and /
        const r = await this.execRaw(['find', dir, '-mindepth', '1', '-maxdepth', '1', '-printf', '%f\\0%T@\\0'], {
          sudo: true,
          readOnly: true,
        });
        const parts = r.stdout.toString('utf8').split('\0');
        const entries: { name: string; mtimeMs: number }[] = [];
        for (let i = 0; i + 1 < parts.length; i += 2)
          entries.push({ name: parts[i]!, mtimeMs: Number(parts[i + 1]) * 1000 });
        return entries;
      },
      unlink: async (p) => void (await this.exec(['rm', '-f', '--', p], { sudo: true })),
    };
  }

  private sftpFilePrimitives(): Omit<FilePrimitives, 'host' | 'lstat' | 'read' | 'resolveUser' | 'resolveGroup'> {
    const call = <T>(p: string, fn: (s: SFTPWrapper, cb: (err: Error | null | undefined, v?: T) => void) => void) =>
      this.sftpCall<T>(p, fn);
    const steps: StepPrimitives = {
      createExclusive: (p) => this.sftpCreateExclusive(p),
      link: (a, b) => call(a, (s, cb) => s.ext_openssh_hardlink(a, b, cb)),
      rename: (a, b) => call(a, (s, cb) => s.ext_openssh_rename(a, b, cb)),
      unlink: (p) => call(p, (s, cb) => s.unlink(p, cb)),
    };
    return {
      readlink: (p) => call<string>(p, (s, cb) => s.readlink(p, cb)),
      realpath: (p) => call<string>(p, (s, cb) => s.realpath(p, cb)),
      writerUid: async () =>
        this.isRoot ? 0 : Number((await this.exec(['id', '-u'], { readOnly: true })).stdout.trim()),
      commit: (plan) => this.sftpLock.run(() => commitStepwise(steps, plan)),
      list: async (dir) =>
        (await call<FileEntry[]>(dir, (s, cb) => s.readdir(dir, cb))).map((e) => ({
          name: e.filename,
          mtimeMs: e.attrs.mtime * 1000,
        })),
      unlink: steps.unlink,
    };
  }

  /**
   * A new file over SFTP: SSH_FXF_CREAT|SSH_FXF_EXCL (sftp-server's open(2)
   * with O_CREAT|O_EXCL: never an existing entry, never through a symlink),
   * mode 0600; owner, mode and fsync go to the handle (fchown, fchmod,
   * fsync@openssh.com), never to the path.
   */
  private async sftpCreateExclusive(path: string): Promise<TempHandle> {
    const s = await this.sftp();
    const wrap = <T>(fn: (cb: (err: Error | null | undefined, v?: T) => void) => void) =>
      new Promise<T>((resolve, reject) => fn((err, v) => (err ? reject(this.sftpError(path, err)) : resolve(v as T))));
    const handle = await wrap<Buffer>((cb) => s.open(path, 'wx', { mode: 0o600 }, cb));
    return {
      write: async (data) => {
        for (let off = 0; off < data.length;) {
          const n = Math.min(32 * 1024, data.length - off);
          await wrap<void>((cb) => s.write(handle, data, off, n, off, cb));
          off += n;
        }
      },
      chown: (uid, gid) => wrap<void>((cb) => s.fchown(handle, uid, gid, cb)),
      chmod: (mode) => wrap<void>((cb) => s.fchmod(handle, mode, cb)),
      sync: () => wrap<void>((cb) => s.ext_openssh_fsync(handle, cb)),
      close: () => wrap<void>((cb) => s.close(handle, cb)).catch(() => undefined),
    };
  }

  /** One remote program does the whole commit as root (COMMIT_SH: a private directory, then owner, mode, backup, rename). */
  private async commitWithSudo(plan: CommitPlan): Promise<void> {
    // `uid:gid`, `uid` (group kept) or `:gid` (owner kept): chown reads `uid:` as uid and that user's login group, refused for a bare number
    const owner =
      plan.gid === undefined ? (plan.uid === undefined ? '' : `${plan.uid}`) : `${plan.uid ?? ''}:${plan.gid}`;
    const r = await this.execRaw(
      ['sh', '-c', SUDO_COMMIT_SCRIPT, 'sh', plan.path, plan.mode.toString(8), owner, plan.backup ?? ''],
      { sudo: true, stdin: plan.data },
    );
    if (r.code === UNSAFE_EXIT) throw new UnsafePathError(this.name, plan.path, failureText(r).trim());
    if (r.code !== 0) throw this.shellFileError(plan.path, r);
  }

  async remove(path: string, opts: RemoveOptions = {}): Promise<boolean> {
    validateRemotePath(path);
    const st = await this.stat(path, opts);
    if (!st) return false;
    if (st.isDirectory) assertRemovable(this.name, path);
    const argv = st.isDirectory
      ? opts.recursive
        ? ['rm', '-rf', '--', path]
        : ['rmdir', '--', path]
      : ['rm', '-f', '--', path];
    await this.exec(argv, { sudo: this.fileSudo(opts) });
    return true;
  }

  async mkdir(path: string, opts: { mode?: number; sudo?: boolean } = {}): Promise<void> {
    validateRemotePath(path);
    await this.exec(['mkdir', '-p', '-m', (opts.mode ?? 0o755).toString(8), '--', path], { sudo: this.fileSudo(opts) });
  }

  // ---- tunnels --------------------------------------------------------------

  async connect(port: number, host = '127.0.0.1'): Promise<Duplex> {
    const conn = await this.client();
    return new Promise<Duplex>((resolve, reject) =>
      conn.forwardOut('127.0.0.1', 0, host, port, (err, stream) =>
        err
          ? reject(new HostUnreachableError(this.name, `cannot open a tunnel to ${host}:${port} (${err.message})`, err))
          : resolve(stream),
      ),
    );
  }

  async forward(port: number, host = '127.0.0.1'): Promise<Forward> {
    await this.client();
    return listenForward(() => this.connect(port, host));
  }

  async close(): Promise<void> {
    this.closed = true;
    const c = this.conn;
    this.conn = undefined;
    this.sftpSession = undefined;
    if (c) {
      const client = await c.catch(() => undefined);
      if (client)
        await new Promise<void>((r) => {
          client.once('close', () => r());
          client.end();
          setTimeout(r, 1000).unref();
        });
    }
    if (this.jumpHost && !(this.config.jump instanceof SshHost)) await this.jumpHost.close();
  }
}
