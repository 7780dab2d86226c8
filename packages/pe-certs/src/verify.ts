import type { Host } from '@pe-stack/pe-host';
import { validateRemotePath } from '@pe-stack/pe-host';
import { checkAltNames } from './backend.js';
import { parseCrl, type ParsedCrl } from './der.js';
import { CertError, CertVerifyError } from './errors.js';
import { publicKeyMemo, type PublicKeyMemo } from './keymemo.js';
import { Openssl, type OpensslOptions } from './openssl.js';
import { canonicalPublicKey, inspectCert, type CertInfo } from './x509.js';

/**
 * Verification: everything a node needs for agents to trust it and for it
 * to trust agents. Pure checks (certificate against CA and CRL) are separate
 * from the node-level ones that read files on the host, so that the pure part
 * can verify thousands of certificates quickly.
 */
export type CheckLevel = 'ok' | 'warn' | 'fail' | 'skip';

export type CheckId =
  | 'cert-present'
  | 'parse'
  | 'name'
  | 'chain'
  | 'alt-names'
  | 'expiry'
  | 'revoked'
  | 'ca-copy'
  | 'crl-present'
  | 'crl-signed'
  | 'crl-current'
  | 'crl-fresh'
  | 'key-match';

export interface Check {
  id: CheckId;
  level: CheckLevel;
  detail: string;
}

/** The cluster CA and its current CRL, parsed once. */
export interface Trust {
  ca: CertInfo;
  caPem: string;
  crl: ParsedCrl | undefined;
  crlPem: string | undefined;
}

/** Parses the CA certificate and CRL; refuses a CRL that the CA did not sign. */
export function loadTrust(caPem: string, crlPem?: string, host?: string): Trust {
  const ca = inspectCert(caPem, 'the CA certificate');
  if (!ca.isCa)
    throw new CertError('E_CERT_VERIFY', `the CA certificate "${ca.subject}" is not a CA certificate.`, { host });
  let crl: ParsedCrl | undefined;
  if (crlPem !== undefined) {
    crl = parseCrl(crlPem, ca.x509.publicKey);
    if (!crl.signatureValid)
      throw new CertError('E_CERT_VERIFY', `the CRL is not signed by the CA "${ca.subject}".`, { host });
  }
  return { ca, caPem, crl, crlPem };
}

export interface CertExpectations {
  /** The certificate's CN must be this. */
  certname?: string;
  /** Alt names that must be present (certname is implied). */
  altNames?: readonly string[];
  now?: Date;
  /** Warn when the certificate expires within this many days (default 30). */
  warnDays?: number;
}

const DAY = 86_400_000;

/** Checks one certificate against the CA and CRL: name, chain, alt names, validity, revocation. */
export function checkCertificate(
  certPem: string | Buffer,
  trust: Trust,
  exp: CertExpectations = {},
): { info: CertInfo | undefined; checks: Check[] } {
  const checks: Check[] = [];
  let info: CertInfo;
  try {
    info = inspectCert(certPem);
  } catch (e) {
    return { info: undefined, checks: [{ id: 'parse', level: 'fail', detail: (e as Error).message }] };
  }
  const now = exp.now ?? new Date();
  if (exp.certname !== undefined) {
    checks.push(
      info.cn === exp.certname
        ? { id: 'name', level: 'ok', detail: `CN=${info.cn}` }
        : {
            id: 'name',
            level: 'fail',
            detail: `the certificate is for "${info.cn ?? '(no CN)'}", expected "${exp.certname}"`,
          },
    );
  }
  const issued = info.x509.checkIssued(trust.ca.x509) && info.x509.verify(trust.ca.x509.publicKey);
  checks.push(
    issued
      ? { id: 'chain', level: 'ok', detail: `signed by ${trust.ca.subject}` }
      : {
          id: 'chain',
          level: 'fail',
          detail: `issued by "${info.issuer}", not signed by the cluster CA "${trust.ca.subject}" (${trust.ca.fingerprint.slice(0, 23)}...)`,
        },
  );
  if (exp.altNames !== undefined) {
    const v = checkAltNames(info.cn ?? exp.certname ?? '', info.altNames, { allowed: exp.altNames, requireAll: true });
    checks.push(
      v.missing.length
        ? { id: 'alt-names', level: 'fail', detail: `missing alt names: ${v.missing.join(', ')}` }
        : { id: 'alt-names', level: 'ok', detail: info.altNames.join(', ') || '(none)' },
    );
  }
  const warnDays = exp.warnDays ?? 30;
  const left = (info.notAfter.getTime() - now.getTime()) / DAY;
  if (info.notBefore.getTime() > now.getTime())
    checks.push({ id: 'expiry', level: 'fail', detail: `not valid before ${info.notBefore.toISOString()}` });
  else if (left < 0) checks.push({ id: 'expiry', level: 'fail', detail: `expired on ${info.notAfter.toISOString()}` });
  else if (left < warnDays)
    checks.push({
      id: 'expiry',
      level: 'warn',
      detail: `expires in ${Math.floor(left)} days (${info.notAfter.toISOString()})`,
    });
  else checks.push({ id: 'expiry', level: 'ok', detail: `valid until ${info.notAfter.toISOString()}` });
  if (!trust.crl) checks.push({ id: 'revoked', level: 'skip', detail: 'no CRL given' });
  else if (trust.crl.revoked.has(info.serial))
    checks.push({
      id: 'revoked',
      level: 'fail',
      detail: `serial ${info.serial} is revoked (since ${trust.crl.revoked.get(info.serial)!.toISOString()})`,
    });
  else
    checks.push({
      id: 'revoked',
      level: 'ok',
      detail: `serial ${info.serial} not in CRL #${String(trust.crl.crlNumber ?? '?')}`,
    });
  return { info, checks };
}

/** Where a node keeps its certificate material. */
export interface NodeSslPaths {
  cert: string;
  key: string;
  /** The node's copy of the CA certificate. */
  caCert: string;
  /** The CRL file the node's web server uses (puppetserver ssl-crl-path, pe-httpd SSLCARevocationFile). */
  webCrl?: string;
}

/** Puppet's ssldir layout for a certname. */
export function puppetSslPaths(
  ssldir: string,
  certname: string,
): NodeSslPaths & { csr: string; crl: string; publicKey: string } {
  validateRemotePath(ssldir);
  return {
    cert: `${ssldir}/certs/${certname}.pem`,
    key: `${ssldir}/private_keys/${certname}.pem`,
    publicKey: `${ssldir}/public_keys/${certname}.pem`,
    csr: `${ssldir}/certificate_requests/${certname}.pem`,
    caCert: `${ssldir}/certs/ca.pem`,
    crl: `${ssldir}/crl.pem`,
    webCrl: `${ssldir}/crl.pem`,
  };
}

export interface VerifyNodeOptions extends CertExpectations {
  certname: string;
  paths: NodeSslPaths;
  trust: Trust;
  sudo?: boolean;
  /** Passphrase of the node key when it is encrypted (rare); passed to openssl through the environment only. */
  keyPassphrase?: string;
  openssl?: OpensslOptions;
  /**
   * When to ask openssl on the host whether the key matches: `always`
   * (default), or `when-cert-ok`: not when a certificate check (any but the
   * CRL ones) failed already; `key-match` is then `skip` (one command less
   * for a certificate that is replaced anyway).
   */
  keyCheck?: 'always' | 'when-cert-ok';
  /** Public keys already derived (see PublicKeyMemo): default the process-wide `publicKeyMemo`; `false`: ask openssl every time. */
  publicKeys?: PublicKeyMemo | false;
}

export interface NodeReport {
  host: string;
  certname: string;
  ok: boolean;
  checks: Check[];
  failures: Check[];
  warnings: Check[];
  fingerprint: string | undefined;
  notAfter: Date | undefined;
}

function report(host: string, certname: string, checks: Check[], info?: CertInfo): NodeReport {
  const failures = checks.filter((c) => c.level === 'fail');
  return {
    host,
    certname,
    ok: failures.length === 0,
    checks,
    failures,
    warnings: checks.filter((c) => c.level === 'warn'),
    fingerprint: info?.fingerprint,
    notAfter: info?.notAfter,
  };
}

async function readPublic(host: Host, path: string, sudo: boolean): Promise<string | undefined> {
  if (!(await host.exists(path, { sudo }))) return undefined;
  return (await host.readFile(path, { sudo })).toString('utf8');
}

/**
 * Verifies a node's certificate material where it lives. Reads only public
 * files; the private key is checked by openssl on the host, which prints the
 * public half: the key itself is never read here.
 */
export async function verifyNode(host: Host, o: VerifyNodeOptions): Promise<NodeReport> {
  const sudo = o.sudo ?? false;
  const now = o.now ?? new Date();
  const certPem = await readPublic(host, o.paths.cert, sudo);
  if (certPem === undefined)
    return report(host.name, o.certname, [
      { id: 'cert-present', level: 'fail', detail: `${o.paths.cert} does not exist` },
    ]);
  const { info, checks } = checkCertificate(certPem, o.trust, { ...o, now });
  checks.unshift({ id: 'cert-present', level: 'ok', detail: o.paths.cert });
  if (!info) return report(host.name, o.certname, checks);

  checks.push(await caCopyCheck(host, o, sudo));
  if (o.paths.webCrl !== undefined)
    checks.push(...(await webCrlChecks(host, { ...o, sudo, now, webCrl: o.paths.webCrl })));
  checks.push(await keyMatchCheck(host, { ...o, sudo, info, earlierChecks: checks }));
  return report(host.name, o.certname, checks, info);
}

/** The node's copy of the CA certificate must be the cluster CA. */
async function caCopyCheck(host: Host, o: VerifyNodeOptions, sudo: boolean): Promise<Check> {
  const caCopy = await readPublic(host, o.paths.caCert, sudo);
  if (caCopy === undefined) return { id: 'ca-copy', level: 'fail', detail: `${o.paths.caCert} does not exist` };
  let fp: string | undefined;
  try {
    fp = inspectCert(caCopy).fingerprint;
  } catch {
    fp = undefined;
  }
  return fp === o.trust.ca.fingerprint
    ? { id: 'ca-copy', level: 'ok', detail: o.paths.caCert }
    : { id: 'ca-copy', level: 'fail', detail: `${o.paths.caCert} is not the cluster CA certificate` };
}

interface WebCrlCheckOptions {
  webCrl: string;
  trust: Trust;
  sudo: boolean;
  now: Date;
}

/** The CRL the node's web server uses: present, signed by the cluster CA, the CA's current one, not past nextUpdate. */
async function webCrlChecks(host: Host, o: WebCrlCheckOptions): Promise<Check[]> {
  const crlPem = await readPublic(host, o.webCrl, o.sudo);
  if (crlPem === undefined) return [{ id: 'crl-present', level: 'fail', detail: `${o.webCrl} does not exist` }];
  const checks: Check[] = [{ id: 'crl-present', level: 'ok', detail: o.webCrl }];
  let crl: ParsedCrl;
  try {
    crl = parseCrl(crlPem, o.trust.ca.x509.publicKey);
  } catch (e) {
    checks.push({ id: 'crl-signed', level: 'fail', detail: `${o.webCrl}: ${(e as Error).message}` });
    return checks;
  }
  checks.push(
    crl.signatureValid
      ? { id: 'crl-signed', level: 'ok', detail: 'signed by the cluster CA' }
      : { id: 'crl-signed', level: 'fail', detail: `${o.webCrl} is not signed by the cluster CA` },
  );
  checks.push(crlCurrentCheck(crl, crlPem, o));
  checks.push(crlFreshCheck(crl, o.now));
  return checks;
}

/** Whether the node's CRL is the CA's current one (same text, or same number and thisUpdate). */
function crlCurrentCheck(crl: ParsedCrl, crlPem: string, o: WebCrlCheckOptions): Check {
  const cur = o.trust.crl;
  if (!cur) return { id: 'crl-current', level: 'skip', detail: "the CA's CRL was not given" };
  // A CRL of another CA can match the cluster CA's number and second by chance; it is never current.
  if (!crl.signatureValid)
    return { id: 'crl-current', level: 'skip', detail: 'not signed by the cluster CA (see crl-signed)' };
  if (
    crlPem === o.trust.crlPem ||
    (crl.crlNumber !== undefined &&
      crl.crlNumber === cur.crlNumber &&
      crl.thisUpdate.getTime() === cur.thisUpdate.getTime())
  )
    return { id: 'crl-current', level: 'ok', detail: `CRL #${String(crl.crlNumber ?? '?')}` };
  return {
    id: 'crl-current',
    level: 'fail',
    detail: `${o.webCrl} is CRL #${String(crl.crlNumber ?? '?')} of ${crl.thisUpdate.toISOString()}, the CA's current one is #${String(cur.crlNumber ?? '?')} of ${cur.thisUpdate.toISOString()}`,
  };
}

function crlFreshCheck(crl: ParsedCrl, now: Date): Check {
  if (crl.nextUpdate && crl.nextUpdate.getTime() < now.getTime())
    return {
      id: 'crl-fresh',
      level: 'fail',
      detail: `the CRL's nextUpdate ${crl.nextUpdate.toISOString()} has passed`,
    };
  return {
    id: 'crl-fresh',
    level: 'ok',
    detail: crl.nextUpdate ? `next update ${crl.nextUpdate.toISOString()}` : 'no nextUpdate',
  };
}

interface KeyMatchCheckOptions extends VerifyNodeOptions {
  sudo: boolean;
  /** The certificate the key must belong to. */
  info: CertInfo;
  /** The checks so far: with `keyCheck: 'when-cert-ok'`, a failed certificate check skips the key. */
  earlierChecks: readonly Check[];
}

/** Whether the private key belongs to the certificate, asked of openssl on the host (or of the memo). */
async function keyMatchCheck(host: Host, o: KeyMatchCheckOptions): Promise<Check> {
  // the key's attributes (free from a file cache) say whether an earlier answer of openssl still holds
  const keyStat = await host.stat(o.paths.key, { sudo: o.sudo });
  const certFails = o.earlierChecks.some((c) => c.level === 'fail' && !c.id.startsWith('crl-'));
  if (!keyStat) return { id: 'key-match', level: 'fail', detail: `${o.paths.key} does not exist` };
  if (o.keyCheck === 'when-cert-ok' && certFails)
    return { id: 'key-match', level: 'skip', detail: `${o.paths.key} not checked: the certificate fails already` };
  const memo = o.publicKeys === false || o.keyPassphrase !== undefined ? undefined : (o.publicKeys ?? publicKeyMemo);
  try {
    let pub = memo?.get(host.name, o.paths.key, o.sudo, keyStat);
    if (pub === undefined) {
      pub = await new Openssl(host, { ...o.openssl, sudo: o.sudo }).publicKeyOf(o.paths.key, o.keyPassphrase);
      memo?.set(host.name, o.paths.key, o.sudo, keyStat, pub);
    }
    return canonicalPublicKey(pub) === canonicalPublicKey(o.info.publicKeyPem)
      ? { id: 'key-match', level: 'ok', detail: o.paths.key }
      : { id: 'key-match', level: 'fail', detail: `${o.paths.key} does not match the certificate` };
  } catch (e) {
    return {
      id: 'key-match',
      level: 'fail',
      detail: `${o.paths.key} cannot be read by openssl (${(e as { code?: string }).code ?? 'error'})`,
    };
  }
}

/** Throws CertVerifyError (naming host, cert and every failed check) unless the report is ok. */
export function assertVerified(r: NodeReport): NodeReport {
  if (!r.ok)
    throw new CertVerifyError(
      r.host,
      r.certname,
      r.failures.map((f) => ({ id: f.id, detail: f.detail })),
    );
  return r;
}
