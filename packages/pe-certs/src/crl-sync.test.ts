import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LocalHost } from '@pe-stack/pe-host';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OpensslCa } from './ca-openssl.js';
import { syncCrl, type CrlTarget } from './crl-sync.js';
import { enrolNode, tempDir, testCa } from '@pe-stack/testkit/certs';
import { loadTrust, puppetSslPaths, verifyNode } from './verify.js';

let t: Awaited<ReturnType<typeof tempDir>>;
let ca: OpensslCa;
const s1 = new LocalHost({ name: 'secondary1' });
const s2 = new LocalHost({ name: 'secondary2' });
let targets: CrlTarget[];
const reloads = (n: string) =>
  readFile(join(t.dir, `${n}.reloads`), 'utf8').then(
    (s) => s.length,
    () => 0,
  );

beforeAll(async () => {
  t = await tempDir('crl');
  ca = await testCa(t.dir);
  targets = [s1, s2].map((h) => ({
    host: h,
    path: join(t.dir, `${h.name}-crl.pem`),
    reload: ['sh', '-c', 'printf x >> "$1"', 'sh', join(t.dir, `${h.name}.reloads`)],
    sudo: false,
  }));
});
afterAll(() => t.cleanup());

describe('syncCrl', () => {
  it('copies the CA CRL everywhere and reloads only where it changed', async () => {
    const first = await syncCrl(ca, targets);
    expect(first.map((r) => [r.host, r.changed, r.reloaded])).toEqual([
      ['secondary1', true, true],
      ['secondary2', true, true],
    ]);
    expect(await readFile(targets[0]!.path, 'utf8')).toBe(await ca.crl());
    const second = await syncCrl(ca, targets);
    expect(second.every((r) => !r.changed && !r.reloaded)).toBe(true);
    expect([await reloads('secondary1'), await reloads('secondary2')]).toEqual([1, 1]);
  });

  it('after a revocation: the new CRL is synced, and the revoked certificate fails verification against it', async () => {
    const ssl = join(t.dir, 'agent-ssl');
    const agentHost = new LocalHost({ name: 'agent9' });
    await enrolNode(ca, agentHost, ssl, 'agent9.example.com', []);
    // secondary1's web server CRL is what the node is checked against
    const paths = { ...puppetSslPaths(ssl, 'agent9.example.com'), webCrl: targets[0]!.path };
    await ca.revoke('agent9.example.com');
    const stale = await verifyNode(agentHost, {
      certname: 'agent9.example.com',
      paths,
      trust: loadTrust(await ca.caCertificate(), await ca.crl()),
    });
    expect(stale.failures.map((f) => f.id)).toEqual(['revoked', 'crl-current']);
    const r = await syncCrl(ca, targets);
    expect(r.every((x) => x.changed && x.reloaded)).toBe(true);
    const after = await verifyNode(agentHost, {
      certname: 'agent9.example.com',
      paths,
      trust: loadTrust(await ca.caCertificate(), await ca.crl()),
    });
    expect(after.failures.map((f) => f.id)).toEqual(['revoked']);
    expect([await reloads('secondary1'), await reloads('secondary2')]).toEqual([2, 2]);
  });

  it('never downgrades a target that holds a newer CRL from the same CA', async () => {
    const old = await ca.crl();
    await ca.generateCrl();
    const newer = await ca.crl();
    await writeFile(targets[1]!.path, newer);
    await writeFile(join(ca.cadir, 'ca_crl.pem'), old);
    const r = await syncCrl(ca, targets);
    expect(r[1]).toMatchObject({ changed: false, skipped: expect.stringMatching(/newer CRL/) as unknown as string });
    expect(await readFile(targets[1]!.path, 'utf8')).toBe(newer);
    await writeFile(join(ca.cadir, 'ca_crl.pem'), newer);
  });

  it('refuses a CRL on the CA host that the CA did not sign, and reports a failing reload', async () => {
    const other = await testCa(t.dir, 'other.example.com');
    const good = await ca.crl();
    await writeFile(join(ca.cadir, 'ca_crl.pem'), await other.crl());
    await expect(syncCrl(ca, targets)).rejects.toThrow(/not signed by the CA/);
    await writeFile(join(ca.cadir, 'ca_crl.pem'), good);
    await ca.generateCrl();
    await expect(syncCrl(ca, [{ ...targets[0]!, reload: ['false'] }])).rejects.toMatchObject({
      code: 'E_CA_COMMAND',
      host: 'secondary1',
    });
  });
});
