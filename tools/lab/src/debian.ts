import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { generalCname, primaryCname } from './config.js';
import { LabError } from './errors.js';
import type { LabHandle, LabState } from './types.js';

/**
 * The debian profile's install: every master a standalone master of its own
 * (puppetserver with its own CA, puppetdb, PostgreSQL) as in step 1 of the
 * seed, so joining one is real work; agents run puppet-agent only and get a
 * certificate signed by the primary. The load balancer's health check then
 * trusts the primary's CA.
 */
export async function setupDebian(lab: LabHandle, state: LabState, log: (line: string) => void): Promise<void> {
  const c = lab.config;
  const masters = state.hosts.filter((h) => h.role !== 'agent');
  const agents = state.hosts.filter((h) => h.role === 'agent');
  const primary = masters[0];
  const t0 = Date.now();
  const secs = () => `${((Date.now() - t0) / 1000).toFixed(0)} s`;

  await Promise.all(
    masters.map(async (h) => {
      const alt = [h.fqdn, h.name, primaryCname(c), generalCname(c), 'puppet'].join(',');
      log(`${h.name}: installing a standalone master`);
      await lab.exec(h.name, [`${lab.assetsDir}/debian-master.sh`, h.fqdn, alt], { timeoutMs: 900_000 });
      log(`${h.name}: puppetserver and puppetdb ready (${secs()})`);
    }),
  );
  if (!primary) return;
  mkdirSync(dirname(lab.lbCaFile), { recursive: true });
  copyFileSync(`${lab.hostDir(primary.name)}/fs/etc/puppet/puppetserver/ca/ca_crt.pem`, lab.lbCaFile);

  if (state.withMcollective) await setupMcollective(lab, state, log);
  if (agents.length === 0) return;
  const server = generalCname(c);
  const caServer = primaryCname(c);
  await Promise.all(
    agents.map((h) =>
      lab.exec(h.name, [`${lab.assetsDir}/debian-agent.sh`, 'request', h.fqdn, server, caServer], {
        timeoutMs: 300_000,
      }),
    ),
  );
  await lab.exec(primary.name, ['puppetserver', 'ca', 'sign', '--certname', agents.map((h) => h.fqdn).join(',')], {
    timeoutMs: 300_000,
  });
  await Promise.all(
    agents.map((h) =>
      lab.exec(h.name, [`${lab.assetsDir}/debian-agent.sh`, 'fetch', h.fqdn, server, caServer], { timeoutMs: 300_000 }),
    ),
  );
  for (const h of agents) {
    const r = await lab.exec(h.name, ['test', '-s', `/var/lib/puppet/ssl/certs/${h.fqdn}.pem`], { allowFailure: true });
    if (r.code !== 0)
      throw new LabError('E_LAB_BOOT', 'the agent has no signed certificate after bootstrap.', { host: h.name });
  }
  log(`agents have certificates signed by ${primary.name} (${secs()})`);
}

/** --with-mcollective: activemq on the primary, mcollectived everywhere, one password and PSK (sent on stdin). */
async function setupMcollective(lab: LabHandle, state: LabState, log: (line: string) => void): Promise<void> {
  const primary = state.hosts.find((h) => h.role === 'primary');
  if (!primary) return;
  const secrets = `${randomBytes(18).toString('base64url')}\n${randomBytes(24).toString('hex')}\n`;
  const script = `${lab.assetsDir}/debian-mcollective.sh`;
  await lab.exec(primary.name, [script, 'broker', primary.fqdn, primary.fqdn], { input: secrets, timeoutMs: 300_000 });
  await Promise.all(
    state.hosts
      .filter((h) => h !== primary)
      .map((h) => lab.exec(h.name, [script, 'server', h.fqdn, primary.fqdn], { input: secrets, timeoutMs: 120_000 })),
  );
  log(`activemq on ${primary.name}, mcollectived on ${state.hosts.length} hosts`);
}
