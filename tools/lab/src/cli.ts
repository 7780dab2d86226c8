#!/usr/bin/env node
/**
 * npm run lab -- <verb>: the lab's command line. See tools/lab/README.md.
 */
import { PeError } from '@pe-stack/pe-host';
import { PROFILES, ctlNs, type ProfileName } from './config.js';
import { LabError } from './errors.js';
import { Lab } from './lab.js';
import { checkPrerequisites } from './prereq.js';
import { runInherit } from './sys.js';

const USAGE = `usage: npm run lab -- <verb>
  up --profile light|debian|pe3 [--hosts NAME,...] [--agents N] [--with-mcollective]
  down                      take everything down (namespaces, route, mounts, processes)
  status [--json]           hosts, addresses, services, memory
  ssh HOST [CMD...]         ssh into a host (from the controller namespace)
  exec HOST CMD...          run a command inside a host, without ssh
  power-off HOST | power-on HOST
  cut HOST | heal HOST      link down / up
  inventory                 write the inventory, private key and known_hosts
  run -- CMD...             run CMD inside the controller namespace`;

function parseFlags(args: string[]): { flags: Map<string, string | true>; rest: string[] } {
  const flags = new Map<string, string | true>();
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a.startsWith('--')) {
      const [k, v] = a.slice(2).split('=', 2) as [string, string | undefined];
      if (v !== undefined) flags.set(k, v);
      else if (['json', 'with-mcollective'].includes(k)) flags.set(k, true);
      else {
        const next = args[++i];
        if (next === undefined) throw new LabError('E_LAB_USAGE', `--${k} needs a value.\n${USAGE}`);
        flags.set(k, next);
      }
    } else rest.push(a);
  }
  return { flags, rest };
}

const mb = (b: number): string => `${(b / 1048576).toFixed(0)} MB`;

type Log = (line: string) => void;
type Verb = (lab: Lab, args: string[], log: Log) => Promise<number>;

async function main(argv: string[]): Promise<number> {
  const [verb, ...args] = argv;
  const lab = new Lab();
  const log: Log = (l) => process.stderr.write(`lab: ${l}\n`);
  if (!verb || verb === 'help' || verb === '--help') {
    process.stdout.write(`${USAGE}\n`);
    return verb ? 0 : 2;
  }
  await checkPrerequisites('light');
  const run = VERBS.get(verb);
  if (!run) throw new LabError('E_LAB_USAGE', `unknown verb "${verb}".\n${USAGE}`);
  return run(lab, args, log);
}

/** The HOST argument of a verb that takes one. */
function hostArg(verb: string, args: readonly string[]): string {
  const h = args[0];
  if (!h) throw new LabError('E_LAB_USAGE', `${verb} needs a HOST.\n${USAGE}`);
  return h;
}

/** A verb that does one thing to one host and prints nothing. */
const onHost =
  (verb: string, act: (lab: Lab, host: string) => Promise<void>): Verb =>
  async (lab, args) => {
    await act(lab, hostArg(verb, args));
    return 0;
  };

const VERBS = new Map<string, Verb>([
  ['up', upVerb],
  ['down', downVerb],
  ['status', statusVerb],
  ['ssh', sshVerb],
  ['exec', execVerb],
  ['power-off', onHost('power-off', (lab, h) => lab.powerOff(h))],
  ['power-on', onHost('power-on', (lab, h) => lab.powerOn(h))],
  ['cut', onHost('cut', (lab, h) => lab.cut(h))],
  ['heal', onHost('heal', (lab, h) => lab.heal(h))],
  ['inventory', inventoryVerb],
  ['run', runVerb],
]);

async function upVerb(lab: Lab, args: string[], log: Log): Promise<number> {
  const { flags } = parseFlags(args);
  const profile = String(flags.get('profile') ?? '') as ProfileName;
  if (!PROFILES.includes(profile))
    throw new LabError('E_LAB_USAGE', `--profile must be one of ${PROFILES.join(', ')}.\n${USAGE}`);
  const hosts = flags.get('hosts');
  const agents = flags.get('agents');
  await lab.up({
    profile,
    hosts:
      typeof hosts === 'string'
        ? hosts
            .split(',')
            .map((h) => h.trim())
            .filter(Boolean)
        : undefined,
    agents: typeof agents === 'string' ? Number(agents) : undefined,
    withMcollective: flags.get('with-mcollective') === true,
    log,
  });
  const f = await lab.writeInventory();
  process.stdout.write(`lab up. inventory: ${f.inventory}\n`);
  return 0;
}

async function downVerb(lab: Lab): Promise<number> {
  const r = await lab.down();
  const kept = r.controllerKept ? ' (controller kept: run from inside it)' : '';
  process.stdout.write(`lab down: ${r.namespaces.length} namespaces removed, ${r.killed} processes killed${kept}.\n`);
  return 0;
}

async function statusVerb(lab: Lab, args: string[]): Promise<number> {
  const s = await lab.status();
  if (parseFlags(args).flags.get('json')) {
    process.stdout.write(`${JSON.stringify(s, null, 2)}\n`);
    return 0;
  }
  const phase = s.up ? `up (${s.profile})` : lab.state() ? 'booting' : 'down';
  process.stdout.write(
    `lab: ${phase}; controller ${s.controller ? 'present' : 'absent'}; route ${s.route ? 'present' : 'absent'}; ` +
      `memory ${mb(s.memoryBytes)}\n`,
  );
  for (const h of s.hosts) {
    const svc = h.services.map((x) => `${x.unit}${x.active ? '' : '(stopped)'}`).join(' ');
    process.stdout.write(
      `  ${h.name.padEnd(12)} ${h.ip.padEnd(12)} ${h.role.padEnd(9)} power:${h.power.padEnd(3)} ` +
        `link:${h.link.padEnd(4)} ${mb(h.memoryBytes).padStart(8)}  ${svc}\n`,
    );
  }
  if (s.loadBalancer.running) {
    const backends = s.loadBalancer.backends.map((b) => `${b.name}=${b.status}`).join(' ');
    process.stdout.write(`  load balancer ${lab.config.net}.1:8140: ${backends}\n`);
  }
  return 0;
}

async function sshVerb(lab: Lab, args: string[]): Promise<number> {
  const host = hostArg('ssh', args);
  const a = lab.sshArgv(host, args.slice(1));
  if (lab.inController()) return runInherit(a[0]!, a.slice(1));
  await lab.ensureController();
  return runInherit('ip', ['netns', 'exec', ctlNs(lab.config), ...a]);
}

async function execVerb(lab: Lab, args: string[]): Promise<number> {
  const host = hostArg('exec', args);
  if (args.length < 2) throw new LabError('E_LAB_USAGE', `exec needs a command.\n${USAGE}`);
  const a = lab.execArgv(host, args.slice(1));
  return runInherit(a[0]!, a.slice(1));
}

async function inventoryVerb(lab: Lab): Promise<number> {
  const f = await lab.writeInventory();
  process.stdout.write(`inventory: ${f.inventory}\nprivate key: ${f.privateKey}\nknown_hosts: ${f.knownHosts}\n`);
  return 0;
}

/** Runs CMD in the controller namespace, holding the lab for the session; takes out what it put in. */
async function runVerb(lab: Lab, args: string[], log: Log): Promise<number> {
  const cmd = args[0] === '--' ? args.slice(1) : args;
  if (cmd.length === 0) throw new LabError('E_LAB_USAGE', `run needs a command after --.\n${USAGE}`);
  if (lab.inController()) return runInherit(cmd[0]!, cmd.slice(1));
  const release = await lab.acquireSession({ log });
  process.on('exit', release);
  const made = await lab.ensureController();
  let code: number;
  try {
    process.env.PE_STACK_LAB_HOME_PID = String(process.pid);
    code = await runInherit('ip', ['netns', 'exec', ctlNs(lab.config), ...cmd]);
  } finally {
    // What `run` put in, it takes out: hosts left up by CMD, the controller, then the route.
    if (made.createdController || made.createdRoute) {
      const st = lab.state();
      if (!st) await lab.down();
    }
  }
  return code;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof PeError) {
      process.stderr.write(`lab: ${err.message} [${err.code}]\n`);
      process.exit(err.code === 'E_LAB_USAGE' ? 2 : 1);
    }
    process.stderr.write(`lab: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
