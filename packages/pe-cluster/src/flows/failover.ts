import { fileOf } from '@pe-stack/pe-config-files';
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
  type PgInstance,
} from '@pe-stack/pe-db';
import { applyEdits, type Edit } from '@pe-stack/pe-config-files';
import { debianSyncSteps, readSecrets, type McoCluster } from '@pe-stack/pe-mcollective';
import type { Flow, Step, StepContext } from '@pe-stack/pe-steps';
import type { InventoryNode } from '../inventory.js';
import { assertResolved, verifyResolution } from '../dns/index.js';
import { fenceRegistry, readState, updateState, type FailoverDecision } from '../state.js';
import { probe } from '@pe-stack/pe-steps';
import {
  addressOf,
  caCopyVerified,
  caEdits,
  caTree,
  copyCrl,
  credentialsOf,
  dnsOf,
  editAndReload,
  FailoverError,
  master,
  pgOf,
  pollUntil,
  puppetdbAnswers,
  caGateEdits,
  caServing,
  reload,
  restart,
  restartOrStart,
  reachable,
  sshPreflight,
  syncCaCopy,
  type HaContext,
} from './ha.js';
import { manifestDifferences, type Host } from '@pe-stack/pe-host';

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

/** A failover would risk losing committed data (or the zero-data-loss proof failed); nothing further was changed. */
export class DataLossRiskError extends FailoverError {
  constructor(host: string, message: string) {
    super('E_DATA_LOSS_RISK', message, {
      host,
      hint: 'Wait for the standby to catch up, or rerun with --accept-data-loss to accept the loss.',
    });
  }
}

async function controlCheckpointLsn(pg: PgInstance): Promise<string> {
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
export async function failoverFlow(c: HaContext, o: FailoverOptions): Promise<Flow> {
  const inv = c.inventory;
  const layout = inv.layout;
  const t = master(inv, o.to);
  const st = readState(inv);
  let decided: FailoverDecision | undefined = st.failover && st.failover.to === t.name ? st.failover : undefined;
  if (decided?.completedAt && inv.primary.name !== t.name) decided = undefined; // an older failover to this host, since failed back
  let old: InventoryNode;
  if (decided) old = master(inv, decided.from);
  else {
    if (t.role !== 'secondary') throw new FailoverError('E_USAGE', `${t.name} is already the primary.`);
    old = inv.primary;
  }
  const mode: 'planned' | 'emergency' =
    decided?.mode ?? ((await reachable(c.host(old.name), o.reachTimeoutMs ?? 5_000)) ? 'planned' : 'emergency');
  const others = inv.masters.filter((m) => m.name !== t.name && m.name !== old.name);
  const up = await Promise.all(
    others.map(async (m) => ((await reachable(c.host(m.name), o.reachTimeoutMs ?? 5_000)) ? m : undefined)),
  );
  const reachableOthers = up.filter((m): m is InventoryNode => m !== undefined);
  const skipped = others.filter((m) => !reachableOthers.includes(m)).map((m) => m.name);
  const registry = fenceRegistry(inv);
  const T = (ctx: StepContext) => pgOf(c, t.name, ctx.hostFor(t.name));
  const O = (ctx: StepContext) => pgOf(c, old.name, ctx.hostFor(old.name));
  const items: Flow['items'] = [];

  items.push({ group: 'preflight', lanes: sshPreflight([t, ...(mode === 'planned' ? [old] : [])]).map((x) => [x]) });

  // ---- the decision, recorded before anything changes ----
  items.push({
    id: 'failover.decide',
    host: t.name,
    title: `decide: ${mode} failover from ${old.name} to ${t.name}`,
    check: () => {
      const f = readState(inv).failover;
      return Promise.resolve(
        f && f.to === t.name && f.from === old.name && f.mode === mode
          ? { done: true, why: `decided at ${f.decidedAt}: ${f.why}` }
          : { done: false, why: 'not decided yet' },
      );
    },
    apply: async (ctx) => {
      const S = T(ctx);
      if (!(await isRunning(S)))
        throw new FailoverError('E_DB_REPLICATION', `PostgreSQL on ${t.name} is not running.`, { host: t.name });
      const standby = readState(inv).standby;
      const synchronous = standby?.host === t.name && standby.synchronous;
      let why: string;
      if (!(await isInRecovery(S))) why = `${t.name}'s PostgreSQL is already primary`;
      else if (mode === 'planned')
        why = 'planned switchover: the old primary is drained and its last WAL proven on the standby';
      else if (synchronous) why = 'emergency: the standby was synchronous, every committed transaction is on it';
      else if (o.acceptDataLoss)
        why = 'emergency with an asynchronous standby: data loss accepted (--accept-data-loss)';
      else
        throw new DataLossRiskError(
          t.name,
          `${old.name} is unreachable and ${t.name} is ${standby?.host === t.name ? 'an asynchronous' : 'not a recorded'} standby: transactions committed on ${old.name} after the standby's last receipt would be lost. Nothing was changed.`,
        );
      if (mode === 'emergency' && !o.caBackup) {
        const v = await caCopyVerified(inv, ctx.host, t.sudo);
        if (!v.ok)
          throw new FailoverError('E_CA_COPY', `${v.why}; the CA cannot be taken over from it.`, {
            host: t.name,
            hint: 'Name a verified CA backup with --ca-backup ARCHIVE.',
          });
        why += `; ${v.why}`;
      }
      if (o.caBackup) await verifyCaArchive(o.caBackup);
      if (skipped.length) why += `; unreachable now (fix before they serve): ${skipped.join(', ')}`;
      if (ctx.dryRun) return;
      updateState(inv, (s) => {
        s.failover = {
          from: old.name,
          to: t.name,
          mode,
          decidedAt: new Date().toISOString(),
          acceptDataLoss: Boolean(o.acceptDataLoss),
          why,
          ...(o.caBackup ? { caBackup: o.caBackup } : {}),
        };
      });
    },
  });

  // ---- the old primary fenced (first its CA) ----
  const oldCaOff = [...caGateEdits(inv, true), ...caEdits(inv, false, old.name)];
  if (mode === 'planned') {
    items.push({
      id: 'old.ca-disabled',
      host: old.name,
      title: `the CA on ${old.name} gated and disabled (reload): it signs nothing from now on`,
      check: async (ctx) => {
        const files = await probe(ctx, (h) => applyEdits(h.host, oldCaOff, { sudo: old.sudo }));
        if (!files.done) return files;
        return (await caServing(ctx.host, layout, old.sudo)) === 'signing'
          ? { done: false, why: 'its puppetserver still signs' }
          : { done: true, why: 'its CA signs nothing' };
      },
      apply: async (ctx) => {
        // a reload re-reads auth.conf (the gate: signing stops now), not services.d (the CA service goes at its next restart)
        const changed = await editAndReload(ctx.host, inv, oldCaOff, old.sudo);
        if (!changed && (await caServing(ctx.host, layout, old.sudo)) === 'signing')
          await reload(ctx.host, layout, layout.services.puppetserver, old.sudo);
      },
    });
    items.push({
      id: 'old.ca-final-copy',
      host: t.name,
      title: `a final verified copy of the CA from ${old.name} to ${t.name}`,
      check: async (ctx) => {
        // once the new CA is enabled it signs: the old copy must never be pushed over it again
        if (readState(inv).primary === t.name) return { done: true, why: `${t.name} is the primary: its CA is the CA` };
        if ((await probe(ctx, (h) => applyEdits(h.host, caEdits(inv, true, t.name), { sudo: t.sudo }))).done)
          return { done: true, why: `the CA on ${t.name} is enabled already` };
        const [a, b] = await Promise.all([
          caTree(ctx.hostFor(old.name), layout, old.sudo),
          caTree(ctx.host, layout, t.sudo),
        ]);
        if (a.size === 0) {
          // the old CA directory is gone (a resumed run after the swap): the copy on the new primary is what counts
          const v = await caCopyVerified(inv, ctx.host, t.sudo);
          return v.ok ? { done: true, why: v.why } : { done: false, why: `${old.name} holds no CA; ${v.why}` };
        }
        const d = manifestDifferences(a, b);
        return d.length
          ? { done: false, why: `the copy differs: ${d.slice(0, 3).join(', ')}` }
          : { done: true, why: `${a.size} files identical` };
      },
      apply: async (ctx) => {
        if (ctx.dryRun) return void (await ctx.host.exec(['true', `(would push a verified CA copy from ${old.name})`]));
        updateState(inv, (s) => {
          s.standby = { ...(s.standby ?? { synchronous: false, since: new Date().toISOString() }), host: t.name };
        });
        await syncCaCopy(inv, ctx.hostFor(old.name), old.sudo, ctx.host, t.sudo);
      },
    });
    items.push({
      id: 'old.db-fenced',
      host: old.name,
      title: `PostgreSQL on ${old.name} drained, fenced (marker, standby.signal) and stopped; ${t.name} proven to hold its last WAL`,
      check: async (ctx) => {
        const P = O(ctx);
        const marker = await readFenceMarker(P);
        if (!marker || marker.newPrimary !== t.name) return { done: false, why: 'not fenced' };
        if (await isRunning(P)) return { done: false, why: 'fenced but running' };
        const lsn = await controlCheckpointLsn(P);
        const S = T(ctx);
        if (!(await isInRecovery(S)))
          return { done: true, why: `fenced and stopped at ${lsn}; ${t.name} already promoted` };
        const r = await queryOne<{ ok: boolean }>(
          S,
          `SELECT coalesce(pg_last_wal_receive_lsn() >= ${quoteLiteral(lsn)}::pg_lsn, false) AS ok`,
        );
        return r.ok
          ? { done: true, why: `fenced and stopped; ${t.name} received WAL past the shutdown checkpoint ${lsn}` }
          : { done: false, why: `${t.name} has not received WAL up to ${lsn}` };
      },
      apply: async (ctx) => {
        // a plan shows the step as to do (the check's reason); the operation itself waits on servers, so it is not simulated
        if (ctx.dryRun) return;
        const P = O(ctx);
        const S = T(ctx);
        if (await isRunning(P)) {
          const caught = await waitCaughtUp(P, t.name, 60_000);
          if (!caught.ok && !o.acceptDataLoss)
            throw new DataLossRiskError(
              t.name,
              `${t.name} did not catch up with ${old.name} within 60 s; ${old.name} was left running (its CA is disabled).`,
            );
        }
        await fence(P, { newPrimary: t.name, reason: `planned switchover to ${t.name}` }, registry);
        if (ctx.dryRun) return;
        const lsn = await controlCheckpointLsn(P);
        const got = await waitFor(
          async () =>
            (
              await queryOne<{ ok: boolean }>(
                S,
                `SELECT coalesce(pg_last_wal_receive_lsn() >= ${quoteLiteral(lsn)}::pg_lsn, false) AS ok`,
              )
            ).ok,
          30_000,
          50,
        );
        if (!got.ok && !o.acceptDataLoss)
          throw new DataLossRiskError(
            t.name,
            `${t.name} has not received ${old.name}'s WAL up to its shutdown checkpoint ${lsn}; not promoting (${old.name} is fenced and stopped).`,
          );
      },
    });
  } else {
    items.push({
      id: 'old.fence-recorded',
      host: t.name,
      title: `${old.name} is unreachable: its fence is recorded on the controller (rejoin required before it serves)`,
      check: async () =>
        (await registry.list()).some((r) => r.host === old.name && r.newPrimary === t.name)
          ? { done: true, why: 'recorded' }
          : { done: false, why: 'not recorded' },
      apply: async (ctx) => {
        if (ctx.dryRun) return;
        const P = pgOf(c, old.name, c.host(old.name));
        await registry.record({
          host: old.name,
          dataDir: P.dataDir,
          at: new Date().toISOString(),
          newPrimary: t.name,
          how: 'unreachable',
          reason: `emergency failover to ${t.name}`,
        });
      },
    });
    if (o.caBackup) {
      const archive = o.caBackup;
      items.push({
        id: 'ca-from-backup',
        host: t.name,
        title: `the CA restored on ${t.name} from the verified backup ${archive}`,
        check: async (ctx) => {
          const man = await verifyCaArchive(archive);
          const d = manifestDifferences(new Map(Object.entries(man.files)), await caTree(ctx.host, layout, t.sudo));
          return d.length
            ? { done: false, why: `differs: ${d.slice(0, 3).join(', ')}` }
            : { done: true, why: 'identical to the backup' };
        },
        apply: async (ctx) => {
          await restoreCa(archive, ctx.host, layout.dirs.cadir, { sudo: t.sudo, force: true });
        },
      });
    } else {
      items.push({
        id: 'ca-copy-verified',
        host: t.name,
        title: `the CA copy on ${t.name} is the last verified copy`,
        check: async (ctx) => {
          const v = await caCopyVerified(inv, ctx.host, t.sudo);
          return { done: v.ok, why: v.why };
        },
        apply: async () => {
          throw new FailoverError(
            'E_CA_COPY',
            `the CA copy on ${t.name} cannot be verified; nothing further was changed.`,
            { host: t.name, hint: 'Name a verified CA backup with --ca-backup ARCHIVE.' },
          );
        },
      });
    }
  }

  // ---- the new primary: promotion, DNS and the CA at once (independent; the old CA is off or fenced) ----
  const takeover: Step[] = [];
  takeover.push({
    id: 'db-promote',
    host: t.name,
    title: `promote PostgreSQL on ${t.name}`,
    check: async (ctx) =>
      (await isInRecovery(T(ctx)))
        ? { done: false, why: 'in recovery (a standby)' }
        : { done: true, why: 'accepts writes' },
    apply: async (ctx) => {
      if (ctx.dryRun) return void (await ctx.host.exec(T(ctx).control.promote, { sudo: true }));
      await promote(T(ctx));
    },
  });
  const others$ = reachableOthers;
  const verifyOn = (ctx: StepContext) => [ctx.hostFor(t.name), ...others$.map((m) => ctx.hostFor(m.name))];
  takeover.push({
    id: 'dns-move',
    host: t.name,
    title: `${inv.primaryCname} -> ${t.name} (${inv.dns.provider}), verified on every reachable master`,
    check: async (ctx) => {
      const addr = await addressOf(ctx.host, t);
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
      const addr = await addressOf(ctx.host, t);
      // nsupdate and hooks run on the controller, outside the plan's hosts: a plan does not call the provider
      if (ctx.dryRun) return;
      // a power-cut old primary is not waited for (rejoin fixes its own entry)
      await dnsOf(c, ctx.hostFor).set(inv.primaryCname, addr, { exclude: mode === 'emergency' ? [old.name] : [] });
      assertResolved(
        await verifyResolution(verifyOn(ctx), inv.primaryCname, addr, { timeoutMs: 30_000 }),
        inv.primaryCname,
        addr,
      );
    },
  });
  const authConf = layout.files.authConf ? fileOf(layout, 'authConf').path : undefined;
  const caCfg = layout.caDisable.kind === 'services' ? fileOf(layout, 'caCfg').path : undefined;
  /** The files that make t the CA; returns whether the CA service itself (services.d, or pe3's puppet.conf) changed. */
  const enable = async (h: Host): Promise<{ changed: boolean; serviceChanged: boolean }> => {
    const rs = await applyEdits(h, [...caGateEdits(inv, false), ...caEdits(inv, true, t.name)], { sudo: t.sudo });
    const admin = authConf ? (await grantCaAdmin(h, authConf, t.name, { sudo: t.sudo })).changed : false;
    const serviceChanged = rs.some(
      (r) => r.changed && (caCfg ? r.path === caCfg : r.path === fileOf(layout, 'puppetConf').path),
    );
    return { changed: admin || rs.some((r) => r.changed), serviceChanged };
  };
  takeover.push({
    id: 'ca-enabled',
    host: t.name,
    title: `the CA enabled on ${t.name} (the standby's gate lifted with a reload; a restart only where its CA service was off)`,
    check: async (ctx) => {
      if (mode === 'planned') {
        const probeOld = await probe(ctx, (h) => applyEdits(h.hostFor(old.name), oldCaOff, { sudo: old.sudo }));
        if (!probeOld.done)
          throw new FailoverError(
            'E_TWO_CAS',
            `the CA on ${old.name} is not gated and disabled (${probeOld.why}); not enabling a second CA.`,
            { host: t.name },
          );
      } else if (!(await registry.list()).some((r) => r.host === old.name)) {
        throw new FailoverError('E_TWO_CAS', `${old.name} is not fenced; not enabling a second CA.`, { host: t.name });
      }
      if ((await caTree(ctx.host, layout, t.sudo)).size === 0)
        throw new FailoverError('E_CA_MISSING', `${t.name} holds no CA copy.`, { host: t.name });
      const files = await probe(ctx, async (h) => (await enable(h.host)).changed);
      if (!files.done) return files;
      const serving = await caServing(ctx.host, layout, t.sudo);
      return serving === undefined || serving === 'signing'
        ? { done: true, why: serving ? 'the CA signs' : 'CA enabled in the files (puppetserver does not run here)' }
        : { done: false, why: `the CA is enabled in the files but puppetserver answers as ${serving}` };
    },
    apply: async (ctx) => {
      const before = ctx.dryRun ? undefined : await caServing(ctx.host, layout, t.sudo);
      const e = await enable(ctx.host);
      // measured on the lab: a reload (HUP, 5.2-5.3 s) re-reads auth.conf (the gate) but not services.d: a CA
      // service that is not running yet needs a restart (a JVM cold start)
      if (!e.serviceChanged && (before === 'gated' || before === 'signing'))
        await reload(ctx.host, layout, layout.services.puppetserver, t.sudo);
      else await restartOrStart(ctx.host, layout, layout.services.puppetserver, t.sudo);
      if (ctx.dryRun) return;
      const ok = await pollUntil(
        async () => {
          const x = await caServing(ctx.host, layout, t.sudo);
          return x === undefined ? undefined : x === 'signing';
        },
        300_000,
        250,
      );
      if (ok === false)
        throw new FailoverError(
          'E_CA_SERVICE',
          `puppetserver on ${t.name} does not sign as the CA after a ${e.serviceChanged ? 'restart' : 'reload'}.`,
          { host: t.name, hint: 'Read its log (services.d/ca.cfg, auth.conf, cadir permissions).' },
        );
    },
  });
  items.push({ group: 'takeover', lanes: takeover.map((x) => [x]) });
  items.push({
    id: 'state.commit',
    host: t.name,
    title: `record ${t.name} as the primary and ${old.name} as fenced (controller state)`,
    check: () => {
      const s = readState(inv);
      return Promise.resolve(
        s.primary === t.name && s.fenced.some((f) => f.host === old.name) && s.failover?.completedAt
          ? { done: true, why: 'recorded' }
          : { done: false, why: 'not recorded' },
      );
    },
    apply: (ctx) => {
      if (ctx.dryRun) return Promise.resolve();
      updateState(inv, (s) => {
        s.primary = t.name;
        s.fenced = [
          ...s.fenced.filter((f) => f.host !== old.name && f.host !== t.name),
          {
            host: old.name,
            at: new Date().toISOString(),
            how: mode === 'planned' ? 'stopped' : 'unreachable',
            newPrimary: t.name,
          },
        ];
        if (s.standby?.host === t.name) s.standby = undefined;
        if (s.failover) s.failover.completedAt = new Date().toISOString();
      });
      return Promise.resolve();
    },
  });

  // ---- every master follows ----
  const files = dbFilesFromLayout(layout);
  const sitePp = layout.files.sitePp?.path;
  const follow = (m: InventoryNode): Step[] => {
    const steps: Step[] = [];
    // the new primary's CA edits are ca-enabled's; every other master: CA off, ca_server = primary_cname
    // site.pp: only a main filebucket that exists is pointed (found on the lab: a site.pp without one)
    const hasBucket = async (h: Host) =>
      Boolean(
        sitePp &&
        (await h.exists(sitePp, { sudo: m.sudo })) &&
        /\bfilebucket\s*\{/.test((await h.readFile(sitePp, { sudo: m.sudo })).toString('utf8')),
      );
    const edits = async (h: Host): Promise<Edit[]> => [
      ...(m.name === t.name ? [] : caEdits(inv, false, m.name)),
      ...((await hasBucket(h))
        ? [{ kind: 'site-pp', path: sitePp!, ops: [{ op: 'filebucket-server', server: inv.primaryCname }] } as Edit]
        : []),
    ];
    steps.push({
      id: 'follow.settings',
      host: m.name,
      title: `${m.name === t.name ? '' : 'CA off, ca_server, '}filebucket and database settings at ${inv.primaryCname}`,
      check: (ctx) =>
        probe(
          ctx,
          async (h) => (
            await applyEdits(h.host, await edits(h.host), { sudo: m.sudo }),
            await pointServicesAt(h.host, files, inv.primaryCname)
          ),
        ),
      apply: async (ctx) => {
        // site.pp is read per compile: only a CA change needs the reload (and the new primary was reloaded by ca-enabled)
        if (m.name === t.name) await applyEdits(ctx.host, await edits(ctx.host), { sudo: m.sudo });
        else await editAndReload(ctx.host, inv, await edits(ctx.host), m.sudo);
        await pointServicesAt(ctx.host, files, inv.primaryCname);
      },
    });
    if (layout.files.hostCrl) {
      steps.push({
        id: 'follow.crl',
        host: m.name,
        title: `the CRL of the CA on ${t.name}`,
        check: (ctx) => probe(ctx, (h) => copyCrl(inv, h.hostFor(t.name), t.sudo, h.host, m.sudo)),
        apply: async (ctx) => {
          await copyCrl(inv, ctx.hostFor(t.name), t.sudo, ctx.host, m.sudo);
        },
      });
    }
    steps.push({
      id: 'follow.database',
      host: m.name,
      title: `the database answers through ${inv.primaryCname} from ${m.name}`,
      verify: false,
      check: async (ctx) => {
        const creds = await credentialsOf(ctx, inv, ctx.hostFor(t.name));
        const deadline = Date.now() + (ctx.dryRun ? 0 : 30_000);
        for (const cr of creds) {
          for (;;) {
            try {
              await checkFromHost(
                ctx.host,
                { server: inv.primaryCname, port: cr.port, database: cr.database, user: cr.user },
                cr.password,
                { psql: `${pgOf(c, m.name, ctx.host).binDir}/psql`, samples: 1 },
              );
              break;
            } catch (e) {
              if (Date.now() >= deadline) throw e;
              await new Promise((r) => setTimeout(r, 500));
            }
          }
        }
        return {
          done: true,
          why: `${creds.map((x) => `${x.database}/${x.user}`).join(', ')} connect through ${inv.primaryCname}`,
        };
      },
      apply: async () => {},
    });
    // PuppetDB reaches the database through primary_cname; its pool may hold connections to the dead address: measured, restarted only when it does not answer
    steps.push({
      id: 'follow.puppetdb',
      host: m.name,
      title: `PuppetDB on ${m.name} answers queries (restarted only if it does not)`,
      check: async (ctx) => {
        const ok = ctx.dryRun
          ? await puppetdbAnswers(ctx.host, layout, m.sudo)
          : await pollUntil(() => puppetdbAnswers(ctx.host, layout, m.sudo), 20_000, 1000);
        return ok === false
          ? { done: false, why: 'PuppetDB does not answer a query' }
          : { done: true, why: ok === undefined ? 'PuppetDB is not running here' : 'PuppetDB answers' };
      },
      apply: async (ctx) => {
        await restart(ctx.host, layout, layout.services.puppetdb, m.sudo);
        if (!ctx.dryRun) await pollUntil(() => puppetdbAnswers(ctx.host, layout, m.sudo), 300_000, 1000);
      },
    });
    return steps;
  };
  items.push({ group: 'follow', lanes: [t, ...reachableOthers].map(follow) });

  // MCollective (debian): every broker pool names the masters that serve now (found on the lab: status degraded
  // while the pools still named the dead primary). Only a cluster whose MCollective was set up (by join): a
  // failover never generates or rotates its secrets.
  const serverCfg = layout.files.mcollectiveServerCfg?.path;
  if (
    layout.flavour === 'debian' &&
    serverCfg &&
    (await c
      .host(t.name)
      .exists(serverCfg, { sudo: t.sudo })
      .catch(() => false))
  ) {
    const mco: McoCluster = {
      primary: { fqdn: t.name, host: c.host(t.name), layout },
      secondaries: reachableOthers.map((m) => ({ fqdn: m.name, host: c.host(m.name), layout })),
      sudo: t.sudo || reachableOthers.some((m) => m.sudo),
    };
    const { secrets, generated } = await readSecrets(mco);
    for (const v of [secrets.psk, secrets.password]) inv.redactor.add(v);
    if (generated.length === 0) items.push(...debianSyncSteps(mco, secrets));
  }
  return { name: 'failover', items };
}
