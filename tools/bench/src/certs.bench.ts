import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalHost } from '@pe-stack/pe-host';
import { OpensslCa, backupCa, checkCertificate, loadTrust, restoreCa } from '@pe-stack/pe-certs';
import { round } from './stats.js';

/**
 * pe-certs, with real openssl on this machine (LocalHost):
 * - sign 200 CSRs one by one with OpensslCa.sign (alt-name policy check + one
 *   `openssl ca` each), CA key RSA-4096 as Puppet makes it;
 * - verify 1,000 certificates against the CA and a CRL listing 100 of them
 *   (chain, expiry, revocation; node:crypto);
 * - back up a CA holding 5,000 signed certificates to an archive with a
 *   manifest, and restore it with verification onto another directory.
 * CSRs for the set-up are built in-process (EC P-256, one key) so that the
 * set-up does not dominate the run; the measured steps use openssl as in use.
 */

function len(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v >>= 8) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}
const tlv = (tag: number, ...parts: Buffer[]) => {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([tag]), len(body.length), body]);
};
const OID_CN = Buffer.from([0x06, 0x03, 0x55, 0x04, 0x03]);
const ECDSA_SHA256 = tlv(0x30, Buffer.from([0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]));

/** A PKCS#10 request for CN=name signed with key (EC), as openssl req would make it. */
function csrPem(name: string, key: { privateKey: KeyObject; spki: Buffer }): string {
  const subject = tlv(0x30, tlv(0x31, tlv(0x30, OID_CN, tlv(0x0c, Buffer.from(name, 'utf8')))));
  const info = tlv(0x30, Buffer.from([0x02, 0x01, 0x00]), subject, key.spki, Buffer.from([0xa0, 0x00]));
  const sig = sign('sha256', info, key.privateKey);
  const der = tlv(0x30, info, ECDSA_SHA256, tlv(0x03, Buffer.from([0]), sig));
  return `-----BEGIN CERTIFICATE REQUEST-----\n${der
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n?$/, '\n')}-----END CERTIFICATE REQUEST-----\n`;
}

export async function benchCerts(): Promise<Record<string, number>> {
  const host = new LocalHost({ name: 'bench-ca' });
  const dir = await mkdtemp(join(tmpdir(), 'pe-bench-certs-'));
  const out: Record<string, number> = {};
  try {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const key = { privateKey, spki: publicKey.export({ type: 'spki', format: 'der' }) };

    // 1. sign 200 CSRs, one by one
    const ca = await OpensslCa.init(host, join(dir, 'ca'), {
      commonName: 'Puppet CA: bench',
      key: { type: 'rsa', bits: 4096 },
    });
    const names200 = Array.from({ length: 200 }, (_, i) => `node${String(i).padStart(4, '0')}.bench.example`);
    for (const n of names200) await ca.submit(n, csrPem(n, key));
    let t0 = performance.now();
    for (const n of names200) await ca.sign(n, { allowed: [] });
    const sign200 = performance.now() - t0;
    out['certs sign 200 CSRs (OpensslCa.sign, RSA-4096 CA) total ms'] = round(sign200, 0);
    out['certs sign 1 CSR mean ms'] = round(sign200 / 200, 1);

    // 2. verify 1,000 certificates against the CA and a CRL with 100 revoked
    const names1000 = Array.from({ length: 800 }, (_, i) => `agent${String(i).padStart(5, '0')}.bench.example`);
    for (const n of names1000) await ca.submit(n, csrPem(n, key));
    await ca.signMany(names1000, { allowed: [] });
    const all = [...names200, ...names1000];
    await ca.revokeMany(all.filter((_, i) => i % 10 === 0));
    const pems = await Promise.all(all.map(async (n) => (await ca.certificate(n))!));
    const trust = loadTrust(await ca.caCertificate(), await ca.crl());
    t0 = performance.now();
    let revoked = 0;
    for (const pem of pems)
      if (checkCertificate(pem, trust).checks.some((c) => c.id === 'revoked' && c.level === 'fail')) revoked++;
    const verify1000 = performance.now() - t0;
    if (revoked !== 100) throw new Error(`bench: expected 100 revoked certificates, found ${revoked}`);
    out['certs verify 1,000 certs (chain+expiry+CRL of 100) total ms'] = round(verify1000, 0);
    out['certs verify 1 cert mean ms'] = round(verify1000 / 1000, 3);

    // 3. backup + verified restore of a CA holding 5,000 signed certificates
    const more = Array.from({ length: 4000 }, (_, i) => `fleet${String(i).padStart(5, '0')}.bench.example`);
    for (const n of more) await ca.submit(n, csrPem(n, key));
    await ca.signMany(more, { allowed: [] });
    t0 = performance.now();
    const b = await backupCa(host, ca.cadir, join(dir, 'controller'), { sudo: false });
    out['certs CA backup 5,000 certs ms'] = round(performance.now() - t0, 0);
    out['certs CA backup archive MB'] = round((await stat(b.archive)).size / 1e6, 1);
    out['certs CA backup files'] = Object.keys(b.manifest.files).length;
    t0 = performance.now();
    const r = await restoreCa(b.archive, host, join(dir, 'restored-ca'), { sudo: false });
    out['certs CA verified restore 5,000 certs ms'] = round(performance.now() - t0, 0);
    if (!r.changed || r.files !== Object.keys(b.manifest.files).length)
      throw new Error('bench: restore did not restore every file');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return out;
}
