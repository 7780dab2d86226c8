import type { ExecResult, Host } from '@pe-stack/pe-host';
import { InvalidInputError, tailLines } from '@pe-stack/pe-host';
import { OpensslError } from './errors.js';

/**
 * A small typed wrapper around the `openssl` command line, run on a Host.
 *
 * - argv arrays only: nothing is ever spliced into a shell string;
 * - the exit code is the only truth (OpenSSL 3 writes progress and warnings to
 *   stderr on success, so stderr is never matched to decide success);
 * - every call has a timeout, enforced on the host;
 * - secrets (passphrases) travel only in the environment and are named in argv
 *   as `env:VAR`; a secret value found in argv is refused before anything runs.
 */
export interface OpensslOptions {
  /** The binary; default `openssl` from PATH. */
  bin?: string;
  /** Per-command timeout; default 60 s. */
  timeoutMs?: number;
  /** Run as root (through sudo when the login user is not root). */
  sudo?: boolean;
}

export interface OpensslRunOptions {
  cwd?: string;
  stdin?: string | Buffer;
  /** Secret values by environment variable name, referenced in argv as `env:NAME`. */
  secretEnv?: Record<string, string>;
  timeoutMs?: number;
  /** The command changes nothing (DryRunHost runs it for real). */
  readOnly?: boolean;
  /** Certificate the command concerns, for error messages. */
  certname?: string;
}

/** Environment variable carrying a passphrase; argv only ever says `env:PE_OPENSSL_PASS`. */
export const PASS_ENV = 'PE_OPENSSL_PASS';

export type KeySpec = { type: 'rsa'; bits?: number } | { type: 'ec'; curve?: 'P-256' | 'P-384' };

/** Characters allowed in a certificate common name (covers certnames and "Puppet CA: fqdn"). */
const CN = /^[A-Za-z0-9][A-Za-z0-9 ._:@-]{0,127}$/;

export function validateCommonName(cn: string): string {
  if (!CN.test(cn))
    throw new InvalidInputError(
      `"${cn}" is not an acceptable certificate name: use letters, digits, dots, hyphens, underscores, colons and spaces.`,
    );
  return cn;
}

/** A DNS name or IP literal as an alt name; returns the typed form (`DNS:x` or `IP:x`). */
export function altNameEntry(name: string): string {
  const bare = name.replace(/^(DNS|IP|IP Address):/i, '');
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(bare) || (bare.includes(':') && /^[0-9A-Fa-f:]+$/.test(bare))) return `IP:${bare}`;
  if (!/^(\*\.)?(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?$/.test(bare)) {
    throw new InvalidInputError(`"${name}" is not a valid DNS alt name.`);
  }
  return `DNS:${bare.toLowerCase()}`;
}

export class Openssl {
  readonly bin: string;
  readonly timeoutMs: number;
  readonly sudo: boolean;

  constructor(
    readonly host: Host,
    opts: OpensslOptions = {},
  ) {
    this.bin = opts.bin ?? 'openssl';
    this.timeoutMs = opts.timeoutMs ?? 60_000;
    this.sudo = opts.sudo ?? false;
  }

  /** Runs `openssl <args>`; throws OpensslError unless the exit code is 0. */
  async run(args: readonly string[], o: OpensslRunOptions = {}): Promise<ExecResult> {
    const secrets = Object.values(o.secretEnv ?? {});
    for (const a of args) {
      if (secrets.some((s) => s.length > 0 && a.includes(s))) {
        throw new InvalidInputError(
          'refusing to run openssl with a secret in its arguments; pass it through secretEnv.',
          { host: this.host.name },
        );
      }
    }
    const argv = [this.bin, ...args];
    const r = await this.host.exec(argv, {
      sudo: this.sudo,
      timeoutMs: o.timeoutMs ?? this.timeoutMs,
      allowFailure: true,
      secrets,
      ...(o.cwd !== undefined ? { cwd: o.cwd } : {}),
      ...(o.stdin !== undefined ? { stdin: o.stdin } : {}),
      ...(o.secretEnv ? { env: o.secretEnv } : {}),
      ...(o.readOnly ? { readOnly: true } : {}),
    });
    if (r.code !== 0) {
      const red = this.host.redactor.with(secrets);
      throw new OpensslError(
        this.host.name,
        red.redactArgv(argv),
        r.code,
        red.redact(tailLines(r.stderr.trim() || r.stdout.trim(), 4)),
        o.certname,
      );
    }
    return r;
  }

  async version(): Promise<string> {
    return (await this.run(['version'], { readOnly: true })).stdout.trim();
  }

  private passArgs(
    flag: string,
    passphrase: string | undefined,
  ): { args: string[]; secretEnv?: Record<string, string> } {
    return passphrase === undefined
      ? { args: [] }
      : { args: [flag, `env:${PASS_ENV}`], secretEnv: { [PASS_ENV]: passphrase } };
  }

  /** A new private key at `out` (mode 0600), optionally encrypted with AES-256 under `passphrase`. */
  async genKey(out: string, spec: KeySpec = { type: 'rsa' }, passphrase?: string): Promise<void> {
    const algo =
      spec.type === 'rsa'
        ? ['-algorithm', 'RSA', '-pkeyopt', `rsa_keygen_bits:${spec.bits ?? 4096}`]
        : ['-algorithm', 'EC', '-pkeyopt', `ec_paramgen_curve:${spec.curve ?? 'P-256'}`];
    const p = this.passArgs('-pass', passphrase);
    const enc = passphrase === undefined ? [] : ['-aes-256-cbc'];
    await this.run(['genpkey', ...algo, ...enc, ...p.args, '-out', out], p.secretEnv ? { secretEnv: p.secretEnv } : {});
    await this.host.exec(['chmod', '0600', '--', out], { sudo: this.sudo });
  }

  /** A CSR at `out` for `cn` with the given alt names (public data only leaves the host). */
  async newCsr(
    key: string,
    out: string,
    cn: string,
    altNames: readonly string[] = [],
    passphrase?: string,
  ): Promise<void> {
    validateCommonName(cn);
    const san = altNames.length ? ['-addext', `subjectAltName=${altNames.map(altNameEntry).join(',')}`] : [];
    const p = this.passArgs('-passin', passphrase);
    await this.run(['req', '-new', '-sha256', '-key', key, ...p.args, '-subj', `/CN=${cn}`, ...san, '-out', out], {
      certname: cn,
      ...(p.secretEnv ? { secretEnv: p.secretEnv } : {}),
    });
  }

  /** The public key (PEM, SubjectPublicKeyInfo) of a private key file: the key itself never leaves the host. */
  async publicKeyOf(key: string, passphrase?: string): Promise<string> {
    const p = this.passArgs('-passin', passphrase);
    return (
      await this.run(['pkey', '-in', key, ...p.args, '-pubout'], {
        readOnly: true,
        ...(p.secretEnv ? { secretEnv: p.secretEnv } : {}),
      })
    ).stdout;
  }
}
