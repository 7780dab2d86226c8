import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LocalHost } from '@pe-stack/pe-host';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OpensslCa } from './ca-openssl.js';
import { parseCrl, parseCsr } from './der.js';
import { Openssl } from './openssl.js';
import { tempDir, testCa } from '@pe-stack/testkit/certs';
import { inspectCert } from './x509.js';

// The DER reader is checked against openssl's own rendering of the same files.
const host = new LocalHost();
const o = new Openssl(host);
let t: Awaited<ReturnType<typeof tempDir>>;
let ca: OpensslCa;
beforeAll(async () => {
  t = await tempDir('der');
  ca = await testCa(t.dir);
});
afterAll(() => t.cleanup());

async function csr(name: string, alt: string[], rsa = false) {
  const key = join(t.dir, `${name}.key`);
  const out = join(t.dir, `${name}.csr`);
  await o.genKey(key, rsa ? { type: 'rsa', bits: 1024 } : { type: 'ec' });
  await o.newCsr(key, out, name, alt);
  return { pem: await readFile(out, 'utf8'), path: out };
}

describe('parseCsr', () => {
  it.each([
    ['ec-with-names.example', ['ec-with-names.example', 'puppet.example.com', '10.1.2.3'], false],
    ['rsa-none.example', [], true],
  ])('%s matches openssl req -text', async (name, alt, rsa) => {
    const { pem, path } = await csr(name, alt, rsa);
    const p = parseCsr(pem);
    const text = (await o.run(['req', '-in', path, '-noout', '-text'])).stdout;
    expect(p.cn).toBe(name);
    expect(text).toContain(`CN = ${name}`);
    const sanLine = /X509v3 Subject Alternative Name:\s*\n\s*(.*)/.exec(text)?.[1] ?? '';
    expect(p.altNames).toEqual(sanLine ? sanLine.split(', ').map((s) => s.replace('IP Address:', 'IP:')) : []);
    expect(p.signatureValid).toBe(true);
    const pub = (await o.run(['req', '-in', path, '-noout', '-pubkey'])).stdout;
    expect(p.publicKeyPem.trim()).toBe(pub.trim());
  });

  it('refuses non-CSR input with a typed error', () => {
    expect(() => parseCsr('-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----')).toThrow(
      /cannot parse a certificate signing request/,
    );
    expect(() => parseCsr('hello')).toThrow(/E_CERT_PARSE|cannot parse/);
  });
});

describe('parseCrl', () => {
  it('matches openssl crl -text: issuer, dates, number, revoked serials', async () => {
    for (const n of ['a1.example', 'a2.example', 'a3.example']) {
      await ca.submit(n, (await csr(n, [])).pem);
      await ca.sign(n, { allowed: [] });
    }
    await ca.revoke('a1.example');
    await ca.revoke('a3.example');
    const pem = await ca.crl();
    const path = join(ca.cadir, 'ca_crl.pem');
    const p = parseCrl(pem, inspectCert(await ca.caCertificate()).x509.publicKey);
    const text = (await o.run(['crl', '-in', path, '-noout', '-text'])).stdout;
    expect(p.signatureValid).toBe(true);
    const serials = [...text.matchAll(/Serial Number: ([0-9A-F]+)/g)].map((m) => m[1]!.replace(/^0+(?=.)/, ''));
    expect([...p.revoked.keys()].sort()).toEqual(serials.sort());
    expect(serials).toEqual(
      [(await ca.inspect('a1.example')).serial, (await ca.inspect('a3.example')).serial].map((s) => s),
    );
    expect(`CRL #${String(p.crlNumber)}`).toBe(`CRL #${/X509v3 CRL Number:\s*\n\s*(\d+)/.exec(text)![1]}`);
    const last = /Last Update: (.*)/.exec(text)![1]!;
    const next = /Next Update: (.*)/.exec(text)![1]!;
    expect(p.thisUpdate.getTime()).toBe(new Date(last).getTime());
    expect(p.nextUpdate!.getTime()).toBe(new Date(next).getTime());
    expect(p.issuerCn).toBe('Puppet CA: primary.example.com');
    const other = await testCa(t.dir, 'other.example');
    expect(parseCrl(pem, inspectCert(await other.caCertificate()).x509.publicKey).signatureValid).toBe(false);
  });
});
