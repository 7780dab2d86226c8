import { readFile, writeFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { LocalHost } from '@pe-stack/pe-host';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OpensslCa } from './ca-openssl.js';
import { CertVerifyError } from './errors.js';
import { Openssl } from './openssl.js';
import { enrolNode, tempDir, testCa } from '@pe-stack/testkit/certs';
import { assertVerified, checkCertificate, loadTrust, puppetSslPaths, verifyNode, type NodeReport } from './verify.js';

const node = new LocalHost({ name: 'secondary1' });
const NAMES = ['secondary1.example.com', 'puppet.example.com', 'master.example.com'];
let t: Awaited<ReturnType<typeof tempDir>>;
let ca: OpensslCa;
let other: OpensslCa;
let ssldir: string;

async function trust(c = ca) {
  return loadTrust(await c.caCertificate(), await c.crl(), c.host.name);
}

function level(r: NodeReport, id: string) {
  return r.checks.find((c) => c.id === id)?.level;
}

async function verify(over: Partial<Parameters<typeof verifyNode>[1]> = {}) {
  return verifyNode(node, {
    certname: 'secondary1.example.com',
    paths: puppetSslPaths(ssldir, 'secondary1.example.com'),
    trust: await trust(),
    altNames: ['puppet.example.com', 'master.example.com'],
    ...over,
  });
}

beforeAll(async () => {
  t = await tempDir('verify');
  ca = await testCa(t.dir);
  other = await testCa(t.dir, 'impostor.example.com');
  ssldir = join(t.dir, 'node-ssl');
  await enrolNode(ca, node, ssldir, 'secondary1.example.com', NAMES);
});
afterAll(() => t.cleanup());

describe('verifyNode', () => {
  it('passes a node enrolled with the cluster CA, every check ok', async () => {
    const r = await verify();
    expect(r.failures).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.checks.map((c) => c.id)).toEqual([
      'cert-present',
      'name',
      'chain',
      'alt-names',
      'expiry',
      'revoked',
      'ca-copy',
      'crl-present',
      'crl-signed',
      'crl-current',
      'crl-fresh',
      'key-match',
    ]);
    expect(r.checks.every((c) => c.level === 'ok')).toBe(true);
    expect(assertVerified(r)).toBe(r);
  });

  it('fails chain and ca-copy against another CA, naming host and cert', async () => {
    const r = await verify({ trust: await trust(other) });
    expect(level(r, 'chain')).toBe('fail');
    expect(level(r, 'ca-copy')).toBe('fail');
    expect(level(r, 'crl-signed')).toBe('fail');
    const err = (() => {
      try {
        assertVerified(r);
      } catch (e) {
        return e as CertVerifyError;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(CertVerifyError);
    expect(err!.code).toBe('E_CERT_VERIFY');
    expect(err!.host).toBe('secondary1');
    expect(err!.message).toContain('secondary1.example.com');
    expect(err!.failures.map((f) => f.id)).toEqual(['chain', 'ca-copy', 'crl-signed']);
    const key = await readFile(puppetSslPaths(ssldir, 'secondary1.example.com').key, 'utf8');
    const body = key.split('\n')[1]!;
    expect(JSON.stringify(r)).not.toContain(body);
    expect(err!.message).not.toContain(body);
  });

  it('fails when a required alt name is missing', async () => {
    const r = await verify({ altNames: ['puppet.example.com', 'master.example.com', 'newname.example.com'] });
    expect(r.failures).toEqual([
      { id: 'alt-names', level: 'fail', detail: 'missing alt names: DNS:newname.example.com' },
    ]);
  });

  it('warns under 30 days, fails when expired or not yet valid', async () => {
    const notAfter = (await verify()).notAfter!;
    const soon = await verify({ now: new Date(notAfter.getTime() - 10 * 86_400_000) });
    expect(level(soon, 'expiry')).toBe('warn');
    expect(soon.warnings[0]!.detail).toMatch(/expires in (9|10) days/);
    expect(level(await verify({ now: new Date(notAfter.getTime() - 40 * 86_400_000) }), 'expiry')).toBe('ok');
    expect(level(await verify({ now: new Date(notAfter.getTime() + 1000) }), 'expiry')).toBe('fail');
    expect(level(await verify({ now: new Date(Date.now() - 3 * 86_400_000) }), 'expiry')).toBe('fail');
  });

  it('fails crl-fresh once the CRL nextUpdate has passed', async () => {
    const crl = (await trust()).crl!;
    const r = await verify({ now: new Date(crl.nextUpdate!.getTime() + 1000) });
    expect(level(r, 'crl-fresh')).toBe('fail');
  });

  it('fails when the key does not match the certificate, or is absent', async () => {
    const p = puppetSslPaths(ssldir, 'secondary1.example.com');
    const saved = await readFile(p.key);
    try {
      await new Openssl(node).genKey(join(t.dir, 'other.key'), { type: 'ec' });
      await writeFile(p.key, await readFile(join(t.dir, 'other.key')));
      expect(level(await verify(), 'key-match')).toBe('fail');
      await rm(p.key);
      expect(level(await verify(), 'key-match')).toBe('fail');
    } finally {
      await writeFile(p.key, saved, { mode: 0o600 });
    }
    expect(level(await verify(), 'key-match')).toBe('ok');
  });

  it('fails cert-present when there is no certificate', async () => {
    const r = await verify({ certname: 'absent.example.com', paths: puppetSslPaths(ssldir, 'absent.example.com') });
    expect(r.failures.map((f) => f.id)).toEqual(['cert-present']);
  });

  it('a revoked certificate fails; a stale web-server CRL is reported as not current', async () => {
    const n2 = new LocalHost({ name: 'agent2' });
    const ssl2 = join(t.dir, 'agent2-ssl');
    await enrolNode(ca, n2, ssl2, 'agent2.example.com', []);
    const paths = puppetSslPaths(ssl2, 'agent2.example.com');
    const before = await verifyNode(n2, { certname: 'agent2.example.com', paths, trust: await trust() });
    expect(before.ok).toBe(true);
    await ca.revoke('agent2.example.com');
    const after = await verifyNode(n2, { certname: 'agent2.example.com', paths, trust: await trust() });
    expect(level(after, 'revoked')).toBe('fail');
    // the node still holds the old CRL: signed by the CA, but not the current one
    expect(level(after, 'crl-signed')).toBe('ok');
    expect(level(after, 'crl-current')).toBe('fail');
    expect(after.failures.find((f) => f.id === 'crl-current')!.detail).toMatch(/#\d+ .*current one is #\d+/);
    // and the first node's web CRL is now stale too
    expect(level(await verify(), 'crl-current')).toBe('fail');
  });
});

describe('checkCertificate and loadTrust', () => {
  it('refuses a CRL not signed by the CA, and a non-CA certificate as a CA', async () => {
    const [caPem, otherCrl] = [await ca.caCertificate(), await other.crl()];
    expect(() => loadTrust(caPem, otherCrl)).toThrow(/not signed by the CA/);
    const leaf = (await ca.certificate('secondary1.example.com'))!;
    expect(() => loadTrust(leaf)).toThrow(/not a CA certificate/);
  });

  it('reports garbage as a parse failure, not a crash', async () => {
    expect(checkCertificate('not a certificate', await trust()).checks).toEqual([
      { id: 'parse', level: 'fail', detail: expect.stringContaining('cannot parse') as unknown as string },
    ]);
  });

  it('skips the revocation check without a CRL and reports a wrong CN', async () => {
    const r = checkCertificate((await ca.certificate('secondary1.example.com'))!, loadTrust(await ca.caCertificate()), {
      certname: 'x.example.com',
    });
    expect(r.checks.find((c) => c.id === 'revoked')?.level).toBe('skip');
    expect(r.checks.find((c) => c.id === 'name')?.level).toBe('fail');
  });
});
