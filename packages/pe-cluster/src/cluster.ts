import { SshHost, type Host, type Redactor } from '@pe-stack/pe-host';
import { runFlow, type Flow, type FlowEvent, type RunResult } from '@pe-stack/pe-steps';
import { UsageError } from './errors.js';
import { joinFlow } from './flows/join.js';
import { collectStatus, type StatusReport } from './flows/status.js';
import type { Inventory, InventoryNode } from './inventory.js';
import type { PgInstance } from '@pe-stack/pe-db';
import type { DnsProvider } from './dns/index.js';
import {
  backupCluster,
  restoreCluster,
  type BackupOptions,
  type BackupResult,
  type RestoreOptions,
  type RestoreReport,
} from './flows/backup.js';
import { failoverFlow, type FailoverOptions } from './flows/failover.js';
import { addHaStatus } from './flows/ha-status.js';
import { rejoinFlow, type RejoinOptions } from './flows/rejoin.js';
import { standbyFlow, type StandbyOptions } from './flows/standby.js';
import { applyClusterState, ensureRunDirs, fencedHosts } from './state.js';

export interface ClusterOptions {
  /** How a node is reached (default: an SshHost from the inventory's SSH settings). Tests pass LocalHost-based factories. */
  hostFactory?: (node: InventoryNode, redactor: Redactor) => Host;
  /** Extra flows by name, or replacements of built-in ones (embedding, tests). */
  flows?: Record<string, (cluster: Cluster, hosts: readonly string[]) => Flow | Promise<Flow>>;
  /** The PostgreSQL instance of a master for standby/failover/rejoin/backup (default: the layout's). Tests pass throwaway clusters. */
  pgInstance?: (name: string, host: Host) => PgInstance;
  /** The DNS provider for primary_cname (default: the inventory's `dns`). */
  dns?: () => DnsProvider;
}

export interface RunFlowOptions {
  onEvent?: (e: FlowEvent) => void;
  dryRun?: boolean;
  resume?: boolean;
  /** Hosts handled at once in parallel groups (default 4). */
  concurrency?: number;
  /** Abort (e.g. on SIGINT): the running steps finish, no new step starts. */
  signal?: AbortSignal;
  /** Options of the failover-side flows (standby, failover, rejoin). */
  params?: StandbyOptions & Omit<FailoverOptions, 'to'> & RejoinOptions;
}

export const FLOWS = ['join', 'standby', 'failover', 'rejoin'] as const;
export type FlowName = (typeof FLOWS)[number];

/**
 * The API behind the CLI: one inventory, its hosts (one connection each,
 * opened on first use, closed by `close()`), and the flows.
 *
 * ```ts
 * const cluster = new Cluster(await loadInventory('inventory.yaml'));
 * try {
 *   const r = await cluster.join(['secondary1.example.com'], { onEvent: console.log });
 * } finally {
 *   await cluster.close();
 * }
 * ```
 */
export class Cluster {
  private readonly hosts = new Map<string, Host>();
  private readonly factory: NonNullable<ClusterOptions['hostFactory']>;
  private readonly extraFlows: NonNullable<ClusterOptions['flows']>;

  readonly inventory: Inventory;
  readonly pgInstance: ClusterOptions['pgInstance'];
  readonly dns: ClusterOptions['dns'];

  constructor(inventory: Inventory, opts: ClusterOptions = {}) {
    // after a failover the controller's cluster state names the primary (the inventory file stays the operator's)
    this.inventory = applyClusterState(inventory);
    this.pgInstance = opts.pgInstance;
    this.dns = opts.dns;
    this.factory = opts.hostFactory ?? ((node, redactor) => new SshHost({ ...node.ssh, redactor }));
    this.extraFlows = opts.flows ?? {};
  }

  get redactor(): Redactor {
    return this.inventory.redactor;
  }

  /** The inventory node for a name; UsageError (exit 2) for a name the inventory lacks. */
  node(name: string): InventoryNode {
    const n = [...this.inventory.masters, ...this.inventory.agents].find((x) => x.name === name);
    if (!n) {
      throw new UsageError(
        `unknown host "${name}": it is not in the inventory ${this.inventory.file}.`,
        `Known masters: ${this.inventory.masters.map((m) => m.name).join(', ')}.`,
      );
    }
    return n;
  }

  /** The real host for a name (cached; one connection per host). */
  host(name: string): Host {
    let h = this.hosts.get(name);
    if (!h) {
      h = this.factory(this.node(name), this.redactor);
      this.hosts.set(name, h);
    }
    return h;
  }

  /** The secondaries named (all secondaries when none are named); refuses the primary, agents and unknown names. */
  secondaries(names: readonly string[]): InventoryNode[] {
    // a former primary fenced by a failover is not a secondary to join: `rejoin` brings it back
    const fenced = new Set(fencedHosts(this.inventory).map((f) => f.host));
    if (names.length === 0) {
      const all = this.inventory.masters.filter((m) => m.role === 'secondary' && !fenced.has(m.name));
      if (all.length === 0)
        throw new UsageError(
          `the inventory ${this.inventory.file} lists no secondary.`,
          'Add masters with role: secondary, or name the hosts to join.',
        );
      return all;
    }
    const out: InventoryNode[] = [];
    for (const name of names) {
      const n = this.node(name);
      if (n.role !== 'secondary')
        throw new UsageError(`${name} is the ${n.role} in the inventory, not a secondary; only secondaries join.`);
      if (fenced.has(n.name))
        throw new UsageError(`${name} was fenced by a failover; bring it back with: pe-cluster rejoin ${name}`);
      if (!out.includes(n)) out.push(n);
    }
    return out;
  }

  /** The steps of a flow for these hosts (what `plan` shows and `join` runs). */
  async flow(name: string, hosts: readonly string[], params: RunFlowOptions['params'] = {}): Promise<Flow> {
    const extra = this.extraFlows[name];
    if (extra) return extra(this, hosts);
    const one = (what: string): string => {
      if (hosts.length !== 1) throw new UsageError(`${name} takes exactly one host (${what}).`);
      return hosts[0]!;
    };
    switch (name) {
      case 'join':
        return joinFlow(this, this.secondaries(hosts));
      case 'standby':
        return standbyFlow(this, one('the secondary to make the standby'), params);
      case 'failover':
        return failoverFlow(this, { ...params, to: one('the secondary to fail over to') });
      case 'rejoin':
        return rejoinFlow(this, one('the former primary'), params);
      default:
        throw new UsageError(
          `unknown flow "${name}".`,
          `Known flows: ${[...new Set([...FLOWS, ...Object.keys(this.extraFlows)])].join(', ')}.`,
        );
    }
  }

  /** Run a flow by name: journal, audit log and resume per the inventory. */
  async run(name: string, hosts: readonly string[], opts: RunFlowOptions = {}): Promise<RunResult> {
    const flow = await this.flow(name, hosts, opts.params);
    // what the run acts on, so --resume finds its journal: `join` and `join s1 s2` are the same run when s1, s2 are all secondaries
    const names = name === 'join' && !this.extraFlows[name] ? this.secondaries(hosts).map((n) => n.name) : hosts;
    const target = [...new Set(names)].sort().join(',') || '(all)';
    if (!opts.dryRun) ensureRunDirs(this.inventory); // a plan writes nothing
    return runFlow(flow, {
      host: (n) => this.host(n),
      dryRun: opts.dryRun,
      resume: opts.resume,
      concurrency: opts.concurrency,
      journalDir: this.inventory.journalDir,
      auditLog: this.inventory.auditLog,
      target,
      signal: opts.signal,
      onEvent: opts.onEvent,
      redactor: this.redactor,
    });
  }

  /** Join secondaries to the primary (all secondaries when `hosts` is empty). */
  join(hosts: readonly string[], opts: RunFlowOptions = {}): Promise<RunResult> {
    return this.run('join', hosts, opts);
  }

  /** Make a secondary the warm standby: streaming replica, pg_hba for every master, CA admin rights, a verified CA copy. */
  standby(host: string, opts: RunFlowOptions & StandbyOptions = {}): Promise<RunResult> {
    return this.run('standby', [host], {
      ...opts,
      params: { ...opts.params, ...(opts.synchronous !== undefined ? { synchronous: opts.synchronous } : {}) },
    });
  }

  /** Fail over to a secondary (planned switchover when the primary answers, emergency otherwise). */
  failover(o: FailoverOptions, opts: RunFlowOptions = {}): Promise<RunResult> {
    const { to, ...params } = o;
    return this.run('failover', [to], { ...opts, params: { ...opts.params, ...params } });
  }

  /** Bring a former primary back as a secondary. */
  rejoin(host: string, opts: RunFlowOptions & RejoinOptions = {}): Promise<RunResult> {
    return this.run('rejoin', [host], {
      ...opts,
      params: { ...opts.params, ...(opts.database ? { database: opts.database } : {}) },
    });
  }

  /** CA, credentials and database dump of the primary into a timestamped, checksummed archive on the controller. */
  backup(opts: BackupOptions = {}): Promise<BackupResult> {
    return backupCluster(this, opts);
  }

  /** Verify an archive, back up the current state, then restore. */
  restore(archive: string, opts: RestoreOptions = {}): Promise<RestoreReport> {
    return restoreCluster(this, archive, opts);
  }

  /** The dry run of a flow: the plan, nothing changed. */
  plan(
    name: string,
    hosts: readonly string[],
    opts: Omit<RunFlowOptions, 'dryRun' | 'resume'> = {},
  ): Promise<RunResult> {
    return this.run(name, hosts, { ...opts, dryRun: true });
  }

  /** Health of every master (read-only). */
  async status(opts: { concurrency?: number } = {}): Promise<StatusReport> {
    return addHaStatus(this, await collectStatus(this, opts));
  }

  async close(): Promise<void> {
    const all = [...this.hosts.values()];
    this.hosts.clear();
    await Promise.allSettled(all.map((h) => h.close()));
  }
}
