import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { constants, createReadStream, promises as fs } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { BackupError } from '../errors.js';
import type { Inventory } from '../inventory.js';
import { stateDir } from '../state.js';

/**
 * The key that authenticates backup archives: 32 random bytes (hex in a
 * 0600 file) made at the first `backup`, kept in the controller's state
 * directory (`<state>/<cluster>.backup-key`), never in the backup directory:
 * whoever can write archives there cannot forge one. `backup` writes
 * `<archive>.hmac` (HMAC-SHA256 of the archive's bytes); `restore` checks it
 * before it reads anything else from the archive or contacts any host.
 */
export interface BackupKey {
  readonly path: string;
  /** A public label of the key (not derived in a way that helps guess it): names the key an archive was made with. */
  readonly id: string;
  readonly secret: Buffer;
}

/** The environment variable the CLI reads for a key file elsewhere than the state directory. */
export const BACKUP_KEY_ENV = 'PE_CLUSTER_BACKUP_KEY';

const KEY_BYTES = 32;

/** The key file: `explicit` when given, else `<state>/<cluster>.backup-key`. */
export function backupKeyPath(inv: Pick<Inventory, 'journalDir' | 'cluster'>, explicit?: string): string {
  if (explicit) return resolve(explicit);
  return join(stateDir(inv), `${inv.cluster.replace(/[^A-Za-z0-9._-]/g, '_')}.backup-key`);
}

function inside(path: string, dir: string): boolean {
  const rel = relative(dir, path);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

async function realDir(dir: string): Promise<string> {
  return fs.realpath(dir).catch(() => resolve(dir));
}

/**
 * Refuses a key that would travel with the archives: inside the backup
 * directory (`trees`, at any depth) or in the directory an archive is
 * written to or read from (`dirs`, directly).
 */
export async function assertKeyOutside(
  keyPath: string,
  where: { trees: readonly string[]; dirs: readonly string[] },
): Promise<void> {
  const keyDir = await realDir(dirname(keyPath));
  const key = join(keyDir, basename(keyPath));
  const trees = await Promise.all(where.trees.map(realDir));
  const dirs = await Promise.all(where.dirs.map(realDir));
  const at = trees.find((d) => inside(key, d)) ?? dirs.find((d) => d === keyDir);
  if (at)
    throw new BackupError(`the backup key ${keyPath} is kept with the archives (in ${at}).`, {
      hint: `Keep the key elsewhere (the controller's state directory, or a file named by ${BACKUP_KEY_ENV} / --backup-key).`,
    });
}

/** Loads the key; with `create`, makes it (0600, in a 0700 directory) when there is none yet. */
export async function loadBackupKey(path: string, opts: { create: boolean }): Promise<BackupKey> {
  const st = await fs.lstat(path).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return undefined;
    throw new BackupError(`cannot read the backup key ${path}: ${e.message}`, { cause: e });
  });
  if (!st) {
    if (!opts.create)
      throw new BackupError(`there is no backup key at ${path}; an archive cannot be authenticated without it.`, {
        hint: `Archives are authenticated with the key made by the first \`pe-cluster backup\` on this controller; name another key file with ${BACKUP_KEY_ENV} or --backup-key.`,
      });
    return createKey(path);
  }
  if (!st.isFile()) throw new BackupError(`the backup key ${path} is not a regular file (a symlink is refused).`);
  if (st.mode & 0o077)
    throw new BackupError(
      `the backup key ${path} is readable or writable by others (mode ${(st.mode & 0o777).toString(8)}).`,
      {
        hint: `chmod 600 ${path}`,
      },
    );
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid)
    throw new BackupError(`the backup key ${path} belongs to uid ${st.uid}, not to this user (${uid}).`);
  return keyFrom(path, await readNoFollow(path));
}

async function readNoFollow(path: string): Promise<string> {
  const fh = await fs.open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    return await fh.readFile('utf8');
  } finally {
    await fh.close();
  }
}

function keyFrom(path: string, text: string): BackupKey {
  const hex = text.trim();
  if (!/^[0-9a-f]{64,}$/.test(hex))
    throw new BackupError(`the backup key ${path} is not a key (expected at least ${KEY_BYTES} bytes as hex).`);
  const secret = Buffer.from(hex, 'hex');
  const id = createHash('sha256').update('pe-cluster backup key id\0').update(secret).digest('hex').slice(0, 16);
  return { path, id, secret };
}

async function createKey(path: string): Promise<BackupKey> {
  await fs.mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const hex = randomBytes(KEY_BYTES).toString('hex');
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
  const fh = await fs.open(path, flags, 0o600).catch((e: NodeJS.ErrnoException) => {
    throw new BackupError(`cannot create the backup key ${path}: ${e.message}`, { cause: e });
  });
  try {
    await fh.writeFile(`${hex}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  return keyFrom(path, hex);
}

/** HMAC-SHA256 of a file's bytes, as hex (`openssl dgst -sha256 -mac HMAC -macopt hexkey:KEY FILE` gives the same). */
export async function macOfFile(key: BackupKey, path: string): Promise<string> {
  const h = createHmac('sha256', key.secret);
  for await (const b of createReadStream(path)) h.update(b as Buffer);
  return h.digest('hex');
}

/** What `<archive>.hmac` holds. */
interface MacRecord {
  alg: 'HMAC-SHA256';
  key: string;
  archive: string;
  mac: string;
}

/** Writes `<archive>.hmac` (0600); returns its path. */
export async function writeMacFile(key: BackupKey, archive: string): Promise<string> {
  const rec: MacRecord = {
    alg: 'HMAC-SHA256',
    key: key.id,
    archive: basename(archive),
    mac: await macOfFile(key, archive),
  };
  const file = `${archive}.hmac`;
  await fs.writeFile(file, `${JSON.stringify(rec)}\n`, { mode: 0o600 });
  return file;
}

async function readMacRecord(archive: string): Promise<MacRecord> {
  const file = `${archive}.hmac`;
  const text = await fs.readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw new BackupError(
      `cannot read ${file}: ${e.message}; the archive is not authenticated, nothing was restored.`,
      {
        hint: 'Archives made before backups were authenticated carry only a .sha256, which anyone can recompute: make a new backup with `pe-cluster backup`.',
      },
    );
  });
  try {
    const rec = JSON.parse(text) as MacRecord;
    if (rec.alg === 'HMAC-SHA256' && typeof rec.mac === 'string' && typeof rec.key === 'string') return rec;
  } catch {
    // reported below
  }
  throw new BackupError(`${file} is not a pe-cluster HMAC record; nothing was restored.`);
}

/** The archive's bytes carry the HMAC its `.hmac` file names, made with this key; else an E_BACKUP error. */
export async function checkMacFile(key: BackupKey, archive: string): Promise<void> {
  const rec = await readMacRecord(archive);
  if (rec.key !== key.id)
    throw new BackupError(
      `${archive} was authenticated with another key (${rec.key}); the key at ${key.path} is ${key.id}. Nothing was restored.`,
      { hint: `Name the key the archive was made with (${BACKUP_KEY_ENV} or --backup-key).` },
    );
  const got = Buffer.from(
    await macOfFile(key, archive).catch((e: unknown) => {
      throw new BackupError(`cannot read ${archive}: ${(e as Error).message}`);
    }),
    'hex',
  );
  const want = Buffer.from(rec.mac, 'hex');
  if (want.length !== got.length || !timingSafeEqual(want, got))
    throw new BackupError(`${archive} does not match its HMAC: it was changed or forged; nothing was restored.`);
}
