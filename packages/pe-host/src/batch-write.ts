import { PRIVATE_DIR_SH, UNSAFE_EXIT } from './atomic.js';
import { CommandFailedError, HostError, InvalidInputError, UnsafePathError } from './errors.js';
import { backupPath, toBuffer } from './common.js';
import type { Host, WriteOptions, WriteResult } from './host.js';
import { validateRemotePath } from './validate.js';

/** One file of a batched write: its path, its new content and the options Host.writeFile takes. */
export interface BatchWrite {
  path: string;
  data: string | Buffer;
  opts?: Omit<WriteOptions, 'sudo'>;
}

export interface WriteFilesOptions {
  /** As Host.writeFile's `sudo` (for every file of the batch). */
  sudo?: boolean;
  timeoutMs?: number;
}

/**
 * Writes several files, each as Host.writeFile does (atomic: temp file in the
 * same directory, fsync, rename; a timestamped backup of the old content;
 * owner and mode kept unless given; no-op when content and attributes are
 * already right): with the host's `writeFiles` (ONE round trip on SshHost;
 * one writeFile after another elsewhere, a DryRunHost recording each as its
 * own write with its masked diff); a single file with `writeFile`. Results in
 * the order given. Files are committed in order; on an error the files
 * before it are written, the others are not.
 */
export async function writeFiles(
  host: Host,
  files: readonly BatchWrite[],
  opts: WriteFilesOptions = {},
): Promise<WriteResult[]> {
  if (files.length === 0) return [];
  if (files.length > 1) return host.writeFiles(files, opts);
  return writeFilesOneByOne(host, files, opts);
}

/** Host.writeFiles for a host without a batch of its own: one writeFile after another. */
export async function writeFilesOneByOne(
  host: Pick<Host, 'writeFile'>,
  files: readonly BatchWrite[],
  opts: WriteFilesOptions = {},
): Promise<WriteResult[]> {
  const out: WriteResult[] = [];
  for (const f of files)
    out.push(
      await host.writeFile(f.path, f.data, { ...f.opts, ...(opts.sudo === undefined ? {} : { sudo: opts.sudo }) }),
    );
  return out;
}

// One shell program commits every file, in order, as atomicWrite does: follow a symlink to its target (only one
// root or the writer could have made: pe_resolve, else exit UNSAFE_EXIT); the new bytes (exactly `size` of them,
// from stdin: GNU head -c reads no more than it writes) into `new` in a private directory made beside the target
// (PRIVATE_DIR_SH says why naming it there is race-free), fsync; owner and mode as given, else the old file's,
// else the writer and 0644; equal bytes and attributes: the temp file goes, nothing changes; else the old file
// hard-linked as the backup and the temp file renamed over it. Temp files of the target older than a minute (a
// killed writer's) are removed first. Per file one line: `=<TAB>i<TAB>target` unchanged,
// `+<TAB>i<TAB>target<TAB>backup` written.
const SCRIPT = [
  'set -eu',
  'stamp=$1; shift',
  'umask 077',
  PRIVATE_DIR_SH,
  'trap pe_leave EXIT',
  'i=0',
  'while [ $# -gt 0 ]; do',
  '  path=$1; size=$2; mode=$3; owner=$4; group=$5; backup=$6; shift 6',
  '  pe_resolve "$path"',
  '  dir=${t%/*}; [ -n "$dir" ] || dir=/',
  '  pe_clean "$dir" "${t##*/}"',
  '  old=; o=$(stat -c "%F|%u %g %a" -- "$t" 2>/dev/null || true)',
  '  case $o in',
  '    "regular file|"* | "regular empty file|"*) old=${o#*|} ;;',
  '    "symbolic link|"*) pe_unsafe "refusing to write $path: $t became a symlink" ;;',
  '  esac',
  '  pe_enter "$dir" "${t##*/}"',
  '  head -c "$size" > new',
  '  sync -- new 2>/dev/null || sync',
  '  if [ -z "$owner" ] && [ -n "$old" ]; then owner=${old%% *}; fi',
  '  if [ -z "$group" ] && [ -n "$old" ]; then group=${old#* }; group=${group%% *}; fi',
  '  if [ -z "$mode" ]; then if [ -n "$old" ]; then mode=${old##* }; else mode=644; fi; fi',
  '  if [ -n "$group" ]; then chown -- "$owner:$group" new; elif [ -n "$owner" ]; then chown -- "$owner" new; fi',
  '  chmod -- "$mode" new',
  '  n=$(stat -c "%s|%u %g %a" new)',
  '  [ "${n%%|*}" = "$size" ] || { echo "short input for $path" >&2; exit 3; }',
  '  if [ -n "$old" ] && [ "${n#*|}" = "$old" ] && cmp -s -- new "$t"; then',
  '    pe_leave',
  '    printf "=\\t%s\\t%s\\n" "$i" "$t"',
  '  else',
  '    b=',
  '    if [ -n "$old" ] && [ "$backup" = 1 ]; then b="$t.pe-backup-$stamp"; ln -P -- "$t" "$b"; fi',
  '    mv -fT -- new "$t"',
  '    pe_leave',
  '    sync -- "$dir" 2>/dev/null || true',
  '    printf "+\\t%s\\t%s\\t%s\\n" "$i" "$t" "$b"',
  '  fi',
  '  i=$((i + 1))',
  'done',
].join('\n');

/** The refusal's own sentence (the last line the script wrote), without the path it repeats. */
function unsafeReason(e: CommandFailedError): string {
  const line = (e.stderr.trim() || e.stdout.trim()).replace(/\r/g, '').split('\n').at(-1) ?? '';
  return line.replace(/^refusing to write (in )?\S+: /, '') || 'the target is not safe to write';
}

/** An owner or group for chown: a name or an id (numeric strings pass as ids). */
function idArg(v: string | number | undefined): string {
  if (v === undefined) return '';
  const s = String(v);
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*\$?$/.test(s))
    throw new InvalidInputError(`"${s}" is not a valid owner or group name.`);
  return s;
}

/**
 * The one command of a batched write (used by SshHost.writeFiles): argv and
 * stdin (every file's bytes, concatenated; never argv), and the parser of its
 * output. Exported for hosts that run commands (`exec`).
 */
export async function execWriteFiles(
  host: Pick<Host, 'name' | 'exec'>,
  files: readonly BatchWrite[],
  opts: { sudo: boolean; timeoutMs?: number },
): Promise<WriteResult[]> {
  const datas = files.map((f) => toBuffer(f.data));
  // the backup suffix, as backupPath makes it (one timestamp for the batch; beside each target)
  const stamp = backupPath('', new Date()).slice('.pe-backup-'.length);
  const args: string[] = [stamp];
  files.forEach((f, i) => {
    validateRemotePath(f.path);
    const o = f.opts ?? {};
    args.push(
      f.path,
      String(datas[i]!.length),
      o.mode === undefined ? '' : (o.mode & 0o7777).toString(8),
      idArg(o.owner),
      idArg(o.group),
      o.backup === false ? '0' : '1',
    );
  });
  const secrets = files.flatMap((f) => [...(f.opts?.secrets ?? [])]);
  const stdin = Buffer.concat(datas);
  let r;
  try {
    r = await host.exec(['sh', '-c', SCRIPT, 'sh', ...args], {
      sudo: opts.sudo,
      stdin,
      ...(secrets.length ? { secrets } : {}),
      ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}),
    });
  } catch (e) {
    if (!(e instanceof CommandFailedError)) throw e;
    // which file failed: the first one the output does not report
    const done = e.stdout.split('\n').filter((l) => /^[=+]\t/.test(l)).length;
    const at = files[Math.min(done, files.length - 1)]!.path;
    if (e.exitCode === UNSAFE_EXIT)
      throw new UnsafePathError(
        host.name,
        at,
        `${unsafeReason(e)} (file ${done + 1} of ${files.length} written together)`,
      );
    throw new HostError('E_IO', `writing ${at} (file ${done + 1} of ${files.length} written together) failed.`, {
      host: host.name,
      cause: e,
      hint: 'The files before it were written (atomically, with backups); check the directory, permissions and disk space, then rerun.',
    });
  } finally {
    stdin.fill(0); // our copy (private keys pass through here)
    datas.forEach((d, i) => d !== files[i]!.data && d.fill(0));
  }
  const out: (WriteResult | undefined)[] = files.map(() => undefined);
  for (const line of r.stdout.split('\n')) {
    const [kind, idx, target, backup] = line.replace(/\r$/, '').split('\t');
    const i = Number(idx);
    if ((kind !== '=' && kind !== '+') || !Number.isInteger(i) || i < 0 || i >= files.length || !target) continue;
    out[i] =
      kind === '='
        ? { path: target, changed: false }
        : backup
          ? { path: target, changed: true, backup }
          : { path: target, changed: true };
  }
  if (out.some((x) => x === undefined))
    throw new HostError('E_IO', `writing ${files.length} files together: unexpected output.`, {
      host: host.name,
      hint: 'The host needs sh and GNU coreutils (head, stat, cmp, readlink).',
    });
  return out as WriteResult[];
}
