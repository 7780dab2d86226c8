import type { Host, WriteResult } from '@pe-stack/pe-host';
import type { ServiceDbFile } from './credentials.js';
import { editors, readText } from './editors.js';
import { DbBudgetError } from './errors.js';
import { queryOne, type PgInstance } from './instance.js';

/**
 * PuppetDB opens a write pool ([database]) and a read pool ([read-database],
 * which takes [database]'s settings when absent), each `maximum-pool-size`
 * connections, 25 by default: ~50 per puppetdb (lab-notes.md). A Rails console
 * process holds up to `pool` (default 5) connections.
 */
export const PUPPETDB_DEFAULT_POOL = 25;
export const RAILS_DEFAULT_POOL = 5;

export interface PoolUse {
  node: string;
  service: string;
  file: string;
  /** Connections this service can open at most. */
  connections: number;
  /** How the number was found, for the report. */
  basis: string;
  /** PuppetDB pools can be lowered by pe-db (maximum-pool-size). */
  adjustable: boolean;
}

export interface NodePools {
  host: Host;
  files: readonly ServiceDbFile[];
}

/** Pool settings of the services on one node that use the primary's PostgreSQL. */
export async function readPools(
  host: Host,
  files: readonly ServiceDbFile[],
  opts: { consoleProcesses?: number } = {},
): Promise<PoolUse[]> {
  const out: PoolUse[] = [];
  for (const f of files) {
    if (!(await host.exists(f.path, { sudo: true }))) continue;
    const text = await readText(host, f.path);
    if (f.format === 'ini') {
      const doc = editors.ini(text, f.path);
      const write = Number(doc.get(f.section, 'maximum-pool-size') ?? PUPPETDB_DEFAULT_POOL);
      const read = Number(
        doc.get('read-database', 'maximum-pool-size') ??
          doc.get(f.section, 'maximum-pool-size') ??
          PUPPETDB_DEFAULT_POOL,
      );
      out.push({
        node: host.name,
        service: f.service,
        file: f.path,
        connections: write + read,
        basis: `write pool ${write} + read pool ${read}`,
        adjustable: true,
      });
    } else {
      const doc = editors.yaml(text, f.path);
      const pool = Number(doc.get([f.section, 'pool']) ?? RAILS_DEFAULT_POOL);
      const procs = opts.consoleProcesses ?? 4;
      out.push({
        node: host.name,
        service: f.service,
        file: f.path,
        connections: pool * procs,
        basis: `pool ${pool} x ${procs} processes`,
        adjustable: false,
      });
    }
  }
  return out;
}

export interface PrimaryLimits {
  maxConnections: number;
  /** superuser_reserved_connections (+ reserved_connections on 16+). */
  reserved: number;
  /** Connections open right now (pg_stat_activity, client backends). */
  inUse: number;
}

export async function primaryLimits(primary: PgInstance): Promise<PrimaryLimits> {
  const r = await queryOne<{ max: string; su: string; res: string | null; used: number }>(
    primary,
    `SELECT current_setting('max_connections') AS max, current_setting('superuser_reserved_connections') AS su,
            current_setting('reserved_connections', true) AS res,
            (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::int AS used`,
  );
  return { maxConnections: Number(r.max), reserved: Number(r.su) + Number(r.res ?? 0), inUse: r.used };
}

export interface BudgetReport {
  limits: PrimaryLimits;
  /** Connections available to services: max_connections - reserved - headroom. */
  available: number;
  headroom: number;
  pools: PoolUse[];
  total: number;
  fits: boolean;
  /** In 'fit' mode: the maximum-pool-size written per puppetdb (both pools), when one was needed. */
  setPoolSize?: number;
  writes: WriteResult[];
}

/** Pure arithmetic: the largest per-pool size that fits every puppetdb (two pools each) beside the fixed users. */
export function fitPoolSize(pools: readonly PoolUse[], available: number): number {
  const fixed = pools.filter((p) => !p.adjustable).reduce((a, p) => a + p.connections, 0);
  const n = pools.filter((p) => p.adjustable).length;
  if (n === 0) return Infinity;
  return Math.floor((available - fixed) / (2 * n));
}

/**
 * The cluster's connection budget: every node's pools against the primary's
 * max_connections (minus reserved slots and a headroom for operators and
 * tools). 'refuse' throws E_DB_BUDGET when they do not fit; 'fit' lowers
 * PuppetDB's maximum-pool-size on every node so they do (and still throws
 * when even a pool of 2 would not fit).
 */
export async function checkBudget(
  primary: PgInstance,
  nodes: readonly NodePools[],
  opts: { mode?: 'refuse' | 'fit'; headroom?: number; consoleProcesses?: number; minPool?: number } = {},
): Promise<BudgetReport> {
  const limits = await primaryLimits(primary);
  const headroom = opts.headroom ?? 5;
  const available = limits.maxConnections - limits.reserved - headroom;
  // every node's files read at once (one host's answer does not wait for another's), in the nodes' order
  const readAll = async () => (await Promise.all(nodes.map((n) => readPools(n.host, n.files, opts)))).flat();
  const pools: PoolUse[] = await readAll();
  const total = pools.reduce((a, p) => a + p.connections, 0);
  const report: BudgetReport = { limits, available, headroom, pools, total, fits: total <= available, writes: [] };
  if (report.fits) return report;
  const detail = pools.map((p) => `${p.node} ${p.service} ${p.connections} (${p.basis})`).join(', ');
  const size = fitPoolSize(pools, available);
  const minPool = opts.minPool ?? 2;
  if (opts.mode !== 'fit' || size < minPool) {
    throw new DbBudgetError(
      primary.host.name,
      `the services can open ${total} connections (${detail}) but the primary allows ${available} (max_connections ${limits.maxConnections} - ${limits.reserved} reserved - ${headroom} headroom).`,
      size >= minPool
        ? `Set maximum-pool-size = ${size} in [database] of every puppetdb's database.ini (or run with the fit mode), or raise max_connections on the primary and restart it.`
        : `Raise max_connections on the primary (and restart it): even a PuppetDB pool of ${minPool} would not fit.`,
    );
  }
  // each node's files written by its own host at once with the others' (results in the nodes' order)
  const writes = await Promise.all(
    nodes.map(async (n) => {
      const out: WriteResult[] = [];
      for (const f of n.files.filter((x) => x.format === 'ini')) {
        if (!(await n.host.exists(f.path, { sudo: true }))) continue;
        const before = await readText(n.host, f.path);
        const doc = editors.ini(before, f.path);
        doc.set(f.section, 'maximum-pool-size', String(size));
        if (
          doc.get('read-database', 'subname') !== undefined ||
          doc.get('read-database', 'maximum-pool-size') !== undefined
        ) {
          doc.set('read-database', 'maximum-pool-size', String(size));
        }
        out.push(await n.host.writeFile(f.path, doc.toString(), { backup: true }));
      }
      return out;
    }),
  );
  report.writes.push(...writes.flat());
  report.setPoolSize = size;
  report.pools = await readAll();
  report.total = report.pools.reduce((a, p) => a + p.connections, 0);
  report.fits = report.total <= available;
  return report;
}
