import type { Host } from '@pe-stack/pe-host';
import {
  backupPath,
  isProtectedPath,
  manifestDifferences,
  tailLines,
  validateHostname,
  validateRemotePath,
} from '@pe-stack/pe-host';
import { validateCertname, type CaBackend } from './backend.js';
import type { NodeAgent } from './enroll.js';
import { CertError, CertVerifyError } from './errors.js';
import { publicKeyMemo, type PublicKeyMemo } from './keymemo.js';
import { altNameEntry } from './openssl.js';
import { assertVerified, loadTrust, puppetSslPaths, verifyNode, type NodeReport, type NodeSslPaths } from './verify.js';

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
  /** Public keys already derived from private keys (default the process-wide `publicKeyMemo`; `false`: none), see verifyNode. */
  publicKeys?: PublicKeyMemo | false;
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
export function masterAltNames(
  certname: string,
  ownNames: readonly string[],
  generalCname: string,
  primaryCname: string,
): string[] {
  for (const n of [generalCname, primaryCname]) validateHostname(n);
  return [...new Set([certname, ...ownNames, generalCname, primaryCname].map(altNameEntry))].map((n) =>
    n.replace(/^DNS:/, ''),
  );
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
  const r = await host.exec(['sh', '-c', COPY_SCRIPT, 'sh', src, dst], { sudo, changesFiles: [dst] });
  const lines = r.stdout.split('\n').map((l) => l.replace(/\r$/, ''));
  if (lines.includes('#exists'))
    throw new CertError('E_CA_BACKUP', `${dst} already exists; refusing to copy over it.`, { host: host.name });
  // a plan (DryRunHost) records the command without running it: nothing to verify, which is not a verified copy
  if (!lines.includes('#src') || !lines.includes('#end'))
    throw new CertError('E_CA_BACKUP', `the copy of ${src} at ${dst} could not be verified (no manifests).`, {
      host: host.name,
    });
  const a = manifestBetween(lines, '#src', '#dst');
  const b = manifestBetween(lines, '#dst', '#end');
  const diff = manifestDifferences(a, b);
  if (diff.length)
    throw new CertError('E_CA_BACKUP', `the copy of ${src} at ${dst} does not match: ${diff.slice(0, 5).join(', ')}.`, {
      host: host.name,
    });
  return a.size;
}

/** How many backup names (base, base-1, ... base-9) the clearing script may choose from: each is declared as a path it may change. */
const BACKUP_NAMES = 10;

// Backup, verify, clear, in ONE command, destructive only after the verification: nothing to back up when the
// source is absent (it is created); else the first free name among the candidates, `cp -a`, the sha256 manifests
// of both trees (hashes only travel), compared here; only when they are equal is the source removed and made
// again, empty, with the given mode. Markers say how far it got: #dst, #verified, #removed, #cleared.
const CLEAR_SCRIPT = [
  'set -e',
  'src=$1; mode=$2; shift 2',
  'if [ ! -e "$src" ] && [ ! -L "$src" ]; then echo "#nosrc"; mkdir -p -m "$mode" -- "$src"; echo "#cleared"; exit 0; fi',
  'dst=',
  'for c do if [ ! -e "$c" ] && [ ! -L "$c" ]; then dst=$c; break; fi; done',
  'if [ -z "$dst" ]; then echo "#nofree"; exit 0; fi',
  'echo "#dst $dst"',
  'cp -a -- "$src" "$dst"',
  'm() { ( cd -- "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum -- ); }',
  'a=$(m "$src")',
  'b=$(m "$dst")',
  'printf "#src\\n%s\\n#dst\\n%s\\n#end\\n" "$a" "$b"',
  'if [ "$a" != "$b" ]; then echo "#differs"; exit 0; fi',
  'echo "#verified"',
  'rm -rf -- "$src"',
  'echo "#removed"',
  'mkdir -m "$mode" -- "$src"',
  'echo "#cleared"',
].join('\n');

/** Paths no clearing may ever remove (pe-host's protected paths, which Host.remove refuses too). */
function assertClearable(host: string, path: string): void {
  if (isProtectedPath(path))
    throw new CertError('E_CA_BACKUP', `refusing to clear ${path}: it is too close to the root of the file system.`, {
      host,
    });
}

export interface ClearResult {
  /** The verified copy, when the directory existed. */
  backup?: string;
  files: number;
  /** The directory is empty now (made again). */
  cleared: boolean;
}

/**
 * Makes a verified `cp -a` copy of `dir` under the first free name of
 * `base` (base, base-1, ... base-9) and only then replaces `dir` by an empty
 * directory (`mode`), in ONE command (one round trip): the sha256 manifests
 * of both trees are compared on the host before anything is removed, and a
 * copy that differs removes nothing (E_CA_BACKUP). An absent `dir` is just
 * created. Declares the paths it may change (`changesFiles`).
 *
 * When the script stops after the verification but before `dir` was made
 * again (rm or mkdir failed), `cleared` is false and `backup` names the
 * verified copy: the caller puts it back.
 */
export async function clearWithVerifiedBackup(
  host: Host,
  dir: string,
  base: string,
  o: { sudo: boolean; mode?: number },
): Promise<ClearResult> {
  validateRemotePath(dir);
  validateRemotePath(base);
  assertClearable(host.name, dir);
  const candidates = Array.from({ length: BACKUP_NAMES }, (_, i) => (i === 0 ? base : `${base}-${i}`));
  const mode = (o.mode ?? 0o771).toString(8);
  const r = await host.exec(['sh', '-c', CLEAR_SCRIPT, 'sh', dir, mode, ...candidates], {
    sudo: o.sudo,
    allowFailure: true,
    changesFiles: [dir, ...candidates],
  });
  const lines = r.stdout.split('\n').map((l) => l.replace(/\r$/, ''));
  const has = (m: string) => lines.includes(m);
  const tail = () => host.redactor.redact(tailLines((r.stderr.trim() || r.stdout.trim()).replace(/\r/g, ''), 3));
  if (has('#nosrc')) {
    if (r.code !== 0 || !has('#cleared'))
      throw new CertError('E_CA_BACKUP', `creating ${dir} failed (exit ${r.code}): ${tail()}`, { host: host.name });
    return { files: 0, cleared: true };
  }
  if (has('#nofree'))
    throw new CertError(
      'E_CA_BACKUP',
      `no free backup name for ${dir} (${base} to ${candidates.at(-1)!} exist); nothing was removed.`,
      { host: host.name },
    );
  const dst = lines.find((l) => l.startsWith('#dst '))?.slice('#dst '.length);
  // a plan (DryRunHost) records the command without running it: nothing verified, which is not a verified copy
  if (!dst || !has('#src') || !has('#end')) {
    throw new CertError(
      'E_CA_BACKUP',
      `the copy of ${dir} could not be verified (no manifests${r.code !== 0 ? `; exit ${r.code}: ${tail()}` : ''}); nothing was removed.`,
      { host: host.name },
    );
  }
  const a = manifestBetween(lines, '#src', '#dst');
  const diff = manifestDifferences(a, manifestBetween(lines, '#dst', '#end'));
  if (!has('#verified')) {
    throw new CertError(
      'E_CA_BACKUP',
      `the copy of ${dir} at ${dst} does not match${diff.length ? `: ${diff.slice(0, 5).join(', ')}` : ` (exit ${r.code}: ${tail()})`}; nothing was removed.`,
      { host: host.name },
    );
  }
  // the host said equal, the manifests it printed differ: never trust such a run (a cleared dir is reported as not cleared: the caller puts the copy back)
  if (diff.length && !has('#removed'))
    throw new CertError(
      'E_CA_BACKUP',
      `the manifests of ${dir} and ${dst} differ: ${diff.slice(0, 5).join(', ')}; nothing was removed.`,
      { host: host.name },
    );
  return { backup: dst, files: a.size, cleared: r.code === 0 && has('#cleared') && diff.length === 0 };
}

// CRL freshness is CRL sync's business, not a reason to replace a certificate
const CERT_CHECKS = new Set([
  'cert-present',
  'parse',
  'name',
  'chain',
  'alt-names',
  'expiry',
  'revoked',
  'ca-copy',
  'key-match',
]);

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
  const r = regeneration(o);
  const { node, certname, altNames, log } = r;
  // a certificate that fails already is replaced whatever its key: openssl is asked only when the rest is fine
  const before = await verifyNodeCert(r, 'when-cert-ok');
  const certProblems = before.failures.filter((f) => CERT_CHECKS.has(f.id));
  if (certProblems.length === 0) {
    log(`${node.name}: ${certname} already carries a valid certificate from the cluster CA`);
    return {
      node: node.name,
      certname,
      changed: false,
      reason: 'already valid',
      altNames,
      report: assertVerified(before),
    };
  }
  const reason = certProblems.map((f) => `${f.id}: ${f.detail}`).join('; ');
  log(`${node.name}: regenerating ${certname} (${reason})`);

  const cleared = await backUpAndClearSsldir(r);
  const backup = cleared.backup;
  try {
    if (!cleared.cleared)
      throw new CertError(
        'E_CA_BACKUP',
        `${r.ssldir} could not be cleared after its verified backup to ${backup ?? '?'}.`,
        { host: node.name, certname },
      );
    const after = await issueNodeCert(r);
    return { node: node.name, certname, changed: true, reason, ...(backup ? { backup } : {}), altNames, report: after };
  } catch (e) {
    return restoreSsldir(r, { backup, cause: e });
  }
}

/** One regeneration's settled inputs. */
interface Regeneration {
  o: RegenerateOptions;
  node: Host;
  ca: CaBackend;
  agent: NodeAgent;
  certname: string;
  sudo: boolean;
  log: (line: string) => void;
  altNames: string[];
  ssldir: string;
  paths: NodeSslPaths;
  publicKeys: PublicKeyMemo | false;
  /** The memo whose keys below the ssldir are forgotten when the ssldir changes. */
  memo: PublicKeyMemo | undefined;
}

function regeneration(o: RegenerateOptions): Regeneration {
  const certname = validateCertname(o.certname);
  const altNames = masterAltNames(certname, o.ownNames ?? [], o.generalCname, o.primaryCname);
  const ssldir = o.agent.ssldir;
  const base = puppetSslPaths(ssldir, certname);
  const publicKeys = o.publicKeys ?? publicKeyMemo;
  return {
    o,
    node: o.node,
    ca: o.ca,
    agent: o.agent,
    certname,
    sudo: o.sudo ?? false,
    log: o.log ?? (() => undefined),
    altNames,
    ssldir,
    paths: { cert: base.cert, key: base.key, caCert: base.caCert, ...(o.webCrl ? { webCrl: o.webCrl } : {}) },
    publicKeys,
    memo: publicKeys === false ? undefined : publicKeys,
  };
}

/** Verifies the node's certificate against the CA's current certificate and CRL. */
async function verifyNodeCert(r: Regeneration, keyCheck: 'always' | 'when-cert-ok'): Promise<NodeReport> {
  return verifyNode(r.node, {
    certname: r.certname,
    paths: r.paths,
    trust: loadTrust(await r.ca.caCertificate(), await r.ca.crl(), r.ca.host.name),
    altNames: r.altNames,
    sudo: r.sudo,
    keyCheck,
    publicKeys: r.publicKeys,
    ...(r.o.now ? { now: r.o.now } : {}),
  });
}

async function backUpAndClearSsldir(r: Regeneration): Promise<ClearResult> {
  const { node, ssldir } = r;
  // the verified backup copy, the ssldir cleared and made again: one command, the removal only after the copy's manifests compared equal
  const cleared = await clearWithVerifiedBackup(node, ssldir, backupPath(ssldir, r.o.now ?? new Date()), {
    sudo: r.sudo,
    mode: 0o771,
  });
  // the keys below the ssldir are new from here on
  r.memo?.forgetUnder(node.name, ssldir);
  if (cleared.backup)
    r.log(`${node.name}: ssldir backed up to ${cleared.backup} (${cleared.files} files, manifests equal)`);
  return cleared;
}

/** The old entry cleaned on the CA, a new request submitted, signed with exactly the alt names, fetched and verified. */
async function issueNodeCert(r: Regeneration): Promise<NodeReport> {
  const { node, ca, agent, certname, altNames, o } = r;
  const listed = !(o.listOnlyWithFiles && ca.hasFiles) || (await ca.hasFiles(certname));
  const entry = listed ? (await ca.list()).find((e) => e.name === certname) : undefined;
  if (entry) {
    r.log(`${ca.host.name}: cleaning the CA's ${entry.state} entry for ${certname}`);
    await ca.clean(certname);
  }
  await agent.submit(node, certname, altNames);
  await ca.sign(
    certname,
    { allowed: altNames, requireAll: true },
    o.signFromRequestFile ? { fromRequestFile: true } : {},
  );
  await agent.fetch(node, certname);
  const after = await verifyNodeCert(r, 'always');
  if (!after.ok) throw new CertVerifyError(node.name, certname, after.failures);
  return after;
}

/** Puts the backup back (when there is one) so the node keeps its old identity, then throws the cause as a CertError. */
async function restoreSsldir(r: Regeneration, f: { backup: string | undefined; cause: unknown }): Promise<never> {
  const { node, ssldir, sudo, certname } = r;
  const { backup, cause } = f;
  if (backup) {
    await node.remove(ssldir, { sudo, recursive: true });
    await verifiedLocalCopy(node, backup, ssldir, sudo);
    r.memo?.forgetUnder(node.name, ssldir);
    r.log(`${node.name}: restored ${ssldir} from ${backup}`);
  }
  if (cause instanceof CertError) throw cause;
  throw new CertError('E_CERT_VERIFY', `regenerating "${certname}" failed: ${(cause as Error).message}`, {
    host: node.name,
    certname,
    cause,
    hint: backup ? `The previous ssldir was put back from ${backup}.` : undefined,
  });
}
