import type { Host } from '@pe-stack/pe-host';
import { validateRemotePath } from '@pe-stack/pe-host';
import {
  enforceAltNames,
  readOptional,
  validateCertname,
  type AltNamePolicy,
  type CaBackend,
  type CertEntry,
} from './backend.js';
import { parseCsr } from './der.js';
import { CaExistsError, CertError, CertNotFoundError } from './errors.js';
import { Openssl, PASS_ENV, altNameEntry, validateCommonName, type KeySpec, type OpensslOptions } from './openssl.js';
import { inspectCert } from './x509.js';

/**
 * A CA operated with the openssl CLI, in Puppet's CA directory layout so that
 * Puppet tools, backups and restores see what they expect:
 *
 *   ca_crt.pem ca_key.pem ca_crl.pem serial  signed/<name>.pem requests/<name>.pem
 *   + openssl's own: openssl.cnf index.txt crlnumber newcerts/
 *
 * The configuration names the directory as `.` and every command runs with the
 * CA directory as its working directory, so the CA can be copied to another
 * path or host and keep working. The CA key never leaves the CA host; its
 * passphrase (optional) reaches openssl only through the environment.
 */
export interface OpensslCaOptions extends OpensslOptions {
  /** Passphrase of ca_key.pem, when it is encrypted. */
  passphrase?: string;
  /** Validity of signed certificates in days (default 1825, as Puppet). */
  certDays?: number;
}

export interface OpensslCaInitOptions extends OpensslCaOptions {
  /** CA subject CN; default "Puppet CA: <host name>". */
  commonName?: string;
  key?: KeySpec;
  /** CA certificate validity (default 5475 days, 15 years, as Puppet). */
  caDays?: number;
  /** nextUpdate distance of generated CRLs (default 30 days). */
  crlDays?: number;
}

export const CA_FILES = {
  cert: 'ca_crt.pem',
  key: 'ca_key.pem',
  crl: 'ca_crl.pem',
  config: 'openssl.cnf',
  index: 'index.txt',
} as const;

export function opensslCaConfig(crlDays: number, certDays: number): string {
  return `# Written by @pe-stack/pe-certs. Paths are relative: run openssl with the CA directory as cwd.
[ ca ]
default_ca = pe_ca

[ pe_ca ]
dir = .
database = $dir/index.txt
new_certs_dir = $dir/newcerts
certificate = $dir/ca_crt.pem
private_key = $dir/ca_key.pem
serial = $dir/serial
crlnumber = $dir/crlnumber
default_md = sha256
default_days = ${certDays}
default_crl_days = ${crlDays}
policy = pe_policy
unique_subject = no
copy_extensions = none
email_in_dn = no
preserve = no
crl_extensions = crl_ext

[ pe_policy ]
commonName = supplied

[ req ]
distinguished_name = req_dn
prompt = no

[ req_dn ]
CN = unused

[ ca_ext ]
basicConstraints = critical,CA:true
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ node_ext ]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth,clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ node_ext_san ]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth,clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = \${ENV::PE_SAN}

[ crl_ext ]
authorityKeyIdentifier = keyid:always
`;
}

interface IndexRow {
  status: 'V' | 'R' | 'E';
  expires: string;
  revoked: string;
  serial: string;
  cn: string;
}

export function parseIndex(text: string): IndexRow[] {
  const rows: IndexRow[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const f = line.split('\t');
    const m = /(?:^|\/)CN=([^/]*)/.exec(f[5] ?? '');
    if (f.length < 6 || !m) continue;
    rows.push({
      status: f[0] as IndexRow['status'],
      expires: f[1] ?? '',
      revoked: f[2] ?? '',
      serial: (f[3] ?? '').toUpperCase().replace(/^0+(?=.)/, ''),
      cn: m[1]!,
    });
  }
  return rows;
}

function asn1Date(s: string): Date | undefined {
  const m = /^(\d{2}|\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (!m) return undefined;
  const y = m[1]!.length === 2 ? Number(m[1]) + (Number(m[1]) < 50 ? 2000 : 1900) : Number(m[1]);
  return new Date(Date.UTC(y, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
}

export class OpensslCa implements CaBackend {
  readonly kind = 'openssl' as const;
  readonly openssl: Openssl;
  private readonly passphrase: string | undefined;
  private readonly certDays: number;
  private readonly sudo: boolean;

  constructor(
    readonly host: Host,
    readonly cadir: string,
    opts: OpensslCaOptions = {},
  ) {
    validateRemotePath(cadir);
    this.openssl = new Openssl(host, opts);
    this.passphrase = opts.passphrase;
    this.certDays = opts.certDays ?? 1825;
    this.sudo = opts.sudo ?? false;
    if (opts.passphrase) host.redactor.add(opts.passphrase);
  }

  private path(rel: string): string {
    return `${this.cadir}/${rel}`;
  }

  private pass(): { args: string[]; env: Record<string, string> } {
    return this.passphrase === undefined
      ? { args: [], env: {} }
      : { args: ['-passin', `env:${PASS_ENV}`], env: { [PASS_ENV]: this.passphrase } };
  }

  /**
   * Runs openssl in the CA directory with the CA's configuration. The config
   * reads the alt names of the certificate being signed from $PE_SAN, which
   * must therefore always be set (openssl refuses a config with an unset variable).
   */
  private async runCa(
    args: readonly string[],
    o: { san?: string; certname?: string; withKey?: boolean } = {},
  ): Promise<void> {
    const p = o.withKey === false ? { args: [], env: {} } : this.pass();
    // right after the subcommand: `-infiles` must stay last
    await this.openssl.run([args[0]!, ...p.args, ...args.slice(1)], {
      cwd: this.cadir,
      secretEnv: { ...p.env, PE_SAN: o.san || 'DNS:unused' },
      ...(o.certname ? { certname: o.certname } : {}),
    });
  }

  /** Creates a new CA in `cadir`. Refuses when a CA certificate is already there. */
  static async init(host: Host, cadir: string, opts: OpensslCaInitOptions = {}): Promise<OpensslCa> {
    const ca = new OpensslCa(host, cadir, opts);
    const sudo = opts.sudo ?? false;
    if (await host.exists(ca.path(CA_FILES.cert), { sudo }))
      throw new CaExistsError(host.name, cadir, `${CA_FILES.cert} is present`);
    const cn = validateCommonName(opts.commonName ?? `Puppet CA: ${host.name}`);
    await host.mkdir(cadir, { mode: 0o750, sudo });
    for (const d of ['signed', 'requests', 'newcerts']) await host.mkdir(ca.path(d), { mode: 0o750, sudo });
    await host.writeFile(ca.path(CA_FILES.config), opensslCaConfig(opts.crlDays ?? 30, ca.certDays), {
      mode: 0o640,
      backup: false,
      sudo,
    });
    await host.writeFile(ca.path(CA_FILES.index), '', { mode: 0o640, backup: false, sudo });
    await host.writeFile(ca.path('index.txt.attr'), 'unique_subject = no\n', { mode: 0o640, backup: false, sudo });
    await host.writeFile(ca.path('serial'), '01\n', { mode: 0o640, backup: false, sudo });
    await host.writeFile(ca.path('crlnumber'), '01\n', { mode: 0o640, backup: false, sudo });
    await ca.openssl.genKey(ca.path(CA_FILES.key), opts.key ?? { type: 'rsa', bits: 4096 }, opts.passphrase);
    await ca.runCa([
      'req',
      '-x509',
      '-new',
      '-config',
      CA_FILES.config,
      '-extensions',
      'ca_ext',
      '-key',
      CA_FILES.key,
      '-subj',
      `/CN=${cn}`,
      '-days',
      String(opts.caDays ?? 5475),
      '-set_serial',
      '0',
      '-out',
      CA_FILES.cert,
    ]);
    await ca.generateCrl();
    return ca;
  }

  async caCertificate(): Promise<string> {
    const pem = await readOptional(this.host, this.path(CA_FILES.cert), this.sudo);
    if (pem === undefined)
      throw new CertNotFoundError(this.host.name, 'ca', `the CA certificate ${this.path(CA_FILES.cert)}`);
    return pem;
  }

  async crl(): Promise<string> {
    const pem = await readOptional(this.host, this.path(CA_FILES.crl), this.sudo);
    if (pem === undefined) throw new CertNotFoundError(this.host.name, 'ca', `the CA CRL ${this.path(CA_FILES.crl)}`);
    return pem;
  }

  async certificate(certname: string): Promise<string | undefined> {
    return readOptional(this.host, this.path(`signed/${validateCertname(certname)}.pem`), this.sudo);
  }

  /** Places a request in requests/ (what the CA's HTTP endpoint does for agents). The CSR is public. */
  async submit(certname: string, csrPem: string): Promise<void> {
    validateCertname(certname);
    const csr = parseCsr(csrPem);
    if (csr.cn !== certname)
      throw new CertError('E_CSR_REFUSED', `the request submitted as "${certname}" is for "${csr.cn ?? '(no CN)'}".`, {
        host: this.host.name,
        certname,
      });
    if (await this.host.exists(this.path(`signed/${certname}.pem`), { sudo: this.sudo })) {
      throw new CertError(
        'E_CSR_REFUSED',
        `"${certname}" already has a signed certificate; clean it on the CA before submitting a new request.`,
        { host: this.host.name, certname },
      );
    }
    await this.host.writeFile(this.path(`requests/${certname}.pem`), csrPem, {
      mode: 0o644,
      backup: false,
      sudo: this.sudo,
    });
  }

  private async index(): Promise<IndexRow[]> {
    return parseIndex((await readOptional(this.host, this.path(CA_FILES.index), this.sudo)) ?? '');
  }

  async list(): Promise<CertEntry[]> {
    const latest = new Map<string, IndexRow>();
    for (const row of await this.index()) latest.set(row.cn, row);
    const out: CertEntry[] = [];
    const requests = await this.host.exec(
      ['find', this.path('requests'), '-maxdepth', '1', '-type', 'f', '-name', '*.pem'],
      { readOnly: true, sudo: this.sudo },
    );
    for (const file of requests.stdout.split('\n').filter(Boolean).sort()) {
      const name = file.slice(file.lastIndexOf('/') + 1, -'.pem'.length);
      const csr = parseCsr((await this.host.readFile(file, { sudo: this.sudo })).toString('utf8'));
      out.push({ name, state: 'requested', altNames: csr.altNames });
    }
    for (const [name, row] of [...latest].sort(([a], [b]) => a.localeCompare(b))) {
      const notAfter = asn1Date(row.expires);
      out.push({
        name,
        state: row.status === 'R' ? 'revoked' : 'signed',
        serial: row.serial,
        ...(notAfter ? { notAfter } : {}),
      });
    }
    return out;
  }

  async sign(certname: string, policy: AltNamePolicy): Promise<void> {
    validateCertname(certname);
    const reqPath = `requests/${certname}.pem`;
    const pem = await readOptional(this.host, this.path(reqPath), this.sudo);
    if (pem === undefined) throw new CertNotFoundError(this.host.name, certname, 'a pending certificate request');
    const csr = parseCsr(pem);
    if (!csr.signatureValid)
      throw new CertError('E_CSR_REFUSED', `the request "${certname}" has an invalid signature.`, {
        host: this.host.name,
        certname,
      });
    if (csr.cn !== certname)
      throw new CertError('E_CSR_REFUSED', `the request "${certname}" is for "${csr.cn ?? '(no CN)'}".`, {
        host: this.host.name,
        certname,
      });
    enforceAltNames(this.host.name, certname, csr.altNames, policy);
    const san = csr.altNames.map(altNameEntry).join(',');
    await this.runCa(
      [
        'ca',
        '-config',
        CA_FILES.config,
        '-batch',
        '-notext',
        '-days',
        String(this.certDays),
        '-extensions',
        san ? 'node_ext_san' : 'node_ext',
        '-in',
        reqPath,
        '-out',
        `signed/${certname}.pem`,
      ],
      { san, certname },
    );
    await this.host.remove(this.path(reqPath), { sudo: this.sudo });
  }

  /**
   * Signs many pending requests with one openssl process per distinct set of
   * alt names (`openssl ca -infiles`): the same checks as sign() for every
   * request first, so one refused request stops the batch before anything is
   * signed. For enrolling fleets and for benchmarks.
   */
  async signMany(certnames: readonly string[], policy: AltNamePolicy): Promise<void> {
    const groups = new Map<string, string[]>();
    for (const certname of certnames) {
      validateCertname(certname);
      const pem = await readOptional(this.host, this.path(`requests/${certname}.pem`), this.sudo);
      if (pem === undefined) throw new CertNotFoundError(this.host.name, certname, 'a pending certificate request');
      const csr = parseCsr(pem);
      if (!csr.signatureValid || csr.cn !== certname)
        throw new CertError('E_CSR_REFUSED', `the request "${certname}" has an invalid signature or another name.`, {
          host: this.host.name,
          certname,
        });
      enforceAltNames(this.host.name, certname, csr.altNames, policy);
      const san = csr.altNames.map(altNameEntry).join(',');
      groups.set(san, [...(groups.get(san) ?? []), certname]);
    }
    for (const [san, names] of groups) {
      for (let i = 0; i < names.length; i += 500) {
        const chunk = names.slice(i, i + 500);
        const before = (await this.index()).length;
        // -out keeps only the last certificate of a batch in OpenSSL 3.0: read each from newcerts/ by the serials openssl recorded
        await this.runCa(
          [
            'ca',
            '-config',
            CA_FILES.config,
            '-batch',
            '-notext',
            '-days',
            String(this.certDays),
            '-extensions',
            san ? 'node_ext_san' : 'node_ext',
            '-out',
            '/dev/null',
            '-infiles',
            ...chunk.map((n) => `requests/${n}.pem`),
          ],
          { san },
        );
        const rows = (await this.index()).slice(before);
        if (rows.length !== chunk.length || rows.some((r, j) => r.cn !== chunk[j]))
          throw new CertError(
            'E_OPENSSL',
            `openssl ca recorded ${rows.length} of ${chunk.length} requests in an unexpected order.`,
            { host: this.host.name },
          );
        for (const [j, name] of chunk.entries()) {
          const serial = rows[j]!.serial;
          const text = (
            await this.host.readFile(this.path(`newcerts/${serial.length % 2 ? `0${serial}` : serial}.pem`), {
              sudo: this.sudo,
            })
          ).toString('utf8');
          const pem = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n?/.exec(text)?.[0];
          if (!pem)
            throw new CertError('E_OPENSSL', `newcerts/${serial}.pem holds no certificate.`, {
              host: this.host.name,
              certname: name,
            });
          await this.host.writeFile(this.path(`signed/${name}.pem`), pem, {
            mode: 0o644,
            backup: false,
            sudo: this.sudo,
          });
          await this.host.remove(this.path(`requests/${name}.pem`), { sudo: this.sudo });
        }
      }
    }
  }

  /** Revokes many certificates, then writes one new CRL. Already revoked ones are skipped. */
  async revokeMany(certnames: readonly string[]): Promise<void> {
    const latest = new Map<string, IndexRow>();
    for (const row of await this.index()) latest.set(row.cn, row);
    for (const certname of certnames) {
      const row = latest.get(validateCertname(certname));
      if (!row) throw new CertNotFoundError(this.host.name, certname, 'a signed certificate');
      if (row.status === 'R') continue;
      await this.runCa(
        [
          'ca',
          '-config',
          CA_FILES.config,
          '-revoke',
          `newcerts/${row.serial.length % 2 ? `0${row.serial}` : row.serial}.pem`,
        ],
        { certname },
      );
    }
    await this.generateCrl();
  }

  private async latestRow(certname: string): Promise<IndexRow | undefined> {
    let found: IndexRow | undefined;
    for (const row of await this.index()) if (row.cn === certname) found = row;
    return found;
  }

  async revoke(certname: string): Promise<void> {
    validateCertname(certname);
    const row = await this.latestRow(certname);
    if (!row) throw new CertNotFoundError(this.host.name, certname, 'a signed certificate');
    if (row.status === 'R') return;
    await this.runCa(
      [
        'ca',
        '-config',
        CA_FILES.config,
        '-revoke',
        `newcerts/${row.serial.length % 2 ? `0${row.serial}` : row.serial}.pem`,
      ],
      { certname },
    );
    await this.generateCrl();
  }

  async clean(certname: string): Promise<void> {
    validateCertname(certname);
    const row = await this.latestRow(certname);
    if (row && row.status === 'V') await this.revoke(certname);
    await this.host.remove(this.path(`signed/${certname}.pem`), { sudo: this.sudo });
    await this.host.remove(this.path(`requests/${certname}.pem`), { sudo: this.sudo });
  }

  /** Writes a fresh CRL (next CRL number) to ca_crl.pem, atomically. */
  async generateCrl(): Promise<void> {
    const tmp = `${CA_FILES.crl}.pe-new`;
    await this.runCa(['ca', '-config', CA_FILES.config, '-gencrl', '-out', tmp]);
    await this.host.exec(['mv', '-f', '--', this.path(tmp), this.path(CA_FILES.crl)], { sudo: this.sudo });
  }

  /** Details of one signed certificate (public). */
  async inspect(certname: string) {
    const pem = await this.certificate(certname);
    if (pem === undefined) throw new CertNotFoundError(this.host.name, certname, 'a signed certificate');
    return inspectCert(pem, `the certificate "${certname}"`);
  }
}
