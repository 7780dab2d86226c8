import { mkdtemp, readFile, rm, writeFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DryRunHost, LocalHost } from '@pe-stack/pe-host';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OpensslCa, parseIndex } from './ca-openssl.js';
import { parseCrl, parseCsr } from './der.js';
import { CsrRefusedError, CaExistsError } from './errors.js';
import { Openssl } from './openssl.js';
import { inspectCert } from './x509.js';
import { failure } from '@pe-stack/testkit/certs';

const host = new LocalHost({ name: 'ca-host' });
let dir: string;
let ca: OpensslCa;
const PASS = 'correct-horse-battery-staple';

async function csrFor(name: string, alt: string[]): Promise<string> {
  const o = new Openssl(host);
  const key = join(dir, `node-${name}.key`);
  const out = join(dir, `node-${name}.csr`);
  await o.genKey(key, { type: 'ec' });
  await o.newCsr(key, out, name, alt);
  return readFile(out, 'utf8');
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pe-certs-ca-'));
  ca = await OpensslCa.init(host, join(dir, 'ca'), {
    commonName: 'Puppet CA: primary.example.com',
    key: { type: 'rsa', bits: 2048 },
    passphrase: PASS,
  });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('OpensslCa', () => {
  it('creates a CA in Puppet layout with an encrypted key and a first CRL', async () => {
    const caPem = await ca.caCertificate();
    const info = inspectCert(caPem);
    expect(info.isCa).toBe(true);
    expect(info.cn).toBe('Puppet CA: primary.example.com');
    const key = await readFile(join(dir, 'ca', 'ca_key.pem'), 'utf8');
    expect(key).toContain('ENCRYPTED PRIVATE KEY');
    expect((await stat(join(dir, 'ca', 'ca_key.pem'))).mode & 0o777).toBe(0o600);
    const crl = parseCrl(await ca.crl(), info.x509.publicKey);
    expect(crl.signatureValid).toBe(true);
    expect(crl.revoked.size).toBe(0);
    expect(crl.crlNumber).toBe(1n);
  });

  it('refuses to initialise over an existing CA', async () => {
    await expect(OpensslCa.init(host, join(dir, 'ca'))).rejects.toBeInstanceOf(CaExistsError);
  });

  it('signs a request with allowed alt names and copies exactly those names', async () => {
    await ca.submit(
      'secondary1.example.com',
      await csrFor('secondary1.example.com', ['secondary1.example.com', 'puppet.example.com', 'master.example.com']),
    );
    expect((await ca.list()).find((e) => e.name === 'secondary1.example.com')).toMatchObject({
      state: 'requested',
      altNames: ['DNS:secondary1.example.com', 'DNS:puppet.example.com', 'DNS:master.example.com'],
    });
    await ca.sign('secondary1.example.com', {
      allowed: ['puppet.example.com', 'master.example.com'],
      requireAll: true,
    });
    const cert = inspectCert((await ca.certificate('secondary1.example.com'))!);
    expect(cert.cn).toBe('secondary1.example.com');
    expect(cert.altNames.sort()).toEqual([
      'DNS:master.example.com',
      'DNS:puppet.example.com',
      'DNS:secondary1.example.com',
    ]);
    expect(cert.x509.checkIssued(new (await import('node:crypto')).X509Certificate(await ca.caCertificate()))).toBe(
      true,
    );
    const entry = (await ca.list()).find((e) => e.name === 'secondary1.example.com');
    expect(entry).toMatchObject({ state: 'signed', serial: cert.serial });
  });

  it('refuses a request with an unexpected alt name and lists the names', async () => {
    await ca.submit(
      'rogue.example.com',
      await csrFor('rogue.example.com', ['rogue.example.com', 'puppet.example.com', 'evil.example.org']),
    );
    const err = await failure(ca.sign('rogue.example.com', { allowed: ['puppet.example.com', 'master.example.com'] }));
    expect(err).toBeInstanceOf(CsrRefusedError);
    expect((err as CsrRefusedError).unexpected).toEqual(['DNS:evil.example.org']);
    expect((err as Error).message).toContain('DNS:evil.example.org');
    expect((err as Error).message).toContain('rogue.example.com');
    expect((err as CsrRefusedError).host).toBe('ca-host');
    expect(await ca.certificate('rogue.example.com')).toBeUndefined();
    expect((await ca.list()).find((e) => e.name === 'rogue.example.com')?.state).toBe('requested');
  });

  it('refuses a request that lacks a required name when exact names are required', async () => {
    await ca.submit(
      'partial.example.com',
      await csrFor('partial.example.com', ['partial.example.com', 'puppet.example.com']),
    );
    const err = await failure(
      ca.sign('partial.example.com', { allowed: ['puppet.example.com', 'master.example.com'], requireAll: true }),
    );
    expect(err).toBeInstanceOf(CsrRefusedError);
    expect((err as CsrRefusedError).missing).toEqual(['DNS:master.example.com']);
  });

  it('signs a request without alt names', async () => {
    await ca.submit('agent1.example.com', await csrFor('agent1.example.com', []));
    await ca.sign('agent1.example.com', { allowed: [] });
    expect(inspectCert((await ca.certificate('agent1.example.com'))!).altNames).toEqual([]);
  });

  it('revokes: the serial lands in a new CRL with the next number; revoking again is a no-op', async () => {
    const serial = (await ca.inspect('agent1.example.com')).serial;
    const before = parseCrl(await ca.crl());
    await ca.revoke('agent1.example.com');
    const after = parseCrl(await ca.crl(), inspectCert(await ca.caCertificate()).x509.publicKey);
    expect(after.signatureValid).toBe(true);
    expect(after.revoked.has(serial)).toBe(true);
    expect(after.crlNumber).toBe((before.crlNumber ?? 0n) + 1n);
    await ca.revoke('agent1.example.com');
    expect(parseCrl(await ca.crl()).crlNumber).toBe(after.crlNumber);
    expect((await ca.list()).find((e) => e.name === 'agent1.example.com')?.state).toBe('revoked');
  });

  it('clean revokes and removes, so the name can be signed again with a new serial', async () => {
    const old = (await ca.inspect('secondary1.example.com')).serial;
    await ca.clean('secondary1.example.com');
    expect(await ca.certificate('secondary1.example.com')).toBeUndefined();
    expect(parseCrl(await ca.crl()).revoked.has(old)).toBe(true);
    await ca.submit(
      'secondary1.example.com',
      await csrFor('secondary1.example.com', ['secondary1.example.com', 'puppet.example.com', 'master.example.com']),
    );
    await ca.sign('secondary1.example.com', { allowed: ['puppet.example.com', 'master.example.com'] });
    expect((await ca.inspect('secondary1.example.com')).serial).not.toBe(old);
  });

  it('refuses a submission for a name that is already signed, or whose CSR is for another name', async () => {
    await expect(ca.submit('secondary1.example.com', await csrFor('secondary1.example.com', []))).rejects.toMatchObject(
      { code: 'E_CSR_REFUSED' },
    );
    await expect(ca.submit('other.example.com', await csrFor('x.example.com', []))).rejects.toMatchObject({
      code: 'E_CSR_REFUSED',
    });
  });

  it('refuses a tampered request (signature check)', async () => {
    const pem = await csrFor('tamper.example.com', ['tamper.example.com']);
    const der = Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
    der[der.length - 1] = der[der.length - 1]! ^ 0x01; // one bit of the signature
    const bad = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE REQUEST-----\n`;
    expect(parseCsr(bad).signatureValid).toBe(false);
    await writeFile(join(dir, 'ca', 'requests', 'tamper.example.com.pem'), bad);
    await expect(ca.sign('tamper.example.com', { allowed: ['tamper.example.com'] })).rejects.toThrow(
      /invalid signature/,
    );
    expect(await ca.certificate('tamper.example.com')).toBeUndefined();
  });

  it('never puts the CA passphrase in argv, errors or files other than the key', async () => {
    const calls: string[][] = [];
    const spy = new LocalHost({ name: 'spy' });
    const orig = spy.exec.bind(spy);
    spy.exec = (argv, opts) => {
      calls.push([...argv]);
      return orig(argv, opts);
    };
    const ca2 = await OpensslCa.init(spy, join(dir, 'ca2'), { key: { type: 'ec' }, passphrase: PASS });
    await ca2.submit('n.example.com', await csrFor('n.example.com', []));
    await ca2.sign('n.example.com', { allowed: [] });
    await ca2.revoke('n.example.com');
    expect(calls.length).toBeGreaterThan(4);
    expect(JSON.stringify(calls)).not.toContain(PASS);
    expect(JSON.stringify(calls)).toContain('env:PE_OPENSSL_PASS');
    // a wrong passphrase fails with an error that does not contain it
    const wrong = new OpensslCa(spy, join(dir, 'ca2'), { passphrase: 'not-the-passphrase' });
    await ca2.submit('m.example.com', await csrFor('m.example.com', []));
    const err = await failure<Error>(wrong.sign('m.example.com', { allowed: [] }));
    expect(err).toMatchObject({ code: 'E_OPENSSL', host: 'spy' });
    expect(String(err.message)).not.toContain('not-the-passphrase');
    expect(JSON.stringify(err)).not.toContain('not-the-passphrase');
  });

  it('signs and revokes in batches: same certificates as one by one, one refused request stops the batch', async () => {
    const names = ['b1.example.com', 'b2.example.com', 'b3.example.com'];
    for (const n of names) await ca.submit(n, await csrFor(n, n === 'b3.example.com' ? [n, 'puppet.example.com'] : []));
    await ca.submit('bad.example.com', await csrFor('bad.example.com', ['bad.example.com', 'evil.example.org']));
    await expect(
      ca.signMany([...names, 'bad.example.com'], { allowed: ['puppet.example.com'] }),
    ).rejects.toBeInstanceOf(CsrRefusedError);
    expect(await ca.certificate('b1.example.com')).toBeUndefined();
    await ca.signMany(names, { allowed: ['puppet.example.com'] });
    const certs = await Promise.all(names.map(async (n) => inspectCert((await ca.certificate(n))!)));
    expect(certs.map((c) => c.cn)).toEqual(names);
    expect(certs[2]!.altNames).toEqual(['DNS:b3.example.com', 'DNS:puppet.example.com']);
    expect(new Set(certs.map((c) => c.serial)).size).toBe(3);
    await ca.revokeMany(['b1.example.com', 'b2.example.com']);
    const crl = parseCrl(await ca.crl());
    expect([
      crl.revoked.has(certs[0]!.serial),
      crl.revoked.has(certs[1]!.serial),
      crl.revoked.has(certs[2]!.serial),
    ]).toEqual([true, true, false]);
  });

  it('under DryRunHost, signing is a plan: recorded argv name the passphrase only as env:, and nothing is signed', async () => {
    const dry = new DryRunHost(new LocalHost({ name: 'ca-host' }));
    const planned = new OpensslCa(dry, join(dir, 'ca'), { passphrase: PASS });
    await ca.submit('planned.example.com', await csrFor('planned.example.com', []));
    await planned.sign('planned.example.com', { allowed: [] });
    const plan = JSON.stringify(dry.mutations);
    expect(plan).toContain('env:PE_OPENSSL_PASS');
    expect(plan).toContain('signed/planned.example.com.pem');
    expect(plan).not.toContain(PASS);
    const key = (await readFile(join(dir, 'ca', 'ca_key.pem'), 'utf8')).split('\n')[1]!;
    expect(plan).not.toContain(key);
    expect(await ca.certificate('planned.example.com')).toBeUndefined();
  });

  it('parses index.txt rows (valid, revoked, multiple per name)', () => {
    const rows = parseIndex(
      'V\t311125000000Z\t\t02\tunknown\t/CN=a.example\nR\t311125000000Z\t261125000000Z,keyCompromise\t0A\tunknown\t/CN=b\nbroken line\n',
    );
    expect(rows).toEqual([
      { status: 'V', expires: '311125000000Z', revoked: '', serial: '2', cn: 'a.example' },
      { status: 'R', expires: '311125000000Z', revoked: '261125000000Z,keyCompromise', serial: 'A', cn: 'b' },
    ]);
  });
});
