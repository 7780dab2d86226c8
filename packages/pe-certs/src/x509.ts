import { X509Certificate, createPublicKey } from 'node:crypto';
import { CertParseError } from './errors.js';
import { normaliseSerial } from './der.js';

/** What an operator (and a check) needs to know about a certificate; public data only. */
export interface CertInfo {
  /** The subject's common name (the Puppet certname). */
  cn: string | undefined;
  subject: string;
  issuer: string;
  /** Normalised uppercase hex. */
  serial: string;
  notBefore: Date;
  notAfter: Date;
  /** `DNS:x` / `IP:x`, DNS names lowercased. */
  altNames: string[];
  /** SHA-256 fingerprint, colon-separated hex (the form Puppet prints). */
  fingerprint: string;
  isCa: boolean;
  publicKeyPem: string;
  x509: X509Certificate;
}

function cnOf(dn: string): string | undefined {
  for (const line of dn.split('\n')) {
    const m = /^CN=(.*)$/.exec(line.trim());
    if (m) return m[1];
  }
  return undefined;
}

/** Parses node's `subjectAltName` rendering ("DNS:a, IP Address:1.2.3.4"). */
export function parseAltNameText(text: string | undefined): string[] {
  if (!text) return [];
  return text
    .split(/,\s*/)
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) =>
      s.startsWith('IP Address:')
        ? `IP:${s.slice('IP Address:'.length)}`
        : s.startsWith('DNS:')
          ? `DNS:${s.slice(4).toLowerCase()}`
          : s,
    );
}

export function inspectCert(pem: string | Buffer, what = 'a certificate'): CertInfo {
  let x: X509Certificate;
  try {
    x = new X509Certificate(pem);
  } catch (e) {
    throw new CertParseError(what, (e as Error).message);
  }
  return {
    cn: cnOf(x.subject),
    subject: x.subject.replace(/\n/g, ', '),
    issuer: x.issuer.replace(/\n/g, ', '),
    serial: normaliseSerial(x.serialNumber),
    notBefore: new Date(x.validFrom),
    notAfter: new Date(x.validTo),
    altNames: parseAltNameText(x.subjectAltName),
    fingerprint: x.fingerprint256,
    isCa: x.ca,
    publicKeyPem: x.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    x509: x,
  };
}

/** Canonical form of a SubjectPublicKeyInfo PEM, for comparisons. */
export function canonicalPublicKey(pem: string): string {
  return createPublicKey(pem).export({ type: 'spki', format: 'der' }).toString('base64');
}
