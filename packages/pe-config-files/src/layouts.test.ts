import { describe, expect, it } from 'vitest';
import { pe3, debian, resolveLayout, buildCommand, fileOf, deepMerge, FILE_KEYS, COMMAND_KEYS } from './layouts.js';
import { LayoutError } from './errors.js';

describe('layouts', () => {
  it('pe3 follows pe_secondary / pe_server', () => {
    expect(pe3.files.puppetConf?.path).toBe('/etc/puppetlabs/puppet/puppet.conf');
    expect(pe3.files.webServerConf?.path).toBe('/etc/puppetlabs/httpd/conf.d/puppetmaster.conf');
    expect(pe3.crl).toMatchObject({
      kind: 'apache',
      directive: 'SSLCARevocationFile',
      nonCaValue: '/etc/puppetlabs/puppet/ssl/crl.pem',
    });
    expect(pe3.files.sitePp?.path).toBe('/etc/puppetlabs/puppet/manifests/site.pp');
    expect(pe3.files.puppetdbAllowlist?.path).toBe('/etc/puppetlabs/puppetdb/certificate-whitelist');
    expect(pe3.files.consoleSettingsYml?.path).toBe('/etc/puppetlabs/puppet-dashboard/settings.yml');
    expect(pe3.files.consoleAuthDatabaseYml?.path).toBe('/etc/puppetlabs/console-auth/database.yml');
    expect(pe3.files.consoleConf?.path).toBe('/etc/puppetlabs/puppet/console.conf');
    expect(pe3.files.eventInspectorConfig?.path).toBe('/opt/puppet/share/event-inspector/config/config.yml');
    expect(pe3.mcollective.credentials).toBe('/etc/puppetlabs/mcollective/credentials');
    expect(Object.keys(pe3.mcollective.pki)).toContain('pe-internal-peadmin-mcollective-client');
    expect(pe3.mcollective.pki['pe-internal-broker']?.privateKey).toBe(
      '/etc/puppetlabs/puppet/ssl/private_keys/pe-internal-broker.pem',
    );
    expect(pe3.caDisable).toEqual({ kind: 'ini', file: 'puppetConf', section: 'master', key: 'ca', value: 'false' });
    expect(pe3.services.puppetserver).toBe('pe-httpd');
  });

  it('debian follows the installed packages and the lab notes', () => {
    expect(debian.dirs.ssldir).toBe('/var/lib/puppet/ssl');
    expect(debian.dirs.cadir).toBe('/etc/puppet/puppetserver/ca');
    expect(debian.crl).toMatchObject({ kind: 'hocon', path: ['webserver', 'ssl-crl-path'] });
    expect(debian.caDisable).toEqual({ kind: 'services', file: 'caCfg' });
    expect(debian.puppetdbAllowlist).toMatchObject({
      kind: 'setting',
      section: 'puppetdb',
      key: 'certificate-allowlist',
    });
    expect(debian.console).toBeUndefined();
    expect(debian.files.consoleDatabaseYml).toBeUndefined();
  });

  it('both layouts are valid and cover every command', () => {
    for (const l of [pe3, debian]) {
      expect(resolveLayout(l)).toEqual(l);
      for (const k of COMMAND_KEYS) expect(Array.isArray(l.commands[k])).toBe(true);
    }
    expect(FILE_KEYS.filter((k) => !pe3.files[k])).toEqual([
      'caConf',
      'authConf',
      'caCfg',
      'bootstrapCfg',
      'puppetserverDefaults',
      'puppetdbDefaults',
    ]);
  });

  it('builds CA commands as argv, refusing values that could pass as options', () => {
    expect(buildCommand(pe3, 'caSign', { certname: 'master2.example.com' })).toEqual([
      '/opt/puppet/bin/puppet',
      'cert',
      'sign',
      '--allow-dns-alt-names',
      'master2.example.com',
    ]);
    expect(buildCommand(debian, 'caSign', { certname: 'secondary1' })).toEqual([
      'puppetserver',
      'ca',
      'sign',
      '--certname',
      'secondary1',
    ]);
    expect(buildCommand(debian, 'serviceRestart', { service: debian.services.puppetdb })).toEqual([
      'systemctl',
      'restart',
      'puppetdb',
    ]);
    expect(buildCommand(pe3, 'caGenerate', { certname: 'm2', dnsAltNames: 'puppet,puppet.example.com' })).toContain(
      '--dns_alt_names=puppet,puppet.example.com',
    );
    expect(() => buildCommand(debian, 'caSign', { certname: '--all' })).toThrow(LayoutError);
    expect(() => buildCommand(debian, 'caSign', { certname: 'a b' })).toThrow(/invalid certname/);
    expect(() => buildCommand(debian, 'caSign')).toThrow(/needs a value for \{certname\}/);
    expect(() => buildCommand(debian, 'consoleCertRequest')).toThrow(/has no such command/);
  });

  it('inventory overrides deep-merge without touching the base layout', () => {
    const l = resolveLayout('pe3', {
      files: { sitePp: { path: '/etc/puppetlabs/puppet/environments/production/manifests/site.pp' } },
      services: { extra: ['pe-memcached'] },
      postgresql: { port: 5433 },
    });
    expect(l.files.sitePp).toMatchObject({
      path: '/etc/puppetlabs/puppet/environments/production/manifests/site.pp',
      owner: 'root',
      mode: 0o644,
      kind: 'site-pp',
    });
    expect(l.services.extra).toEqual(['pe-memcached']);
    expect(l.postgresql.port).toBe(5433);
    expect(pe3.files.sitePp?.path).toBe('/etc/puppetlabs/puppet/manifests/site.pp');
    expect(pe3.services.extra).toHaveLength(2);
    expect(deepMerge({ a: { b: 1, c: [1, 2] } }, { a: { c: [3] } })).toEqual({ a: { b: 1, c: [3] } });
  });

  it('rejects invalid overrides with the field named', () => {
    const bad = (o: Record<string, unknown>, re: RegExp): void => {
      expect(() => resolveLayout('debian', o)).toThrow(re);
    };
    bad({ files: { puppetConf: { path: 'etc/puppet.conf' } } }, /files\.puppetConf\.path/);
    bad({ files: { puppetConf: { path: '/etc/../shadow' } } }, /not an absolute, normalised path/);
    bad({ files: { puppetConf: { mode: 0o666 } } }, /world-writable/);
    bad({ files: { puppetConf: { owner: 'root; rm -rf /' } } }, /not a user name/);
    bad({ servcies: { puppetdb: 'x' } }, /servcies: is not a layout field/);
    bad({ services: { puppetdb: 'pupp etdb' } }, /not a service name/);
    bad({ commands: { caSign: ['puppetserver', 'ca', 'sign', '{cert}'] } }, /unknown placeholder \{cert\}/);
    expect(() => resolveLayout('nope' as 'pe3')).toThrow(/unknown layout/);
    try {
      resolveLayout('debian', { dirs: { ssldir: 'relative' } });
    } catch (e) {
      expect(e).toBeInstanceOf(LayoutError);
      expect((e as LayoutError).code).toBe('E_LAYOUT_INVALID');
      expect((e as LayoutError).field).toBe('dirs.ssldir');
    }
  });

  it('fileOf names the missing role', () => {
    expect(fileOf(debian, 'caCfg').path).toBe('/etc/puppet/puppetserver/services.d/ca.cfg');
    expect(() => fileOf(debian, 'consoleConf')).toThrow(/debian layout has no consoleConf file/);
  });
});
