import type { LabConfig } from './config.js';
import { LabError } from './errors.js';
import { ENV_PATH, initPid } from './hosts.js';
import { assertInController } from './network.js';
import { keyFile, knownHostsFile } from './paths.js';
import { findHost } from './state.js';
import { run, type RunResult } from './sys.js';
import type { ExecOptions } from './types.js';

/** Commands inside a host: through its namespaces (nsenter, no ssh), or over ssh from the controller. */

/** argv that runs a command inside a host's namespaces (no ssh), with a clean root environment. */
export function execArgv(c: LabConfig, name: string, argv: readonly string[]): string[] {
  const h = findHost(c, name);
  const pid = initPid(c, h.name);
  if (pid === undefined)
    throw new LabError('E_LAB_HOST_OFF', 'the host is powered off.', {
      host: h.name,
      hint: `Power it on with \`npm run lab -- power-on ${h.name}\`.`,
    });
  return [
    'nsenter',
    '--target',
    String(pid),
    '--mount',
    '--uts',
    '--net',
    '--pid',
    '--root',
    '--wd',
    '--',
    '/usr/bin/env',
    '-i',
    `PATH=${ENV_PATH}`,
    'HOME=/root',
    'USER=root',
    'LOGNAME=root',
    'LANG=C.UTF-8',
    ...argv,
  ];
}

/** Runs a command inside a host without ssh. */
export async function execInHost(
  c: LabConfig,
  name: string,
  argv: readonly string[],
  opts: ExecOptions = {},
): Promise<RunResult> {
  const a = execArgv(c, name, argv);
  return run(a[0]!, a.slice(1), {
    allowFailure: opts.allowFailure,
    timeoutMs: opts.timeoutMs ?? 600_000,
    input: opts.input,
  });
}

/** The ssh client argv for a host (run it inside the controller namespace). */
export function sshArgv(c: LabConfig, name: string, command: readonly string[] = []): string[] {
  const h = findHost(c, name);
  return [
    'ssh',
    '-i',
    keyFile(c),
    '-o',
    `UserKnownHostsFile=${knownHostsFile(c)}`,
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    'BatchMode=yes',
    '-o',
    'ConnectTimeout=10',
    '-o',
    'LogLevel=ERROR',
    `root@${h.fqdn}`,
    ...command,
  ];
}

/** Runs a command on a host over ssh; only from inside the controller namespace. */
export async function sshToHost(
  c: LabConfig,
  name: string,
  command: readonly string[],
  opts: { allowFailure?: boolean; timeoutMs?: number } = {},
): Promise<RunResult> {
  assertInController(c);
  const a = sshArgv(c, name, command);
  return run(a[0]!, a.slice(1), { allowFailure: opts.allowFailure, timeoutMs: opts.timeoutMs ?? 120_000 });
}
