import { applyEdits, fileOf, parseLineList, type Layout } from '@pe-stack/pe-config-files';
import { grantCaAdmin } from '@pe-stack/pe-certs';
import {
  accessGranted,
  buildReplica,
  dbFilesFromLayout,
  grantAccess,
  readCredentials,
  replicaStreaming,
  setSynchronous,
  waitFor,
  type PgInstance,
} from '@pe-stack/pe-db';
import { isIpLiteral, manifestDifferences, pollUntil } from '@pe-stack/pe-host';
import { ensureStep, probe, type CheckResult, type Flow, type Step, type StepContext } from '@pe-stack/pe-steps';
import type { Inventory, InventoryNode } from '../inventory.js';
import { readState, updateState } from '../state.js';
import { FailoverError, UsageError } from '../errors.js';
import { guardInstallGroup } from './guard.js';
import { CA_GATE, caOnEdits, type CaServing, caServing, caTree, gateCaEdits, syncCaCopy } from './ca-switch.js';
import { addressOf, master, pgOf, remoteOf, sshPreflight, type HaContext } from './cluster-access.js';
import { restartOrStart } from './services.js';
import { group } from './step-kinds.js';
import { caCopyRetention, type CaCopyRetention } from './ca-retention.js';

export interface StandbyOptions {
  /** Synchronous replication: every commit waits for the standby (RPO 0), commits are slower. */
  synchronous?: boolean;
  /** How many older CA copies (archives, directories kept aside) stay, and for how long (ca-retention.ts). */
  caRetention?: Partial<CaCopyRetention>;
}

/** What every step of one `standby` run shares, settled when the flow is built. */
interface StandbySetup {
  readonly cluster: HaContext;
  readonly inv: Inventory;
  readonly layout: Layout;
  readonly primary: InventoryNode;
  /** The secondary that becomes the warm standby. */
  readonly standby: InventoryNode;
  readonly synchronous: boolean;
  readonly caRetention: CaCopyRetention;
}

function standbyNode(inv: Inventory, name: string): InventoryNode {
  const node = master(inv, name);
  if (node.role !== 'secondary')
    throw new UsageError(`${name} is the ${node.role}; only a secondary becomes the standby.`);
  return node;
}

/**
 * `standby HOST`: make a (joined) secondary the warm standby. Its PostgreSQL
 * becomes a streaming replica of the primary's (pe-db buildReplica; the old
 * data directory is kept aside), its pg_hba admits every master's services
 * already (so failover needs no restart of PostgreSQL), its auth.conf lets it
 * use the CA admin endpoints once it is the CA, and it holds a verified copy
 * of the primary's CA (disabled: its CA service stays off until failover).
 * The standby is recorded in the cluster state; `status` reports it.
 */
export async function standbyFlow(cluster: HaContext, name: string, opts: StandbyOptions = {}): Promise<Flow> {
  const setup = settleStandby(cluster, name, opts);
  const { inv, primary, standby } = setup;
  return {
    name: 'standby',
    items: [
      group(
        'preflight',
        sshPreflight([primary, standby]).map((x) => [x]),
      ),
      replicaStreams(setup),
      databaseAdmitsEveryMaster(setup),
      ...present(caAdminGranted(setup)),
      standbyRecorded(setup),
      caCopyStep(inv, primary, standby, setup.caRetention),
      ...present(autosignStep(inv, primary, standby)),
      ...present(caGatedStep(inv, standby)),
      // the boot-time guard on every master: a former primary that boots after a failover finds the active CA and
      // fences itself (CA off, PostgreSQL in recovery) until rejoin
      guardInstallGroup(inv, { gate: CA_GATE.name }),
    ],
  };
}

function present(step: Step | undefined): Step[] {
  return step ? [step] : [];
}

/** The standby and its primary; refuses a fenced former primary and a second standby. */
function settleStandby(cluster: HaContext, name: string, opts: StandbyOptions): StandbySetup {
  const inv = cluster.inventory;
  const standby = standbyNode(inv, name);
  if (readState(inv).fenced.some((f) => f.host === standby.name))
    throw new UsageError(`${standby.name} was fenced by a failover; run pe-cluster rejoin ${standby.name} first.`);
  const other = readState(inv).standby;
  if (other && other.host !== standby.name)
    throw new UsageError(
      `${other.host} is the standby already; one standby at a time.`,
      'Fail over to it, or remove it from the state file first.',
    );
  return {
    cluster,
    inv,
    layout: inv.layout,
    primary: inv.primary,
    standby,
    synchronous: Boolean(opts.synchronous),
    caRetention: caCopyRetention(opts.caRetention),
  };
}

function primaryDb(setup: StandbySetup, ctx: StepContext): PgInstance {
  return pgOf(setup.cluster, setup.primary.name, ctx.hostFor(setup.primary.name));
}

function standbyDb(setup: StandbySetup, ctx: StepContext): PgInstance {
  return pgOf(setup.cluster, setup.standby.name, ctx.hostFor(setup.standby.name));
}

function replicaStreams(setup: StandbySetup): Step {
  const { primary, standby, synchronous: sync } = setup;
  return {
    id: 'standby.replica',
    host: standby.name,
    title: `PostgreSQL on ${standby.name}: a ${sync ? 'synchronous' : 'asynchronous'} streaming replica of ${primary.name}'s`,
    check: async (ctx) =>
      (await replicaStreaming(primaryDb(setup, ctx), standby.name, { synchronous: sync }))
        ? { done: true, why: `${standby.name} streams from ${primary.name}${sync ? ' (sync)' : ''}` }
        : { done: false, why: `${standby.name} does not stream from ${primary.name}${sync ? ' synchronously' : ''}` },
    apply: async (ctx) => {
      // a plan shows the step as to do (the check's reason); the operation itself waits on servers, so it is not simulated
      if (ctx.dryRun) return;
      const fromDb = primaryDb(setup, ctx);
      if (await replicaStreaming(fromDb, standby.name)) {
        // already a replica (e.g. after rejoin): only its synchronous mode changes
        await setSynchronous(fromDb, sync ? [standby.name] : []);
        await waitFor(() => replicaStreaming(fromDb, standby.name, { synchronous: sync }), 30_000, 100);
        return;
      }
      await buildReplica(fromDb, standbyDb(setup, ctx), {
        name: standby.name,
        primaryAddress: await addressOf(ctx.hostFor(standby.name), primary),
        standbyAddress: await addressOf(ctx.hostFor(primary.name), standby),
        synchronous: sync,
      });
    },
  };
}

/** pg_hba on the standby for every master's services: after promotion PuppetDB everywhere connects without a PostgreSQL restart. */
function databaseAdmitsEveryMaster(setup: StandbySetup): Step {
  const { standby } = setup;
  // listen on the standby's own address (as buildReplica does on the primary); '*' when the inventory gives none
  const listen = standby.ssh.address && isIpLiteral(standby.ssh.address) ? standby.ssh.address : '*';
  return {
    id: 'standby.db-access',
    host: standby.name,
    title: `pg_hba on ${standby.name} admits every master's services (in effect after promotion)`,
    check: async (ctx) => {
      const { grants, addresses } = await grantsForEveryMaster(setup, ctx);
      const missing: string[] = [];
      // listen_addresses too: a run stopped between the pg_hba write and the restart is still to do
      for (const a of addresses)
        if (!(await accessGranted(standbyDb(setup, ctx), a, grants, { listen }))) missing.push(a);
      return missing.length
        ? { done: false, why: `no pg_hba record for ${missing.join(', ')}, or not listening on ${listen}` }
        : { done: true, why: `admits ${addresses.join(', ')}` };
    },
    apply: async (ctx) => {
      const { grants, addresses } = await grantsForEveryMaster(setup, ctx);
      for (const a of addresses) await grantAccess(standbyDb(setup, ctx), a, grants, { restart: true, listen });
    },
  };
}

/** The primary's services' databases and users (passwords registered with the redactor), and every master's address. */
async function grantsForEveryMaster(setup: StandbySetup, ctx: StepContext) {
  const { inv, primary } = setup;
  const creds = await readCredentials(ctx.hostFor(primary.name), dbFilesFromLayout(setup.layout));
  for (const cr of creds) ctx.redactor.add(cr.password);
  const grants = [
    ...new Map(creds.map((cr) => [`${cr.database}/${cr.user}`, { database: cr.database, user: cr.user }])).values(),
  ];
  const addresses = [...new Set(await Promise.all(inv.masters.map((m) => addressOf(ctx.hostFor(primary.name), m))))];
  return { grants, addresses };
}

/** auth.conf lets the standby's own certificate use the CA admin endpoints; none on layouts without auth.conf. */
function caAdminGranted(setup: StandbySetup): Step | undefined {
  const { layout, standby } = setup;
  if (!layout.files.authConf) return undefined;
  const auth = fileOf(layout, 'authConf').path;
  return {
    id: 'standby.ca-admin',
    host: standby.name,
    title: `auth.conf on ${standby.name} lets its own certificate use the CA admin endpoints (pp_cli_auth rules)`,
    check: (ctx) => probe(ctx, (h) => grantCaAdmin(h.host, auth, standby.name, { sudo: standby.sudo })),
    apply: async (ctx) => {
      await grantCaAdmin(ctx.host, auth, standby.name, { sudo: standby.sudo });
    },
  };
}

function standbyRecorded(setup: StandbySetup): Step {
  const { inv, standby, synchronous } = setup;
  return {
    id: 'standby.record',
    host: standby.name,
    title: `record ${standby.name} as the standby (controller state)`,
    check: () => {
      const recorded = readState(inv).standby;
      return Promise.resolve(
        recorded?.host === standby.name && recorded.synchronous === synchronous
          ? { done: true, why: 'recorded' }
          : { done: false, why: 'not recorded yet' },
      );
    },
    apply: (ctx) => {
      if (!ctx.dryRun) {
        updateState(inv, (s) => {
          s.standby = {
            ...(s.standby?.host === standby.name ? s.standby : {}),
            host: standby.name,
            synchronous,
            since: s.standby?.host === standby.name ? s.standby.since : new Date().toISOString(),
          };
        });
      }
      return Promise.resolve();
    },
  };
}

/**
 * The standby's puppetserver runs its CA service on the verified copy, gated
 * (CA_GATE in auth.conf: it signs nothing), so that failover takes the CA
 * over with a HUP that lifts the gate instead of a JVM cold start. The gate
 * goes into auth.conf before the CA service is enabled, and both take effect
 * with one restart here, off the failover's critical path. Proven by asking
 * the server: the CA certificate answers, a CSR request is refused. Layouts
 * without a tk-auth auth.conf (pe3) have no such step: their failover
 * restarts the CA's web server.
 */
export function caGatedStep(inv: Inventory, standby: InventoryNode): Step | undefined {
  const gate = gateCaEdits(inv);
  if (gate.length === 0) return undefined;
  const edits = [...gate, ...caOnEdits(inv, standby.name)];
  return {
    id: 'standby.ca-gated',
    host: standby.name,
    title: `its puppetserver runs the CA copy gated (auth.conf denies every CA request but the CA certificate and CRL): failover lifts the gate with a reload`,
    check: async (ctx) => {
      const files = await probe(ctx, (h) => applyEdits(h.host, edits, { sudo: standby.sudo }));
      if (!files.done) return files;
      return caGatedState(inv, standby, await caServing(remoteOf(ctx.host, standby), inv.layout));
    },
    apply: async (ctx) => {
      const at = remoteOf(ctx.host, standby);
      if ((await caTree(at, inv.layout)).size === 0)
        throw new FailoverError(
          'E_CA_MISSING',
          `${standby.name} holds no CA copy; not enabling its CA service (puppetserver would create a new CA).`,
          { host: standby.name },
        );
      // the gate first: the CA service never runs ungated on the standby
      await applyEdits(ctx.host, gate, { sudo: standby.sudo });
      await applyEdits(ctx.host, caOnEdits(inv, standby.name), { sudo: standby.sudo });
      await restartOrStart(at, inv.layout, inv.layout.services.puppetserver);
      if (ctx.dryRun) return;
      const gated = await pollUntil(
        async () => {
          const x = await caServing(at, inv.layout);
          return x === undefined ? undefined : x === 'gated';
        },
        { timeoutMs: 300_000, intervalMs: 1000 },
      );
      if (!gated.ok)
        throw new FailoverError(
          'E_CA_SERVICE',
          `puppetserver on ${standby.name} does not serve its CA copy gated after a restart.`,
          { host: standby.name, hint: 'Read its log (services.d/ca.cfg, auth.conf, cadir permissions).' },
        );
    },
  };
}

/** The verdict on a standby whose files gate its CA, from what its puppetserver answers; a CA that signs is refused. */
function caGatedState(inv: Inventory, standby: InventoryNode, serving: CaServing | undefined): CheckResult {
  if (serving === 'signing')
    throw new FailoverError(
      'E_TWO_CAS',
      `the CA copy on ${standby.name} signs although its files gate it; stop its puppetserver now.`,
      { host: standby.name },
    );
  if (serving === undefined)
    return { done: true, why: 'gated in its files; puppetserver does not run here (it starts gated)' };
  return serving === 'gated'
    ? { done: true, why: 'the CA answers, gated' }
    : {
        done: false,
        why:
          serving === 'off' ? 'puppetserver runs without its CA service' : 'puppetserver does not answer as a gated CA',
      };
}

/**
 * The primary's autosign policy on the standby too: every entry of the
 * primary's autosign.conf is in the standby's (its own entries stay), so that
 * the agents an operator lets in without a manual sign are still let in after
 * a failover. A snapshot taken when `standby` runs (rerun it after changing
 * the policy; an executable policy set by `autosign = PATH` in puppet.conf is
 * the operator's to install on both).
 */
export function autosignStep(inv: Inventory, primary: InventoryNode, standby: InventoryNode): Step | undefined {
  if (!inv.layout.files.autosignConf) return undefined;
  const path = fileOf(inv.layout, 'autosignConf').path;
  return ensureStep(
    'standby.autosign',
    standby.name,
    `${primary.name}'s autosign.conf entries on ${standby.name} (the CA's signing policy follows it)`,
    async (h) => {
      const from = h.hostFor(primary.name);
      if (!(await from.exists(path, { sudo: primary.sudo }))) return;
      const entries = parseLineList(
        (await from.readFile(path, { sudo: primary.sudo })).toString('utf8'),
        path,
      ).entries();
      if (entries.length === 0) return;
      await applyEdits(
        h.host,
        [
          {
            kind: 'lines',
            path,
            create: true,
            write: { mode: 0o644 },
            ops: entries.map((entry) => ({ op: 'add' as const, entry })),
          },
        ],
        { sudo: standby.sudo },
      );
    },
  );
}

/** The standby's CA copy equals the primary's CA directory (sha256 of every file); apply pushes a verified copy. */
export function caCopyStep(
  inv: Inventory,
  primary: InventoryNode,
  standby: InventoryNode,
  retention?: Partial<CaCopyRetention>,
): Step {
  return {
    id: 'standby.ca-copy',
    host: standby.name,
    title: `a verified copy of ${primary.name}'s CA on ${standby.name}`,
    check: async (ctx) => {
      const [original, copy] = await Promise.all([
        caTree(remoteOf(ctx.hostFor(primary.name), primary), inv.layout),
        caTree(remoteOf(ctx.host, standby), inv.layout),
      ]);
      if (original.size === 0)
        throw new FailoverError('E_CA_MISSING', `${primary.name} holds no CA in ${inv.layout.dirs.cadir}.`, {
          host: primary.name,
        });
      const diff = manifestDifferences(original, copy);
      if (diff.length)
        return {
          done: false,
          why: `the copy differs: ${diff.slice(0, 3).join(', ')}${diff.length > 3 ? ` and ${diff.length - 3} more` : ''}`,
        };
      recordCopyFoundInPlace(ctx, inv, standby, original);
      return { done: true, why: `${original.size} files identical` };
    },
    apply: async (ctx) => {
      if (ctx.dryRun) {
        await ctx.host.exec(['true', `(would push a verified CA copy from ${primary.name})`]);
        return;
      }
      await syncCaCopy(inv, remoteOf(ctx.hostFor(primary.name), primary), remoteOf(ctx.host, standby), {
        retention,
      });
    },
  };
}

/** A recorded standby without a recorded CA copy, whose copy matches the primary's: that copy is recorded as verified. */
function recordCopyFoundInPlace(
  ctx: StepContext,
  inv: Inventory,
  standby: InventoryNode,
  tree: Map<string, string>,
): void {
  const recorded = readState(inv).standby;
  if (recorded?.host !== standby.name || recorded.caSync || ctx.dryRun) return;
  updateState(
    inv,
    (s) =>
      s.standby &&
      (s.standby.caSync = {
        at: new Date().toISOString(),
        archive: '(found in place)',
        archiveSha256: '',
        files: Object.fromEntries(tree),
      }),
  );
}

/**
 * Keeps the standby's CA copy current: every `intervalS` the primary's CA
 * directory is compared with the copy (sha256 of every file: signed/,
 * inventory.txt, the CRL, serial) and a verified copy is pushed when they
 * differ. Runs until the signal aborts. Returns the number of pushes.
 */
export async function watchCaCopy(
  cluster: HaContext,
  name: string,
  opts: {
    intervalS?: number;
    signal?: AbortSignal;
    onSync?: (r: { at: string; files: number; ms: number; pruned: number }) => void;
    retention?: Partial<CaCopyRetention>;
  } = {},
): Promise<number> {
  const inv = cluster.inventory;
  const retention = caCopyRetention(opts.retention);
  const standby = standbyNode(inv, name);
  const primary = inv.primary;
  const from = remoteOf(cluster.host(primary.name), primary);
  const to = remoteOf(cluster.host(standby.name), standby);
  let pushes = 0;
  while (!opts.signal?.aborted) {
    const r = await syncCaCopy(inv, from, to, { retention });
    if (r.changed) {
      pushes++;
      opts.onSync?.({ at: new Date().toISOString(), files: r.files, ms: r.ms, pruned: r.pruned?.length ?? 0 });
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, (opts.intervalS ?? 10) * 1000);
      opts.signal?.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
    });
  }
  return pushes;
}
