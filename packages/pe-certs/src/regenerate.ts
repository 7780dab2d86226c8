import type { Host } from '@pe-stack/pe-host';
import { backupPath, manifestDifferences, validateHostname, validateRemotePath } from '@pe-stack/pe-host';
import { validateCertname, type CaBackend } from './backend.js';
import type { NodeAgent } from './enroll.js';
import { CertError, CertVerifyError } from './errors.js';
import { altNameEntry } from './openssl.js';
import { assertVerified, loadTrust, puppetSslPaths, verifyNode, type NodeReport } from './verify.js';

export interface RegenerateOptions {
  node: Host;
  ca: CaBackend;
  agent: NodeAgent;
  certname: string;
  /** The node's own names besides its certname (short name, other FQDNs). */
  ownNames?: readonly string[];
  /** The name that reaches every master (load balancer). */
  generalCname: string;
  /** The name of the current primary: carried so that this node can become primary later. */
  primaryCname: string;
  /** The CRL file the node's web server uses, to verify as well (optional). */
  webCrl?: string;
  /** Sign from the request file alone, without listing the CA first (see SignOptions.fromRequestFile). */
  signFromRequestFile?: boolean;
  /** Look for an old entry on the CA (to clean it) only when the CA holds a file for the name (CaBackend.hasFiles): a new name costs no listing of the whole CA. */
  listOnlyWithFiles?: boolean;
  sudo?: boolean;
  now?: Date;
  log?: (line: string) => void;
}

export interface RegenerateResult {
  node: string;
  certname: string;
  changed: boolean;
  /** Why the certificate was (or was not) regenerated. */
  reason: string;
  /** The verified copy of the old ssldir on the node, when one was made. */
  backup?: string;
  altNames: string[];
  report: NodeReport;
}

/** The alt names a master's certificate carries: its own names + general_cname + primary_cname. */
export function masterAltNames(certname: string, ownNames: readonly string[], generalCname: string, primaryCname: string): string[] {
  for (const n of [generalCname, primaryCname]) validateHostname(n);
  return [...new Set([certname, ...ownNames, generalCname, primaryCname].map(altNameEntry))].map((n) => n.replace(/^DNS:/, ''));
}

/** The sha256 manifest lines (`sha256sum` output, paths relative to the tree) between two marker lines. */
function manifestBetween(lines: readonly string[], from: string, to: string | undefined): Map<string, string> {
  const m = new Map<string, string>();
  const start = lines.indexOf(from);
  const end = to === undefined ? lines.length : lines.indexOf(to);
  for (const line of lines.slice(start + 1, end)) {
    const match = /^\\?([0-9a-f]{64}) {2}(.*)$/.exec(line);
    if (match) m.set(match[2]!.replace(/^\.\//, ''), match[1]!);
  }
  return m;
}

// one command: refuse an existing destination, `cp -a`, then the sha256 manifest of both trees (hashes only travel)
const COPY_SCRIPT = [
  'set -e',
  'if [ -e "$2" ] || [ -L "$2" ]; then echo "#exists"; exit 0; fi',
  'cp -a -- "$1" "$2"',
  'm() { ( cd -- "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum -- ); }',
  'echo "#src"; m "$1"; echo "#dst"; m "$2"; echo "#end"',
].join('\n');

/**
 * Copies a directory on one host with `cp -a` (owners, modes, times kept;
 * nothing crosses the network) and proves the copy with sha256 manifests
 * taken on both sides, in one command (one round trip). An existing
 * destination is refused, never copied over.
 */
export async function verifiedLocalCopy(host: Host, src: string, dst: string, sudo: boolean): Promise<number> {
  validateRemotePath(src);
  validateRemotePath(dst);
  const r = await host.exec(['sh', '-c', COPY_SCRIPT, 'sh', src, dst], { sudo });
  const lines = r.stdout.split('\n').map((l) => l.replace(/\r$/, ''));
  if (lines.includes('#exists')) throw new CertError('E_CA_BACKUP', `${dst} already exists; refusing to copy over it.`, { host: host.name });
  // a plan (DryRunHost) records the command without running it: nothing to verify, which is not a verified copy
  if (!lines.includes('#src') || !lines.includes('#end')) throw new CertError('E_CA_BACKUP', `the copy of ${src} at ${dst} could not be verified (no manifests).`, { host: host.name });
  const a = manifestBetween(lines, '#src', '#dst');
  const b = manifestBetween(lines, '#dst', '#end');
  const diff = manifestDifferences(a, b);
  if (diff.length) throw new CertError('E_CA_BACKUP', `the copy of ${src} at ${dst} does not match: ${diff.slice(0, 5).join(', ')}.`, { host: host.name });
  return a.size;
}

// backupCopy: nothing when the source is absent; else the first free name of base, base-1, base-2, ...; `cp -a`; both manifests
const BACKUP_SCRIPT = [
  'set -e',
  'if [ ! -e "$1" ] && [ ! -L "$1" ]; then echo "#nosrc"; exit 0; fi',
  'dst=$2; i=0',
  'while [ -e "$dst" ] || [ -L "$dst" ]; do i=$((i + 1)); dst="$2-$i"; done',
  'echo "#dst $dst"',
  'cp -a -- "$1" "$dst"',
  'm() { ( cd -- "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum -- ); }',
  'echo "#src"; m "$1"; echo "#dst"; m "$dst"; echo "#end"',
].join('\n');

/** A verified `cp -a` copy of `src` under the first free name of `base` (base, base-1, ...), in one command; undefined when src does not exist. */
async function backupCopy(host: Host, src: string, base: string, sudo: boolean): Promise<{ dst: string; files: number } | undefined> {
  validateRemotePath(src);
  validateRemotePath(base);
  const r = await host.exec(['sh', '-c', BACKUP_SCRIPT, 'sh', src, base], { sudo });
  const lines = r.stdout.split('\n').map((l) => l.replace(/\r$/, ''));
  if (lines.includes('#nosrc')) return undefined;
  const dst = lines.find((l) => l.startsWith('#dst '))?.slice('#dst '.length);
  // a plan (DryRunHost) records the command without running it: nothing to verify, which is not a verified copy
  if (!dst || !lines.includes('#src') || !lines.includes('#end')) throw new CertError('E_CA_BACKUP', `the copy of ${src} could not be verified (no manifests).`, { host: host.name });
  const diff = manifestDifferences(manifestBetween(lines, '#src', '#dst'), manifestBetween(lines, '#dst', '#end'));
  if (diff.length) throw new CertError('E_CA_BACKUP', `the copy of ${src} at ${dst} does not match: ${diff.slice(0, 5).join(', ')}.`, { host: host.name });
  return { dst, files: manifestBetween(lines, '#src', '#dst').size };
}

// CRL freshness is CRL sync's business, not a reason to replace a certificate
const CERT_CHECKS = new Set(['cert-present', 'parse', 'name', 'chain', 'alt-names', 'expiry', 'revoked', 'ca-copy', 'key-match']);

/**
 * Gives a node a certificate signed by the cluster CA with the shared alt
 * names. Idempotent: a node whose certificate already chains to this CA, has
 * the names, is not expired or revoked and matches its key is left alone.
 * Otherwise: verified backup of the ssldir (on the node: private keys stay
 * there), clear it, clean the old entry on the CA, submit, sign allowing
 * exactly those names, fetch, verify. When anything fails after the ssldir
 * was cleared, the backup is put back so the node keeps its old identity.
 */
export async function regenerateNodeCert(o: RegenerateOptions): Promise<RegenerateResult> {
  const { node, ca, agent } = o;
  const certname = validateCertname(o.certname);
  const sudo = o.sudo ?? false;
  const log = o.log ?? (() => undefined);
  const altNames = masterAltNames(certname, o.ownNames ?? [], o.generalCname, o.primaryCname);
  const ssldir = agent.ssldir;
  const base = puppetSslPaths(ssldir, certname);
  const paths = { cert: base.cert, key: base.key, caCert: base.caCert, ...(o.webCrl ? { webCrl: o.webCrl } : {}) };
  const verify = async () =>
    verifyNode(node, { certname, paths, trust: loadTrust(await ca.caCertificate(), await ca.crl(), ca.host.name), altNames, sudo, ...(o.now ? { now: o.now } : {}) });

  const before = await verify();
  const certProblems = before.failures.filter((f) => CERT_CHECKS.has(f.id));
  if (certProblems.length === 0) {
    log(`${node.name}: ${certname} already carries a valid certificate from the cluster CA`);
    return { node: node.name, certname, changed: false, reason: 'already valid', altNames, report: assertVerified(before) };
  }
  const reason = certProblems.map((f) => `${f.id}: ${f.detail}`).join('; ');
  log(`${node.name}: regenerating ${certname} (${reason})`);

  // the verified backup copy in one command: only when the ssldir exists, under the first free backup name
  const copied = await backupCopy(node, ssldir, backupPath(ssldir, o.now ?? new Date()), sudo);
  const backup = copied?.dst;
  if (copied) log(`${node.name}: ssldir backed up to ${copied.dst} (${copied.files} files, manifests equal)`);
  const restore = async (cause: unknown): Promise<never> => {
    if (backup) {
      await node.remove(ssldir, { sudo, recursive: true });
      await verifiedLocalCopy(node, backup, ssldir, sudo);
      log(`${node.name}: restored ${ssldir} from ${backup}`);
    }
    if (cause instanceof CertError) throw cause;
    throw new CertError('E_CERT_VERIFY', `regenerating "${certname}" failed: ${(cause as Error).message}`, {
      host: node.name,
      certname,
      cause,
      hint: backup ? `The previous ssldir was put back from ${backup}.` : undefined,
    });
  };

  try {
    if (backup) await node.remove(ssldir, { sudo, recursive: true });
    await node.mkdir(ssldir, { mode: 0o771, sudo });
    const listed = !(o.listOnlyWithFiles && ca.hasFiles) || (await ca.hasFiles(certname));
    const entry = listed ? (await ca.list()).find((e) => e.name === certname) : undefined;
    if (entry) {
      log(`${ca.host.name}: cleaning the CA's ${entry.state} entry for ${certname}`);
      await ca.clean(certname);
    }
    await agent.submit(node, certname, altNames);
    await ca.sign(certname, { allowed: altNames, requireAll: true }, o.signFromRequestFile ? { fromRequestFile: true } : {});
    await agent.fetch(node, certname);
    const after = await verify();
    if (!after.ok) throw new CertVerifyError(node.name, certname, after.failures);
    return { node: node.name, certname, changed: true, reason, ...(backup ? { backup } : {}), altNames, report: after };
  } catch (e) {
    return restore(e);
  }
}
