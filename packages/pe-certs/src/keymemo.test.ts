import { utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { LocalHost, type FileStat } from '@pe-stack/pe-host';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OpensslCa } from './ca-openssl.js';
import { PublicKeyMemo } from './keymemo.js';
import { Openssl } from './openssl.js';
import { ScriptedHost, enrolNode, tempDir, testCa } from '@pe-stack/testkit/certs';
import { loadTrust, puppetSslPaths, verifyNode } from './verify.js';

const st = (o: Partial<FileStat> = {}): FileStat => ({
  size: 241,
  mode: 0o600,
  uid: 0,
  gid: 0,
  isFile: true,
  isDirectory: false,
  isSymlink: false,
  mtimeMs: 1_000_000,
  ...o,
});

describe('PublicKeyMemo', () => {
  it('answers only while the key file has the attributes seen when openssl read it', () => {
    const m = new PublicKeyMemo();
    m.set('h', '/ssl/private_keys/a.pem', true, st(), 'PUB', 1_000_000 + 60_000);
    expect(m.get('h', '/ssl/private_keys/a.pem', true, st())).toBe('PUB');
    for (const other of [
      st({ size: 242 }),
      st({ mtimeMs: 2_000_000 }),
      st({ mode: 0o640 }),
      st({ uid: 1 }),
      st({ gid: 1 }),
    ])
      expect(m.get('h', '/ssl/private_keys/a.pem', true, other)).toBeUndefined();
    // another host, path or sudo: nothing
    expect(m.get('g', '/ssl/private_keys/a.pem', true, st())).toBeUndefined();
    expect(m.get('h', '/ssl/private_keys/b.pem', true, st())).toBeUndefined();
    expect(m.get('h', '/ssl/private_keys/a.pem', false, st())).toBeUndefined();
    m.forgetUnder('h', '/ssl');
    expect(m.get('h', '/ssl/private_keys/a.pem', true, st())).toBeUndefined();
  });

  it('does not remember a key written less than minAgeMs ago, nor a symlink', () => {
    const m = new PublicKeyMemo(2_000);
    m.set('h', '/k', true, st(), 'PUB', 1_000_000 + 500);
    expect(m.get('h', '/k', true, st())).toBeUndefined();
    m.set('h', '/k', true, st({ isSymlink: true, isFile: false }), 'PUB', 1_000_000 + 60_000);
    expect(m.get('h', '/k', true, st({ isSymlink: true, isFile: false }))).toBeUndefined();
    expect(m.size).toBe(0);
  });
});

describe('verifyNode with a PublicKeyMemo', () => {
  let t: Awaited<ReturnType<typeof tempDir>>;
  let ca: OpensslCa;
  beforeAll(async () => {
    t = await tempDir('memo');
    ca = await testCa(t.dir);
  });
  afterAll(() => t.cleanup());

  it('asks openssl once for an unchanged key, again once the key changed; when-cert-ok skips it for a failing certificate', async () => {
    const host = new ScriptedHost({ name: 'node1' });
    const ssldir = join(t.dir, 'ssl');
    await enrolNode(ca, new LocalHost({ name: 'node1' }), ssldir, 'node1.example.com', []);
    const p = puppetSslPaths(ssldir, 'node1.example.com');
    const old = new Date(Date.now() - 60_000);
    await utimes(p.key, old, old);
    const memo = new PublicKeyMemo();
    const trust = loadTrust(await ca.caCertificate(), await ca.crl());
    const o = {
      certname: 'node1.example.com',
      paths: { cert: p.cert, key: p.key, caCert: p.caCert },
      trust,
      publicKeys: memo,
    };
    const pkeys = () => host.calls.filter((a) => a[0] === 'openssl' && a[1] === 'pkey').length;
    expect((await verifyNode(host, o)).ok).toBe(true);
    expect((await verifyNode(host, o)).ok).toBe(true);
    expect(pkeys()).toBe(1);
    // another key in its place (a new key of the same curve: same size): asked again, and it no longer matches
    await new Openssl(host).genKey(p.key, { type: 'ec' });
    const other = new Date(Date.now() - 30_000);
    await utimes(p.key, other, other);
    const r = await verifyNode(host, o);
    expect(pkeys()).toBe(2);
    expect(r.failures.map((f) => f.id)).toEqual(['key-match']);
    // a certificate failing already (wrong name): with when-cert-ok the key is not looked at
    const skip = await verifyNode(host, {
      ...o,
      certname: 'other.example.com',
      keyCheck: 'when-cert-ok',
      publicKeys: false,
    });
    expect(skip.checks.find((c) => c.id === 'key-match')?.level).toBe('skip');
    expect(pkeys()).toBe(2);
    // publicKeys: false asks every time
    await verifyNode(host, { ...o, publicKeys: false });
    await verifyNode(host, { ...o, publicKeys: false });
    expect(pkeys()).toBe(4);
  });
});
