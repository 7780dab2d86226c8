import { join } from 'node:path';
import { applyEdits, fileOf, type Layout } from '@pe-stack/pe-config-files';
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
  type FenceRegistry,
  type PgInstance,
} from '@pe-stack/pe-db';
import type { Host } from '@pe-stack/pe-host';
import type { Flow, FlowItem, Step, StepContext } from '@pe-stack/pe-steps';
import { setHostsEntry } from '../dns/index.js';
import type { Inventory, InventoryNode } from '../inventory.js';
import { fenceRegistry, readState, updateState } from '../state.js';
import { probe } from '@pe-stack/pe-steps';
import { guardClearStep } from './guard.js';
import { caOffEdits, copyCrl, gateCaEdits } from './ca-switch.js';
import { FailoverError, UsageError } from '../errors.js';
import { addressOf, master, pgOf, sshPreflight, type HaContext } from './cluster-access.js';
import { crlCopyEdit } from './secondary-settings.js';
import { editAndReload, restart } from './services.js';
import { group } from './step-kinds.js';

export interface RejoinOptions {
  /** standby (default): its PostgreSQL rebuilt as a streaming replica of the new primary; client: stopped, fenced, only a client of the primary's. */
  database?: 'standby' | 'client';
}

/** What every rejoin step knows: the host coming back, the primary it follows, the fence registry. */
interface Rejoin {
  readonly c: HaContext;
  readonly inv: Inventory;
  readonly layout: Layout;
  /** The former primary coming back as a secondary. */
  readonly node: InventoryNode;
  readonly primary: InventoryNode;
  readonly registry: FenceRegistry;
  nodePg(ctx: StepContext): PgInstance;
  primaryPg(ctx: StepContext): PgInstance;
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
  const r = rejoinOf(c, name);
  const items: FlowItem[] = [
    group(
      'preflight',
      sshPreflight([r.node, r.primary]).map((x) => [x]),
    ),
    caGatedAndOff(r),
    dbNotPrimary(r),
    caDirectoryRemoved(r),
    ...(r.inv.dns.provider === 'hosts-file' ? [hostsEntry(r)] : []),
    settingsFollowPrimary(r),
    (o.database ?? 'standby') === 'standby' ? dbRebuiltAsStandby(r) : dbStoppedAsClient(r),
    guardClearStep(r.inv, r.node),
    certificateSignedByCa(r),
    ...(r.layout.files.hostCrl ? [crlCopied(r)] : []),
    servicesRestarted(r),
    ...(await mcollectiveRejoined(r)),
    fenceLifted(r),
  ];
  return { name: 'rejoin', items };
}

function rejoinOf(c: HaContext, name: string): Rejoin {
  const inv = c.inventory;
  const node = master(inv, name);
  const primary = inv.primary;
  if (node.name === primary.name)
    throw new UsageError(`${node.name} is the primary; rejoin brings a former primary back as a secondary.`);
  return {
    c,
    inv,
    layout: inv.layout,
    node,
    primary,
    registry: fenceRegistry(inv),
    nodePg: (ctx) => pgOf(c, node.name, ctx.hostFor(node.name)),
    primaryPg: (ctx) => pgOf(c, primary.name, ctx.hostFor(primary.name)),
  };
}

function caGatedAndOff({ inv, node }: Rejoin): Step {
  const caOff = [...gateCaEdits(inv), ...caOffEdits(inv, node.name)];
  return {
    id: 'rejoin.ca-off',
    host: node.name,
    title: `the CA on ${node.name} gated and disabled (reload: it signs nothing from now on); ca_server = ${inv.primaryCname}`,
    check: (ctx) => probe(ctx, (x) => applyEdits(x.host, caOff, { sudo: node.sudo })),
    apply: async (ctx) => {
      await editAndReload({ host: ctx.host, sudo: node.sudo }, inv, caOff);
    },
  };
}

function dbNotPrimary(r: Rejoin): Step {
  const { node, primary } = r;
  return {
    id: 'rejoin.db-stopped',
    host: node.name,
    title: `PostgreSQL on ${node.name} does not run as a primary (stopped and marked if it does)`,
    check: async (ctx) => {
      const pg = r.nodePg(ctx);
      if (!(await isRunning(pg))) return { done: true, why: 'not running' };
      return (await isInRecovery(pg))
        ? { done: true, why: 'runs as a standby' }
        : { done: false, why: 'runs as a primary' };
    },
    apply: async (ctx) => {
      // a plan shows the step as to do (the check's reason); the operation itself waits on servers, so it is not simulated
      if (ctx.dryRun) return;
      const why = { newPrimary: primary.name, reason: `rejoin of ${node.name} as a secondary of ${primary.name}` };
      await fence(r.nodePg(ctx), why, r.registry);
    },
  };
}

function caDirectoryRemoved({ inv, layout, node }: Rejoin): Step {
  const cadir = layout.dirs.cadir;
  const sudo = node.sudo;
  return {
    id: 'rejoin.ca-removed',
    host: node.name,
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
  };
}

function hostsEntry({ inv, layout, node, primary }: Rejoin): Step {
  const hosts = fileOf(layout, 'hosts').path;
  const set = async (on: Host, hostFor: (name: string) => Host) =>
    setHostsEntry(on, hosts, inv.primaryCname, await addressOf(hostFor(primary.name), primary), node.sudo);
  return {
    id: 'rejoin.hosts-entry',
    host: node.name,
    title: `${inv.primaryCname} -> ${primary.name} in its ${hosts}`,
    check: (ctx) => probe(ctx, (x) => set(x.host, x.hostFor)),
    apply: async (ctx) => {
      await set(ctx.host, ctx.hostFor);
    },
  };
}

function settingsFollowPrimary({ inv, layout, node }: Rejoin): Step {
  const crl = crlCopyEdit(layout);
  const files = dbFilesFromLayout(layout);
  const write = async (h: Host) => (
    await applyEdits(h, [crl], { sudo: node.sudo }),
    await pointServicesAt(h, files, inv.primaryCname)
  );
  return {
    id: 'rejoin.settings',
    host: node.name,
    title: `web server CRL copy, database settings at ${inv.primaryCname}`,
    check: (ctx) => probe(ctx, (x) => write(x.host)),
    apply: async (ctx) => {
      await write(ctx.host);
    },
  };
}

function dbRebuiltAsStandby(r: Rejoin): Step {
  const { node, primary } = r;
  return {
    id: 'rejoin.db-standby',
    host: node.name,
    title: `PostgreSQL on ${node.name} rebuilt as a streaming replica of ${primary.name}'s (pg_rewind, else a base backup)`,
    check: async (ctx) => {
      const streaming = await replicaStreaming(r.primaryPg(ctx), node.name);
      const marker = await readFenceMarker(r.nodePg(ctx));
      return streaming && !marker
        ? { done: true, why: `streams from ${primary.name}` }
        : {
            done: false,
            why: streaming ? 'streams, but the fence marker is still there' : `does not stream from ${primary.name}`,
          };
    },
    apply: async (ctx) => {
      // a plan shows the step as to do (the check's reason); the operation itself waits on servers, so it is not simulated
      if (ctx.dryRun) return;
      await rejoin(r.nodePg(ctx), r.primaryPg(ctx), r.registry, {
        name: node.name,
        primaryAddress: await addressOf(ctx.host, primary),
        standbyAddress: await addressOf(ctx.hostFor(primary.name), node),
      });
    },
  };
}

function dbStoppedAsClient(r: Rejoin): Step {
  const { inv, node } = r;
  return {
    id: 'rejoin.db-client',
    host: node.name,
    title: `PostgreSQL on ${node.name} stays stopped (fenced): PuppetDB uses ${inv.primaryCname}`,
    check: async (ctx) =>
      (await isRunning(r.nodePg(ctx))) ? { done: false, why: 'running' } : { done: true, why: 'stopped' },
    apply: async (ctx) => {
      if (ctx.dryRun) return void (await ctx.host.exec(r.nodePg(ctx).control.stop, { sudo: true }));
      await stopInstance(r.nodePg(ctx));
    },
  };
}

function certificateSignedByCa({ layout, node, primary }: Rejoin): Step {
  return {
    id: 'rejoin.certificate',
    host: node.name,
    title: `its certificate is signed by the CA on ${primary.name}`,
    verify: false,
    check: async (ctx) => {
      const caPath = fileOf(layout, 'caCert').path;
      const ca = (await ctx.hostFor(primary.name).readFile(caPath, { sudo: primary.sudo })).toString('utf8');
      const certPath = `${layout.dirs.certsDir}/${node.name}.pem`;
      if (!(await ctx.host.exists(certPath, { sudo: node.sudo })))
        throw new FailoverError('E_CERT_VERIFY', `${node.name} has no certificate at ${certPath}.`, {
          host: node.name,
        });
      const cert = (await ctx.host.readFile(certPath, { sudo: node.sudo })).toString('utf8');
      const info = inspectCert(cert, `${node.name}'s certificate`);
      const caInfo = inspectCert(ca, 'the CA certificate');
      const { X509Certificate } = await import('node:crypto');
      if (!new X509Certificate(cert).verify(new X509Certificate(ca).publicKey))
        throw new FailoverError(
          'E_CERT_VERIFY',
          `${node.name}'s certificate is not signed by the CA on ${primary.name} (${caInfo.subject}).`,
          { host: node.name, hint: 'Regenerate it (join the host again).' },
        );
      if (info.notAfter.getTime() < Date.now())
        throw new FailoverError('E_CERT_VERIFY', `${node.name}'s certificate has expired.`, { host: node.name });
      return { done: true, why: `signed by ${caInfo.subject}, valid until ${info.notAfter.toISOString()}` };
    },
    apply: async () => {},
  };
}

function crlCopied({ inv, node, primary }: Rejoin): Step {
  const copy = (x: { host: Host; hostFor: (name: string) => Host }) =>
    copyCrl(inv, { host: x.hostFor(primary.name), sudo: primary.sudo }, { host: x.host, sudo: node.sudo });
  return {
    id: 'rejoin.crl',
    host: node.name,
    title: `the CRL of the CA on ${primary.name}`,
    check: (ctx) => probe(ctx, copy),
    apply: async (ctx) => {
      await copy(ctx);
    },
  };
}

function servicesRestarted({ layout, node }: Rejoin): Step {
  return {
    id: 'rejoin.restart',
    host: node.name,
    title: `restart ${layout.services.puppetserver}, ${layout.services.puppetdb}`,
    verify: false,
    check: (ctx) =>
      Promise.resolve(
        ctx.completedEarlier || !ctx.changedInRun(node.name)
          ? { done: true, why: ctx.completedEarlier ? 'done earlier in this run' : 'nothing changed on the host' }
          : { done: false, why: 'the host changed in this run' },
      ),
    apply: async (ctx) => {
      for (const s of [layout.services.puppetserver, layout.services.puppetdb])
        await restart({ host: ctx.host, sudo: node.sudo }, layout, s);
    },
  };
}

/**
 * MCollective (debian, where join set it up): the rejoined host's broker and server run again with the
 * cluster's secrets, and every broker pool and network of brokers names it again (otherwise its activemq and
 * mcollective stay down and the other masters' pools leave it out).
 */
async function mcollectiveRejoined({ c, inv, layout, node: h, primary: p }: Rejoin): Promise<FlowItem[]> {
  const items: FlowItem[] = [];
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
  return items;
}

function fenceLifted(r: Rejoin): Step {
  const { c, inv, node } = r;
  return {
    id: 'rejoin.state',
    host: node.name,
    title: `lift ${node.name}'s fence in the controller state`,
    check: () =>
      Promise.resolve(
        readState(inv).fenced.some((f) => f.host === node.name)
          ? { done: false, why: 'fenced in the state' }
          : { done: true, why: 'not fenced' },
      ),
    apply: async (ctx) => {
      if (ctx.dryRun) return;
      const pg = pgOf(c, node.name, ctx.host as Host);
      await r.registry.clear(node.name, pg.dataDir);
      updateState(inv, (s) => {
        s.fenced = s.fenced.filter((f) => f.host !== node.name);
      });
    },
  };
}
