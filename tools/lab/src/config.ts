import { fileURLToPath } from 'node:url';

export type ProfileName = 'light' | 'pe3' | 'debian';
export const PROFILES: readonly ProfileName[] = ['light', 'pe3', 'debian'];
export type Role = 'primary' | 'secondary' | 'agent';

/** Where a lab lives. One machine can hold several labs with distinct names and subnets. */
export interface LabConfig {
  /** Namespace prefix: namespaces are `<name>-ctl` and `<name>-<host>`. Default `lab`. */
  name: string;
  /** First three octets of the /24 the lab uses. Default `10.77.0`. */
  net: string;
  /** State directory: host disks, templates, key, inventory. */
  stateDir: string;
  /** DNS domain of the lab's hosts. */
  domain: string;
}

export function defaultConfig(overrides: Partial<LabConfig> = {}): LabConfig {
  return {
    name: overrides.name ?? process.env.PE_STACK_LAB_NAME ?? 'lab',
    net: overrides.net ?? process.env.PE_STACK_LAB_NET ?? '10.77.0',
    stateDir: overrides.stateDir ?? process.env.PE_STACK_LAB_DIR ?? '/var/lib/pe-stack-lab',
    domain: overrides.domain ?? 'lab.test',
  };
}

/** tools/lab/assets: host-side scripts (init, systemctl stand-in, setup). Same path from src/ and dist/. */
export const ASSETS_DIR = fileURLToPath(new URL('../assets/', import.meta.url)).replace(/\/$/, '');

export const subnet = (c: LabConfig): string => `${c.net}.0/24`;
export const ctlNs = (c: LabConfig): string => `${c.name}-ctl`;
export const ctlIp = (c: LabConfig): string => `${c.net}.1`;
export const bridge = (c: LabConfig): string => `${c.name}br0`;
export const hostNs = (c: LabConfig, host: string): string => `${c.name}-${host}`;
export const hostIp = (c: LabConfig, index: number): string => `${c.net}.${11 + index}`;
export const vethName = (c: LabConfig, index: number): string => `${c.name}v${index}`;
export const fqdn = (c: LabConfig, host: string): string => `${host}.${c.domain}`;
/** The primary's well-known name (moved by a failover). */
export const primaryCname = (c: LabConfig): string => `master.${c.domain}`;
/** The name every agent uses: the load balancer in the controller. */
export const generalCname = (c: LabConfig): string => `puppet.${c.domain}`;

export const HOST_NAME_RE = /^[a-z][a-z0-9]{0,11}$/;
export const MAX_HOSTS = 200;
