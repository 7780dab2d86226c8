import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Redactor } from '@pe-stack/pe-host';
import {
  localMaster,
  pe3LayoutUnder,
  plannedOn,
  runMcoFlow,
  seedPe3Primary,
  tempRoot,
} from '@pe-stack/testkit/mcollective';
import { allMasters, type McoCluster } from './cluster.js';
import { pe3JoinSteps, pe3RemoveSteps, verifyPe3 } from './pe3.js';
import { assertMcoVerified } from './verify.js';

interface RakeState {
  calls: string[][];
  variables: Record<string, Record<string, string>>;
  nodes: Record<string, string[]>;
}

function cluster(n: number) {
  const roots = Array.from({ length: n }, (_, i) => tempRoot(`pe-mco-m${i + 1}-`));
  const state = join(roots[0]!, 'rake.json');
  // the console keeps the primary in its groups from the install
  writeFileSync(
    state,
    JSON.stringify({
      calls: [],
      groups: {},
      variables: {},
      nodes: { 'master1.example.com': ['default', 'puppet_master', 'puppet_console'] },
    }),
  );
  const redactor = new Redactor();
  const layouts = roots.map((r) => pe3LayoutUnder(r, state));
  const seeded = seedPe3Primary(layouts[0]!);
  const masters = layouts.map((l, i) => localMaster(`master${i + 1}.example.com`, l, redactor));
  const c: McoCluster = { primary: masters[0]!, secondaries: masters.slice(1), sudo: false };
  const rake = (): RakeState => JSON.parse(readFileSync(state, 'utf8')) as RakeState;
  return { c, masters, layouts, seeded, rake, state };
}

describe('pe3: one MCollective for all masters', () => {
  it('join: copies the files, sets both console variables, groups every secondary; a rerun does nothing', async () => {
    const { c, rake, layouts } = cluster(3);
    const before = await verifyPe3(c);
    expect(before.ok).toBe(false);
    const out = (await runMcoFlow(pe3JoinSteps(c), allMasters(c))).steps;
    expect(out.map((o) => [o.id, o.status])).toEqual([
      ['mco-pki:master2.example.com', 'done'],
      ['mco-pki:master3.example.com', 'done'],
      ['console-mcollective', 'done'],
    ]);
    const s = rake();
    expect(s.variables['puppet_master']).toEqual({
      activemq_brokers: 'master1.example.com,master2.example.com,master3.example.com',
    });
    expect(s.variables['mcollective']).toEqual({
      fact_stomp_server: 'master1.example.com,master2.example.com,master3.example.com',
    });
    expect(s.nodes['master2.example.com']).toEqual(['puppet_master', 'puppet_console']);
    // the exact rake runs that changed something: no run names a task twice (rake runs a task once per process)
    const writes = s.calls
      .map((a) => a.slice(3).join(' '))
      .filter(
        (w) => !/^(node:listgroups\[[^\]]*\] )?(nodegroup:variables\[[a-z_]+\]|node:listgroups\[[^\]]*\])$/.test(w),
      );
    expect(writes).toEqual([
      'nodegroup:variables[puppet_master,activemq_brokers=master1.example.com\\\\\\,master2.example.com\\\\\\,master3.example.com] node:addgroup[master2.example.com,puppet_master]',
      'nodegroup:variables[mcollective,fact_stomp_server=master1.example.com\\\\\\,master2.example.com\\\\\\,master3.example.com] node:addgroup[master2.example.com,puppet_console]',
      'node:addgroup[master3.example.com,puppet_master]',
      'node:addgroup[master3.example.com,puppet_console]',
    ]);
    expect(readFileSync(layouts[2]!.mcollective.credentials!, 'utf8')).toBe(
      readFileSync(layouts[0]!.mcollective.credentials!, 'utf8'),
    );
    const again = (await runMcoFlow(pe3JoinSteps(c), allMasters(c))).steps;
    expect(again.every((o) => o.status === 'skipped')).toBe(true);
    const report = assertMcoVerified(await verifyPe3(c));
    expect(report.checks).toHaveLength(2 * 13 + 2 + 2);
  });

  it('remove: the lists name the remaining masters, the removed one leaves the master groups only; the others still verify', async () => {
    const { c, rake, masters } = cluster(3);
    await runMcoFlow(pe3JoinSteps(c), masters);
    const s0 = rake();
    s0.nodes['master3.example.com']!.push('no mcollective');
    const remaining: McoCluster = { primary: masters[0]!, secondaries: [masters[1]!], sudo: false };
    writeFileSync(stateOf(c), JSON.stringify(s0));
    const out = (await runMcoFlow(pe3RemoveSteps(remaining, { fqdn: 'master3.example.com' }), masters)).steps;
    expect(out.map((o) => [o.id, o.status])).toEqual([['console-mcollective', 'done']]);
    const s = rake();
    expect(s.variables['puppet_master']!['activemq_brokers']).toBe('master1.example.com,master2.example.com');
    expect(s.variables['mcollective']!['fact_stomp_server']).toBe('master1.example.com,master2.example.com');
    expect(s.nodes['master3.example.com']).toEqual(['no mcollective']);
    expect(s.nodes['master2.example.com']).toEqual(['puppet_master', 'puppet_console']);
    assertMcoVerified(await verifyPe3(remaining));
    // the old three-master cluster no longer verifies: the lists do not name master3 any more
    const stale = await verifyPe3(c);
    expect(stale.problems.join('\n')).toMatch(
      /activemq_brokers: is "master1.example.com,master2.example.com"; missing master3.example.com/,
    );
    expect(() => pe3RemoveSteps(c, { fqdn: 'master3.example.com' })).toThrow(/still listed/);
  });

  it('verification names what differs without hashes or secrets', async () => {
    const { c, seeded, layouts } = cluster(2);
    await runMcoFlow(pe3JoinSteps(c), allMasters(c));
    writeFileSync(layouts[1]!.mcollective.pki['pe-internal-broker']!.privateKey, 'tampered\n');
    const r = await verifyPe3(c);
    expect(r.ok).toBe(false);
    expect(r.problems).toEqual([
      expect.stringMatching(
        /^master2.example.com: pe-internal-broker\/privateKey: .*pe-internal-broker.pem: content-differs$/,
      ),
    ]);
    const text = JSON.stringify(r);
    for (const k of seeded.keys) expect(text).not.toContain(k.split('\n')[1]!);
    expect(text).not.toMatch(/[0-9a-f]{64}/);
  });

  it('dry run: the plan lists the rake calls and the file writes, masks keys and credentials, and changes nothing', async () => {
    const { c, seeded, rake } = cluster(2);
    const result = await runMcoFlow(pe3JoinSteps(c), allMasters(c), { dryRun: true });
    const out = result.steps;
    const primaryPlan = plannedOn(result, c.primary.host.name);
    const secondaryPlan = plannedOn(result, c.secondaries[0]!.host.name);
    expect(out.every((o) => o.status === 'planned')).toBe(true);
    expect(secondaryPlan.filter((m) => m.kind === 'write')).toHaveLength(13);
    // one planned command: two rake runs chained (nodegroup:variables twice cannot share a run)
    const execs = primaryPlan.filter((m) => m.kind === 'exec').map((m) => (m.kind === 'exec' ? m.argv : []));
    expect(execs).toHaveLength(1);
    expect(execs[0]!.slice(0, 2)).toEqual(['sh', '-c']);
    const runs = execs[0]![2]!
      .split(' && echo --pe-mcollective-next-rake-run-- && ')
      .map((r) => r.split(' RAILS_ENV=production ')[1]);
    expect(runs).toEqual([
      "'nodegroup:variables[puppet_master,activemq_brokers=master1.example.com\\\\\\,master2.example.com]' 'node:addgroup[master2.example.com,puppet_master]'",
      "'nodegroup:variables[mcollective,fact_stomp_server=master1.example.com\\\\\\,master2.example.com]' 'node:addgroup[master2.example.com,puppet_console]'",
    ]);
    const plan = JSON.stringify([primaryPlan, secondaryPlan, out]);
    for (const k of seeded.keys) for (const line of k.split('\n').slice(1, -2)) expect(plan).not.toContain(line);
    expect(plan).not.toContain(seeded.credentials.trim());
    expect(rake().variables).toEqual({ puppet_master: {}, mcollective: {} });
  });
});

function stateOf(c: McoCluster): string {
  return c.primary.layout.commands.consoleCreateKeyPair[2]!;
}
