import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FRESH_STAGE, LAB_SHAPES, leaveLab, useLab } from './fixture.js';
import type { Lab } from './lab.js';

describe('debian profile (real puppetserver, puppetdb, PostgreSQL)', () => {
  let lab: Lab;
  beforeAll(async () => {
    ({ lab } = await useLab(LAB_SHAPES.debianTrio));
  });
  // an agent run and a reload change nothing a fresh lab's next user relies on
  afterAll(({}, suite) => leaveLab(lab, FRESH_STAGE, suite));

  const caOf = (host: string) =>
    new X509Certificate(readFileSync(`${lab.hostDir(host)}/fs/etc/puppet/puppetserver/ca/ca_crt.pem`));

  it('installs every master as a standalone master with its own CA and PostgreSQL', async () => {
    expect(caOf('primary').fingerprint256).not.toBe(caOf('secondary1').fingerprint256);
    for (const h of LAB_SHAPES.debianTrio.hosts) {
      const units = (await lab.ssh(h, ['systemctl', 'list-units'])).stdout;
      for (const u of ['postgresql', 'puppetdb', 'puppetserver', 'ssh'])
        expect(units).toContain(`${u}.service active enabled`);
      const db = await lab.ssh(h, [
        'runuser',
        '-u',
        'postgres',
        '--',
        'psql',
        '-tAc',
        "'select extname from pg_extension'",
        'puppetdb',
      ]);
      expect(db.stdout).toContain('pg_trgm');
      const status = await lab.ssh(h, ['curl', '-sf', 'http://127.0.0.1:8080/status/v1/services/puppetdb-status']);
      expect(JSON.parse(status.stdout).state).toBe('running');
    }
    // the secondary's own master certificate carries the cluster names, signed by its own CA
    const cert = new X509Certificate(
      readFileSync(`${lab.hostDir('secondary1')}/fs/var/lib/puppet/ssl/certs/secondary1.lab.test.pem`),
    );
    expect(cert.subjectAltName).toContain('DNS:puppet.lab.test');
    expect(cert.subjectAltName).toContain('DNS:master.lab.test');
    expect(cert.verify(caOf('secondary1').publicKey)).toBe(true);
  });

  it('puts only masters that serve the primary CA behind puppet.lab.test', async () => {
    const backends = await lab.loadBalancerBackends();
    expect(backends).toEqual([
      { name: 'primary', status: 'UP' },
      { name: 'secondary1', status: 'DOWN' },
      { name: 'secondary2', status: 'DOWN' },
    ]);
  });

  it("gives the agent a catalog through puppet.lab.test and stores it in the primary's puppetdb", async () => {
    const run = await lab.ssh('agent1', ['puppet', 'agent', '-t', '--detailed-exitcodes', '--color=false'], {
      allowFailure: true,
      timeoutMs: 300_000,
    });
    expect([0, 2]).toContain(run.code);
    expect((await lab.ssh('agent1', ['puppet', 'config', 'print', 'server'])).stdout.trim()).toBe('puppet.lab.test');
    expect((await lab.ssh('agent1', ['cat', '/tmp/lab-catalog'])).stdout).toBe(
      'catalog compiled by primary.lab.test for agent1.lab.test\n',
    );
    const nodes = await lab.ssh('primary', ['curl', '-sf', 'http://127.0.0.1:8080/pdb/query/v4/nodes']);
    expect(JSON.parse(nodes.stdout).map((n: { certname: string }) => n.certname)).toContain('agent1.lab.test');
  });

  it('reloads puppetserver through the systemctl stand-in (HUP, ready again)', async () => {
    const before = (await lab.exec('primary', ['cat', '/run/puppetserver/lab.pid'])).stdout;
    const r = await lab.ssh('primary', ['systemctl', 'reload', 'puppetserver']);
    expect(r.code).toBe(0);
    expect((await lab.exec('primary', ['cat', '/run/puppetserver/restart'])).stdout).toMatch(/^1/);
    expect((await lab.exec('primary', ['cat', '/run/puppetserver/lab.pid'])).stdout).toBe(before);
    expect((await lab.exec('primary', ['systemctl', 'is-active', 'puppetserver'])).stdout).toBe('active\n');
  });
});
