// Helpers for the lab tests (*.lab.test.ts), which run inside the lab's controller namespace.
import { SshHost } from '@pe-stack/pe-host';
import { useLab, type Lab } from '@pe-stack/lab';

export type { Lab };

/**
 * A lab of its own for a test file that changes hosts' identities: the lab
 * fixture's `useLab` (brought up unless the same profile/hosts/agents are up,
 * powered-off hosts powered on), plus the lab's inventory files. Its key
 * differs from other files' shapes, so their fixtures rebuild theirs.
 * Must run inside the controller namespace (npm run test:lab).
 */
export async function ownLab(profile: 'debian' | 'pe3', hosts: string[], agents: number): Promise<Lab> {
  const { lab } = await useLab({ profile, hosts, agents });
  await lab.writeInventory();
  return lab;
}

export function labHost(lab: Lab, name: string): SshHost {
  const h = lab.host(name);
  return new SshHost({
    name: h.fqdn,
    address: h.ip,
    user: 'root',
    privateKey: lab.keyFile,
    knownHosts: lab.knownHostsFile,
  });
}
