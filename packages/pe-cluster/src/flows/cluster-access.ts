import {
  dbFilesFromLayout,
  instanceFromLayout,
  readCredentials,
  type DbCredentials,
  type PgInstance,
} from '@pe-stack/pe-db';
import type { Host } from '@pe-stack/pe-host';
import { dnsProvider, hostReachable, type DnsProvider } from '../dns/index.js';
import type { Step, StepContext } from '@pe-stack/pe-steps';
import type { Inventory, InventoryNode } from '../inventory.js';
import { resolveAddress } from '../address.js';
import { UsageError } from '../errors.js';

/** What the failover-side flows need of a Cluster (narrow, to avoid an import cycle). */
export interface HaContext {
  readonly inventory: Inventory;
  host(name: string): Host;
  /** The PostgreSQL instance of a master (default: the layout's). Tests pass throwaway clusters. */
  pgInstance?(name: string, host: Host): PgInstance;
  /** The DNS provider for primary_cname (default: the inventory's). */
  dns?(): DnsProvider;
}

/** A host and whether commands and file access on it go through sudo: the handle every remote helper takes. */
export interface Remote {
  host: Host;
  sudo: boolean;
}

/** The handle for an inventory node reached through `host`. */
export function remoteOf(host: Host, node: Pick<InventoryNode, 'sudo'>): Remote {
  return { host, sudo: node.sudo };
}

export function pgOf(c: HaContext, name: string, host: Host): PgInstance {
  return c.pgInstance?.(name, host) ?? instanceFromLayout(host, c.inventory.layout);
}

export function dnsOf(c: HaContext, hostFor: (name: string) => Host): DnsProvider {
  return c.dns?.() ?? dnsProvider(c.inventory, hostFor);
}

/** The master of that name; a usage error naming the masters when there is none. */
export function master(inv: Inventory, name: string): InventoryNode {
  const m = inv.masters.find((x) => x.name === name);
  if (!m)
    throw new UsageError(
      `${name} is not a master in ${inv.file}.`,
      `Masters: ${inv.masters.map((x) => x.name).join(', ')}.`,
    );
  return m;
}

/** The address of a master: the inventory's, else as `on` resolves its name. */
export async function addressOf(on: Host, node: InventoryNode): Promise<string> {
  return resolveAddress(on, node.name, node.ssh.address);
}

/** Database credentials of a master's services (passwords registered with the redactor), read once per run. */
export async function credentialsOf(
  ctx: StepContext,
  inv: Inventory,
  host: Host,
  key = 'ha:creds',
): Promise<DbCredentials[]> {
  const cached = ctx.state.get(key) as DbCredentials[] | undefined;
  if (cached) return cached;
  const creds = await readCredentials(host, dbFilesFromLayout(inv.layout));
  for (const c of creds) ctx.redactor.add(c.password);
  ctx.state.set(key, creds);
  return creds;
}

/** A step that only checks (preflight). */
export function checkOnly(id: string, host: string, title: string, check: Step['check']): Step {
  return { id, host, title, check, apply: async () => {} };
}

/** One `preflight.ssh` step per node: reachable over SSH with a verified host key (and sudo). */
export function sshPreflight(nodes: readonly InventoryNode[]): Step[] {
  return nodes.map((m) =>
    checkOnly('preflight.ssh', m.name, 'reachable over SSH with a verified host key (and sudo)', async (ctx) => {
      await ctx.host.exec(['true'], { readOnly: true, sudo: m.sudo, timeoutMs: 30_000 });
      return { done: true, why: 'reachable, host key verified' };
    }),
  );
}

/** The host answers a command within the timeout (the DNS module's probe). */
export async function reachable(h: Host, timeoutMs = 5_000): Promise<boolean> {
  return hostReachable(h, timeoutMs);
}
