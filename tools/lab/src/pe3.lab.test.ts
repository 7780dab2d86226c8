import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { useLab } from './fixture.js';
import type { Lab } from './lab.js';

const P = '/opt/puppet/bin/puppet';
const RAKE = ['/opt/puppet/bin/rake', '-f', '/opt/puppet/share/puppet-dashboard/Rakefile', 'RAILS_ENV=production'];

/** Calls the simulator recorded on a host (JSON lines). */
async function calls(lab: Lab, host: string): Promise<{ tool: string; argv: string[]; client?: string | null }[]> {
  const r = await lab.exec(host, ['cat', '/var/log/pe3-sim/calls.log']);
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

describe('pe3 profile (PE 3.x simulator)', () => {
  let lab: Lab;
  beforeAll(async () => {
    ({ lab } = await useLab({ profile: 'pe3', hosts: ['primary', 'secondary1'], agents: 1 }));
  });

  it("lays out PE 3.x's files on every master, with that master's names and secrets", async () => {
    const paths = [
      '/etc/puppetlabs/puppet/puppet.conf',
      '/etc/puppetlabs/puppet/autosign.conf',
      '/etc/puppetlabs/puppet/manifests/site.pp',
      '/etc/puppetlabs/puppet/puppetdb.conf',
      '/etc/puppetlabs/puppet/ssl/ca/ca_crt.pem',
      '/etc/puppetlabs/puppet/ssl/ca/ca_key.pem',
      '/etc/puppetlabs/puppet/ssl/ca/ca_crl.pem',
      '/etc/puppetlabs/httpd/conf.d/puppetmaster.conf',
      '/etc/puppetlabs/httpd/conf.d/puppetdashboard.conf',
      '/etc/puppetlabs/puppet-dashboard/settings.yml',
      '/etc/puppetlabs/puppet-dashboard/database.yml',
      '/etc/puppetlabs/console-auth/database.yml',
      '/etc/puppetlabs/puppetdb/conf.d/database.ini',
      '/etc/puppetlabs/puppetdb/conf.d/jetty.ini',
      '/etc/puppetlabs/puppetdb/certificate-whitelist',
      '/etc/puppetlabs/mcollective/credentials',
      '/etc/puppetlabs/mcollective/server.cfg',
      '/etc/puppetlabs/activemq/activemq.xml',
      '/etc/puppetlabs/puppet/ssl/private_keys/pe-internal-broker.pem',
      '/etc/puppetlabs/puppet/ssl/public_keys/pe-internal-peadmin-mcollective-client.pem',
      '/etc/puppetlabs/puppet/ssl/certs/pe-internal-puppet-console-mcollective-client.pem',
      '/opt/puppet/share/puppet-dashboard/certs/pe-internal-dashboard.cert.pem',
      '/opt/puppet/share/event-inspector/config/config.yml',
      '/opt/puppet/var/lib/pgsql/9.2/data/postgresql.conf',
      '/opt/puppet/var/lib/pgsql/9.2/data/pg_hba.conf',
    ];
    for (const h of ['primary', 'secondary1']) {
      const r = await lab.exec(h, ['ls', ...paths], { allowFailure: true });
      expect(r.stderr).toBe('');
      const conf = (await lab.exec(h, ['cat', '/etc/puppetlabs/puppet/puppet.conf'])).stdout;
      expect(conf).toMatch(new RegExp(`^\\s+certname = ${h}\\.lab\\.test$`, 'm'));
      expect(conf).toMatch(/^\s+ca = true$/m);
    }
    const pw = async (h: string) =>
      (await lab.exec(h, ['grep', 'password', '/etc/puppetlabs/puppet-dashboard/database.yml'])).stdout;
    expect(await pw('primary')).not.toBe(await pw('secondary1'));
    // each master is a CA of its own (step 1 of the runbook: two full PE installs)
    const ca = (h: string) =>
      new X509Certificate(readFileSync(`${lab.hostDir(h)}/fs/etc/puppetlabs/puppet/ssl/ca/ca_crt.pem`)).fingerprint256;
    expect(ca('primary')).not.toBe(ca('secondary1'));
    // the PE 3 console database is a real PostgreSQL reached with database.yml's credentials
    const groups = await lab.exec('primary', [...RAKE, 'nodegroup:list']);
    expect(groups.stdout.split('\n')).toEqual(
      expect.arrayContaining(['default', 'puppet_master', 'puppet_console', 'mcollective']),
    );
  });

  it('gives agents a catalog through puppet.lab.test from the primary, stored through its PuppetDB', async () => {
    const r = await lab.ssh('agent1', [P, 'agent', '-t']);
    expect(r.stdout).toContain('Finished catalog run');
    expect((await lab.ssh('agent1', ['cat', '/tmp/lab-catalog'])).stdout).toBe(
      'catalog compiled by primary.lab.test for agent1.lab.test\n',
    );
    const log = await calls(lab, 'primary');
    expect(log).toContainEqual(
      expect.objectContaining({
        tool: 'pe-httpd',
        argv: ['GET', '/production/catalog/agent1.lab.test'],
        client: 'agent1.lab.test',
      }),
    );
    expect(log).toContainEqual(
      expect.objectContaining({
        tool: 'pe-puppetdb',
        argv: ['POST', '/v3/commands?certname=agent1.lab.test'],
        client: 'primary.lab.test',
      }),
    );
    expect(await lab.loadBalancerBackends()).toEqual([
      { name: 'primary', status: 'UP' },
      { name: 'secondary1', status: 'DOWN' },
    ]);
  });

  it("follows the runbook's join of a secondary: certificates from the primary's CA, CA off, CRL path, then behind the load balancer", async () => {
    await lab.ssh('secondary1', ['service', 'pe-puppet', 'stop']);
    await lab.ssh('secondary1', ['rm', '-rf', '/etc/puppetlabs/puppet/ssl']);
    const first = await lab.ssh('secondary1', [P, 'agent', '-t', '--server', 'master.lab.test'], {
      allowFailure: true,
    });
    expect(first.code).toBe(1);
    expect(first.stdout).toContain('no certificate found');
    const refused = await lab.ssh('primary', [P, 'cert', 'sign', 'secondary1.lab.test'], { allowFailure: true });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('--allow-dns-alt-names');
    await lab.ssh('primary', [P, 'cert', 'sign', '--allow-dns-alt-names', 'secondary1.lab.test']);
    const second = await lab.ssh('secondary1', [P, 'agent', '-t', '--server', 'master.lab.test']);
    expect(second.stdout).toContain('Finished catalog run');
    // the new certificate is the primary CA's and carries the cluster names
    const cert = new X509Certificate(
      readFileSync(`${lab.hostDir('secondary1')}/fs/etc/puppetlabs/puppet/ssl/certs/secondary1.lab.test.pem`),
    );
    const primaryCa = new X509Certificate(
      readFileSync(`${lab.hostDir('primary')}/fs/etc/puppetlabs/puppet/ssl/ca/ca_crt.pem`),
    );
    expect(cert.verify(primaryCa.publicKey)).toBe(true);
    expect(cert.subjectAltName).toContain('DNS:master.lab.test');

    // pe-httpd, like Apache, will not start while its SSLCARevocationFile is gone (the CA dir was removed)
    const broken = await lab.ssh('secondary1', ['service', 'pe-httpd', 'restart'], { allowFailure: true });
    expect(broken.code).not.toBe(0);
    await lab.ssh('secondary1', [
      'sed',
      '-i',
      "'s/^    ca = true$/    ca = false/'",
      '/etc/puppetlabs/puppet/puppet.conf',
    ]);
    await lab.ssh('secondary1', [
      'sed',
      '-i',
      "'s|SSLCARevocationFile .*|SSLCARevocationFile     /etc/puppetlabs/puppet/ssl/crl.pem|'",
      '/etc/puppetlabs/httpd/conf.d/puppetmaster.conf',
    ]);
    await lab.ssh('secondary1', ['service', 'pe-httpd', 'restart']);
    await lab.waitForBackend('secondary1', 'UP', 20_000);
    // with `ca = false` the secondary no longer serves the CA
    const own = await lab.ssh('agent1', [
      'curl',
      '-sk',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      'https://secondary1.lab.test:8140/production/certificate/ca',
    ]);
    expect(own.stdout).toBe('404');
    expect((await lab.exec('secondary1', ['cat', '/var/log/lab-systemctl.log'])).stdout).toContain(
      'systemctl restart pe-httpd',
    );
  });

  it('refuses a catalog whose PuppetDB certificates are stale until puppetdb-ssl-setup and a restart (runbook step 7)', async () => {
    const stale = await lab.ssh('agent1', [P, 'agent', '-t', '--server', 'secondary1.lab.test'], {
      allowFailure: true,
    });
    expect(stale.code).toBe(1);
    expect(stale.stderr).toContain('PuppetDB');
    await lab.ssh('secondary1', ['rm', '-rf', '/etc/puppetlabs/puppetdb/ssl']);
    await lab.ssh('secondary1', ['/opt/puppet/sbin/puppetdb-ssl-setup']);
    await lab.ssh('secondary1', ['service', 'pe-puppetdb', 'restart']);
    const ok = await lab.ssh('agent1', [P, 'agent', '-t', '--server', 'secondary1.lab.test']);
    expect(ok.stdout).toContain('Finished catalog run');
    expect((await lab.ssh('agent1', ['cat', '/tmp/lab-catalog'])).stdout).toBe(
      'catalog compiled by secondary1.lab.test for agent1.lab.test\n',
    );
    expect((await calls(lab, 'secondary1')).map((c) => c.tool)).toContain('puppetdb-ssl-setup');
  });

  it("issues the secondary's console certificate from the primary's CA with rake (autosign) and classifies it", async () => {
    await lab.ssh('primary', [
      'sh',
      '-c',
      "'echo pe-internal-dashboard-secondary1.lab.test >> /etc/puppetlabs/puppet/autosign.conf'",
    ]);
    const settings = '/etc/puppetlabs/puppet-dashboard/settings.yml';
    await lab.ssh('secondary1', [
      'sed',
      '-i',
      '-e "s/^ca_server: .*/ca_server: \'master.lab.test\'/"',
      '-e "s/pe-internal-dashboard\'/pe-internal-dashboard-secondary1.lab.test\'/"',
      "-e 's/pe-internal-dashboard\\./pe-internal-dashboard-secondary1.lab.test./'",
      settings,
    ]);
    for (const t of ['cert:create_key_pair', 'cert:request', 'cert:retrieve'])
      await lab.ssh('secondary1', [...RAKE, t]);
    const cert = new X509Certificate(
      readFileSync(
        `${lab.hostDir('secondary1')}/fs/opt/puppet/share/puppet-dashboard/certs/pe-internal-dashboard-secondary1.lab.test.cert.pem`,
      ),
    );
    expect(cert.subject).toBe('CN=pe-internal-dashboard-secondary1.lab.test');
    const primaryCa = new X509Certificate(
      readFileSync(`${lab.hostDir('primary')}/fs/etc/puppetlabs/puppet/ssl/ca/ca_crt.pem`),
    );
    expect(cert.verify(primaryCa.publicKey)).toBe(true);

    await lab.ssh('primary', [...RAKE, 'node:addgroup', 'name=secondary1.lab.test', 'group=puppet_master']);
    await lab.ssh('primary', [
      ...RAKE,
      'nodegroup:variables',
      'name=puppet_master',
      'variables=activemq_brokers=primary.lab.test,secondary1.lab.test',
    ]);
    expect((await lab.ssh('primary', [...RAKE, 'node:groups', 'name=secondary1.lab.test'])).stdout.trim()).toBe(
      'puppet_master',
    );
    const unknown = await lab.ssh('primary', [...RAKE, 'nosuch:task'], { allowFailure: true });
    expect(unknown.stderr).toContain("Don't know how to build task 'nosuch:task'");
    const log = await calls(lab, 'primary');
    expect(log).toContainEqual(
      expect.objectContaining({
        tool: 'rake',
        argv: [...RAKE.slice(1), 'node:addgroup', 'name=secondary1.lab.test', 'group=puppet_master'],
      }),
    );
  });
});
