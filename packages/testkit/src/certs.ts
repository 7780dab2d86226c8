// Test support for pe-certs: small fast CAs and enrolled nodes on LocalHost, scripted hosts, and round trips of a
// join step counted under pe-steps' engine.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import {
  LocalHost,
  readFiles,
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
import { OpensslAgent, OpensslCa } from '@pe-stack/pe-certs';
import { ensureStep, runFlow, type EnsureHosts, type Step } from '@pe-stack/pe-steps';

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
// A join step measured as pe-cluster's join runs it: pe-steps' ensureStep (its check a probe that stops at the
// first planned change) run by pe-steps' engine, over hosts that count every operation reaching them (CountingHost)
// behind the test's pe-steps FileCache.

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
  get actsAsRoot(): boolean {
    return this.inner.actsAsRoot;
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

export interface StepRoundTrips {
  check: string[];
  apply: string[];
  recheck: string[];
  /** What the check said. */
  checkDone: boolean;
  /** What the re-check said (must be true). */
  recheckDone: boolean;
}

/**
 * `fn` as one step of a flow run by pe-steps' engine on these hosts (the step's own host is the first): check, apply
 * (unless the check says done), re-check; the round trips of each phase. `fn` gets the hosts under the same keys, as
 * the engine hands them to the step (probing DryRunHosts for a check).
 */
export async function runStep<H extends Record<string, Host>>(
  log: string[],
  hosts: H,
  fn: (h: H) => Promise<unknown>,
): Promise<StepRoundTrips> {
  const byName = new Map(Object.values(hosts).map((h) => [h.name, h]));
  const bound = (e: EnsureHosts) =>
    Object.fromEntries(Object.entries(hosts).map(([k, h]) => [k, e.hostFor(h.name)])) as H;
  const step = ensureStep('step', Object.values(hosts)[0]!.name, 'the step measured', (e) => fn(bound(e)), {
    stopAtFirstChange: true,
  });
  const rt: StepRoundTrips = { check: [], apply: [], recheck: [], checkDone: false, recheckDone: false };
  let checks = 0;
  const measured: Step = {
    ...step,
    check: async (ctx) => {
      const from = log.length;
      const r = await step.check(ctx);
      if (checks++ === 0) [rt.check, rt.checkDone] = [log.slice(from), r.done];
      else [rt.recheck, rt.recheckDone] = [log.slice(from), r.done];
      return r;
    },
    apply: async (ctx) => {
      const from = log.length;
      await step.apply(ctx);
      rt.apply = log.slice(from);
    },
  };
  const r = await runFlow({ name: 'round-trips', items: [measured] }, { host: (name) => byName.get(name)! });
  // a re-check that still says "to do" is reported (recheckDone false); any other failure is the test's
  if (r.error && r.error.code !== 'E_VERIFY') throw Object.assign(new Error(r.error.message), r.error);
  if (rt.checkDone) rt.recheckDone = true;
  return rt;
}
