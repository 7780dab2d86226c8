import type { Host } from '@pe-stack/pe-host';
import { hbaRecord, hbaRulesAndMethods, type AccessGrant } from './access.js';
import { readText } from './editors.js';
import { renderServiceFile, type DbCredentials, type ServiceDbFile, type WriteCredentialsOptions } from './credentials.js';
import { query, quoteLiteral, type PgInstance } from './instance.js';

/**
 * Read-only checks for a step engine's `check(ctx)`: each answers whether the
 * matching operation would change nothing, so `--resume` can skip it.
 */

/** Every record grantAccess would add is in effect (pg_hba_file_rules, no error). */
export async function accessGranted(primary: PgInstance, address: string, grants: readonly AccessGrant[]): Promise<boolean> {
  const { rules, methods } = await hbaRulesAndMethods(primary, grants);
  return grants.every((g) => {
    const rec = hbaRecord(g, address, methods.get(g.user));
    const [ip] = rec.address!.split('/');
    return rules.some((r) => r.error === null && r.type === 'host' && r.database?.length === 1 && r.database[0] === rec.database && r.user_name?.length === 1 && r.user_name[0] === rec.user && r.address === ip && r.auth_method === rec.method);
  });
}

/** The secondary's files already say what writeCredentials would write. */
export async function credentialsCurrent(secondary: Host, files: readonly ServiceDbFile[], creds: readonly DbCredentials[], opts: WriteCredentialsOptions): Promise<boolean> {
  for (const f of files) {
    const c = creds.find((x) => x.service === f.service);
    if (!c) return false;
    if (!(await secondary.exists(f.path, { sudo: true }))) return false;
    const current = await readText(secondary, f.path);
    if (renderServiceFile(f, current, c, opts.server, opts.port ?? c.port) !== current) return false;
  }
  return true;
}

/** The standby is connected and streaming (and, when asked, synchronous). */
export async function replicaStreaming(primary: PgInstance, name: string, opts: { synchronous?: boolean } = {}): Promise<boolean> {
  const rows = await query<{ sync_state: string }>(primary, `SELECT sync_state FROM pg_stat_replication WHERE application_name = ${quoteLiteral(name)} AND state = 'streaming'`);
  return rows.length > 0 && (!opts.synchronous || rows.some((r) => r.sync_state === 'sync'));
}
