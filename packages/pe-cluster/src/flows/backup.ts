import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { fileOf, type Layout } from '@pe-stack/pe-config-files';
import { backupCa, restoreCa, verifyCaArchive } from '@pe-stack/pe-certs';
import {
  asDbUser,
  dbFilesFromLayout,
  instanceFromLayout,
  isInRecovery,
  readCredentials,
  type PgInstance,
} from '@pe-stack/pe-db';
import { validateRemotePath, type Host } from '@pe-stack/pe-host';
import { childEnv } from '../child-env.js';
import { BackupError } from '../errors.js';
import type { Inventory } from '../inventory.js';
import {
  assertKeyOutside,
  backupKeyPath,
  checkMacFile,
  loadBackupKey,
  writeMacFile,
  type BackupKey,
} from './backup-key.js';

/** tar on the controller, with the allow-listed environment (no sudo password or key data in it). */
const run = promisify(execFile);

/** What backup and restore need of a Cluster. */
export interface BackupContext {
  readonly inventory: Inventory;
  host(name: string): Host;
  /** The PostgreSQL instance of a master (default: the layout's); tests pass throwaway clusters. */
  pgInstance?(name: string, host: Host): PgInstance;
}

export interface BackupManifest {
  version: 1;
  cluster: string;
  layout: string;
  /** The master the backup was taken from (the primary: CA, credentials, database). */
  host: string;
  created: string;
  /** Relative path in the archive -> sha256 and size. MANIFEST.json itself is not listed. */
  members: Record<string, { sha256: string; bytes: number }>;
  /** Where each credentials file goes back (archive member -> path on the master). */
  credentials: Record<string, string>;
  /** Database dumps (archive member -> database name). */
  databases: Record<string, string>;
  /** The CA archive and its pe-certs manifest, inside this archive. */
  ca?: { archive: string; manifest: string; cadir: string };
}

export interface BackupResult {
  archive: string;
  /** `<archive>.sha256` (sha256sum format): integrity of a copy only, anyone can recompute it. */
  checksumFile: string;
  /** `<archive>.hmac`: the HMAC-SHA256 of the archive with the controller's backup key; restore requires it. */
  hmacFile: string;
  /** The key file the archive was authenticated with. */
  keyFile: string;
  sha256: string;
  manifest: BackupManifest;
  ms: number;
}

function stamp(d: Date): string {
  return d.toISOString().replace(/[-:.]/g, '');
}

async function sha256File(path: string): Promise<{ sha256: string; bytes: number }> {
  const h = createHash('sha256');
  let bytes = 0;
  for await (const b of createReadStream(path)) {
    h.update(b as Buffer);
    bytes += (b as Buffer).length;
  }
  return { sha256: h.digest('hex'), bytes };
}

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walk(p)));
    else if (e.isFile()) out.push(p);
  }
  return out.sort();
}

export interface BackupOptions {
  /** The master to back up (default: the inventory's primary). */
  from?: string;
  /** Directory of the archive (default: the inventory's backups). */
  dir?: string;
  /** Leave out the database dump (CA and credentials only). */
  noDatabase?: boolean;
  /** The backup key file (default `<state>/<cluster>.backup-key`, made at the first backup). */
  keyFile?: string;
  now?: Date;
}

/**
 * The CA (pe-certs backupCa: a tar of the CA directory with a sha256 manifest
 * read as it streamed), the credentials files (PuppetDB's database settings,
 * MCollective's) and a `pg_dump -Fc` of every database the services use,
 * taken from the primary into one timestamped tar on the controller (mode
 * 0600: it holds the CA key and passwords) with `MANIFEST.json` inside (the
 * sha256 of every member), `<archive>.hmac` beside it (HMAC-SHA256 with the
 * controller's backup key, made here at the first backup, kept outside the
 * backup directory) and `<archive>.sha256` (integrity of copies only).
 */
export async function backupCluster(c: BackupContext, opts: BackupOptions = {}): Promise<BackupResult> {
  const t0 = performance.now();
  const inv = c.inventory;
  const node = inv.masters.find((m) => m.name === (opts.from ?? inv.primary.name));
  if (!node) throw new BackupError(`${opts.from} is not a master of ${inv.file}.`);
  const now = opts.now ?? new Date();
  const outDir = opts.dir ?? inv.backupDir;
  await fs.mkdir(outDir, { recursive: true, mode: 0o700 });
  // the key first: a backup that could not be restored is not taken
  const keyFile = backupKeyPath(inv, opts.keyFile);
  await assertKeyOutside(keyFile, { trees: [inv.backupDir], dirs: [outDir] });
  const key = await loadBackupKey(keyFile, { create: true });
  const host = c.host(node.name);
  const name = `pe-cluster-${inv.cluster.replace(/[^A-Za-z0-9._-]/g, '_')}-${stamp(now)}`;
  const staging = await fs.mkdtemp(join(outDir, `.${name}.`));
  await fs.chmod(staging, 0o700);
  try {
    const manifest: BackupManifest = {
      version: 1,
      cluster: inv.cluster,
      layout: inv.layout.name,
      host: node.name,
      created: now.toISOString(),
      members: {},
      credentials: {},
      databases: {},
    };
    const from: Staging = { host, sudo: node.sudo, node: node.name, dir: staging, manifest };
    await stageCa(from, inv.layout, now);
    await stageCredentials(from, inv.layout);
    if (!opts.noDatabase)
      await stageDatabases(from, inv, c.pgInstance?.(node.name, host) ?? instanceFromLayout(host, inv.layout));
    const written = await writeArchive(from, { outDir, name, key });
    // prove what was written reads back
    await verifyClusterBackup(written.archive, { keyFile });
    return { ...written, keyFile, manifest, ms: performance.now() - t0 };
  } finally {
    await fs.rm(staging, { recursive: true, force: true });
  }
}

/** The master a backup reads from, and the private directory its members are gathered in before the tar. */
interface Staging {
  host: Host;
  sudo: boolean;
  node: string;
  dir: string;
  manifest: BackupManifest;
}

/** The CA: pe-certs backupCa, a tar of the CA directory with a sha256 manifest read as it streamed. */
async function stageCa(from: Staging, layout: Layout, now: Date): Promise<void> {
  const cadir = layout.dirs.cadir;
  if (!(await from.host.exists(`${cadir}/ca_crt.pem`, { sudo: from.sudo }))) return;
  const ca = await backupCa(from.host, cadir, join(from.dir, 'ca'), { sudo: from.sudo, now });
  from.manifest.ca = { archive: relative(from.dir, ca.archive), manifest: relative(from.dir, ca.manifestPath), cadir };
}

/** The credentials files of a layout, by archive member (`credentials/<path>`): the only places a restore writes them. */
export function credentialFiles(layout: Layout): Map<string, string> {
  const paths = [
    ...dbFilesFromLayout(layout).map((f) => f.path),
    ...(['mcollectiveServerCfg', 'mcollectiveCredentials'] as const).flatMap((k) =>
      layout.files[k] ? [fileOf(layout, k).path] : [],
    ),
  ];
  return new Map(paths.map((p) => [join('credentials', validateRemotePath(p).replace(/^\/+/, '')), p]));
}

/** Credentials files, as they are (they hold passwords: the archive is 0600). */
async function stageCredentials(from: Staging, layout: Layout): Promise<void> {
  for (const [member, p] of credentialFiles(layout)) {
    if (!(await from.host.exists(p, { sudo: from.sudo }))) continue;
    await fs.mkdir(join(from.dir, dirname(member)), { recursive: true, mode: 0o700 });
    await fs.writeFile(join(from.dir, member), await from.host.readFile(p, { sudo: from.sudo }), { mode: 0o600 });
    from.manifest.credentials[member] = p;
  }
}

/** A `pg_dump -Fc` of every database the services use. */
async function stageDatabases(from: Staging, inv: Inventory, pg: PgInstance): Promise<void> {
  const creds = await readCredentials(from.host, dbFilesFromLayout(inv.layout));
  for (const cr of creds) inv.redactor.add(cr.password);
  await fs.mkdir(join(from.dir, 'db'), { recursive: true, mode: 0o700 });
  for (const db of [...new Set(creds.map((x) => x.database))]) {
    if (!isPlainDbName(db))
      throw new BackupError(
        `the database name ${JSON.stringify(db)} in the credentials of ${from.node} is not a plain identifier.`,
        {
          host: from.node,
        },
      );
    const member = dumpMember(db);
    await dumpDatabase(from, inv, pg, db, join(from.dir, member));
    from.manifest.databases[member] = db;
  }
}

async function dumpDatabase(from: Staging, inv: Inventory, pg: PgInstance, db: string, file: string): Promise<void> {
  const argv = asDbUser(pg, [
    `${pg.binDir}/pg_dump`,
    '-h',
    pg.socketDir,
    '-p',
    String(pg.port),
    '-Fc',
    '--no-password',
    '-d',
    db,
  ]);
  const p = await from.host.spawn(argv, { sudo: true, readOnly: true, cwd: '/' });
  let stderr = '';
  p.stderr.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
  const [, res] = await Promise.all([pipeline(p.stdout, createWriteStream(file, { mode: 0o600 })), p.done]);
  if (res.code !== 0)
    throw new BackupError(
      `pg_dump of ${db} exited ${res.code}: ${inv.redactor.redact(stderr.trim().split('\n').slice(-2).join(' '))}`,
      { host: from.node },
    );
}

/** A database name a restore passes to `pg_restore -d`: letters, digits, `_`, `-` (as `pe-puppetdb`); never a conninfo string. */
export function isPlainDbName(name: unknown): name is string {
  return typeof name === 'string' && /^[A-Za-z_][A-Za-z0-9_-]{0,62}$/.test(name);
}

function dumpMember(db: string): string {
  return `db/${db}.dump`;
}

/** MANIFEST.json (the sha256 of every member), the tar (0600), `<archive>.hmac` and `<archive>.sha256` beside it. */
async function writeArchive(
  from: Staging,
  { outDir, name, key }: { outDir: string; name: string; key: BackupKey },
): Promise<{ archive: string; checksumFile: string; hmacFile: string; sha256: string }> {
  const staging = from.dir;
  for (const f of await walk(staging)) from.manifest.members[relative(staging, f)] = await sha256File(f);
  await fs.writeFile(join(staging, 'MANIFEST.json'), `${JSON.stringify(from.manifest, null, 2)}\n`, { mode: 0o600 });
  const archive = join(outDir, `${name}.tar`);
  await run('tar', ['-C', staging, '--format=gnu', '--owner=0', '--group=0', '-cf', `${archive}.part`, '.'], {
    maxBuffer: 1 << 20,
    env: childEnv(),
  });
  await fs.chmod(`${archive}.part`, 0o600);
  await fs.rename(`${archive}.part`, archive);
  const { sha256 } = await sha256File(archive);
  const checksumFile = `${archive}.sha256`;
  await fs.writeFile(checksumFile, `${sha256}  ${basename(archive)}\n`, { mode: 0o600 });
  const hmacFile = await writeMacFile(key, archive);
  return { archive, checksumFile, hmacFile, sha256 };
}

export interface VerifiedBackup {
  manifest: BackupManifest;
  /** A private directory (0700) holding the verified members; remove with `dispose()`. */
  dir: string;
  dispose(): Promise<void>;
}

/** How an archive is authenticated: the backup key file (`backupKeyPath` gives the controller's default). */
export interface OpenBackupOptions {
  keyFile: string;
}

/**
 * Checks an archive before anything is written anywhere: its HMAC against
 * `<archive>.hmac` with the backup key (before the archive is even
 * extracted), every member against MANIFEST.json (no member missing, none
 * extra), the CA archive against its own manifest. Returns the extracted,
 * verified members.
 */
export async function openClusterBackup(archive: string, opts: OpenBackupOptions): Promise<VerifiedBackup> {
  const key = await loadBackupKey(opts.keyFile, { create: false });
  await checkMacFile(key, archive);
  const dir = await fs.mkdtemp(join(tmpdir(), 'pe-cluster-restore-'));
  await fs.chmod(dir, 0o700);
  const dispose = () => fs.rm(dir, { recursive: true, force: true });
  try {
    await run('tar', ['-C', dir, '--no-same-owner', '--no-same-permissions', '-xf', archive], {
      maxBuffer: 1 << 20,
      env: childEnv(),
    });
    const manifest = await readManifest(archive, dir);
    await checkMembers(archive, dir, manifest);
    if (manifest.ca) {
      const ca = caMembers(manifest);
      await verifyCaArchive(join(dir, ca.archive), join(dir, ca.manifest));
    }
    return { manifest, dir, dispose };
  } catch (e) {
    await dispose();
    throw e;
  }
}

const isStringMap = (x: unknown): x is Record<string, string> =>
  typeof x === 'object' && x !== null && !Array.isArray(x) && Object.values(x).every((v) => typeof v === 'string');

async function readManifest(archive: string, dir: string): Promise<BackupManifest> {
  let manifest: BackupManifest;
  try {
    manifest = JSON.parse(await fs.readFile(join(dir, 'MANIFEST.json'), 'utf8')) as BackupManifest;
  } catch (e) {
    throw new BackupError(`${archive} has no readable MANIFEST.json: ${(e as Error).message}`);
  }
  if (
    manifest.version !== 1 ||
    typeof manifest.members !== 'object' ||
    manifest.members === null ||
    !isStringMap(manifest.credentials) ||
    !isStringMap(manifest.databases)
  )
    throw new BackupError(`${archive}: MANIFEST.json is not a pe-cluster backup manifest.`);
  return manifest;
}

/** The CA archive's members: `ca/<file>`, listed in the manifest. */
function caMembers(m: BackupManifest): { archive: string; manifest: string } {
  const ca = m.ca!;
  for (const f of [ca.archive, ca.manifest])
    if (typeof f !== 'string' || !/^ca\/[A-Za-z0-9._-]+$/.test(f) || !m.members[f])
      throw new BackupError(
        `the manifest names ${JSON.stringify(f)} as the CA archive, which is not a member ca/<file>.`,
      );
  return { archive: ca.archive, manifest: ca.manifest };
}

/** Every extracted member matches MANIFEST.json: none missing, none extra, each sha256 and size as listed. */
async function checkMembers(archive: string, dir: string, manifest: BackupManifest): Promise<void> {
  const present = (await walk(dir)).map((f) => relative(dir, f)).filter((f) => f !== 'MANIFEST.json');
  const problems: string[] = [];
  for (const f of present) if (!manifest.members[f]) problems.push(`${f} (not in the manifest)`);
  for (const [f, m] of Object.entries(manifest.members)) {
    if (!present.includes(f)) {
      problems.push(`${f} (missing)`);
      continue;
    }
    const s = await sha256File(join(dir, f));
    if (s.sha256 !== m.sha256 || s.bytes !== m.bytes) problems.push(`${f} (sha256 differs)`);
  }
  if (problems.length)
    throw new BackupError(
      `${archive} members differ from its manifest: ${problems.slice(0, 5).join(', ')}; nothing was restored.`,
    );
}

/** Verify only (nothing extracted is kept); with a layout, also that every member has its place in it. */
export async function verifyClusterBackup(
  archive: string,
  opts: OpenBackupOptions & { layout?: Layout },
): Promise<BackupManifest> {
  const v = await openClusterBackup(archive, opts);
  try {
    if (opts.layout) restorePlan(opts.layout, v.manifest, archive);
    return v.manifest;
  } finally {
    await v.dispose();
  }
}

/** Where each member of an archive goes, from the layout alone. */
export interface RestorePlan {
  credentials: { member: string; path: string }[];
  databases: { member: string; name: string }[];
}

/**
 * The destinations of an archive's members on this layout. A credentials
 * member goes to the layout's file of that name, and only when the manifest
 * names that same file; a database name is a plain identifier and its dump
 * the member named after it. Anything else refuses the whole archive, before
 * any host is contacted.
 */
export function restorePlan(layout: Layout, m: BackupManifest, archive: string): RestorePlan {
  const files = credentialFiles(layout);
  const problems: string[] = [];
  const plan: RestorePlan = { credentials: [], databases: [] };
  for (const [member, named] of Object.entries(m.credentials)) {
    const path = files.get(member);
    if (!path)
      problems.push(`${member} -> ${JSON.stringify(named)} is no credentials file of the ${layout.name} layout`);
    else if (path !== named) problems.push(`${member} names ${JSON.stringify(named)}, the layout's file is ${path}`);
    else if (!m.members[member]) problems.push(`${member} is not a member of the archive`);
    else plan.credentials.push({ member, path });
  }
  for (const [member, name] of Object.entries(m.databases)) {
    if (!isPlainDbName(name)) problems.push(`the database name ${JSON.stringify(name)} is not a plain identifier`);
    else if (member !== dumpMember(name) || !m.members[member])
      problems.push(`the dump of ${name} is ${JSON.stringify(member)}, expected the member ${dumpMember(name)}`);
    else plan.databases.push({ member, name });
  }
  if (problems.length)
    throw new BackupError(
      `${archive} cannot be restored here: ${problems.slice(0, 5).join('; ')}; nothing was restored.`,
      {
        hint: "A restore writes only to the files of the inventory's layout; no host was contacted.",
      },
    );
  return plan;
}

export interface RestoreOptions {
  /** The master to restore onto (default: the inventory's primary). */
  to?: string;
  /** What to restore (default: all the archive holds). */
  parts?: readonly ('ca' | 'credentials' | 'database')[];
  /** Replace a CA directory that differs (it is moved aside, never deleted). */
  force?: boolean;
  /** Where the safety backup of the current state goes (default: the inventory's backups). */
  dir?: string;
  /** The backup key file (default `<state>/<cluster>.backup-key`). */
  keyFile?: string;
}

export interface RestoreReport {
  archive: string;
  to: string;
  /** The verified backup of what was there before anything was replaced. */
  safetyBackup?: string | undefined;
  ca?: { changed: boolean; previous?: string | undefined };
  credentials: { path: string; changed: boolean }[];
  databases: string[];
}

/** The master a restore writes to. */
interface Target {
  host: Host;
  sudo: boolean;
  node: string;
}

/**
 * Restores a backup onto a master. Before any host is contacted the archive
 * is authenticated (its HMAC with the backup key), every member checked
 * against its manifest, and every destination taken from the layout
 * (`restorePlan`: anything else is refused). Before anything is replaced,
 * the current state of the target is itself backed up and verified. The CA
 * goes back through pe-certs restoreCa (staged, compared with its manifest,
 * swapped in, the old directory kept aside); credentials files are written
 * atomically with a backup of the old content; each database is restored
 * with `pg_restore --clean --if-exists` (refused on a server in recovery:
 * restore the primary).
 */
export async function restoreCluster(
  c: BackupContext,
  archive: string,
  opts: RestoreOptions = {},
): Promise<RestoreReport> {
  const inv = c.inventory;
  const keyFile = backupKeyPath(inv, opts.keyFile);
  await assertKeyOutside(keyFile, { trees: [inv.backupDir], dirs: [dirname(resolve(archive))] });
  const v = await openClusterBackup(archive, { keyFile });
  try {
    const m = v.manifest;
    if (m.layout !== inv.layout.name)
      throw new BackupError(`${archive} is a ${m.layout} backup; this inventory's layout is ${inv.layout.name}.`);
    const plan = restorePlan(inv.layout, m, archive);
    const node = inv.masters.find((x) => x.name === (opts.to ?? inv.primary.name));
    if (!node) throw new BackupError(`${opts.to} is not a master of ${inv.file}.`);
    const to: Target = { host: c.host(node.name), sudo: node.sudo, node: node.name };
    const parts = new Set(opts.parts ?? ['ca', 'credentials', 'database']);
    const pg = c.pgInstance?.(node.name, to.host) ?? instanceFromLayout(to.host, inv.layout);
    const wantsDb = parts.has('database') && plan.databases.length > 0;
    if (wantsDb && (await isInRecovery(pg)))
      throw new BackupError(
        `PostgreSQL on ${node.name} is a standby (in recovery); restore the database onto the primary.`,
        { host: node.name },
      );
    const safety = await safetyBackup(c, to, plan, { dir: opts.dir, withDatabase: wantsDb, keyFile });
    const report: RestoreReport = { archive, to: node.name, safetyBackup: safety, credentials: [], databases: [] };
    if (parts.has('ca') && m.ca) {
      const r = await restoreCa(join(v.dir, caMembers(m).archive), to.host, inv.layout.dirs.cadir, {
        sudo: to.sudo,
        force: Boolean(opts.force),
      });
      report.ca = { changed: r.changed, previous: r.previous };
    }
    if (parts.has('credentials')) report.credentials.push(...(await restoreCredentials(v, to, plan)));
    if (wantsDb) report.databases.push(...(await restoreDatabases(inv, v, plan, { ...to, pg, safety })));
    return report;
  } finally {
    await v.dispose();
  }
}

/** Each credentials file to the layout's path, atomically, the old content kept beside it. */
async function restoreCredentials(
  v: VerifiedBackup,
  to: Target,
  plan: RestorePlan,
): Promise<{ path: string; changed: boolean }[]> {
  const out: { path: string; changed: boolean }[] = [];
  for (const { member, path } of plan.credentials) {
    const w = await to.host.writeFile(path, await fs.readFile(join(v.dir, member)), { sudo: to.sudo, backup: true });
    out.push({ path, changed: w.changed });
  }
  return out;
}

/** A verified backup of what is on the target now, before anything is replaced (none when it holds neither CA nor credentials). */
async function safetyBackup(
  c: BackupContext,
  to: Target,
  plan: RestorePlan,
  o: { dir?: string | undefined; withDatabase: boolean; keyFile: string },
): Promise<string | undefined> {
  const inv = c.inventory;
  const hasCa = await to.host.exists(`${inv.layout.dirs.cadir}/ca_crt.pem`, { sudo: to.sudo });
  const hasCreds = await Promise.all(plan.credentials.map((f) => to.host.exists(f.path, { sudo: to.sudo })));
  if (!hasCa && !hasCreds.some(Boolean)) return undefined;
  const b = await backupCluster(c, {
    from: to.node,
    dir: o.dir ?? inv.backupDir,
    noDatabase: !o.withDatabase,
    keyFile: o.keyFile,
  });
  return b.archive;
}

/** Each database with `pg_restore --clean --if-exists` in one transaction; returns their names. */
async function restoreDatabases(
  inv: Inventory,
  v: VerifiedBackup,
  plan: RestorePlan,
  to: Target & { pg: PgInstance; safety: string | undefined },
): Promise<string[]> {
  const { pg } = to;
  const done: string[] = [];
  for (const { member, name } of plan.databases) {
    const argv = asDbUser(pg, [
      `${pg.binDir}/pg_restore`,
      '-h',
      pg.socketDir,
      '-p',
      String(pg.port),
      '--clean',
      '--if-exists',
      '--no-password',
      '--single-transaction',
      '-d',
      name,
    ]);
    const r = await to.host.exec(argv, {
      sudo: true,
      cwd: '/',
      stdin: await fs.readFile(join(v.dir, member)),
      allowFailure: true,
      timeoutMs: 60 * 60_000,
    });
    if (r.code !== 0)
      throw new BackupError(
        `pg_restore of ${name} exited ${r.code}: ${inv.redactor.redact(r.stderr.trim().split('\n').slice(-2).join(' '))}`,
        { host: to.node, hint: to.safety ? `The state before the restore is in ${to.safety}.` : undefined },
      );
    done.push(name);
  }
  return done;
}
