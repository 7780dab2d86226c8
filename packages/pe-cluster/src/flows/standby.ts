import { applyEdits, fileOf, parseLineList } from '@pe-stack/pe-config-files';
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
} from '@pe-stack/pe-db';
import type { Host } from '@pe-stack/pe-host';
import type { Flow, Step, StepContext } from '@pe-stack/pe-steps';
import type { Inventory, InventoryNode } from '../inventory.js';
import { readState, updateState } from '../state.js';
import { ensureStep, probe } from '@pe-stack/pe-steps';
import { guardInstallGroup } from './guard.js';
import {
  addressOf,
  CA_GATE,
  caEdits,
  caGateEdits,
  caServing,
  caTree,
  FailoverError,
  master,
  pgOf,
  pollUntil,
  restartOrStart,
  sshPreflight,
  syncCaCopy,
  type HaContext,
} from './ha.js';
import { isIpLiteral, manifestDifferences } from '@pe-stack/pe-host';

export interface StandbyOptions {
  /** Synchronous replication: every commit waits for the standby (RPO 0), commits are slower. */
  synchronous?: boolean;
}

function standbyNode(inv: Inventory, name: string): InventoryNode {
  const s = master(inv, name);
  if (s.role !== 'secondary')
    throw new FailoverError('E_USAGE', `${name} is the ${s.role}; only a secondary becomes the standby.`);
  return s;
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
export async function standbyFlow(c: HaContext, name: string, opts: StandbyOptions = {}): Promise<Flow> {
  const inv = c.inventory;
  const layout = inv.layout;
  const s = standbyNode(inv, name);
  const p = inv.primary;
  const sync = Boolean(opts.synchronous);
  if (readState(inv).fenced.some((f) => f.host === s.name))
    throw new FailoverError('E_USAGE', `${s.name} was fenced by a failover; run pe-cluster rejoin ${s.name} first.`);
  const other = readState(inv).standby;
  if (other && other.host !== s.name)
    throw new FailoverError('E_USAGE', `${other.host} is the standby already; one standby at a time.`, {
      hint: 'Fail over to it, or remove it from the state file first.',
    });

  const replicaOpts = async (ctx: StepContext) => ({
    name: s.name,
    primaryAddress: await addressOf(ctx.hostFor(s.name), p),
    standbyAddress: await addressOf(ctx.hostFor(p.name), s),
    synchronous: sync,
  });
  const P = (ctx: StepContext) => pgOf(c, p.name, ctx.hostFor(p.name));
  const S = (ctx: StepContext) => pgOf(c, s.name, ctx.hostFor(s.name));

  const steps: Step[] = [];
  steps.push({
    id: 'standby.replica',
    host: s.name,
    title: `PostgreSQL on ${s.name}: a ${sync ? 'synchronous' : 'asynchronous'} streaming replica of ${p.name}'s`,
    check: async (ctx) =>
      (await replicaStreaming(P(ctx), s.name, { synchronous: sync }))
        ? { done: true, why: `${s.name} streams from ${p.name}${sync ? ' (sync)' : ''}` }
        : { done: false, why: `${s.name} does not stream from ${p.name}${sync ? ' synchronously' : ''}` },
    apply: async (ctx) => {
      // a plan shows the step as to do (the check's reason); the operation itself waits on servers, so it is not simulated
      if (ctx.dryRun) return;
      const primary = P(ctx);
      if (await replicaStreaming(primary, s.name)) {
        // already a replica (e.g. after rejoin): only its synchronous mode changes
        await setSynchronous(primary, sync ? [s.name] : []);
        if (!ctx.dryRun) await waitFor(() => replicaStreaming(primary, s.name, { synchronous: sync }), 30_000, 100);
        return;
      }
      await buildReplica(primary, S(ctx), await replicaOpts(ctx));
    },
  });
  // pg_hba on the standby for every master's services: after promotion PuppetDB everywhere connects without a PostgreSQL restart
  const grantsFor = async (ctx: StepContext) => {
    const creds = await readCredentials(ctx.hostFor(p.name), dbFilesFromLayout(layout));
    for (const cr of creds) ctx.redactor.add(cr.password);
    const grants = [
      ...new Map(creds.map((cr) => [`${cr.database}/${cr.user}`, { database: cr.database, user: cr.user }])).values(),
    ];
    const addresses = [...new Set(await Promise.all(inv.masters.map((m) => addressOf(ctx.hostFor(p.name), m))))];
    return { grants, addresses };
  };
  // listen on the standby's own address (as buildReplica does on the primary); '*' when the inventory gives none
  const own = s.ssh.address && isIpLiteral(s.ssh.address) ? s.ssh.address : '*';
  steps.push({
    id: 'standby.db-access',
    host: s.name,
    title: `pg_hba on ${s.name} admits every master's services (in effect after promotion)`,
    check: async (ctx) => {
      const g = await grantsFor(ctx);
      const missing: string[] = [];
      // listen_addresses too: a run stopped between the pg_hba write and the restart is still to do
      for (const a of g.addresses) if (!(await accessGranted(S(ctx), a, g.grants, { listen: own }))) missing.push(a);
      return missing.length
        ? { done: false, why: `no pg_hba record for ${missing.join(', ')}, or not listening on ${own}` }
        : { done: true, why: `admits ${g.addresses.join(', ')}` };
    },
    apply: async (ctx) => {
      const g = await grantsFor(ctx);
      for (const a of g.addresses) await grantAccess(S(ctx), a, g.grants, { restart: true, listen: own });
    },
  });
  if (layout.files.authConf) {
    const auth = fileOf(layout, 'authConf').path;
    steps.push({
      id: 'standby.ca-admin',
      host: s.name,
      title: `auth.conf on ${s.name} lets its own certificate use the CA admin endpoints (pp_cli_auth rules)`,
      check: (ctx) => probe(ctx, (h) => grantCaAdmin(h.host, auth, s.name, { sudo: s.sudo })),
      apply: async (ctx) => {
        await grantCaAdmin(ctx.host, auth, s.name, { sudo: s.sudo });
      },
    });
  }
  steps.push({
    id: 'standby.record',
    host: s.name,
    title: `record ${s.name} as the standby (controller state)`,
    check: () => {
      const st = readState(inv).standby;
      return Promise.resolve(
        st?.host === s.name && st.synchronous === sync
          ? { done: true, why: 'recorded' }
          : { done: false, why: 'not recorded yet' },
      );
    },
    apply: (ctx) => {
      if (!ctx.dryRun) {
        updateState(inv, (st) => {
          st.standby = {
            ...(st.standby?.host === s.name ? st.standby : {}),
            host: s.name,
            synchronous: sync,
            since: st.standby?.host === s.name ? st.standby.since : new Date().toISOString(),
          };
        });
      }
      return Promise.resolve();
    },
  });
  steps.push(caCopyStep(inv, p, s));
  const autosign = autosignStep(inv, p, s);
  if (autosign) steps.push(autosign);
  const gated = caGatedStep(inv, s);
  if (gated) steps.push(gated);
  // the boot-time guard on every master: a former primary that boots after a failover finds the active CA and
  // fences itself (CA off, PostgreSQL in recovery) until rejoin
  const guard = guardInstallGroup(inv, { gate: CA_GATE.name });
  return {
    name: 'standby',
    items: [{ group: 'preflight', lanes: sshPreflight([p, s]).map((x) => [x]) }, ...steps, guard],
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
export function caGatedStep(inv: Inventory, s: InventoryNode): Step | undefined {
  const layout = inv.layout;
  const gate = caGateEdits(inv, true);
  if (gate.length === 0) return undefined;
  const edits = [...gate, ...caEdits(inv, true, s.name)];
  return {
    id: 'standby.ca-gated',
    host: s.name,
    title: `its puppetserver runs the CA copy gated (auth.conf denies every CA request but the CA certificate and CRL): failover lifts the gate with a reload`,
    check: async (ctx) => {
      const files = await probe(ctx, (h) => applyEdits(h.host, edits, { sudo: s.sudo }));
      if (!files.done) return files;
      const serving = await caServing(ctx.host, layout, s.sudo);
      if (serving === 'signing')
        throw new FailoverError(
          'E_TWO_CAS',
          `the CA copy on ${s.name} signs although its files gate it; stop its puppetserver now.`,
          { host: s.name },
        );
      if (serving === undefined)
        return { done: true, why: 'gated in its files; puppetserver does not run here (it starts gated)' };
      return serving === 'gated'
        ? { done: true, why: 'the CA answers, gated' }
        : {
            done: false,
            why:
              serving === 'off'
                ? 'puppetserver runs without its CA service'
                : 'puppetserver does not answer as a gated CA',
          };
    },
    apply: async (ctx) => {
      if ((await caTree(ctx.host, layout, s.sudo)).size === 0)
        throw new FailoverError(
          'E_CA_MISSING',
          `${s.name} holds no CA copy; not enabling its CA service (puppetserver would create a new CA).`,
          { host: s.name },
        );
      // the gate first: the CA service never runs ungated on the standby
      await applyEdits(ctx.host, gate, { sudo: s.sudo });
      await applyEdits(ctx.host, caEdits(inv, true, s.name), { sudo: s.sudo });
      await restartOrStart(ctx.host, layout, layout.services.puppetserver, s.sudo);
      if (ctx.dryRun) return;
      const v = await pollUntil(
        async () => {
          const x = await caServing(ctx.host, layout, s.sudo);
          return x === undefined ? undefined : x === 'gated';
        },
        300_000,
        1000,
      );
      if (v === false)
        throw new FailoverError(
          'E_CA_SERVICE',
          `puppetserver on ${s.name} does not serve its CA copy gated after a restart.`,
          { host: s.name, hint: 'Read its log (services.d/ca.cfg, auth.conf, cadir permissions).' },
        );
    },
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
export function autosignStep(inv: Inventory, p: InventoryNode, s: InventoryNode): Step | undefined {
  if (!inv.layout.files.autosignConf) return undefined;
  const path = fileOf(inv.layout, 'autosignConf').path;
  return ensureStep(
    'standby.autosign',
    s.name,
    `${p.name}'s autosign.conf entries on ${s.name} (the CA's signing policy follows it)`,
    async (h) => {
      const from = h.hostFor(p.name);
      if (!(await from.exists(path, { sudo: p.sudo }))) return;
      const entries = parseLineList((await from.readFile(path, { sudo: p.sudo })).toString('utf8'), path).entries();
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
        { sudo: s.sudo },
      );
    },
  );
}

/** The standby's CA copy equals the primary's CA directory (sha256 of every file); apply pushes a verified copy. */
export function caCopyStep(inv: Inventory, p: InventoryNode, s: InventoryNode): Step {
  return {
    id: 'standby.ca-copy',
    host: s.name,
    title: `a verified copy of ${p.name}'s CA on ${s.name}`,
    check: async (ctx) => {
      const [a, b] = await Promise.all([
        caTree(ctx.hostFor(p.name), inv.layout, p.sudo),
        caTree(ctx.host, inv.layout, s.sudo),
      ]);
      if (a.size === 0)
        throw new FailoverError('E_CA_MISSING', `${p.name} holds no CA in ${inv.layout.dirs.cadir}.`, { host: p.name });
      const diff = manifestDifferences(a, b);
      if (diff.length)
        return {
          done: false,
          why: `the copy differs: ${diff.slice(0, 3).join(', ')}${diff.length > 3 ? ` and ${diff.length - 3} more` : ''}`,
        };
      const st = readState(inv).standby;
      if (st?.host === s.name && !st.caSync && !ctx.dryRun)
        updateState(
          inv,
          (x) =>
            x.standby &&
            (x.standby.caSync = {
              at: new Date().toISOString(),
              archive: '(found in place)',
              archiveSha256: '',
              files: Object.fromEntries(a),
            }),
        );
      return { done: true, why: `${a.size} files identical` };
    },
    apply: async (ctx) => {
      if (ctx.dryRun) {
        await ctx.host.exec(['true', `(would push a verified CA copy from ${p.name})`]);
        return;
      }
      await syncCaCopy(inv, ctx.hostFor(p.name), p.sudo, ctx.host, s.sudo);
    },
  };
}

/**
 * Keeps the standby's CA copy current: every `intervalS` the primary's CA
 * directory is compared with the copy (sha256 of every file: signed/,
 * inventory.txt, the CRL, serial) and a verified copy is pushed when they
 * differ. Runs until the signal aborts. Returns the number of pushes.
 */
export async function watchCaCopy(
  c: HaContext,
  name: string,
  opts: {
    intervalS?: number;
    signal?: AbortSignal;
    onSync?: (r: { at: string; files: number; ms: number }) => void;
  } = {},
): Promise<number> {
  const inv = c.inventory;
  const s = standbyNode(inv, name);
  const p = inv.primary;
  let pushes = 0;
  const hp: Host = c.host(p.name);
  const hs: Host = c.host(s.name);
  while (!opts.signal?.aborted) {
    const r = await syncCaCopy(inv, hp, p.sudo, hs, s.sudo);
    if (r.changed) {
      pushes++;
      opts.onSync?.({ at: new Date().toISOString(), files: r.files, ms: r.ms });
    }
    await new Promise<void>((res) => {
      const t = setTimeout(res, (opts.intervalS ?? 10) * 1000);
      opts.signal?.addEventListener('abort', () => (clearTimeout(t), res()), { once: true });
    });
  }
  return pushes;
}
