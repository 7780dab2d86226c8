import { applyEdits, fileOf, type Edit, type Layout } from '@pe-stack/pe-config-files';
import { grantCaAdmin, restoreCa, verifyCaArchive } from '@pe-stack/pe-certs';
import {
  asDbUser,
  checkFromHost,
  dbFilesFromLayout,
  fence,
  isInRecovery,
  isRunning,
  pointServicesAt,
  promote,
  queryOne,
  quoteLiteral,
  readFenceMarker,
  waitCaughtUp,
  waitFor,
  type FenceRegistry,
  type PgInstance,
} from '@pe-stack/pe-db';
import { manifestDifferences, pollUntil, type Host } from '@pe-stack/pe-host';
import { debianSyncSteps, readSecrets, type McoCluster } from '@pe-stack/pe-mcollective';
import { probe, type CheckResult, type Flow, type Step, type StepContext } from '@pe-stack/pe-steps';
import type { Inventory, InventoryNode } from '../inventory.js';
import { assertResolved, verifyResolution } from '../dns/index.js';
import { fenceRegistry, readState, updateState, type FailoverDecision } from '../state.js';
import {
  caCopyVerified,
  caOffEdits,
  caOnEdits,
  caServing,
  caTree,
  copyCrl,
  gateCaEdits,
  liftCaGateEdits,
  syncCaCopy,
} from './ca-switch.js';
import {
  addressOf,
  credentialsOf,
  dnsOf,
  master,
  pgOf,
  reachable,
  remoteOf,
  sshPreflight,
  type HaContext,
  type Remote,
} from './cluster-access.js';
import { DataLossRiskError, FailoverError, UsageError } from '../errors.js';
import { filebucketEdits } from './secondary-settings.js';
import { group } from './step-kinds.js';
import { editAndReload, puppetdbAnswers, reload, restart, restartOrStart } from './services.js';

export interface FailoverOptions {
  /** The secondary that becomes primary (the standby). */
  to: string;
  /** Emergency failover of an asynchronous standby: go ahead although committed transactions may be lost. */
  acceptDataLoss?: boolean;
  /** Take the CA over from this backup (pe-certs CA archive with its manifest) instead of the standby's synced copy. */
  caBackup?: string;
  /** How long the old primary gets to answer before it counts as dead (default 5 s). */
  reachTimeoutMs?: number;
}

/** Planned: the old primary answers and is drained. Emergency: it does not answer and is fenced on the controller. */
type FailoverMode = FailoverDecision['mode'];

/** What every step of one failover shares, settled when the flow is built. */
interface Failover {
  readonly cluster: HaContext;
  readonly inv: Inventory;
  readonly layout: Layout;
  readonly options: FailoverOptions;
  /** The standby that becomes the primary. */
  readonly newPrimary: InventoryNode;
  /** The primary it replaces (the recorded decision's, when a failover is resumed). */
  readonly oldPrimary: InventoryNode;
  readonly mode: FailoverMode;
  /** The other masters that answered: they follow the new primary. */
  readonly followers: InventoryNode[];
  /** The other masters that did not answer (named in the decision: fix them before they serve). */
  readonly unreachable: string[];
  readonly registry: FenceRegistry;
  /** The edits that gate and disable the old primary's CA. */
  readonly oldCaOff: Edit[];
}

/**
 * `failover --to HOST`. The mode follows from the old primary: reachable
 * (within reachTimeoutMs) is a planned switchover, otherwise an emergency
 * failover. The decision is recorded in the cluster state by the first step,
 * so `--resume` continues the same failover even when the old primary's
 * reachability has changed since.
 *
 * Order, so that two CAs never sign: the old primary's CA is disabled (or,
 * unreachable, the fence is recorded) before the new one is enabled.
 * Planned: old CA off (reload), a final verified CA copy, old PostgreSQL
 * drained (standby caught up), fenced (marker, standby.signal, stopped), and
 * the standby proven to have received the old primary's shutdown checkpoint:
 * zero data loss. Emergency: refused unless the standby is synchronous or
 * --accept-data-loss; the CA comes from the standby's verified copy (or a
 * named backup). Then: promote, move primary_cname (verified on every
 * reachable master), enable the CA with a reload (no JVM cold start), commit
 * the new roles to the state, point every other secondary at primary_cname
 * and give it the new CA's CRL, and prove the database answers through
 * primary_cname from every master.
 */
export async function failoverFlow(cluster: HaContext, options: FailoverOptions): Promise<Flow> {
  const failover = await settleFailover(cluster, options);
  const { newPrimary, oldPrimary, mode, followers } = failover;
  const contacted = mode === 'planned' ? [newPrimary, oldPrimary] : [newPrimary];
  const items: Flow['items'] = [
    group(
      'preflight',
      sshPreflight(contacted).map((x) => [x]),
    ),
    // the decision, recorded before anything changes
    decisionRecorded(failover),
    // the old primary fenced (first its CA)
    ...(mode === 'planned' ? oldPrimaryRetired(failover) : oldPrimaryWrittenOff(failover)),
    // the new primary: promotion, DNS and the CA at once (independent; the old CA is off or fenced)
    group('takeover', [[databasePromoted(failover)], [primaryCnameMoved(failover)], [caEnabled(failover)]]),
    rolesRecorded(failover),
    // every master follows
    group(
      'follow',
      [newPrimary, ...followers].map((m) => followSteps(failover, m)),
    ),
    ...(await mcollectiveBrokersFollow(failover)),
  ];
  return { name: 'failover', items };
}

/** Who fails over to whom and how, from the recorded decision when there is one, else from who answers now. */
async function settleFailover(cluster: HaContext, options: FailoverOptions): Promise<Failover> {
  const inv = cluster.inventory;
  const newPrimary = master(inv, options.to);
  const decided = decisionInProgress(inv, newPrimary);
  let oldPrimary: InventoryNode;
  if (decided) oldPrimary = master(inv, decided.from);
  else {
    if (newPrimary.role !== 'secondary') throw new UsageError(`${newPrimary.name} is already the primary.`);
    oldPrimary = inv.primary;
  }
  const reachTimeoutMs = options.reachTimeoutMs ?? 5_000;
  const mode: FailoverMode =
    decided?.mode ?? ((await reachable(cluster.host(oldPrimary.name), reachTimeoutMs)) ? 'planned' : 'emergency');
  const others = inv.masters.filter((m) => m.name !== newPrimary.name && m.name !== oldPrimary.name);
  const answered = await Promise.all(
    others.map(async (m) => ((await reachable(cluster.host(m.name), reachTimeoutMs)) ? m : undefined)),
  );
  const followers = answered.filter((m): m is InventoryNode => m !== undefined);
  return {
    cluster,
    inv,
    layout: inv.layout,
    options,
    newPrimary,
    oldPrimary,
    mode,
    followers,
    unreachable: others.filter((m) => !followers.includes(m)).map((m) => m.name),
    registry: fenceRegistry(inv),
    oldCaOff: [...gateCaEdits(inv), ...caOffEdits(inv, oldPrimary.name)],
  };
}

/** The recorded decision of a failover to this host that `--resume` continues; none for an older failover to it, since failed back. */
function decisionInProgress(inv: Inventory, newPrimary: InventoryNode): FailoverDecision | undefined {
  const recorded = readState(inv).failover;
  if (!recorded || recorded.to !== newPrimary.name) return undefined;
  if (recorded.completedAt && inv.primary.name !== newPrimary.name) return undefined;
  return recorded;
}

function newPrimaryDb(failover: Failover, ctx: StepContext): PgInstance {
  return pgOf(failover.cluster, failover.newPrimary.name, ctx.hostFor(failover.newPrimary.name));
}

function oldPrimaryDb(failover: Failover, ctx: StepContext): PgInstance {
  return pgOf(failover.cluster, failover.oldPrimary.name, ctx.hostFor(failover.oldPrimary.name));
}

// ---- the decision ----

function decisionRecorded(failover: Failover): Step {
  const { inv, newPrimary, oldPrimary, mode, options } = failover;
  return {
    id: 'failover.decide',
    host: newPrimary.name,
    title: `decide: ${mode} failover from ${oldPrimary.name} to ${newPrimary.name}`,
    check: () => {
      const d = readState(inv).failover;
      return Promise.resolve(
        d && d.to === newPrimary.name && d.from === oldPrimary.name && d.mode === mode
          ? { done: true, why: `decided at ${d.decidedAt}: ${d.why}` }
          : { done: false, why: 'not decided yet' },
      );
    },
    apply: async (ctx) => {
      let why = await whyNoDataIsLost(failover, ctx);
      if (mode === 'emergency' && !options.caBackup) why += `; ${await standbyCaCopyUsable(failover, ctx)}`;
      if (options.caBackup) await verifyCaArchive(options.caBackup);
      if (failover.unreachable.length)
        why += `; unreachable now (fix before they serve): ${failover.unreachable.join(', ')}`;
      if (ctx.dryRun) return;
      updateState(inv, (s) => {
        s.failover = {
          from: oldPrimary.name,
          to: newPrimary.name,
          mode,
          decidedAt: new Date().toISOString(),
          acceptDataLoss: Boolean(options.acceptDataLoss),
          why,
          ...(options.caBackup ? { caBackup: options.caBackup } : {}),
        };
      });
    },
  };
}

/** Why no committed transaction is lost (or that the loss is accepted); refuses the failover when neither holds. */
async function whyNoDataIsLost(failover: Failover, ctx: StepContext): Promise<string> {
  const { newPrimary, oldPrimary } = failover;
  const db = newPrimaryDb(failover, ctx);
  if (!(await isRunning(db)))
    throw new FailoverError('E_DB_REPLICATION', `PostgreSQL on ${newPrimary.name} is not running.`, {
      host: newPrimary.name,
    });
  const standby = readState(failover.inv).standby;
  const synchronous = standby?.host === newPrimary.name && standby.synchronous;
  if (!(await isInRecovery(db))) return `${newPrimary.name}'s PostgreSQL is already primary`;
  if (failover.mode === 'planned')
    return 'planned switchover: the old primary is drained and its last WAL proven on the standby';
  if (synchronous) return 'emergency: the standby was synchronous, every committed transaction is on it';
  if (failover.options.acceptDataLoss)
    return 'emergency with an asynchronous standby: data loss accepted (--accept-data-loss)';
  throw new DataLossRiskError(
    newPrimary.name,
    `${oldPrimary.name} is unreachable and ${newPrimary.name} is ${standby?.host === newPrimary.name ? 'an asynchronous' : 'not a recorded'} standby: transactions committed on ${oldPrimary.name} after the standby's last receipt would be lost. Nothing was changed.`,
  );
}

/** The standby's CA copy is the last verified copy (an emergency takes the CA over from it); refuses otherwise. */
async function standbyCaCopyUsable(failover: Failover, ctx: StepContext): Promise<string> {
  const v = await caCopyVerified(failover.inv, remoteOf(ctx.host, failover.newPrimary));
  if (!v.ok)
    throw new FailoverError('E_CA_COPY', `${v.why}; the CA cannot be taken over from it.`, {
      host: failover.newPrimary.name,
      hint: 'Name a verified CA backup with --ca-backup ARCHIVE.',
    });
  return v.why;
}

// ---- planned: the old primary answers ----

/** Its CA gated and disabled, a final CA copy taken, its PostgreSQL drained, fenced and stopped. */
function oldPrimaryRetired(failover: Failover): Step[] {
  return [oldCaDisabled(failover), finalCaCopy(failover), oldDatabaseFenced(failover)];
}

function oldCaDisabled(failover: Failover): Step {
  const { inv, layout, oldPrimary, oldCaOff } = failover;
  return {
    id: 'old.ca-disabled',
    host: oldPrimary.name,
    title: `the CA on ${oldPrimary.name} gated and disabled (reload): it signs nothing from now on`,
    check: async (ctx) => {
      const files = await probe(ctx, (h) => applyEdits(h.host, oldCaOff, { sudo: oldPrimary.sudo }));
      if (!files.done) return files;
      return (await caServing(remoteOf(ctx.host, oldPrimary), layout)) === 'signing'
        ? { done: false, why: 'its puppetserver still signs' }
        : { done: true, why: 'its CA signs nothing' };
    },
    apply: async (ctx) => {
      // a reload re-reads auth.conf (the gate: signing stops now), not services.d (the CA service goes at its next restart)
      const old = remoteOf(ctx.host, oldPrimary);
      const changed = await editAndReload(old, inv, oldCaOff);
      if (!changed && (await caServing(old, layout)) === 'signing')
        await reload(old, layout, layout.services.puppetserver);
    },
  };
}

function finalCaCopy(failover: Failover): Step {
  const { inv, newPrimary, oldPrimary } = failover;
  return {
    id: 'old.ca-final-copy',
    host: newPrimary.name,
    title: `a final verified copy of the CA from ${oldPrimary.name} to ${newPrimary.name}`,
    check: (ctx) => finalCaCopyState(failover, ctx),
    apply: async (ctx) => {
      if (ctx.dryRun)
        return void (await ctx.host.exec(['true', `(would push a verified CA copy from ${oldPrimary.name})`]));
      updateState(inv, (s) => {
        s.standby = {
          ...(s.standby ?? { synchronous: false, since: new Date().toISOString() }),
          host: newPrimary.name,
        };
      });
      await syncCaCopy(inv, remoteOf(ctx.hostFor(oldPrimary.name), oldPrimary), remoteOf(ctx.host, newPrimary));
    },
  };
}

async function finalCaCopyState(failover: Failover, ctx: StepContext): Promise<CheckResult> {
  const { inv, layout, newPrimary, oldPrimary } = failover;
  // once the new CA is enabled it signs: the old copy must never be pushed over it again
  if (readState(inv).primary === newPrimary.name)
    return { done: true, why: `${newPrimary.name} is the primary: its CA is the CA` };
  if ((await probe(ctx, (h) => applyEdits(h.host, caOnEdits(inv, newPrimary.name), { sudo: newPrimary.sudo }))).done)
    return { done: true, why: `the CA on ${newPrimary.name} is enabled already` };
  const [original, copy] = await Promise.all([
    caTree(remoteOf(ctx.hostFor(oldPrimary.name), oldPrimary), layout),
    caTree(remoteOf(ctx.host, newPrimary), layout),
  ]);
  if (original.size === 0) {
    // the old CA directory is gone (a resumed run after the swap): the copy on the new primary is what counts
    const v = await caCopyVerified(inv, remoteOf(ctx.host, newPrimary));
    return v.ok ? { done: true, why: v.why } : { done: false, why: `${oldPrimary.name} holds no CA; ${v.why}` };
  }
  const d = manifestDifferences(original, copy);
  return d.length
    ? { done: false, why: `the copy differs: ${d.slice(0, 3).join(', ')}` }
    : { done: true, why: `${original.size} files identical` };
}

function oldDatabaseFenced(failover: Failover): Step {
  const { newPrimary, oldPrimary } = failover;
  return {
    id: 'old.db-fenced',
    host: oldPrimary.name,
    title: `PostgreSQL on ${oldPrimary.name} drained, fenced (marker, standby.signal) and stopped; ${newPrimary.name} proven to hold its last WAL`,
    check: (ctx) => oldDatabaseFenceState(failover, ctx),
    apply: async (ctx) => {
      // a plan shows the step as to do (the check's reason); the operation itself waits on servers, so it is not simulated
      if (ctx.dryRun) return;
      const oldDb = oldPrimaryDb(failover, ctx);
      const standbyDb = newPrimaryDb(failover, ctx);
      if (await isRunning(oldDb)) {
        const caught = await waitCaughtUp(oldDb, newPrimary.name, 60_000);
        if (!caught.ok && !failover.options.acceptDataLoss)
          throw new DataLossRiskError(
            newPrimary.name,
            `${newPrimary.name} did not catch up with ${oldPrimary.name} within 60 s; ${oldPrimary.name} was left running (its CA is disabled).`,
          );
      }
      await fence(
        oldDb,
        { newPrimary: newPrimary.name, reason: `planned switchover to ${newPrimary.name}` },
        failover.registry,
      );
      const lsn = await shutdownCheckpointLsn(oldDb);
      const got = await waitFor(() => receivedWalUpTo(standbyDb, lsn), 30_000, 50);
      if (!got.ok && !failover.options.acceptDataLoss)
        throw new DataLossRiskError(
          newPrimary.name,
          `${newPrimary.name} has not received ${oldPrimary.name}'s WAL up to its shutdown checkpoint ${lsn}; not promoting (${oldPrimary.name} is fenced and stopped).`,
        );
    },
  };
}

async function oldDatabaseFenceState(failover: Failover, ctx: StepContext): Promise<CheckResult> {
  const { newPrimary } = failover;
  const oldDb = oldPrimaryDb(failover, ctx);
  const marker = await readFenceMarker(oldDb);
  if (!marker || marker.newPrimary !== newPrimary.name) return { done: false, why: 'not fenced' };
  if (await isRunning(oldDb)) return { done: false, why: 'fenced but running' };
  const lsn = await shutdownCheckpointLsn(oldDb);
  const standbyDb = newPrimaryDb(failover, ctx);
  if (!(await isInRecovery(standbyDb)))
    return { done: true, why: `fenced and stopped at ${lsn}; ${newPrimary.name} already promoted` };
  return (await receivedWalUpTo(standbyDb, lsn))
    ? { done: true, why: `fenced and stopped; ${newPrimary.name} received WAL past the shutdown checkpoint ${lsn}` }
    : { done: false, why: `${newPrimary.name} has not received WAL up to ${lsn}` };
}

/** The last checkpoint of a stopped server (its shutdown checkpoint), from pg_controldata. */
async function shutdownCheckpointLsn(pg: PgInstance): Promise<string> {
  const r = await pg.host.exec(asDbUser(pg, [`${pg.binDir}/pg_controldata`, '-D', pg.dataDir]), {
    sudo: true,
    cwd: '/',
    readOnly: true,
    env: { LC_ALL: 'C' },
  });
  const m = /^Latest checkpoint location:\s+([0-9A-F]+\/[0-9A-F]+)$/m.exec(r.stdout);
  if (!m)
    throw new FailoverError('E_DB_QUERY', `pg_controldata on ${pg.host.name} gave no checkpoint location.`, {
      host: pg.host.name,
    });
  return m[1]!;
}

/** The standby has received WAL up to `lsn`. */
async function receivedWalUpTo(standbyDb: PgInstance, lsn: string): Promise<boolean> {
  const r = await queryOne<{ ok: boolean }>(
    standbyDb,
    `SELECT coalesce(pg_last_wal_receive_lsn() >= ${quoteLiteral(lsn)}::pg_lsn, false) AS ok`,
  );
  return r.ok;
}

// ---- emergency: the old primary does not answer ----

/** Its fence recorded on the controller; the CA taken from a named backup or the standby's verified copy. */
function oldPrimaryWrittenOff(failover: Failover): Step[] {
  const archive = failover.options.caBackup;
  return [oldFenceRecorded(failover), archive ? caFromBackup(failover, archive) : caCopyIsLastVerified(failover)];
}

function oldFenceRecorded(failover: Failover): Step {
  const { cluster, newPrimary, oldPrimary, registry } = failover;
  return {
    id: 'old.fence-recorded',
    host: newPrimary.name,
    title: `${oldPrimary.name} is unreachable: its fence is recorded on the controller (rejoin required before it serves)`,
    check: async () =>
      (await registry.list()).some((r) => r.host === oldPrimary.name && r.newPrimary === newPrimary.name)
        ? { done: true, why: 'recorded' }
        : { done: false, why: 'not recorded' },
    apply: async (ctx) => {
      if (ctx.dryRun) return;
      const oldDb = pgOf(cluster, oldPrimary.name, cluster.host(oldPrimary.name));
      await registry.record({
        host: oldPrimary.name,
        dataDir: oldDb.dataDir,
        at: new Date().toISOString(),
        newPrimary: newPrimary.name,
        how: 'unreachable',
        reason: `emergency failover to ${newPrimary.name}`,
      });
    },
  };
}

function caFromBackup(failover: Failover, archive: string): Step {
  const { layout, newPrimary } = failover;
  return {
    id: 'ca-from-backup',
    host: newPrimary.name,
    title: `the CA restored on ${newPrimary.name} from the verified backup ${archive}`,
    check: async (ctx) => {
      const man = await verifyCaArchive(archive);
      const d = manifestDifferences(
        new Map(Object.entries(man.files)),
        await caTree(remoteOf(ctx.host, newPrimary), layout),
      );
      return d.length
        ? { done: false, why: `differs: ${d.slice(0, 3).join(', ')}` }
        : { done: true, why: 'identical to the backup' };
    },
    apply: async (ctx) => {
      await restoreCa(archive, ctx.host, layout.dirs.cadir, { sudo: newPrimary.sudo, force: true });
    },
  };
}

function caCopyIsLastVerified(failover: Failover): Step {
  const { newPrimary } = failover;
  return {
    id: 'ca-copy-verified',
    host: newPrimary.name,
    title: `the CA copy on ${newPrimary.name} is the last verified copy`,
    check: async (ctx) => {
      const v = await caCopyVerified(failover.inv, remoteOf(ctx.host, newPrimary));
      return { done: v.ok, why: v.why };
    },
    apply: async () => {
      throw new FailoverError(
        'E_CA_COPY',
        `the CA copy on ${newPrimary.name} cannot be verified; nothing further was changed.`,
        { host: newPrimary.name, hint: 'Name a verified CA backup with --ca-backup ARCHIVE.' },
      );
    },
  };
}

// ---- the takeover ----

function databasePromoted(failover: Failover): Step {
  return {
    id: 'db-promote',
    host: failover.newPrimary.name,
    title: `promote PostgreSQL on ${failover.newPrimary.name}`,
    check: async (ctx) =>
      (await isInRecovery(newPrimaryDb(failover, ctx)))
        ? { done: false, why: 'in recovery (a standby)' }
        : { done: true, why: 'accepts writes' },
    apply: async (ctx) => {
      if (ctx.dryRun) return void (await ctx.host.exec(newPrimaryDb(failover, ctx).control.promote, { sudo: true }));
      await promote(newPrimaryDb(failover, ctx));
    },
  };
}

function primaryCnameMoved(failover: Failover): Step {
  const { cluster, inv, newPrimary, oldPrimary, mode } = failover;
  const verifyOn = (ctx: StepContext) => [
    ctx.hostFor(newPrimary.name),
    ...failover.followers.map((m) => ctx.hostFor(m.name)),
  ];
  return {
    id: 'dns-move',
    host: newPrimary.name,
    title: `${inv.primaryCname} -> ${newPrimary.name} (${inv.dns.provider}), verified on every reachable master`,
    check: async (ctx) => {
      const addr = await addressOf(ctx.host, newPrimary);
      const rows = await verifyResolution(verifyOn(ctx), inv.primaryCname, addr, { timeoutMs: 0 });
      const bad = rows.filter((r) => !r.ok);
      return bad.length
        ? {
            done: false,
            why: `${inv.primaryCname} resolves elsewhere on ${bad.map((r) => `${r.host} (${r.addresses.join(', ') || 'nothing'})`).join(', ')}`,
          }
        : { done: true, why: `${inv.primaryCname} is ${addr} on ${rows.length} masters` };
    },
    apply: async (ctx) => {
      const addr = await addressOf(ctx.host, newPrimary);
      // nsupdate and hooks run on the controller, outside the plan's hosts: a plan does not call the provider
      if (ctx.dryRun) return;
      // a power-cut old primary is not waited for (rejoin fixes its own entry)
      await dnsOf(cluster, ctx.hostFor).set(inv.primaryCname, addr, {
        exclude: mode === 'emergency' ? [oldPrimary.name] : [],
      });
      assertResolved(
        await verifyResolution(verifyOn(ctx), inv.primaryCname, addr, { timeoutMs: 30_000 }),
        inv.primaryCname,
        addr,
      );
    },
  };
}

function caEnabled(failover: Failover): Step {
  const { layout, newPrimary } = failover;
  const enableCa = caEnabler(failover);
  return {
    id: 'ca-enabled',
    host: newPrimary.name,
    title: `the CA enabled on ${newPrimary.name} (the standby's gate lifted with a reload; a restart only where its CA service was off)`,
    check: async (ctx) => {
      await assertNoOtherCa(failover, ctx);
      if ((await caTree(remoteOf(ctx.host, newPrimary), layout)).size === 0)
        throw new FailoverError('E_CA_MISSING', `${newPrimary.name} holds no CA copy.`, { host: newPrimary.name });
      const files = await probe(ctx, async (h) => (await enableCa(h.host)).changed);
      if (!files.done) return files;
      const serving = await caServing(remoteOf(ctx.host, newPrimary), layout);
      return serving === undefined || serving === 'signing'
        ? { done: true, why: serving ? 'the CA signs' : 'CA enabled in the files (puppetserver does not run here)' }
        : { done: false, why: `the CA is enabled in the files but puppetserver answers as ${serving}` };
    },
    apply: async (ctx) => {
      const at = remoteOf(ctx.host, newPrimary);
      const before = ctx.dryRun ? undefined : await caServing(at, layout);
      const e = await enableCa(ctx.host);
      // a reload (HUP) re-reads auth.conf (the gate) but not services.d: a CA service that is not running yet needs
      // a restart (a JVM cold start)
      if (!e.serviceChanged && (before === 'gated' || before === 'signing'))
        await reload(at, layout, layout.services.puppetserver);
      else await restartOrStart(at, layout, layout.services.puppetserver);
      if (ctx.dryRun) return;
      await waitUntilCaSigns(failover, at, e.serviceChanged ? 'restart' : 'reload');
    },
  };
}

/** Two CAs never sign: the old CA must be gated and disabled (planned) or its host fenced (emergency) first. */
async function assertNoOtherCa(failover: Failover, ctx: StepContext): Promise<void> {
  const { oldPrimary, newPrimary } = failover;
  if (failover.mode === 'planned') {
    const probeOld = await probe(ctx, (h) =>
      applyEdits(h.hostFor(oldPrimary.name), failover.oldCaOff, { sudo: oldPrimary.sudo }),
    );
    if (!probeOld.done)
      throw new FailoverError(
        'E_TWO_CAS',
        `the CA on ${oldPrimary.name} is not gated and disabled (${probeOld.why}); not enabling a second CA.`,
        { host: newPrimary.name },
      );
  } else if (!(await failover.registry.list()).some((r) => r.host === oldPrimary.name)) {
    throw new FailoverError('E_TWO_CAS', `${oldPrimary.name} is not fenced; not enabling a second CA.`, {
      host: newPrimary.name,
    });
  }
}

/** Applies the files that make the new primary the CA; tells whether the CA service itself (services.d, or pe3's puppet.conf) changed. */
function caEnabler(failover: Failover): (h: Host) => Promise<{ changed: boolean; serviceChanged: boolean }> {
  const { inv, layout, newPrimary } = failover;
  const authConf = layout.files.authConf ? fileOf(layout, 'authConf').path : undefined;
  const caCfg = layout.caDisable.kind === 'services' ? fileOf(layout, 'caCfg').path : undefined;
  return async (h) => {
    const rs = await applyEdits(h, [...liftCaGateEdits(inv), ...caOnEdits(inv, newPrimary.name)], {
      sudo: newPrimary.sudo,
    });
    const admin = authConf
      ? (await grantCaAdmin(h, authConf, newPrimary.name, { sudo: newPrimary.sudo })).changed
      : false;
    const serviceChanged = rs.some(
      (r) => r.changed && (caCfg ? r.path === caCfg : r.path === fileOf(layout, 'puppetConf').path),
    );
    return { changed: admin || rs.some((r) => r.changed), serviceChanged };
  };
}

async function waitUntilCaSigns(failover: Failover, at: Remote, after: 'restart' | 'reload'): Promise<void> {
  const { layout, newPrimary } = failover;
  // undefined: puppetserver cannot be asked here, nothing to wait for
  const signs = await pollUntil(
    async () => {
      const x = await caServing(at, layout);
      return x === undefined ? undefined : x === 'signing';
    },
    { timeoutMs: 300_000, intervalMs: 250 },
  );
  if (!signs.ok)
    throw new FailoverError(
      'E_CA_SERVICE',
      `puppetserver on ${newPrimary.name} does not sign as the CA after a ${after}.`,
      { host: newPrimary.name, hint: 'Read its log (services.d/ca.cfg, auth.conf, cadir permissions).' },
    );
}

function rolesRecorded(failover: Failover): Step {
  const { inv, newPrimary, oldPrimary, mode } = failover;
  return {
    id: 'state.commit',
    host: newPrimary.name,
    title: `record ${newPrimary.name} as the primary and ${oldPrimary.name} as fenced (controller state)`,
    check: () => {
      const s = readState(inv);
      return Promise.resolve(
        s.primary === newPrimary.name && s.fenced.some((x) => x.host === oldPrimary.name) && s.failover?.completedAt
          ? { done: true, why: 'recorded' }
          : { done: false, why: 'not recorded' },
      );
    },
    apply: (ctx) => {
      if (ctx.dryRun) return Promise.resolve();
      updateState(inv, (s) => {
        s.primary = newPrimary.name;
        s.fenced = [
          ...s.fenced.filter((x) => x.host !== oldPrimary.name && x.host !== newPrimary.name),
          {
            host: oldPrimary.name,
            at: new Date().toISOString(),
            how: mode === 'planned' ? 'stopped' : 'unreachable',
            newPrimary: newPrimary.name,
          },
        ];
        if (s.standby?.host === newPrimary.name) s.standby = undefined;
        if (s.failover) s.failover.completedAt = new Date().toISOString();
      });
      return Promise.resolve();
    },
  };
}

// ---- every master follows ----

/** One master's lane: its settings at primary_cname, the new CA's CRL, the database and PuppetDB answering. */
function followSteps(failover: Failover, m: InventoryNode): Step[] {
  return [
    followSettings(failover, m),
    ...(failover.layout.files.hostCrl ? [followCrl(failover, m)] : []),
    followDatabase(failover, m),
    followPuppetdb(failover, m),
  ];
}

function followSettings(failover: Failover, m: InventoryNode): Step {
  const { inv, newPrimary } = failover;
  const files = dbFilesFromLayout(failover.layout);
  const isNewPrimary = m.name === newPrimary.name;
  return {
    id: 'follow.settings',
    host: m.name,
    title: `${isNewPrimary ? '' : 'CA off, ca_server, '}filebucket and database settings at ${inv.primaryCname}`,
    check: (ctx) =>
      probe(
        ctx,
        async (h) => (
          await applyEdits(h.host, await followerEdits(failover, m, h.host), { sudo: m.sudo }),
          await pointServicesAt(h.host, files, inv.primaryCname)
        ),
      ),
    apply: async (ctx) => {
      // site.pp is read per compile: only a CA change needs the reload (and the new primary was reloaded by ca-enabled)
      if (isNewPrimary) await applyEdits(ctx.host, await followerEdits(failover, m, ctx.host), { sudo: m.sudo });
      else await editAndReload(remoteOf(ctx.host, m), inv, await followerEdits(failover, m, ctx.host));
      await pointServicesAt(ctx.host, files, inv.primaryCname);
    },
  };
}

/**
 * The new primary's CA edits are ca-enabled's; every other master: CA off, ca_server = primary_cname. site.pp:
 * only a main filebucket that exists is pointed (a site.pp may have none).
 */
async function followerEdits(failover: Failover, m: InventoryNode, h: Host): Promise<Edit[]> {
  return [
    ...(m.name === failover.newPrimary.name ? [] : caOffEdits(failover.inv, m.name)),
    ...(await filebucketEdits(remoteOf(h, m), failover.inv)),
  ];
}

function followCrl(failover: Failover, m: InventoryNode): Step {
  const { inv, newPrimary } = failover;
  return {
    id: 'follow.crl',
    host: m.name,
    title: `the CRL of the CA on ${newPrimary.name}`,
    check: (ctx) =>
      probe(ctx, (h) => copyCrl(inv, remoteOf(h.hostFor(newPrimary.name), newPrimary), remoteOf(h.host, m))),
    apply: async (ctx) => {
      await copyCrl(inv, remoteOf(ctx.hostFor(newPrimary.name), newPrimary), remoteOf(ctx.host, m));
    },
  };
}

function followDatabase(failover: Failover, m: InventoryNode): Step {
  const { cluster, inv } = failover;
  return {
    id: 'follow.database',
    host: m.name,
    title: `the database answers through ${inv.primaryCname} from ${m.name}`,
    verify: false,
    check: async (ctx) => {
      const creds = await credentialsOf(ctx, inv, ctx.hostFor(failover.newPrimary.name));
      // one deadline for all: resolver caches may still name the old primary for a while
      const deadline = Date.now() + (ctx.dryRun ? 0 : 30_000);
      for (const cr of creds) {
        const connected = await pollUntil(
          async () => {
            await checkFromHost(
              ctx.host,
              { server: inv.primaryCname, port: cr.port, database: cr.database, user: cr.user },
              cr.password,
              { psql: `${pgOf(cluster, m.name, ctx.host).binDir}/psql`, samples: 1 },
            );
            return true;
          },
          { timeoutMs: Math.max(0, deadline - Date.now()), intervalMs: 500, retryErrors: true },
        );
        if (!connected.ok) throw connected.lastError;
      }
      return {
        done: true,
        why: `${creds.map((x) => `${x.database}/${x.user}`).join(', ')} connect through ${inv.primaryCname}`,
      };
    },
    apply: async () => {},
  };
}

/** PuppetDB reaches the database through primary_cname; its pool may hold connections to the dead address: restarted only when it does not answer. */
function followPuppetdb(failover: Failover, m: InventoryNode): Step {
  const { layout } = failover;
  return {
    id: 'follow.puppetdb',
    host: m.name,
    title: `PuppetDB on ${m.name} answers queries (restarted only if it does not)`,
    check: async (ctx) => {
      const at = remoteOf(ctx.host, m);
      const answer = await pollUntil(() => puppetdbAnswers(at, layout), {
        timeoutMs: ctx.dryRun ? 0 : 20_000,
        intervalMs: 1000,
      });
      const ok = answer.ok ? answer.value : false;
      return ok === false
        ? { done: false, why: 'PuppetDB does not answer a query' }
        : { done: true, why: ok === undefined ? 'PuppetDB is not running here' : 'PuppetDB answers' };
    },
    apply: async (ctx) => {
      const at = remoteOf(ctx.host, m);
      await restart(at, layout, layout.services.puppetdb);
      if (!ctx.dryRun) await pollUntil(() => puppetdbAnswers(at, layout), { timeoutMs: 300_000, intervalMs: 1000 });
    },
  };
}

/**
 * MCollective (debian): every broker pool names the masters that serve now (a pool that still names the dead
 * primary leaves MCollective degraded). Only a cluster whose MCollective was set up (by join): a failover never
 * generates or rotates its secrets.
 */
async function mcollectiveBrokersFollow(failover: Failover): Promise<Flow['items']> {
  const { cluster, inv, layout, newPrimary, followers } = failover;
  const serverCfg = layout.files.mcollectiveServerCfg?.path;
  if (
    layout.flavour !== 'debian' ||
    !serverCfg ||
    !(await cluster
      .host(newPrimary.name)
      .exists(serverCfg, { sudo: newPrimary.sudo })
      .catch(() => false))
  )
    return [];
  const mco: McoCluster = {
    primary: { fqdn: newPrimary.name, host: cluster.host(newPrimary.name), layout },
    secondaries: followers.map((m) => ({ fqdn: m.name, host: cluster.host(m.name), layout })),
    sudo: newPrimary.sudo || followers.some((m) => m.sudo),
  };
  const { secrets, generated } = await readSecrets(mco);
  for (const v of [secrets.psk, secrets.password]) inv.redactor.add(v);
  return generated.length === 0 ? debianSyncSteps(mco, secrets) : [];
}
