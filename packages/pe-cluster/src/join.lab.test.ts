// pe-cluster join, for real, on the lab's debian profile: three standalone
// Debian masters (puppetserver 7, puppetdb 7, PostgreSQL 15, each with its own
// CA and database: step 1 of the runbook) and one agent behind the load
// balancer puppet.lab.test. One lab bring-up for the whole file; the CLI runs
// as a child process inside the controller namespace (npm run test:lab).
//
// The proof: join secondary1 and secondary2 to the primary; then `puppet agent
// -t` through puppet.lab.test succeeds repeatedly with catalogs compiled by
// each master; every master's PuppetDB writes into the primary's database
// (the same nodes through each); only the primary answers on /puppet-ca;
// `status` is healthy; rerunning `join` changes nothing.
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { LAB_SHAPES, leaveLab, useLab, type Lab } from '@pe-stack/lab';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reportFailure, runCli, type CliRun } from '@pe-stack/testkit/cli';

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const MASTERS = ['primary', 'secondary1', 'secondary2'] as const;
const SECONDARIES = ['secondary1.lab.test', 'secondary2.lab.test'];

const cli = (args: string[], timeoutMs?: number) => runCli(CLI, args, timeoutMs);

interface StepOut {
  id: string;
  host: string;
  status: string;
  why?: string;
  mutations: unknown[];
}
/** The last NDJSON line of `--json`: the result object. */
function result(r: CliRun): { status: string; exitCode: number; steps: StepOut[] } {
  const last = r.stdout.trim().split('\n').at(-1) ?? '';
  return JSON.parse(last) as { status: string; exitCode: number; steps: StepOut[] };
}

/** MemTotal - MemAvailable, MB. */
function usedMb(): number {
  const info = readFileSync('/proc/meminfo', 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB$`, 'm').exec(info)?.[1] ?? 0);
  return Math.round((kb('MemTotal') - kb('MemAvailable')) / 1024);
}

const figure = (name: string, value: number | string) => process.stderr.write(`join.lab: ${name} = ${value}\n`);

describe('pe-cluster join on the debian lab (3 real masters, 1 agent)', () => {
  let lab: Lab;
  let dir: string;
  let inventory: string;
  let dbPassword: string;

  beforeAll(async () => {
    ({ lab } = await useLab(LAB_SHAPES.debianTrio));
    const files = await lab.writeInventory();
    // the lab's inventory, unchanged but for where the journal and audit log go (not the home directory)
    dir = await mkdtemp(join(tmpdir(), 'pe-cluster-join-lab-'));
    const inv = parse(readFileSync(files.inventory, 'utf8')) as { vars: Record<string, unknown> };
    expect(inv.vars).toMatchObject({ cluster: 'lab', layout: 'debian' });
    inv.vars.journals = join(dir, 'journal');
    inv.vars.audit_log = join(dir, 'audit.log');
    inventory = join(dir, 'inventory.yaml');
    writeFileSync(inventory, stringify(inv));
    const ini = (await lab.exec('primary', ['cat', '/etc/puppetdb/conf.d/database.ini'])).stdout;
    dbPassword = /^password\s*=\s*(\S+)/m.exec(ini)?.[1] ?? '';
    expect(dbPassword.length).toBeGreaterThan(8);
  });

  afterAll(async ({}, suite) => {
    // the masters are joined now: only files that accept a joined cluster take this lab
    if (lab) leaveLab(lab, 'joined', suite);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('plans the join without changing anything (the secondaries keep their own CA)', async () => {
    const before = (await lab.exec('secondary1', ['cat', '/etc/puppet/puppetserver/services.d/ca.cfg'])).stdout;
    const r = await cli(['-i', inventory, '--json', 'plan', 'join']);
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    const plan = result(r);
    const planned = plan.steps.filter((s) => s.status === 'planned').map((s) => `${s.id}@${s.host}`);
    for (const h of SECONDARIES)
      expect(planned).toEqual(
        expect.arrayContaining([`settings@${h}`, `certificate@${h}`, `database-settings@${h}`, `puppetdb-ssl@${h}`]),
      );
    expect((await lab.exec('secondary1', ['cat', '/etc/puppet/puppetserver/services.d/ca.cfg'])).stdout).toBe(before);
    expect(r.stdout).not.toContain(dbPassword);
    figure('plan ms', Math.round(r.ms));
  });

  it('joins secondary1 and secondary2: exit 0, every secondary changed, restarted and validated', async () => {
    const base = usedMb();
    let peak = base;
    const timer = setInterval(() => (peak = Math.max(peak, usedMb())), 500);
    const r = await cli(['-i', inventory, '--json', 'join']).finally(() => clearInterval(timer));
    reportFailure(r);
    expect(r.code).toBe(0);
    const res = result(r);
    expect(res.status).toBe('ok');
    const done = res.steps.filter((s) => s.status === 'done').map((s) => `${s.id}@${s.host}`);
    for (const h of SECONDARIES) {
      for (const id of [
        'settings',
        'certificate',
        'database-settings',
        'puppetdb-ssl',
        'restart',
        'validate-self',
        'validate-general',
      ])
        expect(done).toContain(`${id}@${h}`);
    }
    // one pg_hba change grants every secondary joining now: the first one's step makes it, the next finds its access in effect
    const access = res.steps.filter((s) => s.id.startsWith('primary.db-access:'));
    expect(access.map((s) => `${s.id}:${s.status}`)).toEqual(
      SECONDARIES.map((h, i) => `primary.db-access:${h}:${i === 0 ? 'done' : 'skipped'}`),
    );
    for (const s of access.slice(1)) expect(s.why).toMatch(/^pg_hba admits /);
    expect(res.steps.filter((s) => s.status === 'failed' || s.status === 'not-run')).toEqual([]);
    // secrets: the primary's database password is nowhere in the output, the journal or the audit log
    const journals = await readdir(join(dir, 'journal'));
    expect(journals).toHaveLength(1);
    for (const text of [
      r.stdout,
      r.stderr,
      await readFile(join(dir, 'journal', journals[0]!), 'utf8'),
      await readFile(join(dir, 'audit.log'), 'utf8'),
    ])
      expect(text).not.toContain(dbPassword);
    figure('join wall s', (r.ms / 1000).toFixed(1));
    figure('join peak memory above start MB', peak - base);
  });

  it('puts every master behind puppet.lab.test (the load balancer checks TLS against the primary CA)', async () => {
    for (const m of MASTERS) await lab.waitForBackend(m, 'UP', 60_000);
    expect(await lab.loadBalancerBackends()).toEqual(MASTERS.map((name) => ({ name, status: 'UP' })));
  });

  it('runs puppet agent -t through puppet.lab.test repeatedly, with catalogs compiled by each master', async () => {
    const compiledBy: string[] = [];
    for (let i = 0; i < 12 && (i < 6 || new Set(compiledBy).size < MASTERS.length); i++) {
      const run = await lab.ssh('agent1', ['puppet', 'agent', '-t', '--color=false'], {
        allowFailure: true,
        timeoutMs: 300_000,
      });
      expect([0, 2], `run ${i + 1}: ${run.stdout.slice(-400)}${run.stderr.slice(-400)}`).toContain(run.code);
      const said = (await lab.exec('agent1', ['cat', '/tmp/lab-catalog'])).stdout.trim();
      const m = /^catalog compiled by (\S+) for agent1\.lab\.test$/.exec(said);
      expect(m, said).not.toBeNull();
      compiledBy.push(m![1]!);
    }
    expect(new Set(compiledBy)).toEqual(new Set(MASTERS.map((m) => `${m}.lab.test`)));
    figure(
      'agent runs through puppet.lab.test',
      `${compiledBy.length} (${compiledBy.map((c) => c.split('.')[0]).join(' ')})`,
    );
  });

  it("stores through every master's PuppetDB into the primary's database: the same nodes through each, reports produced by each", async () => {
    const nodesVia = async (h: string) => {
      const r = await lab.exec(h, ['curl', '-sf', 'http://127.0.0.1:8080/pdb/query/v4/nodes']);
      return (JSON.parse(r.stdout) as { certname: string }[]).map((n) => n.certname).sort();
    };
    const viaPrimary = await nodesVia('primary');
    expect(viaPrimary).toEqual(expect.arrayContaining(['agent1.lab.test', ...SECONDARIES]));
    for (const h of ['secondary1', 'secondary2']) expect(await nodesVia(h)).toEqual(viaPrimary);
    const inDb = await lab.exec('primary', [
      'runuser',
      '-u',
      'postgres',
      '--',
      'psql',
      '-tAc',
      'select count(*) from certnames where deactivated is null',
      'puppetdb',
    ]);
    expect(Number(inDb.stdout.trim())).toBe(viaPrimary.length);
    // the secondaries' PuppetDBs have no database of their own any more
    for (const h of ['secondary1', 'secondary2']) {
      expect((await lab.exec(h, ['cat', '/etc/puppetdb/conf.d/database.ini'])).stdout).toMatch(
        /^subname\s*=\s*\/\/master\.lab\.test:5432\/puppetdb/m,
      );
    }
    // each master submitted the agent's reports through its own PuppetDB (terminus: its own server_urls), all in the primary's database
    const q =
      '["extract",[["function","count"],"producer"],["=","certname","agent1.lab.test"],["group_by","producer"]]';
    const rows = JSON.parse(
      (
        await lab.exec('primary', [
          'curl',
          '-sf',
          '-G',
          'http://127.0.0.1:8080/pdb/query/v4/reports',
          '--data-urlencode',
          `query=${q}`,
        ])
      ).stdout,
    ) as { producer: string; count: number }[];
    expect(rows.map((r) => r.producer).sort()).toEqual(MASTERS.map((m) => `${m}.lab.test`));
    for (const h of ['secondary1', 'secondary2'])
      expect((await lab.exec(h, ['cat', '/etc/puppet/puppetdb.conf'])).stdout).toContain(
        `server_urls = https://${h}.lab.test:8081`,
      );
    figure('nodes through each PuppetDB', viaPrimary.length);
  });

  it('answers /puppet-ca only on the primary; every master presents a certificate of the primary CA', async () => {
    lab.assertInController();
    const ca = readFileSync(`${lab.hostDir('primary')}/fs/var/lib/puppet/ssl/certs/ca.pem`);
    const code = (m: string) =>
      new Promise<number>((resolve, reject) => {
        const h = lab.host(m);
        const req = request(
          {
            host: h.ip,
            servername: h.fqdn,
            headers: { host: `${h.fqdn}:8140` },
            port: 8140,
            path: '/puppet-ca/v1/certificate/ca',
            ca,
            timeout: 30_000,
          },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on('error', reject);
        req.on('timeout', () => req.destroy(new Error(`timeout on ${m}`)));
        req.end();
      });
    expect(await code('primary')).toBe(200);
    expect(await code('secondary1')).toBe(404);
    expect(await code('secondary2')).toBe(404);
  });

  it('reports the cluster healthy (pe-cluster status)', async () => {
    const r = await cli(['-i', inventory, '--json', 'status']);
    const s = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as {
      health: string;
      caHolders: string[];
      problems: unknown[];
      exitCode: number;
    };
    expect(s.problems).toEqual([]);
    expect(s).toMatchObject({ health: 'healthy', caHolders: ['primary.lab.test'], exitCode: 0 });
    expect(r.code).toBe(0);
    figure('status ms', Math.round(r.ms));
  });

  it('changes nothing when join runs again: every step already done', async () => {
    const r = await cli(['-i', inventory, '--json', 'join']);
    expect(r.code).toBe(0);
    const res = result(r);
    expect(res.steps.filter((s) => s.status !== 'skipped')).toEqual([]);
    expect(res.steps.flatMap((s) => s.mutations)).toEqual([]);
    expect(res.steps.length).toBeGreaterThan(30);
    const audit = (await readFile(join(dir, 'audit.log'), 'utf8')).trim().split('\n');
    const runIds = new Set(audit.map((l) => (JSON.parse(l) as { runId: string }).runId));
    expect(runIds.size).toBe(1); // only the first join wrote anything
    figure('rerun ms', Math.round(r.ms));
  });
});
