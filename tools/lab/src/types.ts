import type { LabConfig, ProfileName, Role } from './config.js';
import type { RunResult } from './sys.js';

export interface HostRecord {
  name: string;
  fqdn: string;
  ip: string;
  role: Role;
  index: number;
}

export interface LabState {
  profile: ProfileName;
  phase: 'booting' | 'up';
  createdAt: string;
  withMcollective: boolean;
  /** Host that carries the primary_cname (master.<domain>). */
  cnameHost: string | undefined;
  hosts: HostRecord[];
}

export interface UpOptions {
  profile: ProfileName;
  /** Master hosts, primary first. Default: primary, secondary1 (light: primary). */
  hosts?: readonly string[];
  /** Number of agent hosts, named agent1..agentN. */
  agents?: number;
  withMcollective?: boolean;
  /** Progress lines (stderr in the CLI). */
  log?: (line: string) => void;
}

export interface HostStatus {
  name: string;
  fqdn: string;
  ip: string;
  role: Role;
  power: 'on' | 'off';
  link: 'up' | 'down' | 'absent';
  services: { unit: string; active: boolean; enabled: boolean }[];
  memoryBytes: number;
}

export interface LabStatus {
  up: boolean;
  profile: ProfileName | undefined;
  controller: boolean;
  route: boolean;
  hosts: HostStatus[];
  loadBalancer: { running: boolean; backends: { name: string; status: string }[] };
  memoryBytes: number;
}

export interface DownReport {
  namespaces: string[];
  killed: number;
  controllerKept: boolean;
}

export interface InventoryFiles {
  inventory: string;
  privateKey: string;
  knownHosts: string;
}

export interface ExecOptions {
  allowFailure?: boolean;
  timeoutMs?: number;
  input?: string;
}

/** What a profile's setup uses of the lab (the `Lab` class is one). */
export interface LabHandle {
  readonly config: LabConfig;
  readonly assetsDir: string;
  readonly lbCaFile: string;
  hostDir(name: string): string;
  exec(name: string, argv: readonly string[], opts?: ExecOptions): Promise<RunResult>;
  restartLoadBalancer(): Promise<void>;
  waitForBackend(name: string, status: string, timeoutMs: number): Promise<void>;
}
