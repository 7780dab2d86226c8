import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { bridge, ctlIp, ctlNs, subnet, vethName, type LabConfig } from './config.js';
import { LabError } from './errors.js';
import { hostsFile, writeInPlace } from './hosts-files.js';
import { killNetns } from './processes.js';
import { readState } from './state.js';
import { homePid, inNetns, netnsInode, runRoot } from './sys.js';
import type { HostRecord } from './types.js';

/**
 * The controller namespace (a bridge every host hangs on, where clients and
 * the load balancer run) and the root-namespace unreachable route that keeps
 * the lab's subnet from ever leaving the machine.
 */

export async function routePresent(c: LabConfig): Promise<boolean> {
  const r = await runRoot('ip', ['route', 'show', 'exact', subnet(c)], { allowFailure: true });
  return r.stdout.includes('unreachable');
}

/** Puts the root-namespace unreachable route in (first), then the controller namespace and its bridge. */
export async function ensureController(c: LabConfig): Promise<{ createdRoute: boolean; createdController: boolean }> {
  const createdRoute = await ensureRoute(c);
  const ns = ctlNs(c);
  let createdController = false;
  mkdirSync(`/etc/netns/${ns}`, { recursive: true });
  if (!existsSync(`/etc/netns/${ns}/hosts`))
    writeInPlace(`/etc/netns/${ns}/hosts`, hostsFile(c, readState(c)?.hosts ?? [], readState(c)?.cnameHost));
  if (!existsSync(`/etc/netns/${ns}/resolv.conf`)) writeInPlace(`/etc/netns/${ns}/resolv.conf`, `search ${c.domain}\n`);
  if (netnsInode(ns) === undefined) {
    await runRoot('ip', ['netns', 'add', ns]);
    createdController = true;
  }
  const links = await runRoot('ip', ['-n', ns, '-o', 'link', 'show'], { allowFailure: true });
  if (!links.stdout.includes(` ${bridge(c)}:`)) {
    await runRoot('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    await runRoot('ip', ['-n', ns, 'link', 'add', bridge(c), 'type', 'bridge']);
    await runRoot('ip', ['-n', ns, 'addr', 'add', `${ctlIp(c)}/24`, 'dev', bridge(c)]);
    await runRoot('ip', ['-n', ns, 'link', 'set', bridge(c), 'up']);
  }
  return { createdRoute, createdController };
}

/** The unreachable route for the lab's subnet; refuses a subnet the machine already routes. True when added. */
async function ensureRoute(c: LabConfig): Promise<boolean> {
  const route = await runRoot('ip', ['route', 'show', 'exact', subnet(c)], { allowFailure: true });
  if (route.stdout.includes('unreachable')) return false;
  if (route.stdout.trim()) {
    throw new LabError(
      'E_LAB_SUBNET_IN_USE',
      `the machine already routes ${subnet(c)} (${route.stdout.trim()}); the lab will not share it.`,
      {
        hint: 'Choose another subnet with PE_STACK_LAB_NET=10.x.y.',
      },
    );
  }
  await runRoot('ip', ['route', 'add', 'unreachable', subnet(c)]);
  return true;
}

/** True when this process runs inside the controller namespace (where clients must run). */
export function inController(c: LabConfig): boolean {
  return inNetns(ctlNs(c));
}

/** Throws unless this process runs in the controller namespace: a client outside would route out of the machine. */
export function assertInController(c: LabConfig): void {
  if (!inController(c)) {
    throw new LabError(
      'E_LAB_OUTSIDE_CONTROLLER',
      `this process is not in the controller namespace ${ctlNs(c)}, so it must not connect to lab addresses.`,
      {
        hint: 'Run it through `npm run lab -- run -- <command>`.',
      },
    );
  }
}

/** The link between a host and the bridge, up or down (down: a network partition). */
export async function setHostLink(c: LabConfig, h: HostRecord, state: 'up' | 'down'): Promise<void> {
  await runRoot('ip', ['-n', ctlNs(c), 'link', 'set', vethName(c, h.index), state]);
}

/**
 * The controller's ends of the hosts' veth pairs. A deleted host namespace's
 * pair goes away only when the kernel frees the namespace, which can lag
 * `ip netns del`, so an `up` right after a `down` inside a run would find
 * the old pair ("RTNETLINK answers: File exists").
 */
export async function removeControllerVeths(c: LabConfig): Promise<void> {
  const ctl = ctlNs(c);
  if (netnsInode(ctl) === undefined) return;
  const out = (await runRoot('ip', ['-n', ctl, '-o', 'link', 'show', 'type', 'veth'], { allowFailure: true })).stdout;
  const prefix = `${c.name}v`;
  for (const line of out.split('\n')) {
    const name = /^\d+:\s+([^:@\s]+)/.exec(line)?.[1];
    if (name?.startsWith(prefix)) await runRoot('ip', ['-n', ctl, 'link', 'del', name], { allowFailure: true });
  }
}

/**
 * Removes the controller namespace and then the route (the route comes out last). Refuses from inside the
 * controller.
 */
export async function removeController(c: LabConfig): Promise<void> {
  const ctl = ctlNs(c);
  if (inController(c)) throw new LabError('E_LAB_USAGE', 'cannot remove the controller namespace from inside it.');
  await killNetns(ctl);
  if (netnsInode(ctl) !== undefined) await runRoot('ip', ['netns', 'del', ctl]);
  rmSync(`/etc/netns/${ctl}`, { recursive: true, force: true });
  try {
    if (readdirSync('/etc/netns').length === 0) rmSync('/etc/netns', { recursive: true, force: true });
  } catch {
    // absent
  }
  await unmountNetnsDirIfEmpty();
  if (await routePresent(c)) await runRoot('ip', ['route', 'del', 'unreachable', subnet(c)]);
}

/** `ip netns add` bind-mounts /run/netns on itself; once no namespace is left, that mount goes too. */
async function unmountNetnsDirIfEmpty(): Promise<void> {
  let left: string[];
  try {
    left = readdirSync(`/proc/${homePid()}/root/run/netns`);
  } catch {
    return;
  }
  if (left.length > 0) return;
  const mounts = readFileSync(`/proc/${homePid()}/mountinfo`, 'utf8');
  if (mounts.split('\n').some((l) => l.split(' ')[4] === '/run/netns')) {
    await runRoot('umount', ['/run/netns'], { allowFailure: true });
  }
}
