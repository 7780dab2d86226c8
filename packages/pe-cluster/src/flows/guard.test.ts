import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseHocon } from '@pe-stack/pe-config-files';
import type { Host } from '@pe-stack/pe-host';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { jailedHost, testInventory } from '@pe-stack/testkit/jail';
import { runFlow, type Inventory } from '../index.js';
import {
  allowCaStart,
  caProbePaths,
  guardClearStep,
  guardConfig,
  guardDropIns,
  guardInstallGroup,
  guardScript,
  guardUnits,
  readGuardFence,
} from './guard.js';

let root: string;
beforeEach(async () => {
  root = await fs.mkdtemp(join(tmpdir(), 'pe-guard-'));
});
afterEach(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

function inventory(layout: 'pe3' | 'debian'): Inventory {
  return testInventory(root, layout, [
    '{name: primary.test, role: primary, address: 10.9.0.1}',
    '{name: s1.test, role: secondary, address: 10.9.0.2}',
    '{name: s2.test, role: secondary}',
  ]);
}

const jailed = (name: string, calls: string[][]): Host => jailedHost(root, name, { calls });

const WEBSERVER = `webserver: {
    access-log-config: /etc/puppet/puppetserver/request-logging.xml
    client-auth: want
    ssl-host: 0.0.0.0
    ssl-port: 8140
}
`;

describe('guard config and drop-ins', () => {
  it('debian: this host, the other masters (with their inventory address), the CA switch in services.d, the agent CA copy, the data directory; postgresql@.service.d for every cluster instance', () => {
    const inv = inventory('debian');
    const conf = guardConfig(inv, inv.masters[1]!);
    expect(conf.split('\n').filter((l) => !l.startsWith('#'))).toEqual([
      'CERTNAME=s1.test',
      'PEER=primary.test 10.9.0.1',
      'PEER=s2.test',
      'PORT=8140',
      'CA_PATH=/puppet-ca/v1/certificate/ca',
      'CSR_PATH=/puppet-ca/v1/certificate_request/pe-cluster-guard-probe',
      'VERIFY_CA=/var/lib/puppet/ssl/certs/ca.pem',
      'CA_SWITCH_KIND=services',
      'CA_SWITCH_FILE=/etc/puppet/puppetserver/services.d/ca.cfg',
      'PG_DATA=/var/lib/postgresql/15/main',
      'PG_USER=postgres',
      'STATE_DIR=/var/local/pe-cluster',
      'CONNECT_TIMEOUT=1',
      'MAX_TIME=2',
      '',
    ]);
    expect(guardConfig(inv, inv.masters[0]!, { gate: 'pe-cluster standby gate' })).toContain(
      'AUTH_CONF=/etc/puppet/puppetserver/conf.d/auth.conf\nGATE=pe-cluster standby gate\n',
    );
    expect(() => guardConfig(inv, inv.masters[0]!, { gate: 'x\nCERTNAME=evil' })).toThrow(
      /cannot go into the guard's config/,
    );
    expect(guardUnits(inv.layout)).toEqual({ puppetserver: 'puppetserver.service', postgresql: 'postgresql@.service' });
    const d = guardDropIns(inv.layout);
    expect(d.map((x) => x.path)).toEqual([
      '/etc/systemd/system/puppetserver.service.d/pe-cluster-guard.conf',
      '/etc/systemd/system/postgresql@.service.d/pe-cluster-guard.conf',
    ]);
    expect(d[0]!.content).toContain(
      '[Service]\nExecStartPre=+/usr/local/sbin/pe-cluster-guard --config /etc/puppet/pe-cluster-guard.conf puppetserver\n',
    );
    expect(d[1]!.content).toContain(
      'ExecStartPre=+/usr/local/sbin/pe-cluster-guard --config /etc/puppet/pe-cluster-guard.conf postgresql\n',
    );
  });

  it('pe3: Puppet 3 paths under /production, `[master] ca` in puppet.conf, pe-httpd and pe-postgresql', () => {
    const inv = inventory('pe3');
    expect(caProbePaths(inv.layout)).toEqual({
      ca: '/production/certificate/ca',
      csr: '/production/certificate_request/pe-cluster-guard-probe',
    });
    const conf = guardConfig(inv, inv.masters[0]!);
    expect(conf).toContain(
      'CA_SWITCH_KIND=ini\nCA_SWITCH_FILE=/etc/puppetlabs/puppet/puppet.conf\nCA_SWITCH_SECTION=master\nCA_SWITCH_KEY=ca\n',
    );
    expect(conf).toContain('VERIFY_CA=/etc/puppetlabs/puppet/ssl/certs/ca.pem\n');
    expect(conf).toContain('PG_DATA=/opt/puppet/var/lib/pgsql/9.2/data\nPG_USER=pe-postgres\n');
    expect(conf).toContain('PEER=s1.test 10.9.0.2\nPEER=s2.test\n');
    expect(guardDropIns(inv.layout).map((x) => x.path)).toEqual([
      '/etc/systemd/system/pe-httpd.service.d/pe-cluster-guard.conf',
      '/etc/systemd/system/pe-postgresql.service.d/pe-cluster-guard.conf',
    ]);
  });

  it('the script is the package asset (found from src and dist alike)', () => {
    expect(guardScript()).toMatch(/^#!\/bin\/bash\n# pe-cluster-guard: the boot-time fence/);
  });
});

describe('guard install, clear and allow steps', () => {
  async function seed(inv: Inventory): Promise<void> {
    for (const m of inv.masters) {
      await fs.mkdir(join(root, m.name, '/etc/puppet/puppetserver/conf.d'), { recursive: true });
      await fs.mkdir(join(root, m.name, '/usr/local/sbin'), { recursive: true });
      await fs.writeFile(join(root, m.name, '/etc/puppet/puppetserver/conf.d/webserver.conf'), WEBSERVER);
    }
  }

  it('installs the script (0755), config, web TLS settings and drop-ins on every master, reloads systemd; a rerun changes nothing; a plan changes nothing', async () => {
    const inv = inventory('debian');
    await seed(inv);
    const calls: string[][] = [];
    const hosts = new Map(inv.masters.map((m) => [m.name, jailed(m.name, calls)]));
    const flow = { name: 'guard', items: [guardInstallGroup(inv)] };

    const plan = await runFlow(flow, { host: (n) => hosts.get(n)!, dryRun: true });
    expect(plan.status).toBe('ok');
    expect(plan.steps.filter((s) => s.status === 'planned').length).toBeGreaterThanOrEqual(12);
    await expect(fs.stat(join(root, 's1.test/usr/local/sbin/pe-cluster-guard'))).rejects.toThrow(/ENOENT/);
    expect(calls).toEqual([]);

    const r = await runFlow(flow, { host: (n) => hosts.get(n)! });
    expect(r.status).toBe('ok');
    expect(
      r.steps
        .map((s) => `${s.id}@${s.host}:${s.status}`)
        .filter((s) => s.startsWith('guard.') && s.includes('@s1.test')),
    ).toEqual([
      'guard.script@s1.test:done',
      'guard.config@s1.test:done',
      'guard.web-tls@s1.test:done',
      'guard.drop-ins@s1.test:done',
      'guard.daemon-reload@s1.test:done',
    ]);
    const st = await fs.stat(join(root, 's1.test/usr/local/sbin/pe-cluster-guard'));
    expect(st.mode & 0o7777).toBe(0o755);
    expect(await fs.readFile(join(root, 's1.test/usr/local/sbin/pe-cluster-guard'), 'utf8')).toBe(guardScript());
    expect(await fs.readFile(join(root, 's1.test/etc/puppet/pe-cluster-guard.conf'), 'utf8')).toBe(
      guardConfig(inv, inv.masters[1]!),
    );
    expect(await fs.readFile(join(root, 'primary.test/etc/puppet/pe-cluster-guard.conf'), 'utf8')).toContain(
      'CERTNAME=primary.test\nPEER=s1.test 10.9.0.2\nPEER=s2.test\n',
    );
    for (const d of guardDropIns(inv.layout))
      expect(await fs.readFile(join(root, 's2.test', d.path), 'utf8')).toBe(d.content);
    const web = parseHocon(
      await fs.readFile(join(root, 's1.test/etc/puppet/puppetserver/conf.d/webserver.conf'), 'utf8'),
      'webserver.conf',
    );
    expect(web.get(['webserver', 'ssl-cert'])).toBe('/var/lib/puppet/ssl/certs/s1.test.pem');
    expect(web.get(['webserver', 'ssl-key'])).toBe('/var/lib/puppet/ssl/private_keys/s1.test.pem');
    expect(web.get(['webserver', 'ssl-ca-cert'])).toBe('/var/lib/puppet/ssl/certs/ca.pem');
    expect(calls.sort()).toEqual(inv.masters.map((m) => [m.name, 'systemctl', 'daemon-reload']).sort());

    calls.length = 0;
    const again = await runFlow(flow, { host: (n) => hosts.get(n)! });
    expect(again.steps.every((s) => s.status === 'skipped')).toBe(true);
    expect(calls).toEqual([]);
  });

  it("clear lifts the guard's own marker and allow token; readGuardFence finds pe-db's marker first, then the guard's own", async () => {
    const inv = inventory('debian');
    const calls: string[][] = [];
    const h = jailed('s1.test', calls);
    const node = inv.masters[1]!;
    expect(await readGuardFence({ host: h, sudo: false }, inv)).toBeUndefined();
    await fs.mkdir(join(root, 's1.test/var/local/pe-cluster'), { recursive: true });
    await fs.writeFile(
      join(root, 's1.test/var/local/pe-cluster/fenced'),
      JSON.stringify({
        host: 's1.test',
        dataDir: '',
        at: 'T',
        newPrimary: 'primary.test',
        how: 'stopped',
        reason: 'pe-cluster-guard: fenced at boot',
      }),
    );
    await fs.writeFile(join(root, 's1.test/var/local/pe-cluster/allow-start'), '1\n');
    expect(await readGuardFence({ host: h, sudo: false }, inv)).toMatchObject({
      newPrimary: 'primary.test',
      path: '/var/local/pe-cluster/fenced',
    });
    await fs.mkdir(join(root, 's1.test/var/lib/postgresql/15/main'), { recursive: true });
    await fs.writeFile(join(root, 's1.test/var/lib/postgresql/15/main/pe-db.fenced'), 'not json');
    expect(await readGuardFence({ host: h, sudo: false }, inv)).toMatchObject({
      reason: 'not json',
      path: '/var/lib/postgresql/15/main/pe-db.fenced',
    });

    const flow = { name: 'rejoin-part', items: [guardClearStep(inv, node)] };
    const r = await runFlow(flow, { host: () => h });
    expect(r.steps[0]!.status).toBe('done');
    await expect(fs.stat(join(root, 's1.test/var/local/pe-cluster/fenced'))).rejects.toThrow(/ENOENT/);
    await expect(fs.stat(join(root, 's1.test/var/local/pe-cluster/allow-start'))).rejects.toThrow(/ENOENT/);
    // pe-db's marker is pe-db's (its rejoin removes it with the rebuild)
    expect(await fs.readFile(join(root, 's1.test/var/lib/postgresql/15/main/pe-db.fenced'), 'utf8')).toBe('not json');
    expect((await runFlow(flow, { host: () => h })).steps[0]!.status).toBe('skipped');
  });

  it('allowCaStart runs the installed guard with its config; without the guard it does nothing', async () => {
    const inv = inventory('pe3');
    const calls: string[][] = [];
    const h = jailed('s1.test', calls);
    expect(await allowCaStart({ host: h, sudo: false }, inv, { seconds: 600 })).toBe(false);
    await fs.mkdir(join(root, 's1.test/usr/local/sbin'), { recursive: true });
    await fs.writeFile(join(root, 's1.test/usr/local/sbin/pe-cluster-guard'), guardScript());
    expect(await allowCaStart({ host: h, sudo: false }, inv, { seconds: 600 })).toBe(true);
    expect(calls).toEqual([
      [
        's1.test',
        '/usr/local/sbin/pe-cluster-guard',
        '--config',
        '/etc/puppetlabs/puppet/pe-cluster-guard.conf',
        'allow',
        '600',
      ],
    ]);
    await expect(allowCaStart({ host: h, sudo: false }, inv, { seconds: 0 })).rejects.toThrow(/not a positive number/);
  });
});
