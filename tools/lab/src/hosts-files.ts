import { mkdirSync, writeFileSync } from 'node:fs';
import { ctlIp, ctlNs, generalCname, hostNs, primaryCname, type LabConfig } from './config.js';
import type { HostRecord, LabState } from './types.js';

/**
 * The lab's DNS: one /etc/hosts per namespace (`/etc/netns/<ns>/hosts`, which
 * `ip netns exec` and the hosts' init bind-mount over /etc/hosts).
 */

/** Writes a file keeping its inode: `ip netns exec` bind-mounts these files, so a rename would not be seen. */
export function writeInPlace(path: string, text: string): void {
  writeFileSync(path, text, { flag: 'w' });
}

export function hostsFile(c: LabConfig, hosts: readonly HostRecord[], cnameHost: string | undefined): string {
  const lines = [
    '# Written by tools/lab.',
    '127.0.0.1\tlocalhost',
    '::1\tlocalhost ip6-localhost ip6-loopback',
    `${ctlIp(c)}\tctl.${c.domain} ctl ${generalCname(c)}`,
    ...hosts.map((h) => `${h.ip}\t${h.fqdn} ${h.name}`),
  ];
  const cn = hosts.find((h) => h.name === cnameHost);
  if (cn) lines.push(`${cn.ip}\t${primaryCname(c)}`);
  return `${lines.join('\n')}\n`;
}

/** The same hosts file in the controller's and every host's namespace. */
export function writeAllHostsFiles(c: LabConfig, s: LabState): void {
  const text = hostsFile(c, s.hosts, s.cnameHost);
  for (const ns of [ctlNs(c), ...s.hosts.map((h) => hostNs(c, h.name))]) {
    mkdirSync(`/etc/netns/${ns}`, { recursive: true });
    writeInPlace(`/etc/netns/${ns}/hosts`, text);
  }
}
