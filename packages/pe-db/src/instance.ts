import type { ExecResult, Host } from '@pe-stack/pe-host';
import { layouts, parsePostgresqlConf, type Layout } from '@pe-stack/pe-config-files';
import { FileNotFoundError, pollUntil, validateRemotePath } from '@pe-stack/pe-host';
import { DbQueryError } from './errors.js';

/**
 * One PostgreSQL cluster on one host, described as data: where its binaries,
 * data and configuration live, which OS user owns it, where it listens, and
 * the commands (run as root) that start, stop, reload and promote it. A layout
 * supplies it (Debian's `pg_ctlcluster`, PE 3's `pe-postgresql`), a test or
 * a benchmark supplies one for a throwaway cluster. Every operation of this
 * package takes one, so the same code drives all of them.
 */
export interface PgInstance {
  host: Host;
  /** Directory of psql, pg_ctl, pg_basebackup, pg_rewind. */
  binDir: string;
  dataDir: string;
  /** postgresql.conf (where ALTER SYSTEM is not available). */
  confFile: string;
  hbaFile: string;
  /** OS user that owns the data directory and runs the server. */
  osUser: string;
  port: number;
  /**
   * Directory of the server's Unix socket: local commands connect through it,
   * as osUser, and only to a server process running as osUser (see asDbUser).
   */
  socketDir: string;
  /** argv run as root on the host. */
  control: {
    start: string[];
    stop: string[];
    promote: string[];
  };
  /**
   * A file whose content decides whether the service manager starts this
   * cluster at boot (Debian's start.conf: auto | manual | disabled).
   */
  startConf?: string;
}

/**
 * The PostgreSQL instance a layout (pe-config-files) describes. Debian is
 * driven with pg_ctlcluster (one cluster, not every cluster of the host);
 * PE 3 with its pe-postgresql service, and pg_ctl (as pe-postgres) to promote.
 */
export function instanceFromLayout(host: Host, layout: Layout): PgInstance {
  const pgc = layout.postgresql;
  const confFile = layout.files.postgresqlConf?.path ?? `${layout.dirs.postgresqlConfdir}/postgresql.conf`;
  const hbaFile = layout.files.pgHbaConf?.path ?? `${layout.dirs.postgresqlConfdir}/pg_hba.conf`;
  const osUser = layout.users.postgres.user;
  const base = { host, dataDir: layout.dirs.postgresqlDataDir, confFile, hbaFile, osUser, port: pgc.port };
  if (layout.flavour === 'debian') {
    const c = pgc.cluster ?? 'main';
    return {
      ...base,
      binDir: `/usr/lib/postgresql/${pgc.version}/bin`,
      socketDir: '/var/run/postgresql',
      control: {
        start: ['pg_ctlcluster', pgc.version, c, 'start'],
        stop: ['pg_ctlcluster', pgc.version, c, 'stop', '-m', 'fast'],
        promote: [...layout.commands.postgresPromote],
      },
      startConf: `${layout.dirs.postgresqlConfdir}/start.conf`,
    };
  }
  const service = (argv: readonly string[]) => argv.map((a) => a.replace('{service}', layout.services.postgresql));
  const promote = [...layout.commands.postgresPromote];
  return {
    ...base,
    binDir: '/opt/puppet/bin',
    // pe-postgresql 9.2 is built with PostgreSQL's default socket directory, /tmp (world-writable, sticky):
    // asDbUser's PGREQUIREPEER keeps a socket another local user planted there from answering our commands
    socketDir: '/tmp',
    control: {
      start: service(layout.commands.serviceStart),
      stop: service(layout.commands.serviceStop),
      // pg_ctl refuses to run as root
      promote: /(^|\/)pg_ctl$/.test(promote[0] ?? '') ? ['runuser', '-u', osUser, '--', ...promote] : promote,
    },
  };
}

/**
 * `instanceFromLayout`, with the socket directory the server is configured
 * with: the last active `unix_socket_directories` (PostgreSQL 9.3+) or
 * `unix_socket_directory` (9.2, PE 3's pe-postgresql) of its postgresql.conf
 * (first entry), when it sets one. The layout's default is the build's (PE 3:
 * /tmp, Debian: /var/run/postgresql); a tuned server may use another
 * (found in the lab: a PE 3 pe-postgresql with /var/run/pe-postgresql).
 */
export async function instanceFromHost(host: Host, layout: Layout): Promise<PgInstance> {
  const inst = instanceFromLayout(host, layout);
  let text: string;
  try {
    // one read (no exists first): one round trip where no cache answers it
    text = (await host.readFile(inst.confFile, { sudo: true })).toString('utf8');
  } catch (e) {
    if (e instanceof FileNotFoundError) return inst;
    throw e;
  }
  const conf = parsePostgresqlConf(text, inst.confFile);
  const setting = conf.get('unix_socket_directories') ?? conf.get('unix_socket_directory');
  const first = setting?.split(',')[0]?.trim();
  return first && first.startsWith('/') ? { ...inst, socketDir: first.replace(/\/+$/, '') || '/' } : inst;
}

export function debianInstance(host: Host): PgInstance {
  return instanceFromLayout(host, layouts.debian);
}

export function pe3Instance(host: Host): PgInstance {
  return instanceFromLayout(host, layouts.pe3);
}

/**
 * argv that runs a command as the instance's OS user (the exec itself uses
 * sudo), with libpq's PGREQUIREPEER set to that user: a client connecting
 * through a Unix socket checks the server process's OS user (getpeereid)
 * before it sends anything, so a socket another local user planted in a
 * shared directory such as PE 3's /tmp is refused, not talked to. TCP
 * connections ignore it.
 */
export function asDbUser(inst: Pick<PgInstance, 'osUser'>, argv: readonly string[]): string[] {
  return ['runuser', '-u', inst.osUser, '--', 'env', `${REQUIRE_PEER_ENV}=${inst.osUser}`, ...argv];
}

/** libpq's environment variable for `requirepeer` (PostgreSQL 9.1+). */
export const REQUIRE_PEER_ENV = 'PGREQUIREPEER';

export function bin(inst: PgInstance, name: string): string {
  return `${inst.binDir}/${name}`;
}

/** A SQL string literal (standard_conforming_strings on, the default since 9.1). */
export function quoteLiteral(s: string): string {
  if (s.includes('\0')) throw new DbQueryError('', 'a SQL literal contains a NUL byte.');
  return `'${s.replace(/'/g, "''")}'`;
}

export function quoteIdent(s: string): string {
  if (s.includes('\0')) throw new DbQueryError('', 'a SQL identifier contains a NUL byte.');
  return `"${s.replace(/"/g, '""')}"`;
}

export interface SqlOptions {
  database?: string;
  /** Values in the SQL that must never appear in errors or records. */
  secrets?: readonly string[];
  timeoutMs?: number;
  /** Declares the statement changes nothing (DryRunHost runs it). */
  readOnly?: boolean;
  /**
   * The files the statement may change (pe-host ExecOptions.changesFiles),
   * e.g. `[]` for `SELECT pg_reload_conf()`: a file cache then forgets only
   * those. Unset: any file (ALTER SYSTEM, COPY TO, a base backup ...).
   */
  changesFiles?: readonly string[];
  /**
   * Commit without waiting for a synchronous standby (synchronous_commit =
   * local; default true): our administrative statements must not hang when
   * the synchronous standby is the host that just failed.
   */
  localCommit?: boolean;
}

/**
 * Runs SQL as the instance's superuser over its Unix socket. The SQL travels
 * on stdin, never in argv, so a password in it stays out of `ps` and of
 * command records; psql stops at the first error.
 */
export async function psql(inst: PgInstance, sql: string, opts: SqlOptions = {}): Promise<ExecResult> {
  validateRemotePath(inst.socketDir);
  const argv = asDbUser(inst, [
    bin(inst, 'psql'),
    '-X',
    '-q',
    '-A',
    '-t',
    '-v',
    'ON_ERROR_STOP=1',
    '-h',
    inst.socketDir,
    '-p',
    String(inst.port),
    '-d',
    opts.database ?? 'postgres',
    '-f',
    '-',
  ]);
  const secrets = [...(opts.secrets ?? [])];
  const env = opts.localCommit === false ? undefined : { PGOPTIONS: '-c synchronous_commit=local' };
  const r = await inst.host.exec(argv, {
    sudo: true,
    stdin: sql,
    cwd: '/',
    secrets,
    ...(env ? { env } : {}),
    allowFailure: true,
    timeoutMs: opts.timeoutMs ?? 120_000,
    readOnly: opts.readOnly ?? false,
    ...(opts.changesFiles ? { changesFiles: opts.changesFiles } : {}),
  });
  if (r.code !== 0) {
    const red = inst.host.redactor.with(secrets);
    const detail = red.redact((r.stderr.trim() || r.stdout.trim()).split('\n').slice(-4).join(' '));
    throw new DbQueryError(inst.host.name, `psql on port ${inst.port} failed: ${detail}`, {
      hint: 'Check that the PostgreSQL instance is running and that the statement is valid for its version.',
    });
  }
  return r;
}

/** Rows of a SELECT as plain objects (through json_agg, so types and NULLs survive). */
export async function query<T = Record<string, unknown>>(
  inst: PgInstance,
  select: string,
  opts: SqlOptions = {},
): Promise<T[]> {
  const r = await psql(inst, `SELECT coalesce(json_agg(q), '[]'::json) FROM (${select}) q;\n`, {
    readOnly: true,
    ...opts,
  });
  const text = r.stdout.trim();
  try {
    return JSON.parse(text === '' ? '[]' : text) as T[];
  } catch (e) {
    throw new DbQueryError(inst.host.name, `could not read the answer of a query on port ${inst.port}.`, { cause: e });
  }
}

export async function queryOne<T = Record<string, unknown>>(
  inst: PgInstance,
  select: string,
  opts: SqlOptions = {},
): Promise<T> {
  const rows = await query<T>(inst, select, opts);
  if (rows.length !== 1) throw new DbQueryError(inst.host.name, `expected one row, got ${rows.length}.`);
  return rows[0]!;
}

export async function serverVersionNum(inst: PgInstance): Promise<number> {
  const r = await queryOne<{ v: string }>(inst, `SELECT current_setting('server_version_num') AS v`);
  return Number(r.v);
}

/**
 * pe-db relies on PostgreSQL 10+ (pg_hba_file_rules, pg_current_wal_lsn,
 * pg_stat_replication lag columns, SCRAM). An older server (PE 3.x ships 9.2
 * or 9.4) is refused with a clear message instead of a SQL error.
 */
export async function requireVersion(inst: PgInstance, what: string, min = 100000): Promise<void> {
  const v = await serverVersionNum(inst);
  if (v < min) {
    throw new DbQueryError(
      inst.host.name,
      `${what} needs PostgreSQL ${Math.floor(min / 10000)} or later; the server on port ${inst.port} is ${Math.floor(v / 10000)}.${Math.floor(v / 100) % 100}.`,
      {
        hint: 'Upgrade that PostgreSQL (pg_upgrade) before using pe-db on it.',
      },
    );
  }
}

/** Is the server accepting connections on its socket? (pg_isready) */
export async function isRunning(inst: PgInstance): Promise<boolean> {
  // as the OS user: peer authentication lets it in, so the server logs no rejected connection for every check
  const r = await inst.host.exec(
    asDbUser(inst, [bin(inst, 'pg_isready'), '-q', '-h', inst.socketDir, '-p', String(inst.port), '-d', 'postgres']),
    {
      sudo: true,
      cwd: '/',
      allowFailure: true,
      readOnly: true,
      timeoutMs: 15_000,
    },
  );
  return r.code === 0;
}

export async function isInRecovery(inst: PgInstance): Promise<boolean> {
  return (await queryOne<{ r: boolean }>(inst, 'SELECT pg_is_in_recovery() AS r')).r;
}

/**
 * Poll until fn() is true or the time is up (pe-host pollUntil; an error
 * counts as "not yet"); returns whether it became true and how long it took.
 */
export async function waitFor(
  fn: () => Promise<boolean>,
  timeoutMs: number,
  intervalMs = 100,
): Promise<{ ok: boolean; ms: number }> {
  const r = await pollUntil(async () => (await fn()) || false, { timeoutMs, intervalMs, retryErrors: true });
  return { ok: r.ok, ms: r.ms };
}
