import { statSync } from 'node:fs';
import { defaultConfig, type LabConfig, type ProfileName } from './config.js';
import { execArgv, execInHost, sshArgv, sshToHost } from './exec.js';
import { cut, heal, powerOff, powerOn } from './faults.js';
import { initPid } from './hosts.js';
import { hostsFile, writeAllHostsFiles } from './hosts-files.js';
import { writeInventoryFiles } from './inventory.js';
import { loadBalancerBackends, startLoadBalancer, waitForBackend } from './load-balancer.js';
import { assertInController, ensureController, inController, removeController } from './network.js';
import * as paths from './paths.js';
import { PROFILE_SPECS } from './profiles.js';
import { acquireSession, sessionHolder } from './session.js';
import { findHost, readState, requireState, saveState } from './state.js';
import { labStatus } from './status.js';
import { run, type RunResult } from './sys.js';
import { down, leftoverNamespaces } from './teardown.js';
import { prepareTemplate } from './templates.js';
import type {
  DownReport,
  ExecOptions,
  HostRecord,
  InventoryFiles,
  LabHandle,
  LabState,
  LabStatus,
  UpOptions,
} from './types.js';
import { up } from './up.js';

export type { DownReport, HostRecord, HostStatus, InventoryFiles, LabState, LabStatus, UpOptions } from './types.js';

/**
 * The lab: hosts made of network + mount + UTS + PID namespaces behind a
 * bridge in a controller namespace, with a root-namespace unreachable route
 * guarding the subnet. Every method is safe to call again after a crash.
 *
 * This class is the lab's one entry point; the work is in the modules it
 * calls: network.ts (controller, route, links), hosts.ts (create, boot),
 * exec.ts, faults.ts (power, partitions), load-balancer.ts, status.ts,
 * up.ts, teardown.ts, templates.ts, hosts-files.ts, session.ts, state.ts.
 */
export class Lab implements LabHandle {
  readonly config: LabConfig;

  constructor(config: Partial<LabConfig> = {}) {
    this.config = defaultConfig(config);
  }

  // ---- paths -------------------------------------------------------------
  get stateFile(): string {
    return paths.stateFile(this.config);
  }
  hostDir(name: string): string {
    return paths.hostDir(this.config, name);
  }
  get keyFile(): string {
    return paths.keyFile(this.config);
  }
  get knownHostsFile(): string {
    return paths.knownHostsFile(this.config);
  }
  get inventoryFile(): string {
    return paths.inventoryFile(this.config);
  }
  get haproxyConfig(): string {
    return paths.haproxyConfig(this.config);
  }
  get haproxyPidFile(): string {
    return paths.haproxyPidFile(this.config);
  }
  get haproxySocket(): string {
    return paths.haproxySocket(this.config);
  }
  /** CA bundle the load balancer's health check verifies masters against. */
  get lbCaFile(): string {
    return paths.lbCaFile(this.config);
  }
  templateDir(profile: ProfileName): string {
    return paths.templateDir(this.config, profile);
  }
  get sessionLockFile(): string {
    return paths.sessionLockFile(this.config);
  }
  /** The host-side scripts as the hosts see them: a copy under the state directory. */
  get assetsDir(): string {
    return paths.assetsDir(this.config);
  }
  /** pe-cluster's journals, cluster state and backups for this lab (see inventory.ts); emptied by every `up`. */
  get clusterStateDir(): string {
    return paths.clusterStateDir(this.config);
  }
  get mountPointsFile(): string {
    return paths.mountPointsFile(this.config);
  }

  // ---- state -------------------------------------------------------------
  state(): LabState | undefined {
    return readState(this.config);
  }
  requireState(): LabState {
    return requireState(this.config);
  }
  host(name: string): HostRecord {
    return findHost(this.config, name);
  }

  // ---- one user at a time (session.ts) -------------------------------------
  /** PID of the live `lab run` that holds the lab, if any. */
  sessionHolder(): number | undefined {
    return sessionHolder(this.config);
  }
  /** Takes the lab for one `lab run` session, waiting while another live session holds it. */
  acquireSession(opts: { waitMs?: number; log?: (l: string) => void } = {}): Promise<() => void> {
    return acquireSession(this.config, opts);
  }

  // ---- controller and route (network.ts) -----------------------------------
  /** Puts the root-namespace unreachable route in (first), then the controller namespace and its bridge. */
  ensureController(): Promise<{ createdRoute: boolean; createdController: boolean }> {
    return ensureController(this.config);
  }
  /** True when this process runs inside the controller namespace (where clients must run). */
  inController(): boolean {
    return inController(this.config);
  }
  /** Throws unless this process runs in the controller namespace: a client outside would route out of the machine. */
  assertInController(): void {
    assertInController(this.config);
  }
  /** Removes the controller namespace and then the route. Refuses from inside the controller. */
  removeController(): Promise<void> {
    return removeController(this.config);
  }

  // ---- up, down, templates (up.ts, teardown.ts, templates.ts) --------------
  up(opts: UpOptions): Promise<LabState> {
    return up(this, opts);
  }
  /** Builds (or reuses) a profile's template, so a timed `up` measures only the bring-up. */
  prepare(profile: ProfileName): Promise<void> {
    return prepareTemplate(this.config, profile);
  }
  /** Every namespace of this lab that exists now, whatever state file says. */
  leftoverNamespaces(): Promise<string[]> {
    return leftoverNamespaces(this.config);
  }
  /** Takes the lab down; from inside the controller it keeps the controller and the route. */
  down(opts: { keepController?: boolean } = {}): Promise<DownReport> {
    return down(this.config, opts);
  }

  // ---- hosts files (hosts-files.ts) ----------------------------------------
  hostsFile(hosts: readonly HostRecord[], cnameHost: string | undefined): string {
    return hostsFile(this.config, hosts, cnameHost);
  }
  /**
   * Moves the primary_cname (master.<domain>) to a host, in every hosts file of the lab: what a failover does to
   * DNS.
   */
  moveCname(hostName: string): void {
    const s = this.requireState();
    const h = this.host(hostName);
    s.cnameHost = h.name;
    saveState(this.config, s);
    writeAllHostsFiles(this.config, s);
  }

  // ---- power, links, exec (faults.ts, exec.ts) -----------------------------
  /** Host-side PID of the host's init, or undefined when the host is off. */
  initPid(name: string): number | undefined {
    return initPid(this.config, name);
  }
  /** A power cut: kills the host's PID namespace (and anything else in its network namespace). */
  powerOff(name: string): Promise<void> {
    return powerOff(this.config, name);
  }
  /** Boots a powered-off host again, from its disk state. */
  powerOn(name: string): Promise<void> {
    return powerOn(this.config, name);
  }
  /** Link down between the host and the bridge: a network partition. */
  cut(name: string): Promise<void> {
    return cut(this.config, name);
  }
  heal(name: string): Promise<void> {
    return heal(this.config, name);
  }
  /** argv that runs a command inside a host's namespaces (no ssh), with a clean root environment. */
  execArgv(name: string, argv: readonly string[]): string[] {
    return execArgv(this.config, name, argv);
  }
  /** Runs a command inside a host without ssh. */
  exec(name: string, argv: readonly string[], opts: ExecOptions = {}): Promise<RunResult> {
    return execInHost(this.config, name, argv, opts);
  }
  /** The ssh client argv for a host (run it inside the controller namespace). */
  sshArgv(name: string, command: readonly string[] = []): string[] {
    return sshArgv(this.config, name, command);
  }
  /** Runs a command on a host over ssh; only from inside the controller namespace. */
  ssh(
    name: string,
    command: readonly string[],
    opts: { allowFailure?: boolean; timeoutMs?: number } = {},
  ): Promise<RunResult> {
    return sshToHost(this.config, name, command, opts);
  }

  // ---- load balancer (load-balancer.ts) -----------------------------------
  /** Rewrites and restarts the load balancer (e.g. after the primary's CA changed). */
  async restartLoadBalancer(): Promise<void> {
    const s = this.requireState();
    const spec = PROFILE_SPECS[s.profile];
    if (spec) await startLoadBalancer(this.config, s, spec);
  }
  /** haproxy's view of the masters: `show stat` over its admin socket. */
  loadBalancerBackends(): Promise<{ name: string; status: string }[]> {
    return loadBalancerBackends(this.config);
  }
  /** Waits until the load balancer reports a master in a state (UP, DOWN). */
  waitForBackend(name: string, status: string, timeoutMs: number): Promise<void> {
    return waitForBackend(this.config, name, status, timeoutMs);
  }

  // ---- status, inventory, disks --------------------------------------------
  status(): Promise<LabStatus> {
    return labStatus(this.config);
  }
  async writeInventory(): Promise<InventoryFiles> {
    return writeInventoryFiles(this.config);
  }
  /** Size of a host's disk directory in bytes (du). */
  async diskBytes(name: string): Promise<number> {
    const r = await run('du', ['-sb', this.hostDir(name)], { allowFailure: true });
    return Number(r.stdout.split('\t')[0]) || 0;
  }
  hostExists(name: string): boolean {
    try {
      return statSync(this.hostDir(name)).isDirectory();
    } catch {
      return false;
    }
  }
}
