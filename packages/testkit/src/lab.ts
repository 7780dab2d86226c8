// Helpers for the lab tests (*.lab.test.ts), which run inside the lab's controller namespace.
import { SshHost, type Redactor } from '@pe-stack/pe-host';
import type { Layout } from '@pe-stack/pe-config-files';
import { leaveLab, useLab, type Lab, type UpOptions, type UseLabOptions } from '@pe-stack/lab';

export type { Lab };
export { FRESH_STAGE, LAB_SHAPES } from '@pe-stack/lab';
export { leaveLab };

/**
 * The lab fixture's `useLab` (a lab of this shape in a stage `use.accepts`
 * names, or a fresh one; powered-off hosts powered on), plus the lab's
 * inventory files. Must run inside the controller namespace (npm run test:lab).
 */
export async function ownLab(shape: Omit<UpOptions, 'log'>, use: UseLabOptions = {}): Promise<Lab> {
  const { lab } = await useLab(shape, use);
  await lab.writeInventory();
  return lab;
}

export function labHost(lab: Lab, name: string, redactor?: Redactor): SshHost {
  const h = lab.host(name);
  return new SshHost({
    name: h.fqdn,
    address: h.ip,
    user: 'root',
    privateKey: lab.keyFile,
    knownHosts: lab.knownHostsFile,
    ...(redactor ? { redactor } : {}),
  });
}

/** The lab's masters as concern packages take them: certname, an SSH host, the layout. */
export function labMasters(
  lab: Lab,
  names: readonly string[],
  layout: Layout,
  redactor?: Redactor,
): { fqdn: string; host: SshHost; layout: Layout }[] {
  return names.map((n) => ({ fqdn: lab.host(n).fqdn, host: labHost(lab, n, redactor), layout }));
}
