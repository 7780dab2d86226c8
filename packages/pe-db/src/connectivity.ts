import pg from 'pg';
import type { Host } from '@pe-stack/pe-host';
import { validateHostname } from '@pe-stack/pe-host';
import { DbAuthError, DbConnectError, DbHbaRejectedError, DbQueryError, type DbTarget } from './errors.js';

export interface ConnectivityResult {
  /** The host the connection was made from (the secondary, or the controller through a tunnel). */
  from: string;
  method: 'psql' | 'pg-tunnel';
  target: DbTarget;
  serverVersion: string;
  serverVersionNum: number;
  /** The client address as the server saw it (inet_client_addr). */
  clientAddress: string | null;
  /** psql: the whole command (start, connect, auth, queries); pg-tunnel: tunnel + connect + auth. */
  connectMs: number;
  /** Median round trip of `SELECT 1` on the open connection. */
  queryMs: number;
}

/** Maps a libpq/psql or server message to the typed error an operator can act on. */
export function classifyFailure(
  from: string,
  target: DbTarget,
  text: string,
  sqlstate?: string,
  cause?: unknown,
): Error {
  if (sqlstate === '28P01' || /password authentication failed/i.test(text) || /no password supplied/i.test(text)) {
    return new DbAuthError(from, target, cause);
  }
  const hba = /no pg_hba\.conf entry for (?:replication connection from )?host "([^"]+)"/i.exec(text);
  if (hba || sqlstate === '28000') return new DbHbaRejectedError(from, target, hba?.[1], cause);
  const m =
    /(Connection refused|timeout expired|could not translate host name[^\n]*|Network is unreachable|No route to host|Connection terminated[^\n]*|ECONNREFUSED|ETIMEDOUT|ENOTFOUND|EHOSTUNREACH|ECONNRESET|server closed the connection unexpectedly)/i.exec(
      text,
    );
  if (m) return new DbConnectError(from, target, m[1]!.trim());
  return new DbQueryError(
    from,
    `the check against PostgreSQL at ${target.server}:${target.port} (database "${target.database}", user "${target.user}") failed: ${text.trim().split('\n').slice(-2).join(' ')}`,
    { target, cause },
  );
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.floor(s.length / 2)]!;
}

function checkTarget(t: DbTarget): void {
  validateHostname(t.server);
  if (!Number.isInteger(t.port) || t.port < 1 || t.port > 65535)
    throw new DbQueryError('', `port ${t.port} is not a TCP port.`);
}

/**
 * From a secondary, connect as its service would: psql over TCP to the
 * primary, the password in PGPASSWORD (carried by Host.exec's environment,
 * never argv), no ~/.pgpass or psqlrc involved.
 */
export async function checkFromHost(
  client: Host,
  target: DbTarget,
  password: string,
  opts: { psql?: string; timeoutSec?: number; samples?: number } = {},
): Promise<ConnectivityResult> {
  checkTarget(target);
  client.redactor.add(password);
  const samples = opts.samples ?? 5;
  const argv = [
    opts.psql ?? 'psql',
    '-X',
    '-A',
    '-t',
    '-F',
    '|',
    '-h',
    target.server,
    '-p',
    String(target.port),
    '-d',
    target.database,
    '-U',
    target.user,
    '-c',
    "SELECT current_setting('server_version'), current_setting('server_version_num'), inet_client_addr()",
    '-c',
    '\\timing on',
    ...Array.from({ length: samples }, () => ['-c', 'SELECT 1']).flat(),
  ];
  const env = {
    PGPASSWORD: password,
    PGCONNECT_TIMEOUT: String(opts.timeoutSec ?? 5),
    PGPASSFILE: '/dev/null',
    PGAPPNAME: 'pe-db-check',
    PGSYSCONFDIR: '/nonexistent',
  };
  const r = await client.exec(argv, {
    env,
    allowFailure: true,
    readOnly: true,
    secrets: [password],
    timeoutMs: (opts.timeoutSec ?? 5) * 1000 + 20_000,
    cwd: '/',
  });
  if (r.code !== 0) throw classifyFailure(client.name, target, client.redactor.redact(r.stderr || r.stdout));
  const lines = r.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const [version, num, addr] = (lines[0] ?? '').split('|');
  const times = lines
    .map((l) => /^Time: ([\d.]+) ms/.exec(l)?.[1])
    .filter((x): x is string => x !== undefined)
    .map(Number);
  return {
    from: client.name,
    method: 'psql',
    target,
    serverVersion: version ?? '',
    serverVersionNum: Number(num),
    clientAddress: addr ? addr : null,
    connectMs: r.ms,
    queryMs: median(times),
  };
}

// One psql run per target, one after another, in ONE command: each target's password arrives in its own
// environment variable (PEPW0, PEPW1, ...: Host.exec carries env values over stdin, never argv) and is handed
// to psql as PGPASSWORD; each block of output is framed by `#i` and `#rc <status>` (stderr folded in).
const MANY_SCRIPT = [
  'psql=$1; n=$2; shift 2',
  'i=0',
  'while [ "$i" -lt "$n" ]; do',
  '  server=$1; port=$2; db=$3; user=$4; shift 4',
  '  eval "PGPASSWORD=\\${PEPW$i}"; export PGPASSWORD',
  '  echo "#$i"',
  '  "$psql" -X -A -t -F "|" -h "$server" -p "$port" -d "$db" -U "$user" -c "SELECT current_setting(\'server_version\'), current_setting(\'server_version_num\'), inet_client_addr()" -c "\\timing on" -c "SELECT 1" 2>&1',
  '  echo "#rc $?"',
  '  i=$((i + 1))',
  'done',
].join('\n');

/**
 * checkFromHost for several targets at once (one sample each), in one
 * command: one round trip however many services' credentials are proven.
 * The first target that fails is thrown as checkFromHost would throw it.
 */
export async function checkManyFromHost(
  client: Host,
  checks: readonly { target: DbTarget; password: string }[],
  opts: { psql?: string; timeoutSec?: number } = {},
): Promise<ConnectivityResult[]> {
  if (checks.length === 0) return [];
  for (const c of checks) {
    checkTarget(c.target);
    client.redactor.add(c.password);
  }
  const timeoutSec = opts.timeoutSec ?? 5;
  const env: Record<string, string> = {
    PGCONNECT_TIMEOUT: String(timeoutSec),
    PGPASSFILE: '/dev/null',
    PGAPPNAME: 'pe-db-check',
    PGSYSCONFDIR: '/nonexistent',
  };
  checks.forEach((c, i) => (env[`PEPW${i}`] = c.password));
  const argv = [
    'sh',
    '-c',
    MANY_SCRIPT,
    'sh',
    opts.psql ?? 'psql',
    String(checks.length),
    ...checks.flatMap((c) => [c.target.server, String(c.target.port), c.target.database, c.target.user]),
  ];
  const r = await client.exec(argv, {
    env,
    allowFailure: true,
    readOnly: true,
    secrets: checks.map((c) => c.password),
    timeoutMs: (timeoutSec * 1000 + 20_000) * checks.length,
    cwd: '/',
  });
  const lines = r.stdout.split('\n').map((l) => l.replace(/\r$/, ''));
  return checks.map((c, i) => {
    const start = lines.indexOf(`#${i}`);
    const end = lines.findIndex((l, k) => k > start && l.startsWith('#rc '));
    if (r.code !== 0 || start < 0 || end < 0)
      throw classifyFailure(client.name, c.target, client.redactor.redact(r.stderr || r.stdout || `exit ${r.code}`));
    const block = lines
      .slice(start + 1, end)
      .map((l) => l.trim())
      .filter(Boolean);
    if (lines[end] !== '#rc 0') throw classifyFailure(client.name, c.target, client.redactor.redact(block.join('\n')));
    const [version, num, addr] = (block[0] ?? '').split('|');
    const times = block
      .map((l) => /^Time: ([\d.]+) ms/.exec(l)?.[1])
      .filter((x): x is string => x !== undefined)
      .map(Number);
    return {
      from: client.name,
      method: 'psql' as const,
      target: c.target,
      serverVersion: version ?? '',
      serverVersionNum: Number(num),
      clientAddress: addr ? addr : null,
      connectMs: r.ms / checks.length,
      queryMs: median(times),
    };
  });
}

/**
 * From the controller: a tunnel through `via` (Host.forward, an SSH
 * port-forward for SshHost) to the primary's port, then the `pg` client
 * through it. Measures tunnel + connect + authentication, and query round
 * trips on the open connection.
 */
export async function checkFromController(
  via: Host,
  target: DbTarget,
  password: string,
  opts: { samples?: number; timeoutMs?: number; ssl?: pg.ClientConfig['ssl'] } = {},
): Promise<ConnectivityResult> {
  checkTarget(target);
  via.redactor.add(password);
  const from = `controller via ${via.name}`;
  const t0 = performance.now();
  let fwd;
  try {
    fwd = await via.forward(target.port, target.server);
  } catch (e) {
    throw new DbConnectError(
      via.name,
      target,
      `the tunnel could not be opened (${via.redactor.redact((e as Error).message)})`,
      e,
    );
  }
  const client = new pg.Client({
    host: '127.0.0.1',
    port: fwd.localPort,
    database: target.database,
    user: target.user,
    password,
    ssl: opts.ssl ?? false,
    connectionTimeoutMillis: opts.timeoutMs ?? 10_000,
    application_name: 'pe-db-check',
  });
  client.on('error', () => undefined);
  try {
    try {
      await client.connect();
    } catch (e) {
      const err = e as Error & { code?: string };
      throw classifyFailure(from, target, `${via.redactor.redact(err.message)} ${err.code ?? ''}`, err.code, e);
    }
    const connectMs = performance.now() - t0;
    const v = await client.query<{ v: string; n: string; a: string | null }>(
      "SELECT current_setting('server_version') AS v, current_setting('server_version_num') AS n, host(inet_client_addr()) AS a",
    );
    const times: number[] = [];
    for (let i = 0; i < (opts.samples ?? 5); i++) {
      const q0 = performance.now();
      await client.query('SELECT 1');
      times.push(performance.now() - q0);
    }
    const row = v.rows[0]!;
    return {
      from,
      method: 'pg-tunnel',
      target,
      serverVersion: row.v,
      serverVersionNum: Number(row.n),
      clientAddress: row.a,
      connectMs,
      queryMs: median(times),
    };
  } finally {
    // after a failed start-up pg may leave its socket half-open, and a tunnel
    // closes only when its connections do: end both within a bound
    await bounded(
      client.end().catch(() => undefined),
      2000,
    );
    (client as unknown as { connection?: { stream?: { destroy?: () => void } } }).connection?.stream?.destroy?.();
    await bounded(
      fwd.close().catch(() => undefined),
      1000,
    );
  }
}

async function bounded(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}
