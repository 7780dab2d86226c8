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

async function main(argv: string[]): Promise<number> {
  const [verb, ...args] = argv;
  const lab = new Lab();
  const log = (l: string) => process.stderr.write(`lab: ${l}\n`);
  if (!verb || verb === 'help' || verb === '--help') {
    process.stdout.write(`${USAGE}\n`);
    return verb ? 0 : 2;
  }
  await checkPrerequisites('light');
  const one = (): string => {
    const h = args[0];
    if (!h) throw new LabError('E_LAB_USAGE', `${verb} needs a HOST.\n${USAGE}`);
    return h;
  };
  switch (verb) {
    case 'up': {
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
    case 'down': {
      const r = await lab.down();
      process.stdout.write(
        `lab down: ${r.namespaces.length} namespaces removed, ${r.killed} processes killed${r.controllerKept ? ' (controller kept: run from inside it)' : ''}.\n`,
      );
      return 0;
    }
    case 'status': {
      const s = await lab.status();
      if (parseFlags(args).flags.get('json')) {
        process.stdout.write(`${JSON.stringify(s, null, 2)}\n`);
        return 0;
      }
      process.stdout.write(
        `lab: ${s.up ? `up (${s.profile})` : lab.state() ? 'booting' : 'down'}; controller ${s.controller ? 'present' : 'absent'}; route ${s.route ? 'present' : 'absent'}; memory ${mb(s.memoryBytes)}\n`,
      );
      for (const h of s.hosts) {
        const svc = h.services.map((x) => `${x.unit}${x.active ? '' : '(stopped)'}`).join(' ');
        process.stdout.write(
          `  ${h.name.padEnd(12)} ${h.ip.padEnd(12)} ${h.role.padEnd(9)} power:${h.power.padEnd(3)} link:${h.link.padEnd(4)} ${mb(h.memoryBytes).padStart(8)}  ${svc}\n`,
        );
      }
      if (s.loadBalancer.running) {
        process.stdout.write(
          `  load balancer ${lab.config.net}.1:8140: ${s.loadBalancer.backends.map((b) => `${b.name}=${b.status}`).join(' ')}\n`,
        );
      }
      return 0;
    }
    case 'ssh': {
      const host = one();
      const a = lab.sshArgv(host, args.slice(1));
      if (lab.inController()) return runInherit(a[0]!, a.slice(1));
      await lab.ensureController();
      return runInherit('ip', ['netns', 'exec', ctlNs(lab.config), ...a]);
    }
    case 'exec': {
      const host = one();
      if (args.length < 2) throw new LabError('E_LAB_USAGE', `exec needs a command.\n${USAGE}`);
      const a = lab.execArgv(host, args.slice(1));
      return runInherit(a[0]!, a.slice(1));
    }
    case 'power-off':
      await lab.powerOff(one());
      return 0;
    case 'power-on':
      await lab.powerOn(one());
      return 0;
    case 'cut':
      await lab.cut(one());
      return 0;
    case 'heal':
      await lab.heal(one());
      return 0;
    case 'inventory': {
      const f = await lab.writeInventory();
      process.stdout.write(`inventory: ${f.inventory}\nprivate key: ${f.privateKey}\nknown_hosts: ${f.knownHosts}\n`);
      return 0;
    }
    case 'run': {
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
    default:
      throw new LabError('E_LAB_USAGE', `unknown verb "${verb}".\n${USAGE}`);
  }
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
