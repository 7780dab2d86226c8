import { LayoutError } from './errors.js';

/**
 * Where every file a flow touches lives, who owns it, its mode, which editor
 * reads it, plus service names, users and the commands (argv templates) of
 * each flavour. Flows ask the layout; they never hard-code a path. Sites
 * differ, so an inventory can override any field: `resolveLayout('pe3', {
 * files: { sitePp: { path: '/etc/puppetlabs/code/site.pp' } } })`.
 *
 * pe3 paths are those of the public pe_secondary (trlinkin) and pe_server
 * modules (see README.md for the mapping); debian paths are those the Debian
 * 12 packages install (`dpkg -L puppetserver` etc.).
 */

export type EditKind =
  | 'ini'
  | 'yaml'
  | 'lines'
  | 'apache'
  | 'hocon'
  | 'services'
  | 'postgresql-conf'
  | 'pg-hba'
  | 'kv'
  | 'shell-vars'
  | 'site-pp'
  | 'activemq'
  | 'hosts'
  | 'pem'
  | 'text';

export interface FileSpec {
  path: string;
  owner: string;
  group: string;
  mode: number;
  /** The editor for this file (`pem`/`text`: no editor, written whole). */
  kind: EditKind;
}

export const FILE_KEYS = [
  'puppetConf',
  'autosignConf',
  'sitePp',
  'routesYaml',
  'puppetdbTerminusConf',
  'caCert',
  'caKey',
  'caCrl',
  'hostCrl',
  'agentCaCert',
  'webServerConf',
  'caConf',
  'authConf',
  'caCfg',
  'bootstrapCfg',
  'puppetserverDefaults',
  'puppetdbDatabaseIni',
  'puppetdbJettyIni',
  'puppetdbConfigIni',
  'puppetdbAllowlist',
  'puppetdbDefaults',
  'postgresqlConf',
  'pgHbaConf',
  'mcollectiveServerCfg',
  'mcollectiveClientCfg',
  'mcollectiveCredentials',
  'activemqXml',
  'consoleSettingsYml',
  'consoleDatabaseYml',
  'consoleAuthDatabaseYml',
  'consoleConf',
  'consoleVhostConf',
  'eventInspectorConfig',
  'hosts',
] as const;
export type FileKey = (typeof FILE_KEYS)[number];

export const COMMAND_KEYS = [
  'caSign',
  'caList',
  'caRevoke',
  'caClean',
  'caGenerate',
  'caSetup',
  'agentTest',
  'sslBootstrap',
  'puppetdbSslSetup',
  'serviceStart',
  'serviceStop',
  'serviceRestart',
  'serviceReload',
  'serviceStatus',
  'tcpListening',
  'postgresPromote',
  'consoleCreateKeyPair',
  'consoleCertRequest',
  'consoleCertRetrieve',
] as const;
export type CommandKey = (typeof COMMAND_KEYS)[number];

/** Placeholders a command template may use, and how each value is checked. */
export const COMMAND_VARS = ['certname', 'dnsAltNames', 'service', 'port'] as const;
export type CommandVar = (typeof COMMAND_VARS)[number];

export interface Layout {
  name: string;
  flavour: 'pe3' | 'debian';
  dirs: {
    confdir: string;
    ssldir: string;
    cadir: string;
    certsDir: string;
    privateKeysDir: string;
    publicKeysDir: string;
    signedDir: string;
    puppetserverConfd?: string;
    servicesd?: string;
    puppetdbConfdir: string;
    postgresqlDataDir: string;
    postgresqlConfdir: string;
    mcollectiveConfdir: string;
    consoleCertsDir?: string;
  };
  /** Files by role; a role a flavour lacks (e.g. the console in debian) is absent. */
  files: Partial<Record<FileKey, FileSpec>>;
  /** How a master that is not the CA is told so. */
  caDisable:
    | { kind: 'ini'; file: 'puppetConf'; section: string; key: string; value: string }
    | { kind: 'services'; file: 'caCfg' };
  /** The web server's CRL directive, and the CRL a non-CA master should point it at. */
  crl:
    | { file: 'webServerConf'; kind: 'apache'; directive: string; nonCaValue: string }
    | { file: 'webServerConf'; kind: 'hocon'; path: string[]; nonCaValue: string };
  /** PuppetDB's certificate allowlist: a fixed file (pe3) or a file named by a setting (debian). */
  puppetdbAllowlist:
    | { kind: 'file'; file: 'puppetdbAllowlist' }
    | { kind: 'setting'; file: 'puppetdbConfigIni'; section: string; key: string; list: 'puppetdbAllowlist' };
  mcollective: {
    /** Shared PKI entries (certname -> cert/private/public paths). */
    pki: Record<string, { cert: string; privateKey: string; publicKey: string }>;
    credentials?: string;
  };
  console?: { certName: string; cnPrefix: string };
  services: {
    puppetserver: string;
    puppetdb: string;
    agent: string;
    postgresql: string;
    activemq: string;
    mcollective: string;
    /** Extra services restarted with the master (pe3: memcached, console workers). */
    extra: string[];
  };
  users: {
    puppet: { user: string; group: string };
    puppetdb: { user: string; group: string };
    postgres: { user: string; group: string };
    activemq: { user: string; group: string };
    console?: { user: string; group: string };
  };
  postgresql: { version: string; cluster?: string; port: number };
  commands: Record<CommandKey, readonly string[]>;
}

const f = (path: string, owner: string, group: string, mode: number, kind: EditKind): FileSpec => ({
  path,
  owner,
  group,
  mode,
  kind,
});

function pki(ssldir: string, names: string[]): Layout['mcollective']['pki'] {
  return Object.fromEntries(
    names.map((n) => [
      n,
      {
        cert: `${ssldir}/certs/${n}.pem`,
        privateKey: `${ssldir}/private_keys/${n}.pem`,
        publicKey: `${ssldir}/public_keys/${n}.pem`,
      },
    ]),
  );
}

const PE_BIN = '/opt/puppet/bin';
const PE_SSL = '/etc/puppetlabs/puppet/ssl';
const PE_RAKE = [`${PE_BIN}/rake`, '-f', '/opt/puppet/share/puppet-dashboard/Rakefile', 'RAILS_ENV=production'];
const DASH = '/opt/puppet/share/puppet-dashboard/certs';

/** Puppet Enterprise 3.x (the original runbook; pe_secondary / pe_server). */
export const pe3: Layout = {
  name: 'pe3',
  flavour: 'pe3',
  dirs: {
    confdir: '/etc/puppetlabs/puppet',
    ssldir: PE_SSL,
    cadir: `${PE_SSL}/ca`,
    certsDir: `${PE_SSL}/certs`,
    privateKeysDir: `${PE_SSL}/private_keys`,
    publicKeysDir: `${PE_SSL}/public_keys`,
    signedDir: `${PE_SSL}/ca/signed`,
    puppetdbConfdir: '/etc/puppetlabs/puppetdb/conf.d',
    postgresqlDataDir: '/opt/puppet/var/lib/pgsql/9.2/data',
    postgresqlConfdir: '/opt/puppet/var/lib/pgsql/9.2/data',
    mcollectiveConfdir: '/etc/puppetlabs/mcollective',
    consoleCertsDir: DASH,
  },
  files: {
    puppetConf: f('/etc/puppetlabs/puppet/puppet.conf', 'root', 'root', 0o644, 'ini'),
    autosignConf: f('/etc/puppetlabs/puppet/autosign.conf', 'root', 'root', 0o644, 'lines'),
    sitePp: f('/etc/puppetlabs/puppet/manifests/site.pp', 'root', 'root', 0o644, 'site-pp'),
    routesYaml: f('/etc/puppetlabs/puppet/routes.yaml', 'root', 'root', 0o644, 'yaml'),
    puppetdbTerminusConf: f('/etc/puppetlabs/puppet/puppetdb.conf', 'root', 'root', 0o644, 'ini'),
    caCert: f(`${PE_SSL}/ca/ca_crt.pem`, 'pe-puppet', 'pe-puppet', 0o644, 'pem'),
    caKey: f(`${PE_SSL}/ca/ca_key.pem`, 'pe-puppet', 'pe-puppet', 0o640, 'pem'),
    caCrl: f(`${PE_SSL}/ca/ca_crl.pem`, 'pe-puppet', 'pe-puppet', 0o644, 'pem'),
    hostCrl: f(`${PE_SSL}/crl.pem`, 'pe-puppet', 'pe-puppet', 0o644, 'pem'),
    agentCaCert: f(`${PE_SSL}/certs/ca.pem`, 'pe-puppet', 'pe-puppet', 0o644, 'pem'),
    webServerConf: f('/etc/puppetlabs/httpd/conf.d/puppetmaster.conf', 'root', 'root', 0o644, 'apache'),
    puppetdbDatabaseIni: f('/etc/puppetlabs/puppetdb/conf.d/database.ini', 'pe-puppetdb', 'pe-puppetdb', 0o640, 'ini'),
    puppetdbJettyIni: f('/etc/puppetlabs/puppetdb/conf.d/jetty.ini', 'pe-puppetdb', 'pe-puppetdb', 0o640, 'ini'),
    puppetdbConfigIni: f('/etc/puppetlabs/puppetdb/conf.d/config.ini', 'pe-puppetdb', 'pe-puppetdb', 0o640, 'ini'),
    puppetdbAllowlist: f(
      '/etc/puppetlabs/puppetdb/certificate-whitelist',
      'pe-puppetdb',
      'pe-puppetdb',
      0o644,
      'lines',
    ),
    postgresqlConf: f(
      '/opt/puppet/var/lib/pgsql/9.2/data/postgresql.conf',
      'pe-postgres',
      'pe-postgres',
      0o600,
      'postgresql-conf',
    ),
    pgHbaConf: f('/opt/puppet/var/lib/pgsql/9.2/data/pg_hba.conf', 'pe-postgres', 'pe-postgres', 0o600, 'pg-hba'),
    mcollectiveServerCfg: f('/etc/puppetlabs/mcollective/server.cfg', 'root', 'root', 0o600, 'kv'),
    mcollectiveClientCfg: f('/var/lib/peadmin/.mcollective', 'peadmin', 'peadmin', 0o600, 'kv'),
    mcollectiveCredentials: f('/etc/puppetlabs/mcollective/credentials', 'root', 'root', 0o600, 'text'),
    activemqXml: f('/etc/puppetlabs/activemq/activemq.xml', 'root', 'pe-activemq', 0o640, 'activemq'),
    consoleSettingsYml: f(
      '/etc/puppetlabs/puppet-dashboard/settings.yml',
      'puppet-dashboard',
      'puppet-dashboard',
      0o640,
      'yaml',
    ),
    consoleDatabaseYml: f(
      '/etc/puppetlabs/puppet-dashboard/database.yml',
      'puppet-dashboard',
      'puppet-dashboard',
      0o640,
      'yaml',
    ),
    consoleAuthDatabaseYml: f(
      '/etc/puppetlabs/console-auth/database.yml',
      'puppet-dashboard',
      'puppet-dashboard',
      0o640,
      'yaml',
    ),
    consoleConf: f('/etc/puppetlabs/puppet/console.conf', 'root', 'root', 0o644, 'ini'),
    consoleVhostConf: f('/etc/puppetlabs/httpd/conf.d/puppetdashboard.conf', 'root', 'root', 0o644, 'apache'),
    eventInspectorConfig: f(
      '/opt/puppet/share/event-inspector/config/config.yml',
      'puppet-dashboard',
      'puppet-dashboard',
      0o640,
      'yaml',
    ),
    hosts: f('/etc/hosts', 'root', 'root', 0o644, 'hosts'),
  },
  caDisable: { kind: 'ini', file: 'puppetConf', section: 'master', key: 'ca', value: 'false' },
  crl: { file: 'webServerConf', kind: 'apache', directive: 'SSLCARevocationFile', nonCaValue: `${PE_SSL}/crl.pem` },
  puppetdbAllowlist: { kind: 'file', file: 'puppetdbAllowlist' },
  mcollective: {
    pki: pki(PE_SSL, [
      'pe-internal-broker',
      'pe-internal-mcollective-servers',
      'pe-internal-peadmin-mcollective-client',
      'pe-internal-puppet-console-mcollective-client',
    ]),
    credentials: '/etc/puppetlabs/mcollective/credentials',
  },
  console: { certName: 'pe-internal-dashboard', cnPrefix: 'pe-internal-dashboard' },
  services: {
    puppetserver: 'pe-httpd',
    puppetdb: 'pe-puppetdb',
    agent: 'pe-puppet',
    postgresql: 'pe-postgresql',
    activemq: 'pe-activemq',
    mcollective: 'pe-mcollective',
    extra: ['pe-memcached', 'pe-puppet-dashboard-workers'],
  },
  users: {
    puppet: { user: 'pe-puppet', group: 'pe-puppet' },
    puppetdb: { user: 'pe-puppetdb', group: 'pe-puppetdb' },
    postgres: { user: 'pe-postgres', group: 'pe-postgres' },
    activemq: { user: 'pe-activemq', group: 'pe-activemq' },
    console: { user: 'puppet-dashboard', group: 'puppet-dashboard' },
  },
  postgresql: { version: '9.2', port: 5432 },
  commands: {
    caSign: [`${PE_BIN}/puppet`, 'cert', 'sign', '--allow-dns-alt-names', '{certname}'],
    caList: [`${PE_BIN}/puppet`, 'cert', 'list', '--all'],
    caRevoke: [`${PE_BIN}/puppet`, 'cert', 'revoke', '{certname}'],
    caClean: [`${PE_BIN}/puppet`, 'cert', 'clean', '{certname}'],
    caGenerate: [`${PE_BIN}/puppet`, 'cert', 'generate', '{certname}', '--dns_alt_names={dnsAltNames}'],
    caSetup: [`${PE_BIN}/puppet`, 'cert', 'list', '--all'],
    agentTest: [`${PE_BIN}/puppet`, 'agent', '--test'],
    sslBootstrap: [`${PE_BIN}/puppet`, 'agent', '--test', '--waitforcert', '0'],
    puppetdbSslSetup: ['/opt/puppet/sbin/puppetdb', 'ssl-setup', '-f'],
    serviceStart: ['/sbin/service', '{service}', 'start'],
    serviceStop: ['/sbin/service', '{service}', 'stop'],
    serviceRestart: ['/sbin/service', '{service}', 'restart'],
    serviceReload: ['/sbin/service', '{service}', 'reload'],
    serviceStatus: ['/sbin/service', '{service}', 'status'],
    // a LISTEN row when something listens on the TCP port (iproute's ss, on EL 6 too)
    tcpListening: ['/usr/sbin/ss', '-l', '-t', '-n', 'sport', '=', ':{port}'],
    postgresPromote: ['/opt/puppet/bin/pg_ctl', 'promote', '-D', '/opt/puppet/var/lib/pgsql/9.2/data'],
    consoleCreateKeyPair: [...PE_RAKE, 'cert:create_key_pair'],
    consoleCertRequest: [...PE_RAKE, 'cert:request'],
    consoleCertRetrieve: [...PE_RAKE, 'cert:retrieve'],
  },
};

const DEB_SSL = '/var/lib/puppet/ssl';
const DEB_CA = '/etc/puppet/puppetserver/ca';
const PS = '/etc/puppet/puppetserver';

/** Open-source Puppet from the Debian 12 packages (puppetserver 7, puppetdb 7, PostgreSQL 15, activemq, mcollective). */
export const debian: Layout = {
  name: 'debian',
  flavour: 'debian',
  dirs: {
    confdir: '/etc/puppet',
    ssldir: DEB_SSL,
    cadir: DEB_CA,
    certsDir: `${DEB_SSL}/certs`,
    privateKeysDir: `${DEB_SSL}/private_keys`,
    publicKeysDir: `${DEB_SSL}/public_keys`,
    signedDir: `${DEB_CA}/signed`,
    puppetserverConfd: `${PS}/conf.d`,
    servicesd: `${PS}/services.d`,
    puppetdbConfdir: '/etc/puppetdb/conf.d',
    postgresqlDataDir: '/var/lib/postgresql/15/main',
    postgresqlConfdir: '/etc/postgresql/15/main',
    mcollectiveConfdir: '/etc/mcollective',
  },
  files: {
    puppetConf: f('/etc/puppet/puppet.conf', 'root', 'root', 0o644, 'ini'),
    autosignConf: f('/etc/puppet/autosign.conf', 'root', 'root', 0o644, 'lines'),
    sitePp: f('/etc/puppet/code/environments/production/manifests/site.pp', 'root', 'root', 0o644, 'site-pp'),
    routesYaml: f('/etc/puppet/routes.yaml', 'root', 'root', 0o644, 'yaml'),
    puppetdbTerminusConf: f('/etc/puppet/puppetdb.conf', 'root', 'root', 0o644, 'ini'),
    caCert: f(`${DEB_CA}/ca_crt.pem`, 'puppet', 'puppet', 0o644, 'pem'),
    caKey: f(`${DEB_CA}/ca_key.pem`, 'puppet', 'puppet', 0o640, 'pem'),
    caCrl: f(`${DEB_CA}/ca_crl.pem`, 'puppet', 'puppet', 0o644, 'pem'),
    hostCrl: f(`${DEB_SSL}/crl.pem`, 'puppet', 'puppet', 0o644, 'pem'),
    agentCaCert: f(`${DEB_SSL}/certs/ca.pem`, 'puppet', 'puppet', 0o644, 'pem'),
    webServerConf: f(`${PS}/conf.d/webserver.conf`, 'root', 'root', 0o644, 'hocon'),
    caConf: f(`${PS}/conf.d/ca.conf`, 'root', 'root', 0o644, 'hocon'),
    authConf: f(`${PS}/conf.d/auth.conf`, 'root', 'root', 0o644, 'hocon'),
    caCfg: f(`${PS}/services.d/ca.cfg`, 'root', 'root', 0o644, 'services'),
    bootstrapCfg: f(`${PS}/services.d/bootstrap.cfg`, 'root', 'root', 0o644, 'services'),
    puppetserverDefaults: f('/etc/default/puppetserver', 'root', 'root', 0o644, 'shell-vars'),
    puppetdbDatabaseIni: f('/etc/puppetdb/conf.d/database.ini', 'root', 'puppetdb', 0o640, 'ini'),
    puppetdbJettyIni: f('/etc/puppetdb/conf.d/jetty.ini', 'root', 'root', 0o644, 'ini'),
    puppetdbConfigIni: f('/etc/puppetdb/conf.d/config.ini', 'root', 'root', 0o644, 'ini'),
    puppetdbAllowlist: f('/etc/puppetdb/certificate-allowlist', 'root', 'puppetdb', 0o640, 'lines'),
    puppetdbDefaults: f('/etc/default/puppetdb', 'root', 'root', 0o644, 'shell-vars'),
    postgresqlConf: f('/etc/postgresql/15/main/postgresql.conf', 'postgres', 'postgres', 0o644, 'postgresql-conf'),
    pgHbaConf: f('/etc/postgresql/15/main/pg_hba.conf', 'postgres', 'postgres', 0o640, 'pg-hba'),
    mcollectiveServerCfg: f('/etc/mcollective/server.cfg', 'root', 'root', 0o600, 'kv'),
    mcollectiveClientCfg: f('/etc/mcollective/client.cfg', 'root', 'root', 0o600, 'kv'),
    activemqXml: f('/etc/activemq/instances-available/main/activemq.xml', 'root', 'root', 0o644, 'activemq'),
    hosts: f('/etc/hosts', 'root', 'root', 0o644, 'hosts'),
  },
  caDisable: { kind: 'services', file: 'caCfg' },
  crl: { file: 'webServerConf', kind: 'hocon', path: ['webserver', 'ssl-crl-path'], nonCaValue: `${DEB_SSL}/crl.pem` },
  puppetdbAllowlist: {
    kind: 'setting',
    file: 'puppetdbConfigIni',
    section: 'puppetdb',
    key: 'certificate-allowlist',
    list: 'puppetdbAllowlist',
  },
  mcollective: {
    // Debian's mcollective ships with the psk provider: no PKI until the ssl provider is configured
    pki: {},
  },
  services: {
    puppetserver: 'puppetserver',
    puppetdb: 'puppetdb',
    agent: 'puppet',
    postgresql: 'postgresql',
    activemq: 'activemq',
    mcollective: 'mcollective',
    extra: [],
  },
  users: {
    puppet: { user: 'puppet', group: 'puppet' },
    puppetdb: { user: 'puppetdb', group: 'puppetdb' },
    postgres: { user: 'postgres', group: 'postgres' },
    activemq: { user: 'activemq', group: 'activemq' },
  },
  postgresql: { version: '15', cluster: 'main', port: 5432 },
  commands: {
    caSign: ['puppetserver', 'ca', 'sign', '--certname', '{certname}'],
    caList: ['puppetserver', 'ca', 'list', '--all'],
    caRevoke: ['puppetserver', 'ca', 'revoke', '--certname', '{certname}'],
    caClean: ['puppetserver', 'ca', 'clean', '--certname', '{certname}'],
    caGenerate: ['puppetserver', 'ca', 'generate', '--certname', '{certname}', '--subject-alt-names', '{dnsAltNames}'],
    caSetup: ['puppetserver', 'ca', 'setup'],
    agentTest: ['puppet', 'agent', '--test'],
    sslBootstrap: ['puppet', 'ssl', 'bootstrap', '--waitforcert', '0', '--http_keepalive_timeout', '0'],
    puppetdbSslSetup: ['puppetdb', 'ssl-setup', '-f'],
    serviceStart: ['systemctl', 'start', '{service}'],
    serviceStop: ['systemctl', 'stop', '{service}'],
    serviceRestart: ['systemctl', 'restart', '{service}'],
    serviceReload: ['systemctl', 'reload', '{service}'],
    serviceStatus: ['systemctl', 'is-active', '{service}'],
    // a LISTEN row when something listens on the TCP port
    tcpListening: ['ss', '-l', '-t', '-n', 'sport', '=', ':{port}'],
    postgresPromote: ['pg_ctlcluster', '15', 'main', 'promote'],
    consoleCreateKeyPair: [],
    consoleCertRequest: [],
    consoleCertRetrieve: [],
  },
};

export const layouts: Readonly<Record<'pe3' | 'debian', Layout>> = { pe3, debian };

export type DeepPartial<T> = T extends readonly (infer _U)[]
  ? T
  : T extends object
    ? { [K in keyof T]?: DeepPartial<T[K]> }
    : T;

function isObj(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Deep merge: objects merge key by key, arrays and scalars replace. Inputs are not modified. */
export function deepMerge<T>(base: T, over: unknown, where = ''): T {
  if (over === undefined) return structuredClone(base);
  if (!isObj(base) || !isObj(over)) return structuredClone(over) as T;
  const out: Record<string, unknown> = structuredClone(base);
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    out[k] = k in out ? deepMerge(out[k], v, `${where}${where ? '.' : ''}${k}`) : structuredClone(v);
  }
  return out as T;
}

/** A named layout (or a given one) with inventory overrides deep-merged in, then validated. */
export function resolveLayout(
  base: 'pe3' | 'debian' | Layout,
  overrides?: DeepPartial<Layout> | Record<string, unknown>,
): Layout {
  const start = typeof base === 'string' ? layouts[base] : base;
  if (!start) throw new LayoutError('name', `unknown layout "${String(base)}" (known: pe3, debian).`);
  if (overrides !== undefined) checkKnownKeys(start, overrides, '');
  const merged = deepMerge(start, overrides);
  validateLayout(merged);
  return merged;
}

// Overrides may only name fields the layout has (a typo must not pass silently),
// except inside open maps (files, pki, commands, dirs) where new entries are allowed
// if they are well-formed.
const OPEN = new Set(['files', 'mcollective.pki', 'users', 'dirs']);
function checkKnownKeys(base: unknown, over: unknown, where: string): void {
  if (!isObj(over)) return;
  if (!isObj(base)) {
    if (base !== undefined) throw new LayoutError(where, 'is not an object in the layout.');
    return;
  }
  for (const k of Object.keys(over)) {
    const path = where ? `${where}.${k}` : k;
    if (!(k in base) && !OPEN.has(where)) throw new LayoutError(path, 'is not a layout field.');
    checkKnownKeys(base[k], over[k], path);
  }
}

const USER = /^[a-z_][a-z0-9_-]*\$?$/;
const SERVICE = /^[A-Za-z0-9@._-]+$/;

function checkPath(field: string, p: unknown): void {
  if (
    typeof p !== 'string' ||
    !p.startsWith('/') ||
    /[\0\r\n]/.test(p) ||
    p.split('/').includes('..') ||
    (p.length > 1 && p.endsWith('/'))
  ) {
    throw new LayoutError(field, `"${String(p)}" is not an absolute, normalised path.`);
  }
}

export function validateLayout(l: Layout): void {
  if (typeof l.name !== 'string' || l.name === '') throw new LayoutError('name', 'must be a non-empty string.');
  if (l.flavour !== 'pe3' && l.flavour !== 'debian') throw new LayoutError('flavour', 'must be pe3 or debian.');
  for (const [k, v] of Object.entries(l.dirs)) if (v !== undefined) checkPath(`dirs.${k}`, v);
  for (const [k, spec] of Object.entries(l.files)) {
    if (!spec) continue;
    checkPath(`files.${k}.path`, spec.path);
    if (!USER.test(spec.owner)) throw new LayoutError(`files.${k}.owner`, `"${spec.owner}" is not a user name.`);
    if (!USER.test(spec.group)) throw new LayoutError(`files.${k}.group`, `"${spec.group}" is not a group name.`);
    if (!Number.isInteger(spec.mode) || spec.mode < 0 || spec.mode > 0o7777)
      throw new LayoutError(`files.${k}.mode`, 'must be a permission number such as 0o640.');
    if (spec.mode & 0o002) throw new LayoutError(`files.${k}.mode`, 'must not be world-writable.');
  }
  const need = (field: string, key: string): void => {
    if (!l.files[key as FileKey]) throw new LayoutError(field, `names files.${key}, which the layout lacks.`);
  };
  need('caDisable.file', l.caDisable.file);
  need('crl.file', l.crl.file);
  need('puppetdbAllowlist.file', l.puppetdbAllowlist.file);
  for (const [n, e] of Object.entries(l.mcollective.pki))
    for (const [k, p] of Object.entries(e)) checkPath(`mcollective.pki.${n}.${k}`, p);
  if (l.mcollective.credentials !== undefined) checkPath('mcollective.credentials', l.mcollective.credentials);
  for (const [k, v] of Object.entries(l.services)) {
    const names = Array.isArray(v) ? v : [v];
    for (const s of names)
      if (typeof s !== 'string' || !SERVICE.test(s))
        throw new LayoutError(`services.${k}`, `"${String(s)}" is not a service name.`);
  }
  for (const [k, u] of Object.entries(l.users)) {
    if (u && (!USER.test(u.user) || !USER.test(u.group)))
      throw new LayoutError(`users.${k}`, 'user and group must be plain names.');
  }
  for (const key of COMMAND_KEYS) {
    const argv = l.commands[key];
    if (!Array.isArray(argv) || argv.some((a) => typeof a !== 'string' || /[\0\r\n]/.test(a)))
      throw new LayoutError(`commands.${key}`, 'must be an argv array of strings.');
    for (const a of argv) {
      for (const m of a.matchAll(/\{([^}]*)\}/g)) {
        if (!(COMMAND_VARS as readonly string[]).includes(m[1]!))
          throw new LayoutError(
            `commands.${key}`,
            `unknown placeholder {${m[1]}} (known: ${COMMAND_VARS.join(', ')}).`,
          );
      }
    }
  }
}

const VAR_CHECK: Record<CommandVar, RegExp> = {
  certname: /^[A-Za-z0-9][A-Za-z0-9._-]*$/,
  dnsAltNames: /^[A-Za-z0-9*][A-Za-z0-9.*:_-]*(,[A-Za-z0-9*][A-Za-z0-9.*:_-]*)*$/,
  service: /^[A-Za-z0-9@][A-Za-z0-9@._-]*$/,
  port: /^[1-9][0-9]{0,4}$/,
};

/**
 * The argv of a layout command with placeholders filled in. Values are
 * checked (a certname cannot start with '-' and so cannot pass as an option);
 * no shell is ever involved.
 */
export function buildCommand(
  layout: Layout,
  key: CommandKey,
  vars: Partial<Record<CommandVar, string>> = {},
): string[] {
  const argv = layout.commands[key];
  if (!argv || argv.length === 0)
    throw new LayoutError(`commands.${key}`, `the ${layout.name} layout has no such command.`);
  for (const [k, v] of Object.entries(vars)) {
    const check = VAR_CHECK[k as CommandVar];
    if (!check) throw new LayoutError(`commands.${key}`, `unknown placeholder ${k}.`);
    if (v !== undefined && !check.test(v)) throw new LayoutError(`commands.${key}`, `invalid ${k} "${v}".`);
  }
  return argv.map((a) =>
    a.replace(/\{([^}]*)\}/g, (_m, name: string) => {
      const v = vars[name as CommandVar];
      if (v === undefined) throw new LayoutError(`commands.${key}`, `needs a value for {${name}}.`);
      return v;
    }),
  );
}

/** The file spec for a role, or a LayoutError naming the role when the layout lacks it. */
export function fileOf(layout: Layout, key: FileKey): FileSpec {
  const spec = layout.files[key];
  if (!spec) throw new LayoutError(`files.${key}`, `the ${layout.name} layout has no ${key} file.`);
  return spec;
}
