import { SshHost, type Host, type Redactor } from '@pe-stack/pe-host';
import { runFlow } from './engine/engine.js';
import type { Flow, FlowEvent, RunResult } from './engine/types.js';
import { UsageError } from './errors.js';
import { joinFlow } from './flows/join.js';
import { collectStatus, type StatusReport } from './flows/status.js';
import type { Inventory, InventoryNode } from './inventory.js';

export interface ClusterOptions {
  /** How a node is reached (default: an SshHost from the inventory's SSH settings). Tests pass LocalHost-based factories. */
  hostFactory?: (node: InventoryNode, redactor: Redactor) => Host;
  /** Extra flows by name, or replacements of built-in ones (embedding, tests). */
  flows?: Record<string, (cluster: Cluster, hosts: readonly string[]) => Flow | Promise<Flow>>;
}

export interface RunFlowOptions {
  onEvent?: (e: FlowEvent) => void;
  dryRun?: boolean;
  resume?: boolean;
  /** Hosts handled at once in parallel groups (default 4). */
  concurrency?: number;
  /** Abort (e.g. on SIGINT): the running steps finish, no new step starts. */
  signal?: AbortSignal;
}

export const FLOWS = ['join'] as const;
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

  constructor(
    readonly inventory: Inventory,
    opts: ClusterOptions = {},
  ) {
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
    if (names.length === 0) {
      const all = this.inventory.masters.filter((m) => m.role === 'secondary');
      if (all.length === 0) throw new UsageError(`the inventory ${this.inventory.file} lists no secondary.`, 'Add masters with role: secondary, or name the hosts to join.');
      return all;
    }
    const out: InventoryNode[] = [];
    for (const name of names) {
      const n = this.node(name);
      if (n.role !== 'secondary') throw new UsageError(`${name} is the ${n.role} in the inventory, not a secondary; only secondaries join.`);
      if (!out.includes(n)) out.push(n);
    }
    return out;
  }

  /** The steps of a flow for these hosts (what `plan` shows and `join` runs). */
  async flow(name: string, hosts: readonly string[]): Promise<Flow> {
    const extra = this.extraFlows[name];
    if (extra) return extra(this, hosts);
    switch (name) {
      case 'join':
        return joinFlow(this, this.secondaries(hosts));
      default:
        throw new UsageError(`unknown flow "${name}".`, `Known flows: ${[...new Set([...FLOWS, ...Object.keys(this.extraFlows)])].join(', ')}.`);
    }
  }

  /** Run a flow by name: journal, audit log and resume per the inventory. */
  async run(name: string, hosts: readonly string[], opts: RunFlowOptions = {}): Promise<RunResult> {
    const flow = await this.flow(name, hosts);
    // what the run acts on, so --resume finds its journal: `join` and `join s1 s2` are the same run when s1, s2 are all secondaries
    const names = name === 'join' && !this.extraFlows[name] ? this.secondaries(hosts).map((n) => n.name) : hosts;
    const target = [...new Set(names)].sort().join(',') || '(all)';
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

  /** The dry run of a flow: the plan, nothing changed. */
  plan(name: string, hosts: readonly string[], opts: Omit<RunFlowOptions, 'dryRun' | 'resume'> = {}): Promise<RunResult> {
    return this.run(name, hosts, { ...opts, dryRun: true });
  }

  /** Health of every master (read-only). */
  status(opts: { concurrency?: number } = {}): Promise<StatusReport> {
    return collectStatus(this, opts);
  }

  async close(): Promise<void> {
    const all = [...this.hosts.values()];
    this.hosts.clear();
    await Promise.allSettled(all.map((h) => h.close()));
  }
}
