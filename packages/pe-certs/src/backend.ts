import type { Host } from '@pe-stack/pe-host';
import { InvalidInputError } from '@pe-stack/pe-host';
import { CsrRefusedError } from './errors.js';
import { altNameEntry } from './openssl.js';

/** `invalid`: signed but failing the CA's own verification for another reason than revocation (puppet cert's `-`). */
export type CertState = 'requested' | 'signed' | 'revoked' | 'invalid';

/** One certificate or request as a CA lists it. */
export interface CertEntry {
  name: string;
  state: CertState;
  /** SHA-256 fingerprint, colon-separated hex, when the CA reports it. */
  fingerprint?: string;
  /** `DNS:x` / `IP:x`, when the CA reports them. */
  altNames?: string[];
  /** Normalised uppercase hex, when known. */
  serial?: string;
  notAfter?: Date;
  /** Why the CA calls it invalid (e.g. "certificate has expired"). */
  problem?: string;
}

/** Which alt names a request may carry. The certname itself is always allowed. */
export interface AltNamePolicy {
  allowed: readonly string[];
  /** Also refuse a request that lacks any allowed name (exactly those names). */
  requireAll?: boolean;
}

export interface SignOptions {
  /**
   * The request file on the CA host is the only authority: it must exist and
   * is checked (CN, signature, alt names) as always, but the CA is not listed
   * first. One CA command less (a Puppet 3 `puppet cert list --all` reads
   * every certificate of the CA); the sign command itself refuses a request
   * that is not pending. Default false: listed and read, both checked.
   */
  fromRequestFile?: boolean;
}

export interface PolicyVerdict {
  ok: boolean;
  unexpected: string[];
  missing: string[];
  allowed: string[];
}

/** Compares requested alt names with a policy; names are compared in `DNS:x` form, case-insensitively. */
export function checkAltNames(certname: string, requested: readonly string[], policy: AltNamePolicy): PolicyVerdict {
  const allowed = [...new Set([altNameEntry(certname), ...policy.allowed.map(altNameEntry)])];
  const req = [...new Set(requested.map((n) => (n.startsWith('OTHER:') ? n : altNameEntry(n))))];
  const unexpected = req.filter((n) => !allowed.includes(n));
  const missing = policy.requireAll ? allowed.filter((n) => !req.includes(n) && n !== altNameEntry(certname)) : [];
  return { ok: unexpected.length === 0 && missing.length === 0, unexpected, missing, allowed };
}

export function enforceAltNames(
  host: string,
  certname: string,
  requested: readonly string[],
  policy: AltNamePolicy,
): void {
  const v = checkAltNames(certname, requested, policy);
  if (!v.ok) throw new CsrRefusedError(host, certname, v.unexpected, v.missing, v.allowed);
}

/**
 * One interface over the three ways a Puppet CA is operated:
 * `puppetserver ca` (debian), `puppet cert` (pe3) and the openssl CLI.
 * Every method runs on the CA host; private keys never leave it.
 */
export interface CaBackend {
  readonly kind: 'puppetserver' | 'puppet-cert' | 'openssl';
  /** The host that holds the CA. */
  readonly host: Host;
  /** The CA directory on that host. */
  readonly cadir: string;
  /** Requests, signed and revoked certificates. */
  list(): Promise<CertEntry[]>;
  /** Signs a pending request after checking its alt names against the policy (a request with other names is refused, listed). */
  sign(certname: string, policy: AltNamePolicy, opts?: SignOptions): Promise<void>;
  /** Optional: whether the CA holds any file for the name (a request or a certificate); false means it has no entry for it, without listing the whole CA. */
  hasFiles?(certname: string): Promise<boolean>;
  /** Revokes a signed certificate; the CA's CRL is updated. No-op when already revoked. */
  revoke(certname: string): Promise<void>;
  /** Revokes (when signed) and removes every file for the name, so a new request can be signed. */
  clean(certname: string): Promise<void>;
  /** The CA certificate (PEM). */
  caCertificate(): Promise<string>;
  /** The CA's current CRL (PEM). */
  crl(): Promise<string>;
  /** A signed certificate (PEM), or undefined. */
  certificate(certname: string): Promise<string | undefined>;
}

/** Reads a public file from the CA host, undefined when absent. */
export async function readOptional(host: Host, path: string, sudo: boolean): Promise<string | undefined> {
  if (!(await host.exists(path, { sudo }))) return undefined;
  return (await host.readFile(path, { sudo })).toString('utf8');
}

/** A Puppet certname: also used as a file name on the CA, so no slashes, no leading dot or hyphen. */
export function validateCertname(name: string): string {
  if (typeof name !== 'string' || !/^[A-Za-z0-9_][A-Za-z0-9._-]{0,252}$/.test(name) || name.includes('..')) {
    throw new InvalidInputError(
      `"${String(name)}" is not a valid certname: use letters, digits, dots, hyphens and underscores.`,
    );
  }
  return name;
}
