import { backupPath, splitDir, tempName, toBuffer } from './common.js';
import type { FileStat, WriteOptions, WriteResult } from './host.js';

/** What a commit needs: the decided mode/owner and where the backup goes. */
export interface CommitPlan {
  path: string;
  tmp: string;
  data: Buffer;
  mode: number;
  uid: number | undefined;
  gid: number | undefined;
  /** Hard-link the old file here before the rename (undefined: no backup). */
  backup: string | undefined;
}

/** The few file operations an atomic write needs, per transport. */
export interface FilePrimitives {
  lstat(path: string): Promise<FileStat | undefined>;
  realpath(path: string): Promise<string>;
  read(path: string): Promise<Buffer>;
  resolveUser(name: string): Promise<number>;
  resolveGroup(name: string): Promise<number>;
  /** Write the temp file (exclusive create, fsync), set owner, keep a backup, rename over the target. */
  commit(plan: CommitPlan): Promise<void>;
  /** Names of entries in a directory (to find temp files a killed writer left). */
  list(dir: string): Promise<{ name: string; mtimeMs: number }[]>;
  unlink(path: string): Promise<void>;
}

/** A temp file older than this was left by a writer that died (SIGKILL, power cut). */
export const STALE_TEMP_MS = 60_000;

/** Step-by-step commit for transports with separate calls (local fs, SFTP). */
export interface StepPrimitives {
  writeExclusive(path: string, data: Buffer, mode: number): Promise<void>;
  chown(path: string, uid: number, gid: number): Promise<void>;
  chmod(path: string, mode: number): Promise<void>;
  link(existing: string, created: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
}

export async function commitStepwise(p: StepPrimitives, plan: CommitPlan): Promise<void> {
  await p.writeExclusive(plan.tmp, plan.data, plan.mode);
  try {
    if (plan.uid !== undefined || plan.gid !== undefined) await p.chown(plan.tmp, plan.uid ?? -1, plan.gid ?? -1);
    // chown clears set-id bits and umask may have narrowed the mode at create time
    await p.chmod(plan.tmp, plan.mode);
    if (plan.backup) await p.link(plan.path, plan.backup);
    await p.rename(plan.tmp, plan.path);
  } catch (err) {
    await p.unlink(plan.tmp).catch(() => undefined);
    throw err;
  }
}

async function resolveId(
  value: string | number | undefined,
  resolve: (n: string) => Promise<number>,
): Promise<number | undefined> {
  if (value === undefined) return undefined;
  if (typeof value === 'number') return value;
  return /^\d+$/.test(value) ? Number(value) : resolve(value);
}

/**
 * The one atomic-write algorithm every Host uses: follow a symlink to its
 * target, compare the content (equal content and attributes: no-op), decide
 * mode and owner (explicit, else the old file's, else 0644 and the writer),
 * then commit through the transport.
 */
export async function atomicWrite(
  p: FilePrimitives,
  path: string,
  data: string | Buffer,
  opts: WriteOptions = {},
): Promise<WriteResult> {
  const buf = toBuffer(data);
  let target = path;
  let st = await p.lstat(path);
  if (st?.isSymlink) {
    target = await p.realpath(path);
    st = await p.lstat(target);
  }
  const uid = await resolveId(opts.owner, (n) => p.resolveUser(n));
  const gid = await resolveId(opts.group, (n) => p.resolveGroup(n));
  const mode = opts.mode ?? st?.mode ?? 0o644;
  if (st?.isFile) {
    const same =
      st.size === buf.length &&
      (opts.mode === undefined || opts.mode === st.mode) &&
      (uid === undefined || uid === st.uid) &&
      (gid === undefined || gid === st.gid) &&
      (await p.read(target)).equals(buf);
    if (same) return { path: target, changed: false };
  }
  await removeStaleTemps(p, target);
  const backup = st?.isFile && opts.backup !== false ? backupPath(target) : undefined;
  await p.commit({
    path: target,
    tmp: tempName(target),
    data: buf,
    mode,
    uid: uid ?? st?.uid,
    gid: gid ?? st?.gid,
    backup,
  });
  return backup ? { path: target, changed: true, backup } : { path: target, changed: true };
}

/** Removes `.name.pe-tmp-*` files of this target that a killed writer left behind. */
async function removeStaleTemps(p: FilePrimitives, target: string): Promise<void> {
  const { dir, base } = splitDir(target);
  const prefix = `.${base}.pe-tmp-`;
  const now = Date.now();
  const entries = await p.list(dir).catch(() => []);
  for (const e of entries) {
    if (e.name.startsWith(prefix) && now - e.mtimeMs > STALE_TEMP_MS) {
      await p.unlink(`${dir === '/' ? '' : dir}/${e.name}`).catch(() => undefined);
    }
  }
}
