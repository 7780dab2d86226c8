// Helpers for the lab tests (*.lab.test.ts), which run inside the lab's controller namespace.
import { readFileSync, writeFileSync } from 'node:fs';
import { SshHost } from '@pe-stack/pe-host';
import { Lab } from '@pe-stack/lab';

export type { Lab };

/**
 * A lab of its own for a test file that changes hosts' identities: brought
 * up unless the same profile/hosts are up already under the same key, and
 * marked so that the shared lab fixture of other files rebuilds theirs.
 * Must run inside the controller namespace (npm run test:lab).
 */
export async function ownLab(profile: 'debian' | 'pe3', hosts: string[], agents: number): Promise<Lab> {
  const lab = new Lab();
  lab.assertInController();
  const key = JSON.stringify({ p: profile, h: hosts, a: agents, m: false });
  const keyFile = `${lab.config.stateDir}/fixture.key`;
  let cur: string | undefined;
  try {
    cur = readFileSync(keyFile, 'utf8');
  } catch {
    cur = undefined;
  }
  if (lab.state()?.phase !== 'up' || cur !== key) {
    await lab.down();
    await lab.up({ profile, hosts, agents, log: (l) => process.stderr.write(`lab: ${l}\n`) });
  }
  writeFileSync(keyFile, key);
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
