import { fileOf, type Layout, type FileKey } from '@pe-stack/pe-config-files';
import { UsageError } from '../errors.js';
import type { MemoryHost } from './host.js';

export interface SeedOptions {
  /** The password in PuppetDB's database settings (which name the master's own database, as before a join). */
  databasePassword: string;
  /** plugin.psk and the STOMP password of MCollective (default: fixed example values). */
  mcollective?: { psk: string; password: string };
}

/** Debian 12's packaged files, trimmed to what the flows read: the settings a fresh install has. */
function debianFiles(o: SeedOptions): Partial<Record<FileKey, string>> {
  const mco = o.mcollective ?? { psk: 'memory-mco-psk-0123', password: 'memory-stomp-password' };
  const mcoCfg = [
    'main_collective = mcollective',
    'collectives = mcollective',
    'securityprovider = psk',
    `plugin.psk = ${mco.psk}`,
    'connector = activemq',
    'plugin.activemq.pool.size = 1',
    'plugin.activemq.pool.1.host = stomp1',
    'plugin.activemq.pool.1.port = 61613',
    'plugin.activemq.pool.1.user = mcollective',
    `plugin.activemq.pool.1.password = ${mco.password}`,
    '',
  ].join('\n');
  return {
    puppetConf: '[main]\nssldir = /var/lib/puppet/ssl\n\n[server]\nvardir = /var/lib/puppetserver\n',
    caConf: 'certificate-authority: {\n}\n',
    webServerConf:
      'webserver: {\n    access-log-config: /etc/puppet/puppetserver/request-logging.xml\n    client-auth: want\n    ssl-host: 0.0.0.0\n    ssl-port: 8140\n}\n',
    caCfg:
      'puppetlabs.services.ca.certificate-authority-service/certificate-authority-service\npuppetlabs.trapperkeeper.services.watcher.filesystem-watch-service/filesystem-watch-service\n',
    puppetdbDatabaseIni: `[database]\nsubname = //localhost/puppetdb\nusername = puppetdb\npassword = ${o.databasePassword}\n`,
    puppetdbConfigIni:
      '[global]\nvardir = /var/lib/puppetdb\nlogging-config = /etc/puppetdb/logback.xml\n\n[command-processing]\n',
    puppetdbJettyIni: '[jetty]\nport = 8080\n',
    postgresqlConf:
      "data_directory = '/var/lib/postgresql/15/main'\nhba_file = '/etc/postgresql/15/main/pg_hba.conf'\nport = 5432\nmax_connections = 100\nunix_socket_directories = '/var/run/postgresql'\n",
    pgHbaConf:
      'local   all             postgres                                peer\nlocal   all             all                                     peer\nhost    all             all             127.0.0.1/32            scram-sha-256\n',
    mcollectiveServerCfg: mcoCfg,
    mcollectiveClientCfg: mcoCfg,
    activemqXml: [
      '<beans xmlns="http://www.springframework.org/schema/beans">',
      '    <broker xmlns="http://activemq.apache.org/schema/core" useJmx="false" brokerName="localhost" dataDirectory="${activemq.base}/data">',
      '        <transportConnectors>',
      '            <transportConnector name="openwire" uri="tcp://127.0.0.1:61616"/>',
      '        </transportConnectors>',
      '    </broker>',
      '</beans>',
      '',
    ].join('\n'),
    hosts: '127.0.0.1\tlocalhost\n',
  };
}

/**
 * A freshly installed master of the `debian` layout on a memory host: the
 * configuration files the flows read (Debian 12's packaged settings, trimmed),
 * at the layout's paths (overrides included) with its owners, groups and modes.
 */
export function seedMaster(host: MemoryHost, layout: Layout, opts: SeedOptions): MemoryHost {
  if (layout.flavour !== 'debian')
    throw new UsageError(`memory masters are seeded for the debian layout only, not ${layout.flavour}.`);
  const files = debianFiles(opts);
  for (const [name, content] of Object.entries(files) as [FileKey, string][]) {
    const f = layout.files[name] ? fileOf(layout, name) : undefined;
    if (!f) continue;
    host.setFile(f.path, { content, mode: f.mode, owner: f.owner, group: f.group });
  }
  return host;
}
