import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { FenceRegistry } from '@pe-stack/pe-db';
import type { Inventory, InventoryNode } from './inventory.js';

/**
 * What failover changes about the cluster that the inventory file does not
 * say: who is primary now, which master is the warm standby (and the CA copy
 * it holds), which former primaries are fenced until `rejoin`. Kept on the
 * controller beside the journals (`<state>/<cluster>.state.json`, 0600),
 * written atomically. The inventory file stays the operator's.
 */
export interface ClusterState {
  version: 1;
  /** The master that is primary now, when it is not the inventory's. */
  primary?: string | undefined;
  standby?: StandbyState | undefined;
  fenced: FencedHost[];
  /** The failover in progress or last done (its decision survives a crash of the CLI: --resume reads it). */
  failover?: FailoverDecision | undefined;
}

export interface StandbyState {
  host: string;
  synchronous: boolean;
  since: string;
  /** The last verified CA copy pushed to the standby. */
  caSync?: { at: string; archive: string; archiveSha256: string; files: Record<string, string> } | undefined;
}

export interface FencedHost {
  host: string;
  at: string;
  how: 'stopped' | 'unreachable';
  newPrimary: string;
}

export interface FailoverDecision {
  from: string;
  to: string;
  mode: 'planned' | 'emergency';
  decidedAt: string;
  acceptDataLoss: boolean;
  /** Why the data is safe (or that the loss was accepted), in words. */
  why: string;
  /** A named CA backup to take over from (emergency). */
  caBackup?: string | undefined;
  completedAt?: string | undefined;
}

export function stateDir(inv: Pick<Inventory, 'journalDir'>): string {
  return dirname(inv.journalDir);
}

/** A file of this cluster's in the state directory: `<cluster><suffix>`, the name made safe for a path. */
function clusterFile(inv: Pick<Inventory, 'journalDir' | 'cluster'>, suffix: string): string {
  return join(stateDir(inv), `${inv.cluster.replace(/[^A-Za-z0-9._-]/g, '_')}${suffix}`);
}

export function statePath(inv: Pick<Inventory, 'journalDir' | 'cluster'>): string {
  return clusterFile(inv, '.state.json');
}

/** pe-db's registry of fences set while a host was unreachable. */
export function fenceRegistry(inv: Pick<Inventory, 'journalDir' | 'cluster'>): FenceRegistry {
  return new FenceRegistry(clusterFile(inv, '.fences.json'));
}

export function readState(inv: Pick<Inventory, 'journalDir' | 'cluster'>): ClusterState {
  try {
    const s = JSON.parse(readFileSync(statePath(inv), 'utf8')) as ClusterState;
    return { ...s, fenced: s.fenced ?? [] };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, fenced: [] };
    throw e;
  }
}

export function writeState(inv: Pick<Inventory, 'journalDir' | 'cluster'>, s: ClusterState): void {
  const p = statePath(inv);
  mkdirSync(dirname(p), { recursive: true, mode: 0o700 });
  const tmp = `${p}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(s, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, p);
}

export function updateState(
  inv: Pick<Inventory, 'journalDir' | 'cluster'>,
  fn: (s: ClusterState) => void,
): ClusterState {
  const s = readState(inv);
  fn(s);
  writeState(inv, s);
  return s;
}

/**
 * The inventory as the cluster is now: when a failover made another master
 * primary, that master has the role `primary` (and comes first) and the
 * former primary is a secondary (fenced until rejoin: see `fencedHosts`).
 * Without a state file the inventory is returned unchanged.
 */
export function applyClusterState(inv: Inventory): Inventory {
  let s: ClusterState;
  try {
    s = readState(inv);
  } catch {
    return inv;
  }
  if (!s.primary || s.primary === inv.primary.name) return inv;
  const next = inv.masters.find((m) => m.name === s.primary);
  if (!next) return inv;
  const masters: InventoryNode[] = inv.masters.map((m) =>
    m === next ? { ...m, role: 'primary' } : m.role === 'primary' ? { ...m, role: 'secondary' } : m,
  );
  const primary = masters.find((m) => m.name === s.primary)!;
  return { ...inv, primary, masters: [primary, ...masters.filter((m) => m !== primary)] };
}

export function fencedHosts(inv: Inventory): FencedHost[] {
  try {
    return readState(inv).fenced;
  } catch {
    return [];
  }
}
