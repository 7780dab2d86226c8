import { isAbsolute, join, dirname } from 'node:path';
import { LocalHost, type Host } from '@pe-stack/pe-host';
import type { Inventory } from '../inventory.js';
import { CommandDns } from './command.js';
import { HostsFileDns } from './hosts-file.js';
import { NsupdateDns } from './nsupdate.js';
import { ManualDns, type DnsProvider } from './provider.js';

export * from './provider.js';
export { HostsFileDns, setHostsEntry, hostReachable, type HostsFileNode } from './hosts-file.js';
export { NsupdateDns, parseTsigKey, type NsupdateOptions, type TsigKey } from './nsupdate.js';
export { CommandDns } from './command.js';

/**
 * The inventory's DNS provider for primary_cname. `host(name)` reaches a
 * node (masters and agents: the hosts-file provider edits every one);
 * `controller` runs nsupdate and hooks (default: this machine).
 */
export function dnsProvider(inv: Inventory, host: (name: string) => Host, controller?: Host): DnsProvider {
  const d = inv.dns;
  const local = () => controller ?? new LocalHost({ name: 'controller', redactor: inv.redactor });
  // a relative path is relative to the inventory file; a bare program name is looked up in PATH
  const rel = (p: string) => (isAbsolute(p) || !p.includes('/') ? p : join(dirname(inv.file), p));
  switch (d.provider) {
    case 'manual':
      return new ManualDns();
    case 'hosts-file':
      return new HostsFileDns(
        () => [...inv.masters, ...inv.agents].map((n) => ({ host: host(n.name), sudo: n.sudo })),
        inv.layout,
      );
    case 'nsupdate':
      return new NsupdateDns(local(), {
        server: d.server,
        zone: d.zone,
        keyFile: rel(d.key_file),
        ...(d.port ? { port: d.port } : {}),
        ...(d.ttl !== undefined ? { ttl: d.ttl } : {}),
      });
    case 'command':
      return new CommandDns(local(), [rel(d.command[0]!), ...d.command.slice(1)], (d.timeout ?? 60) * 1000);
  }
}
