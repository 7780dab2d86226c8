import type { Host } from '@pe-stack/pe-host';
import { readText } from './editors.js';
import {
  renderServiceFile,
  type DbCredentials,
  type ServiceDbFile,
  type WriteCredentialsOptions,
} from './credentials.js';
import { query, quoteLiteral, type PgInstance } from './instance.js';

/**
 * Read-only checks for a step engine's `check(ctx)`: each answers whether the
 * matching operation would change nothing, so `--resume` can skip it.
 */

/** Every record grantAccess would add is in effect (pg_hba_file_rules, no error); see access.ts. */
export { accessGranted, type AccessGrantedOptions } from './access.js';

/** The secondary's files already say what writeCredentials would write. */
export async function credentialsCurrent(
  secondary: Host,
  files: readonly ServiceDbFile[],
  creds: readonly DbCredentials[],
  opts: WriteCredentialsOptions,
): Promise<boolean> {
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
export async function replicaStreaming(
  primary: PgInstance,
  name: string,
  opts: { synchronous?: boolean } = {},
): Promise<boolean> {
  const rows = await query<{ sync_state: string }>(
    primary,
    `SELECT sync_state FROM pg_stat_replication WHERE application_name = ${quoteLiteral(name)} AND state = 'streaming'`,
  );
  return rows.length > 0 && (!opts.synchronous || rows.some((r) => r.sync_state === 'sync'));
}
