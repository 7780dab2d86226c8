import { createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { CertParseError } from './errors.js';

/**
 * Just enough DER to read what node:crypto cannot: certificate signing
 * requests (subject, alt names, requested extensions, self-signature) and
 * CRLs (issuer, dates, CRL number, revoked serials, signature). Only public
 * data is ever parsed here.
 */
interface Tlv {
  tag: number;
  /** Offset of the tag byte. */
  start: number;
  /** Offset of the first content byte. */
  body: number;
  end: number;
}

function readTlv(buf: Buffer, pos: number, limit = buf.length): Tlv {
  if (pos + 2 > limit) throw new Error(`truncated at ${pos}`);
  const tag = buf[pos]!;
  if ((tag & 0x1f) === 0x1f) throw new Error('multi-byte tags are not supported');
  let len = buf[pos + 1]!;
  let body = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new Error(`unsupported length form at ${pos}`);
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[body + i]!;
    body += n;
  }
  const end = body + len;
  if (end > limit) throw new Error(`length overruns its container at ${pos}`);
  return { tag, start: pos, body, end };
}

function kids(buf: Buffer, t: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let p = t.body; p < t.end;) {
    const c = readTlv(buf, p, t.end);
    out.push(c);
    p = c.end;
  }
  return out;
}

function expect(t: Tlv | undefined, tag: number, what: string): Tlv {
  if (!t || t.tag !== tag)
    throw new Error(`expected ${what} (tag 0x${tag.toString(16)}), found ${t ? `0x${t.tag.toString(16)}` : 'nothing'}`);
  return t;
}

function oid(buf: Buffer, t: Tlv): string {
  const b = buf.subarray(t.body, t.end);
  const parts: number[] = [];
  let v = 0;
  for (let i = 0; i < b.length; i++) {
    v = v * 128 + (b[i]! & 0x7f);
    if (!(b[i]! & 0x80)) {
      if (parts.length === 0) parts.push(v < 80 ? Math.floor(v / 40) : 2, v < 80 ? v % 40 : v - 80);
      else parts.push(v);
      v = 0;
    }
  }
  return parts.join('.');
}

/** Uppercase hex without leading zeros (the form X509Certificate.serialNumber is compared in). */
export function normaliseSerial(hex: string): string {
  return hex.toUpperCase().replace(/^0+(?=.)/, '');
}

function integerHex(buf: Buffer, t: Tlv): string {
  return normaliseSerial(buf.subarray(t.body, t.end).toString('hex'));
}

function time(buf: Buffer, t: Tlv): Date {
  const s = buf.subarray(t.body, t.end).toString('latin1');
  const m =
    t.tag === 0x17
      ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s)
      : /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (!m) throw new Error(`bad time ${s}`);
  let year = Number(m[1]);
  if (t.tag === 0x17) year += year < 50 ? 2000 : 1900;
  return new Date(Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
}

const ATTR_NAMES: Record<string, string> = {
  '2.5.4.3': 'CN',
  '2.5.4.6': 'C',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
};

function name(buf: Buffer, t: Tlv): { text: string; cn: string | undefined } {
  const parts: string[] = [];
  let cn: string | undefined;
  for (const rdn of kids(buf, t)) {
    for (const atv of kids(buf, rdn)) {
      const [type, value] = kids(buf, atv);
      const o = oid(buf, expect(type, 0x06, 'attribute type'));
      const v = buf.subarray(value!.body, value!.end).toString('utf8');
      if (o === '2.5.4.3') cn = v;
      parts.push(`${ATTR_NAMES[o] ?? o}=${v}`);
    }
  }
  return { text: parts.join(', '), cn };
}

const SIG_HASH: Record<string, string> = {
  '1.2.840.113549.1.1.5': 'sha1',
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
};

function checkSignature(buf: Buffer, tbs: Tlv, alg: Tlv, sig: Tlv, key: KeyObject): boolean {
  const algOid = oid(buf, expect(kids(buf, alg)[0], 0x06, 'signature algorithm'));
  const hash = SIG_HASH[algOid];
  if (!hash) return false;
  const bits = buf.subarray(sig.body + 1, sig.end);
  try {
    return cryptoVerify(hash, buf.subarray(tbs.start, tbs.end), key, bits);
  } catch {
    return false;
  }
}

export function pemToDer(pem: string, labels: readonly string[]): Buffer {
  for (const label of labels) {
    const m = new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`).exec(pem);
    if (m) return Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64');
  }
  throw new Error(`no PEM block labelled ${labels.join(' or ')}`);
}

/** Alt names from a GeneralNames value, in `DNS:x` / `IP:x` form. */
function generalNames(buf: Buffer, octets: Tlv): string[] {
  const seq = readTlv(buf, octets.body, octets.end);
  const out: string[] = [];
  for (const gn of kids(buf, expect(seq, 0x30, 'GeneralNames'))) {
    const v = buf.subarray(gn.body, gn.end);
    if (gn.tag === 0x82) out.push(`DNS:${v.toString('latin1').toLowerCase()}`);
    else if (gn.tag === 0x87 && v.length === 4) out.push(`IP:${[...v].join('.')}`);
    else if (gn.tag === 0x87 && v.length === 16)
      out.push(`IP:${(v.toString('hex').match(/.{4}/g) ?? []).map((h) => h.replace(/^0+(?=.)/, '')).join(':')}`);
    else out.push(`OTHER:0x${gn.tag.toString(16)}`);
  }
  return out;
}

export interface ParsedCsr {
  subject: string;
  cn: string | undefined;
  /** `DNS:x` / `IP:x`, as requested (lowercased DNS names). */
  altNames: string[];
  /** OIDs of every requested extension (e.g. 1.3.6.1.4.1.34380.1.3.39 pp_cli_auth). */
  extensionOids: string[];
  /** The self-signature checks out against the CSR's own public key. */
  signatureValid: boolean;
  publicKeyPem: string;
}

export function parseCsr(pem: string): ParsedCsr {
  try {
    const buf = pemToDer(pem, ['CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST']);
    const top = expect(readTlv(buf, 0), 0x30, 'CertificationRequest');
    const [info, alg, sig] = kids(buf, top);
    const [_version, subject, spki, attrs] = kids(buf, expect(info, 0x30, 'CertificationRequestInfo'));
    const n = name(buf, expect(subject, 0x30, 'subject'));
    const key = createPublicKey({ key: buf.subarray(spki!.start, spki!.end), format: 'der', type: 'spki' });
    const altNames: string[] = [];
    const extensionOids: string[] = [];
    if (attrs && attrs.tag === 0xa0) {
      for (const attr of kids(buf, attrs)) {
        const [type, values] = kids(buf, attr);
        if (oid(buf, expect(type, 0x06, 'attribute type')) !== '1.2.840.113549.1.9.14') continue;
        for (const exts of kids(buf, expect(values, 0x31, 'attribute values'))) {
          for (const ext of kids(buf, exts)) {
            const parts = kids(buf, ext);
            const id = oid(buf, expect(parts[0], 0x06, 'extension id'));
            extensionOids.push(id);
            if (id === '2.5.29.17')
              altNames.push(...generalNames(buf, expect(parts[parts.length - 1], 0x04, 'extension value')));
          }
        }
      }
    }
    return {
      subject: n.text,
      cn: n.cn,
      altNames,
      extensionOids,
      signatureValid: checkSignature(buf, info!, expect(alg, 0x30, 'algorithm'), expect(sig, 0x03, 'signature'), key),
      publicKeyPem: key.export({ type: 'spki', format: 'pem' }).toString(),
    };
  } catch (e) {
    throw e instanceof CertParseError ? e : new CertParseError('a certificate signing request', (e as Error).message);
  }
}

export interface ParsedCrl {
  issuer: string;
  issuerCn: string | undefined;
  thisUpdate: Date;
  nextUpdate: Date | undefined;
  /** The CRL number extension, as a bigint; undefined when absent. */
  crlNumber: bigint | undefined;
  /** Revoked serials (normalised hex) with their revocation dates. */
  revoked: Map<string, Date>;
  /** Whether the signature verifies under the given issuer key (undefined when no key was given). */
  signatureValid: boolean | undefined;
}

export function parseCrl(pem: string, issuerKey?: KeyObject): ParsedCrl {
  try {
    const buf = pemToDer(pem, ['X509 CRL']);
    const top = expect(readTlv(buf, 0), 0x30, 'CertificateList');
    const [tbs, alg, sig] = kids(buf, top);
    const f = kids(buf, expect(tbs, 0x30, 'TBSCertList'));
    let i = 0;
    if (f[i]?.tag === 0x02) i++; // version
    i++; // signature algorithm
    const issuer = name(buf, expect(f[i++], 0x30, 'issuer'));
    const thisUpdate = time(buf, f[i++]!);
    let nextUpdate: Date | undefined;
    if (f[i] && (f[i]!.tag === 0x17 || f[i]!.tag === 0x18)) nextUpdate = time(buf, f[i++]!);
    const revoked = new Map<string, Date>();
    if (f[i]?.tag === 0x30) {
      for (const entry of kids(buf, f[i++]!)) {
        const [serial, date] = kids(buf, entry);
        revoked.set(integerHex(buf, expect(serial, 0x02, 'serial')), time(buf, date!));
      }
    }
    let crlNumber: bigint | undefined;
    if (f[i]?.tag === 0xa0) {
      const exts = readTlv(buf, f[i]!.body, f[i]!.end);
      for (const ext of kids(buf, exts)) {
        const parts = kids(buf, ext);
        if (oid(buf, expect(parts[0], 0x06, 'extension id')) === '2.5.29.20') {
          const octets = expect(parts[parts.length - 1], 0x04, 'extension value');
          const int = readTlv(buf, octets.body, octets.end);
          crlNumber = BigInt(`0x${buf.subarray(int.body, int.end).toString('hex') || '0'}`);
        }
      }
    }
    return {
      issuer: issuer.text,
      issuerCn: issuer.cn,
      thisUpdate,
      nextUpdate,
      crlNumber,
      revoked,
      signatureValid: issuerKey
        ? checkSignature(buf, tbs!, expect(alg, 0x30, 'algorithm'), expect(sig, 0x03, 'signature'), issuerKey)
        : undefined,
    };
  } catch (e) {
    throw e instanceof CertParseError ? e : new CertParseError('a CRL', (e as Error).message);
  }
}
