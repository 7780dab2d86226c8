import { readFileSync } from 'node:fs';
import { buildCommand, fileOf, type Layout } from '@pe-stack/pe-config-files';
import { puppetSslPaths } from '@pe-stack/pe-certs';
import { sequenceArgv, validateHostname, validateRemotePath } from '@pe-stack/pe-host';
import { ensureStep, type Step } from '@pe-stack/pe-steps';
import type { Inventory, InventoryNode } from '../inventory.js';
import { FailoverError } from '../errors.js';
import type { Remote } from './cluster-access.js';

/**
 * Keeps every secondary's CRL copy current. Join copies the CA's CRL to a
 * secondary once; a certificate revoked on the primary afterwards would be
 * accepted by that secondary for good, and a copy past its nextUpdate makes
 * its puppetserver refuse every agent. So join installs, on each secondary,
 * `pe-crl-refresh` (assets/pe-crl-refresh.sh) run by a systemd unit as a
 * loop: every `crl_refresh_interval` seconds (inventory; default 300) it
 * fetches the CRL from `https://<primary_cname>:8140` (the name moves with
 * a failover, so the refresh follows the current primary) over TLS verified
 * against the Puppet CA and with the host's own certificate, refuses a CRL
 * that does not verify against the CA or is older (CRL number) than the one
 * in place, swaps it atomically into the web server's CRL path (layout
 * `hostCrl`, owner and mode kept) and reloads puppetserver only when the
 * content changed and puppetserver does not watch the file itself (Debian's
 * puppetserver 7 loads filesystem-watch-service, and trapperkeeper-webserver-
 * jetty9 then reloads `ssl-crl-path` on change: TK-149). What it did last
 * is in `<stateDir>/crl-refresh.status`, which `status` shows per master.
 *
 * pe3 gets no refresh service: PE 3 (SysV init, pe-httpd) had no CRL refresh
 * and this tool installs no init script there; `status` shows each pe3
 * master's CRL number against the CA's and reports a copy left behind.
 */

export const CRL_REFRESH_SCRIPT_PATH = '/usr/local/sbin/pe-crl-refresh';
/** The same state directory as the boot-time guard's (root's, per host). */
export const CRL_REFRESH_STATE_DIR = '/var/local/pe-cluster';
export const CRL_REFRESH_STATUS_FILE = 'crl-refresh.status';
export const CRL_REFRESH_UNIT = 'pe-crl-refresh.service';
export const DEFAULT_CRL_REFRESH_INTERVAL_S = 300;

export interface CrlRefreshOptions {
  /** Where the script goes (default /usr/local/sbin/pe-crl-refresh). */
  scriptPath?: string;
  /** Its config on each master (default `<puppet confdir>/pe-crl-refresh.conf`). */
  configPath?: string;
  /** Default /var/local/pe-cluster. */
  stateDir?: string;
  /** Where the unit goes (default /etc/systemd/system). */
  systemdDir?: string;
}

export interface CrlRefreshPaths {
  script: string;
  config: string;
  stateDir: string;
  unit: string;
}

export function crlRefreshPaths(layout: Layout, o: CrlRefreshOptions = {}): CrlRefreshPaths {
  const p = {
    script: o.scriptPath ?? CRL_REFRESH_SCRIPT_PATH,
    config: o.configPath ?? `${layout.dirs.confdir}/pe-crl-refresh.conf`,
    stateDir: o.stateDir ?? CRL_REFRESH_STATE_DIR,
    unit: `${o.systemdDir ?? '/etc/systemd/system'}/${CRL_REFRESH_UNIT}`,
  };
  for (const v of Object.values(p)) validateRemotePath(v);
  return p;
}

/** The refresh is installed where the layout's services are systemd units (debian; not pe3's SysV services). */
export function crlRefreshSupported(layout: Layout): boolean {
  return Boolean(layout.files.hostCrl) && /(^|\/)systemctl$/.test(layout.commands.serviceReload[0] ?? '');
}

/** The inventory's interval in seconds (`crl_refresh_interval`), else the default. */
export function crlRefreshInterval(inv: Pick<Inventory, 'crlRefreshIntervalS'>): number {
  return inv.crlRefreshIntervalS ?? DEFAULT_CRL_REFRESH_INTERVAL_S;
}

/** The CA's CRL endpoint (Puppet 3's v1 API under /production; puppetserver's /puppet-ca/v1). */
export function crlUrlPath(layout: Layout): string {
  return layout.flavour === 'pe3'
    ? '/production/certificate_revocation_list/ca'
    : '/puppet-ca/v1/certificate_revocation_list/ca';
}

/** The script (an asset of this package: assets/pe-crl-refresh.sh, found from src/ and dist/ alike). */
export function crlRefreshScript(): string {
  return readFileSync(new URL('../../assets/pe-crl-refresh.sh', import.meta.url), 'utf8');
}

function plain(key: string, v: string): string {
  const control = [...v].some((ch) => ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f);
  if (control || v.trim() !== v || v === '')
    throw new FailoverError('E_INVALID_INPUT', `${key} "${v}" cannot go into pe-crl-refresh's config.`);
  return `${key}=${v}`;
}

/** One master's config (KEY=VALUE lines; the script evaluates nothing). */
export function crlRefreshConfig(inv: Inventory, node: InventoryNode, o: CrlRefreshOptions = {}): string {
  const layout = inv.layout;
  const paths = crlRefreshPaths(layout, o);
  const tls = puppetSslPaths(layout.dirs.ssldir, node.name);
  const reload = buildCommand(layout, 'serviceReload', { service: layout.services.puppetserver });
  const interval = crlRefreshInterval(inv);
  if (!Number.isInteger(interval) || interval < 1)
    throw new FailoverError('E_INVALID_INPUT', `crl_refresh_interval ${interval} is not a number of seconds.`);
  const lines = [
    `# pe-crl-refresh of ${node.name}: written by pe-cluster (cluster ${inv.cluster}); rewritten by every join`,
    `SERVER=${validateHostname(inv.primaryCname)}`,
    'PORT=8140',
    `URL_PATH=${crlUrlPath(layout)}`,
    `CA_CERT=${validateRemotePath(tls.caCert)}`,
    `HOST_CERT=${validateRemotePath(tls.cert)}`,
    `HOST_KEY=${validateRemotePath(tls.key)}`,
    `CRL=${validateRemotePath(fileOf(layout, 'hostCrl').path)}`,
    `INTERVAL=${interval}`,
    `STATE_DIR=${paths.stateDir}`,
    ...(layout.dirs.servicesd ? [`SERVICES_D=${validateRemotePath(layout.dirs.servicesd)}`] : []),
    ...reload.map((a) => plain('RELOAD_ARG', a)),
    'CONNECT_TIMEOUT=5',
    'MAX_TIME=30',
  ];
  return `${lines.join('\n')}\n`;
}

/** The systemd unit: the script's loop, restarted when it dies. */
export function crlRefreshUnit(inv: Inventory, o: CrlRefreshOptions = {}): string {
  const p = crlRefreshPaths(inv.layout, o);
  const server = `${inv.layout.services.puppetserver}.service`;
  return [
    "# pe-cluster: keeps this master's CRL copy current from the CA behind primary_cname (see the script's header).",
    '# Installed by pe-cluster join; `systemctl status pe-crl-refresh` and `pe-crl-refresh --config ... status` tell what it did.',
    '[Unit]',
    `Description=pe-cluster CRL refresh from ${inv.primaryCname}`,
    'Wants=network-online.target',
    `After=network-online.target ${server}`,
    '',
    '[Service]',
    'Type=simple',
    `ExecStart=${p.script} --config ${p.config} loop`,
    'Restart=always',
    'RestartSec=30',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}

async function writeRootFile(at: Remote, path: string, content: string, mode: number): Promise<boolean> {
  const dir = path.slice(0, path.lastIndexOf('/')) || '/';
  if (!(await at.host.exists(dir, { sudo: at.sudo }))) await at.host.mkdir(dir, { mode: 0o755, sudo: at.sudo });
  return (await at.host.writeFile(path, content, { mode, owner: 'root', group: 'root', sudo: at.sudo })).changed;
}

/** `systemctl is-active` and `is-enabled` of the unit, in one command (read-only). */
async function unitRunning(at: Remote): Promise<boolean> {
  const r = await at.host.exec(
    ['sh', '-c', `systemctl is-active --quiet ${CRL_REFRESH_UNIT} && systemctl is-enabled --quiet ${CRL_REFRESH_UNIT}`],
    { sudo: at.sudo, readOnly: true, allowFailure: true, timeoutMs: 30_000 },
  );
  return r.code === 0;
}

/**
 * Installs the refresh on one master (`crl-refresh`): the script, its config,
 * the unit; then `daemon-reload`, `enable` and `restart` when any of them
 * changed, or `enable --now` when the unit is not running and enabled.
 * Idempotent: done when the three files are as written and the unit runs.
 */
export function crlRefreshInstallStep(inv: Inventory, node: InventoryNode, o: CrlRefreshOptions = {}): Step {
  const p = crlRefreshPaths(inv.layout, o);
  return ensureStep(
    'crl-refresh',
    node.name,
    `keep the CRL current: ${CRL_REFRESH_UNIT} fetches it from ${inv.primaryCname} every ${crlRefreshInterval(inv)} s (verified, swapped atomically)`,
    async (h) => {
      const at: Remote = { host: h.host, sudo: node.sudo };
      let changed = await writeRootFile(at, p.script, crlRefreshScript(), 0o755);
      changed = (await writeRootFile(at, p.config, crlRefreshConfig(inv, node, o), 0o644)) || changed;
      changed = (await writeRootFile(at, p.unit, crlRefreshUnit(inv, o), 0o644)) || changed;
      if (!changed && (await unitRunning(at))) return;
      const argv = changed
        ? sequenceArgv([
            ['systemctl', 'daemon-reload'],
            ['systemctl', 'enable', CRL_REFRESH_UNIT],
            ['systemctl', 'restart', CRL_REFRESH_UNIT],
          ])
        : ['systemctl', 'enable', '--now', CRL_REFRESH_UNIT];
      await h.host.exec(argv, { sudo: node.sudo, timeoutMs: 120_000, changesFiles: [] });
    },
  );
}

/** What the refresh on a master did last (its status file), as `status` reports it. */
export interface CrlRefreshState {
  started?: string | undefined;
  lastCheck?: string | undefined;
  lastOk?: string | undefined;
  lastChange?: string | undefined;
  /** The number of the CRL in place after the last check (decimal). */
  crlNumber?: string | undefined;
  server?: string | undefined;
  lastError?: string | undefined;
}

const STATUS_KEYS: Record<string, keyof CrlRefreshState> = {
  STARTED: 'started',
  LAST_CHECK: 'lastCheck',
  LAST_OK: 'lastOk',
  LAST_CHANGE: 'lastChange',
  CRL_NUMBER: 'crlNumber',
  SERVER: 'server',
  LAST_ERROR: 'lastError',
};

/** The status file's KEY=VALUE lines; empty values are left out. */
export function parseCrlRefreshStatus(text: string): CrlRefreshState {
  const out: CrlRefreshState = {};
  for (const line of text.split('\n')) {
    const i = line.indexOf('=');
    const key = i > 0 ? STATUS_KEYS[line.slice(0, i)] : undefined;
    const value = line.slice(i + 1).trim();
    if (key && value) out[key] = value;
  }
  // the script writes the CRL number as OpenSSL prints it (hex); status shows numbers in decimal
  if (out.crlNumber !== undefined)
    out.crlNumber = /^[0-9A-Fa-f]+$/.test(out.crlNumber) ? BigInt(`0x${out.crlNumber}`).toString() : undefined;
  return out;
}

/** The refresh's status file on a master; undefined when the refresh never ran there (not installed). */
export async function readCrlRefreshState(
  at: Remote,
  layout: Layout,
  o: CrlRefreshOptions = {},
): Promise<CrlRefreshState | undefined> {
  const file = `${crlRefreshPaths(layout, o).stateDir}/${CRL_REFRESH_STATUS_FILE}`;
  if (!(await at.host.exists(file, { sudo: at.sudo }))) return undefined;
  return parseCrlRefreshStatus((await at.host.readFile(file, { sudo: at.sudo })).toString('utf8'));
}
