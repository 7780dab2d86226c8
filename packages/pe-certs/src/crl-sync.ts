import type { Host } from '@pe-stack/pe-host';
import { Semaphore, validateRemotePath } from '@pe-stack/pe-host';
import type { CaBackend } from './backend.js';
import { parseCrl, type ParsedCrl } from './der.js';
import { CertError } from './errors.js';
import { loadTrust } from './verify.js';

export interface CrlTarget {
  host: Host;
  /** The CRL file the host's web server reads (puppetserver ssl-crl-path, pe-httpd SSLCARevocationFile). */
  path: string;
  /** argv that makes the web server re-read the CRL, run only when the file changed (e.g. layout serviceReload). */
  reload?: readonly string[];
  sudo?: boolean;
  owner?: string;
  group?: string;
}

export interface CrlSyncResult {
  host: string;
  path: string;
  changed: boolean;
  reloaded: boolean;
  crlNumber: string | undefined;
  /** Set when the target was left alone on purpose. */
  skipped?: string;
}

/**
 * Copies the CA's current CRL to every secondary's web-server CRL path and
 * reloads the web server only where the file changed. The CRL must be signed
 * by the CA; a target holding a newer CRL from the same CA (higher CRL
 * number) is never downgraded.
 */
export async function syncCrl(
  ca: CaBackend,
  targets: readonly CrlTarget[],
  opts: { concurrency?: number } = {},
): Promise<CrlSyncResult[]> {
  const crlPem = await ca.crl();
  const trust = loadTrust(await ca.caCertificate(), crlPem, ca.host.name);
  const crl = trust.crl!;
  const sem = new Semaphore(opts.concurrency ?? 8);
  return Promise.all(targets.map((t) => sem.run(() => syncOne(t, crlPem, crl, trust.ca.x509.publicKey))));
}

async function syncOne(
  t: CrlTarget,
  pem: string,
  crl: ParsedCrl,
  caKey: Parameters<typeof parseCrl>[1],
): Promise<CrlSyncResult> {
  validateRemotePath(t.path);
  const sudo = t.sudo ?? true;
  const number = crl.crlNumber?.toString();
  if (await t.host.exists(t.path, { sudo })) {
    const current = (await t.host.readFile(t.path, { sudo })).toString('utf8');
    if (current === pem) return { host: t.host.name, path: t.path, changed: false, reloaded: false, crlNumber: number };
    let theirs: ParsedCrl | undefined;
    try {
      theirs = parseCrl(current, caKey);
    } catch {
      theirs = undefined;
    }
    if (
      theirs?.signatureValid &&
      theirs.crlNumber !== undefined &&
      crl.crlNumber !== undefined &&
      theirs.crlNumber > crl.crlNumber
    ) {
      return {
        host: t.host.name,
        path: t.path,
        changed: false,
        reloaded: false,
        crlNumber: theirs.crlNumber.toString(),
        skipped: `holds a newer CRL (#${theirs.crlNumber} > #${crl.crlNumber})`,
      };
    }
  }
  const w = await t.host.writeFile(t.path, pem, {
    mode: 0o644,
    backup: false,
    sudo,
    ...(t.owner ? { owner: t.owner } : {}),
    ...(t.group ? { group: t.group } : {}),
  });
  let reloaded = false;
  if (w.changed && t.reload?.length) {
    const r = await t.host.exec(t.reload, { sudo, allowFailure: true, timeoutMs: 120_000 });
    if (r.code !== 0)
      throw new CertError(
        'E_CA_COMMAND',
        `the CRL was updated at ${t.path} but \`${t.reload.join(' ')}\` exited ${r.code}: ${t.host.redactor.redact(r.stderr.trim().split('\n').slice(-2).join(' '))}`,
        { host: t.host.name },
      );
    reloaded = true;
  }
  return { host: t.host.name, path: t.path, changed: w.changed, reloaded, crlNumber: number };
}
