// pe-mcollective against the lab's debian profile --with-mcollective: real
// activemq and mcollectived on two masters (the lab gives only the primary a
// broker); after the sync steps `mco ping` from each master is answered by
// every node (both masters and the agent), and removing the secondary leaves
// the primary working.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redactor } from '@pe-stack/pe-host';
import { resolveLayout } from '@pe-stack/pe-config-files';
import { FRESH_STAGE, LAB_SHAPES, labMasters, leaveLab, ownLab, type Lab } from '@pe-stack/testkit/lab';
import { runMcoFlow } from '@pe-stack/testkit/mcollective';
import { debianRemoveSteps, debianSyncSteps, readSecrets, verifyDebian } from './debian.js';
import type { Master, McoCluster } from './cluster.js';

describe('debian --with-mcollective: a network of brokers between the masters, mco ping from each', () => {
  let lab: Lab;
  let masters: Master[];
  const redactor = new Redactor();
  beforeAll(async () => {
    // after pe-certs' tests (the secondary's certificate from the primary's CA: MCollective's PSK and broker
    // password don't depend on it) or fresh
    lab = await ownLab(LAB_SHAPES.debianPairWithMcollective, { accepts: [FRESH_STAGE, 'secondary-certified'] });
    masters = labMasters(lab, ['primary', 'secondary1'], resolveLayout('debian'), redactor);
  }, 900_000);
  afterAll(async ({}, suite) => {
    // the primary's broker alone again, the secondary's stopped: the database's tests don't mind
    if (lab) leaveLab(lab, 'brokers-meshed', suite);
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
