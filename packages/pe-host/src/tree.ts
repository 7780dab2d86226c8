import { CommandFailedError, HostError } from './errors.js';
import type { Host } from './host.js';
import { validateRemotePath } from './validate.js';

/** sha256 of every regular file under dir, keyed by relative path. Hashes only: file contents never leave the host. */
export async function treeManifest(
  host: Host,
  dir: string,
  opts: { sudo?: boolean } = {},
): Promise<Map<string, string>> {
  validateRemotePath(dir);
  const script = 'cd -- "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum --';
  const argv = ['sh', '-c', script, 'sh', dir];
  const r = await host.exec(argv, { sudo: opts.sudo ?? false, readOnly: true, allowFailure: true });
  // a live tree (a CA signing meanwhile: its request is removed) may lose a file between the listing and its hash:
  // such a file is not in the tree any more, and is left out; any other failure is one
  if (r.code !== 0 && !vanishedOnly(r.stderr))
    throw new CommandFailedError(host.name, argv, r.code, r.stderr, r.stdout);
  const m = new Map<string, string>();
  for (const line of r.stdout.split('\n')) {
    const match = /^\\?([0-9a-f]{64}) {2}(.*)$/.exec(line);
    if (match) m.set(match[2]!.replace(/^\.\//, ''), match[1]!);
  }
  return m;
}

/** sha256sum's complaints are all of files that no longer exist (xargs exits 123 when sha256sum failed). */
export function vanishedOnly(stderr: string): boolean {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  return lines.length > 0 && lines.every((l) => /^sha256sum: .*: No such file or directory$/.test(l));
}

export interface CopyTreeResult {
  files: number;
  bytes: number;
  ms: number;
  manifest: Map<string, string>;
}

export function manifestDifferences(a: Map<string, string>, b: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [p, h] of a) if (b.get(p) !== h) out.push(b.has(p) ? `${p} differs` : `${p} missing`);
  for (const p of b.keys()) if (!a.has(p)) out.push(`${p} unexpected`);
  return out;
}

/**
 * Streams a directory tree from one host to another (tar over two channels,
 * through this process's memory, never staged on disk), then compares sha256
 * manifests taken on both ends. Owners, modes and times are kept (owners by
 * name, as tar does for root).
 */
export async function copyTree(
  src: Host,
  srcDir: string,
  dst: Host,
  dstDir: string,
  opts: { sudo?: boolean; timeoutMs?: number } = {},
): Promise<CopyTreeResult> {
  validateRemotePath(srcDir);
  validateRemotePath(dstDir);
  const t0 = performance.now();
  const sudo = opts.sudo ?? true;
  await dst.mkdir(dstDir, { sudo });
  const reader = await src.spawn(['tar', '-C', srcDir, '-cf', '-', '.'], {
    sudo,
    readOnly: true,
    timeoutMs: opts.timeoutMs,
  });
  const writer = await dst.spawn(['tar', '-C', dstDir, '-xpf', '-', '--same-owner'], {
    sudo,
    timeoutMs: opts.timeoutMs,
  });
  let bytes = 0;
  reader.stdout.on('data', (b: Buffer) => (bytes += b.length));
  reader.stderr.resume();
  writer.stdout.resume();
  writer.stderr.resume();
  // tar -x may exit once it has read the end-of-archive blocks, before the
  // padding of the last record: its stdin then closes early. That is not a
  // failure (the exit codes and the manifests decide); keep draining the
  // reader so it never blocks on a full channel.
  reader.stdout.pipe(writer.stdin);
  const drain = () => {
    reader.stdout.unpipe(writer.stdin);
    reader.stdout.resume();
  };
  writer.stdin.on('error', drain);
  writer.stdin.on('close', drain);
  await Promise.all([reader.done, writer.done]);
  const [a, b] = await Promise.all([treeManifest(src, srcDir, { sudo }), treeManifest(dst, dstDir, { sudo })]);
  const diff = manifestDifferences(a, b);
  if (diff.length) {
    throw new HostError(
      'E_VERIFY',
      `the copy of ${srcDir} from ${src.name} does not match at ${dstDir}: ${diff.slice(0, 5).join(', ')}.`,
      {
        host: dst.name,
        hint: 'Nothing was removed at the source; rerun the copy.',
      },
    );
  }
  return { files: a.size, bytes, ms: performance.now() - t0, manifest: a };
}
