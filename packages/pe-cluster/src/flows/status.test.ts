import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { OpensslAgent, OpensslCa } from '@pe-stack/pe-certs';
import { LocalHost, type Host } from '@pe-stack/pe-host';
import { jailedHost } from '@pe-stack/testkit/jail';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, formatStatus, main, parseInventory, type Inventory } from '../index.js';

// Status against three "hosts" whose files live in temp dirs (a jail per host), with real
// certificates and CRLs from an openssl CA. Services report running (serviceStatus overridden to `true`).

let root: string;
const HOSTS = ['primary.test', 's1.test', 's2.test'];
const CA_ON =
  'puppetlabs.services.ca.certificate-authority-service/certificate-authority-service\n#puppetlabs.services.ca.certificate-authority-disabled-service/certificate-authority-disabled-service\n';
const CA_OFF =
  '#puppetlabs.services.ca.certificate-authority-service/certificate-authority-service\npuppetlabs.services.ca.certificate-authority-disabled-service/certificate-authority-disabled-service\n';
const INVENTORY = `cluster: st
layout: debian
layout_overrides:
  commands:
    serviceStatus: ['true']
primary_cname: ca.test
general_cname: puppet.test
masters:
  - {name: primary.test, role: primary, address: 10.9.0.1}
  - {name: s1.test, role: secondary, address: 10.9.0.2}
  - {name: s2.test, role: secondary, address: 10.9.0.3}
`;

const jailed = (name: string): Host => jailedHost(join(root, 'jail'), name);

async function put(host: string, path: string, content: string): Promise<void> {
  const full = join(root, 'jail', host, path);
  await fs.mkdir(dirname(full), { recursive: true });
  await fs.writeFile(full, content);
}

let inv: Inventory;
beforeAll(async () => {
  root = await fs.mkdtemp(join(tmpdir(), 'pe-status-'));
  inv = parseInventory(INVENTORY, join(root, 'inventory.yaml'), { env: {}, home: root });
  const local = new LocalHost();
  const ca = await OpensslCa.init(local, join(root, 'ca'), { key: { type: 'ec' } });
  for (const h of HOSTS) {
    const ssl = join(root, `ssl-${h}`);
    const agent = new OpensslAgent(ca, ssl, { key: { type: 'ec' } });
    // s2's certificate lacks general_cname
    const names = h === 's2.test' ? [h, 'ca.test'] : [h, 'puppet.test', 'ca.test'];
    await agent.submit(local, h, names);
    await ca.sign(h, { allowed: names });
    await agent.fetch(local, h);
    await put(h, `${inv.layout.dirs.certsDir}/${h}.pem`, await fs.readFile(join(ssl, 'certs', `${h}.pem`), 'utf8'));
    await put(h, inv.layout.files.hostCrl!.path, await fs.readFile(join(ssl, 'crl.pem'), 'utf8'));
    await put(h, inv.layout.files.caCfg!.path, h === 'primary.test' ? CA_ON : CA_OFF);
    const server = h === 's2.test' ? 's2.test' : h === 'primary.test' ? 'localhost' : 'ca.test';
    await put(
      h,
      inv.layout.files.puppetdbDatabaseIni!.path,
      `[database]\nsubname = //${server}:5432/puppetdb\nusername = puppetdb\npassword = Db-Secret-Status-1\n`,
    );
  }
}, 60_000);
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

const cluster = () => new Cluster(inv, { hostFactory: (n) => jailed(n.name) });

describe('status', () => {
  it('names the CA holder, reads certificates, CRLs and database targets, and lists what is wrong', async () => {
    const c = cluster();
    const r = await c.status();
    await c.close();
    expect(r.caHolders).toEqual(['primary.test']);
    expect(r.masters.map((m) => [m.name, m.reachable, m.caEnabled])).toEqual([
      ['primary.test', true, true],
      ['s1.test', true, false],
      ['s2.test', true, false],
    ]);
    const s1 = r.masters[1]!;
    expect(s1.cert).toMatchObject({
      missingAltNames: [],
      altNames: expect.arrayContaining(['puppet.test', 'ca.test']),
    });
    expect((s1.cert as { daysLeft: number }).daysLeft).toBeGreaterThan(1000);
    expect(s1.crl).toMatchObject({ ageHours: 0, expired: false });
    expect(s1.database).toMatchObject({ server: 'ca.test', pointsAtPrimary: true });
    expect(r.masters[0]!.database).toMatchObject({ server: 'localhost', pointsAtPrimary: true });
    expect(r.masters[2]!.cert).toMatchObject({ missingAltNames: ['puppet.test'] });
    const msgs = r.problems.map((p) => `${p.host}: ${p.message}`);
    expect(msgs).toContain('s2.test: its certificate lacks the alt names puppet.test');
    expect(msgs).toContain("s2.test: PuppetDB writes to s2.test, not to the primary's database");
    expect(r.health).not.toBe('healthy');
    expect(JSON.stringify(r)).not.toContain('Db-Secret-Status-1');
    const table = formatStatus(r);
    expect(table).toMatch(/^HOST +ROLE +SSH +CA +SERVICES +CERT +CRL +DATABASE/);
    expect(table).toMatch(/s1\.test +secondary +ok +off /);
    expect(table).toContain('CA: primary.test');
  });

  it('two masters with the CA enabled is a loud error: broken', async () => {
    await put('s1.test', inv.layout.files.caCfg!.path, CA_ON);
    try {
      const c = cluster();
      const r = await c.status();
      await c.close();
      expect(r.health).toBe('broken');
      expect(r.caHolders).toEqual(['primary.test', 's1.test']);
      expect(r.problems).toContainEqual({
        level: 'broken',
        message: 'more than one master has its CA enabled (primary.test, s1.test): exactly one (the primary) must',
      });
      expect(formatStatus(r)).toContain('CA: MORE THAN ONE: primary.test, s1.test');
      // and the CLI says so with exit 4
      const invFile = join(root, 'inventory.yaml');
      await fs.writeFile(invFile, INVENTORY);
      let out = '';
      const code = await main(['-i', invFile, '--json', 'status'], {
        stdout: { write: (s: string) => (out += s) },
        stderr: { write: () => true },
        env: {},
        cluster: { hostFactory: (n) => jailed(n.name) },
      });
      expect(code).toBe(4);
      expect(JSON.parse(out)).toMatchObject({ type: 'status', health: 'broken', exitCode: 4 });
    } finally {
      await put('s1.test', inv.layout.files.caCfg!.path, CA_OFF);
    }
  });

  it('no CA anywhere is broken too', async () => {
    await put('primary.test', inv.layout.files.caCfg!.path, CA_OFF);
    try {
      const c = cluster();
      const r = await c.status();
      await c.close();
      expect(r.caHolders).toEqual([]);
      expect(r.problems).toContainEqual({
        level: 'broken',
        message: 'no master has its CA enabled: certificates cannot be signed',
      });
    } finally {
      await put('primary.test', inv.layout.files.caCfg!.path, CA_ON);
    }
  });
});
