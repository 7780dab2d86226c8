import { readFileSync } from 'node:fs';
import { applyEdits, fileOf, type Layout } from '@pe-stack/pe-config-files';
import { FENCE_MARKER, type FenceRecord } from '@pe-stack/pe-db';
import { isIpLiteral, validateHostname, validateRemotePath } from '@pe-stack/pe-host';
import { probe, type Step, type StepGroup } from '@pe-stack/pe-steps';
import type { Inventory, InventoryNode } from '../inventory.js';
import { FailoverError } from '../errors.js';
import { caOffEdits } from './ca-switch.js';
import { remoteOf, type Remote } from './cluster-access.js';
import { group } from './step-kinds.js';

/**
 * The boot-time fence. A primary that was powered off during an emergency
 * failover still has its CA enabled and its PostgreSQL set up as a primary:
 * nothing could reach it to change its files. When it boots, its service
 * manager runs `pe-cluster-guard` before puppetserver and PostgreSQL start
 * (systemd drop-ins, `ExecStartPre=+`). The guard asks every other master
 * over HTTPS (verified against the CA certificate, unauthenticated) whether
 * it is the active, signing CA: `GET <ca path>` 200 and `GET <csr path>` not
 * 403 (a gated warm standby denies every signing endpoint). If one is, this
 * host fences itself: its CA switched off (the same edit pe-cluster makes),
 * pe-db's fence marker and standby.signal in its data directory (PostgreSQL
 * starts read-only, in recovery, never as a primary). A host carrying a
 * fence marker stays fenced at every start until `rejoin`. Nobody answers
 * (a whole-cluster cold boot): it starts unchanged. Bounded: every request
 * has a connect timeout of 1 s and a total of 2 s, peers are asked in
 * parallel; a probe error never fails a start.
 *
 * Only a host that would start as an active CA probes: a secondary's CA is
 * off and its own unused PostgreSQL also starts as a primary, so the
 * database side follows the CA decision and a secondary is never fenced. A
 * deliberate takeover (failover's `ca-enabled`) is announced to the guard
 * first (`allowCaStart`): until then the old CA may still answer (a HUP does
 * not re-read services.d).
 *
 * The guard runs as root and writes into directories other users own
 * (PostgreSQL's data directory): it writes there as that owner (setpriv),
 * and as root only where no other user can change the directory or one
 * above it; anything else is refused and logged (write_new in the script).
 */

export const GUARD_SCRIPT_PATH = '/usr/local/sbin/pe-cluster-guard';
/** Per host state: the allow token, the fence marker of a host without a PostgreSQL data directory, guard.log. */
export const GUARD_STATE_DIR = '/var/local/pe-cluster';
export const GUARD_PROBE_NAME = 'pe-cluster-guard-probe';
/** The file name of the drop-in in each unit's `.d` directory. */
export const GUARD_DROP_IN = 'pe-cluster-guard.conf';

export interface GuardOptions {
  /** Where the script goes (default /usr/local/sbin/pe-cluster-guard). */
  scriptPath?: string;
  /** The guard's config on each master (default `<puppet confdir>/pe-cluster-guard.conf`). */
  configPath?: string;
  /** Default /var/local/pe-cluster. */
  stateDir?: string;
  /** Where drop-ins go (default /etc/systemd/system). */
  systemdDir?: string;
  /**
   * Text whose presence in the master's auth.conf means its CA is gated (the
   * warm standby's rule that denies every signing endpoint, e.g. the rule's
   * name): such a host does not count itself as an active CA at boot.
   */
  gate?: string;
  /** The PostgreSQL data directory and its owner (default: the layout's). */
  pg?: (node: InventoryNode) => { dataDir: string; osUser: string } | undefined;
  /** Seconds; defaults 1 and 2. */
  connectTimeoutS?: number;
  maxTimeS?: number;
}

export interface GuardPaths {
  script: string;
  config: string;
  stateDir: string;
  systemdDir: string;
}

export function guardPaths(layout: Layout, o: GuardOptions = {}): GuardPaths {
  const p = {
    script: o.scriptPath ?? GUARD_SCRIPT_PATH,
    config: o.configPath ?? `${layout.dirs.confdir}/pe-cluster-guard.conf`,
    stateDir: o.stateDir ?? GUARD_STATE_DIR,
    systemdDir: o.systemdDir ?? '/etc/systemd/system',
  };
  for (const v of Object.values(p)) validateRemotePath(v);
  return p;
}

/** The CA endpoints the guard asks (Puppet 3's v1 API under /production; puppetserver's /puppet-ca/v1). */
export function caProbePaths(layout: Layout): { ca: string; csr: string } {
  const base = layout.flavour === 'pe3' ? '/production' : '/puppet-ca/v1';
  return { ca: `${base}/certificate/ca`, csr: `${base}/certificate_request/${GUARD_PROBE_NAME}` };
}

/** The units the guard runs before: puppetserver's and PostgreSQL's (a template for Debian's per-cluster `postgresql@15-main`). */
export function guardUnits(layout: Layout): { puppetserver: string; postgresql: string } {
  return {
    puppetserver: `${layout.services.puppetserver}.service`,
    postgresql: layout.postgresql.cluster
      ? `${layout.services.postgresql}@.service`
      : `${layout.services.postgresql}.service`,
  };
}

/** The script (an asset of this package: assets/pe-cluster-guard.sh, found from src/ and dist/ alike). */
export function guardScript(): string {
  return readFileSync(new URL('../../assets/pe-cluster-guard.sh', import.meta.url), 'utf8');
}

/** The guard's config of one master (KEY=VALUE lines; the script evaluates nothing). */
export function guardConfig(inv: Inventory, node: InventoryNode, o: GuardOptions = {}): string {
  const layout = inv.layout;
  const paths = guardPaths(layout, o);
  const { ca, csr } = caProbePaths(layout);
  const pg = o.pg ? o.pg(node) : { dataDir: layout.dirs.postgresqlDataDir, osUser: layout.users.postgres.user };
  const verify = layout.files.agentCaCert?.path ?? fileOf(layout, 'caCert').path;
  const sw = layout.caDisable;
  const lines = [
    `# pe-cluster-guard of ${node.name}: written by pe-cluster (cluster ${inv.cluster}); rewritten by every install`,
    `CERTNAME=${validateHostname(node.name)}`,
    ...inv.masters
      .filter((m) => m.name !== node.name)
      .map(
        (m) =>
          `PEER=${validateHostname(m.name)}${m.ssh.address && isIpLiteral(m.ssh.address) ? ` ${m.ssh.address}` : ''}`,
      ),
    'PORT=8140',
    `CA_PATH=${ca}`,
    `CSR_PATH=${csr}`,
    `VERIFY_CA=${validateRemotePath(verify)}`,
    ...(sw.kind === 'services'
      ? ['CA_SWITCH_KIND=services', `CA_SWITCH_FILE=${validateRemotePath(fileOf(layout, sw.file).path)}`]
      : [
          'CA_SWITCH_KIND=ini',
          `CA_SWITCH_FILE=${validateRemotePath(fileOf(layout, sw.file).path)}`,
          `CA_SWITCH_SECTION=${safe(sw.section)}`,
          `CA_SWITCH_KEY=${safe(sw.key)}`,
        ]),
    ...(o.gate && layout.files.authConf
      ? [`AUTH_CONF=${validateRemotePath(layout.files.authConf.path)}`, `GATE=${safe(o.gate)}`]
      : []),
    ...(pg ? [`PG_DATA=${validateRemotePath(pg.dataDir)}`, `PG_USER=${safe(pg.osUser)}`] : []),
    `STATE_DIR=${paths.stateDir}`,
    `CONNECT_TIMEOUT=${o.connectTimeoutS ?? 1}`,
    `MAX_TIME=${o.maxTimeS ?? 2}`,
  ];
  return `${lines.join('\n')}\n`;
}

function safe(v: string): string {
  if (!/^[\w@%+=:,./ -]+$/.test(v) || v.trim() !== v)
    throw new FailoverError(
      'E_INVALID_INPUT',
      `"${v}" cannot go into the guard's config (letters, digits, spaces and @%+=:,./_- only).`,
    );
  return v;
}

/** The drop-ins: path and content, one per unit. */
export function guardDropIns(layout: Layout, o: GuardOptions = {}): { unit: string; path: string; content: string }[] {
  const p = guardPaths(layout, o);
  const units = guardUnits(layout);
  return (['puppetserver', 'postgresql'] as const).map((kind) => ({
    unit: units[kind],
    path: `${p.systemdDir}/${units[kind]}.d/${GUARD_DROP_IN}`,
    content: [
      `# pe-cluster: the boot-time fence. Before ${units[kind]} starts, pe-cluster-guard checks whether another`,
      '# master is the active CA; if so this host starts fenced (CA disabled, PostgreSQL read-only in recovery).',
      '# `+`: as root (puppetserver runs as its own user). Removed by no flow; delete it to stop guarding.',
      '[Service]',
      `ExecStartPre=+${p.script} --config ${p.config} ${kind}`,
      '',
    ].join('\n'),
  }));
}

async function ensureDir(at: Remote, path: string): Promise<void> {
  const dir = path.slice(0, path.lastIndexOf('/')) || '/';
  if (!(await at.host.exists(dir, { sudo: at.sudo }))) await at.host.mkdir(dir, { mode: 0o755, sudo: at.sudo });
}

async function writeRootFile(at: Remote, path: string, content: string, mode: number): Promise<boolean> {
  await ensureDir(at, path);
  return (await at.host.writeFile(path, content, { mode, owner: 'root', group: 'root', sudo: at.sudo })).changed;
}

/** What the install steps of one master share. */
interface GuardInstall {
  readonly inv: Inventory;
  readonly layout: Layout;
  readonly node: InventoryNode;
  readonly paths: GuardPaths;
  readonly options: GuardOptions;
}

/**
 * Installs the guard on one master: the script, its config (this host's
 * certname, the other masters, the layout's CA switch, CA certificate and
 * PostgreSQL data directory), the web server's TLS files named explicitly
 * (puppetserver layouts: so puppetserver still starts once the guard has
 * switched its CA off), the drop-ins, and `systemctl daemon-reload`.
 * Idempotent: a rerun changes nothing.
 */
export function guardInstallSteps(inv: Inventory, node: InventoryNode, o: GuardOptions = {}): Step[] {
  const install: GuardInstall = { inv, layout: inv.layout, node, paths: guardPaths(inv.layout, o), options: o };
  return [
    scriptInstalled(install),
    configWritten(install),
    ...(install.layout.crl.kind === 'hocon' ? [webTlsNamed(install)] : []),
    dropInsWritten(install),
    systemdReloaded(install),
  ];
}

/** A step whose check probes the idempotent `write` and whose apply runs it. */
function writeStep(install: GuardInstall, id: string, title: string, write: (at: Remote) => Promise<unknown>): Step {
  return {
    id,
    host: install.node.name,
    title,
    check: (ctx) => probe(ctx, (x) => write(remoteOf(x.host, install.node))),
    apply: async (ctx) => {
      await write(remoteOf(ctx.host, install.node));
    },
  };
}

function scriptInstalled(install: GuardInstall): Step {
  return writeStep(install, 'guard.script', `the boot-time fence ${install.paths.script}`, (at) =>
    writeRootFile(at, install.paths.script, guardScript(), 0o755),
  );
}

function configWritten(install: GuardInstall): Step {
  const peers = install.inv.masters.filter((m) => m.name !== install.node.name).map((m) => m.name);
  return writeStep(
    install,
    'guard.config',
    `its config ${install.paths.config} (peers: ${peers.join(', ') || 'none'})`,
    (at) => writeRootFile(at, install.paths.config, guardConfig(install.inv, install.node, install.options), 0o644),
  );
}

function webTlsNamed(install: GuardInstall): Step {
  const web = caOffEdits(install.inv, install.node.name).filter(
    (e) => e.kind === 'hocon' && e.path === fileOf(install.layout, 'webServerConf').path,
  );
  return writeStep(
    install,
    'guard.web-tls',
    `the web server names its certificate, key and CA (puppetserver starts even with its CA switched off)`,
    (at) => applyEdits(at.host, web, { sudo: at.sudo }),
  );
}

function dropInsWritten(install: GuardInstall): Step {
  return writeStep(
    install,
    'guard.drop-ins',
    `run the guard before ${Object.values(guardUnits(install.layout)).join(' and ')} (systemd drop-ins)`,
    async (at) => {
      for (const d of guardDropIns(install.layout, install.options)) await writeRootFile(at, d.path, d.content, 0o644);
    },
  );
}

function systemdReloaded(install: GuardInstall): Step {
  const { node } = install;
  return {
    id: 'guard.daemon-reload',
    host: node.name,
    title: 'systemctl daemon-reload (the drop-ins take effect)',
    verify: false,
    check: (ctx) =>
      Promise.resolve(
        ctx.completedEarlier || !ctx.changedInRun(node.name)
          ? { done: true, why: ctx.completedEarlier ? 'done earlier in this run' : 'nothing changed on the host' }
          : { done: false, why: 'the host changed in this run' },
      ),
    apply: async (ctx) => {
      const r = await ctx.host.exec(['systemctl', 'daemon-reload'], {
        sudo: node.sudo,
        allowFailure: true,
        timeoutMs: 60_000,
      });
      // no systemd (systemctl absent, or systemd not PID 1 as in a container): the drop-ins are inert, nothing to reload
      if (r.code !== 0 && r.code !== 127 && !/not been booted with systemd/.test(r.stderr))
        throw new FailoverError(
          'E_COMMAND_FAILED',
          `systemctl daemon-reload failed on ${node.name}: ${r.stderr.trim() || `exit ${r.code}`}`,
          { host: node.name },
        );
    },
  };
}

/** The guard installed on every master (one lane each, in parallel). */
export function guardInstallGroup(
  inv: Inventory,
  o: GuardOptions = {},
  masters: readonly InventoryNode[] = inv.masters,
): StepGroup {
  return group(
    'guard',
    masters.map((m) => guardInstallSteps(inv, m, o)),
  );
}

/**
 * Lifts the guard's own fence on a master (rejoin, once the host is a
 * secondary again): the marker of a host without a PostgreSQL data directory
 * and a left-over allow token. pe-db's marker in the data directory is
 * pe-db's: its `rejoin` removes it with the rebuild, `--database client`
 * keeps it (and the guard then keeps that host's CA off at every boot).
 */
export function guardClearStep(inv: Inventory, node: InventoryNode, o: GuardOptions = {}): Step {
  const p = guardPaths(inv.layout, o);
  const files = [`${p.stateDir}/fenced`, `${p.stateDir}/allow-start`];
  return {
    id: 'guard.clear',
    host: node.name,
    title: `lift the boot-time fence of ${node.name} (${files.join(', ')})`,
    check: async (ctx) => {
      const left: string[] = [];
      for (const f of files) if (await ctx.host.exists(f, { sudo: node.sudo })) left.push(f);
      return left.length
        ? { done: false, why: `${left.join(', ')} present` }
        : { done: true, why: 'no boot-time fence' };
    },
    apply: async (ctx) => {
      for (const f of files) await ctx.host.remove(f, { sudo: node.sudo });
    },
  };
}

/** How long the guard lets a host start as the CA without probing (allowCaStart). */
export interface AllowCaStartOptions extends GuardOptions {
  /** Default 1800. */
  seconds?: number;
}

/**
 * Tells the guard on `at` that pe-cluster makes it the CA on purpose: for
 * `seconds` its starts are not probed (the old CA may still answer until it
 * is restarted). Call before (re)starting puppetserver as the new CA.
 * Returns false when the guard is not installed there.
 */
export async function allowCaStart(at: Remote, inv: Inventory, o: AllowCaStartOptions = {}): Promise<boolean> {
  const seconds = o.seconds ?? 1800;
  const p = guardPaths(inv.layout, o);
  if (!Number.isInteger(seconds) || seconds <= 0)
    throw new FailoverError('E_INVALID_INPUT', `allowCaStart: ${seconds} is not a positive number of seconds.`);
  if (!(await at.host.exists(p.script, { sudo: at.sudo }))) return false;
  await at.host.exec([p.script, '--config', p.config, 'allow', String(seconds)], { sudo: at.sudo, timeoutMs: 30_000 });
  return true;
}

/** A step form of allowCaStart (its effect expires, so it is redone unless done earlier in this run). */
export function guardAllowStep(inv: Inventory, node: InventoryNode, o: AllowCaStartOptions = {}): Step {
  return {
    id: 'guard.allow-ca-start',
    host: node.name,
    title: `the boot-time fence on ${node.name} lets it start as the CA for ${o.seconds ?? 1800} s`,
    verify: false,
    check: (ctx) =>
      Promise.resolve(
        ctx.completedEarlier
          ? { done: true, why: 'done earlier in this run' }
          : { done: false, why: 'announced per run' },
      ),
    apply: async (ctx) => {
      await allowCaStart(remoteOf(ctx.host, node), inv, o);
    },
  };
}

/** The boot-time fence of a master, if it has one: pe-db's marker in its data directory, else the guard's own. */
export async function readGuardFence(
  at: Remote,
  inv: Inventory,
  o: GuardOptions & { dataDir?: string } = {},
): Promise<(FenceRecord & { path: string }) | undefined> {
  const p = guardPaths(inv.layout, o);
  for (const path of [`${o.dataDir ?? inv.layout.dirs.postgresqlDataDir}/${FENCE_MARKER}`, `${p.stateDir}/fenced`]) {
    if (!(await at.host.exists(path, { sudo: at.sudo }))) continue;
    const text = (await at.host.readFile(path, { sudo: at.sudo })).toString('utf8');
    try {
      return { ...(JSON.parse(text) as FenceRecord), path };
    } catch {
      return { host: at.host.name, dataDir: '', at: '', newPrimary: '', how: 'stopped', reason: text.trim(), path };
    }
  }
  return undefined;
}

/** What the guard on `at` would decide now (`pe-cluster-guard check`: probes, changes nothing); undefined when it is not installed. */
export async function guardCheck(at: Remote, inv: Inventory, o: GuardOptions = {}): Promise<string | undefined> {
  const p = guardPaths(inv.layout, o);
  if (!(await at.host.exists(p.script, { sudo: at.sudo }))) return undefined;
  const r = await at.host.exec([p.script, '--config', p.config, 'check'], {
    sudo: at.sudo,
    readOnly: true,
    allowFailure: true,
    timeoutMs: 30_000,
  });
  return r.stdout.trim();
}
