import { execFile, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { Lab } from '@pe-stack/lab';

/**
 * Failover RTO and RPO on a real debian lab of its own (namespaces `labf-*`,
 * 10.81.0.0/24, /var/lib/pe-stack-lab-failover; 3 masters + 1 agent), the
 * pe-cluster CLI as a child process (build first: packages/pe-cluster/dist).
 * Run inside a controller: `node tools/lab/dist/cli.js run -- npm run bench -- failover`
 * with PE_STACK_LAB_NAME=labf PE_STACK_LAB_NET=10.81.0 PE_STACK_LAB_DIR=/var/lib/pe-stack-lab-failover.
 *
 * RTO: power cut of the primary -> a new agent has a certificate signed by
 * the new CA and a catalog through puppet.lab.test. The agent starts as soon
 * as the CLI reports the takeover done (PostgreSQL promoted, primary_cname
 * moved, the CA signing), as an operator's agents would retry; the CLI goes
 * on with the other masters' follow-up meanwhile (reported as failover_cli_s).
 * Split into
 * detection/decision (CLI start to `failover.decide` done, including the
 * --dead-after reachability wait and the flow build), PostgreSQL promote,
 * CA takeover (fence record + copy check + CA enabled by reload), DNS move,
 * service follow-up (other masters' settings/CRL/database checks), and the
 * new agent itself (CSR, sign, catalog).
 * RPO: rows a client had committed (acknowledged) on the primary that are
 * missing after the failover, with an asynchronous and with a synchronous standby.
 */
const CLI = fileURLToPath(new URL('../../../packages/pe-cluster/dist/cli.js', import.meta.url));
const fq = (h: string) => `${h}.lab.test`;

interface Step {
  id: string;
  status: string;
  ms?: number;
}
/** The steps of the final result line of a --json run (none when it did not finish). */
function resultSteps(stdout: string): Step[] {
  try {
    return (JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as { steps?: Step[] }).steps ?? [];
  } catch {
    return [];
  }
}
function cli(args: string[]): Promise<{ code: number; stdout: string; ms: number; steps: Step[] }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { maxBuffer: 64 << 20, timeout: 30 * 60_000 }, (err, stdout) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, ms: performance.now() - t0, steps: resultSteps(stdout) });
    });
  });
}
async function must(args: string[]): Promise<Awaited<ReturnType<typeof cli>>> {
  const r = await cli(args);
  if (r.code !== 0) throw new Error(`pe-cluster ${args.join(' ')} exited ${r.code}: ${r.stdout.slice(-1500)}`);
  return r;
}
/** The failover CLI with --json; `onTakeover` fires once the takeover steps (promote, DNS, CA) are all done. */
function failoverStreaming(args: string[], onTakeover: () => void): Promise<{ code: number; stdout: string; ms: number; steps: Step[] }> {
  const t0 = performance.now();
  const want = new Set(['db-promote', 'dns-move', 'ca-enabled']);
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    let fired = false;
    p.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      if (fired) return;
      for (const line of out.split('\n')) {
        const m = /"type":"step-(done|skip)".*"id":"([^"]+)"/.exec(line);
        if (m) want.delete(m[2]!);
      }
      if (want.size === 0) {
        fired = true;
        onTakeover();
      }
    });
    p.on('exit', (code) => {
      resolve({ code: code ?? 1, stdout: out, ms: performance.now() - t0, steps: resultSteps(out) });
    });
  });
}

const stepMs = (steps: Step[], ...ids: string[]) => steps.filter((s) => ids.includes(s.id)).reduce((a, s) => a + (s.ms ?? 0), 0);

/** A writer on `from`: one psql session through master.lab.test, one autocommitted INSERT per line, each acknowledged id printed. */
async function startWriter(lab: Lab, from: string, password: string): Promise<void> {
  await lab.ssh(from, ['rm', '-f', '/tmp/rpo-acked']);
  const sql = "INSERT INTO pe_bench_rpo DEFAULT VALUES RETURNING id;";
  const script = `seq 1 200000 | sed 's/.*/${sql}/' | PGPASSWORD='${password}' psql -h master.lab.test -U puppetdb -d puppetdb -tAq > /tmp/rpo-acked 2>/dev/null &`;
  await lab.exec(from, ['sh', '-c', script]);
}
async function lost(lab: Lab, from: string, on: string): Promise<{ acked: number; lost: number }> {
  const ids = (await lab.exec(from, ['cat', '/tmp/rpo-acked'])).stdout.split('\n').filter((l) => /^\d+$/.test(l.trim())).map(Number);
  await lab.exec(from, ['sh', '-c', 'pkill -f "[p]sql -h master.lab.test" || true']);
  const present = new Set(
    (await lab.ssh(on, ['runuser', '-u', 'postgres', '--', 'psql', '-tAc', "'SELECT id FROM pe_bench_rpo'", 'puppetdb'])).stdout
      .split('\n')
      .filter(Boolean)
      .map(Number),
  );
  return { acked: ids.length, lost: ids.filter((i) => !present.has(i)).length };
}

export async function benchFailover(): Promise<Record<string, number>> {
  const lab = new Lab({ name: 'labf', net: '10.81.0', stateDir: '/var/lib/pe-stack-lab-failover' });
  lab.assertInController();
  const out: Record<string, number> = {};
  await lab.down();
  try {
    await lab.up({ profile: 'debian', hosts: ['primary', 'secondary1', 'secondary2'], agents: 1 });
    const files = await lab.writeInventory();
    const dir = await mkdtemp(join(tmpdir(), 'pe-bench-failover-'));
    const doc = parse(readFileSync(files.inventory, 'utf8')) as { vars: Record<string, unknown> };
    Object.assign(doc.vars, { journals: `${dir}/journal`, audit_log: `${dir}/audit.log`, backups: `${dir}/backups`, dns: { provider: 'hosts-file' } });
    const inv = join(dir, 'inventory.yaml');
    writeFileSync(inv, stringify(doc));
    const I = ['-i', inv, '--json'];
    await must([...I, 'join']);
    const pw = /password\s*=\s*(\S+)/.exec((await lab.exec('primary', ['cat', '/etc/puppetdb/conf.d/database.ini'])).stdout)?.[1] ?? '';
    await lab.ssh('primary', ['runuser', '-u', 'postgres', '--', 'psql', '-c', "'CREATE TABLE pe_bench_rpo (id bigserial PRIMARY KEY, at timestamptz DEFAULT now()); ALTER TABLE pe_bench_rpo OWNER TO puppetdb'", 'puppetdb']);

    // ---- asynchronous standby: RPO ----
    await must([...I, 'standby', fq('secondary1')]);
    await startWriter(lab, 'secondary2', pw);
    await new Promise((r) => setTimeout(r, 5_000));
    await lab.powerOff('primary');
    await must([...I, 'failover', '--to', fq('secondary1'), '--dead-after', '2000', '--accept-data-loss']);
    const a = await lost(lab, 'secondary2', 'secondary1');
    out['failover_rpo_async_rows_lost'] = a.lost;
    out['failover_rpo_async_rows_acked'] = a.acked;

    // ---- back to a synchronous pair: primary rejoins as the standby of secondary1 ----
    await lab.powerOn('primary');
    await must([...I, 'rejoin', fq('primary')]);
    await must([...I, 'standby', fq('primary'), '--sync']);

    // ---- synchronous standby: RPO and the RTO split ----
    await startWriter(lab, 'secondary2', pw);
    await new Promise((r) => setTimeout(r, 5_000));
    const cut = performance.now();
    await lab.powerOff('secondary1');
    const certname = `bench${Date.now() % 100000}.lab.test`;
    let tAgent = 0;
    let end = 0;
    let agentDone: Promise<void> | undefined;
    const newAgent = async () => {
      tAgent = performance.now();
      await lab.ssh('agent1', ['puppet', 'ssl', 'bootstrap', '--certname', certname, '--waitforcert', '0', '--http_keepalive_timeout', '0'], { allowFailure: true, timeoutMs: 120_000 });
      await lab.ssh('primary', ['puppetserver', 'ca', 'sign', '--certname', certname], { timeoutMs: 120_000 });
      const run = await lab.ssh('agent1', ['puppet', 'agent', '-t', '--certname', certname, '--http_keepalive_timeout', '0'], { allowFailure: true, timeoutMs: 300_000 });
      if (run.code !== 0 && run.code !== 2) throw new Error(`the new agent got no catalog: ${run.stderr.slice(-800)}`);
      end = performance.now();
    };
    const f = await failoverStreaming([...I, 'failover', '--to', fq('primary'), '--dead-after', '2000'], () => (agentDone = newAgent()));
    if (f.code !== 0) throw new Error(`pe-cluster failover exited ${f.code}: ${f.stdout.slice(-1500)}`);
    if (!agentDone) throw new Error('the failover finished without reporting the takeover steps');
    await agentDone;
    const sync = await lost(lab, 'secondary2', 'primary');
    out['failover_rpo_sync_rows_lost'] = sync.lost;
    out['failover_rpo_sync_rows_acked'] = sync.acked;
    const steps = f.steps;
    const inSteps = steps.reduce((x, st) => x + (st.ms ?? 0), 0);
    out['failover_rto_s'] = (end - cut) / 1000;
    out['failover_rto_detect_decide_s'] = (f.ms - inSteps + stepMs(steps, 'preflight.ssh', 'failover.decide')) / 1000;
    out['failover_rto_pg_promote_s'] = stepMs(steps, 'db-promote') / 1000;
    out['failover_rto_ca_takeover_s'] = stepMs(steps, 'old.fence-recorded', 'ca-copy-verified', 'ca-from-backup', 'ca-enabled') / 1000;
    out['failover_rto_dns_move_s'] = stepMs(steps, 'dns-move') / 1000;
    out['failover_rto_services_s'] = stepMs(steps, 'state.commit', 'follow.settings', 'follow.crl', 'follow.database', 'follow.puppetdb') / 1000;
    out['failover_takeover_to_agent_start_s'] = (tAgent - cut) / 1000;
    out['failover_rto_new_agent_s'] = (end - tAgent) / 1000;
    out['failover_cli_s'] = f.ms / 1000;
    return out;
  } finally {
    await lab.down();
  }
}
