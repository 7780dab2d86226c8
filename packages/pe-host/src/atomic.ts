import { backupPath, splitDir, tempName, tempPrefix, toBuffer } from './common.js';
import { UnsafePathError } from './errors.js';
import type { FileStat, WriteOptions, WriteResult } from './host.js';

/** What a commit needs: the decided mode/owner and where the backup goes. */
export interface CommitPlan {
  path: string;
  data: Buffer;
  mode: number;
  uid: number | undefined;
  gid: number | undefined;
  /** Hard-link the old file here before the rename (undefined: no backup). */
  backup: string | undefined;
}

/** The few file operations an atomic write needs, per transport. */
export interface FilePrimitives {
  /** The host's name, for errors. */
  host: string;
  lstat(path: string): Promise<FileStat | undefined>;
  /** A symlink's own text (not followed further). */
  readlink(path: string): Promise<string>;
  realpath(path: string): Promise<string>;
  read(path: string): Promise<Buffer>;
  /** The uid the writes run as (root through sudo): a symlink it made may be followed. */
  writerUid(): Promise<number>;
  resolveUser(name: string): Promise<number>;
  resolveGroup(name: string): Promise<number>;
  /**
   * Write a temp file that no other user can swap or redirect, set its owner and
   * mode, keep a backup, rename it over the target (see commitStepwise).
   */
  commit(plan: CommitPlan): Promise<void>;
  /** Names of entries in a directory (to find temp files a killed writer left). */
  list(dir: string): Promise<{ name: string; mtimeMs: number }[]>;
  unlink(path: string): Promise<void>;
}

/** A temp file a writer made: owner, mode and sync go to the open handle, never to a path. */
export interface TempHandle {
  write(data: Buffer): Promise<void>;
  chown(uid: number, gid: number): Promise<void>;
  chmod(mode: number): Promise<void>;
  sync(): Promise<void>;
  close(): Promise<void>;
}

/** A temp file older than this was left by a writer that died (SIGKILL, power cut). */
export const STALE_TEMP_MS = 60_000;

/** Symlinks followed to find the file a write means, at most. */
export const MAX_SYMLINK_HOPS = 8;

/** Step-by-step commit for transports with separate calls (local fs, SFTP). */
export interface StepPrimitives {
  /**
   * Creates `path` for writing with O_CREAT|O_EXCL (which never opens an
   * existing entry and never follows a symlink; plus O_NOFOLLOW where the
   * transport has it), mode 0600.
   */
  createExclusive(path: string): Promise<TempHandle>;
  link(existing: string, created: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
}

/**
 * Why this is race-free in a directory another user owns (postgres's,
 * puppet's): that user can rename, remove or replace any entry there, at any
 * moment. The temp name is random (cannot be planted in advance) and created
 * exclusively, so we get a fresh inode of our own or an error; owner, mode and
 * fsync are applied to the OPEN handle (fchown/fchmod/fsync), so a swap of the
 * name afterwards cannot point them at another file; the backup is a hard link
 * (link(2) does not follow a symlink) and rename(2) replaces whatever entry
 * holds the target's name, a symlink included, without following it. The
 * worst a swap can do is make the write fail or put that user's own entry in
 * place of the file in that user's own directory.
 */
export async function commitStepwise(p: StepPrimitives, plan: CommitPlan): Promise<void> {
  const tmp = tempName(plan.path);
  const file = await p.createExclusive(tmp);
  try {
    await fill(file, plan);
    if (plan.backup) await p.link(plan.path, plan.backup);
    await p.rename(tmp, plan.path);
  } catch (err) {
    await p.unlink(tmp).catch(() => undefined);
    throw err;
  }
}

async function fill(file: TempHandle, plan: CommitPlan): Promise<void> {
  try {
    await file.write(plan.data);
    if (plan.uid !== undefined || plan.gid !== undefined) await file.chown(plan.uid ?? -1, plan.gid ?? -1);
    // chown clears set-id bits and umask may have narrowed the mode at create time
    await file.chmod(plan.mode);
    await file.sync();
  } finally {
    await file.close();
  }
}

/** Why a symlink found on the way to a write must not be followed, or undefined when it may be. */
export function untrustedLink(link: FileStat, dir: FileStat, trusted: ReadonlySet<number>): string | undefined {
  if (!trusted.has(dir.uid)) return `in a directory owned by uid ${dir.uid}`;
  if ((dir.mode & 0o022) !== 0 && (dir.mode & 0o1000) === 0)
    return `in a directory others may write to (mode ${dir.mode.toString(8)})`;
  if (!trusted.has(link.uid)) return `owned by uid ${link.uid}`;
  return undefined;
}

/**
 * Follows `path` through symlinks only root or the writer could have made or
 * swapped (see untrustedLink), one link at a time; any other symlink is
 * refused (UnsafePathError). Returns the file meant and its lstat.
 */
export async function resolveTarget(
  p: FilePrimitives,
  path: string,
): Promise<{ target: string; st: FileStat | undefined }> {
  let target = path;
  let st = await p.lstat(target);
  if (!st?.isSymlink) return { target, st };
  const trusted = new Set([0, await p.writerUid()]);
  for (let hops = 0; st?.isSymlink; hops++) {
    if (hops >= MAX_SYMLINK_HOPS) throw new UnsafePathError(p.host, path, `more than ${MAX_SYMLINK_HOPS} symlinks`);
    const { dir } = splitDir(target);
    const why = untrustedLink(st, await dirStat(p, dir), trusted);
    if (why) throw new UnsafePathError(p.host, path, `${target} is a symlink ${why}`);
    const text = await p.readlink(target);
    target = text.startsWith('/') ? text : `${dir === '/' ? '' : dir}/${text}`;
    st = await p.lstat(target);
  }
  // the directories on the way may be symlinks or hold `..`: name the file as the kernel finds it
  const { dir, base } = splitDir(target);
  const real = await p.realpath(dir);
  return { target: `${real === '/' ? '' : real}/${base}`, st };
}

async function dirStat(p: FilePrimitives, dir: string): Promise<FileStat> {
  const st = await p.lstat(dir);
  const real = st?.isSymlink ? await p.lstat(await p.realpath(dir)) : st;
  if (!real) throw new UnsafePathError(p.host, dir, 'the directory is gone');
  return real;
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
 * target (only one that no other user could have made: resolveTarget), compare the content (equal content and attributes: no-op), decide
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
  const { target, st } = await resolveTarget(p, path);
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
  const prefix = tempPrefix(base);
  const now = Date.now();
  const entries = await p.list(dir).catch(() => []);
  for (const e of entries) {
    if (e.name.startsWith(prefix) && now - e.mtimeMs > STALE_TEMP_MS) {
      await p.unlink(`${dir === '/' ? '' : dir}/${e.name}`).catch(() => undefined);
    }
  }
}

/** The exit status of a shell commit that refused to write (UnsafePathError). */
export const UNSAFE_EXIT = 97;

/**
 * Shell functions for the commits that run as one remote program (through
 * sudo, and batched writes), where no open handle can be passed between
 * commands and chown/chmod/sync go by name:
 *  - pe_resolve PATH: sets t to the file meant, following only symlinks that
 *    root or the writer could have made (the rule of untrustedLink), else
 *    exits UNSAFE_EXIT;
 *  - pe_enter DIR BASE: `mktemp -d` makes a fresh directory in DIR (random
 *    name, mkdir(2) fails on any existing entry, mode 0700, owned by the
 *    writer) and cd's into it; pe_leave removes it.
 * Why this is race-free: the temp file is `new` inside that directory and
 * every command names it relative to the working directory. The directory's
 * inode is held as the working directory: the owner of DIR may rename or
 * remove its name (rmdir works on an empty directory) and put a symlink in
 * its place, but that cannot move us; and once inside, the checks (owned by
 * us, mode 700, empty, `..` is DIR) prove it is the directory mktemp made (an
 * impostor put there before the cd fails them; then, or when the directory
 * was removed before `new` was made in it, a fresh one is tried, 5 at most),
 * so no other user can add, swap or open an entry in it: `chown new`,
 * `chmod new`, `sync new` reach our file and nothing else. The final
 * rename(2) (mv -T, same file system as `..` is DIR) and the backup link
 * (ln -P, link(2) of the entry itself) never follow a symlink at the
 * target's name. The owner of DIR can still make a write fail (remove the
 * directory 5 times over, swap the target for a symlink: refused), not
 * redirect it.
 */
export const PRIVATE_DIR_SH = [
  'pe_pd=; pe_me=$(id -u)',
  'pe_unsafe() { printf "%s\\n" "$1" >&2; exit ' + String(UNSAFE_EXIT) + '; }',
  // a swap before `new` exists makes the try fail (we end up elsewhere, or in a removed directory): try again
  'pe_enter() {',
  '  pe_try=0',
  '  while :; do',
  '    pe_try=$((pe_try + 1))',
  '    pe_pd=$(mktemp -d -- "$1/.$2.pe-tmp-XXXXXXXXXXXX")',
  '    if cd -P -- "$pe_pd" 2>/dev/null && pe_ours $(stat -L -c "%u %a %d:%i" -- . .. "$1") && pe_empty &&',
  '      { { true; } > new; } 2>/dev/null; then return 0; fi',
  '    cd /; rmdir -- "$pe_pd" 2>/dev/null || true; pe_pd=',
  '    [ "$pe_try" -lt 5 ] || pe_unsafe "refusing to write in $1: its private temp directory was replaced $pe_try times"',
  '  done',
  '}',
  // owner and mode of `.`, then `..`, then DIR: ours, 700, and `..` is DIR
  'pe_ours() { [ "$1 $2" = "$pe_me 700" ] && [ "$6" = "$9" ]; }',
  // no entry in `.` (globs and test are shell builtins: no process per file)
  'pe_empty() { for pe_f in * .[!.]* ..?*; do if [ -e "$pe_f" ] || [ -L "$pe_f" ]; then return 1; fi; done; }',
  'pe_leave() {',
  '  [ -n "$pe_pd" ] || return 0',
  '  rm -f -- new; cd /; rmdir -- "$pe_pd" 2>/dev/null || true; pe_pd=',
  '}',
  // temp files and private directories of BASE older than a minute: a killed writer's
  'pe_cleaned=',
  'pe_clean() {',
  '  case $2 in *[][*?\\\\]*) return 0 ;; esac',
  '  [ "$pe_cleaned" != "$1/$2" ] || return 0; pe_cleaned=$1/$2',
  '  find "$1" -mindepth 1 -maxdepth 1 -name ".$2.pe-tmp-*" -mmin +1 \\( -type f -o \\( -type d -user "$pe_me" \\) \\) \\',
  '    -exec rm -rf -- {} + 2>/dev/null || true',
  '}',
  'pe_trusted() { case $1 in 0|"$pe_me") return 0 ;; esac; return 1; }',
  'pe_resolve() {',
  '  t=$1; pe_n=0',
  '  while [ -L "$t" ]; do',
  '    pe_n=$((pe_n + 1)); [ "$pe_n" -le ' +
    String(MAX_SYMLINK_HOPS) +
    ' ] || pe_unsafe "refusing to write $1: too many symlinks"',
  '    pe_d=${t%/*}; [ -n "$pe_d" ] || pe_d=/',
  '    pe_du=$(stat -L -c %u -- "$pe_d"); pe_dm=$(stat -L -c %a -- "$pe_d"); pe_lu=$(stat -c %u -- "$t")',
  '    pe_trusted "$pe_du" || pe_unsafe "refusing to write $1: $t is a symlink in a directory owned by uid $pe_du"',
  '    if [ $((0$pe_dm & 022)) -ne 0 ] && [ $((0$pe_dm & 01000)) -eq 0 ]; then',
  '      pe_unsafe "refusing to write $1: $t is a symlink in a directory others may write to (mode $pe_dm)"',
  '    fi',
  '    pe_trusted "$pe_lu" || pe_unsafe "refusing to write $1: $t is a symlink owned by uid $pe_lu"',
  '    pe_l=$(readlink -- "$t")',
  '    case $pe_l in /*) t=$pe_l ;; *) t=${pe_d%/}/$pe_l ;; esac',
  '  done',
  '  if [ "$pe_n" -gt 0 ]; then',
  '    pe_d=${t%/*}; [ -n "$pe_d" ] || pe_d=/',
  '    pe_d=$(readlink -f -- "$pe_d"); t=${pe_d%/}/${t##*/}',
  '  fi',
  '}',
].join('\n');
