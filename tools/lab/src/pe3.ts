import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { generalCname, primaryCname } from './config.js';
import { LabError } from './errors.js';
import type { LabHandle, LabState } from './types.js';

const install = (lab: LabHandle) => `${lab.assetsDir}/pe3/install.sh`;

/**
 * The pe3 profile: a Puppet Enterprise 3.x SIMULATOR. Every master gets PE 3's
 * file tree (/etc/puppetlabs, /opt/puppet) with its own names and secrets, a
 * real OpenSSL CA, a real PostgreSQL in PE 3's data directory, and stand-ins
 * for `puppet`, `rake`, `puppetdb-ssl-setup` and the pe-* services that record
 * their calls (/var/log/pe3-sim/calls.log). Agents get certificates signed by
 * the primary's CA.
 */
export async function setupPe3(lab: LabHandle, state: LabState, log: (line: string) => void): Promise<void> {
  const c = lab.config;
  const masters = state.hosts.filter((h) => h.role !== 'agent');
  const agents = state.hosts.filter((h) => h.role === 'agent');
  const primary = masters[0];
  await Promise.all(
    masters.map(async (h) => {
      const alt = [h.fqdn, h.name, primaryCname(c), generalCname(c), 'puppet'].join(',');
      await lab.exec(h.name, [install(lab), 'master', h.fqdn, alt], { timeoutMs: 300_000 });
      log(`${h.name}: PE 3.x simulator master ready`);
    }),
  );
  if (!primary) return;
  mkdirSync(dirname(lab.lbCaFile), { recursive: true });
  copyFileSync(`${lab.hostDir(primary.name)}/fs/etc/puppetlabs/puppet/ssl/ca/ca_crt.pem`, lab.lbCaFile);
  if (agents.length === 0) return;
  // agents' first run goes through puppet.lab.test: the load balancer must be up
  await lab.restartLoadBalancer();
  await lab.waitForBackend(primary.name, 'UP', 20_000);
  await Promise.all(
    agents.map((h) =>
      lab.exec(h.name, [install(lab), 'agent-request', h.fqdn, generalCname(c), primaryCname(c)], {
        timeoutMs: 120_000,
      }),
    ),
  );
  await lab.exec(primary.name, ['/opt/puppet/bin/puppet', 'cert', 'sign', ...agents.map((h) => h.fqdn)]);
  for (const h of agents) {
    const r = await lab.exec(h.name, [install(lab), 'agent-fetch', h.fqdn], { timeoutMs: 120_000, allowFailure: true });
    if (r.code !== 0)
      throw new LabError('E_LAB_BOOT', `the agent's first run failed: ${r.stderr.trim() || r.stdout.trim()}`, {
        host: h.name,
      });
  }
  // what the lab itself ran is not what the product under test ran: start the records afresh
  for (const h of [...masters, ...agents])
    await lab.exec(h.name, ['sh', '-c', ': > /var/log/pe3-sim/calls.log; : > /var/log/lab-systemctl.log']);
  log(`agents have certificates signed by ${primary.name}`);
}
