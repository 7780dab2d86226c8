import { accessSync, constants } from 'node:fs';
import type { ProfileName } from './config.js';
import { LabError } from './errors.js';

interface Need {
  path: string;
  pkg: string;
}

const BASE: Need[] = [
  { path: '/usr/sbin/ip', pkg: 'iproute2' },
  { path: '/usr/bin/unshare', pkg: 'util-linux' },
  { path: '/usr/bin/nsenter', pkg: 'util-linux' },
  { path: '/usr/sbin/sshd', pkg: 'openssh-server' },
  { path: '/usr/bin/ssh', pkg: 'openssh-client' },
  { path: '/usr/bin/ssh-keygen', pkg: 'openssh-client' },
  { path: '/usr/sbin/haproxy', pkg: 'haproxy' },
  { path: '/usr/bin/openssl', pkg: 'openssl' },
];
const PUPPET: Need[] = [
  { path: '/usr/share/puppetserver/puppetserver.jar', pkg: 'puppetserver' },
  { path: '/usr/share/puppetdb/puppetdb.jar', pkg: 'puppetdb' },
  { path: '/usr/bin/puppet', pkg: 'puppet-agent' },
  { path: '/usr/lib/ruby/vendor_ruby/puppet/indirector/catalog/puppetdb.rb', pkg: 'puppet-terminus-puppetdb' },
  { path: '/usr/bin/pg_ctlcluster', pkg: 'postgresql' },
  { path: '/usr/bin/pg_createcluster', pkg: 'postgresql' },
];
const MCO: Need[] = [
  { path: '/usr/share/activemq/bin/activemq.jar', pkg: 'activemq' },
  { path: '/usr/sbin/mcollectived', pkg: 'mcollective' },
];

/** The Debian packages a profile needs that this machine lacks. */
export function missingPackages(profile: ProfileName, opts: { withMcollective?: boolean } = {}): string[] {
  const needs = [...BASE];
  if (profile === 'debian') needs.push(...PUPPET);
  if (profile === 'pe3') needs.push({ path: '/usr/bin/pg_ctlcluster', pkg: 'postgresql' });
  if (opts.withMcollective) needs.push(...MCO);
  const missing = new Set<string>();
  for (const n of needs) {
    try {
      accessSync(n.path, /^\/usr\/s?bin\//.test(n.path) ? constants.X_OK : constants.R_OK);
    } catch {
      missing.add(n.pkg);
    }
  }
  return [...missing];
}

/** Throws a clear error unless the process is root and every package the profile needs is installed. */
export async function checkPrerequisites(
  profile: ProfileName,
  opts: { withMcollective?: boolean } = {},
): Promise<void> {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new LabError(
      'E_LAB_NOT_ROOT',
      'the lab must run as root (it creates network namespaces, routes and mounts).',
      {
        hint: 'Run it with sudo, e.g. `sudo npm run lab -- up --profile light`.',
      },
    );
  }
  const missing = missingPackages(profile, opts);
  if (missing.length) {
    throw new LabError(
      'E_LAB_MISSING_PACKAGES',
      `the ${profile} profile needs Debian packages that are not installed: ${missing.join(', ')}.`,
      {
        hint: `Install them with: apt-get install -y ${missing.join(' ')}`,
      },
    );
  }
}
