import type { MemoryHost, CommandAnswer, CommandCall } from './host.js';

type Rows = readonly Record<string, unknown>[];

/** A query answer: the rows of SQL statements `sql` matches (as `json_agg` would return them), fixed or computed. */
export interface QueryAnswer {
  sql: RegExp;
  rows: Rows | ((call: CommandCall) => Rows);
}

export interface DatabaseAnswers {
  /** The password PostgreSQL accepts for every role; another makes the check fail as a wrong password does (E_DB_AUTH). */
  password: string;
  /** `server_version` answered (default `15.6`). */
  version?: string;
  /**
   * The instance's configuration files on this host, read at each query: pg_hba_file_rules comes from `hbaFile`,
   * listen_addresses and max_connections from `confFile` (so a run's own edits are seen).
   */
  files?: { confFile: string; hbaFile: string };
  /** More query answers; they win over the built-in ones. Any other query answers no rows. */
  queries?: readonly QueryAnswer[];
}

/**
 * Answers what pe-db asks PostgreSQL on `host`: the credential checks (psql
 * over TCP as a service connects, one target or several in one command; the
 * password arrives in the environment and is compared with `password`), and
 * the superuser's queries over the Unix socket (`runuser -u postgres -- psql`,
 * SQL on stdin): pg_hba_file_rules and listen_addresses for access checks,
 * max_connections for the connection budget, and the `queries` given.
 * Statements that change something (a reload) succeed and change nothing.
 */
export function answerDatabase(host: MemoryHost, db: DatabaseAnswers): MemoryHost {
  host.redactor.add(db.password);
  const server = { version: db.version ?? '15.6', num: versionNum(db.version ?? '15.6') };
  host.onCommand(
    (c) => c.argv[0] === 'sh' && c.argv[1] === '-c' && /(^|\/)psql$/.test(c.argv[4] ?? ''),
    (c) => manyChecks(c, db.password, server),
  );
  host.onCommand([/(^|\/)psql$/, '-X', '-A', '-t', '-F', '|'], (c) =>
    oneCheck(c.argv, c.env.PGPASSWORD, db.password, server),
  );
  const queries = [...(db.queries ?? []), ...(db.files ? builtInQueries(host, db.files) : [])];
  // psql as the instance's OS user (`runuser -u postgres -- [env ...] .../psql ... -f -`)
  host.onCommand(
    (c) => c.argv[0] === 'runuser' && c.argv.some((w) => /(^|\/)psql$/.test(w)),
    (c) => sqlAnswer(c, queries),
  );
  return host;
}

function versionNum(v: string): number {
  const [major = 0, minor = 0] = v.split('.').map(Number);
  return major >= 10 ? major * 10000 + minor : major * 10000 + minor * 100;
}

type Server = { version: string; num: number };

function checkOutput(
  target: { server: string; port: string; user: string },
  given: string | undefined,
  want: string,
  s: Server,
) {
  if (given !== want)
    return {
      ok: false,
      text: `psql: error: connection to server at "${target.server}", port ${target.port} failed: FATAL:  password authentication failed for user "${target.user}"`,
    };
  return { ok: true, text: `${s.version}|${s.num}|\nTime: 0.210 ms\n1` };
}

// pe-db's checkManyFromHost: sh -c SCRIPT sh PSQL N (SERVER PORT DB USER){N}, the passwords in PEPW<i>
function manyChecks(c: CommandCall, want: string, s: Server): CommandAnswer {
  const out: string[] = [];
  for (let i = 0; i < Number(c.argv[5]); i++) {
    const [server = '', port = '', , user = ''] = c.argv.slice(6 + 4 * i, 10 + 4 * i);
    const r = checkOutput({ server, port, user }, c.env[`PEPW${i}`], want, s);
    out.push(`#${i}`, r.text, `#rc ${r.ok ? 0 : 2}`);
  }
  return { stdout: `${out.join('\n')}\n` };
}

// pe-db's checkFromHost: psql -X -A -t -F | -h SERVER -p PORT -d DB -U USER -c ..., the password in PGPASSWORD
function oneCheck(argv: readonly string[], given: string | undefined, want: string, s: Server): CommandAnswer {
  const arg = (flag: string) => argv[argv.indexOf(flag) + 1] ?? '';
  const r = checkOutput({ server: arg('-h'), port: arg('-p'), user: arg('-U') }, given, want, s);
  return r.ok ? { stdout: `${r.text}\n` } : { code: 2, stderr: `${r.text}\n` };
}

function sqlAnswer(c: CommandCall, queries: readonly QueryAnswer[]): CommandAnswer {
  const sql = c.stdin?.toString('utf8') ?? '';
  if (!/json_agg/.test(sql)) return {};
  const found = queries.find((q) => q.sql.test(sql));
  const rows = typeof found?.rows === 'function' ? found.rows(c) : (found?.rows ?? []);
  return { stdout: `${JSON.stringify(rows)}\n` };
}

/** What PostgreSQL would report from the instance's files on the host. */
function builtInQueries(host: MemoryHost, files: { confFile: string; hbaFile: string }): QueryAnswer[] {
  const conf = (key: string) => lastSetting(host.file(files.confFile)?.text ?? '', key);
  return [
    {
      sql: /FROM pg_hba_file_rules\) r\) AS rules/,
      rows: () => [
        {
          rules: hbaRules(host.file(files.hbaFile)?.text ?? ''),
          roles: [],
          listen: {
            setting: conf('listen_addresses') ?? 'localhost',
            pending_restart: false,
            source: 'configuration file',
            sourcefile: files.confFile,
          },
        },
      ],
    },
    {
      sql: /current_setting\('max_connections'\)/,
      rows: () => [{ max: conf('max_connections') ?? '100', su: '3', res: '0', used: 0 }],
    },
  ];
}

/** The last active `key = value` of a postgresql.conf, unquoted. */
function lastSetting(text: string, key: string): string | undefined {
  let value: string | undefined;
  for (const m of text.matchAll(new RegExp(`^\\s*${key}\\s*=\\s*('([^']*)'|[^\\s#]+)`, 'gm'))) value = m[2] ?? m[1];
  return value;
}

/** pg_hba_file_rules rows of a pg_hba.conf (records with an address in CIDR form; include files not followed). */
export function hbaRules(text: string): Record<string, unknown>[] {
  const rows: Record<string, unknown>[] = [];
  text.split('\n').forEach((line, i) => {
    const f = line.replace(/#.*/, '').trim().split(/\s+/);
    if (!f[0]) return;
    const local = f[0] === 'local';
    const [addr, bits] = local ? [null, undefined] : (f[3] ?? '').split('/');
    const v6 = addr?.includes(':');
    rows.push({
      line_number: i + 1,
      type: f[0],
      database: f[1]?.split(','),
      user_name: f[2]?.split(','),
      address: addr,
      netmask: local ? null : netmask(Number(bits ?? (v6 ? 128 : 32)), Boolean(v6)),
      auth_method: f[local ? 3 : 4] ?? null,
      error: null,
    });
  });
  return rows;
}

function netmask(bits: number, v6: boolean): string {
  if (v6) return bits === 128 ? 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff' : `/${bits}`;
  const n = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');
}
