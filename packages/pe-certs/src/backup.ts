import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Host } from '@pe-stack/pe-host';
import { manifestDifferences, treeManifest, validateRemotePath } from '@pe-stack/pe-host';
import { applyEdits, type ApplyResult } from '@pe-stack/pe-config-files';
import { CaBackupError, CaExistsError } from './errors.js';
import { TarManifest } from './tar.js';

/**
 * CA backup and restore. The backup is a tar archive of the whole CA
 * directory, streamed from the CA host into a file on the controller (mode
 * 0600: it holds the CA key) with a manifest beside it: the sha256 of the
 * archive and of every file in it, read from the archive as it streamed (so
 * the manifest describes exactly what was archived). A restore checks the
 * archive against the manifest before anything is touched on the target,
 * extracts into a staging directory, compares the staged tree with the
 * manifest, and only then swaps it into place, keeping any previous CA
 * directory aside.
 */
export interface CaManifest {
  version: 1;
  host: string;
  cadir: string;
  created: string;
  archive: string;
  archiveSha256: string;
  bytes: number;
  /** Relative path -> sha256, every regular file in the archive. */
  files: Record<string, string>;
}

export interface CaBackupResult {
  archive: string;
  manifestPath: string;
  manifest: CaManifest;
  ms: number;
}

function stamp(d: Date): string {
  return d.toISOString().replace(/[-:.]/g, '');
}

const REQUIRED = ['ca_crt.pem', 'ca_key.pem'];

/** Streams `cadir` from `host` into `<destDir>/ca-<host>-<timestamp>.tar` on this machine, with a manifest. */
export async function backupCa(
  host: Host,
  cadir: string,
  destDir: string,
  opts: { sudo?: boolean; now?: Date; timeoutMs?: number } = {},
): Promise<CaBackupResult> {
  validateRemotePath(cadir);
  const t0 = performance.now();
  const sudo = opts.sudo ?? true;
  const now = opts.now ?? new Date();
  await fs.mkdir(destDir, { recursive: true, mode: 0o700 });
  const archive = join(destDir, `ca-${host.name.replace(/[^A-Za-z0-9._-]/g, '_')}-${stamp(now)}.tar`);
  const part = `${archive}.part`;
  if (!(await host.exists(`${cadir}/ca_crt.pem`, { sudo })))
    throw new CaBackupError(`${cadir} holds no CA (no ca_crt.pem).`, { host: host.name });

  const tarMan = new TarManifest();
  const hash = createHash('sha256');
  let bytes = 0;
  const tee = new PassThrough();
  tee.on('data', (b: Buffer) => {
    hash.update(b);
    bytes += b.length;
    tarMan.write(b);
  });
  const reader = await host.spawn(['tar', '-C', cadir, '--format=gnu', '-cf', '-', '.'], {
    sudo,
    readOnly: true,
    ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}),
  });
  let stderr = '';
  reader.stderr.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
  try {
    await Promise.all([pipeline(reader.stdout, tee, createWriteStream(part, { mode: 0o600 })), reader.done]);
    await new Promise<void>((r, j) => tarMan.end((e?: Error | null) => (e ? j(e) : r())));
  } catch (e) {
    await fs.rm(part, { force: true });
    throw new CaBackupError(
      `streaming ${cadir} failed: ${(e as Error).message}${stderr ? ` (${stderr.trim().split('\n').slice(-2).join(' ')})` : ''}`,
      { host: host.name, cause: e },
    );
  }
  if (tarMan.unsafe.length) {
    await fs.rm(part, { force: true });
    throw new CaBackupError(
      `${cadir} holds entries a restore would refuse (${tarMan.unsafe.slice(0, 3).join('; ')}); the backup was discarded.`,
      {
        host: host.name,
        hint: 'A CA directory holds plain files and directories only: move links and special files out of it.',
      },
    );
  }
  for (const f of REQUIRED) {
    if (!tarMan.files.has(f)) {
      await fs.rm(part, { force: true });
      throw new CaBackupError(`the archive of ${cadir} lacks ${f}; the backup was discarded.`, { host: host.name });
    }
  }
  // the CA may have signed something while we streamed: then the archive is a mixed state
  const after = await treeManifest(host, cadir, { sudo });
  const moved = manifestDifferences(tarMan.files, after);
  if (moved.length) {
    await fs.rm(part, { force: true });
    throw new CaBackupError(
      `the CA changed while it was being archived (${moved.slice(0, 3).join(', ')}); the backup was discarded.`,
      { host: host.name, hint: 'Run the backup again (or stop the CA service while it runs).' },
    );
  }
  await fs.rename(part, archive);
  const manifest: CaManifest = {
    version: 1,
    host: host.name,
    cadir,
    created: now.toISOString(),
    archive: basename(archive),
    archiveSha256: hash.digest('hex'),
    bytes,
    files: Object.fromEntries([...tarMan.files].sort(([a], [b]) => (a < b ? -1 : 1))),
  };
  const manifestPath = `${archive}.manifest.json`;
  await fs.writeFile(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`, { mode: 0o600 });
  return { archive, manifestPath, manifest, ms: performance.now() - t0 };
}

/**
 * Checks an archive against its manifest: whole-file sha256, every member's
 * sha256, and nothing but plain files and directories under the archive's
 * root (no links, devices, absolute or `..` names). Touches nothing remote.
 */
export async function verifyCaArchive(archive: string, manifestPath = `${archive}.manifest.json`): Promise<CaManifest> {
  let manifest: CaManifest;
  try {
    manifest = JSON.parse(await fs.readFile(manifestPath, 'utf8')) as CaManifest;
  } catch (e) {
    throw new CaBackupError(`cannot read the manifest ${manifestPath}: ${(e as Error).message}`, { cause: e });
  }
  if (manifest.version !== 1 || typeof manifest.files !== 'object' || typeof manifest.archiveSha256 !== 'string')
    throw new CaBackupError(`${manifestPath} is not a CA backup manifest.`);
  const hash = createHash('sha256');
  const tarMan = new TarManifest();
  const tee = new PassThrough();
  tee.on('data', (b: Buffer) => hash.update(b));
  try {
    await pipeline(createReadStream(archive), tee, tarMan);
  } catch (e) {
    throw new CaBackupError(`${archive} cannot be read as a tar archive: ${(e as Error).message}`, { cause: e });
  }
  const sum = hash.digest('hex');
  if (sum !== manifest.archiveSha256)
    throw new CaBackupError(
      `${archive} does not match its manifest (sha256 ${sum.slice(0, 16)}..., expected ${manifest.archiveSha256.slice(0, 16)}...); it was not restored.`,
    );
  if (tarMan.unsafe.length)
    throw new CaBackupError(
      `${archive} holds entries that could write outside the CA directory (${tarMan.unsafe.slice(0, 3).join('; ')}); it was not restored.`,
    );
  const diff = manifestDifferences(new Map(Object.entries(manifest.files)), tarMan.files);
  if (diff.length)
    throw new CaBackupError(`${archive} members differ from the manifest: ${diff.slice(0, 5).join(', ')}.`);
  return manifest;
}

export interface CaRestoreOptions {
  sudo?: boolean;
  /** Replace an existing CA directory that differs from the archive (it is kept aside, never deleted). */
  force?: boolean;
  /**
   * The CA directory that was there before (default `keep`: moved aside to
   * `<cadir>.pe-backup-<time>`). `remove`: when it held the same CA (the
   * same ca_crt.pem: an older copy, one more copy of the CA key), it is
   * deleted once the swapped-in tree is verified against the manifest; when
   * that check fails it stays, and the error names it. A different CA is
   * always kept aside.
   */
  previous?: 'keep' | 'remove';
  now?: Date;
  timeoutMs?: number;
}

export interface CaRestoreResult {
  host: string;
  cadir: string;
  changed: boolean;
  /** Where the previous CA directory was moved, when there was one and it was kept. */
  previous?: string;
  /** The previous CA directory was removed after the swapped-in tree was verified (`previous: 'remove'`). */
  previousRemoved?: boolean;
  files: number;
  ms: number;
}

/**
 * Restores a CA archive onto `host` at `cadir`. Verifies the archive first;
 * an identical CA already there is a no-op; a different one (another CA, or
 * this CA in another state) is refused unless `force`.
 */
export async function restoreCa(
  archive: string,
  host: Host,
  cadir: string,
  opts: CaRestoreOptions = {},
): Promise<CaRestoreResult> {
  validateRemotePath(cadir);
  const t0 = performance.now();
  const sudo = opts.sudo ?? true;
  const manifest = await verifyCaArchive(archive);
  const want = new Map(Object.entries(manifest.files));
  const ms = () => performance.now() - t0;

  let hasExisting = false;
  let sameCa = false;
  if (await host.exists(cadir, { sudo })) {
    const current = await treeManifest(host, cadir, { sudo });
    if (current.size > 0) {
      hasExisting = true;
      sameCa = current.get('ca_crt.pem') === want.get('ca_crt.pem');
      const diff = manifestDifferences(want, current);
      if (diff.length === 0) return { host: host.name, cadir, changed: false, files: want.size, ms: ms() };
      if (!opts.force) {
        throw new CaExistsError(
          host.name,
          cadir,
          sameCa
            ? `the same CA in another state: ${diff.slice(0, 3).join(', ')}`
            : current.has('ca_crt.pem')
              ? 'a different CA certificate'
              : 'files that are not this CA',
        );
      }
    }
  }

  const suffix = (opts.now ?? new Date()).toISOString().replace(/[-:.]/g, '');
  const staging = `${dirname(cadir)}/.${basename(cadir)}.pe-restore-${suffix}`;
  await host.mkdir(staging, { mode: 0o750, sudo });
  try {
    const writer = await host.spawn(['tar', '-C', staging, '-xpf', '-', '--same-owner'], {
      sudo,
      ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}),
    });
    let stderr = '';
    writer.stderr.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
    writer.stdout.resume();
    // tar may stop reading once it sees the end-of-archive blocks: a closed stdin is not a failure, its exit code and the manifest decide
    writer.stdin.on('error', () => undefined);
    const feed = pipeline(createReadStream(archive), writer.stdin).catch(() => undefined);
    const [res] = await Promise.all([writer.done, feed]);
    if (res.code !== 0)
      throw new CaBackupError(`tar on ${host.name} exited ${res.code}: ${stderr.trim()}`, { host: host.name });
    const staged = await treeManifest(host, staging, { sudo });
    const diff = manifestDifferences(want, staged);
    if (diff.length)
      throw new CaBackupError(`the restored files differ from the manifest: ${diff.slice(0, 5).join(', ')}.`, {
        host: host.name,
      });
  } catch (e) {
    await host.remove(staging, { sudo, recursive: true });
    throw e;
  }
  let previous: string | undefined;
  if (hasExisting || (await host.exists(cadir, { sudo }))) {
    previous = `${cadir}.pe-backup-${suffix}`;
    await host.exec(['mv', '-T', '--', cadir, previous], { sudo });
  }
  await host.exec(['mv', '-T', '--', staging, cadir], { sudo });
  const done = { host: host.name, cadir, changed: true, files: want.size };
  if (previous && sameCa && opts.previous === 'remove') {
    await removeAfterVerifiedSwap(host, { cadir, previous, want, sudo });
    return { ...done, previousRemoved: true, ms: ms() };
  }
  return { ...done, ...(previous ? { previous } : {}), ms: ms() };
}

/** Deletes the CA directory kept aside once the one swapped in equals the manifest; else keeps it and says where. */
async function removeAfterVerifiedSwap(
  host: Host,
  o: { cadir: string; previous: string; want: Map<string, string>; sudo: boolean },
): Promise<void> {
  const diff = manifestDifferences(o.want, await treeManifest(host, o.cadir, { sudo: o.sudo }));
  if (diff.length)
    throw new CaBackupError(
      `${o.cadir} differs from the manifest after the swap (${diff.slice(0, 3).join(', ')}); the previous CA directory stays in ${o.previous}.`,
      { host: host.name },
    );
  await host.remove(o.previous, { sudo: o.sudo, recursive: true });
}

/**
 * Lets `certname` (the new CA host) use the CA admin endpoints: adds it to the
 * allow list of every auth.conf rule that requires the pp_cli_auth extension
 * (lab-notes.md: a promoted CA answered 403 without this). Lossless HOCON
 * edit through pe-config-files; idempotent. Reload puppetserver afterwards.
 */
export async function grantCaAdmin(
  host: Host,
  authConf: string,
  certname: string,
  opts: { sudo?: boolean } = {},
): Promise<ApplyResult> {
  const [r] = await applyEdits(host, [{ kind: 'hocon', path: authConf, ops: [{ op: 'auth-allow', certname }] }], {
    sudo: opts.sudo ?? true,
  });
  return r!;
}

/** `certificate-authority.allow-subject-alt-names: true` in puppetserver's ca.conf (needed to sign CSRs with alt names). */
export async function allowSubjectAltNames(
  host: Host,
  caConf: string,
  opts: { sudo?: boolean } = {},
): Promise<ApplyResult> {
  const [r] = await applyEdits(
    host,
    [
      {
        kind: 'hocon',
        path: caConf,
        ops: [{ op: 'set', path: ['certificate-authority', 'allow-subject-alt-names'], value: true }],
      },
    ],
    { sudo: opts.sudo ?? true },
  );
  return r!;
}
