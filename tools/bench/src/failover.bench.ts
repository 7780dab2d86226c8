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
 * the new CA and a catalog through puppet.lab.test. The new agent starts with
 * the cut as an agent daemon does (retrying every second: waitforcert and
 * runinterval 1, connect timeout 2 s) on the agent machine, which has run
 * before (its plugins are synced; a never-synced machine adds its plugin
 * download); its CSR is signed on arrival by the autosign policy
 * (`*.bench.lab.test`, set on the first primary; `standby` carries it to the
 * standby); the end is the catalog applied (its file names the certname).
 * The failover CLI is started with the cut (`--dead-after 2000`). Split into
 * detection/decision (cut to the first takeover step: the --dead-after
 * reachability wait, fence record, CA copy check), then the takeover steps
 * that run at once: PostgreSQL promote, CA takeover (the gate lifted by a
 * reload), DNS move; the takeover done (all three), and the agent's own part
 * after it (CSR, certificate, catalog, apply). The CLI goes on with the other
 * masters' follow-up meanwhile (failover_services_followup_s, failover_cli_s).
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
      resolve({
        code: err ? (typeof err.code === 'number' ? err.code : 1) : 0,
        stdout,
        ms: performance.now() - t0,
        steps: resultSteps(stdout),
      });
    });
  });
}
async function must(args: string[]): Promise<Awaited<ReturnType<typeof cli>>> {
  const r = await cli(args);
  if (r.code !== 0) throw new Error(`pe-cluster ${args.join(' ')} exited ${r.code}: ${r.stdout.slice(-1500)}`);
  return r;
}
/** The failover CLI with --json, streamed: when the first takeover step (promote, DNS, CA) started and when all three were done. */
function failoverStreaming(
  args: string[],
): Promise<{ code: number; stdout: string; ms: number; steps: Step[]; takeoverStart?: number; takeoverDone?: number }> {
  const t0 = performance.now();
  const want = new Set(['db-promote', 'dns-move', 'ca-enabled']);
  let takeoverStart: number | undefined;
  let takeoverDone: number | undefined;
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    let seen = 0;
    p.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      const lines = out.split('\n');
      for (const line of lines.slice(seen, -1)) {
        const m = /"type":"step-(start|done|skip)".*"id":"([^"]+)"/.exec(line);
        if (!m || !['db-promote', 'dns-move', 'ca-enabled'].includes(m[2]!)) continue;
        if (m[1] === 'start') takeoverStart ??= performance.now();
        else want.delete(m[2]!);
        if (want.size === 0) takeoverDone ??= performance.now();
      }
      seen = lines.length - 1;
    });
    p.on('exit', (code) => {
      resolve({
        code: code ?? 1,
        stdout: out,
        ms: performance.now() - t0,
        steps: resultSteps(out),
        takeoverStart,
        takeoverDone,
      });
    });
  });
}

const stepMs = (steps: Step[], ...ids: string[]) =>
  steps.filter((s) => ids.includes(s.id)).reduce((a, s) => a + (s.ms ?? 0), 0);

/**
 * A writer on `from`: one psql session through master.lab.test, one
 * autocommitted INSERT about every 5 ms (so rows are in flight when the power
 * goes), each acknowledged id printed at once (line-buffered). libpq's TCP
 * timeouts end the session within seconds of the cut instead of leaving it
 * waiting on a dead peer; the password is in root's ~/.pgpass there, not in argv.
 */
async function startWriter(lab: Lab, from: string, password: string): Promise<void> {
  await lab.exec(from, ['sh', '-c', 'umask 077 && cat > /root/.pgpass'], {
    input: `master.lab.test:5432:puppetdb:puppetdb:${password.replace(/[\\:]/g, '\\$&')}\n`,
  });
  await lab.exec(from, ['rm', '-f', '/tmp/rpo-acked']);
  const conn =
    'host=master.lab.test user=puppetdb dbname=puppetdb connect_timeout=3 keepalives_idle=1 keepalives_interval=1 keepalives_count=2 tcp_user_timeout=3000';
  const sql = 'INSERT INTO pe_bench_rpo DEFAULT VALUES RETURNING id;';
  const script = `(while :; do echo '${sql}'; sleep 0.005; done | stdbuf -oL psql '${conn}' -tAq >/tmp/rpo-acked 2>/tmp/rpo-writer.err) </dev/null >/dev/null 2>&1 &`;
  await lab.exec(from, ['sh', '-c', script]);
}
/** Acknowledged ids the writer printed, and how many of them `on` lacks; waits for the writer to end (its session to the dead primary fails). */
async function lost(lab: Lab, from: string, on: string): Promise<{ acked: number; lost: number }> {
  const writing = async () =>
    (await lab.exec(from, ['pgrep', '-f', '^psql host=master.lab.test'], { allowFailure: true })).code === 0;
  for (let i = 0; i < 60 && (await writing()); i++) await new Promise((r) => setTimeout(r, 500));
  await lab.exec(from, ['pkill', '-f', '^psql host=master.lab.test'], { allowFailure: true });
  const ids = (await lab.exec(from, ['cat', '/tmp/rpo-acked'])).stdout
    .split('\n')
    .filter((l) => /^\d+$/.test(l.trim()))
    .map(Number);
  const present = new Set(
    (
      await lab.ssh(on, [
        'runuser',
        '-u',
        'postgres',
        '--',
        'psql',
        '-tAc',
        "'SELECT id FROM pe_bench_rpo'",
        'puppetdb',
      ])
    ).stdout
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
    Object.assign(doc.vars, {
      journals: `${dir}/journal`,
      audit_log: `${dir}/audit.log`,
      backups: `${dir}/backups`,
      dns: { provider: 'hosts-file' },
    });
    const inv = join(dir, 'inventory.yaml');
    writeFileSync(inv, stringify(doc));
    const I = ['-i', inv, '--json'];
    await must([...I, 'join']);
    const pw =
      /password\s*=\s*(\S+)/.exec(
        (await lab.exec('primary', ['cat', '/etc/puppetdb/conf.d/database.ini'])).stdout,
      )?.[1] ?? '';
    await lab.ssh('primary', [
      'runuser',
      '-u',
      'postgres',
      '--',
      'psql',
      '-c',
      "'CREATE TABLE pe_bench_rpo (id bigserial PRIMARY KEY, at timestamptz DEFAULT now()); ALTER TABLE pe_bench_rpo OWNER TO puppetdb'",
      'puppetdb',
    ]);

    // the operator's autosign policy on the primary: the new agent of the RTO measure is let in by it (standby copies it)
    await lab.exec('primary', ['sh', '-c', 'echo "*.bench.lab.test" >> /etc/puppet/autosign.conf']);

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
    // the agents run before the cut (the existing agent's catalog; its machine's plugins synced)
    const before = await lab.ssh('agent1', ['puppet', 'agent', '-t'], { allowFailure: true, timeoutMs: 300_000 });
    if (before.code !== 0 && before.code !== 2)
      throw new Error(`agent1 failed before the cut: ${before.stderr.slice(-800)}`);
    await startWriter(lab, 'secondary2', pw);
    await new Promise((r) => setTimeout(r, 5_000));
    const certname = `agent${Date.now() % 100000}.bench.lab.test`;
    await lab.exec('agent1', ['rm', '-f', '/tmp/newagent.log']);
    const cut = performance.now();
    await lab.powerOff('secondary1');
    // a new agent from the moment of the cut, as a daemon retries: every second (waitforcert, runinterval) until
    // the CA signs its CSR (on arrival, by the autosign policy) and a master behind puppet.lab.test compiles its catalog
    await lab.exec('agent1', [
      'sh',
      '-c',
      `(puppet agent --no-daemonize --certname ${certname} --waitforcert 1 --runinterval 1 --http_connect_timeout 2 --http_keepalive_timeout 0 --logdest /tmp/newagent.log </dev/null >/dev/null 2>&1 &)`,
    ]);
    const agent = (async () => {
      while (performance.now() - cut < 300_000) {
        if (
          (await lab.exec('agent1', ['grep', '-qF', `for ${certname}`, '/tmp/lab-catalog'], { allowFailure: true }))
            .code === 0
        )
          return performance.now();
        await new Promise((r) => setTimeout(r, 200));
      }
      const log = (await lab.exec('agent1', ['tail', '-20', '/tmp/newagent.log'], { allowFailure: true })).stdout;
      throw new Error(`the new agent got no catalog within 300 s: ${log}`);
    })();
    const f = await failoverStreaming([...I, 'failover', '--to', fq('primary'), '--dead-after', '2000']);
    if (f.code !== 0) throw new Error(`pe-cluster failover exited ${f.code}: ${f.stdout.slice(-1500)}`);
    if (f.takeoverStart === undefined || f.takeoverDone === undefined)
      throw new Error('the failover finished without reporting the takeover steps');
    const end = await agent;
    await lab.exec('agent1', ['pkill', '-f', `certname ${certname}`], { allowFailure: true });
    const sync = await lost(lab, 'secondary2', 'primary');
    out['failover_rpo_sync_rows_lost'] = sync.lost;
    out['failover_rpo_sync_rows_acked'] = sync.acked;
    const steps = f.steps;
    out['failover_rto_s'] = (end - cut) / 1000;
    out['failover_rto_detect_decide_s'] = (f.takeoverStart - cut) / 1000;
    out['failover_rto_pg_promote_s'] = stepMs(steps, 'db-promote') / 1000;
    out['failover_rto_ca_takeover_s'] = stepMs(steps, 'ca-enabled') / 1000;
    out['failover_rto_dns_move_s'] = stepMs(steps, 'dns-move') / 1000;
    out['failover_rto_takeover_done_s'] = (f.takeoverDone - cut) / 1000;
    out['failover_rto_agent_after_takeover_s'] = (end - f.takeoverDone) / 1000;
    out['failover_services_followup_s'] =
      stepMs(steps, 'state.commit', 'follow.settings', 'follow.crl', 'follow.database', 'follow.puppetdb') / 1000;
    out['failover_cli_s'] = f.ms / 1000;
    return out;
  } finally {
    await lab.down();
  }
}
