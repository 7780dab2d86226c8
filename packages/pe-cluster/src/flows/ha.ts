import { join } from 'node:path';
import { applyEdits, buildCommand, fileOf, type AuthRule, type Edit, type Layout } from '@pe-stack/pe-config-files';
import { backupCa, parseCrl, puppetSslPaths, restoreCa, verifyCaArchive } from '@pe-stack/pe-certs';
import {
  dbFilesFromLayout,
  instanceFromLayout,
  readCredentials,
  type DbCredentials,
  type PgInstance,
} from '@pe-stack/pe-db';
import { manifestDifferences, PeError, treeManifest, type Host } from '@pe-stack/pe-host';
import { dnsProvider, hostReachable, type DnsProvider } from '../dns/index.js';
import type { Step, StepContext } from '../engine/types.js';
import type { Inventory, InventoryNode } from '../inventory.js';
import { readState, updateState } from '../state.js';
import { resolveAddress } from './ensure.js';

/** What the failover-side flows need of a Cluster (narrow, to avoid an import cycle). */
export interface HaContext {
  readonly inventory: Inventory;
  host(name: string): Host;
  /** The PostgreSQL instance of a master (default: the layout's). Tests pass throwaway clusters. */
  pgInstance?(name: string, host: Host): PgInstance;
  /** The DNS provider for primary_cname (default: the inventory's). */
  dns?(): DnsProvider;
}

export class FailoverError extends PeError {}

export function pgOf(c: HaContext, name: string, host: Host): PgInstance {
  return c.pgInstance?.(name, host) ?? instanceFromLayout(host, c.inventory.layout);
}

export function dnsOf(c: HaContext, hostFor: (name: string) => Host): DnsProvider {
  return c.dns?.() ?? dnsProvider(c.inventory, hostFor);
}

export function master(inv: Inventory, name: string): InventoryNode {
  const m = inv.masters.find((x) => x.name === name);
  if (!m)
    throw new FailoverError('E_USAGE', `${name} is not a master in ${inv.file}.`, {
      hint: `Masters: ${inv.masters.map((x) => x.name).join(', ')}.`,
    });
  return m;
}

/** The address of a master: the inventory's, else as `on` resolves its name. */
export async function addressOf(on: Host, node: InventoryNode): Promise<string> {
  return resolveAddress(on, node.name, node.ssh.address);
}

/**
 * The edits that make a master the CA (enabled) or not (disabled); ca_server always primary_cname. On
 * puppetserver the web server's certificate, key and CA are named explicitly (as join's web-tls step does):
 * with the CA service disabled nothing fills them in, and puppetserver does not start ("Missing some SSL
 * configuration"; found on the lab when a rejoined former primary was restarted).
 */
export function caEdits(inv: Inventory, enabled: boolean, certname: string): Edit[] {
  const layout = inv.layout;
  const web: Edit[] = [];
  if (layout.crl.kind === 'hocon') {
    const tls = puppetSslPaths(layout.dirs.ssldir, certname);
    const at = layout.crl.path.slice(0, -1);
    web.push({
      kind: 'hocon',
      path: fileOf(layout, 'webServerConf').path,
      ops: [
        { op: 'set', path: [...at, 'ssl-cert'], value: tls.cert },
        { op: 'set', path: [...at, 'ssl-key'], value: tls.key },
        { op: 'set', path: [...at, 'ssl-ca-cert'], value: tls.caCert },
      ],
    });
  }
  return [
    ...web,
    layout.flavour === 'pe3'
      ? {
          kind: 'ini',
          path: fileOf(layout, 'puppetConf').path,
          ops: [
            enabled
              ? { op: 'set', section: 'master', key: 'ca', value: 'true' }
              : { op: 'set', section: 'master', key: 'ca', value: 'false' },
          ],
        }
      : { kind: 'services', path: fileOf(layout, 'caCfg').path, ops: [{ op: 'ca', enabled }] },
    {
      kind: 'ini',
      path: fileOf(layout, 'puppetConf').path,
      ops: [{ op: 'set', section: 'main', key: 'ca_server', value: inv.primaryCname }],
    },
  ];
}

/**
 * The CA gate: an auth.conf rule, first in the list, that denies every CA
 * endpoint except the public CA certificate(s) and the CRL. A puppetserver
 * with its CA service enabled but gated signs nothing; HUP re-reads auth.conf
 * (measured on the lab: 5.2-5.3 s, no JVM cold start), while the CA service
 * itself (services.d) changes only with a restart. So the warm standby runs
 * its CA gated on its verified copy, and failover lifts the gate with a HUP;
 * a CA that must stop signing now is gated with a HUP.
 */
export const CA_GATE: AuthRule = {
  name: 'pe-cluster CA gate',
  match: { path: '^/puppet-ca/v1/(?!certificate/|certificate_revocation_list/)', type: 'regex' },
  deny: '*',
  sortOrder: 1,
};

/** The edit that puts the CA gate in (on) or takes it out; none on layouts without a tk-auth auth.conf (pe3). */
export function caGateEdits(inv: Inventory, on: boolean): Edit[] {
  const auth = inv.layout.files.authConf;
  if (!auth || inv.layout.crl.kind !== 'hocon') return [];
  return [
    {
      kind: 'hocon',
      path: auth.path,
      ops: [on ? { op: 'auth-rule', rule: CA_GATE } : { op: 'auth-rule-remove', name: CA_GATE.name }],
    },
  ];
}

/** What this host's puppetserver does as a CA, asked over HTTPS: signing (an active CA), gated, off (no CA service), no-answer (starting, or an unexpected status); undefined when it does not run here (or there is no curl). */
export type CaServing = 'signing' | 'gated' | 'off' | 'no-answer';
export async function caServing(h: Host, layout: Layout, sudo: boolean): Promise<CaServing | undefined> {
  if (!(await serviceActive(h, layout, layout.services.puppetserver, sudo))) return undefined;
  // one command: the public CA certificate (200 on any CA, 404 without one), then a CSR that does not exist
  // (404 on a CA that takes requests, 403 where the gate denies it)
  const base = 'https://127.0.0.1:8140/puppet-ca/v1';
  const r = await h.exec(
    [
      'curl',
      '-sk',
      '--max-time',
      '5',
      '-w',
      '%{http_code}\n',
      '-o',
      '/dev/null',
      '-o',
      '/dev/null',
      `${base}/certificate/ca`,
      `${base}/certificate_request/pe-cluster-probe`,
    ],
    { readOnly: true, allowFailure: true, timeoutMs: 20_000 },
  );
  if (r.code === 127) return undefined;
  const [ca, csr] = r.stdout.trim().split('\n');
  if (ca !== '200') return ca === '404' ? 'off' : 'no-answer';
  return csr === '403' ? 'gated' : csr === '404' ? 'signing' : 'no-answer';
}

export async function reload(h: Host, layout: Layout, service: string, sudo: boolean): Promise<void> {
  await h.exec(buildCommand(layout, 'serviceReload', { service }), { sudo, timeoutMs: 180_000 });
}

export async function restart(h: Host, layout: Layout, service: string, sudo: boolean): Promise<void> {
  await h.exec(buildCommand(layout, 'serviceRestart', { service }), { sudo, timeoutMs: 10 * 60_000 });
}

export async function serviceActive(h: Host, layout: Layout, service: string, sudo: boolean): Promise<boolean> {
  const r = await h.exec(buildCommand(layout, 'serviceStatus', { service }), {
    sudo,
    readOnly: true,
    allowFailure: true,
    timeoutMs: 30_000,
  });
  return r.code === 0;
}

/** The CA directory's sha256 manifest on a host (empty when there is none). */
export async function caTree(h: Host, layout: Layout, sudo: boolean): Promise<Map<string, string>> {
  if (!(await h.exists(layout.dirs.cadir, { sudo }))) return new Map();
  return treeManifest(h, layout.dirs.cadir, { sudo });
}

export interface CaSyncResult {
  changed: boolean;
  archive?: string | undefined;
  files: number;
  ms: number;
}

/**
 * Pushes a verified copy of the CA from `from` to `to`: pe-certs backupCa
 * (streamed to the controller with a sha256 manifest; a CA that changes while
 * it streams is refused), verifyCaArchive, restoreCa on the target (staged,
 * compared with the manifest, swapped in; a previous directory is kept
 * aside). No-op when both trees already match. The archive stays in
 * `<backups>/ca-sync/` and the copy is recorded in the cluster state.
 */
export async function syncCaCopy(
  inv: Inventory,
  from: Host,
  fromSudo: boolean,
  to: Host,
  toSudo: boolean,
  opts: { record?: boolean } = {},
): Promise<CaSyncResult> {
  const t0 = performance.now();
  const layout = inv.layout;
  const [a, b] = await Promise.all([caTree(from, layout, fromSudo), caTree(to, layout, toSudo)]);
  if (a.size > 0 && manifestDifferences(a, b).length === 0)
    return { changed: false, files: a.size, ms: performance.now() - t0 };
  const bk = await backupCa(from, layout.dirs.cadir, join(inv.backupDir, 'ca-sync'), { sudo: fromSudo });
  const man = await verifyCaArchive(bk.archive, bk.manifestPath);
  await restoreCa(bk.archive, to, layout.dirs.cadir, { sudo: toSudo, force: true });
  if (opts.record !== false) {
    updateState(inv, (s) => {
      if (s.standby?.host === to.name)
        s.standby.caSync = {
          at: new Date().toISOString(),
          archive: bk.archive,
          archiveSha256: man.archiveSha256,
          files: man.files,
        };
    });
  }
  return { changed: true, archive: bk.archive, files: Object.keys(man.files).length, ms: performance.now() - t0 };
}

/** The CA copy on the standby is exactly the last verified copy recorded in the state. */
export async function caCopyVerified(inv: Inventory, h: Host, sudo: boolean): Promise<{ ok: boolean; why: string }> {
  const rec = readState(inv).standby;
  if (!rec?.caSync || rec.host !== h.name)
    return { ok: false, why: `no verified CA copy is recorded for ${h.name} (run pe-cluster standby ${h.name})` };
  const tree = await caTree(h, inv.layout, sudo);
  const diff = manifestDifferences(new Map(Object.entries(rec.caSync.files)), tree);
  return diff.length
    ? {
        ok: false,
        why: `the CA copy on ${h.name} differs from the copy pushed at ${rec.caSync.at}: ${diff.slice(0, 3).join(', ')}`,
      }
    : { ok: true, why: `the CA copy on ${h.name} matches the verified copy of ${rec.caSync.at} (${tree.size} files)` };
}

/** Copies the CA's CRL (signature checked against the CA certificate) to a master's web-server CRL path; returns whether it changed. */
export async function copyCrl(
  inv: Inventory,
  ca: Host,
  caSudo: boolean,
  target: Host,
  targetSudo: boolean,
): Promise<boolean> {
  const layout = inv.layout;
  const crlSpec = layout.files.hostCrl;
  if (!crlSpec) return false;
  const caCrl = fileOf(layout, 'caCrl').path;
  const pem = (await ca.readFile(caCrl, { sudo: caSudo })).toString('utf8');
  const caPem = (await ca.readFile(fileOf(layout, 'caCert').path, { sudo: caSudo })).toString('utf8');
  const { X509Certificate } = await import('node:crypto');
  const crl = parseCrl(pem, new X509Certificate(caPem).publicKey);
  if (!crl.signatureValid)
    throw new FailoverError('E_CERT_VERIFY', `${caCrl} on ${ca.name} is not signed by its CA certificate.`, {
      host: ca.name,
    });
  const w = await target.writeFile(crlSpec.path, pem, { sudo: targetSudo, mode: crlSpec.mode, backup: false });
  return w.changed;
}

/** Database credentials of a master's services (passwords registered with the redactor). */
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

export function sshPreflight(nodes: readonly InventoryNode[]): Step[] {
  return nodes.map((m) =>
    checkOnly('preflight.ssh', m.name, 'reachable over SSH with a verified host key (and sudo)', async (ctx) => {
      await ctx.host.exec(['true'], { readOnly: true, sudo: m.sudo, timeoutMs: 30_000 });
      return { done: true, why: 'reachable, host key verified' };
    }),
  );
}

export async function reachable(h: Host, timeoutMs = 5_000): Promise<boolean> {
  return hostReachable(h, timeoutMs);
}

/** Apply edits; reload puppetserver when they changed something. */
export async function editAndReload(h: Host, inv: Inventory, edits: Edit[], sudo: boolean): Promise<boolean> {
  const rs = await applyEdits(h, edits, { sudo });
  const changed = rs.some((r) => r.changed);
  // a stopped puppetserver reads the files when it starts (found on the lab: a host back from a power cut may not run it yet)
  if (changed && (await serviceActive(h, inv.layout, inv.layout.services.puppetserver, sudo)))
    await reload(h, inv.layout, inv.layout.services.puppetserver, sudo);
  return changed;
}

/** Restart a running service, start a stopped one. */
export async function restartOrStart(h: Host, layout: Layout, service: string, sudo: boolean): Promise<void> {
  const verb = (await serviceActive(h, layout, service, sudo)) ? 'serviceRestart' : 'serviceStart';
  await h.exec(buildCommand(layout, verb, { service }), { sudo, timeoutMs: 10 * 60_000 });
}

/** puppetserver on this host answers the CA API (GET /puppet-ca/v1/certificate/ca is 200); undefined when it cannot be asked (service not running here, no curl). */
export async function caApiAnswers(h: Host, layout: Layout, sudo: boolean): Promise<boolean | undefined> {
  if (!(await serviceActive(h, layout, layout.services.puppetserver, sudo))) return undefined;
  const r = await h.exec(
    [
      'curl',
      '-sk',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '--max-time',
      '5',
      'https://127.0.0.1:8140/puppet-ca/v1/certificate/ca',
    ],
    { readOnly: true, allowFailure: true, timeoutMs: 15_000 },
  );
  if (r.code === 127) return undefined;
  return r.stdout.trim() === '200';
}

/** PuppetDB on this host answers a query that needs its database (undefined when it is not running here or there is no curl). */
export async function puppetdbAnswers(h: Host, layout: Layout, sudo: boolean): Promise<boolean | undefined> {
  if (!(await serviceActive(h, layout, layout.services.puppetdb, sudo))) return undefined;
  const r = await h.exec(
    ['curl', '-sf', '-o', '/dev/null', '--max-time', '10', 'http://127.0.0.1:8080/pdb/query/v4/nodes?limit=1'],
    { readOnly: true, allowFailure: true, timeoutMs: 20_000 },
  );
  if (r.code === 127) return undefined;
  return r.code === 0;
}

export async function pollUntil(
  fn: () => Promise<boolean | undefined>,
  timeoutMs: number,
  intervalMs = 500,
): Promise<boolean | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== false || Date.now() >= deadline) return v;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
