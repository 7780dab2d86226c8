import { isIpLiteral } from '@pe-stack/pe-host';
import { grantAccess, hostCidr } from './access.js';
import { editors, readText } from './editors.js';
import { DbReplicationError } from './errors.js';
import { asDbUser, bin, psql, query, quoteIdent, quoteLiteral, type PgInstance } from './instance.js';
import { clearStaleLock, fenceMarkerPath, startInstance } from './lifecycle.js';
import {
  ownConfigFiles,
  prepareReplicationSource,
  quoteConninfo,
  replicaIdent,
  replicationLag,
  waitForStreaming,
  type ReplicaOptions,
  type ReplicationLag,
  type ReplicationSource,
} from './replica.js';
import { randomPassword, scramVerifier } from './scram.js';

/** Why pg_rewind cannot be used on this (stopped) data directory, or undefined when it can. */
export async function rewindBlocker(target: PgInstance): Promise<string | undefined> {
  const host = target.host;
  if (!(await host.exists(`${target.dataDir}/PG_VERSION`, { sudo: true }))) return `${target.dataDir} holds no cluster`;
  if (!(await host.exists(bin(target, 'pg_rewind'), { sudo: true })))
    return `${bin(target, 'pg_rewind')} is not installed`;
  const r = await host.exec(asDbUser(target, [bin(target, 'pg_controldata'), '-D', target.dataDir]), {
    sudo: true,
    cwd: '/',
    readOnly: true,
    allowFailure: true,
    env: { LC_ALL: 'C' },
  });
  if (r.code !== 0) return `pg_controldata failed: ${r.stderr.trim()}`;
  const checksums = /Data page checksum version:\s+([1-9])/.test(r.stdout);
  const hints = /wal_log_hints setting:\s+on/.test(r.stdout);
  if (!checksums && !hints) return 'the cluster has neither data checksums nor wal_log_hints = on';
  return undefined;
}

export interface RewindResult {
  ms: number;
  rewindMs: number;
  lag: ReplicationLag;
}

/** The login role pg_rewind reads the source through, and its password (in memory only). */
interface RewindLogin {
  role: string;
  password: string;
}

/**
 * On the source: a login role (fresh random password) that can only call the
 * four file functions pg_rewind needs, never a superuser, and its pg_hba
 * record for the target's address.
 */
async function createRewindLogin(source: PgInstance, target: PgInstance, o: ReplicaOptions): Promise<RewindLogin> {
  const role = replicaIdent(o.name, 'pe_rewind_');
  const password = randomPassword();
  const verifier = scramVerifier(password);
  target.host.redactor.add(password);
  source.host.redactor.add(password).add(verifier);
  const exists = (await query(source, `SELECT 1 FROM pg_roles WHERE rolname = ${quoteLiteral(role)}`)).length > 0;
  const r = quoteIdent(role);
  await psql(
    source,
    `${exists ? 'ALTER' : 'CREATE'} ROLE ${r} WITH LOGIN NOSUPERUSER PASSWORD ${quoteLiteral(verifier)};
GRANT EXECUTE ON FUNCTION pg_catalog.pg_ls_dir(text, boolean, boolean) TO ${r};
GRANT EXECUTE ON FUNCTION pg_catalog.pg_stat_file(text, boolean) TO ${r};
GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text) TO ${r};
GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean) TO ${r};
`,
    { secrets: [password, verifier] },
  );
  await grantAccess(source, o.standbyAddress, [{ database: 'postgres', user: role }], {
    listen: o.listen ?? (isIpLiteral(o.primaryAddress) ? o.primaryAddress : '*'),
  });
  return { role, password };
}

/** The target's own configuration files (see ownConfigFiles) as they are now. */
async function readOwnConfig(target: PgInstance): Promise<Map<string, Buffer>> {
  const host = target.host;
  const keep = new Map<string, Buffer>();
  for (const f of ownConfigFiles(target))
    if (await host.exists(f, { sudo: true })) keep.set(f, await host.readFile(f, { sudo: true }));
  return keep;
}

/** pg_rewind from the source as the rewind login; the login is dropped again whatever happens. */
async function runPgRewind(
  target: PgInstance,
  source: PgInstance,
  login: RewindLogin,
  o: ReplicaOptions,
): Promise<void> {
  const conninfo = `host=${quoteConninfo(o.primaryAddress)} port=${source.port} user=${login.role} dbname=postgres`;
  const separateConf = !target.confFile.startsWith(`${target.dataDir}/`);
  try {
    await target.host.exec(
      asDbUser(target, [
        bin(target, 'pg_rewind'),
        '-D',
        target.dataDir,
        '--source-server',
        conninfo,
        ...(separateConf ? ['--config-file', target.confFile] : []),
      ]),
      {
        sudo: true,
        cwd: '/',
        env: { PGPASSWORD: login.password, PGAPPNAME: `${o.name}-rewind` },
        secrets: [login.password],
        timeoutMs: o.basebackupTimeoutMs ?? 3_600_000,
      },
    );
  } finally {
    await dropRewindRole(source, login.role, o.standbyAddress);
  }
}

/** Standby configuration: our replication role, slot and name (pg_rewind -R would write the rewind role's), and standby.signal. */
async function writeStandbyConfig(
  target: PgInstance,
  source: PgInstance,
  repl: ReplicationSource,
  o: ReplicaOptions,
): Promise<void> {
  const host = target.host;
  const auto = `${target.dataDir}/postgresql.auto.conf`;
  const doc = editors.conf((await host.exists(auto, { sudo: true })) ? await readText(host, auto) : '', auto);
  const primaryConninfo = `user=${repl.role} password=${quoteConninfo(repl.password)} host=${quoteConninfo(o.primaryAddress)} port=${source.port} application_name=${quoteConninfo(o.name)}`;
  doc.set('primary_conninfo', primaryConninfo);
  doc.set('primary_slot_name', repl.slot);
  await host.writeFile(auto, doc.toString(), {
    owner: target.osUser,
    mode: 0o600,
    backup: false,
    secrets: [repl.password, primaryConninfo],
  });
  await host.writeFile(`${target.dataDir}/standby.signal`, '', { owner: target.osUser, mode: 0o600, backup: false });
}

/**
 * Turns a stopped, diverged old primary into a standby of `source` with
 * pg_rewind: only the blocks that changed since the fork are copied. The
 * source is read through a login role that can only call the four file
 * functions pg_rewind needs (never a superuser), whose pg_hba record and role
 * are removed again afterwards. Throws when anything fails; the caller then
 * takes a fresh base backup.
 */
export async function rewindAsStandby(
  target: PgInstance,
  source: PgInstance,
  o: ReplicaOptions,
): Promise<RewindResult> {
  const t0 = performance.now();
  const host = target.host;
  const why = await rewindBlocker(target);
  if (why) throw new DbReplicationError(host.name, `pg_rewind cannot be used: ${why}.`);
  // a freshly promoted source only records its new timeline in pg_control at its next checkpoint; without
  // it pg_rewind reads the old timeline and answers "no rewind required", and the standby cannot follow
  await psql(source, 'CHECKPOINT;');
  const repl = await prepareReplicationSource(source, target, o);
  const login = await createRewindLogin(source, target, o);
  // pg_rewind makes the data directory a copy of the source's: keep this host's own configuration files
  const keep = await readOwnConfig(target);
  // the fence's standby.signal would stop pg_rewind's single-user crash recovery of a target that was
  // powered off ("standby mode is not supported by single-user servers"); the marker stays until the end
  await host.remove(`${target.dataDir}/standby.signal`, { sudo: true });
  await clearStaleLock(target);
  const r0 = performance.now();
  await runPgRewind(target, source, login, o);
  const rewindMs = performance.now() - r0;
  for (const [f, data] of keep) await host.writeFile(f, data, { backup: false });
  await writeStandbyConfig(target, source, repl, o);
  await host.remove(fenceMarkerPath(target), { sudo: true });
  await startInstance(target, { allowFenced: true });
  const streaming = await waitForStreaming(source, o.name, o.streamingTimeoutMs ?? 60_000);
  if (!streaming.ok)
    throw new DbReplicationError(host.name, `after pg_rewind the standby does not stream from ${source.host.name}.`);
  return { ms: performance.now() - t0, rewindMs, lag: await replicationLag(source, o.name) };
}

async function dropRewindRole(source: PgInstance, role: string, address: string): Promise<void> {
  const before = await readText(source.host, source.hbaFile);
  const doc = editors.hba(before, source.hbaFile);
  if (doc.remove({ database: 'postgres', user: role, address: hostCidr(address) })) {
    await source.host.writeFile(source.hbaFile, doc.toString(), { backup: true });
    await psql(source, 'SELECT pg_reload_conf();');
  }
  // the grants live in the postgres database's catalog: revoke them there (DROP OWNED), then drop the role
  if ((await query(source, `SELECT 1 FROM pg_roles WHERE rolname = ${quoteLiteral(role)}`)).length > 0) {
    await psql(source, `DROP OWNED BY ${quoteIdent(role)};\nDROP ROLE ${quoteIdent(role)};`);
  }
}
