import { readFileSync } from 'node:fs';
import { ctlNs, hostNs, vethName, type LabConfig } from './config.js';
import { execInHost } from './exec.js';
import { loadBalancerBackends, type Backend } from './load-balancer.js';
import { routePresent } from './network.js';
import { haproxyPidFile } from './paths.js';
import { readState } from './state.js';
import { namespaceInit, netnsInode, pidsInNetns, rssBytes, runRoot } from './sys.js';
import type { HostRecord, HostStatus, LabStatus } from './types.js';

/** What is up: the controller, the route, every host (power, link, services, memory), the load balancer. */
export async function labStatus(c: LabConfig): Promise<LabStatus> {
  const s = readState(c);
  const hosts: HostStatus[] = [];
  let links = '';
  if (netnsInode(ctlNs(c)) !== undefined)
    links = (await runRoot('ip', ['-n', ctlNs(c), '-o', 'link', 'show'], { allowFailure: true })).stdout;
  for (const h of s?.hosts ?? []) hosts.push(await hostStatus(c, h, links));
  let backends: Backend[] = [];
  let running: boolean;
  try {
    backends = await loadBalancerBackends(c);
    running = true;
  } catch {
    running = false;
  }
  const lbPids = running ? [Number(readFileSync(haproxyPidFile(c), 'utf8').trim())] : [];
  return {
    up: s?.phase === 'up',
    profile: s?.profile,
    controller: netnsInode(ctlNs(c)) !== undefined,
    route: await routePresent(c),
    hosts,
    loadBalancer: { running, backends },
    memoryBytes: hosts.reduce((a, h) => a + h.memoryBytes, 0) + rssBytes(lbPids),
  };
}

/** One host's status; `links` is the controller's `ip -o link show`. */
async function hostStatus(c: LabConfig, h: HostRecord, links: string): Promise<HostStatus> {
  const pids = pidsInNetns(hostNs(c, h.name));
  const on = namespaceInit(pids) !== undefined;
  const m = new RegExp(`: ${vethName(c, h.index)}@[^:]+: <([^>]*)>`).exec(links);
  const services: HostStatus['services'] = [];
  if (on) {
    const r = await execInHost(c, h.name, ['systemctl', 'list-units'], { allowFailure: true, timeoutMs: 20_000 });
    for (const line of r.stdout.split('\n')) {
      const [unit, act, en] = line.trim().split(/\s+/);
      if (unit && act)
        services.push({
          unit: unit.replace(/\.service$/, ''),
          active: act === 'active',
          enabled: en === 'enabled',
        });
    }
  }
  return {
    name: h.name,
    fqdn: h.fqdn,
    ip: h.ip,
    role: h.role,
    power: on ? 'on' : 'off',
    link: m ? (m[1]!.split(',').includes('UP') ? 'up' : 'down') : 'absent',
    services,
    memoryBytes: rssBytes(pids),
  };
}
