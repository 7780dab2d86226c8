import { join } from 'node:path';
import { applyEdits, fileOf } from '@pe-stack/pe-config-files';
import { backupCa, inspectCert, verifyCaArchive } from '@pe-stack/pe-certs';
import { debianSyncSteps, readSecrets, type McoCluster } from '@pe-stack/pe-mcollective';
import {
  dbFilesFromLayout,
  fence,
  isInRecovery,
  isRunning,
  pointServicesAt,
  readFenceMarker,
  rejoin,
  replicaStreaming,
  stopInstance,
} from '@pe-stack/pe-db';
import type { Host } from '@pe-stack/pe-host';
import type { Flow, Step, StepContext } from '@pe-stack/pe-steps';
import { setHostsEntry } from '../dns/index.js';
import { fenceRegistry, readState, updateState } from '../state.js';
import { probe } from '@pe-stack/pe-steps';
import { guardClearStep } from './guard.js';
import { caOffEdits, copyCrl, gateCaEdits } from './ca-switch.js';
import { FailoverError, UsageError } from '../errors.js';
import { addressOf, master, pgOf, sshPreflight, type HaContext } from './cluster-access.js';
import { crlCopyEdit } from './secondary-settings.js';
import { editAndReload, restart } from './services.js';

export interface RejoinOptions {
  /** standby (default): its PostgreSQL rebuilt as a streaming replica of the new primary; client: stopped, fenced, only a client of the primary's. */
  database?: 'standby' | 'client';
}

/**
 * `rejoin HOST`: a former primary (fenced by a failover, reachable again)
 * comes back as a secondary. Its CA is switched off first (a host that
 * booted after a power cut may have started it), its PostgreSQL stopped if
 * it runs as a primary (and marked); then its CA directory is backed up to
 * the controller, verified, and removed; its hosts entry for primary_cname
 * (hosts-file DNS) and its settings follow primary_cname; its database is
 * rebuilt as a standby of the new primary (pe-db rejoin: pg_rewind, else a
 * base backup; the old data is kept aside) or left stopped as a plain client;
 * its certificate is checked against the CA; the new primary's CRL is copied;
 * its services restarted. The fence is lifted in the cluster state last.
 */
export async function rejoinFlow(c: HaContext, name: string, o: RejoinOptions = {}): Promise<Flow> {
  const inv = c.inventory;
  const layout = inv.layout;
  const h = master(inv, name);
  const p = inv.primary;
  if (h.name === p.name)
    throw new UsageError(`${h.name} is the primary; rejoin brings a former primary back as a secondary.`);
  const dbMode = o.database ?? 'standby';
  const registry = fenceRegistry(inv);
  const H = (ctx: StepContext) => pgOf(c, h.name, ctx.hostFor(h.name));
  const P = (ctx: StepContext) => pgOf(c, p.name, ctx.hostFor(p.name));
  const sudo = h.sudo;
  const steps: Step[] = [];
  const caOff = [...gateCaEdits(inv), ...caOffEdits(inv, h.name)];

  steps.push({
    id: 'rejoin.ca-off',
    host: h.name,
    title: `the CA on ${h.name} gated and disabled (reload: it signs nothing from now on); ca_server = ${inv.primaryCname}`,
    check: (ctx) => probe(ctx, (x) => applyEdits(x.host, caOff, { sudo })),
    apply: async (ctx) => {
      await editAndReload({ host: ctx.host, sudo }, inv, caOff);
    },
  });
  steps.push({
    id: 'rejoin.db-stopped',
    host: h.name,
    title: `PostgreSQL on ${h.name} does not run as a primary (stopped and marked if it does)`,
    check: async (ctx) => {
      const pg = H(ctx);
      if (!(await isRunning(pg))) return { done: true, why: 'not running' };
      return (await isInRecovery(pg))
        ? { done: true, why: 'runs as a standby' }
        : { done: false, why: 'runs as a primary' };
    },
    apply: async (ctx) => {
      // a plan shows the step as to do (the check's reason); the operation itself waits on servers, so it is not simulated
      if (ctx.dryRun) return;
      await fence(H(ctx), { newPrimary: p.name, reason: `rejoin of ${h.name} as a secondary of ${p.name}` }, registry);
    },
  });
  const cadir = layout.dirs.cadir;
  steps.push({
    id: 'rejoin.ca-removed',
    host: h.name,
    title: `its CA directory backed up to the controller, verified, then removed`,
    check: async (ctx) =>
      (await ctx.host.exists(cadir, { sudo }))
        ? { done: false, why: `${cadir} exists` }
        : { done: true, why: `no ${cadir}` },
    apply: async (ctx) => {
      if (ctx.dryRun) {
        await ctx.host.remove(cadir, { sudo, recursive: true });
        return;
      }
      if (await ctx.host.exists(`${cadir}/ca_crt.pem`, { sudo })) {
        const b = await backupCa(ctx.host, cadir, join(inv.backupDir, 'rejoin'), { sudo });
        await verifyCaArchive(b.archive, b.manifestPath);
      } else {
        // no CA in it (a partial directory): keep it aside rather than delete what we cannot archive
        await ctx.host.exec(['mv', '-T', '--', cadir, `${cadir}.pe-rejoin-${Date.now()}`], { sudo });
        return;
      }
      await ctx.host.remove(cadir, { sudo, recursive: true });
    },
  });
  if (inv.dns.provider === 'hosts-file') {
    const hosts = fileOf(layout, 'hosts').path;
    steps.push({
      id: 'rejoin.hosts-entry',
      host: h.name,
      title: `${inv.primaryCname} -> ${p.name} in its ${hosts}`,
      check: (ctx) =>
        probe(ctx, async (x) =>
          setHostsEntry(x.host, hosts, inv.primaryCname, await addressOf(x.hostFor(p.name), p), sudo),
        ),
      apply: async (ctx) => {
        await setHostsEntry(ctx.host, hosts, inv.primaryCname, await addressOf(ctx.hostFor(p.name), p), sudo);
      },
    });
  }
  const crl = crlCopyEdit(layout);
  const files = dbFilesFromLayout(layout);
  steps.push({
    id: 'rejoin.settings',
    host: h.name,
    title: `web server CRL copy, database settings at ${inv.primaryCname}`,
    check: (ctx) =>
      probe(
        ctx,
        async (x) => (
          await applyEdits(x.host, [crl], { sudo }),
          await pointServicesAt(x.host, files, inv.primaryCname)
        ),
      ),
    apply: async (ctx) => {
      await applyEdits(ctx.host, [crl], { sudo });
      await pointServicesAt(ctx.host, files, inv.primaryCname);
    },
  });
  if (dbMode === 'standby') {
    steps.push({
      id: 'rejoin.db-standby',
      host: h.name,
      title: `PostgreSQL on ${h.name} rebuilt as a streaming replica of ${p.name}'s (pg_rewind, else a base backup)`,
      check: async (ctx) => {
        const streaming = await replicaStreaming(P(ctx), h.name);
        const marker = await readFenceMarker(H(ctx));
        return streaming && !marker
          ? { done: true, why: `streams from ${p.name}` }
          : {
              done: false,
              why: streaming ? 'streams, but the fence marker is still there' : `does not stream from ${p.name}`,
            };
      },
      apply: async (ctx) => {
        // a plan shows the step as to do (the check's reason); the operation itself waits on servers, so it is not simulated
        if (ctx.dryRun) return;
        await rejoin(H(ctx), P(ctx), registry, {
          name: h.name,
          primaryAddress: await addressOf(ctx.host, p),
          standbyAddress: await addressOf(ctx.hostFor(p.name), h),
        });
      },
    });
  } else {
    steps.push({
      id: 'rejoin.db-client',
      host: h.name,
      title: `PostgreSQL on ${h.name} stays stopped (fenced): PuppetDB uses ${inv.primaryCname}`,
      check: async (ctx) =>
        (await isRunning(H(ctx))) ? { done: false, why: 'running' } : { done: true, why: 'stopped' },
      apply: async (ctx) => {
        if (ctx.dryRun) return void (await ctx.host.exec(H(ctx).control.stop, { sudo: true }));
        await stopInstance(H(ctx));
      },
    });
  }
  steps.push(guardClearStep(inv, h));
  steps.push({
    id: 'rejoin.certificate',
    host: h.name,
    title: `its certificate is signed by the CA on ${p.name}`,
    verify: false,
    check: async (ctx) => {
      const ca = (await ctx.hostFor(p.name).readFile(fileOf(layout, 'caCert').path, { sudo: p.sudo })).toString('utf8');
      const certPath = `${layout.dirs.certsDir}/${h.name}.pem`;
      if (!(await ctx.host.exists(certPath, { sudo })))
        throw new FailoverError('E_CERT_VERIFY', `${h.name} has no certificate at ${certPath}.`, { host: h.name });
      const cert = (await ctx.host.readFile(certPath, { sudo })).toString('utf8');
      const info = inspectCert(cert, `${h.name}'s certificate`);
      const caInfo = inspectCert(ca, 'the CA certificate');
      const { X509Certificate } = await import('node:crypto');
      if (!new X509Certificate(cert).verify(new X509Certificate(ca).publicKey))
        throw new FailoverError(
          'E_CERT_VERIFY',
          `${h.name}'s certificate is not signed by the CA on ${p.name} (${caInfo.subject}).`,
          { host: h.name, hint: 'Regenerate it (join the host again).' },
        );
      if (info.notAfter.getTime() < Date.now())
        throw new FailoverError('E_CERT_VERIFY', `${h.name}'s certificate has expired.`, { host: h.name });
      return { done: true, why: `signed by ${caInfo.subject}, valid until ${info.notAfter.toISOString()}` };
    },
    apply: async () => {},
  });
  if (layout.files.hostCrl) {
    steps.push({
      id: 'rejoin.crl',
      host: h.name,
      title: `the CRL of the CA on ${p.name}`,
      check: (ctx) =>
        probe(ctx, (x) => copyCrl(inv, { host: x.hostFor(p.name), sudo: p.sudo }, { host: x.host, sudo })),
      apply: async (ctx) => {
        await copyCrl(inv, { host: ctx.hostFor(p.name), sudo: p.sudo }, { host: ctx.host, sudo });
      },
    });
  }
  steps.push({
    id: 'rejoin.restart',
    host: h.name,
    title: `restart ${layout.services.puppetserver}, ${layout.services.puppetdb}`,
    verify: false,
    check: (ctx) =>
      Promise.resolve(
        ctx.completedEarlier || !ctx.changedInRun(h.name)
          ? { done: true, why: ctx.completedEarlier ? 'done earlier in this run' : 'nothing changed on the host' }
          : { done: false, why: 'the host changed in this run' },
      ),
    apply: async (ctx) => {
      for (const s of [layout.services.puppetserver, layout.services.puppetdb])
        await restart({ host: ctx.host, sudo }, layout, s);
    },
  });
  // MCollective (debian, where join set it up): the rejoined host's broker and server run again with the
  // cluster's secrets, and every broker pool and network of brokers names it again (found on the lab: after
  // rejoin its activemq and mcollective were down and the other masters' pools still left it out).
  const items: Flow['items'] = [];
  const serverCfg = layout.files.mcollectiveServerCfg?.path;
  if (
    layout.flavour === 'debian' &&
    serverCfg &&
    (await c
      .host(p.name)
      .exists(serverCfg, { sudo: p.sudo })
      .catch(() => false))
  ) {
    const fenced = new Set(readState(inv).fenced.map((f) => f.host));
    const serving = inv.masters.filter((m) => m.name !== p.name && (m.name === h.name || !fenced.has(m.name)));
    const mco: McoCluster = {
      primary: { fqdn: p.name, host: c.host(p.name), layout },
      secondaries: serving.map((m) => ({ fqdn: m.name, host: c.host(m.name), layout })),
      sudo: p.sudo || serving.some((m) => m.sudo),
    };
    const { secrets, generated } = await readSecrets(mco);
    for (const v of [secrets.psk, secrets.password]) inv.redactor.add(v);
    if (generated.length === 0) items.push(...debianSyncSteps(mco, secrets));
  }
  const lift: Step = {
    id: 'rejoin.state',
    host: h.name,
    title: `lift ${h.name}'s fence in the controller state`,
    check: () =>
      Promise.resolve(
        readState(inv).fenced.some((f) => f.host === h.name)
          ? { done: false, why: 'fenced in the state' }
          : { done: true, why: 'not fenced' },
      ),
    apply: async (ctx) => {
      if (ctx.dryRun) return;
      const pg = pgOf(c, h.name, ctx.host as Host);
      await registry.clear(h.name, pg.dataDir);
      updateState(inv, (s) => {
        s.fenced = s.fenced.filter((f) => f.host !== h.name);
      });
    },
  };
  return {
    name: 'rejoin',
    items: [{ group: 'preflight', lanes: sshPreflight([h, p]).map((x) => [x]) }, ...steps, ...items, lift],
  };
}
