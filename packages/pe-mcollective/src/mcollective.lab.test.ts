// pe-mcollective against the lab (tools/lab): real hosts reached over SSH.
//  - pe3 (PE 3.x simulator): the pe_secondary::mcollective files copied from
//    the primary to a secondary host to host, owners and modes kept.
//  - debian --with-mcollective: real activemq and mcollectived on two masters
//    (the lab gives only the primary a broker); after the sync steps `mco ping`
//    from each master is answered by every node (both masters and the agent),
//    and removing the secondary leaves the primary working.
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redactor, SshHost } from '@pe-stack/pe-host';
import { resolveLayout, type Layout } from '@pe-stack/pe-config-files';
import { Lab, type UpOptions } from '@pe-stack/lab';
import { debianRemoveSteps, debianSyncSteps, readSecrets, verifyDebian } from './debian.js';
import { compareSharedFiles, fileFacts, sharedFiles } from './pki.js';
import { plannedOn, runMcoFlow } from '@pe-stack/testkit/mcollective';
import type { Master, McoCluster } from './cluster.js';
import { pe3JoinSteps } from './pe3.js';

/** The lab's shared-fixture rule (tools/lab/src/fixture.ts, not exported): reuse a lab that is up with the same key. */
async function labFor(opts: Omit<UpOptions, 'log'>): Promise<Lab> {
  const lab = new Lab();
  lab.assertInController();
  const want = JSON.stringify({
    p: opts.profile,
    h: opts.hosts ?? null,
    a: opts.agents ?? null,
    m: !!opts.withMcollective,
  });
  const keyFile = `${lab.config.stateDir}/fixture.key`;
  let have: string | undefined;
  try {
    have = readFileSync(keyFile, 'utf8');
  } catch {
    have = undefined;
  }
  if (lab.state()?.phase === 'up' && have === want) {
    for (const h of (await lab.status()).hosts) {
      if (h.power === 'off') await lab.powerOn(h.name);
      if (h.link === 'down') await lab.heal(h.name);
    }
    return lab;
  }
  await lab.down();
  await lab.up({ ...opts, log: (l) => process.stderr.write(`lab: ${l}\n`) });
  writeFileSync(keyFile, want);
  return lab;
}

async function mastersOf(lab: Lab, names: string[], layout: Layout, redactor: Redactor): Promise<Master[]> {
  const inv = await lab.writeInventory();
  return names.map((n) => {
    const h = lab.host(n);
    return {
      fqdn: h.fqdn,
      host: new SshHost({
        name: h.fqdn,
        address: h.ip,
        user: 'root',
        privateKey: inv.privateKey,
        knownHosts: inv.knownHosts,
        redactor,
      }),
      layout,
    };
  });
}

describe('pe3 simulator: the MCollective PKI files and credentials travel primary -> secondary over SSH', () => {
  let lab: Lab;
  let masters: Master[];
  beforeAll(async () => {
    lab = await labFor({ profile: 'pe3', hosts: ['primary', 'secondary1'], agents: 1 });
    masters = await mastersOf(lab, ['primary', 'secondary1'], resolveLayout('pe3'), new Redactor());
  }, 900_000);
  afterAll(async () => {
    for (const m of masters ?? []) await m.host.close();
  });

  it('copies the 13 files with the primary owners and modes; a dry run first shows them masked; a rerun copies nothing', async () => {
    const [primary, secondary] = masters as [Master, Master];
    const c: McoCluster = { primary, secondaries: [secondary] };
    const before = await compareSharedFiles(primary, secondary);
    // two separate installs: each master generated its own pe-internal keys and credentials
    expect(before.filter((x) => x.status === 'content-differs').length).toBe(13);
    const pki = pe3JoinSteps(c).filter((s) => s.id.startsWith('mco-pki:'));
    const planned = await runMcoFlow(pki, masters, { dryRun: true });
    expect(planned.steps.map((o) => o.status)).toEqual(['planned']);
    const plan = JSON.stringify(plannedOn(planned, secondary.host.name));
    const key = (
      await primary.host.readFile('/etc/puppetlabs/puppet/ssl/private_keys/pe-internal-broker.pem')
    ).toString('utf8');
    const cred = (await primary.host.readFile('/etc/puppetlabs/mcollective/credentials')).toString('utf8').trim();
    for (const line of key.split('\n').filter((l) => l.length > 16 && !l.startsWith('-----')))
      expect(plan).not.toContain(line);
    expect(plan).not.toContain(cred);
    const t0 = performance.now();
    const out = (await runMcoFlow(pki, masters)).steps;
    const ms = performance.now() - t0;
    expect(out.map((o) => o.status)).toEqual(['done']);
    const after = await compareSharedFiles(primary, secondary);
    expect(after.every((x) => x.status === 'same')).toBe(true);
    const facts = await fileFacts(
      secondary.host,
      sharedFiles(secondary.layout).map((f) => f.path),
    );
    expect(
      [...facts.values()]
        .filter((f) => f.path.includes('/ssl/'))
        .every((f) => f.owner === 'pe-puppet' && f.group === 'pe-puppet'),
    ).toBe(true);
    expect((await secondary.host.readFile('/etc/puppetlabs/mcollective/credentials')).toString('utf8').trim()).toBe(
      cred,
    );
    expect((await runMcoFlow(pki, masters)).steps.map((o) => o.status)).toEqual(['skipped']);
    process.stderr.write(`pe-mcollective lab: pe3 PKI copy over SSH, 13 files: ${ms.toFixed(0)} ms\n`);
  });
});

describe('debian --with-mcollective: a network of brokers between the masters, mco ping from each', () => {
  let lab: Lab;
  let masters: Master[];
  const redactor = new Redactor();
  beforeAll(async () => {
    lab = await labFor({ profile: 'debian', hosts: ['primary', 'secondary1'], agents: 1, withMcollective: true });
    masters = await mastersOf(lab, ['primary', 'secondary1'], resolveLayout('debian'), redactor);
  }, 900_000);
  afterAll(async () => {
    for (const m of masters ?? []) await m.host.close();
  });

  it('sync: every master runs a broker in the mesh; mco ping from each master answers from both masters and the agent', async () => {
    const [primary, secondary] = masters as [Master, Master];
    const c: McoCluster = { primary, secondaries: [secondary] };
    const agent = lab.host('agent1').fqdn;
    const { secrets, generated } = await readSecrets(c);
    // the lab's primary already has real secrets (the agent uses them): they are kept
    expect(generated).toEqual([]);
    const t0 = performance.now();
    const out = (await runMcoFlow(debianSyncSteps(c, secrets), masters)).steps;
    const syncMs = performance.now() - t0;
    expect(out.filter((o) => o.status === 'done').map((o) => o.id)).toEqual(
      expect.arrayContaining([
        `mco-config:${primary.fqdn}`,
        `mco-config:${secondary.fqdn}`,
        `activemq-instance:${secondary.fqdn}`,
        `mco-restart:${secondary.fqdn}`,
      ]),
    );
    let report = await verifyDebian(c, { ping: true, expectNodes: [agent] });
    for (let i = 0; i < 10 && !report.ok; i++) {
      await new Promise((r) => setTimeout(r, 3000));
      report = await verifyDebian(c, { ping: true, expectNodes: [agent] });
    }
    expect(report.problems).toEqual([]);
    expect(JSON.stringify(report)).not.toContain(secrets.psk);
    expect(JSON.stringify(report)).not.toContain(secrets.password);
    process.stderr.write(`pe-mcollective lab: debian sync of 2 masters incl. restarts ${syncMs.toFixed(0)} ms\n`);
    // the secondary's mcollectived is on its own broker: the mesh carries the agent's and the primary's answers
    const log = (await secondary.host.readFile('/var/log/mcollective.log')).toString('utf8');
    expect(log).toMatch(new RegExp(`Connected to stomp://mcollective@${secondary.fqdn.replace(/\./g, '\\.')}:61613`));
    expect((await runMcoFlow(debianSyncSteps(c, secrets), masters)).steps.every((o) => o.status === 'skipped')).toBe(
      true,
    );
  });

  it('removing the secondary: the primary lists only itself, the secondary is stopped, ping from the primary answers from the primary and the agent', async () => {
    const [primary, secondary] = masters as [Master, Master];
    const remaining: McoCluster = { primary, secondaries: [] };
    const { secrets } = await readSecrets(remaining);
    await runMcoFlow(debianRemoveSteps(remaining, secondary, secrets, { stopRemoved: true }), masters);
    const agent = lab.host('agent1').fqdn;
    let report = await verifyDebian(remaining, { ping: true, expectNodes: [agent] });
    for (let i = 0; i < 10 && !report.ok; i++) {
      await new Promise((r) => setTimeout(r, 3000));
      report = await verifyDebian(remaining, { ping: true, expectNodes: [agent] });
    }
    expect(report.problems).toEqual([]);
    for (const p of [
      '/etc/mcollective/server.cfg',
      '/etc/mcollective/client.cfg',
      '/etc/activemq/instances-available/main/activemq.xml',
    ]) {
      expect((await primary.host.readFile(p)).toString('utf8')).not.toContain(secondary.fqdn);
    }
  });
});
