import { PeError, type PeErrorOptions } from '@pe-stack/pe-host';

/**
 * Certificate errors (the codes pe-certs raises). Each names the host and, where there is one, the
 * certificate. Messages are built from public data only (names, serials,
 * fingerprints, paths): private keys and passphrases are never read into them.
 */
export type CertErrorCode =
  | 'E_CERT_VERIFY'
  | 'E_CSR_REFUSED'
  | 'E_CA_EXISTS'
  | 'E_OPENSSL'
  | 'E_CERT_NOT_FOUND'
  | 'E_CA_BACKUP'
  | 'E_CERT_PARSE'
  | 'E_CA_COMMAND';

export class CertError extends PeError<CertErrorCode> {
  readonly certname: string | undefined;
  constructor(code: CertErrorCode, message: string, opts: PeErrorOptions & { certname?: string | undefined } = {}) {
    super(code, message, opts);
    this.certname = opts.certname;
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), certname: this.certname };
  }
}

/** The `openssl` command failed (127: it could not be run at all). */
export class OpensslError extends CertError {
  readonly argv: readonly string[];
  readonly exitCode: number;
  readonly stderrTail: string;
  constructor(host: string, argv: readonly string[], exitCode: number, stderrTail: string, certname?: string) {
    const what =
      exitCode === 127
        ? 'openssl could not be run (is it installed and on PATH?)'
        : `\`${argv.join(' ')}\` exited ${exitCode}`;
    super('E_OPENSSL', `${what}${stderrTail ? `: ${stderrTail}` : '.'}`, { host, certname });
    this.argv = argv;
    this.exitCode = exitCode;
    this.stderrTail = stderrTail;
  }
}

/** One failed check of a verification, as reported to the operator. */
export interface FailedCheck {
  id: string;
  detail: string;
}

export class CertVerifyError extends CertError {
  readonly failures: readonly FailedCheck[];
  constructor(host: string, certname: string, failures: readonly FailedCheck[]) {
    const list = failures.map((f) => `${f.id}: ${f.detail}`).join('; ');
    super('E_CERT_VERIFY', `the certificate "${certname}" failed verification: ${list}.`, {
      host,
      certname,
      hint: 'Regenerate the node certificate against the cluster CA, or sync the CRL, as the failed checks say.',
    });
    this.failures = failures;
  }
}

export class CsrRefusedError extends CertError {
  readonly unexpected: readonly string[];
  readonly missing: readonly string[];
  constructor(
    host: string,
    certname: string,
    unexpected: readonly string[],
    missing: readonly string[] = [],
    allowed: readonly string[] = [],
  ) {
    const parts: string[] = [];
    if (unexpected.length) parts.push(`it asks for alt names that are not allowed: ${unexpected.join(', ')}`);
    if (missing.length) parts.push(`it lacks required alt names: ${missing.join(', ')}`);
    super('E_CSR_REFUSED', `refused to sign the request "${certname}": ${parts.join('; ')}.`, {
      host,
      certname,
      hint: allowed.length
        ? `Allowed alt names: ${allowed.join(', ')}. Clean the request and submit one with those names.`
        : 'Clean the request and submit one with the right names.',
    });
    this.unexpected = unexpected;
    this.missing = missing;
  }
}

export class CaExistsError extends CertError {
  constructor(host: string, cadir: string, detail: string) {
    super('E_CA_EXISTS', `a CA already exists at ${cadir} (${detail}); it was left untouched.`, {
      host,
      hint: 'Pass force to replace it (the existing CA directory is kept aside as a backup), or choose another directory.',
    });
  }
}

export class CertNotFoundError extends CertError {
  constructor(host: string, certname: string, what: string) {
    super('E_CERT_NOT_FOUND', `${what} for "${certname}" was not found.`, { host, certname });
  }
}

export class CertParseError extends CertError {
  constructor(what: string, detail: string, opts: { host?: string; certname?: string } = {}) {
    super('E_CERT_PARSE', `cannot parse ${what}: ${detail}.`, opts);
  }
}

export class CaBackupError extends CertError {
  constructor(message: string, opts: PeErrorOptions = {}) {
    super('E_CA_BACKUP', message, opts);
  }
}
