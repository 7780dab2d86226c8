import { promises as fs } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Host } from '@pe-stack/pe-host';
import { ClusterError } from '../errors.js';

/**
 * Retention of the copies of the CA private key that keeping a standby's CA
 * copy current leaves behind: the verified archives on the controller
 * (`<backups>/ca-sync/ca-<host>-<time>.tar` and their manifests) and the CA
 * directories kept aside on a host by a swap (`<cadir>.pe-backup-<time>`).
 * Under `standby --watch` there is one of each per signing; each holds the
 * CA key.
 */
export interface CaCopyRetention {
  /** At most this many copies are kept, the newest (default 5). */
  keep: number;
  /** Copies older than this many days are removed (default 30). */
  maxAgeDays: number;
}

export const DEFAULT_CA_COPY_RETENTION: Readonly<CaCopyRetention> = Object.freeze({ keep: 5, maxAgeDays: 30 });

/** The policy with defaults filled in; a count below 1 or an age that is not a positive number is refused. */
export function caCopyRetention(o: Partial<CaCopyRetention> = {}): CaCopyRetention {
  const policy = { ...DEFAULT_CA_COPY_RETENTION, ...o };
  if (!Number.isInteger(policy.keep) || policy.keep < 1)
    throw new ClusterError(
      'E_INVALID_INPUT',
      `CA copies to keep: expected a whole number of at least 1, got ${policy.keep}.`,
    );
  if (!Number.isFinite(policy.maxAgeDays) || policy.maxAgeDays <= 0)
    throw new ClusterError(
      'E_INVALID_INPUT',
      `maximum age of CA copies: expected a positive number of days, got ${policy.maxAgeDays}.`,
    );
  return policy;
}

/** The time in a copy's name (`20261207T215447123Z`, as pe-certs and pe-host stamp them). */
export function stampTime(stamp: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(\d{3})Z$/.exec(stamp);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, ms] = m.map(Number) as number[];
  const t = Date.UTC(y!, mo! - 1, d!, h!, mi!, s!, ms!);
  return Number.isNaN(t) ? undefined : new Date(t);
}

export interface DatedCopy {
  /** A path (local or on a host). */
  path: string;
  at: Date;
}

/**
 * The copies the policy removes: beyond the `keep` newest, or older than
 * `maxAgeDays`. Never one in `protect`; never the newest unless
 * `protectNewest: false` (where something else is the verified copy).
 */
export function expiredCopies<T extends DatedCopy>(
  copies: readonly T[],
  policy: CaCopyRetention,
  opts: { now: Date; protect?: readonly string[]; protectNewest?: boolean },
): T[] {
  const newestFirst = [...copies].sort((a, b) => b.at.getTime() - a.at.getTime());
  const oldest = opts.now.getTime() - policy.maxAgeDays * 86_400_000;
  const keep = new Set(opts.protect ?? []);
  if (opts.protectNewest !== false && newestFirst[0]) keep.add(newestFirst[0].path);
  return newestFirst.filter((c, i) => !keep.has(c.path) && (i >= policy.keep || c.at.getTime() < oldest));
}

const ARCHIVE = /^ca-[A-Za-z0-9._-]+-(\d{8}T\d{9}Z)\.tar$/;

/** The CA archives in a directory (`ca-<host>-<time>.tar`), with their times; nothing else is touched. */
async function caArchives(dir: string): Promise<DatedCopy[]> {
  const entries = await fs.readdir(dir, { withFileTypes: true }).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return [];
    throw e;
  });
  return entries.flatMap((e) => {
    const at = e.isFile() ? stampTime(ARCHIVE.exec(e.name)?.[1] ?? '') : undefined;
    return at ? [{ path: join(dir, e.name), at }] : [];
  });
}

/**
 * Applies the policy to the CA archives in `dir` on this machine (each with
 * its `.manifest.json`); `protect` names the newest verified copy (the one
 * the cluster state records). Returns the archives removed.
 */
export async function pruneCaArchives(
  dir: string,
  policy: CaCopyRetention,
  opts: { now?: Date; protect?: readonly string[] } = {},
): Promise<string[]> {
  const gone = expiredCopies(await caArchives(dir), policy, {
    now: opts.now ?? new Date(),
    protect: opts.protect ?? [],
  });
  for (const c of gone) {
    await fs.rm(`${c.path}.manifest.json`, { force: true });
    await fs.rm(c.path, { force: true });
  }
  return gone.map((c) => c.path);
}

/**
 * Applies the policy to the CA directories kept aside on `host` beside
 * `cadir` (`<cadir>.pe-backup-<time>`) that hold the same CA as `cadir`
 * (the same ca_crt.pem): older copies of its key. Another CA kept aside (a
 * master's own CA from before it joined) is never touched. The live CA
 * directory is the verified copy, so no kept-aside one is protected.
 * Returns the directories removed.
 */
export async function pruneKeptAsideCas(
  host: Host,
  cadir: string,
  policy: CaCopyRetention,
  opts: { sudo: boolean; now?: Date },
): Promise<string[]> {
  const prefix = `${basename(cadir)}.pe-backup-`;
  const r = await host.exec(
    [
      'find',
      dirname(cadir),
      '-mindepth',
      '1',
      '-maxdepth',
      '1',
      '-type',
      'd',
      '-name',
      `${prefix}*`,
      '-printf',
      '%f\\n',
    ],
    { sudo: opts.sudo, readOnly: true },
  );
  const copies = r.stdout.split('\n').flatMap((name) => {
    const at = name.startsWith(prefix) ? stampTime(name.slice(prefix.length)) : undefined;
    return at ? [{ path: `${dirname(cadir)}/${name}`, at }] : [];
  });
  const same = await sameCaAs(host, cadir, copies, opts);
  const gone = expiredCopies(same, policy, { now: opts.now ?? new Date(), protectNewest: false });
  for (const c of gone) await host.remove(c.path, { sudo: opts.sudo, recursive: true });
  return gone.map((c) => c.path);
}

/** The directories whose ca_crt.pem equals `cadir`'s (one `sha256sum` for all); none when `cadir` has none. */
async function sameCaAs<T extends DatedCopy>(
  host: Host,
  cadir: string,
  dirs: readonly T[],
  opts: { sudo: boolean },
): Promise<T[]> {
  if (dirs.length === 0) return [];
  // names relative to the parent directory: the output names them the same way
  const cert = (dir: string) => `${basename(dir)}/ca_crt.pem`;
  const certs = [cadir, ...dirs.map((d) => d.path)].map(cert);
  // a directory without ca_crt.pem makes sha256sum exit 1; the lines it printed still count
  const r = await host.exec(['sha256sum', '--', ...certs], {
    sudo: opts.sudo,
    readOnly: true,
    allowFailure: true,
    cwd: dirname(cadir),
  });
  const sums = new Map(
    r.stdout.split('\n').flatMap((l) => {
      const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(l);
      return m ? [[m[2]!, m[1]!] as const] : [];
    }),
  );
  const live = sums.get(certs[0]!);
  return live ? dirs.filter((d) => sums.get(cert(d.path)) === live) : [];
}
