import { DryRunHost, isIpLiteral } from '@pe-stack/pe-host';
import { editors, readText, type HbaRecordSpec } from './editors.js';
import { DbConfigError } from './errors.js';
import { psql, query, queryOne, quoteLiteral, requireVersion, type PgInstance } from './instance.js';
import { restartInstance } from './lifecycle.js';

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
    throw new DbConfigError('', `"${address}" is not a single IP address; pg_hba records are only ever added for one host (/32 or /128).`);
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
    throw new DbConfigError('', `"${g.database}" is not a database name pe-db grants access to (keywords such as "all" are refused).`);
  }
  if (!NAME.test(g.user) || KEYWORDS.has(g.user)) {
    throw new DbConfigError('', `"${g.user}" is not a user name pe-db grants access to (keywords such as "all" are refused).`);
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
  const rows = await query<{ rolname: string; scram: boolean }>(inst, `SELECT rolname, coalesce(rolpassword LIKE 'SCRAM-SHA-256$%', false) AS scram FROM pg_authid WHERE rolname IN (${users.map(quoteLiteral).join(', ')})`);
  for (const r of rows) if (!r.scram) out.set(r.rolname, 'md5');
  return out;
}

/** pg_hba_file_rules: what PostgreSQL makes of pg_hba.conf as it is on disk now (errors included). */
export async function hbaFileRules(inst: PgInstance): Promise<HbaFileRule[]> {
  return withHbaRules(inst, () => query<HbaFileRule>(inst, `SELECT ${HBA_COLUMNS} FROM pg_hba_file_rules ORDER BY line_number`));
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

/** pg_hba_file_rules and the hba methods of the grants' roles (see hbaMethods), in one psql run. */
export async function hbaRulesAndMethods(inst: PgInstance, grants: readonly AccessGrant[]): Promise<{ rules: HbaFileRule[]; methods: Map<string, HbaMethod> }> {
  const users = [...new Set(grants.map((g) => g.user))];
  const roles = users.length
    ? `(SELECT coalesce(json_agg(a), '[]'::json) FROM (SELECT rolname, coalesce(rolpassword LIKE 'SCRAM-SHA-256$%', false) AS scram FROM pg_authid WHERE rolname IN (${users.map(quoteLiteral).join(', ')})) a)`
    : `'[]'::json`;
  const [row] = await withHbaRules(inst, () =>
    query<{ rules: HbaFileRule[]; roles: { rolname: string; scram: boolean }[] }>(
      inst,
      `SELECT (SELECT coalesce(json_agg(r ORDER BY r.line_number), '[]'::json) FROM (SELECT ${HBA_COLUMNS} FROM pg_hba_file_rules) r) AS rules, ${roles} AS roles`,
    ),
  );
  const methods = new Map<string, HbaMethod>(users.map((u) => [u, 'scram-sha-256']));
  for (const r of row?.roles ?? []) if (!r.scram) methods.set(r.rolname, 'md5');
  return { rules: row?.rules ?? [], methods };
}

function ruleMatches(r: HbaFileRule, rec: HbaRecordSpec): boolean {
  const [ip, bits] = rec.address!.split('/');
  const netmask = bits === '32' ? '255.255.255.255' : 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff';
  return (
    r.error === null &&
    r.type === rec.type &&
    (r.database ?? []).length === 1 && r.database![0] === rec.database &&
    (r.user_name ?? []).length === 1 && r.user_name![0] === rec.user &&
    r.address === ip &&
    r.netmask === netmask &&
    r.auth_method === rec.method
  );
}

/**
 * Writes pg_hba.conf, has PostgreSQL parse it (pg_hba_file_rules) and reloads
 * only when every line parsed; otherwise puts the old file back and throws.
 */
async function commitHba(inst: PgInstance, before: string, after: string): Promise<void> {
  const host = inst.host;
  await host.writeFile(inst.hbaFile, after, { backup: true });
  if (isDryRun(inst)) {
    await psql(inst, 'SELECT pg_reload_conf();');
    return;
  }
  // one psql run: what PostgreSQL makes of the new file, and the reload only when it parses without an error
  const [checked] = await withHbaRules(inst, () =>
    query<{ rules: HbaFileRule[] | null; reloaded: boolean | null }>(
      inst,
      `SELECT json_agg(r ORDER BY r.line_number) AS rules, CASE WHEN bool_and(r.error IS NULL) THEN pg_reload_conf() ELSE false END AS reloaded FROM (SELECT ${HBA_COLUMNS} FROM pg_hba_file_rules) r`,
      { readOnly: false },
    ),
  );
  const bad = (checked?.rules ?? []).filter((r) => r.error !== null);
  if (bad.length > 0) {
    await host.writeFile(inst.hbaFile, before, { backup: false });
    throw new DbConfigError(
      host.name,
      `PostgreSQL cannot parse ${inst.hbaFile} after the change: ${bad.map((r) => `line ${r.line_number}: ${r.error}`).join('; ')}. The previous file was put back and nothing was reloaded.`,
      'Fix the listed lines by hand, then run the step again.',
    );
  }
  if (!checked?.reloaded) await psql(inst, 'SELECT pg_reload_conf();');
}

async function confirm(inst: PgInstance, records: HbaRecordSpec[]): Promise<{ lines: number[]; warnings: string[] }> {
  const rules = await hbaFileRules(inst);
  const lines: number[] = [];
  for (const rec of records) {
    const hit = rules.find((r) => ruleMatches(r, rec));
    if (!hit) {
      throw new DbConfigError(inst.host.name, `pg_hba_file_rules does not show the record "${rec.type} ${rec.database} ${rec.user} ${rec.address} ${rec.method}" after the reload.`, `Look at ${inst.hbaFile}: an include or a second hba_file setting may be in effect.`);
    }
    lines.push(hit.line_number);
  }
  const warnings = rules
    .filter((r) => r.type !== 'local' && r.error === null)
    .filter((r) => r.auth_method === 'trust' || (r.netmask !== null && r.netmask !== '255.255.255.255' && !/^(ffff:){7}ffff$/.test(r.netmask)) || r.address === 'all')
    .map((r) => `${inst.hbaFile} line ${r.line_number}: ${r.type} ${(r.database ?? []).join(',')} ${(r.user_name ?? []).join(',')} ${r.address ?? ''}${r.netmask ? `/${r.netmask}` : ''} ${r.auth_method ?? ''} is broader than a single-host scram rule`);
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
export async function setParameters(inst: PgInstance, params: Record<string, string | number | boolean | null>): Promise<SetParametersResult> {
  const host = inst.host;
  const before = await readText(host, inst.confFile);
  const doc = editors.conf(before, inst.confFile);
  const changed: string[] = [];
  for (const [k, v] of Object.entries(params)) {
    if (v === null ? doc.unset(k) : doc.set(k, v)) changed.push(k);
  }
  if (changed.length > 0) {
    await host.writeFile(inst.confFile, doc.toString(), { backup: true });
    await psql(inst, 'SELECT pg_reload_conf();');
    // a dry run cannot know what the server would make of it; listen_addresses always needs a restart
    if (isDryRun(inst)) return { changed, pendingRestart: changed.filter((k) => k.toLowerCase() === 'listen_addresses') };
    // the reload is asynchronous: give the postmaster a moment to reread the files
    await new Promise((r) => setTimeout(r, 300));
  }
  const names = Object.keys(params).map((k) => quoteLiteral(k.toLowerCase())).join(',');
  const rows = await query<{ name: string; setting: string; sourcefile: string | null; pending_restart: boolean }>(
    inst,
    `SELECT name, setting, sourcefile, pending_restart FROM pg_settings WHERE name IN (${names})`,
  );
  const pendingRestart = rows.filter((r) => r.pending_restart).map((r) => r.name);
  for (const [k, v] of Object.entries(params)) {
    const row = rows.find((r) => r.name === k.toLowerCase());
    if (!row) throw new DbConfigError(host.name, `PostgreSQL does not know the parameter ${k}.`);
    if (v !== null && !row.pending_restart && row.sourcefile !== null && row.sourcefile !== inst.confFile) {
      throw new DbConfigError(host.name, `${k} is set in ${row.sourcefile}, which overrides ${inst.confFile}.`, `Remove ${k} from ${row.sourcefile} (ALTER SYSTEM RESET ${k} for postgresql.auto.conf), then run the step again.`);
    }
  }
  return { changed, pendingRestart };
}

/** Does listen_addresses already cover the address secondaries connect to? */
function listens(current: string, want: string): boolean {
  const parts = current.split(',').map((s) => s.trim());
  return parts.includes('*') || parts.includes(want) || (want !== '*' && parts.includes('0.0.0.0') && !want.includes(':'));
}

export interface GrantAccessOptions {
  /** The primary's own address secondaries connect to, or '*' (the default). */
  listen?: string;
  /** Restart PostgreSQL when listen_addresses changed (else restartRequired tells the caller). */
  restart?: boolean;
}

/**
 * Primary access for one secondary: a `host <db> <user> <ip>/32 scram-sha-256`
 * record per pair (no subnet, no trust), listen_addresses, a reload, and
 * pg_hba_file_rules as proof that PostgreSQL parsed every record. Idempotent.
 */
export async function grantAccess(primary: PgInstance, address: string, grants: readonly AccessGrant[], opts: GrantAccessOptions = {}): Promise<AccessResult> {
  return grantAccessMany(primary, [{ address, grants }], opts);
}

/**
 * grantAccess for several hosts at once: every record in one pg_hba.conf
 * change, one reload (and at most one restart), one confirmation from
 * pg_hba_file_rules. Several secondaries joining together cost the primary
 * one edit instead of one each.
 */
export async function grantAccessMany(primary: PgInstance, targets: readonly { address: string; grants: readonly AccessGrant[] }[], opts: GrantAccessOptions = {}): Promise<AccessResult> {
  const host = primary.host;
  const methods = await hbaMethods(primary, targets.flatMap((t) => t.grants));
  const records = targets.flatMap((t) => t.grants.map((g) => hbaRecord(g, t.address, methods.get(g.user))));
  const before = await readText(host, primary.hbaFile);
  const doc = editors.hba(before, primary.hbaFile);
  let hbaChanged = false;
  // records go before the first existing one: pg_hba is first-match, and a broader reject below must not shadow them
  for (const rec of [...records].reverse()) hbaChanged = doc.add(rec, 'start') || hbaChanged;
  if (hbaChanged) await commitHba(primary, before, doc.toString());

  const want = opts.listen ?? '*';
  // listen_addresses and whether a restart is pending for it, in one query
  const { v: current, p: pendingNow } = await queryOne<{ v: string; p: boolean }>(primary, `SELECT current_setting('listen_addresses') AS v, pending_restart AS p FROM pg_settings WHERE name = 'listen_addresses'`);
  let listenChanged = false;
  let restartRequired: boolean;
  if (!listens(current, want)) {
    const value = want === '*' ? '*' : [...current.split(',').map((s) => s.trim()).filter(Boolean), want].join(',');
    const r = await setParameters(primary, { listen_addresses: value });
    listenChanged = r.changed.length > 0;
    restartRequired = r.pendingRestart.includes('listen_addresses');
  } else {
    restartRequired = pendingNow;
  }
  if (isDryRun(primary)) return { records, hbaChanged, confirmedLines: [], listenChanged, restartRequired, warnings: [], dryRun: true };
  if (restartRequired && opts.restart) {
    await restartInstance(primary);
    restartRequired = false;
  }
  const { lines, warnings } = await confirm(primary, records);
  return { records, hbaChanged, confirmedLines: lines, listenChanged, restartRequired, warnings, dryRun: false };
}

/** Removes every pg_hba record for this address (the secondary leaves), then reloads and checks. */
export async function revokeAccess(primary: PgInstance, address: string): Promise<{ removed: number; hbaChanged: boolean }> {
  const host = primary.host;
  const cidr = hostCidr(address);
  const before = await readText(host, primary.hbaFile);
  const doc = editors.hba(before, primary.hbaFile);
  const count = doc.records().filter((r) => r.type !== 'local' && (r.address ?? '').toLowerCase() === cidr.toLowerCase()).length;
  for (const type of ['host', 'hostssl', 'hostnossl'] as const) doc.remove({ type, address: cidr });
  const after = doc.toString();
  if (after === before) return { removed: 0, hbaChanged: false };
  await commitHba(primary, before, after);
  if (isDryRun(primary)) return { removed: count, hbaChanged: true };
  const [ip] = cidr.split('/');
  const left = (await hbaFileRules(primary)).filter((r) => r.address === ip && (r.netmask === '255.255.255.255' || /^(ffff:){7}ffff$/.test(r.netmask ?? '')));
  if (left.length > 0) {
    throw new DbConfigError(host.name, `pg_hba_file_rules still shows ${left.length} record(s) for ${cidr} (lines ${left.map((r) => r.line_number).join(', ')}).`, `Remove them from ${primary.hbaFile} by hand.`);
  }
  return { removed: count, hbaChanged: true };
}
