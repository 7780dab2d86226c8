import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LocalHost, treeManifest } from '@pe-stack/pe-host';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OpensslCa } from './ca-openssl.js';
import { OpensslAgent } from './enroll.js';
import { CsrRefusedError } from './errors.js';
import { masterAltNames, regenerateNodeCert } from './regenerate.js';
import { enrolNode, failure, tempDir, testCa } from '@pe-stack/testkit/certs';
import { inspectCert } from './x509.js';

const node = new LocalHost({ name: 'secondary1' });
let t: Awaited<ReturnType<typeof tempDir>>;
let primary: OpensslCa;
let own: OpensslCa;
let ssldir: string;
const opts = () => ({
  node,
  ca: primary,
  agent: new OpensslAgent(primary, ssldir, { key: { type: 'ec' } }),
  certname: 'secondary1.example.com',
  ownNames: ['secondary1'],
  generalCname: 'puppet.example.com',
  primaryCname: 'master.example.com',
});

beforeAll(async () => {
  t = await tempDir('regen');
  primary = await testCa(t.dir, 'primary.example.com');
  // the secondary starts with its own CA, as a fresh master install does
  own = await testCa(t.dir, 'secondary1.example.com');
  ssldir = join(t.dir, 'secondary1-ssl');
  await enrolNode(own, node, ssldir, 'secondary1.example.com', ['secondary1.example.com', 'puppet']);
});
afterAll(() => t.cleanup());

describe('regenerateNodeCert', () => {
  it('computes the alt names: own names + general_cname + primary_cname', () => {
    expect(masterAltNames('s1.example.com', ['s1'], 'puppet.example.com', 'master.example.com')).toEqual([
      's1.example.com',
      's1',
      'puppet.example.com',
      'master.example.com',
    ]);
    expect(() => masterAltNames('s1.example.com', [], 'bad name', 'm')).toThrow();
  });

  it('replaces a certificate from another CA: verified backup first, then a cert from the primary CA with the shared names', async () => {
    const oldManifest = await treeManifest(node, ssldir);
    const oldCert = await readFile(join(ssldir, 'certs', 'secondary1.example.com.pem'), 'utf8');
    const lines: string[] = [];
    const r = await regenerateNodeCert({ ...opts(), log: (l) => lines.push(l) });
    expect(r.changed).toBe(true);
    expect(r.reason).toMatch(/chain/);
    expect(r.report.ok).toBe(true);
    // the backup holds exactly the old ssldir, private key included
    expect(r.backup).toMatch(/secondary1-ssl\.pe-backup-\d{8}T\d+Z$/);
    expect(await treeManifest(node, r.backup!)).toEqual(oldManifest);
    expect(await readFile(join(r.backup!, 'certs', 'secondary1.example.com.pem'), 'utf8')).toBe(oldCert);
    const cert = inspectCert(await readFile(join(ssldir, 'certs', 'secondary1.example.com.pem'), 'utf8'));
    expect(cert.issuer).toBe('CN=Puppet CA: primary.example.com');
    expect(cert.altNames.sort()).toEqual([
      'DNS:master.example.com',
      'DNS:puppet.example.com',
      'DNS:secondary1',
      'DNS:secondary1.example.com',
    ]);
    expect(await readFile(join(ssldir, 'certs', 'ca.pem'), 'utf8')).toBe(await primary.caCertificate());
    expect(lines.join('\n')).toMatch(/backed up to .*manifests equal/);
  });

  it('is idempotent: a second run changes nothing and makes no backup', async () => {
    const before = (await readdir(t.dir)).filter((n) => n.includes('pe-backup')).length;
    const r = await regenerateNodeCert(opts());
    expect(r).toMatchObject({ changed: false, reason: 'already valid' });
    expect((await readdir(t.dir)).filter((n) => n.includes('pe-backup')).length).toBe(before);
  });

  it('regenerates when a required name is missing, cleaning the old entry on the CA', async () => {
    const oldSerial = (await primary.inspect('secondary1.example.com')).serial;
    const r = await regenerateNodeCert({ ...opts(), generalCname: 'puppet2.example.com' });
    expect(r.changed).toBe(true);
    expect(r.reason).toMatch(/alt-names: missing alt names: DNS:puppet2\.example\.com/);
    expect((await primary.inspect('secondary1.example.com')).serial).not.toBe(oldSerial);
    expect([...(await primary.list())].find((e) => e.name === 'secondary1.example.com')?.state).toBe('signed');
  });

  it('listOnlyWithFiles: the whole CA is listed for an old entry only when the CA holds files for the name', async () => {
    let lists = 0;
    const counted = (has: (n: string) => boolean) =>
      new Proxy(primary, {
        get(target, prop, recv) {
          if (prop === 'list') return async () => (lists++, target.list());
          if (prop === 'hasFiles') return async (n: string) => has(n);
          const v = Reflect.get(target, prop, recv) as unknown;
          return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
        },
      });
    // a name the CA has never seen: no listing
    const fresh = await regenerateNodeCert({
      ...opts(),
      certname: 'secondary2.example.com',
      ca: counted(() => false),
      listOnlyWithFiles: true,
    });
    expect(fresh.changed).toBe(true);
    expect(fresh.report.ok).toBe(true);
    expect(lists).toBe(0);
    // a name it holds files for: listed, and the old entry cleaned
    const oldSerial = (await primary.inspect('secondary1.example.com')).serial;
    const again = await regenerateNodeCert({
      ...opts(),
      generalCname: 'puppet3.example.com',
      ca: counted(() => true),
      listOnlyWithFiles: true,
    });
    expect(again.changed).toBe(true);
    expect(lists).toBe(1);
    expect((await primary.inspect('secondary1.example.com')).serial).not.toBe(oldSerial);
  });

  it('when the CA refuses the request, the error lists the names and the old ssldir is put back', async () => {
    class GreedyAgent extends OpensslAgent {
      override submit(n: LocalHost, c: string, names: readonly string[]) {
        return super.submit(n, c, [...names, 'www.evil.example']);
      }
    }
    const before = await treeManifest(node, ssldir);
    const err = await failure<CsrRefusedError>(
      regenerateNodeCert({
        ...opts(),
        agent: new GreedyAgent(primary, ssldir, { key: { type: 'ec' } }),
        primaryCname: 'master2.example.com',
      }),
    );
    expect(err).toBeInstanceOf(CsrRefusedError);
    expect(err.unexpected).toEqual(['DNS:www.evil.example']);
    expect(err.host).toBe('primary.example.com');
    expect(await treeManifest(node, ssldir)).toEqual(before);
  });
});
