import type { ExecResult, Host } from '@pe-stack/pe-host';
import { validateHostname, validateRemotePath } from '@pe-stack/pe-host';
import { validateCertname } from './backend.js';
import type { OpensslCa } from './ca-openssl.js';
import { CertError, CertNotFoundError } from './errors.js';
import { Openssl, altNameEntry, type KeySpec } from './openssl.js';
import { puppetSslPaths } from './verify.js';

/**
 * The node side of getting a certificate: make a key and a request and get
 * the request to the CA (`submit`), then bring the signed certificate, the CA
 * certificate and the CRL home (`fetch`). The private key is made on the node
 * and stays there.
 */
export interface NodeAgent {
  readonly ssldir: string;
  submit(node: Host, certname: string, altNames: readonly string[]): Promise<void>;
  fetch(node: Host, certname: string): Promise<void>;
}

/** For an OpensslCa (standalone use, the pe3 simulator): openssl on the node, files carried by the controller. */
export class OpensslAgent implements NodeAgent {
  constructor(
    readonly ca: OpensslCa,
    readonly ssldir: string,
    readonly opts: { key?: KeySpec; sudo?: boolean } = {},
  ) {}

  async submit(node: Host, certname: string, altNames: readonly string[]): Promise<void> {
    validateCertname(certname);
    const p = puppetSslPaths(this.ssldir, certname);
    const sudo = this.opts.sudo ?? false;
    for (const d of ['certs', 'private_keys', 'public_keys', 'certificate_requests'])
      await node.mkdir(`${this.ssldir}/${d}`, { mode: d === 'private_keys' ? 0o750 : 0o755, sudo });
    const o = new Openssl(node, { sudo });
    if (!(await node.exists(p.key, { sudo }))) await o.genKey(p.key, this.opts.key ?? { type: 'rsa', bits: 4096 });
    await node.writeFile(p.publicKey, await o.publicKeyOf(p.key), { mode: 0o644, backup: false, sudo });
    await o.newCsr(p.key, p.csr, certname, altNames);
    await this.ca.submit(certname, (await node.readFile(p.csr, { sudo })).toString('utf8'));
  }

  async fetch(node: Host, certname: string): Promise<void> {
    const p = puppetSslPaths(this.ssldir, certname);
    const sudo = this.opts.sudo ?? false;
    const cert = await this.ca.certificate(certname);
    if (cert === undefined) throw new CertNotFoundError(this.ca.host.name, certname, 'a signed certificate');
    await node.writeFile(p.cert, cert, { mode: 0o644, backup: false, sudo });
    await node.writeFile(p.caCert, await this.ca.caCertificate(), { mode: 0o644, backup: false, sudo });
    await node.writeFile(p.crl, await this.ca.crl(), { mode: 0o644, backup: false, sudo });
    await node.remove(p.csr, { sudo });
  }
}

export interface PuppetAgentOptions {
  ssldir: string;
  /** The CA server the node asks (the primary_cname). */
  caServer: string;
  /** `puppet` binary; default `puppet`. */
  bin?: string;
  sudo?: boolean;
  timeoutMs?: number;
}

// Runs the command given as the arguments after the path, then says whether the path exists (the last line of
// stdout, after the command's own output), in ONE command; the exit status is the command's.
const RUN_THEN_LOOK = [
  'p=$1; shift',
  '"$@" && rc=0 || rc=$?',
  'if [ -e "$p" ]; then printf "\\n#present\\n"; else printf "\\n#absent\\n"; fi',
  'exit $rc',
].join('\n');

/**
 * `argv`, then whether `path` exists on the node, in one round trip (the
 * command and a look at the file it should leave). The argv is passed as
 * arguments, never spliced into the script. Under a DryRunHost (a plan) the
 * command is only recorded: the file counts as absent.
 */
export async function runThenLook(
  node: Host,
  argv: readonly string[],
  path: string,
  opts: { sudo: boolean; timeoutMs: number },
): Promise<{ result: ExecResult; present: boolean }> {
  validateRemotePath(path);
  const result = await node.exec(['sh', '-c', RUN_THEN_LOOK, 'sh', path, ...argv], {
    sudo: opts.sudo,
    timeoutMs: opts.timeoutMs,
    allowFailure: true,
  });
  const last = result.stdout.replace(/\r/g, '').trimEnd().split('\n').at(-1);
  return { result, present: last === '#present' };
}

/** What the two `puppet` CLI agents share: options checked once, alt names as puppet wants them (no `DNS:`). */
abstract class PuppetCliAgent implements NodeAgent {
  readonly ssldir: string;
  constructor(readonly o: PuppetAgentOptions) {
    validateHostname(o.caServer);
    this.ssldir = o.ssldir;
  }

  protected altNames(altNames: readonly string[]): string[] {
    return altNames.map((n) => altNameEntry(n).replace(/^DNS:/, ''));
  }

  abstract argv(certname: string, altNames: readonly string[]): string[];
  abstract submit(node: Host, certname: string, altNames: readonly string[]): Promise<void>;
  abstract fetch(node: Host, certname: string): Promise<void>;
}

/**
 * debian (Puppet 7): `puppet ssl bootstrap`. With `--waitforcert 0` the
 * first run downloads the CA certificate and CRL, makes the key, submits the
 * request and stops (exit 1: not yet signed); after signing, the same command
 * downloads the certificate. `--http_keepalive_timeout 0` avoids a 30 s stall
 * on a reused keep-alive connection (lab-notes.md).
 */
export class PuppetSslAgent extends PuppetCliAgent {
  argv(certname: string, altNames: readonly string[]): string[] {
    validateCertname(certname);
    const alt = this.altNames(altNames);
    return [
      this.o.bin ?? 'puppet',
      'ssl',
      'bootstrap',
      '--certname',
      certname,
      '--ca_server',
      this.o.caServer,
      '--ssldir',
      this.ssldir,
      '--waitforcert',
      '0',
      '--http_keepalive_timeout',
      '0',
      // always explicit, also when empty: else the host's puppet.conf adds its own dns_alt_names (a master's!) to the request
      `--dns_alt_names=${alt.join(',')}`,
    ];
  }

  async submit(node: Host, certname: string, altNames: readonly string[]): Promise<void> {
    // the exit code is 1 both for "submitted, not signed yet" and for real failures: the request file decides (looked at in the same command)
    const { result: r, present } = await runThenLook(
      node,
      this.argv(certname, altNames),
      puppetSslPaths(this.ssldir, certname).csr,
      { sudo: this.o.sudo ?? true, timeoutMs: this.o.timeoutMs ?? 120_000 },
    );
    if (!present && r.code !== 0) {
      throw new CertError(
        'E_CA_COMMAND',
        `puppet ssl bootstrap did not submit a request for "${certname}" (exit ${r.code}): ${node.redactor.redact(r.stderr.trim().split('\n').slice(-3).join(' '))}`,
        { host: node.name, certname },
      );
    }
  }

  async fetch(node: Host, certname: string): Promise<void> {
    await node.exec(this.argv(certname, []), { sudo: this.o.sudo ?? true, timeoutMs: this.o.timeoutMs ?? 120_000 });
  }
}

/**
 * pe3 (Puppet 3): the runbook's `puppet agent -t --server <primary>`; the
 * first run makes the key and submits the request (dns_alt_names on the
 * command line), the run after signing retrieves the certificate.
 */
export class Pe3PuppetAgent extends PuppetCliAgent {
  argv(certname: string, altNames: readonly string[]): string[] {
    validateCertname(certname);
    const alt = this.altNames(altNames);
    return [
      this.o.bin ?? '/opt/puppet/bin/puppet',
      'agent',
      '--test',
      '--certname',
      certname,
      '--server',
      this.o.caServer,
      '--ca_server',
      this.o.caServer,
      '--ssldir',
      this.ssldir,
      '--waitforcert',
      '0',
      `--dns_alt_names=${alt.join(',')}`,
    ];
  }

  async submit(node: Host, certname: string, altNames: readonly string[]): Promise<void> {
    // the run and a look at the request it should leave: one command
    const { present } = await runThenLook(
      node,
      this.argv(certname, altNames),
      puppetSslPaths(this.ssldir, certname).csr,
      { sudo: this.o.sudo ?? true, timeoutMs: this.o.timeoutMs ?? 300_000 },
    );
    if (!present) {
      throw new CertError('E_CA_COMMAND', `puppet agent did not leave a certificate request for "${certname}".`, {
        host: node.name,
        certname,
      });
    }
  }

  async fetch(node: Host, certname: string): Promise<void> {
    // --detailed-exitcodes (implied by --test): 0 and 2 are success, 4/6 are resource failures after the cert was fetched
    await node.exec(this.argv(certname, []), {
      sudo: this.o.sudo ?? true,
      timeoutMs: this.o.timeoutMs ?? 300_000,
      allowFailure: true,
    });
    if (!(await node.exists(puppetSslPaths(this.ssldir, certname).cert, { sudo: this.o.sudo ?? true }))) {
      throw new CertNotFoundError(node.name, certname, 'the signed certificate on the node after `puppet agent -t`');
    }
  }
}
