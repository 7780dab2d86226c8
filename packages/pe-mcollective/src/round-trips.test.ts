// Round trips of the pe3 join's MCollective steps (issue #8): every exec and every file operation of a host is one
// (a batch of writes is one, as SshHost makes it). These counts are the budget: a regression fails here.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Redactor } from '@pe-stack/pe-host';
import type { Step } from '@pe-stack/pe-steps';
import {
  countingHost,
  localMaster,
  pe3LayoutUnder,
  plannedOn,
  runMcoFlow,
  seedPe3Primary,
  tempRoot,
  type RoundTrip,
} from '@pe-stack/testkit/mcollective';
import { allMasters, type Master, type McoCluster } from './cluster.js';
import { pe3JoinSteps, pe3RemoveSteps, verifyPe3 } from './pe3.js';
import { compareWithFacts, copySharedFiles } from './pki.js';

interface RakeState {
  calls: string[][];
  variables: Record<string, Record<string, string>>;
  nodes: Record<string, string[]>;
}

/** A primary and `n - 1` secondaries that have their own (different) MCollective files from their install, every host counted. */
function counted(n: number) {
  const roots = Array.from({ length: n }, (_, i) => tempRoot(`pe-mco-rt${i + 1}-`));
  const state = join(roots[0]!, 'rake.json');
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
  const own = layouts.slice(1).map((l, i) => seedPe3Primary(l, `secondary-own-${i}`));
  const log: RoundTrip[] = [];
  const masters: Master[] = layouts.map((l, i) => {
    const m = localMaster(`master${i + 1}.example.com`, l, redactor);
    return { ...m, host: countingHost(m.host, log) };
  });
  const c: McoCluster = { primary: masters[0]!, secondaries: masters.slice(1), sudo: false };
  const rake = (): RakeState => JSON.parse(readFileSync(state, 'utf8')) as RakeState;
  return { c, log, layouts, seeded, own, rake, state };
}

/** Runs each step alone (check, apply, re-check) and returns the round trips it made, as `host op what` lines. */
async function tripsPerStep(steps: Step[], masters: Master[], log: RoundTrip[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for (const s of steps) {
    const from = log.length;
    await runMcoFlow([s], masters);
    out.set(
      s.id,
      log.slice(from).map((t) => `${t.host.split('.')[0]} ${t.op} ${t.what}`),
    );
  }
  return out;
}

describe('pe3 join round trips (issue #8)', () => {
  it('a 2-master join: mco-pki 5 (was 8), the console 3 rake commands (was 9); a rerun 2 and 1', async () => {
    const { c, log, rake } = counted(2);
    const first = await tripsPerStep(pe3JoinSteps(c), allMasters(c), log);
    expect([...first.keys()]).toEqual(['mco-pki:master2.example.com', 'console-mcollective']);
    expect(first.get('mco-pki:master2.example.com')).toEqual([
      // check: one command on each host (hashes, attributes; on the secondary also its directories and the owners' ids)
      'master1 exec sh nu=$1; ng=$2; shift 2',
      'master2 exec sh nu=$1; ng=$2; shift 2',
      // apply: the primary's bytes in one command, every file written in one (no id lookup, no read of the old secrets)
      'master1 exec sh lstats() {',
      expect.stringMatching(/^master2 writeFiles /),
      // re-check: the secondary only (the primary's facts are those of the check)
      'master2 exec sh nu=$1; ng=$2; shift 2',
    ]);
    expect(first.get('console-mcollective')).toEqual([
      // check: both groups' variables and the secondary's groups (two rake runs, one command)
      'master1 exec rake node:listgroups nodegroup:variables nodegroup:variables',
      // apply: all of it (two rake runs, one command)
      'master1 exec rake nodegroup:variables node:addgroup nodegroup:variables node:addgroup',
      // re-check
      'master1 exec rake node:listgroups nodegroup:variables nodegroup:variables',
    ]);
    // Rails boots: 2 rake processes per command
    expect(rake().calls).toHaveLength(6);
    expect([...first.values()].flat()).toHaveLength(8);

    const again = await tripsPerStep(pe3JoinSteps(c), allMasters(c), log);
    expect(again.get('mco-pki:master2.example.com')).toHaveLength(2);
    expect(again.get('console-mcollective')).toEqual([
      'master1 exec rake node:listgroups nodegroup:variables nodegroup:variables',
    ]);
    expect(rake().calls).toHaveLength(8);
  });

  it('the console step changes only what differs, each rake run naming a task once', async () => {
    const { c, log, rake } = counted(2);
    await runMcoFlow(pe3JoinSteps(c), allMasters(c));
    // someone dropped the secondary from one group and edited one variable
    const s = rake();
    s.nodes['master2.example.com'] = ['puppet_console', 'no mcollective'];
    s.variables['mcollective']!['fact_stomp_server'] = 'master1.example.com';
    s.calls = [];
    writeFileSync(c.primary.layout.commands.consoleCreateKeyPair[2]!, JSON.stringify(s));
    const from = log.length;
    const out = (
      await runMcoFlow(
        pe3JoinSteps(c).filter((st) => st.id === 'console-mcollective'),
        allMasters(c),
      )
    ).steps;
    expect(out[0]).toMatchObject({
      status: 'done',
      why: 'fact_stomp_server (group mcollective) is "master1.example.com"; master2.example.com is not in puppet_master',
    });
    expect(log.slice(from)).toHaveLength(3);
    const writes = rake()
      .calls.map((a) => a.slice(3))
      .filter((w) => w.some((t) => t.includes('=') || t.startsWith('node:addgroup')));
    expect(writes).toEqual([
      [
        'nodegroup:variables[mcollective,fact_stomp_server=master1.example.com\\\\\\,master2.example.com]',
        'node:addgroup[master2.example.com,puppet_master]',
      ],
    ]);
    expect(rake().nodes['master2.example.com']).toEqual(['puppet_console', 'no mcollective', 'puppet_master']);
    for (const run of rake().calls) {
      const tasks = run.slice(3).map((t) => t.replace(/\[.*$/s, ''));
      expect(new Set(tasks).size).toBe(tasks.length);
    }
  });

  it('the removal: one console step, 3 commands; the removed node read alone (its exact list goes back to node:groups)', async () => {
    const { c, log, rake, state } = counted(3);
    await runMcoFlow(pe3JoinSteps(c), allMasters(c));
    const s0 = rake();
    s0.nodes['master3.example.com']!.push('no mcollective');
    s0.calls = [];
    writeFileSync(state, JSON.stringify(s0));
    const remaining: McoCluster = { primary: c.primary, secondaries: [c.secondaries[0]!], sudo: false };
    const trips = await tripsPerStep(
      pe3RemoveSteps(remaining, { fqdn: 'master3.example.com' }),
      allMasters(remaining),
      log,
    );
    expect(trips.get('console-mcollective')).toEqual([
      'master1 exec rake nodegroup:variables nodegroup:variables node:listgroups',
      'master1 exec rake nodegroup:variables node:groups nodegroup:variables',
      'master1 exec rake nodegroup:variables nodegroup:variables node:listgroups',
    ]);
    expect(rake().calls[0]!.slice(3)).toEqual(['nodegroup:variables[puppet_master]']);
    expect(rake().calls[2]!.slice(3)).toEqual(['node:listgroups[master3.example.com]']);
    expect(rake().nodes['master3.example.com']).toEqual(['no mcollective']);
  });

  it('verifyPe3 asks the console once', async () => {
    const { c, log } = counted(3);
    await runMcoFlow(pe3JoinSteps(c), allMasters(c));
    const from = log.length;
    expect((await verifyPe3(c)).ok).toBe(true);
    expect(log.slice(from).filter((t) => t.what.startsWith('rake'))).toHaveLength(1);
  });

  it("a dry run still reads the secondary's old secrets, so the plan masks them (old and new)", async () => {
    const { c, seeded, own } = counted(2);
    const result = await runMcoFlow(pe3JoinSteps(c), allMasters(c), { dryRun: true });
    expect(result.steps.map((o) => o.status)).toEqual(['planned', 'planned']);
    const plan = JSON.stringify(plannedOn(result, 'master2.example.com'));
    expect(plan).toContain('only a masked secret value changed');
    for (const secret of [...seeded.keys, seeded.credentials, ...own[0]!.keys, own[0]!.credentials]) {
      for (const line of secret.split('\n').filter((l) => l.length > 8 && !l.startsWith('-----')))
        expect(plan).not.toContain(line);
    }
  });

  it('an owner the secondary lacks (known from its check) is an actionable error before anything is written', async () => {
    const { c, log } = counted(2);
    const cmp = await compareWithFacts(c.primary, c.secondaries[0]!, { sudo: false });
    const owner = [...cmp.srcFacts.values()][0]!.owner!;
    cmp.target!.users.set(owner, undefined);
    const from = log.length;
    const err = await copySharedFiles(c.primary, c.secondaries[0]!, {
      sudo: false,
      compared: cmp,
      dryRun: false,
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'E_MCO_COPY',
      host: 'master2.example.com',
      message: expect.stringContaining(`the user ${owner}, owner of the files on the primary, does not exist here.`),
    });
    expect(log.slice(from)).toEqual([]);
  });
});
