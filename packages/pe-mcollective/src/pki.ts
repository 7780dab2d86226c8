import { DryRunHost, PeError, readFiles, writeFiles, type BatchWrite, type Host } from '@pe-stack/pe-host';
import type { Layout } from '@pe-stack/pe-config-files';
import { McoError } from './errors.js';
import type { Master } from './cluster.js';

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
  if (layout.mcollective.credentials)
    out.push({ id: 'credentials', path: layout.mcollective.credentials, kind: 'credentials', secret: true });
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

/** What one facts command found on a host: its files, which directories exist, and user and group ids by name. */
export interface HostFacts {
  files: Map<string, FileFacts>;
  /** Each directory asked about: whether it exists (as a directory). */
  dirs: Map<string, boolean>;
  /** Numeric ids by name: the names asked about (`undefined`: no such user/group there), the login user's, and the owners of the files seen. */
  users: Map<string, number | undefined>;
  groups: Map<string, number | undefined>;
}

// One command (one round trip): ids of the users and groups asked for (and the login user's), the attributes of every
// path with numeric and named owners, then the sha256 of those that are regular files. Only hashes and attributes travel.
const FACTS_SCRIPT = [
  'nu=$1; ng=$2; shift 2',
  'while [ "$nu" -gt 0 ]; do printf \'u\\t%s\\t%s\\n\' "$1" "$(id -u -- "$1" 2>/dev/null)"; shift; nu=$((nu - 1)); done',
  'while [ "$ng" -gt 0 ]; do printf \'g\\t%s\\t%s\\n\' "$1" "$(getent group -- "$1" 2>/dev/null | cut -d: -f3)"; shift; ng=$((ng - 1)); done',
  'printf \'u\\t%s\\t%s\\ng\\t%s\\t%s\\n\' "$(id -un)" "$(id -u)" "$(id -gn)" "$(id -g)"',
  'echo "--stat--"',
  'stat -L -c \'%u:%g:%U:%G:%a:%F:%n\' -- "$@" 2>/dev/null',
  'echo "--sha256--"',
  'for p do shift; if [ -f "$p" ]; then set -- "$@" "$p"; fi; done',
  'if [ $# -gt 0 ]; then sha256sum -- "$@" 2>/dev/null; fi',
  'exit 0',
].join('\n');

/**
 * Facts of files (and directories, users, groups) on a host in ONE read-only
 * command: attributes and a sha256 computed there for each path (missing
 * files are reported, not thrown), whether each of `dirs` exists, and the
 * numeric ids of `users` and `groups` there.
 */
export async function hostFacts(
  host: Host,
  paths: readonly string[],
  opts: { sudo?: boolean; dirs?: readonly string[]; users?: readonly string[]; groups?: readonly string[] } = {},
): Promise<HostFacts> {
  const files = new Map<string, FileFacts>(paths.map((p) => [p, { path: p, exists: false }]));
  const dirs = new Map<string, boolean>((opts.dirs ?? []).map((d) => [d, false]));
  const users = new Map<string, number | undefined>();
  const groups = new Map<string, number | undefined>();
  const names = (xs: readonly string[] | undefined) =>
    [...new Set(xs ?? [])].filter((n) => /^[A-Za-z0-9_][A-Za-z0-9_.-]*\$?$/.test(n));
  const us = names(opts.users);
  const gs = names(opts.groups);
  const all = [...new Set([...paths, ...dirs.keys()])];
  if (all.length === 0 && us.length + gs.length === 0) return { files, dirs, users, groups };
  const r = await host.exec(
    ['sh', '-c', FACTS_SCRIPT, 'sh', String(us.length), String(gs.length), ...us, ...gs, ...all],
    { sudo: opts.sudo ?? true, readOnly: true, allowFailure: true },
  );
  const out = r.stdout.replace(/\r/g, '');
  const [idPart = '', rest = ''] = out.split('--stat--\n');
  const [statPart = '', sumPart = ''] = rest.split('--sha256--\n');
  for (const line of idPart.split('\n')) {
    const m = /^([ug])\t([^\t]*)\t(\d*)$/.exec(line);
    if (!m || m[2] === '') continue;
    (m[1] === 'u' ? users : groups).set(m[2]!, m[3] === '' ? undefined : Number(m[3]));
  }
  for (const line of statPart.split('\n')) {
    const m = /^(\d+):(\d+):([^:]*):([^:]*):([0-7]+):([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    const [, uid, gid, owner, group, mode, type, path] = m as unknown as [
      string,
      string,
      string,
      string,
      string,
      string,
      string,
      string,
    ];
    // names seen on the host's own files exist there
    if (owner !== 'UNKNOWN' && !users.has(owner)) users.set(owner, Number(uid));
    if (group !== 'UNKNOWN' && !groups.has(group)) groups.set(group, Number(gid));
    if (type === 'directory' && dirs.has(path)) dirs.set(path, true);
    if (!files.has(path) || (type !== 'regular file' && type !== 'regular empty file')) continue;
    files.set(path, { path, exists: true, owner, group, mode: parseInt(mode, 8) });
  }
  for (const line of sumPart.split('\n')) {
    const m = /^\\?([0-9a-f]{64}) [ *](.*)$/.exec(line);
    if (m && files.get(m[2]!)?.exists) files.get(m[2]!)!.sha256 = m[1]!;
  }
  return { files, dirs, users, groups };
}

/** stat and sha256sum on the host, in one command (only hashes and attributes travel). Missing files are reported, not thrown. */
export async function fileFacts(
  host: Host,
  paths: readonly string[],
  opts: { sudo?: boolean } = {},
): Promise<Map<string, FileFacts>> {
  if (paths.length === 0) return new Map();
  return (await hostFacts(host, paths, opts)).files;
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
export async function compareSharedFiles(
  primary: Master,
  other: Master,
  opts: { sudo?: boolean } = {},
): Promise<FileComparison[]> {
  return (await compareWithFacts(primary, other, opts)).cmp;
}

/**
 * A comparison with what it was made from (compareWithFacts): the facts of
 * the primary's files, to copy from without asking again, and what the
 * target's own command found besides (its directories, the ids of the users
 * and groups that may own the files), so the copy asks nothing more there.
 */
export interface SharedFilesComparison {
  cmp: FileComparison[];
  srcFacts: Map<string, FileFacts>;
  target?: Omit<HostFacts, 'files'>;
}

/**
 * Compare each shared file on a master with the primary's, one command on
 * each (in parallel). The target's command also tells whether the files'
 * directories exist and the ids of the layout's users and groups there (what
 * a copy needs). With `srcFacts` (the primary's facts from a comparison made
 * moments ago, e.g. a re-check right after a copy) only the target is asked.
 */
export async function compareWithFacts(
  primary: Master,
  other: Master,
  opts: { sudo?: boolean; srcFacts?: Map<string, FileFacts> } = {},
): Promise<SharedFilesComparison> {
  const a = sharedFiles(primary.layout);
  const b = new Map(sharedFiles(other.layout).map((f) => [f.id, f]));
  const targetPaths = [...b.values()].map((f) => f.path);
  const owners = Object.values(other.layout.users).filter((u): u is { user: string; group: string } => u !== undefined);
  const sudo = opts.sudo === undefined ? {} : { sudo: opts.sudo };
  const [fa, tb] = await Promise.all([
    opts.srcFacts ??
      fileFacts(
        primary.host,
        a.map((f) => f.path),
        sudo,
      ),
    hostFacts(other.host, targetPaths, {
      ...sudo,
      dirs: [...new Set(targetPaths.map(dirOf))],
      users: ['root', ...owners.map((o) => o.user)],
      groups: ['root', ...owners.map((o) => o.group)],
    }),
  ]);
  const fb = tb.files;
  const cmp = a.map((f): FileComparison => {
    const theirs = b.get(f.id);
    const path = theirs?.path ?? f.path;
    const x = fa.get(f.path) ?? { path: f.path, exists: false };
    const y = theirs ? fb.get(theirs.path)! : { path, exists: false };
    if (!x.exists) return { id: f.id, path, status: 'missing-on-primary' };
    if (!y.exists) return { id: f.id, path, status: 'missing' };
    if (x.sha256 === undefined || x.sha256 !== y.sha256) return { id: f.id, path, status: 'content-differs' };
    if (x.owner !== y.owner || x.group !== y.group || x.mode !== y.mode) {
      return {
        id: f.id,
        path,
        status: 'attributes-differ',
        detail: `${y.owner}:${y.group} ${modeText(y.mode)}, the primary has ${x.owner}:${x.group} ${modeText(x.mode)}`,
      };
    }
    return { id: f.id, path, status: 'same' };
  });
  return { cmp, srcFacts: fa, target: { dirs: tb.dirs, users: tb.users, groups: tb.groups } };
}

export interface CopyReport {
  copied: string[];
  unchanged: string[];
}

function dirOf(p: string): string {
  const i = p.lastIndexOf('/');
  return i <= 0 ? '/' : p.slice(0, i);
}

export interface CopySharedFilesOptions {
  sudo?: boolean;
  /** A comparison the caller has just made (a step's check), not asked for again. */
  compared?: SharedFilesComparison;
  dryRun?: boolean;
}

/** One copy under way: the files still to copy and what the comparison already knows about both hosts. */
interface CopyJob {
  primary: Master;
  target: Master;
  sudo: boolean;
  /** The primary's shared files by id. */
  src: Map<string, SharedFile>;
  srcFacts: Map<string, FileFacts>;
  todo: FileComparison[];
  known: SharedFilesComparison['target'];
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
export async function copySharedFiles(
  primary: Master,
  target: Master,
  opts: CopySharedFilesOptions = {},
): Promise<CopyReport> {
  const sudo = opts.sudo ?? true;
  // `compared`: a comparison the caller has just made (a step's check), not asked for again
  const { cmp, srcFacts, target: known } = opts.compared ?? (await compareWithFacts(primary, target, { sudo }));
  const src = new Map(sharedFiles(primary.layout).map((f) => [f.id, f]));
  assertPrimaryHasAll(primary, cmp, src);
  const report: CopyReport = { copied: [], unchanged: [] };
  const todo = cmp.filter((c) => {
    if (c.status === 'same') report.unchanged.push(c.path);
    return c.status !== 'same';
  });
  if (todo.length === 0) return report;
  const job: CopyJob = { primary, target, sudo, src, srcFacts, todo, known };
  await ensureTargetDirs(job, cmp);
  await transferFiles(job, { dryRun: opts.dryRun });
  report.copied.push(...todo.map((c) => c.path));
  return report;
}

function assertPrimaryHasAll(primary: Master, cmp: FileComparison[], src: Map<string, SharedFile>): void {
  const missingAtSource = cmp.filter((c) => c.status === 'missing-on-primary');
  if (missingAtSource.length > 0) {
    throw new McoError(
      'E_MCO_COPY',
      `the primary lacks ${missingAtSource.map((c) => src.get(c.id)!.path).join(', ')}.`,
      {
        host: primary.host.name,
        hint: 'Is this host really the primary (the MCollective CA)? Its puppet agent run creates these files.',
      },
    );
  }
}

async function ensureTargetDirs({ primary, target, sudo, src, todo, known }: CopyJob, cmp: FileComparison[]) {
  // parent directories once each (a directory holding one of the files exists); owner and group names resolved on the target once each
  // (the comparison's command on the target said which directories exist and resolved the usual owners' ids there)
  const present = new Set(cmp.filter((c) => c.status !== 'missing').map((c) => dirOf(c.path)));
  for (const [d, exists] of known?.dirs ?? []) if (exists) present.add(d);
  for (const dir of new Set(todo.map((c) => dirOf(c.path)))) {
    if (present.has(dir)) continue;
    const c = todo.find((x) => dirOf(x.path) === dir)!;
    await ensureDir({
      from: { host: primary.host, dir: dirOf(src.get(c.id)!.path) },
      to: { host: target.host, dir },
      sudo,
      knownAbsent: known?.dirs.has(dir) === true,
    });
  }
}

function copyFailed(job: CopyJob, e: unknown): McoError {
  const what = job.todo.map((c) => c.id).join(', ');
  // the cause may be a low-level error; the message names the file only
  return new McoError(
    'E_MCO_COPY',
    `copying ${what} from ${job.primary.host.name} to ${job.target.host.name} failed${e instanceof PeError ? ` (${e.code})` : ''}.`,
    {
      host: job.target.host.name,
      cause: e instanceof PeError ? e : undefined,
      hint: 'Nothing else was changed; check permissions and disk space on both hosts, then rerun.',
    },
  );
}

/** Run one part of a copy; a failure becomes the copy's error. */
async function orCopyFailed<T>(job: CopyJob, part: () => Promise<T>): Promise<T> {
  try {
    return await part();
  } catch (e) {
    throw copyFailed(job, e);
  }
}

async function transferFiles(job: CopyJob, opts: { dryRun: boolean | undefined }): Promise<void> {
  const { primary, target, sudo, src, todo } = job;
  const ids = await resolveIds(
    target.host,
    todo.map((c) => job.srcFacts.get(src.get(c.id)!.path)!),
    sudo,
    job.known,
  );
  // every file's bytes from the primary in one command, the target's old secrets (masked in plans) in one more,
  // then every file written in one (atomic each, with the primary's owner, group and mode); the buffers are zeroed after
  const buffers: Buffer[] = [];
  try {
    const read = (host: Host, paths: string[]) => readIntoBuffers(host, paths, { sudo, buffers });
    const data = await orCopyFailed(job, () =>
      read(
        primary.host,
        todo.map((c) => src.get(c.id)!.path),
      ),
    );
    const old = await orCopyFailed(job, () =>
      // the target's old secrets only mask a plan's diff (a DryRunHost diffs old and new): not read in a real run
      opts.dryRun === false && !(target.host instanceof DryRunHost)
        ? Promise.resolve(new Map<string, Buffer>())
        : read(
            target.host,
            todo.filter((c) => src.get(c.id)!.secret && c.status !== 'missing').map((c) => c.path),
          ),
    );
    const files = batchWrites(job, { ids, data, old });
    await orCopyFailed(job, () => writeFiles(target.host, files, { sudo }));
  } finally {
    for (const b of buffers) b.fill(0);
  }
}

/** The files' bytes in one command, each buffer also kept in `buffers` to be zeroed by the caller. */
async function readIntoBuffers(
  host: Host,
  paths: string[],
  opts: { sudo: boolean; buffers: Buffer[] },
): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  if (paths.length === 0) return out;
  const got = await readFiles(host, paths, { sudo: opts.sudo });
  for (const p of paths) {
    const d = got.get(p)?.data ?? (await host.readFile(p, { sudo: opts.sudo })); // changed while read, or large: on its own
    opts.buffers.push(d);
    out.set(p, d);
  }
  return out;
}

/** Each file to write with the primary's mode, owner and group (ids on the target), secrets for masking. */
function batchWrites(
  { src, srcFacts, todo }: CopyJob,
  read: {
    ids: { users: Map<string, number>; groups: Map<string, number> };
    data: Map<string, Buffer>;
    old: Map<string, Buffer>;
  },
): BatchWrite[] {
  return todo.map((c) => {
    const s = src.get(c.id)!;
    const facts = srcFacts.get(s.path)!;
    const bytes = read.data.get(s.path)!;
    const secrets: string[] = [];
    if (s.secret) {
      for (const b of [bytes, read.old.get(c.path)]) if (b) secrets.push(b.toString('utf8'), b.toString('utf8').trim());
    }
    return {
      path: c.path,
      data: bytes,
      opts: {
        mode: facts.mode!,
        owner: read.ids.users.get(facts.owner!)!,
        group: read.ids.groups.get(facts.group!)!,
        secrets,
      },
    };
  });
}

/** Numeric ids of the owners and groups on the target host (names are what travel; ids differ between hosts). */
async function resolveIds(
  host: Host,
  facts: FileFacts[],
  sudo: boolean,
  known?: Pick<HostFacts, 'users' | 'groups'>,
): Promise<{ users: Map<string, number>; groups: Map<string, number> }> {
  const users = new Map<string, number>();
  const groups = new Map<string, number>();
  const missingUser = (u: string) =>
    new McoError('E_MCO_COPY', `the user ${u}, owner of the files on the primary, does not exist here.`, {
      host: host.name,
      hint: 'Install the same packages on every master (they create the users), then rerun.',
    });
  const missingGroup = (g: string) =>
    new McoError('E_MCO_COPY', `the group ${g} of the files on the primary does not exist here.`, {
      host: host.name,
      hint: 'Install the same packages on every master (they create the groups), then rerun.',
    });
  // names the comparison's command already resolved on this host cost nothing more
  const take = (
    names: string[],
    got: Map<string, number | undefined> | undefined,
    into: Map<string, number>,
    missing: (n: string) => Error,
  ): string[] =>
    names.filter((n) => {
      if (!got?.has(n)) return true;
      const id = got.get(n);
      if (id === undefined) throw missing(n);
      into.set(n, id);
      return false;
    });
  const names = {
    users: take([...new Set(facts.map((f) => f.owner!))], known?.users, users, missingUser),
    groups: take([...new Set(facts.map((f) => f.group!))], known?.groups, groups, missingGroup),
  };
  if (names.users.length + names.groups.length === 0) return { users, groups };
  // one command (one round trip): a uid per user, then a gid per group ("?" when there is none), in order
  const script = [
    'for u do shift; [ "$u" = "--groups--" ] && break; id -u -- "$u" 2>/dev/null || echo "?"; done',
    'for g do echo "$(getent group -- "$g" 2>/dev/null | cut -d: -f3)"; done',
  ].join('\n');
  const r = await host.exec(['sh', '-c', script, 'sh', ...names.users, '--groups--', ...names.groups], {
    sudo,
    readOnly: true,
    allowFailure: true,
  });
  const lines = r.stdout.split('\n');
  names.users.forEach((u, i) => {
    const v = lines[i]?.trim() ?? '';
    if (r.code !== 0 || !/^\d+$/.test(v)) throw missingUser(u);
    users.set(u, Number(v));
  });
  names.groups.forEach((g, i) => {
    const v = lines[names.users.length + i]?.trim() ?? '';
    if (r.code !== 0 || !/^\d+$/.test(v)) throw missingGroup(g);
    groups.set(g, Number(v));
  });
  return { users, groups };
}

/** A directory created on the target like the primary's: mode, then owner and group when the names are plain. */
async function ensureDir(opts: {
  from: { host: Host; dir: string };
  to: { host: Host; dir: string };
  sudo: boolean;
  /** The target's directories were just listed and this one was not there: no need to ask again. */
  knownAbsent: boolean;
}): Promise<void> {
  const { from, to, sudo } = opts;
  if (!opts.knownAbsent && (await to.host.exists(to.dir, { sudo }))) return;
  const s = await from.host.stat(from.dir, { sudo });
  await to.host.mkdir(to.dir, { sudo, mode: s?.mode ?? 0o755 });
  const owner = await from.host.exec(['stat', '-c', '%U:%G', '--', from.dir], {
    sudo,
    readOnly: true,
    allowFailure: true,
  });
  const og = owner.stdout.trim();
  if (/^[a-z_][a-z0-9_-]*:[a-z_][a-z0-9_-]*$/.test(og)) await to.host.exec(['chown', '--', og, to.dir], { sudo });
  if (s) await to.host.exec(['chmod', '--', s.mode.toString(8), to.dir], { sudo });
}
