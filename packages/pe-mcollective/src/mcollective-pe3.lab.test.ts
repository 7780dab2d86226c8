// pe-mcollective against the lab's pe3 profile (PE 3.x simulator), over SSH: the
// pe_secondary::mcollective files copied from the primary to a secondary host
// to host, owners and modes kept. Each run on a fresh pe3 lab: the files must
// differ first.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redactor } from '@pe-stack/pe-host';
import { resolveLayout } from '@pe-stack/pe-config-files';
import { labMasters, ownLab, type Lab } from '@pe-stack/testkit/lab';
import { plannedOn, runMcoFlow } from '@pe-stack/testkit/mcollective';
import { compareSharedFiles, fileFacts, sharedFiles } from './pki.js';
import type { Master, McoCluster } from './cluster.js';
import { pe3JoinSteps } from './pe3.js';

describe('pe3 simulator: the MCollective PKI files and credentials travel primary -> secondary over SSH', () => {
  let lab: Lab;
  let masters: Master[];
  beforeAll(async () => {
    lab = await ownLab({ profile: 'pe3', hosts: ['primary', 'secondary1'], agents: 1 });
    masters = labMasters(lab, ['primary', 'secondary1'], resolveLayout('pe3'), new Redactor());
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
