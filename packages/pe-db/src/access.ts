import { DryRunHost, isIpLiteral, writeFiles, type BatchWrite, type ExecResult } from '@pe-stack/pe-host';
import { editors, readText, type HbaRecordSpec } from './editors.js';
import { DbConfigError, DbQueryError } from './errors.js';
import { bin, psql, query, quoteLiteral, requireVersion, type PgInstance } from './instance.js';
import { fenceMarkerPath, fencedError, parseFenceMarker, serverRunFiles } from './lifecycle.js';

/** One database/user pair a secondary's service uses. `database: 'replication'` is the replication keyword. */
export interface AccessGrant {
  database: string;
  user: string;
}

export interface HbaFileRule {
  line_number: number;
  type: string;
  database: string[] | null;
  user_name: string[] | null;
  address: string | null;
  netmask: string | null;
  auth_method: string | null;
  error: string | null;
}

export interface AccessResult {
  /** pg_hba.conf records this call added or kept (as written). */
  records: HbaRecordSpec[];
  hbaChanged: boolean;
  /** Line numbers in pg_hba.conf that pg_hba_file_rules confirmed, in grant order. */
  confirmedLines: number[];
  listenChanged: boolean;
  /** listen_addresses only takes effect after a restart; true when one is still needed. */
  restartRequired: boolean;
  /** Pre-existing rules an operator should look at (trust or subnet-wide host rules). */
  warnings: string[];
  /** The host is a DryRunHost: the plan holds the pg_hba diff and the reload; nothing was confirmed. */
  dryRun: boolean;
}

function isDryRun(inst: PgInstance): boolean {
  return inst.host instanceof DryRunHost;
}

const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.@-]*$/;
const KEYWORDS = new Set(['all', 'sameuser', 'samerole', 'samegroup', 'replication']);

/** `10.0.0.5` -> `10.0.0.5/32`, `fd00::5` -> `fd00::5/128`; a subnet or a host name is refused. */
export function hostCidr(address: string): string {
  const [ip, mask, extra] = address.split('/');
  if (extra !== undefined || !ip || !isIpLiteral(ip) || ip.startsWith('[')) {
    throw new DbConfigError(
      '',
      `"${address}" is not a single IP address; pg_hba records are only ever added for one host (/32 or /128).`,
    );
  }
  const full = ip.includes(':') ? '128' : '32';
  if (mask !== undefined && mask !== full) {
    throw new DbConfigError('', `"${address}" is a subnet; pe-db grants access to single hosts only (/${full}).`);
  }
  return `${ip}/${full}`;
}

function checkGrant(g: AccessGrant): void {
  const replication = g.database === 'replication';
  if (!NAME.test(g.database) || (!replication && KEYWORDS.has(g.database))) {
    throw new DbConfigError(
      '',
      `"${g.database}" is not a database name pe-db grants access to (keywords such as "all" are refused).`,
    );
  }
  if (!NAME.test(g.user) || KEYWORDS.has(g.user)) {
    throw new DbConfigError(
      '',
      `"${g.user}" is not a user name pe-db grants access to (keywords such as "all" are refused).`,
    );
  }
}

export type HbaMethod = 'scram-sha-256' | 'md5';

export function hbaRecord(g: AccessGrant, address: string, method: HbaMethod = 'scram-sha-256'): HbaRecordSpec {
  checkGrant(g);
  return { type: 'host', database: g.database, user: g.user, address: hostCidr(address), method };
}

/**
 * The pg_hba method each grant's role can log in with: `scram-sha-256` when
 * its stored password is a SCRAM verifier, else `md5` (a role whose password
 * was set under `password_encryption = md5`, as PE 3's pe-postgresql does,
 * cannot pass a scram-sha-256 rule; PostgreSQL's md5 method accepts both).
 * Found in the lab's PE 3 simulator: the secondary's PuppetDB was refused.
 */
export async function hbaMethods(inst: PgInstance, grants: readonly AccessGrant[]): Promise<Map<string, HbaMethod>> {
  const users = [...new Set(grants.map((g) => g.user))];
  const out = new Map<string, HbaMethod>(users.map((u) => [u, 'scram-sha-256']));
  if (users.length === 0) return out;
  const rows = await query<{ rolname: string; scram: boolean }>(
    inst,
    `SELECT rolname, coalesce(rolpassword LIKE 'SCRAM-SHA-256$%', false) AS scram FROM pg_authid WHERE rolname IN (${users.map(quoteLiteral).join(', ')})`,
  );
  for (const r of rows) if (!r.scram) out.set(r.rolname, 'md5');
  return out;
}

/** pg_hba_file_rules: what PostgreSQL makes of pg_hba.conf as it is on disk now (errors included). */
export async function hbaFileRules(inst: PgInstance): Promise<HbaFileRule[]> {
  return withHbaRules(inst, () =>
    query<HbaFileRule>(inst, `SELECT ${HBA_COLUMNS} FROM pg_hba_file_rules ORDER BY line_number`),
  );
}

const HBA_COLUMNS = 'line_number, type, database, user_name, address, netmask, auth_method, error';

/**
 * A query that reads pg_hba_file_rules (PostgreSQL 10+), in one psql run: an
 * older server, where it fails, gets requireVersion's clear refusal instead
 * of the SQL error (the version is asked only then).
 */
async function withHbaRules<T>(inst: PgInstance, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (e) {
    await requireVersion(inst, 'checking pg_hba.conf (pg_hba_file_rules)');
    throw e;
  }
}

/** listen_addresses as the running server has it (pg_settings). */
export interface ListenState {
  /** The value in effect. */
  setting: string;
  /** The configuration files say another value, which takes effect at the next restart. */
  pendingRestart: boolean;
  /** pg_settings.source: 'default', 'configuration file', 'command line', ... */
  source: string;
  /** The file the value in effect comes from (null: not from a file). */
  sourcefile: string | null;
}

/** What accessGranted and grantAccessMany need to know of the server, asked in ONE psql run. */
export interface AccessState {
  /** pg_hba_file_rules: pg_hba.conf as it is on disk now. */
  rules: HbaFileRule[];
  /** The hba method of each grant's role (see hbaMethods). */
  methods: Map<string, HbaMethod>;
  listen: ListenState;
}

/**
 * pg_hba_file_rules, the hba methods of the grants' roles and listen_addresses
 * (with pending_restart and where its value comes from): one read-only psql
 * run. PostgreSQL before 10 (no pg_hba_file_rules) is refused with
 * requireVersion's sentence.
 */
export async function accessState(inst: PgInstance, grants: readonly AccessGrant[]): Promise<AccessState> {
  const users = [...new Set(grants.map((g) => g.user))];
  const roles = users.length
    ? `(SELECT coalesce(json_agg(a), '[]'::json) FROM (SELECT rolname, coalesce(rolpassword LIKE 'SCRAM-SHA-256$%', false) AS scram FROM pg_authid WHERE rolname IN (${users.map(quoteLiteral).join(', ')})) a)`
    : `'[]'::json`;
  const [row] = await withHbaRules(inst, () =>
    query<{
      rules: HbaFileRule[];
      roles: { rolname: string; scram: boolean }[];
      listen: { setting: string; pending_restart: boolean; source: string; sourcefile: string | null } | null;
    }>(
      inst,
      `SELECT (SELECT coalesce(json_agg(r ORDER BY r.line_number), '[]'::json) FROM (SELECT ${HBA_COLUMNS} FROM pg_hba_file_rules) r) AS rules, ${roles} AS roles, ` +
        `(SELECT row_to_json(s) FROM (SELECT setting, pending_restart, source, sourcefile FROM pg_settings WHERE name = 'listen_addresses') s) AS listen`,
    ),
  );
  const methods = new Map<string, HbaMethod>(users.map((u) => [u, 'scram-sha-256']));
  for (const r of row?.roles ?? []) if (!r.scram) methods.set(r.rolname, 'md5');
  const l = row?.listen;
  if (!l)
    throw new DbQueryError(
      inst.host.name,
      `PostgreSQL on port ${inst.port} did not report listen_addresses (pg_settings).`,
      { hint: 'Check that the instance is a PostgreSQL server of version 10 or later.' },
    );
  return {
    rules: row?.rules ?? [],
    methods,
    listen: {
      setting: l.setting,
      pendingRestart: l.pending_restart === true,
      source: l.source,
      sourcefile: l.sourcefile,
    },
  };
}

/** pg_hba_file_rules and the hba methods of the grants' roles (see hbaMethods), in one psql run. */
export async function hbaRulesAndMethods(
  inst: PgInstance,
  grants: readonly AccessGrant[],
): Promise<{ rules: HbaFileRule[]; methods: Map<string, HbaMethod> }> {
  const { rules, methods } = await accessState(inst, grants);
  return { rules, methods };
}

function ruleMatches(r: HbaFileRule, rec: HbaRecordSpec): boolean {
  const [ip, bits] = rec.address!.split('/');
  const netmask = bits === '32' ? '255.255.255.255' : 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff';
  return (
    r.error === null &&
    r.type === rec.type &&
    (r.database ?? []).length === 1 &&
    r.database![0] === rec.database &&
    (r.user_name ?? []).length === 1 &&
    r.user_name![0] === rec.user &&
    r.address === ip &&
    r.netmask === netmask &&
    r.auth_method === rec.method
  );
}

/** The statement that checks the new pg_hba.conf and reloads only when every line parsed; it returns the rules. */
const CHECK_AND_RELOAD = `SELECT json_agg(r ORDER BY r.line_number) AS rules, CASE WHEN bool_and(r.error IS NULL) THEN pg_reload_conf() ELSE false END AS reloaded FROM (SELECT ${HBA_COLUMNS} FROM pg_hba_file_rules) r`;

function hbaParseError(
  inst: PgInstance,
  bad: readonly HbaFileRule[] | readonly { line_number: number; error: string | null }[],
  restored: string,
): DbConfigError {
  return new DbConfigError(
    inst.host.name,
    `PostgreSQL cannot parse ${inst.hbaFile} after the change: ${bad.map((r) => `line ${r.line_number}: ${r.error}`).join('; ')}. ${restored}`,
    'Fix the listed lines by hand, then run the step again.',
  );
}

/**
 * Has PostgreSQL parse pg_hba.conf as written (pg_hba_file_rules) and reload
 * only when every line parsed, in one psql run that changes no file; on a
 * parse error `restore` puts the previous files back and an error is thrown.
 * Returns the rules (the confirmation needs no other run).
 */
async function checkAndReload(inst: PgInstance, restore: () => Promise<void>): Promise<HbaFileRule[]> {
  const [checked] = await withHbaRules(inst, () =>
    query<{ rules: HbaFileRule[] | null; reloaded: boolean | null }>(inst, CHECK_AND_RELOAD, {
      readOnly: false,
      changesFiles: [],
    }),
  );
  const rules = checked?.rules ?? [];
  const bad = rules.filter((r) => r.error !== null);
  if (bad.length > 0) {
    await restore();
    throw hbaParseError(inst, bad, 'The previous file was put back and nothing was reloaded.');
  }
  if (!checked?.reloaded) await psql(inst, 'SELECT pg_reload_conf();', { changesFiles: [] });
  return rules;
}

/**
 * Writes pg_hba.conf, has PostgreSQL parse it (pg_hba_file_rules) and reloads
 * only when every line parsed; otherwise puts the old file back and throws.
 */
async function commitHba(inst: PgInstance, before: string, after: string): Promise<HbaFileRule[] | undefined> {
  const host = inst.host;
  await host.writeFile(inst.hbaFile, after, { backup: true });
  if (isDryRun(inst)) {
    await psql(inst, 'SELECT pg_reload_conf();', { changesFiles: [] });
    return undefined;
  }
  return checkAndReload(inst, async () => {
    await host.writeFile(inst.hbaFile, before, { backup: false });
  });
}

/** Each record's line in the rules (or a typed error naming the record), and the broader rules an operator should see. */
function confirmRules(
  inst: PgInstance,
  rules: readonly HbaFileRule[],
  records: readonly HbaRecordSpec[],
): { lines: number[]; warnings: string[] } {
  const lines: number[] = [];
  for (const rec of records) {
    const hit = rules.find((r) => ruleMatches(r, rec));
    if (!hit) {
      throw new DbConfigError(
        inst.host.name,
        `pg_hba_file_rules does not show the record "${rec.type} ${rec.database} ${rec.user} ${rec.address} ${rec.method}" after the reload.`,
        `Look at ${inst.hbaFile}: an include or a second hba_file setting may be in effect.`,
      );
    }
    lines.push(hit.line_number);
  }
  const warnings = rules
    .filter((r) => r.type !== 'local' && r.error === null)
    .filter(
      (r) =>
        r.auth_method === 'trust' ||
        (r.netmask !== null && r.netmask !== '255.255.255.255' && !/^(ffff:){7}ffff$/.test(r.netmask)) ||
        r.address === 'all',
    )
    .map(
      (r) =>
        `${inst.hbaFile} line ${r.line_number}: ${r.type} ${(r.database ?? []).join(',')} ${(r.user_name ?? []).join(',')} ${r.address ?? ''}${r.netmask ? `/${r.netmask}` : ''} ${r.auth_method ?? ''} is broader than a single-host scram rule`,
    );
  return { lines, warnings };
}

export interface SetParametersResult {
  changed: string[];
  /** Parameters whose new value waits for a restart (pg_settings.pending_restart). */
  pendingRestart: string[];
}

/**
 * Sets parameters in postgresql.conf (lossless edit, backup), reloads, and
 * checks in pg_settings that each came from that file, so a value that
 * postgresql.auto.conf or an include overrides is reported, not ignored.
 */
export async function setParameters(
  inst: PgInstance,
  params: Record<string, string | number | boolean | null>,
): Promise<SetParametersResult> {
  const host = inst.host;
  const before = await readText(host, inst.confFile);
  const doc = editors.conf(before, inst.confFile);
  const changed: string[] = [];
  for (const [k, v] of Object.entries(params)) {
    if (v === null ? doc.unset(k) : doc.set(k, v)) changed.push(k);
  }
  if (changed.length > 0) {
    await host.writeFile(inst.confFile, doc.toString(), { backup: true });
    await psql(inst, 'SELECT pg_reload_conf();', { changesFiles: [] });
    // a dry run cannot know what the server would make of it; listen_addresses always needs a restart
    if (isDryRun(inst))
      return { changed, pendingRestart: changed.filter((k) => k.toLowerCase() === 'listen_addresses') };
    // the reload is asynchronous: give the postmaster a moment to reread the files
    await new Promise((r) => setTimeout(r, 300));
  }
  const names = Object.keys(params)
    .map((k) => quoteLiteral(k.toLowerCase()))
    .join(',');
  const rows = await query<{ name: string; setting: string; sourcefile: string | null; pending_restart: boolean }>(
    inst,
    `SELECT name, setting, sourcefile, pending_restart FROM pg_settings WHERE name IN (${names})`,
  );
  const pendingRestart = rows.filter((r) => r.pending_restart).map((r) => r.name);
  for (const [k, v] of Object.entries(params)) {
    const row = rows.find((r) => r.name === k.toLowerCase());
    if (!row) throw new DbConfigError(host.name, `PostgreSQL does not know the parameter ${k}.`);
    if (v !== null && !row.pending_restart && row.sourcefile !== null && row.sourcefile !== inst.confFile) {
      throw overridden(inst, k, row.sourcefile);
    }
  }
  return { changed, pendingRestart };
}

function overridden(inst: PgInstance, name: string, sourcefile: string): DbConfigError {
  return new DbConfigError(
    inst.host.name,
    `${name} is set in ${sourcefile}, which overrides ${inst.confFile}.`,
    `Remove ${name} from ${sourcefile} (ALTER SYSTEM RESET ${name} for postgresql.auto.conf), then run the step again.`,
  );
}

/** Does listen_addresses already cover the address secondaries connect to? */
function listens(current: string, want: string): boolean {
  const parts = current.split(',').map((s) => s.trim());
  return (
    parts.includes('*') || parts.includes(want) || (want !== '*' && parts.includes('0.0.0.0') && !want.includes(':'))
  );
}

export interface GrantAccessOptions {
  /** The primary's own address secondaries connect to, or '*' (the default). */
  listen?: string;
  /** Restart PostgreSQL when listen_addresses changed (else restartRequired tells the caller). */
  restart?: boolean;
}

export interface AccessGrantedOptions {
  /**
   * Also require listen_addresses to cover this address ('*' as grantAccess's
   * default), in effect (no restart pending for it). Unset: pg_hba only.
   */
  listen?: string;
}

/**
 * Every record grantAccess would add is in effect (pg_hba_file_rules, no
 * error) and, with `listen`, the server listens there already: ONE read-only
 * psql run.
 */
export async function accessGranted(
  primary: PgInstance,
  address: string,
  grants: readonly AccessGrant[],
  opts: AccessGrantedOptions = {},
): Promise<boolean> {
  const { rules, methods, listen } = await accessState(primary, grants);
  if (opts.listen !== undefined && (!listens(listen.setting, opts.listen) || listen.pendingRestart)) return false;
  return grants.every((g) => {
    const rec = hbaRecord(g, address, methods.get(g.user));
    const [ip] = rec.address!.split('/');
    return rules.some(
      (r) =>
        r.error === null &&
        r.type === 'host' &&
        r.database?.length === 1 &&
        r.database[0] === rec.database &&
        r.user_name?.length === 1 &&
        r.user_name[0] === rec.user &&
        r.address === ip &&
        r.auth_method === rec.method,
    );
  });
}

/**
 * Primary access for one secondary: a `host <db> <user> <ip>/32 scram-sha-256`
 * record per pair (no subnet, no trust), listen_addresses, a reload, and
 * pg_hba_file_rules as proof that PostgreSQL parsed every record. Idempotent.
 */
export async function grantAccess(
  primary: PgInstance,
  address: string,
  grants: readonly AccessGrant[],
  opts: GrantAccessOptions = {},
): Promise<AccessResult> {
  return grantAccessMany(primary, [{ address, grants }], opts);
}

// The restart of grantAccessMany as ONE command (run as root): when pg_hba.conf changed, PostgreSQL parses it
// first (pg_hba_file_rules; a file with an error stops everything before the server is touched); the fence
// marker refuses the restart of a fenced instance (looked at before the stop and again before the start); the
// instance's own stop command, wait until pg_isready says it is down; its start command, wait until it accepts
// connections; then pg_hba_file_rules and listen_addresses as the restarted server has them. Every value
// arrives as an argument, none is interpolated into the program. Exit codes name the failed stage.
const RESTART_SCRIPT = [
  'set -u',
  'user=$1; psql=$2; isready=$3; sock=$4; port=$5; fence=$6; stopsecs=$7; startsecs=$8; checksql=$9; shift 9',
  'confirmsql=$1; nstop=$2; shift 2',
  'cd /',
  // libpq talks only to a server process running as $user (see asDbUser)
  'PGREQUIREPEER=$user; export PGREQUIREPEER',
  'q() { runuser -u "$user" -- "$psql" -X -q -A -t -v ON_ERROR_STOP=1 -h "$sock" -p "$port" -d postgres -c "$1"; }',
  'ready() { runuser -u "$user" -- "$isready" -q -h "$sock" -p "$port" -d postgres; }',
  // runs the arguments from index $1 (inclusive) to $2 (exclusive) of the rest as one command
  'part() ( from=$1; to=$2; shift 2; i=0; for a do shift; if [ "$i" -ge "$from" ] && [ "$i" -lt "$to" ]; then set -- "$@" "$a"; fi; i=$((i + 1)); done; exec "$@" )',
  'fenced() { if [ -e "$fence" ]; then printf "#fenced\\n"; head -c 8192 -- "$fence"; echo; exit 13; fi; }',
  'if [ -n "$checksql" ]; then',
  '  out=$(q "$checksql" 2>&1) || { printf "%s\\n" "$out" >&2; exit 11; }',
  '  case $out in ok) ;; *) printf "#hba\\n%s\\n" "$out"; exit 12 ;; esac',
  'fi',
  'fenced',
  'out=$(part 0 "$nstop" "$@" 2>&1) || { printf "%s\\n" "$out" >&2; exit 14; }',
  'end=$(($(date +%s) + stopsecs))',
  'while ready; do [ "$(date +%s)" -lt "$end" ] || exit 15; sleep 0.1; done',
  'fenced',
  'out=$(part "$nstop" "$#" "$@" 2>&1) || { printf "%s\\n" "$out" >&2; exit 16; }',
  'end=$(($(date +%s) + startsecs))',
  'until ready; do [ "$(date +%s)" -lt "$end" ] || exit 17; sleep 0.1; done',
  'out=$(q "$confirmsql" 2>&1) || { printf "%s\\n" "$out" >&2; exit 18; }',
  'printf "#state\\n%s\\n" "$out"',
].join('\n');

const CHECK_ONLY = `SELECT CASE WHEN count(*) = 0 THEN 'ok' ELSE json_agg(json_build_object('line_number', line_number, 'error', error) ORDER BY line_number)::text END FROM pg_hba_file_rules WHERE error IS NOT NULL`;
const CONFIRM = `SELECT json_build_object('rules', (SELECT coalesce(json_agg(r ORDER BY r.line_number), '[]'::json) FROM (SELECT ${HBA_COLUMNS} FROM pg_hba_file_rules) r), 'listen', current_setting('listen_addresses'))`;

const STOP_SECONDS = 90;
const START_SECONDS = 60;

/** The JSON after a `#marker` line of the restart command's output. */
function after(stdout: string, marker: string): string | undefined {
  const out = stdout.replace(/\r/g, ''); // a sudo pty (requiretty) turns \n into \r\n
  const i = out.indexOf(`#${marker}\n`);
  return i < 0 ? undefined : out.slice(i + marker.length + 2).trim();
}

interface RestartOptions {
  /** Have PostgreSQL parse pg_hba.conf before the restart (it changed). */
  checkHba: boolean;
  /** Puts the previous files back when that check finds an error. */
  restore: () => Promise<void>;
}

/** RESTART_SCRIPT's argv: every value an argument, then the stop command and the start command. */
function restartArgv(inst: PgInstance, o: Pick<RestartOptions, 'checkHba'>): string[] {
  return [
    'sh',
    '-c',
    RESTART_SCRIPT,
    'sh',
    inst.osUser,
    bin(inst, 'psql'),
    bin(inst, 'pg_isready'),
    inst.socketDir,
    String(inst.port),
    fenceMarkerPath(inst),
    String(STOP_SECONDS),
    String(START_SECONDS),
    o.checkHba ? CHECK_ONLY : '',
    CONFIRM,
    String(inst.control.stop.length),
    ...inst.control.stop,
    ...inst.control.start,
  ];
}

/**
 * Restarts the instance in one command (see RESTART_SCRIPT) and returns
 * pg_hba_file_rules and listen_addresses as the restarted server has them.
 * `checkHba`: have PostgreSQL parse pg_hba.conf first; on an error `restore`
 * runs and a typed error is thrown (the server was not touched).
 */
async function restartAndConfirm(
  inst: PgInstance,
  o: RestartOptions,
): Promise<{ rules: HbaFileRule[]; listen: string }> {
  const r = await inst.host.exec(restartArgv(inst, o), {
    sudo: true,
    cwd: '/',
    allowFailure: true,
    timeoutMs: (STOP_SECONDS + START_SECONDS + 60) * 1000,
    changesFiles: serverRunFiles(inst),
  });
  switch (r.code) {
    case 0:
      return restartedState(inst, r.stdout);
    case 11:
      await requireVersion(inst, 'checking pg_hba.conf (pg_hba_file_rules)');
      break;
    case 12: {
      const bad = hbaErrorsBeforeRestart(r.stdout);
      await o.restore();
      throw hbaParseError(inst, bad, 'The previous files were put back and PostgreSQL was not restarted.');
    }
  }
  throw restartStageError(inst, r);
}

/** The rules and listen_addresses the restart command printed after `#state`. */
function restartedState(inst: PgInstance, stdout: string): { rules: HbaFileRule[]; listen: string } {
  const text = after(stdout, 'state');
  try {
    const v = JSON.parse(text ?? '') as { rules: HbaFileRule[] | null; listen: string };
    return { rules: v.rules ?? [], listen: v.listen };
  } catch (e) {
    throw new DbQueryError(
      inst.host.name,
      `PostgreSQL on port ${inst.port} was restarted, but its answer about pg_hba_file_rules could not be read.`,
      { cause: e, hint: 'Run the step again: it checks the records and changes nothing more.' },
    );
  }
}

/** The pg_hba.conf lines the check before the restart refused (printed after `#hba`). */
function hbaErrorsBeforeRestart(stdout: string): { line_number: number; error: string | null }[] {
  try {
    return JSON.parse(after(stdout, 'hba') ?? '') as { line_number: number; error: string | null }[];
  } catch {
    return [{ line_number: 0, error: after(stdout, 'hba') ?? 'unknown error' }];
  }
}

/** The typed error for the stage of the restart command that failed (its exit code names it). */
function restartStageError(inst: PgInstance, r: ExecResult): Error {
  const host = inst.host;
  const detail = () => host.redactor.redact((r.stderr.trim() || r.stdout.trim()).split('\n').slice(-4).join(' '));
  switch (r.code) {
    case 11:
      return new DbQueryError(
        host.name,
        `psql on port ${inst.port} failed while checking ${inst.hbaFile} before the restart: ${detail()}`,
        { hint: 'Check that the PostgreSQL instance is running; nothing was restarted.' },
      );
    case 13:
      return fencedError(inst, parseFenceMarker(inst, after(r.stdout, 'fenced') ?? ''));
    case 14:
      return new DbQueryError(
        host.name,
        `stopping PostgreSQL on port ${inst.port} (${inst.control.stop.join(' ')}) failed: ${detail()}`,
        { hint: 'Read the server log and the service manager, then run the step again.' },
      );
    case 15:
      return new DbQueryError(
        host.name,
        `PostgreSQL on port ${inst.port} still accepts connections ${STOP_SECONDS} s after stop.`,
        { hint: 'Read the server log (a long-running session or checkpoint), then run the step again.' },
      );
    case 16:
      return new DbQueryError(
        host.name,
        `starting PostgreSQL on port ${inst.port} (${inst.control.start.join(' ')}) failed: ${detail()}; it is stopped now.`,
        {
          hint: `Read the server log, fix the cause (${inst.confFile}, ${inst.hbaFile}), start it, then run the step again.`,
        },
      );
    case 17:
      return new DbQueryError(
        host.name,
        `PostgreSQL on port ${inst.port} did not accept connections within ${START_SECONDS * 1000} ms after start.`,
        { hint: 'Read the server log.' },
      );
    case 18:
      return new DbQueryError(host.name, `psql on port ${inst.port} failed after the restart: ${detail()}`, {
        hint: 'Check that the PostgreSQL instance is running, then run the step again.',
      });
    default:
      return new DbQueryError(
        host.name,
        `restarting PostgreSQL on port ${inst.port} failed (exit ${r.code}): ${detail()}`,
        { hint: 'Check that the server is running (pg_isready), read its log, then run the step again.' },
      );
  }
}

/** One file a grant changes: its new text (written with a backup) and the old text a failed check puts back. */
interface FileChange {
  write: BatchWrite;
  restore: BatchWrite;
}

function fileChange(path: string, before: string, after: string): FileChange {
  return {
    write: { path, data: after, opts: { backup: true } },
    restore: { path, data: before, opts: { backup: false } },
  };
}

/** pg_hba.conf with every record added; read only when a record is not in effect yet. Undefined: no change. */
async function hbaChange(
  primary: PgInstance,
  rules: readonly HbaFileRule[],
  records: readonly HbaRecordSpec[],
): Promise<FileChange | undefined> {
  if (records.every((rec) => rules.some((r) => ruleMatches(r, rec)))) return undefined;
  const before = await readText(primary.host, primary.hbaFile);
  const doc = editors.hba(before, primary.hbaFile);
  let changed = false;
  // records go before the first existing one: pg_hba is first-match, and a broader reject below must not shadow them
  for (const rec of [...records].reverse()) changed = doc.add(rec, 'start') || changed;
  return changed ? fileChange(primary.hbaFile, before, doc.toString()) : undefined;
}

/** listen_addresses with `want` added to what is in effect ('*' replaces it). */
function listenValue(current: string, want: string): string {
  if (want === '*') return '*';
  return [
    ...current
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    want,
  ].join(',');
}

/**
 * listen_addresses is restart-only: the running value decides, and the file
 * is made to say what we want. `restartRequired`: the file says another value
 * than the one in effect (now or already).
 */
async function listenChange(
  primary: PgInstance,
  listen: ListenState,
  want: string,
): Promise<{ change: FileChange | undefined; restartRequired: boolean }> {
  if (listens(listen.setting, want)) return { change: undefined, restartRequired: listen.pendingRestart };
  // a value postgresql.auto.conf or an include sets would override the file we edit (as setParameters reports)
  if (!listen.pendingRestart && listen.sourcefile !== null && listen.sourcefile !== primary.confFile)
    throw overridden(primary, 'listen_addresses', listen.sourcefile);
  const value = listenValue(listen.setting, want);
  const before = await readText(primary.host, primary.confFile);
  const doc = editors.conf(before, primary.confFile);
  const changed = doc.set('listen_addresses', value);
  // the file says it (now or already): it takes effect with the next restart
  return { change: changed ? fileChange(primary.confFile, before, doc.toString()) : undefined, restartRequired: true };
}

/** A dry run's plan: the reload (a restart reads the files anyway) or the stop and the start. */
async function planReloadOrRestart(primary: PgInstance, o: { restart: boolean; reload: boolean }): Promise<void> {
  const host = primary.host;
  if (o.restart) {
    await host.exec(primary.control.stop, { sudo: true, cwd: '/', changesFiles: serverRunFiles(primary) });
    await host.exec(primary.control.start, { sudo: true, cwd: '/', changesFiles: serverRunFiles(primary) });
  } else if (o.reload) {
    await psql(primary, 'SELECT pg_reload_conf();', { changesFiles: [] });
  }
}

/** restartAndConfirm, then proof that listen_addresses in effect covers `want`; returns the rules. */
async function restartForListen(primary: PgInstance, o: RestartOptions & { want: string }): Promise<HbaFileRule[]> {
  const r = await restartAndConfirm(primary, o);
  if (!listens(r.listen, o.want)) {
    throw new DbConfigError(
      primary.host.name,
      `after the restart listen_addresses is '${r.listen}', not covering ${o.want}: ${primary.confFile} says otherwise than what is in effect.`,
      `Look for listen_addresses in postgresql.auto.conf, an included file or the service's command line (pg_settings.source), fix it, then run the step again.`,
    );
  }
  return r.rules;
}

/**
 * grantAccess for several hosts at once: every record in one pg_hba.conf
 * change, one reload (and at most one restart), one confirmation from
 * pg_hba_file_rules. Several secondaries joining together cost the primary
 * one edit instead of one each.
 *
 * Round trips on the primary: one read-only psql run (rules, the roles' hba
 * methods, listen_addresses); the two files read (a run's file cache answers
 * them); one write of every changed file together; then one psql run that
 * checks the new pg_hba.conf, reloads and confirms, or, when a restart is
 * needed and wanted, one command that checks, restarts and confirms. Nothing
 * to change: the first run's rules are the confirmation.
 */
export async function grantAccessMany(
  primary: PgInstance,
  targets: readonly { address: string; grants: readonly AccessGrant[] }[],
  opts: GrantAccessOptions = {},
): Promise<AccessResult> {
  const host = primary.host;
  // names and addresses refused before anything is asked of the server
  for (const t of targets) for (const g of t.grants) hbaRecord(g, t.address);
  const state = await accessState(
    primary,
    targets.flatMap((t) => t.grants),
  );
  const records = targets.flatMap((t) => t.grants.map((g) => hbaRecord(g, t.address, state.methods.get(g.user))));
  const want = opts.listen ?? '*';
  const hba = await hbaChange(primary, state.rules, records);
  const listen = await listenChange(primary, state.listen, want);
  const changes = [hba, listen.change].filter((c): c is FileChange => c !== undefined);
  const restart = listen.restartRequired && opts.restart === true;
  const changed = { records, hbaChanged: hba !== undefined, listenChanged: listen.change !== undefined };

  // every changed file in one round trip (each atomic, with its backup)
  await writeFiles(
    host,
    changes.map((c) => c.write),
  );
  const restore = async () => {
    await writeFiles(
      host,
      changes.map((c) => c.restore),
    );
  };

  if (isDryRun(primary)) {
    await planReloadOrRestart(primary, { restart, reload: changes.length > 0 });
    const planned = { confirmedLines: [], restartRequired: listen.restartRequired, warnings: [] };
    return { ...changed, ...planned, dryRun: true };
  }
  let rules = state.rules;
  if (restart) rules = await restartForListen(primary, { checkHba: hba !== undefined, restore, want });
  else if (changes.length > 0) rules = await checkAndReload(primary, restore);
  const { lines, warnings } = confirmRules(primary, rules, records);
  return {
    ...changed,
    confirmedLines: lines,
    restartRequired: listen.restartRequired && !restart,
    warnings,
    dryRun: false,
  };
}

/** Removes every pg_hba record for this address (the secondary leaves), then reloads and checks. */
export async function revokeAccess(
  primary: PgInstance,
  address: string,
): Promise<{ removed: number; hbaChanged: boolean }> {
  const host = primary.host;
  const cidr = hostCidr(address);
  const before = await readText(host, primary.hbaFile);
  const doc = editors.hba(before, primary.hbaFile);
  const count = doc
    .records()
    .filter((r) => r.type !== 'local' && (r.address ?? '').toLowerCase() === cidr.toLowerCase()).length;
  for (const type of ['host', 'hostssl', 'hostnossl'] as const) doc.remove({ type, address: cidr });
  const after = doc.toString();
  if (after === before) return { removed: 0, hbaChanged: false };
  const rules = await commitHba(primary, before, after);
  if (!rules) return { removed: count, hbaChanged: true }; // dry run
  const [ip] = cidr.split('/');
  // the rules the check before the reload returned: pg_hba.conf as written
  const left = rules.filter(
    (r) => r.address === ip && (r.netmask === '255.255.255.255' || /^(ffff:){7}ffff$/.test(r.netmask ?? '')),
  );
  if (left.length > 0) {
    throw new DbConfigError(
      host.name,
      `pg_hba_file_rules still shows ${left.length} record(s) for ${cidr} (lines ${left.map((r) => r.line_number).join(', ')}).`,
      `Remove them from ${primary.hbaFile} by hand.`,
    );
  }
  return { removed: count, hbaChanged: true };
}
