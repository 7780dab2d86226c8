import type { ProfileName } from './config.js';
import type { LabHandle, LabState } from './types.js';
import { setupDebian } from './debian.js';
import { setupPe3 } from './pe3.js';

export interface ProfileSpec {
  name: ProfileName;
  /** Directories each host gets a private copy of (bind-mounted by its init). */
  paths: readonly string[];
  /** Bump when the template's content changes, to rebuild cached templates. */
  templateVersion: number;
  defaultHosts: readonly string[];
  defaultAgents: number;
  /** The load balancer health-checks masters by a TLS handshake verified against the primary's CA. */
  lbVerifiesCa: boolean;
  /** Asset script run on the fresh template directory (argv: DEST). */
  templatePost?: string;
  /** Installs the profile's software state on booted hosts. */
  setup(lab: LabHandle, state: LabState, log: (line: string) => void): Promise<void>;
}

// /etc/systemd/system and /usr/local/sbin: what the product installs for systemd (pe-cluster's boot-time guard
// and its drop-ins) stays inside each host, never on this machine
const BASE_PATHS = [
  '/etc/ssh',
  '/root',
  '/tmp',
  '/var/log',
  '/var/local',
  '/etc/systemd/system',
  '/usr/local/sbin',
] as const;

export const DEBIAN_PATHS = [
  ...BASE_PATHS,
  '/etc/default',
  '/etc/puppet',
  '/var/lib/puppet',
  '/var/cache/puppet',
  '/var/lib/puppetserver',
  '/etc/puppetdb',
  '/var/lib/puppetdb',
  '/etc/postgresql',
  '/var/lib/postgresql',
  '/etc/activemq',
  '/var/lib/activemq',
  '/etc/mcollective',
] as const;

export const PE3_PATHS = [...BASE_PATHS, '/etc/passwd', '/etc/group', '/etc/puppetlabs', '/opt', '/var/opt'] as const;

export const PROFILE_SPECS: Partial<Record<ProfileName, ProfileSpec>> = {
  light: {
    name: 'light',
    paths: BASE_PATHS,
    templateVersion: 1,
    defaultHosts: ['primary', 'secondary1'],
    defaultAgents: 0,
    lbVerifiesCa: false,
    setup: async () => {
      // sshd and the systemctl stand-in are all a light host has; init starts them.
    },
  },
  debian: {
    name: 'debian',
    paths: DEBIAN_PATHS,
    templateVersion: 1,
    defaultHosts: ['primary', 'secondary1'],
    defaultAgents: 1,
    lbVerifiesCa: true,
    setup: setupDebian,
  },
  pe3: {
    name: 'pe3',
    paths: PE3_PATHS,
    templateVersion: 1,
    templatePost: 'pe3/template.sh',
    defaultHosts: ['primary', 'secondary1'],
    defaultAgents: 1,
    lbVerifiesCa: true,
    setup: setupPe3,
  },
};
