// pe-cluster failover, for real, on the lab's debian profile: three masters
// (puppetserver 7, puppetdb 7, PostgreSQL 15), one agent, the load balancer
// puppet.lab.test; primary_cname master.lab.test moved by the hosts-file
// provider (/etc/hosts on every node). The CLI runs as a child process inside
// the controller namespace (npm run test:lab -- failover).
//
// The proof: join both secondaries; secondary1 the synchronous standby; the
// agent runs; the primary is powered off; `failover --to secondary1`: a new
// agent certname gets a certificate signed by the new CA (signed there with
// `puppetserver ca sign`, the CA admin rights) and a catalog through
// puppet.lab.test; the existing agent keeps working; every PuppetDB node and
// report written before the cut is present; master.lab.test resolves to
// secondary1 on every master; status shows one CA. Power the old primary on:
// its boot-time guard (installed by standby) finds secondary1 signing, so it
// serves no CA and its PostgreSQL stays in recovery; `rejoin` makes it a
// healthy secondary (streaming standby). Then a planned switchover back, killed with
// SIGKILL after the promotion and continued with --resume.
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { FRESH_STAGE, LAB_SHAPES, useLab, type Lab } from '@pe-stack/lab';
import { beforeAll, describe, expect, it } from 'vitest';
import { lastJson, runCli } from '@pe-stack/testkit/cli';

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const fq = (h: string) => `${h}.lab.test`;
const figure = (name: string, value: number | string) => process.stderr.write(`failover.lab: ${name} = ${value}\n`);

const cli = (args: string[], timeoutMs?: number) => runCli(CLI, args, timeoutMs);
/** The CLI with --json, SIGKILLed right after the step `id` reports done. */
function cliKilledAfter(args: string[], id: string): Promise<{ killed: boolean; stdout: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let killed = false;
    p.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      for (const line of out.split('\n')) {
        if (!killed && line.includes('"type":"step-done"') && line.includes(`"id":"${id}"`)) {
          killed = true;
          p.kill('SIGKILL');
        }
      }
    });
    p.on('exit', () => resolve({ killed, stdout: out }));
  });
}
const last = lastJson;
interface StepOut {
  id: string;
  host: string;
  status: string;
  ms?: number;
}
interface Result {
  status: string;
  exitCode: number;
  steps: StepOut[];
  error?: { code: string; message: string };
}
interface Status {
  health: string;
  caHolders: string[];
  masters: { name: string; caEnabled?: boolean; caGated?: boolean }[];
  problems: { level: string; host?: string; message: string }[];
  ha?: {
    primary: string;
    standby?: { host: string; replication: { state?: string; syncState?: string }; caCopy: { verified: boolean } };
    fenced: { host: string }[];
  };
}

describe('pe-cluster standby / failover / rejoin on the debian lab (3 masters, 1 agent)', () => {
  let lab: Lab;
  let inventory: string;
  const I = () => ['-i', inventory];

  beforeAll(async () => {
    // a joined cluster (join.lab) or a fresh one; power cuts and failovers leave it to no later file
    ({ lab } = await useLab(LAB_SHAPES.debianTrio, { accepts: [FRESH_STAGE, 'joined'] }));
    const files = await lab.writeInventory();
    const dir = await mkdtemp(join(tmpdir(), 'pe-cluster-failover-lab-'));
    const inv = parse(readFileSync(files.inventory, 'utf8')) as { vars: Record<string, unknown> };
    Object.assign(inv.vars, {
      journals: join(dir, 'journal'),
      audit_log: join(dir, 'audit.log'),
      backups: join(dir, 'backups'),
      dns: { provider: 'hosts-file' },
    });
    inventory = join(dir, 'inventory.yaml');
    writeFileSync(inventory, stringify(inv));
    const j = await cli([...I(), '--json', 'join']);
    expect(j.code, j.stderr).toBe(0);
    figure('join_s', (j.ms / 1000).toFixed(1));
  });

  const agentRun = async (extra: string[] = []) =>
    lab.ssh(
      'agent1',
      ['puppet', 'agent', '-t', '--detailed-exitcodes', '--color=false', '--http_keepalive_timeout', '0', ...extra],
      { allowFailure: true, timeoutMs: 300_000 },
    );
  const status = async () => {
    const r = await cli([...I(), '--json', 'status']);
    return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Status;
  };
  const pdb = async (host: string, what: string) =>
    JSON.parse(
      (await lab.ssh(host, ['curl', '-sf', '--max-time', '30', `http://127.0.0.1:8080/pdb/query/v4/${what}`])).stdout,
    ) as { certname: string; hash?: string }[];

  it('emergency failover to the synchronous standby after a power cut; a new agent gets a certificate and a catalog; nothing written before the cut is lost', async () => {
    const sb = await cli([...I(), '--json', 'standby', fq('secondary1'), '--sync']);
    expect(sb.code, sb.stdout.slice(-2000)).toBe(0);
    const st0 = await status();
    expect(st0.ha?.standby).toMatchObject({
      host: fq('secondary1'),
      replication: { state: 'streaming', syncState: 'sync' },
      caCopy: { verified: true },
    });
    // the standby's CA runs on the copy, gated: it answers the CA certificate, refuses a CSR and signs nothing
    expect(st0.caHolders).toEqual([fq('primary')]);
    expect(st0.masters.find((m) => m.name === fq('secondary1'))?.caGated).toBe(true);
    const gate = await lab.ssh('secondary1', [
      'curl',
      '-sk',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '-X',
      'PUT',
      '--data-binary',
      'x',
      'https://127.0.0.1:8140/puppet-ca/v1/certificate_request/intruder.lab.test',
    ]);
    expect(gate.stdout).toBe('403');
    expect([0, 2]).toContain((await agentRun()).code);
    const nodesBefore = (await pdb('primary', 'nodes')).map((n) => n.certname).sort();
    const reportsBefore = (await pdb('primary', 'reports')).map((r) => r.hash).sort();
    expect(nodesBefore).toContain('agent1.lab.test');

    const cut = performance.now();
    await lab.powerOff('primary');
    const f = await cli([...I(), '--json', 'failover', '--to', fq('secondary1'), '--dead-after', '2000']);
    const fr = last<Result>(f);
    expect(f.code, JSON.stringify(fr.error)).toBe(0);
    for (const s of fr.steps) if (s.ms !== undefined) figure(`step ${s.id}@${s.host} ms`, Math.round(s.ms));
    // a new agent (a new certname on agent1): CSR, signed by the new CA through its CA admin endpoints, then a catalog through puppet.lab.test
    const certname = `new${Date.now() % 100000}.lab.test`;
    await lab.ssh(
      'agent1',
      ['puppet', 'ssl', 'bootstrap', '--certname', certname, '--waitforcert', '0', '--http_keepalive_timeout', '0'],
      { allowFailure: true, timeoutMs: 120_000 },
    );
    const sign = await lab.ssh('secondary1', ['puppetserver', 'ca', 'sign', '--certname', certname], {
      allowFailure: true,
      timeoutMs: 120_000,
    });
    expect(sign.code, sign.stderr + sign.stdout).toBe(0);
    const newRun = await agentRun(['--certname', certname]);
    expect([0, 2], newRun.stderr).toContain(newRun.code);
    figure('rto_power_cut_to_new_agent_catalog_s', ((performance.now() - cut) / 1000).toFixed(1));
    expect((await lab.ssh('agent1', ['cat', '/tmp/lab-catalog'])).stdout).toMatch(
      new RegExp(`for ${certname.replace(/\./g, '\\.')}`),
    );
    // the existing agent keeps working
    expect([0, 2]).toContain((await agentRun()).code);
    // every node and report from before the cut is in the promoted database
    const nodesAfter = (await pdb('secondary1', 'nodes')).map((n) => n.certname);
    for (const n of nodesBefore) expect(nodesAfter).toContain(n);
    const reportsAfter = (await pdb('secondary1', 'reports')).map((r) => r.hash);
    for (const h of reportsBefore) expect(reportsAfter).toContain(h);
    // master.lab.test is secondary1 everywhere that runs
    const addr = (await lab.ssh('secondary1', ['getent', 'ahosts', 'secondary1.lab.test'])).stdout.split(/\s+/)[0];
    for (const h of ['secondary1', 'secondary2', 'agent1'])
      expect((await lab.ssh(h, ['getent', 'ahosts', 'master.lab.test'])).stdout.split(/\s+/)[0]).toBe(addr);
    const st = await status();
    expect(st.caHolders).toEqual([fq('secondary1')]);
    expect(st.ha?.fenced.map((x) => x.host)).toEqual([fq('primary')]);
    figure(
      'status_after_failover',
      `${st.health}: ${st.problems.map((p) => `${p.host ?? ''} ${p.message}`).join(' | ')}`,
    );
    expect(st.health).toBe('healthy');
  });

  it('the old primary powered on is reported, not trusted; rejoin makes it a healthy secondary (streaming standby, no CA)', async () => {
    await lab.powerOn('primary');
    // the boot-time guard found secondary1 signing: the old primary's CA is off and its PostgreSQL in recovery
    // its services start in the background after the boot (puppetserver: a JVM cold start)
    let code = '000';
    for (
      const t0 = Date.now();
      code === '000' && Date.now() - t0 < 240_000;
      await new Promise((r) => setTimeout(r, 2000))
    ) {
      code = (
        await lab.ssh(
          'primary',
          [
            'curl',
            '-sk',
            '-o',
            '/dev/null',
            '-w',
            '%{http_code}',
            '--max-time',
            '10',
            'https://127.0.0.1:8140/puppet-ca/v1/certificate/ca',
          ],
          { allowFailure: true },
        )
      ).stdout.trim();
    }
    figure(
      'guard_log',
      (await lab.ssh('primary', ['tail', '-n', '4', '/var/local/pe-cluster/guard.log'], { allowFailure: true })).stdout
        .trim()
        .replace(/\n/g, ' | '),
    );
    expect(code).toBe('404');
    expect(
      (
        await lab.ssh('primary', ['runuser', '-u', 'postgres', '--', 'psql', '-tAc', "'select pg_is_in_recovery()'"])
      ).stdout.trim(),
    ).toBe('t');
    const st = await status();
    figure('status_after_power_on', `${st.health}; CA holders ${st.caHolders.join(',')}`);
    expect(st.caHolders).toEqual([fq('secondary1')]);
    const r = await cli([...I(), '--json', 'rejoin', fq('primary')]);
    expect(r.code, JSON.stringify(last<Result>(r).error)).toBe(0);
    const st2 = await status();
    expect(st2.caHolders).toEqual([fq('secondary1')]);
    expect(st2.ha?.fenced).toEqual([]);
    expect(st2.health).toBe('healthy');
    expect(
      (
        await lab.ssh('primary', ['runuser', '-u', 'postgres', '--', 'psql', '-tAc', "'select pg_is_in_recovery()'"])
      ).stdout.trim(),
    ).toBe('t');
  });

  it('planned switchover back to the primary, the CLI killed after the promotion and resumed: zero data loss, one CA', async () => {
    expect((await cli([...I(), '--json', 'standby', fq('primary'), '--sync'])).code).toBe(0);
    expect([0, 2]).toContain((await agentRun()).code);
    const reportsBefore = (await pdb('secondary1', 'reports')).map((r) => r.hash);
    const k = await cliKilledAfter([...I(), '--json', 'failover', '--to', fq('primary')], 'db-promote');
    expect(k.killed).toBe(true);
    const r = await cli([...I(), '--json', '--resume', 'failover', '--to', fq('primary')]);
    expect(r.code, JSON.stringify(last<Result>(r).error)).toBe(0);
    const st = await status();
    expect(st.caHolders).toEqual([fq('primary')]);
    const reportsAfter = (await pdb('primary', 'reports')).map((x) => x.hash);
    for (const h of reportsBefore) expect(reportsAfter).toContain(h);
    expect([0, 2]).toContain((await agentRun()).code);
  });
});
