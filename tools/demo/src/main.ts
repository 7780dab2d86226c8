/**
 * The demo (`npm run demo`, root): the README's first command. Inside the
 * lab's controller namespace it brings up the `debian` lab (a primary and two
 * secondaries, each a standalone puppetserver + puppetdb + PostgreSQL master
 * of its own, and an agent), then drives the real `pe-cluster` CLI as an
 * operator would: plan, join, agent runs through puppet.lab.test, status,
 * standby, a power cut of the primary, failover, a new agent, rejoin of the
 * old primary, status; prints a timing table and takes the lab down.
 *
 * PE_STACK_DEMO_KEEP=1 leaves the lab up at the end (take it down with
 * `npm run lab -- down`).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Lab } from '@pe-stack/lab';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const cli = `${root}packages/pe-cluster/dist/cli.js`;
const timings: [string, number][] = [];
const say = (s: string) => process.stdout.write(`\n== ${s}\n`);

async function phase<T>(name: string, fn: () => Promise<T>): Promise<T> {
  say(name);
  const t0 = performance.now();
  try {
    return await fn();
  } finally {
    timings.push([name, (performance.now() - t0) / 1000]);
  }
}

/** Runs pe-cluster with the operator's view (progress on the terminal); returns its exit code. */
function peCluster(inventory: string, args: string[], allowed: number[] = [0]): Promise<number> {
  return new Promise((resolve, reject) => {
    process.stdout.write(`$ pe-cluster ${args.join(' ')}\n`);
    const child = spawn(process.execPath, [cli, '-i', inventory, ...args], { stdio: 'inherit' });
    child.once('error', reject);
    child.once('exit', (code) => {
      const c = code ?? 1;
      if (allowed.includes(c)) resolve(c);
      else reject(new Error(`pe-cluster ${args.join(' ')} exited ${c}`));
    });
  });
}

async function agentRun(lab: Lab, agent: string): Promise<string> {
  const r = await lab.ssh(agent, ['puppet', 'agent', '--test', '--detailed-exitcodes'], {
    allowFailure: true,
    timeoutMs: 300_000,
  });
  // --detailed-exitcodes: 0 no change, 2 changes applied; 1/4/6 are failures
  if (![0, 2].includes(r.code ?? 1))
    throw new Error(`puppet agent on ${agent} failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
  // the lab's site.pp writes who compiled the catalog into /tmp/lab-catalog (the run prints it only when it changed)
  const file = await lab.ssh(agent, ['cat', '/tmp/lab-catalog'], { allowFailure: true });
  const compiled = /compiled by (\S+)/i.exec(file.stdout)?.[1] ?? 'unknown';
  process.stdout.write(`${agent}: catalog applied, compiled by ${compiled}\n`);
  return compiled;
}

const lab = new Lab();
lab.assertInController();
const keep = process.env.PE_STACK_DEMO_KEEP === '1';
let failed = false;
try {
  await phase('lab up: debian, primary + secondary1 + secondary2, 2 agents', () =>
    lab.up({
      profile: 'debian',
      hosts: ['primary', 'secondary1', 'secondary2'],
      agents: 2,
      log: (l) => process.stdout.write(`lab: ${l}\n`),
    }),
  );
  const { inventory } = await lab.writeInventory();
  process.stdout.write(`inventory: ${inventory}\n`);

  await phase('plan: what join would change (dry run)', () =>
    peCluster(inventory, ['plan', 'join', 'secondary1.lab.test', 'secondary2.lab.test']),
  );
  await phase('join secondary1 and secondary2', () =>
    peCluster(inventory, ['join', 'secondary1.lab.test', 'secondary2.lab.test']),
  );
  await phase('join again: nothing to do', () =>
    peCluster(inventory, ['join', 'secondary1.lab.test', 'secondary2.lab.test']),
  );
  await phase('agent runs through puppet.lab.test (load balancer)', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) seen.add(await agentRun(lab, 'agent1'));
    process.stdout.write(`catalogs compiled by: ${[...seen].join(', ')}\n`);
  });
  await phase('status', () => peCluster(inventory, ['status']));

  await phase('standby: secondary1 becomes the synchronous warm standby', () =>
    peCluster(inventory, ['standby', 'secondary1.lab.test', '--sync']),
  );
  await phase('power cut on the primary', () => lab.powerOff('primary'));
  await phase('failover --to secondary1', () => peCluster(inventory, ['failover', '--to', 'secondary1.lab.test']));
  await phase('a new agent gets its certificate from the new CA and a catalog', () => agentRun(lab, 'agent2'));
  await phase('the existing agent keeps working', () => agentRun(lab, 'agent1'));
  await phase('power the old primary on, then rejoin it as a secondary', async () => {
    await lab.powerOn('primary');
    await peCluster(inventory, ['rejoin', 'primary.lab.test']);
  });
  await phase('status after failover and rejoin', () => peCluster(inventory, ['status']));
} catch (e) {
  failed = true;
  process.stderr.write(`\ndemo failed: ${(e as Error).message}\n`);
} finally {
  if (!keep) await phase('lab down', () => lab.down({ keepController: true }).then(() => undefined));
  say('timings');
  const width = Math.max(...timings.map(([n]) => n.length));
  for (const [n, s] of timings) process.stdout.write(`${n.padEnd(width)}  ${s.toFixed(1).padStart(7)} s\n`);
}
process.exit(failed ? 1 : 0);
