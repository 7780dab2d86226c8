import {
  buildCommand,
  fileOf,
  HoconDocument,
  IniDocument,
  ServicesDocument,
  type Layout,
} from '@pe-stack/pe-config-files';
import { CA_GATE, caServing } from './ca-switch.js';
import { inspectCert, parseCrl } from '@pe-stack/pe-certs';
import { checkFromHost, dbFilesFromLayout, readServiceCredentials } from '@pe-stack/pe-db';
import { verifyDebian, verifyPe3, type McoCluster } from '@pe-stack/pe-mcollective';
import { PeError, Semaphore, type Host, type Redactor } from '@pe-stack/pe-host';
import type { Inventory, InventoryNode } from '../inventory.js';
import { crlRefreshInterval, crlRefreshSupported, readCrlRefreshState, type CrlRefreshState } from './crl-refresh.js';

export type Health = 'healthy' | 'degraded' | 'broken';

export interface MasterStatus {
  name: string;
  role: InventoryNode['role'];
  reachable: boolean;
  error?: { code: string; message: string } | undefined;
  /** service name -> running */
  services: Record<string, boolean>;
  /** This master's own CA is enabled and not gated, or its puppetserver signs (only the primary's should). */
  caEnabled: boolean | undefined;
  /** Its CA service is enabled on a copy but gated (auth.conf denies every CA request but the CA certificate and CRL): the warm standby's. */
  caGated?: boolean | undefined;
  cert?:
    | { notAfter: string; daysLeft: number; altNames: string[]; missingAltNames: string[]; issuer: string }
    | { error: string }
    | undefined;
  /** Its web server's CRL copy (layout hostCrl), compared with the CA's CRL (`StatusReport.crl`). */
  crl?: MasterCrl | { error: string } | undefined;
  /** The CA's own CRL, where this master has a CA directory (the primary; a warm standby's copy). */
  caCrl?: { number?: string | undefined; thisUpdate: string } | undefined;
  database?:
    | {
        server: string;
        port: number;
        database: string;
        pointsAtPrimary: boolean;
        connected?: boolean | undefined;
        error?: string | undefined;
      }
    | { error: string }
    | undefined;
  /** Streaming replication is not part of the inventory yet: reported as such, never as healthy by assumption. */
  replication: { state: 'not-configured' };
  problems: { level: 'degraded' | 'broken'; message: string }[];
}

/** A master's CRL copy: when it was issued, its number, whether it is the CA's current one, and its refresh. */
export interface MasterCrl {
  thisUpdate: string;
  ageHours: number;
  ageSeconds: number;
  nextUpdate?: string | undefined;
  expired: boolean;
  /** The CRL number (decimal), when the CRL has one. */
  number?: string | undefined;
  /** Equal to the number of the CA's CRL (undefined when the CA's CRL could not be read). */
  matchesPrimary?: boolean | undefined;
  /** What pe-crl-refresh did last on this master (absent where it is not installed). */
  refresh?: CrlRefreshState | undefined;
}

/** The CA's current CRL, read on the master that holds the CA (else the primary): what every copy is compared with. */
export interface CaCrl {
  host: string;
  number?: string | undefined;
  thisUpdate: string;
  /** Seconds between two refreshes on each secondary (inventory `crl_refresh_interval`); absent where the layout gets no refresh (pe3). */
  refreshIntervalS?: number | undefined;
}

export interface StatusReport {
  cluster: string;
  health: Health;
  crl?: CaCrl | undefined;
  /** The hosts whose CA is enabled: exactly one (the primary) when healthy. */
  caHolders: string[];
  masters: MasterStatus[];
  mcollective: { ok: boolean; problems: string[] } | { error: string };
  problems: { level: 'degraded' | 'broken'; host?: string | undefined; message: string }[];
}

export interface StatusContext {
  readonly inventory: Inventory;
  host(name: string): Host;
}

const msg = (e: unknown, r: Redactor) => r.redact(e instanceof Error ? e.message : String(e));

async function readText(h: Host, path: string, sudo: boolean): Promise<string | undefined> {
  if (!(await h.exists(path, { sudo }))) return undefined;
  return (await h.readFile(path, { sudo })).toString('utf8');
}

async function gatedInFile(h: Host, path: string, sudo: boolean): Promise<boolean> {
  const t = await readText(h, path, sudo);
  if (t === undefined) return false;
  const rules = new HoconDocument(t, path).get(['authorization', 'rules']);
  return (
    Array.isArray(rules) &&
    rules.some((r) => r !== null && typeof r === 'object' && (r as Record<string, unknown>)['name'] === CA_GATE.name)
  );
}

async function caEnabled(h: Host, layout: Layout, sudo: boolean): Promise<boolean | undefined> {
  if (layout.caDisable.kind === 'services') {
    const p = fileOf(layout, 'caCfg').path;
    const t = await readText(h, p, sudo);
    return t === undefined ? undefined : new ServicesDocument(t, p).caEnabled();
  }
  const p = fileOf(layout, 'puppetConf').path;
  const t = await readText(h, p, sudo);
  if (t === undefined) return undefined;
  const v = new IniDocument(t, p).get(layout.caDisable.section, layout.caDisable.key);
  return v === undefined ? true : v.trim() !== layout.caDisable.value;
}

type Level = 'degraded' | 'broken';

/** One master being looked at: where its status and problems go. */
interface Look {
  inv: Inventory;
  node: InventoryNode;
  h: Host;
  sudo: boolean;
  now: Date;
  s: MasterStatus;
  problem(level: Level, message: string): void;
}

async function masterStatus(inv: Inventory, node: InventoryNode, h: Host, now: Date): Promise<MasterStatus> {
  const s: MasterStatus = {
    name: node.name,
    role: node.role,
    reachable: false,
    services: {},
    caEnabled: undefined,
    replication: { state: 'not-configured' },
    problems: [],
  };
  const look: Look = {
    inv,
    node,
    h,
    sudo: node.sudo,
    now,
    s,
    problem: (level, message) => s.problems.push({ level, message }),
  };
  if (!(await reachable(look))) return s;
  await servicesRunning(look);
  await caState(look);
  await certificateState(look);
  await crlState(look);
  await databaseState(look);
  return s;
}

async function reachable({ inv, node, h, s, problem }: Look): Promise<boolean> {
  try {
    await h.exec(['true'], { readOnly: true, timeoutMs: 20_000 });
    s.reachable = true;
    return true;
  } catch (e) {
    s.error = { code: e instanceof PeError ? String(e.code) : 'E_INTERNAL', message: msg(e, inv.redactor) };
    problem(node.role === 'primary' ? 'broken' : 'degraded', `unreachable: ${s.error.message}`);
    return false;
  }
}

async function servicesRunning({ inv, node, h, sudo, s, problem }: Look): Promise<void> {
  const layout = inv.layout;
  const services = [
    layout.services.puppetserver,
    layout.services.puppetdb,
    ...(node.role === 'primary' ? [layout.services.postgresql] : []),
    layout.services.activemq,
    layout.services.mcollective,
  ];
  await Promise.all(
    services.map(async (svc) => {
      const x = await h.exec(buildCommand(layout, 'serviceStatus', { service: svc }), {
        sudo,
        readOnly: true,
        allowFailure: true,
        timeoutMs: 30_000,
      });
      s.services[svc] = x.code === 0;
      if (x.code !== 0)
        problem(
          svc === layout.services.puppetserver || (svc === layout.services.postgresql && node.role === 'primary')
            ? 'broken'
            : 'degraded',
          `${svc} is not running`,
        );
    }),
  );
}

async function caState({ inv, h, sudo, s, problem }: Look): Promise<void> {
  const layout = inv.layout;
  try {
    const enabled = await caEnabled(h, layout, sudo);
    const gateFile =
      enabled && layout.files.authConf && layout.crl.kind === 'hocon'
        ? await gatedInFile(h, fileOf(layout, 'authConf').path, sudo)
        : false;
    // the server's answer wins where it signs; a file that enables an ungated CA counts too (it signs after its next restart)
    const live = enabled || gateFile ? await caServing({ host: h, sudo }, layout) : undefined;
    s.caEnabled =
      enabled === undefined && live === undefined ? undefined : live === 'signing' || (Boolean(enabled) && !gateFile);
    s.caGated = Boolean(enabled) && gateFile && live !== 'signing';
  } catch (e) {
    problem('degraded', `cannot tell whether the CA is enabled: ${msg(e, inv.redactor)}`);
  }
}

async function certificateState({ inv, node, h, sudo, now, s, problem }: Look): Promise<void> {
  try {
    const pem = await readText(h, `${inv.layout.dirs.certsDir}/${node.name}.pem`, sudo);
    if (pem === undefined) {
      s.cert = { error: 'no certificate' };
      problem('broken', 'has no certificate');
      return;
    }
    const c = inspectCert(pem, `${node.name}'s certificate`);
    const daysLeft = Math.floor((c.notAfter.getTime() - now.getTime()) / 86_400_000);
    // inspectCert gives OpenSSL's form ("DNS:name", "IP Address:1.2.3.4"): compare names
    const names = c.altNames.map((n) => n.replace(/^(DNS|IP Address):/, ''));
    const want = [inv.generalCname, inv.primaryCname];
    const missing = want.filter((n) => !names.includes(n));
    s.cert = {
      notAfter: c.notAfter.toISOString(),
      daysLeft,
      altNames: names,
      missingAltNames: missing,
      issuer: c.issuer,
    };
    if (daysLeft < 0) problem('broken', 'its certificate has expired');
    else if (daysLeft < 30) problem('degraded', `its certificate expires in ${daysLeft} days`);
    if (missing.length) problem('degraded', `its certificate lacks the alt names ${missing.join(', ')}`);
  } catch (e) {
    s.cert = { error: msg(e, inv.redactor) };
    problem('broken', `its certificate cannot be read: ${s.cert.error}`);
  }
}

async function crlState(look: Look): Promise<void> {
  const { inv, h, sudo, now, s, problem } = look;
  try {
    const crlSpec = inv.layout.files.hostCrl;
    const pem = crlSpec ? await readText(h, crlSpec.path, sudo) : undefined;
    if (pem === undefined) {
      s.crl = { error: 'no CRL copy' };
      problem('degraded', 'has no CRL copy');
      return;
    }
    const c = parseCrl(pem);
    const expired = c.nextUpdate !== undefined && c.nextUpdate.getTime() < now.getTime();
    const ageMs = now.getTime() - c.thisUpdate.getTime();
    const crl: MasterCrl = {
      thisUpdate: c.thisUpdate.toISOString(),
      ageHours: Math.round(ageMs / 3_600_000),
      ageSeconds: Math.max(0, Math.round(ageMs / 1000)),
      nextUpdate: c.nextUpdate?.toISOString(),
      expired,
      number: c.crlNumber?.toString(),
    };
    s.crl = crl;
    if (expired) problem('degraded', 'its CRL copy is past its next update');
    if (crlRefreshSupported(inv.layout)) crl.refresh = await readCrlRefreshState({ host: h, sudo }, inv.layout);
  } catch (e) {
    s.crl = { error: msg(e, inv.redactor) };
    problem('degraded', `its CRL cannot be read: ${s.crl.error}`);
  }
  await caCrlState(look);
}

/** The CA's own CRL, where this master has a CA directory (the primary; a warm standby's copy). */
async function caCrlState(look: Look): Promise<void> {
  const spec = look.inv.layout.files.caCrl;
  try {
    const pem = spec ? await readText(look.h, spec.path, look.sudo) : undefined;
    if (pem === undefined) return;
    const c = parseCrl(pem);
    look.s.caCrl = { number: c.crlNumber?.toString(), thisUpdate: c.thisUpdate.toISOString() };
  } catch {
    // a CA CRL that cannot be read here: the master's own copy is what counts for it
  }
}

/**
 * Every master's CRL copy against the CA's current CRL (read on the CA holder, else the primary): its number
 * equal or not. A copy behind the CA's is a problem once the CA's CRL is older than two refresh intervals
 * and a minute (until then the refresh may not have run yet); so is a refresh that has not succeeded for as long.
 */
function crlAgreement(inv: Inventory, masters: MasterStatus[], caHolders: string[], now: Date): CaCrl | undefined {
  const intervalS = crlRefreshInterval(inv);
  const graceMs = (2 * intervalS + 60) * 1000;
  const source = masters.find((m) => m.name === (caHolders.length === 1 ? caHolders[0] : inv.primary.name));
  const ca = source ? caCrlOf(source) : undefined;
  for (const m of masters) {
    if (!m.crl || 'error' in m.crl) continue;
    const crl = m.crl;
    if (ca?.number !== undefined && crl.number !== undefined) {
      crl.matchesPrimary = crl.number === ca.number;
      if (BigInt(crl.number) < BigInt(ca.number) && now.getTime() - ca.thisUpdate.getTime() > graceMs)
        m.problems.push({
          level: 'degraded',
          message: `its CRL (number ${crl.number}) is behind the CA's (number ${ca.number}, issued ${ca.thisUpdate.toISOString()}): certificates revoked since are still accepted here`,
        });
    }
    const r = crl.refresh;
    const since = r?.lastOk ?? r?.started;
    if (r && (!since || now.getTime() - Date.parse(since) > graceMs))
      m.problems.push({
        level: 'degraded',
        message: `its CRL refresh has not succeeded ${since ? `since ${since}` : 'yet'} (every ${intervalS} s)${r.lastError ? `: ${inv.redactor.redact(r.lastError)}` : ''}`,
      });
  }
  return source && ca
    ? {
        host: source.name,
        number: ca.number,
        thisUpdate: ca.thisUpdate.toISOString(),
        ...(crlRefreshSupported(inv.layout) ? { refreshIntervalS: intervalS } : {}),
      }
    : undefined;
}

/** The CA's CRL as read on `m`: its CA directory's, else its own copy. */
function caCrlOf(m: MasterStatus): { number?: string | undefined; thisUpdate: Date } | undefined {
  const c = m.caCrl ?? (m.crl && !('error' in m.crl) ? m.crl : undefined);
  return c ? { number: c.number, thisUpdate: new Date(c.thisUpdate) } : undefined;
}

async function databaseState({ inv, node, h, s, problem }: Look): Promise<void> {
  const r = inv.redactor;
  try {
    const f = dbFilesFromLayout(inv.layout).find((x) => x.service === 'puppetdb');
    const c = f ? await readServiceCredentials(h, f) : undefined;
    if (!c) {
      s.database = { error: 'no PuppetDB database settings' };
      problem('broken', 'PuppetDB has no database settings');
      return;
    }
    r.add(c.password);
    const local = ['localhost', '127.0.0.1', '::1'];
    const pointsAtPrimary =
      c.server === inv.primaryCname ||
      c.server === inv.primary.name ||
      (node.role === 'primary' && local.includes(c.server));
    const database: Extract<MasterStatus['database'], { server: string }> = {
      server: c.server,
      port: c.port,
      database: c.database,
      pointsAtPrimary,
    };
    s.database = database;
    if (!pointsAtPrimary) problem('degraded', `PuppetDB writes to ${c.server}, not to the primary's database`);
    try {
      await checkFromHost(h, c, c.password, { samples: 1 });
      database.connected = true;
    } catch (e) {
      database.connected = false;
      database.error = msg(e, r);
      problem(
        node.role === 'primary' ? 'broken' : 'degraded',
        `PuppetDB's database is not reachable from here: ${database.error}`,
      );
    }
  } catch (e) {
    s.database = { error: msg(e, r) };
    problem('degraded', `cannot read PuppetDB's database settings: ${s.database.error}`);
  }
}

/** Read-only health of every master; never changes anything. */
export async function collectStatus(
  c: StatusContext,
  opts: { concurrency?: number; now?: Date } = {},
): Promise<StatusReport> {
  const inv = c.inventory;
  const now = opts.now ?? new Date();
  const sem = new Semaphore(Math.max(1, opts.concurrency ?? 8));
  const masters = await Promise.all(inv.masters.map((m) => sem.run(() => masterStatus(inv, m, c.host(m.name), now))));
  const caHolders = masters.filter((m) => m.caEnabled).map((m) => m.name);
  const crl = crlAgreement(inv, masters, caHolders, now);
  const problems: StatusReport['problems'] = masters.flatMap((m) => m.problems.map((p) => ({ ...p, host: m.name })));
  problems.push(...caHolderProblems(inv, caHolders));
  const mcollective = await mcollectiveStatus(c, masters, problems);
  return {
    cluster: inv.cluster,
    health: healthOf(problems),
    caHolders,
    ...(crl ? { crl } : {}),
    masters,
    mcollective,
    problems,
  };
}

/** Exactly one master, the primary, holds the CA. */
function caHolderProblems(inv: Inventory, caHolders: string[]): StatusReport['problems'] {
  if (caHolders.length === 0)
    return [{ level: 'broken', message: 'no master has its CA enabled: certificates cannot be signed' }];
  if (caHolders.length > 1)
    return [
      {
        level: 'broken',
        message: `more than one master has its CA enabled (${caHolders.join(', ')}): exactly one (the primary) must`,
      },
    ];
  if (caHolders[0] !== inv.primary.name)
    return [
      { level: 'broken', message: `the CA is enabled on ${caHolders[0]}, not on the primary ${inv.primary.name}` },
    ];
  return [];
}

/** MCollective's shared files and broker lists across the reachable masters; its problems are added to `problems`. */
async function mcollectiveStatus(
  c: StatusContext,
  masters: MasterStatus[],
  problems: StatusReport['problems'],
): Promise<StatusReport['mcollective']> {
  const inv = c.inventory;
  const reachable = masters.filter((m) => m.reachable).map((m) => inv.masters.find((n) => n.name === m.name)!);
  if (!reachable.some((m) => m.role === 'primary')) return { error: 'the primary is unreachable' };
  const master = (n: InventoryNode) => ({ fqdn: n.name, host: c.host(n.name), layout: inv.layout });
  const mco: McoCluster = {
    primary: master(inv.primary),
    secondaries: reachable.filter((m) => m.role === 'secondary').map(master),
    sudo: inv.masters.some((m) => m.sudo),
  };
  try {
    const rep = inv.layout.flavour === 'pe3' ? await verifyPe3(mco) : await verifyDebian(mco, { ping: false });
    const mcollective = { ok: rep.ok, problems: rep.problems.map((p) => inv.redactor.redact(p)) };
    for (const p of mcollective.problems) problems.push({ level: 'degraded', message: `MCollective: ${p}` });
    return mcollective;
  } catch (e) {
    const mcollective = { error: msg(e, inv.redactor) };
    problems.push({ level: 'degraded', message: `MCollective cannot be checked: ${mcollective.error}` });
    return mcollective;
  }
}

function healthOf(problems: StatusReport['problems']): Health {
  return problems.some((p) => p.level === 'broken') ? 'broken' : problems.length ? 'degraded' : 'healthy';
}

/** The status as a table an operator reads. */
export function formatStatus(r: StatusReport): string {
  const rows = [['HOST', 'ROLE', 'SSH', 'CA', 'SERVICES', 'CERT', 'CRL', 'DATABASE'], ...r.masters.map(statusRow)];
  let out = table(rows);
  const mco =
    'error' in r.mcollective ? `unknown (${r.mcollective.error})` : r.mcollective.ok ? 'consistent' : 'inconsistent';
  out += `\nCA: ${r.caHolders.length === 1 ? r.caHolders[0] : r.caHolders.length === 0 ? 'NONE' : `MORE THAN ONE: ${r.caHolders.join(', ')}`}   MCollective: ${mco}   replication: not configured\n`;
  out += formatCrlLines(r);
  for (const p of r.problems)
    out += `${p.level === 'broken' ? 'BROKEN ' : 'warning'} ${p.host ? `${p.host}: ` : ''}${p.message}\n`;
  out += `\n${r.cluster}: ${r.health.toUpperCase()}\n`;
  return out;
}

function statusRow(m: MasterStatus): string[] {
  const svc = Object.entries(m.services)
    .map(([k, v]) => `${k}${v ? '' : '(down)'}`)
    .join(',');
  const cert = !m.cert
    ? '-'
    : 'error' in m.cert
      ? m.cert.error
      : `${m.cert.daysLeft}d${m.cert.missingAltNames.length ? ' (alt names missing)' : ''}`;
  const crl = !m.crl ? '-' : 'error' in m.crl ? m.crl.error : crlCell(m.crl);
  const db = !m.database
    ? '-'
    : 'error' in m.database && !('server' in m.database)
      ? m.database.error
      : `${(m.database as { server: string }).server}${(m.database as { connected?: boolean }).connected === false ? ' (no connection)' : ''}`;
  return [
    m.name,
    m.role,
    m.reachable ? 'ok' : (m.error?.code ?? 'down'),
    m.caEnabled === undefined ? '?' : m.caEnabled ? 'enabled' : m.caGated ? 'gated' : 'off',
    svc || '-',
    cert,
    crl,
    db ?? '-',
  ];
}

/** `#5 3m = CA`: the copy's number, its age, and whether it is the CA's current CRL. */
function crlCell(c: MasterCrl): string {
  const agree = c.matchesPrimary === undefined ? '' : c.matchesPrimary ? ' = CA' : ' BEHIND CA';
  return `${c.number === undefined ? '' : `#${c.number} `}${age(c.ageSeconds)}${agree}${c.expired ? ' (stale)' : ''}`;
}

function age(seconds: number): string {
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 3 * 3600) return `${Math.round(seconds / 60)}m`;
  if (seconds < 3 * 86_400) return `${Math.round(seconds / 3600)}h`;
  return `${Math.round(seconds / 86_400)}d`;
}

/** The CA's CRL, then each master's refresh (where pe-crl-refresh runs). */
function formatCrlLines(r: StatusReport): string {
  if (!r.crl) return '';
  const refresh =
    r.crl.refreshIntervalS === undefined
      ? 'no refresh service on this layout'
      : `refresh every ${r.crl.refreshIntervalS} s`;
  let out = `CRL: #${r.crl.number ?? '?'} issued ${r.crl.thisUpdate} (read on ${r.crl.host}); ${refresh}\n`;
  for (const m of r.masters) {
    const f = m.crl && !('error' in m.crl) ? m.crl.refresh : undefined;
    if (!f) continue;
    const state = f.lastError
      ? `FAILING (last success ${f.lastOk ?? 'never'}): ${f.lastError}`
      : `ok, last check ${f.lastCheck ?? '-'}, last change ${f.lastChange ?? '-'}`;
    out += `  refresh on ${m.name} from ${f.server ?? '?'}: ${state}\n`;
  }
  return out;
}

/** Columns padded to their widest cell, two spaces apart, no trailing blanks. */
function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return `${rows
    .map((row) =>
      row
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')}\n`;
}
