import { hostNs, type LabConfig } from './config.js';
import { bootHost, initPid } from './hosts.js';
import { setHostLink } from './network.js';
import { killNetns, killPid } from './processes.js';
import { assertMaySession } from './session.js';
import { findHost } from './state.js';

/** Faults a test injects: power cuts and network partitions, and their repair. */

/** A power cut: kills the host's PID namespace (and anything else in its network namespace). */
export async function powerOff(c: LabConfig, name: string): Promise<void> {
  assertMaySession(c);
  const h = findHost(c, name);
  const ns = hostNs(c, h.name);
  const init = initPid(c, h.name);
  if (init !== undefined) killPid(init);
  await killNetns(ns);
}

/** Boots a powered-off host again, from its disk state. */
export async function powerOn(c: LabConfig, name: string): Promise<void> {
  assertMaySession(c);
  const h = findHost(c, name);
  if (initPid(c, h.name) !== undefined) return;
  await killNetns(hostNs(c, h.name));
  await bootHost(c, h);
}

/** Link down between the host and the bridge: a network partition. */
export async function cut(c: LabConfig, name: string): Promise<void> {
  assertMaySession(c);
  await setHostLink(c, findHost(c, name), 'down');
}

export async function heal(c: LabConfig, name: string): Promise<void> {
  assertMaySession(c);
  await setHostLink(c, findHost(c, name), 'up');
}
