import { readFileSync, writeFileSync } from 'node:fs';
import { stringify } from 'yaml';
import type { LabConfig } from './config.js';
import { clusterStateDir, hostDir, inventoryFile, keyFile, knownHostsFile } from './paths.js';
import { requireState } from './state.js';
import type { InventoryFiles } from './types.js';

/**
 * Writes the inventory (Bolt inventory v2 shape: groups of targets with `uri`,
 * `config.ssh`), the known_hosts that pins every host's key, and points at the
 * lab's private key. The CLI under test reads these.
 */
export function writeInventoryFiles(c: LabConfig): InventoryFiles {
  const s = requireState(c);
  const known: string[] = [];
  const hostKeys = new Map<string, string>();
  for (const h of s.hosts) {
    const pub = readFileSync(`${hostDir(c, h.name)}/fs/etc/ssh/ssh_host_ed25519_key.pub`, 'utf8')
      .trim()
      .split(/\s+/)
      .slice(0, 2)
      .join(' ');
    hostKeys.set(h.name, pub);
    known.push(`${h.fqdn},${h.name},${h.ip} ${pub}`);
  }
  writeFileSync(knownHostsFile(c), `${known.join('\n')}\n`, { mode: 0o644 });
  const target = (h: (typeof s.hosts)[number]) => ({
    name: h.fqdn,
    uri: h.fqdn,
    alias: [h.name],
    vars: { role: h.role, address: h.ip, host_key: hostKeys.get(h.name) },
  });
  const inv = {
    config: {
      transport: 'ssh',
      ssh: {
        user: 'root',
        'private-key': keyFile(c),
        'host-key-check': true,
        'known-hosts': knownHostsFile(c),
      },
    },
    vars: {
      lab_profile: s.profile,
      // pe-cluster's cluster keys: the inventory loads as is (`pe-cluster -i <lab inventory>`)
      cluster: 'lab',
      layout: s.profile === 'pe3' ? 'pe3' : 'debian',
      primary_cname: `master.${c.domain}`,
      general_cname: `puppet.${c.domain}`,
      // pe-cluster's journals, state (standby, fences) and backups belong to
      // this lab: a new lab starts without the last one's cluster state
      journals: `${clusterStateDir(c)}/journal`,
      backups: `${clusterStateDir(c)}/backups`,
      audit_log: `${clusterStateDir(c)}/audit.log`,
      // the lab's DNS is the hosts file of every host: a failover moves primary_cname there
      dns: { provider: 'hosts-file' },
    },
    groups: [
      { name: 'masters', targets: s.hosts.filter((h) => h.role !== 'agent').map(target) },
      { name: 'agents', targets: s.hosts.filter((h) => h.role === 'agent').map(target) },
    ],
  };
  writeFileSync(inventoryFile(c), `# Written by tools/lab (npm run lab -- inventory).\n${stringify(inv)}`);
  return { inventory: inventoryFile(c), privateKey: keyFile(c), knownHosts: knownHostsFile(c) };
}
