import type { Host, Redactor } from '@pe-stack/pe-host';
import { fileOf } from '@pe-stack/pe-config-files';
import { UsageError } from '../errors.js';
import type { Inventory, InventoryNode } from '../inventory.js';
import { answerDatabase, type QueryAnswer } from './database.js';
import { MemoryHost } from './host.js';
import { seedMaster } from './seed.js';

export interface MemoryClusterOptions {
  /** The password in the masters' database settings, which PostgreSQL accepts (default `memory-db-password`). */
  databasePassword?: string;
  /** The password PostgreSQL accepts, when it should differ from the settings' (a wrong-password rehearsal: E_DB_AUTH). */
  acceptedPassword?: string;
  /** More PostgreSQL query answers for every host (see answerDatabase). */
  queries?: readonly QueryAnswer[];
  /** Seed each master with a fresh install's files (default true; the debian layout only). false: empty file systems. */
  seed?: boolean;
  /** Called for each host once it is made (and seeded): more files, more command answers. */
  setup?: (host: MemoryHost, node: InventoryNode) => void;
}

/** A cluster of memory hosts: one per inventory node, made on first use. */
export interface MemoryCluster {
  /** The memory host of an inventory node (made on first use). */
  host(name: string): MemoryHost;
  /** For `new Cluster(inventory, { hostFactory })`: the cluster's hosts are these memory hosts. */
  readonly hostFactory: (node: InventoryNode, redactor: Redactor) => Host;
  /** Every host made so far, by name. */
  readonly hosts: ReadonlyMap<string, MemoryHost>;
}

/**
 * Memory hosts for the nodes of `inventory`, each seeded as a freshly
 * installed master of the inventory's layout (`seedMaster`) and answering
 * the PostgreSQL checks and queries the flows run (`answerDatabase`, reading
 * each host's own postgresql.conf and pg_hba.conf). Enough for
 * `cluster.plan('join')` to pass its preflight and plan every step.
 */
export function memoryCluster(inventory: Inventory, opts: MemoryClusterOptions = {}): MemoryCluster {
  const { layout } = inventory;
  if (opts.seed !== false && layout.flavour !== 'debian')
    throw new UsageError(
      `memory masters are seeded for the debian layout only, not ${layout.flavour}.`,
      'Pass seed: false and put the files in place with setup (host.setFile).',
    );
  const password = opts.databasePassword ?? 'memory-db-password';
  const hosts = new Map<string, MemoryHost>();
  const make = (node: InventoryNode, redactor?: Redactor): MemoryHost => {
    const known = hosts.get(node.name);
    if (known) return known;
    const h = new MemoryHost({ name: node.name, ...(redactor ? { redactor } : {}) });
    if (opts.seed !== false) seedMaster(h, layout, { databasePassword: password });
    answerDatabase(h, {
      password: opts.acceptedPassword ?? password,
      files: { confFile: fileOf(layout, 'postgresqlConf').path, hbaFile: fileOf(layout, 'pgHbaConf').path },
      ...(opts.queries ? { queries: opts.queries } : {}),
    });
    opts.setup?.(h, node);
    hosts.set(node.name, h);
    return h;
  };
  const nodeOf = (name: string): InventoryNode => {
    const n = [...inventory.masters, ...inventory.agents].find((x) => x.name === name);
    if (!n) throw new UsageError(`unknown host "${name}": it is not in the inventory ${inventory.file}.`);
    return n;
  };
  return { host: (name) => make(nodeOf(name)), hostFactory: (node, redactor) => make(node, redactor), hosts };
}
