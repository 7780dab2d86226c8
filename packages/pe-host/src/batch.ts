import { PeError } from './errors.js';
import type { FileStat, Host } from './host.js';
import { validateRemotePath } from './validate.js';

/** One path of a batched read: its lstat, and its content when asked for and readable. */
export interface BatchedFile {
  path: string;
  /** lstat of the path (as Host.stat); undefined: the path does not exist. */
  stat: FileStat | undefined;
  /** The content (a symlink is followed, as Host.readFile does); undefined when not asked for, not a file, too large or unreadable. */
  data?: Buffer;
  /** The path exists but could not be examined (stat or read failed for another reason than absence): nothing is known. */
  unknown?: boolean;
}

export interface ReadFilesOptions {
  sudo?: boolean;
  /** Paths whose content is not wanted (private keys: only whether they exist and their attributes). */
  statOnly?: readonly string[];
  /** Content of larger files is left out (default 4 MiB). */
  maxBytes?: number;
  timeoutMs?: number;
}

// One line per path: `?` absent; `!` exists but stat failed; `+size mode uid gid mtime type` then one
// more line: `=base64` (content), `-` (content not wanted, not a file or too large) or `!` (read failed).
// base64 keeps any byte safe in the line format; a file changed between stat and read is read whole.
const SCRIPT = [
  'max=$1; shift',
  'while [ $# -gt 0 ]; do',
  '  p=$1; want=$2; shift 2',
  '  if [ ! -e "$p" ] && [ ! -L "$p" ]; then echo "?"; continue; fi',
  '  if ! s=$(LC_ALL=C stat -c "%s %a %u %g %Y %F" -- "$p" 2>/dev/null); then echo "!"; continue; fi',
  '  echo "+$s"',
  '  case "$want:$s" in',
  '    1:*" regular file"|1:*" regular empty file"|1:*" symbolic link")',
  '      if [ "${s%% *}" -gt "$max" ]; then echo "-"; elif d=$(base64 -w0 -- "$p" 2>/dev/null); then echo "=$d"; else echo "!"; fi ;;',
  '    *) echo "-" ;;',
  '  esac',
  'done',
].join('\n');

/** Parses one `stat -c "%s %a %u %g %Y %F"` line the way SshHost.stat does. */
function parseStat(line: string): FileStat {
  const [size, mode, uid, gid, mtime, ...type] = line.split(' ');
  const kind = type.join(' ');
  return {
    size: Number(size),
    mode: parseInt(mode ?? '0', 8),
    uid: Number(uid),
    gid: Number(gid),
    mtimeMs: Number(mtime) * 1000,
    isFile: kind.startsWith('regular'),
    isDirectory: kind === 'directory',
    isSymlink: kind === 'symbolic link',
  };
}

/**
 * Reads many files in ONE remote command (one SSH round trip instead of a
 * stat and a read per file): each path's lstat and, unless it is listed in
 * `statOnly`, its content. Read-only (a DryRunHost runs it for real). A path
 * that does not exist is reported with `stat: undefined`; one that cannot be
 * examined is `unknown` (never guessed). Works on every Host that runs `sh`,
 * GNU `stat` and `base64` (coreutils).
 */
export async function readFiles(host: Host, paths: readonly string[], opts: ReadFilesOptions = {}): Promise<Map<string, BatchedFile>> {
  const out = new Map<string, BatchedFile>();
  const unique = [...new Set(paths)];
  if (unique.length === 0) return out;
  for (const p of unique) validateRemotePath(p);
  const statOnly = new Set(opts.statOnly ?? []);
  const args = unique.flatMap((p) => [p, statOnly.has(p) ? '0' : '1']);
  const r = await host.exec(['sh', '-c', SCRIPT, 'sh', String(opts.maxBytes ?? 4 * 1024 * 1024), ...args], {
    sudo: opts.sudo ?? false,
    readOnly: true,
    ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}),
  });
  const lines = r.stdout.split('\n').map((l) => l.replace(/\r$/, '')); // a sudo pty may add CR
  const bad = (path: string) => new PeError('E_IO', `reading several files at once: unexpected output at ${path}.`, { host: host.name, hint: 'The host needs sh, GNU stat and base64 (coreutils).' });
  let i = 0;
  for (const path of unique) {
    const head = lines[i++];
    if (head === undefined) throw bad(path);
    if (head === '?') out.set(path, { path, stat: undefined });
    else if (head === '!') out.set(path, { path, stat: undefined, unknown: true });
    else if (head.startsWith('+')) {
      const stat = parseStat(head.slice(1));
      const body = lines[i++] ?? '';
      if (body.startsWith('=')) out.set(path, { path, stat, data: Buffer.from(body.slice(1), 'base64') });
      else if (body === '!') out.set(path, { path, stat: undefined, unknown: true });
      else if (body === '-') out.set(path, { path, stat });
      else throw bad(path);
    } else throw bad(path);
  }
  return out;
}
