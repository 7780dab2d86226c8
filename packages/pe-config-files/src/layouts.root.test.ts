import { describe, expect, it } from 'vitest';
import { statSync, existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { debian, type FileKey } from './layouts.js';

// The debian layout against the files the Debian packages installed on this machine.
const installed = (pkg: string): boolean => {
  try {
    return execFileSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' }).includes(
      'install ok installed',
    );
  } catch {
    return false;
  }
};

const name = (id: number, db: 'passwd' | 'group'): string =>
  execFileSync('getent', [db, String(id)], { encoding: 'utf8' }).split(':')[0]!;

const shipped: [FileKey, string][] = [
  ['puppetConf', 'puppet-agent'],
  ['webServerConf', 'puppetserver'],
  ['caConf', 'puppetserver'],
  ['authConf', 'puppetserver'],
  ['caCfg', 'puppetserver'],
  ['bootstrapCfg', 'puppetserver'],
  ['puppetserverDefaults', 'puppetserver'],
  ['puppetdbDatabaseIni', 'puppetdb'],
  ['puppetdbJettyIni', 'puppetdb'],
  ['puppetdbConfigIni', 'puppetdb'],
  ['puppetdbDefaults', 'puppetdb'],
  ['postgresqlConf', 'postgresql-15'],
  ['pgHbaConf', 'postgresql-15'],
  ['mcollectiveServerCfg', 'mcollective'],
  ['mcollectiveClientCfg', 'mcollective'],
  ['activemqXml', 'activemq'],
];

describe('debian layout matches the installed packages', () => {
  it.each(shipped)('%s exists with the declared owner, group and mode (%s)', (key, pkg) => {
    const spec = debian.files[key]!;
    if (!installed(pkg) && !(pkg === 'puppet-agent' && installed('puppet'))) return;
    expect(existsSync(spec.path), spec.path).toBe(true);
    const st = statSync(spec.path);
    expect(name(st.uid, 'passwd')).toBe(spec.owner);
    expect(name(st.gid, 'group')).toBe(spec.group);
    expect(st.mode & 0o7777).toBe(spec.mode);
  });

  it('the service users exist', () => {
    for (const u of Object.values(debian.users)) {
      if (!u) continue;
      expect(() => execFileSync('getent', ['passwd', u.user])).not.toThrow();
    }
  });
});
