// Helpers for this package's tests (excluded from the build).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalHost } from '@pe-stack/pe-host';
import { OpensslCa } from './ca-openssl.js';
import { OpensslAgent } from './enroll.js';

export async function tempDir(prefix: string): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `pe-certs-${prefix}-`));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** A small fast CA (EC keys) on LocalHost. */
export async function testCa(dir: string, name = 'primary.example.com', opts: { certDays?: number; crlDays?: number } = {}): Promise<OpensslCa> {
  const host = new LocalHost({ name });
  return OpensslCa.init(host, join(dir, `ca-${name}`), { commonName: `Puppet CA: ${name}`, key: { type: 'ec' }, ...opts });
}

/** Enrols a node (EC key) with the CA: its ssldir ends up in Puppet layout with cert, key, ca.pem, crl.pem. */
export async function enrolNode(ca: OpensslCa, node: LocalHost, ssldir: string, certname: string, altNames: string[]): Promise<OpensslAgent> {
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
  private readonly script: { match: (argv: readonly string[]) => boolean; reply: (argv: readonly string[]) => ScriptedReply }[] = [];

  on(match: string | ((argv: readonly string[]) => boolean), reply: ScriptedReply | ((argv: readonly string[]) => ScriptedReply)): this {
    this.script.unshift({ match: typeof match === 'string' ? (a) => a.join(' ') === match : match, reply: typeof reply === 'function' ? reply : () => reply });
    return this;
  }

  override async exec(argv: readonly string[], opts: Parameters<LocalHost['exec']>[1] = {}): ReturnType<LocalHost['exec']> {
    this.calls.push([...argv]);
    const s = this.script.find((x) => x.match(argv));
    if (!s) return super.exec(argv, opts);
    const r = s.reply(argv);
    const res = { code: r.code ?? 0, stdout: r.stdout ?? '', stderr: r.stderr ?? '', ms: 1 };
    if (res.code !== 0 && !opts.allowFailure) throw new Error(`scripted failure of ${argv.join(' ')}`);
    return res;
  }
}
