import { join } from 'node:path';
import { fileOf, type AuthRule, type Edit, type HoconOp, type Layout } from '@pe-stack/pe-config-files';
import { backupCa, parseCrl, puppetSslPaths, restoreCa, verifyCaArchive } from '@pe-stack/pe-certs';
import { manifestDifferences, treeManifest } from '@pe-stack/pe-host';
import type { Inventory } from '../inventory.js';
import { readState, updateState } from '../state.js';
import { FailoverError } from '../errors.js';
import type { Remote } from './cluster-access.js';
import { caCopyRetention, pruneCaArchives, pruneKeptAsideCas, type CaCopyRetention } from './ca-retention.js';
import { serviceActive } from './services.js';

/**
 * On puppetserver layouts, the web server's certificate, key and CA named explicitly (the agent's own): with the
 * CA service disabled nothing fills them in, and puppetserver does not start ("Missing some SSL configuration").
 * None on pe3 (pe-httpd names its files itself).
 */
export function webTlsOps(layout: Layout, certname: string): HoconOp[] {
  if (layout.crl.kind !== 'hocon') return [];
  const tls = puppetSslPaths(layout.dirs.ssldir, certname);
  const at = layout.crl.path.slice(0, -1);
  return [
    { op: 'set', path: [...at, 'ssl-cert'], value: tls.cert },
    { op: 'set', path: [...at, 'ssl-key'], value: tls.key },
    { op: 'set', path: [...at, 'ssl-ca-cert'], value: tls.caCert },
  ];
}

/** The CA itself switched on or off: pe3's `[master] ca`, elsewhere the CA service in services.d/ca.cfg. */
export function caServiceEdit(layout: Layout, want: { enabled: boolean }): Edit {
  return layout.flavour === 'pe3'
    ? {
        kind: 'ini',
        path: fileOf(layout, 'puppetConf').path,
        ops: [{ op: 'set', section: 'master', key: 'ca', value: want.enabled ? 'true' : 'false' }],
      }
    : { kind: 'services', path: fileOf(layout, 'caCfg').path, ops: [{ op: 'ca', enabled: want.enabled }] };
}

/** `[main] ca_server = primary_cname`: every master asks the CA through the name that follows the primary. */
export function caServerEdit(inv: Inventory): Edit {
  return {
    kind: 'ini',
    path: fileOf(inv.layout, 'puppetConf').path,
    ops: [{ op: 'set', section: 'main', key: 'ca_server', value: inv.primaryCname }],
  };
}

function caRoleEdits(inv: Inventory, certname: string, want: { enabled: boolean }): Edit[] {
  const tls = webTlsOps(inv.layout, certname);
  const web: Edit[] = tls.length ? [{ kind: 'hocon', path: fileOf(inv.layout, 'webServerConf').path, ops: tls }] : [];
  return [...web, caServiceEdit(inv.layout, want), caServerEdit(inv)];
}

/** The edits that make master `certname` the CA: web-server TLS files named, CA on, ca_server = primary_cname. */
export function caOnEdits(inv: Inventory, certname: string): Edit[] {
  return caRoleEdits(inv, certname, { enabled: true });
}

/** The edits that make master `certname` no CA: web-server TLS files named, CA off, ca_server = primary_cname. */
export function caOffEdits(inv: Inventory, certname: string): Edit[] {
  return caRoleEdits(inv, certname, { enabled: false });
}

/**
 * The CA gate: an auth.conf rule, first in the list, that denies every CA
 * endpoint except the public CA certificate(s) and the CRL. A puppetserver
 * with its CA service enabled but gated signs nothing; HUP re-reads auth.conf
 * (no JVM cold start), while the CA service itself (services.d) changes only
 * with a restart. So the warm standby runs its CA gated on its verified copy,
 * and failover lifts the gate with a HUP; a CA that must stop signing now is
 * gated with a HUP.
 */
export const CA_GATE: AuthRule = {
  name: 'pe-cluster CA gate',
  match: { path: '^/puppet-ca/v1/(?!certificate/|certificate_revocation_list/)', type: 'regex' },
  deny: '*',
  sortOrder: 1,
};

function gateEdits(inv: Inventory, op: HoconOp): Edit[] {
  const auth = inv.layout.files.authConf;
  if (!auth || inv.layout.crl.kind !== 'hocon') return [];
  return [{ kind: 'hocon', path: auth.path, ops: [op] }];
}

/** The edit that puts the CA gate in; none on layouts without a tk-auth auth.conf (pe3). */
export function gateCaEdits(inv: Inventory): Edit[] {
  return gateEdits(inv, { op: 'auth-rule', rule: CA_GATE });
}

/** The edit that takes the CA gate out; none on layouts without a tk-auth auth.conf (pe3). */
export function liftCaGateEdits(inv: Inventory): Edit[] {
  return gateEdits(inv, { op: 'auth-rule-remove', name: CA_GATE.name });
}

/** What this host's puppetserver does as a CA, asked over HTTPS: signing (an active CA), gated, off (no CA service), no-answer (starting, or an unexpected status); undefined when it does not run here (or there is no curl). */
export type CaServing = 'signing' | 'gated' | 'off' | 'no-answer';
export async function caServing(at: Remote, layout: Layout): Promise<CaServing | undefined> {
  if (!(await serviceActive(at, layout, layout.services.puppetserver))) return undefined;
  // one command: the public CA certificate (200 on any CA, 404 without one), then a CSR that does not exist
  // (404 on a CA that takes requests, 403 where the gate denies it)
  const base = 'https://127.0.0.1:8140/puppet-ca/v1';
  const r = await at.host.exec(
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

/** The CA directory's sha256 manifest on a host (empty when there is none). */
export async function caTree(at: Remote, layout: Layout): Promise<Map<string, string>> {
  if (!(await at.host.exists(layout.dirs.cadir, { sudo: at.sudo }))) return new Map();
  return treeManifest(at.host, layout.dirs.cadir, { sudo: at.sudo });
}

export interface CaSyncResult {
  changed: boolean;
  archive?: string | undefined;
  files: number;
  /** Older CA copies removed by the retention policy (archives on the controller, directories kept aside on the target). */
  pruned?: string[] | undefined;
  ms: number;
}

/**
 * Pushes a verified copy of the CA from `from` to `to`: pe-certs backupCa
 * (streamed to the controller with a sha256 manifest; a CA that changes while
 * it streams is refused), verifyCaArchive, restoreCa on the target (staged,
 * compared with the manifest, swapped in; the previous copy of the same CA
 * removed once the swap is verified). No-op when both trees already match.
 * The archive stays in `<backups>/ca-sync/` and the copy is recorded in the
 * cluster state (unless `record: false`); older archives there and older
 * directories kept aside on the target are pruned by `retention`
 * (ca-retention.ts; the newest verified copy is always kept).
 */
export async function syncCaCopy(
  inv: Inventory,
  from: Remote,
  to: Remote,
  opts: { record?: boolean; retention?: Partial<CaCopyRetention> | undefined } = {},
): Promise<CaSyncResult> {
  const t0 = performance.now();
  const policy = caCopyRetention(opts.retention);
  const layout = inv.layout;
  const [a, b] = await Promise.all([caTree(from, layout), caTree(to, layout)]);
  if (a.size > 0 && manifestDifferences(a, b).length === 0)
    return { changed: false, files: a.size, ms: performance.now() - t0 };
  const bk = await backupCa(from.host, layout.dirs.cadir, join(inv.backupDir, 'ca-sync'), { sudo: from.sudo });
  const man = await verifyCaArchive(bk.archive, bk.manifestPath);
  await restoreCa(bk.archive, to.host, layout.dirs.cadir, { sudo: to.sudo, force: true, previous: 'remove' });
  if (opts.record !== false) {
    updateState(inv, (s) => {
      if (s.standby?.host === to.host.name)
        s.standby.caSync = {
          at: new Date().toISOString(),
          archive: bk.archive,
          archiveSha256: man.archiveSha256,
          files: man.files,
        };
    });
  }
  const pruned = [
    ...(await pruneCaArchives(join(inv.backupDir, 'ca-sync'), policy, { protect: [bk.archive] })),
    ...(await pruneKeptAsideCas(to.host, layout.dirs.cadir, policy, { sudo: to.sudo })),
  ];
  return {
    changed: true,
    archive: bk.archive,
    files: Object.keys(man.files).length,
    pruned,
    ms: performance.now() - t0,
  };
}

/** The CA copy on the standby is exactly the last verified copy recorded in the state. */
export async function caCopyVerified(inv: Inventory, at: Remote): Promise<{ ok: boolean; why: string }> {
  const name = at.host.name;
  const rec = readState(inv).standby;
  if (!rec?.caSync || rec.host !== name)
    return { ok: false, why: `no verified CA copy is recorded for ${name} (run pe-cluster standby ${name})` };
  const tree = await caTree(at, inv.layout);
  const diff = manifestDifferences(new Map(Object.entries(rec.caSync.files)), tree);
  return diff.length
    ? {
        ok: false,
        why: `the CA copy on ${name} differs from the copy pushed at ${rec.caSync.at}: ${diff.slice(0, 3).join(', ')}`,
      }
    : { ok: true, why: `the CA copy on ${name} matches the verified copy of ${rec.caSync.at} (${tree.size} files)` };
}

/** Copies the CA's CRL (signature checked against the CA certificate) to a master's web-server CRL path; returns whether it changed. */
export async function copyCrl(inv: Inventory, ca: Remote, target: Remote): Promise<boolean> {
  const layout = inv.layout;
  const crlSpec = layout.files.hostCrl;
  if (!crlSpec) return false;
  const caCrl = fileOf(layout, 'caCrl').path;
  const pem = (await ca.host.readFile(caCrl, { sudo: ca.sudo })).toString('utf8');
  const caPem = (await ca.host.readFile(fileOf(layout, 'caCert').path, { sudo: ca.sudo })).toString('utf8');
  const { X509Certificate } = await import('node:crypto');
  const crl = parseCrl(pem, new X509Certificate(caPem).publicKey);
  if (!crl.signatureValid)
    throw new FailoverError('E_CERT_VERIFY', `${caCrl} on ${ca.host.name} is not signed by its CA certificate.`, {
      host: ca.host.name,
    });
  const w = await target.host.writeFile(crlSpec.path, pem, { sudo: target.sudo, mode: crlSpec.mode, backup: false });
  return w.changed;
}
