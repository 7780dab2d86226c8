import { spawn } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parse, stringify } from 'yaml';
import { SshHost, type Host } from '@pe-stack/pe-host';
import { Cluster, loadInventory } from '@pe-stack/pe-cluster';
import { Lab } from '@pe-stack/lab';
import { round } from './stats.js';

/**
 * pe-cluster join on the lab's pe3 simulator (PE 3.x tree, real OpenSSL CA and
 * PostgreSQL, recording stand-ins), over real SSH from the controller:
 *
 * - the smallest cluster (a primary and one secondary), then one secondary
 *   of a 22-master cluster joined: wall time, the time spent waiting on the hosts (the
 *   union of the intervals of every remote call: commands, SFTP reads and
 *   writes), and the tool's own overhead = wall - that union;
 * - SSH round trips of that join: commands (SshHost `stats.commands`, one
 *   channel each), file operations (SFTP), connections;
 * - then the other N secondaries (default 20) joined in one run with
 *   `--concurrency N`, against the single join.
 * Targets: overhead < 2 s, <= 40 round trips, N in parallel <= 2x one.
 * Also the machine's busy CPU seconds during the single join and the N joins
 * (/proc/stat: the tool, sshd and the simulator's stand-ins, as every lab
 * master shares this machine's cores) and the wall that CPU allows at best.
 *
 * Its own lab (namespaces `labc-*`, 10.83.0.0/24, /var/lib/pe-stack-lab-benchc)
 * so it never touches a lab someone has up; the measuring half runs inside
 * that lab's controller (`lab run`), as every client must. Prerequisite set
 * here as an operator would: the primary's max_connections raised to 1200
 * (22 PE 3 masters' PuppetDB and console pools). `PE_BENCH_CLUSTER_N` sets N;
 * `PE_BENCH_CLUSTER_TRACE=FILE` appends every join's remote calls (step, host,
 * operation, path or the command's first words, masked; ms) to FILE as JSON lines.
 */
const CFG = { name: 'labc', net: '10.83.0', stateDir: '/var/lib/pe-stack-lab-benchc' };
const LAB_CLI = fileURLToPath(new URL('../../lab/dist/cli.js', import.meta.url));

export async function benchCluster(): Promise<Record<string, number>> {
  const self = fileURLToPath(import.meta.url);
  const env = {
    ...process.env,
    PE_STACK_LAB_NAME: CFG.name,
    PE_STACK_LAB_NET: CFG.net,
    PE_STACK_LAB_DIR: CFG.stateDir,
  };
  const child = spawn(process.execPath, [LAB_CLI, 'run', '--', process.execPath, self, '--measure'], {
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((r) => child.on('exit', r));
  const last = out.trim().split('\n').at(-1) ?? '';
  if (code !== 0 || !last.startsWith('{')) throw new Error(`cluster bench failed (exit ${code}): ${out.slice(-2000)}`);
  return JSON.parse(last) as Record<string, number>;
}

/** Total length of the union of [start, end] intervals. */
function unionMs(iv: [number, number][]): number {
  const s = [...iv].sort((a, b) => a[0] - b[0]);
  let total = 0;
  let cur: [number, number] | undefined;
  for (const [a, b] of s) {
    if (!cur || a > cur[1]) {
      if (cur) total += cur[1] - cur[0];
      cur = [a, b];
    } else cur[1] = Math.max(cur[1], b);
  }
  if (cur) total += cur[1] - cur[0];
  return total;
}

const TRACE = process.env.PE_BENCH_CLUSTER_TRACE;

/** A call's first argument for the trace: a path, or a command's first words (never stdin, env or data). */
function traceArg(a: unknown): string {
  if (typeof a === 'string') return a;
  if (Array.isArray(a))
    return a
      .slice(0, 4)
      .map((x: unknown) =>
        typeof x === 'object' && x !== null && 'path' in x ? String((x as { path: unknown }).path) : String(x),
      )
      .join(' ')
      .slice(0, 120);
  return '';
}

const FILE_OPS = new Set(['readFile', 'writeFile', 'exists', 'stat', 'remove', 'mkdir']);
// readFiles and writeFiles (many files in one command) are counted with the commands (SshHost stats.commands), and timed

/** A Cluster whose SshHosts are timed: every remote call's interval, file operations counted. */
function timedCluster(inv: Awaited<ReturnType<typeof loadInventory>>) {
  const intervals: [number, number][] = [];
  const ssh: SshHost[] = [];
  let fileOps = 0;
  /** remote calls per step id (meaningful when the steps run one at a time) */
  const perStep = new Map<string, number>();
  const current = { step: '(none)' };
  /** every remote call (PE_BENCH_CLUSTER_TRACE): step, host, operation, its first argument, duration */
  const trace: { step: string; host: string; op: string; arg: string; ms: number }[] = [];
  const cluster = new Cluster(inv, {
    hostFactory: (node, redactor) => {
      const h = new SshHost({ ...node.ssh, redactor });
      ssh.push(h);
      return new Proxy(h, {
        get(target, prop, recv) {
          const v = Reflect.get(target, prop, recv) as unknown;
          if (typeof v !== 'function' || prop === 'close')
            return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
          return (...args: unknown[]) => {
            const r = (v as (...a: unknown[]) => unknown).apply(target, args);
            if (!(r instanceof Promise)) return r;
            if (FILE_OPS.has(String(prop))) fileOps++;
            if (FILE_OPS.has(String(prop)) || prop === 'exec' || prop === 'readFiles' || prop === 'writeFiles')
              perStep.set(current.step, (perStep.get(current.step) ?? 0) + 1);
            const t0 = performance.now();
            const step = current.step;
            return r.finally(() => {
              const t1 = performance.now();
              intervals.push([t0, t1]);
              if (TRACE)
                trace.push({
                  step,
                  host: h.name,
                  op: String(prop),
                  arg: h.redactor.redact(traceArg(args[0])),
                  ms: Math.round(t1 - t0),
                });
            });
          };
        },
      }) as Host;
    },
  });
  return { cluster, intervals, ssh, perStep, current, trace, fileOps: () => fileOps };
}

async function joinTimed(inventory: string, hosts: string[], concurrency: number) {
  const inv = await loadInventory(inventory);
  const t = timedCluster(inv);
  const cpu0 = busyCpuS();
  const t0 = performance.now();
  try {
    // wall time per phase: a parallel group, or the run of consecutive single steps with the same id prefix
    const phaseOf = new Map<string, string>();
    const spans = new Map<string, [number, number]>();
    const r = await t.cluster.join(hosts, {
      concurrency,
      onEvent: (e) => {
        if (e.type === 'flow-start') for (const s of e.steps) phaseOf.set(s.key, s.group ?? s.id.replace(/:.*/, ''));
        if (e.type === 'step-start') t.current.step = e.id.replace(/:.*/, '');
        if (e.type === 'step-start' || e.type === 'step-done' || e.type === 'step-skip' || e.type === 'step-fail') {
          const ph = phaseOf.get(e.key) ?? e.id;
          const now = performance.now() - t0;
          const sp = spans.get(ph);
          spans.set(ph, sp ? [Math.min(sp[0], now), Math.max(sp[1], now)] : [now, now]);
        }
      },
    });
    const wall = performance.now() - t0;
    const cpu = busyCpuS() - cpu0;
    if (TRACE) appendFileSync(TRACE, `${JSON.stringify({ join: hosts.length, concurrency, calls: t.trace })}\n`);
    if (r.status !== 'ok') throw new Error(`join ${hosts.length} failed: ${r.error?.code} ${r.error?.message}`);
    return {
      wall,
      cpu,
      waits: unionMs(t.intervals),
      commands: t.ssh.reduce((n, h) => n + h.stats.commands, 0),
      connects: t.ssh.reduce((n, h) => n + h.stats.connects, 0),
      fileOps: t.fileOps(),
      steps: r.steps.length,
      perStep: [...t.perStep.entries()].sort((a, b) => b[1] - a[1]),
      phases: [...spans.entries()].map(([k, [a, b]]) => `${k} ${round((b - a) / 1000, 1)}`).join(', '),
    };
  } finally {
    await t.cluster.close();
  }
}

/** CPU seconds the whole machine has spent busy (every core: user, nice, system, irq, softirq, steal), from /proc/stat. */
function busyCpuS(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = line;
  return (user + nice + system + irq + softirq + steal) / 100; // USER_HZ
}

function usedMb(): number {
  const info = readFileSync('/proc/meminfo', 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB$`, 'm').exec(info)?.[1] ?? 0);
  return (kb('MemTotal') - kb('MemAvailable')) / 1024;
}

/** The lab's inventory with journals and audit log in `dir`; the primary's max_connections raised first (an operator's prerequisite). */
async function labInventory(lab: Lab, dir: string, maxConnections: number): Promise<string> {
  await lab.exec('primary', [
    'sed',
    '-i',
    `s/^max_connections = [0-9]*/max_connections = ${maxConnections}/`,
    '/opt/puppet/var/lib/pgsql/9.2/data/postgresql.conf',
  ]);
  await lab.exec('primary', ['service', 'pe-postgresql', 'restart'], { timeoutMs: 120_000 });
  const files = await lab.writeInventory();
  const inv = parse(readFileSync(files.inventory, 'utf8')) as { vars: Record<string, unknown> };
  inv.vars.journals = join(dir, 'journal');
  inv.vars.audit_log = join(dir, 'audit.log');
  mkdirSync(dir, { recursive: true });
  const inventory = join(dir, 'inventory.yaml');
  writeFileSync(inventory, stringify(inv));
  return inventory;
}

/** The measuring half: inside the bench lab's controller. */
async function measure(): Promise<Record<string, number>> {
  const n = Number(process.env.PE_BENCH_CLUSTER_N ?? 20);
  const lab = new Lab(CFG);
  lab.assertInController();
  const out: Record<string, number> = {};
  const dir = mkdtempSync(join(tmpdir(), 'pe-bench-cluster-'));
  try {
    await lab.down();
    // the smallest cluster: a primary and one secondary, steps one at a time (remote calls attributed to steps)
    await lab.up({
      profile: 'pe3',
      hosts: ['primary', 'secondary1'],
      agents: 0,
      log: (l) => process.stderr.write(`lab: ${l}\n`),
    });
    const small = await labInventory(lab, join(dir, 'small'), 200);
    const min = await joinTimed(small, [lab.host('secondary1').fqdn], 1);
    out['cluster join 2-master cluster wall s'] = round(min.wall / 1000, 2);
    out['cluster join 2-master cluster tool overhead s'] = round((min.wall - min.waits) / 1000, 2);
    out['cluster join 2-master cluster ssh commands'] = min.commands;
    out['cluster join 2-master cluster sftp file ops'] = min.fileOps;
    process.stderr.write(
      `cluster bench: remote calls per step (2 masters): ${min.perStep.map(([k, v]) => `${k} ${v}`).join(', ')}\n`,
    );
    await lab.down();
    const names = Array.from({ length: n + 1 }, (_, i) => `secondary${i + 1}`);
    const base = usedMb();
    const t0 = performance.now();
    await lab.up({
      profile: 'pe3',
      hosts: ['primary', ...names],
      agents: 0,
      log: (l) => process.stderr.write(`lab: ${l}\n`),
    });
    out[`cluster lab up pe3 ${n + 2} masters s`] = round((performance.now() - t0) / 1000);
    const inventory = await labInventory(lab, join(dir, 'big'), 1200);
    const fqdn = (h: string) => lab.host(h).fqdn;

    const one = await joinTimed(inventory, [fqdn('secondary1')], 4);
    out['cluster join 1 secondary wall s'] = round(one.wall / 1000, 2);
    out['cluster join 1 secondary remote waits s'] = round(one.waits / 1000, 2);
    out['cluster join 1 secondary tool overhead s'] = round((one.wall - one.waits) / 1000, 2);
    out['cluster join 1 secondary ssh commands'] = one.commands;
    out['cluster join 1 secondary sftp file ops'] = one.fileOps;
    out['cluster join 1 secondary ssh connections'] = one.connects;
    out['cluster join 1 secondary steps'] = one.steps;
    process.stderr.write(`cluster bench: phases of 1 join (s): ${one.phases}\n`);
    const again = await joinTimed(inventory, [fqdn('secondary1')], 4);
    out['cluster rejoin (all done) 1 secondary wall s'] = round(again.wall / 1000, 2);
    out['cluster rejoin (all done) ssh commands'] = again.commands;

    process.stderr.write(`cluster bench so far: ${JSON.stringify(out)}\n`);
    const many = await joinTimed(inventory, names.slice(1).map(fqdn), n);
    process.stderr.write(`cluster bench: phases of ${n} joins in parallel (s): ${many.phases}\n`);
    out[`cluster join ${n} secondaries in parallel wall s`] = round(many.wall / 1000, 2);
    out[`cluster join ${n} secondaries tool overhead s`] = round((many.wall - many.waits) / 1000, 2);
    out[`cluster join ${n} secondaries ssh commands`] = many.commands;
    out[`cluster join ${n} in parallel / 1 (ratio)`] = round(many.wall / one.wall, 2);
    // the lab's masters share this machine's cores: what the joins cost in CPU (tool, sshd, the simulator's stand-ins),
    // and the shortest wall that CPU allows on these cores
    const cores = availableParallelism();
    out['cluster join 1 secondary machine CPU s'] = round(one.cpu, 1);
    out[`cluster join ${n} secondaries machine CPU s`] = round(many.cpu, 1);
    out[`cluster join ${n} secondaries CPU-bound floor s (CPU / ${cores} cores)`] = round(many.cpu / cores, 1);
    out[`cluster lab memory in use above start MB (${n + 2} pe3 masters, joined)`] = round(usedMb() - base, 0);
    return out;
  } finally {
    await lab.down().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv.includes('--measure') && process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  measure().then(
    (r) => process.stdout.write(`${JSON.stringify(r)}\n`),
    (e: unknown) => {
      process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(1);
    },
  );
}
