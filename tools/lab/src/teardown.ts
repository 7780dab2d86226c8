import { existsSync, readdirSync, rmSync, rmdirSync } from 'node:fs';
import { ctlNs, type LabConfig } from './config.js';
import { hostsFile, writeInPlace } from './hosts-files.js';
import { stopLoadBalancer } from './load-balancer.js';
import { inController, removeController, removeControllerVeths } from './network.js';
import { mountPointsFile, stateFile } from './paths.js';
import { killNetns } from './processes.js';
import { assertMaySession } from './session.js';
import { homePid, runRoot } from './sys.js';
import { createdMountPoints } from './templates.js';
import type { DownReport } from './types.js';

/** Every namespace of this lab that exists now, whatever state file says. */
export async function leftoverNamespaces(c: LabConfig): Promise<string[]> {
  const dir = `/proc/${homePid()}/root/run/netns`;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    names = [];
  }
  return names.filter((n) => n.startsWith(`${c.name}-`));
}

/**
 * Takes the lab down: kills every process of every host namespace, deletes
 * the namespaces, the per-netns /etc files and the host disks. From the
 * root namespace it also removes the controller and, last, the route; from
 * inside the controller (a test run) it keeps those for `run` to remove.
 */
export async function down(c: LabConfig, opts: { keepController?: boolean } = {}): Promise<DownReport> {
  const ctl = ctlNs(c);
  assertMaySession(c);
  const keepController = opts.keepController ?? inController(c);
  await stopLoadBalancer(c);
  const namespaces = await leftoverNamespaces(c);
  let killed = 0;
  const hostNamespaces = namespaces.filter((n) => n !== ctl);
  for (const ns of hostNamespaces) killed += await killNetns(ns);
  for (const ns of hostNamespaces) await runRoot('ip', ['netns', 'del', ns], { allowFailure: true });
  for (const d of netnsEtcDirs(c)) if (d !== ctl) rmSync(`/etc/netns/${d}`, { recursive: true, force: true });
  removeHostFiles(c);
  if (!keepController) {
    await removeController(c);
  } else {
    if (existsSync(`/etc/netns/${ctl}/hosts`)) writeInPlace(`/etc/netns/${ctl}/hosts`, hostsFile(c, [], undefined));
    await removeControllerVeths(c);
  }
  return { namespaces: keepController ? hostNamespaces : namespaces, killed, controllerKept: keepController };
}

/** The host disks, the mount points `up` made, the state file and the load balancer's files. */
function removeHostFiles(c: LabConfig): void {
  rmSync(`${c.stateDir}/hosts`, { recursive: true, force: true });
  for (const p of createdMountPoints(c)) {
    try {
      rmdirSync(p);
    } catch {
      // not empty or already gone: leave it
    }
  }
  rmSync(mountPointsFile(c), { force: true });
  rmSync(stateFile(c), { force: true });
  rmSync(`${c.stateDir}/haproxy`, { recursive: true, force: true });
}

function netnsEtcDirs(c: LabConfig): string[] {
  try {
    return readdirSync('/etc/netns').filter((n) => n.startsWith(`${c.name}-`));
  } catch {
    return [];
  }
}
