import { PeError, readFiles, writeFiles, type BatchWrite, type Host } from '@pe-stack/pe-host';
import type { Layout } from '@pe-stack/pe-config-files';
import { McoError } from './errors.js';
import type { Master } from './steps.js';

/** One of the files every master must share with the primary (pe3: the pe_secondary::mcollective list). */
export interface SharedFile {
  /** Stable id pairing the file across masters whose layouts differ: `pe-internal-broker/privateKey`, `credentials`. */
  id: string;
  path: string;
  kind: 'cert' | 'privateKey' | 'publicKey' | 'credentials';
  /** Private keys and credentials: never shown, never staged on disk, masked in plans. */
  secret: boolean;
}

/**
 * The MCollective PKI files (certificate, private key, public key of each
 * pe-internal-* name under the ssldir) and the credentials file of a layout.
 * Debian's psk setup has none.
 */
export function sharedFiles(layout: Layout): SharedFile[] {
  const out: SharedFile[] = [];
  for (const [name, e] of Object.entries(layout.mcollective.pki)) {
    out.push({ id: `${name}/cert`, path: e.cert, kind: 'cert', secret: false });
    out.push({ id: `${name}/privateKey`, path: e.privateKey, kind: 'privateKey', secret: true });
    out.push({ id: `${name}/publicKey`, path: e.publicKey, kind: 'publicKey', secret: false });
  }
  if (layout.mcollective.credentials) out.push({ id: 'credentials', path: layout.mcollective.credentials, kind: 'credentials', secret: true });
  return out;
}

/** What is known about a file on a host without reading it: a sha256 computed there, owner, group, mode. */
export interface FileFacts {
  path: string;
  exists: boolean;
  /** Kept for comparisons only; reports never print it. */
  sha256?: string;
  owner?: string;
  group?: string;
  mode?: number;
}

/** stat and sha256sum on the host, in one command (only hashes and attributes travel). Missing files are reported, not thrown. */
export async function fileFacts(host: Host, paths: readonly string[], opts: { sudo?: boolean } = {}): Promise<Map<string, FileFacts>> {
  const out = new Map<string, FileFacts>(paths.map((p) => [p, { path: p, exists: false }]));
  if (paths.length === 0) return out;
  const sudo = opts.sudo ?? true;
  // one command (one round trip): attributes of every path, then the sha256 of those that are regular files
  const script = [
    "stat -L -c '%U:%G:%a:%F:%n' -- \"$@\" 2>/dev/null",
    'echo "--sha256--"',
    'for p do shift; if [ -f "$p" ]; then set -- "$@" "$p"; fi; done',
    'if [ $# -gt 0 ]; then sha256sum -- "$@" 2>/dev/null; fi',
    'exit 0',
  ].join('\n');
  const r = await host.exec(['sh', '-c', script, 'sh', ...paths], { sudo, readOnly: true, allowFailure: true });
  const [statPart = '', sumPart = ''] = r.stdout.split('--sha256--\n');
  for (const line of statPart.split('\n')) {
    const m = /^([^:]*):([^:]*):([0-7]+):([^:]*):(.*)$/.exec(line);
    if (!m || !out.has(m[5]!) || (m[4] !== 'regular file' && m[4] !== 'regular empty file')) continue;
    out.set(m[5]!, { path: m[5]!, exists: true, owner: m[1]!, group: m[2]!, mode: parseInt(m[3]!, 8) });
  }
  for (const line of sumPart.split('\n')) {
    const m = /^\\?([0-9a-f]{64}) [ *](.*)$/.exec(line);
    if (m && out.get(m[2]!)?.exists) out.get(m[2]!)!.sha256 = m[1]!;
  }
  return out;
}

export interface FileComparison {
  id: string;
  path: string;
  /** `same`, or what differs (never the values of hashes or contents). */
  status: 'same' | 'missing-on-primary' | 'missing' | 'content-differs' | 'attributes-differ';
  detail?: string;
}

function modeText(m: number | undefined): string {
  return m === undefined ? '?' : `0${m.toString(8)}`;
}

/** Compare each shared file on a master with the primary's: content (by sha256, never shown), owner, group, mode. */
export async function compareSharedFiles(primary: Master, other: Master, opts: { sudo?: boolean } = {}): Promise<FileComparison[]> {
  return (await compareWithFacts(primary, other, opts)).cmp;
}

/** The comparison, and the facts of the primary's files it was made from. */
/** A comparison with the facts of the primary's files it was made from (compareWithFacts), to copy from without asking again. */
export interface SharedFilesComparison {
  cmp: FileComparison[];
  srcFacts: Map<string, FileFacts>;
}

export async function compareWithFacts(primary: Master, other: Master, opts: { sudo?: boolean } = {}): Promise<SharedFilesComparison> {
  const a = sharedFiles(primary.layout);
  const b = new Map(sharedFiles(other.layout).map((f) => [f.id, f]));
  const [fa, fb] = await Promise.all([
    fileFacts(primary.host, a.map((f) => f.path), opts),
    fileFacts(other.host, [...b.values()].map((f) => f.path), opts),
  ]);
  const cmp = a.map((f): FileComparison => {
    const theirs = b.get(f.id);
    const path = theirs?.path ?? f.path;
    const x = fa.get(f.path)!;
    const y = theirs ? fb.get(theirs.path)! : { path, exists: false };
    if (!x.exists) return { id: f.id, path, status: 'missing-on-primary' };
    if (!y.exists) return { id: f.id, path, status: 'missing' };
    if (x.sha256 === undefined || x.sha256 !== y.sha256) return { id: f.id, path, status: 'content-differs' };
    if (x.owner !== y.owner || x.group !== y.group || x.mode !== y.mode) {
      return { id: f.id, path, status: 'attributes-differ', detail: `${y.owner}:${y.group} ${modeText(y.mode)}, the primary has ${x.owner}:${x.group} ${modeText(x.mode)}` };
    }
    return { id: f.id, path, status: 'same' };
  });
  return { cmp, srcFacts: fa };
}

export interface CopyReport {
  copied: string[];
  unchanged: string[];
}

function dirOf(p: string): string {
  const i = p.lastIndexOf('/');
  return i <= 0 ? '/' : p.slice(0, i);
}

/**
 * Copy the shared files from the primary to a master, host to host: each
 * file is read into this process's memory from the primary and written on
 * the master (atomic, with the primary's owner, group and mode), then the
 * buffer is zeroed. Nothing touches the controller's disk; private keys and
 * credentials are passed as secrets so a DryRunHost plan masks them (old and
 * new content). A missing parent directory is created with the primary's
 * directory owner and mode. Files already identical are left alone.
 */
export async function copySharedFiles(primary: Master, target: Master, opts: { sudo?: boolean; compared?: SharedFilesComparison } = {}): Promise<CopyReport> {
  const sudo = opts.sudo ?? true;
  // `compared`: a comparison the caller has just made (a step's check), not asked for again
  const { cmp, srcFacts } = opts.compared ?? (await compareWithFacts(primary, target, { sudo }));
  const src = new Map(sharedFiles(primary.layout).map((f) => [f.id, f]));
  const missingAtSource = cmp.filter((c) => c.status === 'missing-on-primary');
  if (missingAtSource.length > 0) {
    throw new McoError('E_MCO_COPY', `the primary lacks ${missingAtSource.map((c) => src.get(c.id)!.path).join(', ')}.`, {
      host: primary.host.name,
      hint: 'Is this host really the primary (the MCollective CA)? Its puppet agent run creates these files.',
    });
  }
  const report: CopyReport = { copied: [], unchanged: [] };
  const todo = cmp.filter((c) => {
    if (c.status === 'same') report.unchanged.push(c.path);
    return c.status !== 'same';
  });
  if (todo.length === 0) return report;
  // parent directories once each (a directory holding one of the files exists); owner and group names resolved on the target once each
  const present = new Set(cmp.filter((c) => c.status !== 'missing').map((c) => dirOf(c.path)));
  for (const dir of new Set(todo.map((c) => dirOf(c.path)))) {
    if (present.has(dir)) continue;
    const c = todo.find((x) => dirOf(x.path) === dir)!;
    await ensureDir(primary.host, dirOf(src.get(c.id)!.path), target.host, dir, sudo);
  }
  const ids = await resolveIds(target.host, todo.map((c) => srcFacts.get(src.get(c.id)!.path)!), sudo);
  const fail = (what: string, e: unknown) =>
    // the cause may be a low-level error; the message names the file only
    new McoError('E_MCO_COPY', `copying ${what} from ${primary.host.name} to ${target.host.name} failed${e instanceof PeError ? ` (${e.code})` : ''}.`, {
      host: target.host.name,
      cause: e instanceof PeError ? e : undefined,
      hint: 'Nothing else was changed; check permissions and disk space on both hosts, then rerun.',
    });
  // every file's bytes from the primary in one command, the target's old secrets (masked in plans) in one more,
  // then every file written in one (atomic each, with the primary's owner, group and mode); the buffers are zeroed after
  const buffers: Buffer[] = [];
  try {
    const read = async (host: Host, paths: string[]): Promise<Map<string, Buffer>> => {
      const out = new Map<string, Buffer>();
      if (paths.length === 0) return out;
      const got = await readFiles(host, paths, { sudo });
      for (const p of paths) {
        const d = got.get(p)?.data ?? (await host.readFile(p, { sudo })); // changed while read, or large: on its own
        buffers.push(d);
        out.set(p, d);
      }
      return out;
    };
    let data: Map<string, Buffer>;
    let old: Map<string, Buffer>;
    try {
      data = await read(primary.host, todo.map((c) => src.get(c.id)!.path));
    } catch (e) {
      throw fail(todo.map((c) => c.id).join(', '), e);
    }
    try {
      old = await read(target.host, todo.filter((c) => src.get(c.id)!.secret && c.status !== 'missing').map((c) => c.path));
    } catch (e) {
      throw fail(todo.map((c) => c.id).join(', '), e);
    }
    const files: BatchWrite[] = todo.map((c) => {
      const s = src.get(c.id)!;
      const facts = srcFacts.get(s.path)!;
      const bytes = data.get(s.path)!;
      const secrets: string[] = [];
      if (s.secret) {
        for (const b of [bytes, old.get(c.path)]) if (b) secrets.push(b.toString('utf8'), b.toString('utf8').trim());
      }
      return { path: c.path, data: bytes, opts: { mode: facts.mode!, owner: ids.users.get(facts.owner!)!, group: ids.groups.get(facts.group!)!, secrets } };
    });
    try {
      await writeFiles(target.host, files, { sudo });
    } catch (e) {
      throw fail(todo.map((c) => c.id).join(', '), e);
    }
  } finally {
    for (const b of buffers) b.fill(0);
  }
  report.copied.push(...todo.map((c) => c.path));
  return report;
}

/** Numeric ids of the owners and groups on the target host (names are what travel; ids differ between hosts). */
async function resolveIds(host: Host, facts: FileFacts[], sudo: boolean): Promise<{ users: Map<string, number>; groups: Map<string, number> }> {
  const users = new Map<string, number>();
  const groups = new Map<string, number>();
  const names = { users: [...new Set(facts.map((f) => f.owner!))], groups: [...new Set(facts.map((f) => f.group!))] };
  if (names.users.length + names.groups.length === 0) return { users, groups };
  // one command (one round trip): a uid per user, then a gid per group ("?" when there is none), in order
  const script = [
    'for u do shift; [ "$u" = "--groups--" ] && break; id -u -- "$u" 2>/dev/null || echo "?"; done',
    'for g do echo "$(getent group -- "$g" 2>/dev/null | cut -d: -f3)"; done',
  ].join('\n');
  const r = await host.exec(['sh', '-c', script, 'sh', ...names.users, '--groups--', ...names.groups], { sudo, readOnly: true, allowFailure: true });
  const lines = r.stdout.split('\n');
  names.users.forEach((u, i) => {
    const v = lines[i]?.trim() ?? '';
    if (r.code !== 0 || !/^\d+$/.test(v)) throw new McoError('E_MCO_COPY', `the user ${u}, owner of the files on the primary, does not exist here.`, { host: host.name, hint: 'Install the same packages on every master (they create the users), then rerun.' });
    users.set(u, Number(v));
  });
  names.groups.forEach((g, i) => {
    const v = lines[names.users.length + i]?.trim() ?? '';
    if (r.code !== 0 || !/^\d+$/.test(v)) throw new McoError('E_MCO_COPY', `the group ${g} of the files on the primary does not exist here.`, { host: host.name, hint: 'Install the same packages on every master (they create the groups), then rerun.' });
    groups.set(g, Number(v));
  });
  return { users, groups };
}

async function ensureDir(src: Host, srcDir: string, dst: Host, dstDir: string, sudo: boolean): Promise<void> {
  if (await dst.exists(dstDir, { sudo })) return;
  const s = await src.stat(srcDir, { sudo });
  await dst.mkdir(dstDir, { sudo, mode: s?.mode ?? 0o755 });
  const owner = await src.exec(['stat', '-c', '%U:%G', '--', srcDir], { sudo, readOnly: true, allowFailure: true });
  const og = owner.stdout.trim();
  if (/^[a-z_][a-z0-9_-]*:[a-z_][a-z0-9_-]*$/.test(og)) await dst.exec(['chown', '--', og, dstDir], { sudo });
  if (s) await dst.exec(['chmod', '--', s.mode.toString(8), dstDir], { sudo });
}
