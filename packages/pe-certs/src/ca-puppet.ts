import type { ExecResult, Host } from '@pe-stack/pe-host';
import { tailLines, validateRemotePath } from '@pe-stack/pe-host';
import type { CommandKey, Layout } from '@pe-stack/pe-config-files';
import {
  enforceAltNames,
  readOptional,
  validateCertname,
  type AltNamePolicy,
  type CaBackend,
  type CertEntry,
  type CertState,
  type SignOptions,
} from './backend.js';
import { parseCsr } from './der.js';
import { CertError, CertNotFoundError, CertParseError } from './errors.js';
import { parseAltNameText } from './x509.js';

/** Where a Puppet CA keeps its files and which commands drive it. */
export interface PuppetCaOptions {
  cadir: string;
  /** argv templates with `{certname}`: from a pe-config-files Layout (see fromLayout) or given directly. */
  commands: Record<'list' | 'sign' | 'revoke' | 'clean', readonly string[]>;
  /** Run as root (through sudo for a non-root login). Default true. */
  sudo?: boolean;
  timeoutMs?: number;
}

function fill(template: readonly string[], certname: string): string[] {
  validateCertname(certname);
  return template.map((a) => a.replace(/\{certname\}/g, certname));
}

/** The layout's CA command templates (validated by pe-config-files; `{certname}` is filled in per call). */
function layoutCommands(layout: Layout): PuppetCaOptions['commands'] {
  const tpl = (key: CommandKey): readonly string[] => {
    const argv = layout.commands[key];
    if (!argv.length) throw new CertError('E_CA_COMMAND', `the ${layout.name} layout has no ${key} command.`);
    return argv;
  };
  return { list: tpl('caList'), sign: tpl('caSign'), revoke: tpl('caRevoke'), clean: tpl('caClean') };
}

const asState = (s: string): CertState => (s === 'requested' || s === 'signed' || s === 'revoked' ? s : 'invalid');

function parseRubyArray(text: string): string[] {
  return [...text.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!);
}

function puppetTime(s: unknown): Date | undefined {
  if (typeof s !== 'string') return undefined;
  const d = new Date(s.replace(/UTC$/, 'Z'));
  return Number.isNaN(d.getTime()) ? undefined : d;
}

/** `puppetserver ca list --all --format json`. */
export function parsePuppetserverListJson(text: string): CertEntry[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new CertParseError('`puppetserver ca list --format json` output', (e as Error).message);
  }
  if (!doc || typeof doc !== 'object')
    throw new CertParseError('`puppetserver ca list --format json` output', 'not an object');
  const out: CertEntry[] = [];
  for (const group of ['requested', 'signed', 'revoked'] as const) {
    const list = (doc as Record<string, unknown>)[group];
    if (list === undefined) continue;
    if (!Array.isArray(list))
      throw new CertParseError('`puppetserver ca list --format json` output', `"${group}" is not a list`);
    for (const raw of list as Record<string, unknown>[]) {
      if (typeof raw['name'] !== 'string')
        throw new CertParseError('`puppetserver ca list --format json` output', 'an entry has no name');
      const alt = (raw['subject_alt_names'] ?? raw['dns_alt_names'] ?? []) as string[];
      const fps = raw['fingerprints'] as Record<string, string> | undefined;
      const fp = fps?.['SHA256'] ?? (raw['fingerprint'] as string | undefined);
      const e: CertEntry = {
        name: raw['name'],
        state: asState(typeof raw['state'] === 'string' ? raw['state'] : group),
        altNames: parseAltNameText(alt.join(', ')),
      };
      if (fp) e.fingerprint = fp;
      if (typeof raw['serial_number'] === 'number' || typeof raw['serial_number'] === 'string')
        e.serial = BigInt(raw['serial_number']).toString(16).toUpperCase();
      const na = puppetTime(raw['not_after']);
      if (na) e.notAfter = na;
      out.push(e);
    }
  }
  return out;
}

/** `puppetserver ca list --all` (text): "Requested/Signed/Revoked Certificates:" sections. */
export function parsePuppetserverListText(text: string): CertEntry[] {
  const out: CertEntry[] = [];
  let state: CertState | undefined;
  for (const line of text.split('\n')) {
    if (!line.trim() || line.trim() === 'No certificates to list') continue;
    const head = /^(Requested|Signed|Revoked|Missing) Certificates:\s*$/.exec(line);
    if (head) {
      state = head[1] === 'Missing' ? undefined : asState(head[1]!.toLowerCase());
      continue;
    }
    if (!state) continue;
    const [first, ...rest] = line.split('\t');
    const m = /^\s+(\S+)\s+\(SHA256\)\s+([0-9A-F:]+)\s*$/.exec(first ?? '');
    if (!m) throw new CertParseError('`puppetserver ca list` output', `unexpected line "${line.slice(0, 120)}"`);
    const e: CertEntry = { name: m[1]!, state, fingerprint: m[2]!, altNames: [] };
    for (const part of rest) {
      const alt = /^alt names: (\[.*\])$/.exec(part.trim());
      if (alt) e.altNames = parseAltNameText(parseRubyArray(alt[1]!).join(', '));
    }
    out.push(e);
  }
  return out;
}

/** `puppet cert list --all` of Puppet 3 (legacy format): `+` signed, ` ` request, `-` invalid (revoked, expired...). */
export function parsePuppetCertList(text: string): CertEntry[] {
  const out: CertEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const m = /^([+\- ]) "([^"]+)"\s+\((\w+)\) ([0-9A-F:]+)(.*)$/.exec(line);
    if (!m) throw new CertParseError('`puppet cert list` output', `unexpected line "${line.slice(0, 120)}"`);
    const rest = m[5]!.trim().replace(/\s*\*\*$/, '');
    const alt = /\(alt names: (.*?)\)/.exec(rest);
    const err = /\((certificate [^)]*|[^)]*)\)\s*$/.exec(rest.replace(/\(alt names: .*?\)/, '').trim());
    let state: CertState = m[1] === '+' ? 'signed' : m[1] === ' ' ? 'requested' : 'invalid';
    if (state === 'invalid' && err && /revoked/.test(err[1]!)) state = 'revoked';
    const e: CertEntry = {
      name: m[2]!,
      state,
      altNames: alt ? parseAltNameText(parseRubyArray(alt[1]!).join(', ')) : [],
    };
    if (m[3] === 'SHA256') e.fingerprint = m[4]!;
    if (state === 'invalid' && err) e.problem = err[1]!;
    out.push(e);
  }
  return out;
}

/** Shared by the two Puppet CLIs: run, the exit code decides, typed errors naming host and cert. */
abstract class PuppetCliCa implements CaBackend {
  abstract readonly kind: 'puppetserver' | 'puppet-cert';
  readonly cadir: string;
  protected readonly sudo: boolean;
  protected readonly timeoutMs: number;

  constructor(
    readonly host: Host,
    protected readonly o: PuppetCaOptions,
  ) {
    validateRemotePath(o.cadir);
    this.cadir = o.cadir;
    this.sudo = o.sudo ?? true;
    this.timeoutMs = o.timeoutMs ?? 120_000;
  }

  protected async run(
    argv: readonly string[],
    certname: string | undefined,
    readOnly = false,
    okCodes: readonly number[] = [0],
    changesFiles?: readonly string[],
  ): Promise<ExecResult> {
    const r = await this.host.exec(argv, {
      sudo: this.sudo,
      timeoutMs: this.timeoutMs,
      allowFailure: true,
      readOnly,
      ...(changesFiles ? { changesFiles } : {}),
    });
    if (!okCodes.includes(r.code)) {
      const tail = this.host.redactor.redact(tailLines((r.stderr.trim() || r.stdout.trim()).replace(/\r/g, ''), 6));
      throw new CertError('E_CA_COMMAND', `\`${argv.join(' ')}\` exited ${r.code}${tail ? `: ${tail}` : '.'}`, {
        host: this.host.name,
        certname,
        hint: this.hintFor(tail),
      });
    }
    return r;
  }

  protected hintFor(_stderr: string): string | undefined {
    return undefined;
  }

  abstract list(): Promise<CertEntry[]>;

  protected async entry(certname: string): Promise<CertEntry | undefined> {
    return (await this.list()).find((e) => e.name === certname);
  }

  async sign(certname: string, policy: AltNamePolicy, opts: SignOptions = {}): Promise<void> {
    validateCertname(certname);
    const names: string[] = [];
    if (!opts.fromRequestFile) {
      const e = await this.entry(certname);
      if (!e || e.state !== 'requested')
        throw new CertNotFoundError(this.host.name, certname, 'a pending certificate request');
      names.push(...(e.altNames ?? []));
    }
    // the request file itself is the authority (a listing may leave names out); both are checked
    const pem = await readOptional(this.host, `${this.cadir}/requests/${certname}.pem`, this.sudo);
    if (pem === undefined && opts.fromRequestFile)
      throw new CertNotFoundError(this.host.name, certname, 'a pending certificate request');
    if (pem !== undefined) {
      const csr = parseCsr(pem);
      if (csr.cn !== certname || !csr.signatureValid)
        throw new CertError(
          'E_CSR_REFUSED',
          `the request file for "${certname}" is for "${csr.cn ?? '(no CN)'}" or has an invalid signature.`,
          { host: this.host.name, certname },
        );
      names.push(...csr.altNames);
    }
    enforceAltNames(this.host.name, certname, names, policy);
    await this.run(fill(this.o.commands.sign, certname), certname, false, [0], this.signChanges(certname));
  }

  /**
   * The files signing one request changes, declared to the host (`changesFiles`): the request goes, the
   * certificate comes, the serial and the inventory grow. Not the CA certificate, its key or its CRL (so a
   * file cache keeps them), and nothing on another host.
   */
  signChanges(certname: string): string[] {
    validateCertname(certname);
    return [
      `${this.cadir}/requests/${certname}.pem`,
      `${this.cadir}/signed/${certname}.pem`,
      `${this.cadir}/serial`,
      `${this.cadir}/inventory.txt`,
    ];
  }

  /** A Puppet CA lists what its `requests/` and `signed/` directories hold (a revoked certificate stays in `signed/`). */
  async hasFiles(certname: string): Promise<boolean> {
    validateCertname(certname);
    for (const d of ['requests', 'signed'])
      if (await this.host.exists(`${this.cadir}/${d}/${certname}.pem`, { sudo: this.sudo })) return true;
    return false;
  }

  async revoke(certname: string): Promise<void> {
    const e = await this.entry(validateCertname(certname));
    if (!e) throw new CertNotFoundError(this.host.name, certname, 'a signed certificate');
    if (e.state === 'revoked') return;
    await this.run(fill(this.o.commands.revoke, certname), certname);
  }

  async clean(certname: string): Promise<void> {
    const e = await this.entry(validateCertname(certname));
    if (!e) return;
    await this.run(fill(this.o.commands.clean, certname), certname, false, this.cleanOkCodes(e.state));
  }

  protected cleanOkCodes(_state: CertState): readonly number[] {
    return [0];
  }

  async caCertificate(): Promise<string> {
    const pem = await readOptional(this.host, `${this.cadir}/ca_crt.pem`, this.sudo);
    if (pem === undefined)
      throw new CertNotFoundError(this.host.name, 'ca', `the CA certificate ${this.cadir}/ca_crt.pem`);
    return pem;
  }

  async crl(): Promise<string> {
    const pem = await readOptional(this.host, `${this.cadir}/ca_crl.pem`, this.sudo);
    if (pem === undefined) throw new CertNotFoundError(this.host.name, 'ca', `the CA CRL ${this.cadir}/ca_crl.pem`);
    return pem;
  }

  certificate(certname: string): Promise<string | undefined> {
    return readOptional(this.host, `${this.cadir}/signed/${validateCertname(certname)}.pem`, this.sudo);
  }
}

/**
 * debian: `puppetserver ca` on the CA host. It talks to the running
 * puppetserver's CA API; signing a request with alt names needs
 * `allow-subject-alt-names` in ca.conf (see allowSubjectAltNamesEdit), and
 * puppetserver itself has no per-request alt-name policy, so this class
 * checks the names listed for the request before signing.
 */
export class PuppetserverCa extends PuppetCliCa {
  readonly kind = 'puppetserver' as const;

  static fromLayout(host: Host, layout: Layout, opts: { sudo?: boolean; timeoutMs?: number } = {}): PuppetserverCa {
    return new PuppetserverCa(host, { cadir: layout.dirs.cadir, commands: layoutCommands(layout), ...opts });
  }

  async list(): Promise<CertEntry[]> {
    const r = await this.host.exec([...this.o.commands.list, '--format', 'json'], {
      sudo: this.sudo,
      timeoutMs: this.timeoutMs,
      allowFailure: true,
      readOnly: true,
    });
    if (r.code === 0 && r.stdout.trim().startsWith('{'))
      return parsePuppetserverListJson(
        r.stdout
          .trim()
          .split('\n')
          .filter((l) => l.startsWith('{'))
          .join(''),
      );
    // older puppetserver-ca gems have no --format: fall back to the text listing
    return parsePuppetserverListText((await this.run(this.o.commands.list, undefined, true)).stdout);
  }

  // `puppetserver ca clean` of a pending request removes it but exits 24 ("could not revoke unsigned csr")
  protected override cleanOkCodes(state: CertState): readonly number[] {
    return state === 'requested' ? [0, 24] : [0];
  }

  protected override hintFor(stderr: string): string | undefined {
    if (/code: 409/.test(stderr) && /alt/i.test(stderr))
      return 'Enable allow-subject-alt-names in ca.conf on the CA (allowSubjectAltNamesEdit) and reload puppetserver.';
    if (/code: 403/.test(stderr))
      return 'This host may not use the CA admin endpoints: add its certname to the pp_cli_auth rules of auth.conf (caAdminAuthEdit) and reload puppetserver.';
    if (/Connection refused|Failed to open TCP/i.test(stderr))
      return 'puppetserver ca talks to the running puppetserver: start it (or wait until it is ready).';
    return undefined;
  }
}

/** pe3: `puppet cert` (Puppet 3) on the CA host, which checks alt names itself only with --allow-dns-alt-names given. */
export class PuppetCertCa extends PuppetCliCa {
  readonly kind = 'puppet-cert' as const;

  static fromLayout(host: Host, layout: Layout, opts: { sudo?: boolean; timeoutMs?: number } = {}): PuppetCertCa {
    return new PuppetCertCa(host, { cadir: layout.dirs.cadir, commands: layoutCommands(layout), ...opts });
  }

  async list(): Promise<CertEntry[]> {
    return parsePuppetCertList((await this.run(this.o.commands.list, undefined, true)).stdout);
  }
}
