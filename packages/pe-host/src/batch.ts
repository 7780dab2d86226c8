import { HostError, PermissionDeniedError } from './errors.js';
import type { FileStat, Host, ReadOptions } from './host.js';
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
  /** Content of larger files is left out of the answer (default 4 MiB; they are still read: name files whose content you want). */
  maxBytes?: number;
  timeoutMs?: number;
}

// A handful of processes however many paths (a process per file would load a busy host): the shell's own
// tests say which paths are absent (`?<TAB>path`), one lstat of the others (`+size mode uid gid mtime
// type<TAB>path`); then, for the files whose content is wanted (argument prefix 1), their sizes, their
// bytes concatenated in base64, and their sizes again: the bytes are split by the sizes only when both
// agree and add up (a file that changed meanwhile leaves every content unknown, never misplaced).
const SCRIPT = [
  'lstats() {',
  '  for a do shift; p=${a#?}',
  '    if [ -e "$p" ] || [ -L "$p" ]; then set -- "$@" "$p"; else printf "?\\t%s\\n" "$p"; fi',
  '  done',
  '  if [ $# -gt 0 ]; then LC_ALL=C stat -c "+%s %a %u %g %Y %F\t%n" -- "$@" 2>/dev/null; fi',
  '}',
  'contents() {',
  '  for a do shift; p=${a#?}',
  '    case $a in 1*) if [ -f "$p" ]; then set -- "$@" "$p"; fi ;; esac',
  '  done',
  '  echo "#sizes"',
  '  if [ $# -gt 0 ]; then LC_ALL=C stat -L -c "%s\t%n" -- "$@" 2>/dev/null; fi',
  '  echo "#data"',
  '  if [ $# -gt 0 ]; then cat -- "$@" 2>/dev/null | base64 -w0; fi',
  '  echo',
  '  echo "#sizes"',
  '  if [ $# -gt 0 ]; then LC_ALL=C stat -L -c "%s\t%n" -- "$@" 2>/dev/null; fi',
  '}',
  'lstats "$@"',
  'contents "$@"',
  'exit 0',
].join('\n');

/** Parses one `stat -c "%s %a %u %g %Y %F"` line (SshHost.stat through sudo, and readFiles). */
export function parseStat(line: string): FileStat {
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
export async function readFiles(
  host: Host,
  paths: readonly string[],
  opts: ReadFilesOptions = {},
): Promise<Map<string, BatchedFile>> {
  const out = new Map<string, BatchedFile>();
  const unique = [...new Set(paths)];
  if (unique.length === 0) return out;
  for (const p of unique) validateRemotePath(p);
  const statOnly = new Set(opts.statOnly ?? []);
  const max = opts.maxBytes ?? 4 * 1024 * 1024;
  const r = await host.exec(['sh', '-c', SCRIPT, 'sh', ...unique.map((p) => `${statOnly.has(p) ? '0' : '1'}${p}`)], {
    sudo: opts.sudo ?? false,
    readOnly: true,
    ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}),
  });
  const lines = r.stdout.split('\n').map((l) => l.replace(/\r$/, '')); // a sudo pty may add CR
  const bad = () =>
    new HostError('E_IO', 'reading several files at once: unexpected output.', {
      host: host.name,
      hint: 'The host needs sh, GNU stat, cat and base64 (coreutils).',
    });
  const tab = (l: string): [string, string] => {
    const i = l.indexOf('\t');
    if (i < 0) throw bad();
    return [l.slice(0, i), l.slice(i + 1)];
  };
  const known = new Set(unique);
  let i = 0;
  for (; i < lines.length && lines[i] !== '#sizes'; i++) {
    const [head, path] = tab(lines[i]!);
    if (!known.has(path)) throw bad();
    if (head === '?') out.set(path, { path, stat: undefined });
    else if (head.startsWith('+')) out.set(path, { path, stat: parseStat(head.slice(1)) });
    else throw bad();
  }
  // an existing path that stat could not examine: nothing is known of it
  for (const path of unique) if (!out.has(path)) out.set(path, { path, stat: undefined, unknown: true });
  const sizes = (from: number): [Map<string, number>, number] => {
    const m = new Map<string, number>();
    let j = from + 1;
    for (; j < lines.length && !lines[j]!.startsWith('#') && lines[j] !== ''; j++) {
      const [size, path] = tab(lines[j]!);
      m.set(path, Number(size));
    }
    return [m, j];
  };
  if (lines[i] !== '#sizes') throw bad();
  const [before, d] = sizes(i);
  if (lines[d] !== '#data') throw bad();
  const data = Buffer.from(lines[d + 1] ?? '', 'base64');
  if (lines[d + 2] !== '#sizes') throw bad();
  const [after] = sizes(d + 2);
  const order = [...before.keys()];
  const total = order.reduce((a, p) => a + before.get(p)!, 0);
  const agree =
    order.length === after.size && order.every((p) => after.get(p) === before.get(p)) && total === data.length;
  let off = 0;
  for (const path of order) {
    const n = before.get(path)!;
    const e = out.get(path);
    if (agree && e?.stat && n <= max) e.data = Buffer.from(data.subarray(off, off + n));
    off += n;
  }
  if (!agree) for (const path of order) out.set(path, { path, stat: undefined, unknown: true });
  return new Map(unique.map((p) => [p, out.get(p)!])); // in the order asked
}

/**
 * Host.readFiles for a host without a batch of its own: a stat and, for the
 * files whose content is wanted, a read per path, with readFiles' answers (a
 * path that cannot be examined is `unknown`; content left out when too large
 * or unreadable).
 */
export async function readFilesOneByOne(
  host: Pick<Host, 'stat' | 'readFile'>,
  paths: readonly string[],
  opts: ReadFilesOptions = {},
): Promise<Map<string, BatchedFile>> {
  const out = new Map<string, BatchedFile>();
  const statOnly = new Set(opts.statOnly ?? []);
  const max = opts.maxBytes ?? 4 * 1024 * 1024;
  const ro: ReadOptions = opts.sudo === undefined ? {} : { sudo: opts.sudo };
  for (const path of new Set(paths)) {
    validateRemotePath(path);
    let stat: FileStat | undefined;
    try {
      stat = await host.stat(path, ro);
    } catch (e) {
      if (!(e instanceof PermissionDeniedError)) throw e;
      out.set(path, { path, stat: undefined, unknown: true });
      continue;
    }
    const entry: BatchedFile = { path, stat };
    if (stat && !statOnly.has(path) && (stat.isFile || stat.isSymlink)) {
      // the host answered the stat: a read that fails now is a file it cannot read (or a link to no file)
      const data = await host.readFile(path, ro).catch(() => undefined);
      if (data && data.length <= max) entry.data = data;
    }
    out.set(path, entry);
  }
  return out;
}
