import { applyEdits, buildCommand, type Edit, type Layout } from '@pe-stack/pe-config-files';
import type { Inventory } from '../inventory.js';
import type { Remote } from './cluster-access.js';

export async function reload(at: Remote, layout: Layout, service: string): Promise<void> {
  await at.host.exec(buildCommand(layout, 'serviceReload', { service }), { sudo: at.sudo, timeoutMs: 180_000 });
}

export async function restart(at: Remote, layout: Layout, service: string): Promise<void> {
  await at.host.exec(buildCommand(layout, 'serviceRestart', { service }), { sudo: at.sudo, timeoutMs: 10 * 60_000 });
}

export async function serviceActive(at: Remote, layout: Layout, service: string): Promise<boolean> {
  const r = await at.host.exec(buildCommand(layout, 'serviceStatus', { service }), {
    sudo: at.sudo,
    readOnly: true,
    allowFailure: true,
    timeoutMs: 30_000,
  });
  return r.code === 0;
}

/** Restart a running service, start a stopped one. */
export async function restartOrStart(at: Remote, layout: Layout, service: string): Promise<void> {
  const verb = (await serviceActive(at, layout, service)) ? 'serviceRestart' : 'serviceStart';
  await at.host.exec(buildCommand(layout, verb, { service }), { sudo: at.sudo, timeoutMs: 10 * 60_000 });
}

/** Apply edits; reload puppetserver when they changed something and it runs. */
export async function editAndReload(at: Remote, inv: Inventory, edits: Edit[]): Promise<boolean> {
  const rs = await applyEdits(at.host, edits, { sudo: at.sudo });
  const changed = rs.some((r) => r.changed);
  // a stopped puppetserver reads the files when it starts (a host back from a power cut may not run it yet)
  if (changed && (await serviceActive(at, inv.layout, inv.layout.services.puppetserver)))
    await reload(at, inv.layout, inv.layout.services.puppetserver);
  return changed;
}

/** PuppetDB on this host answers a query that needs its database (undefined when it is not running here or there is no curl). */
export async function puppetdbAnswers(at: Remote, layout: Layout): Promise<boolean | undefined> {
  if (!(await serviceActive(at, layout, layout.services.puppetdb))) return undefined;
  const r = await at.host.exec(
    ['curl', '-sf', '-o', '/dev/null', '--max-time', '10', 'http://127.0.0.1:8080/pdb/query/v4/nodes?limit=1'],
    { readOnly: true, allowFailure: true, timeoutMs: 20_000 },
  );
  if (r.code === 127) return undefined;
  return r.code === 0;
}
