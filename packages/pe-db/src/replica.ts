import { backupPath, isIpLiteral } from '@pe-stack/pe-host';
import { grantAccess, hostCidr, setParameters } from './access.js';
import { editors, readText } from './editors.js';
import { DbConfigError, DbReplicationError } from './errors.js';
import {
  asDbUser,
  bin,
  isInRecovery,
  requireVersion,
  psql,
  query,
  queryOne,
  quoteIdent,
  quoteLiteral,
  waitFor,
  type PgInstance,
} from './instance.js';
import { startInstance, stopInstance } from './lifecycle.js';
import { randomPassword, scramVerifier } from './scram.js';

export interface ReplicaOptions {
  /** The standby's name: its application_name, and the base of its slot and role names. */
  name: string;
  /** The primary's address or name as the standby reaches it. */
  primaryAddress: string;
  /** The standby's IP address as the primary sees it (its pg_hba replication record). */
  standbyAddress: string;
  /**
   * listen_addresses the primary needs for the standby (see grantAccess).
   * Default: primaryAddress when it is an IP address, else '*'.
   */
  listen?: string;
  /** Wait for synchronous commit on this standby (synchronous_standby_names): zero data loss, slower commits. */
  synchronous?: boolean;
  /** Time for pg_basebackup (default 1 h) and for streaming to begin (default 60 s). */
  basebackupTimeoutMs?: number;
  streamingTimeoutMs?: number;
}

export interface ReplicaResult {
  name: string;
  slot: string;
  role: string;
  /** Where the standby's previous data directory was moved. */
  previousData: string | undefined;
  basebackupMs: number;
  /** From the standby's start until pg_stat_replication shows it streaming. */
  streamingMs: number;
  totalMs: number;
  synchronous: boolean;
  lag: ReplicationLag;
}

export interface ReplicationLag {
  name: string;
  state: string;
  syncState: string;
  /** WAL the primary has written that the standby has not replayed. */
  bytes: number;
  /** replay_lag from pg_stat_replication (0 when the standby is idle and caught up). */
  seconds: number;
  sentBytes: number;
}

/** `secondary-1.example.com` -> `pe_secondary_1_example_com` (slot and role names: [a-z0-9_], at most 63). */
export function replicaIdent(name: string, prefix = 'pe_'): string {
  const s = (prefix + name.toLowerCase().replace(/[^a-z0-9_]+/g, '_')).replace(/_+$/, '');
  if (s === prefix.replace(/_$/, '') || s.length > 63)
    throw new DbConfigError(
      '',
      `"${name}" does not make a replication slot name (letters, digits, at most ${63 - prefix.length} characters).`,
    );
  return s;
}

function replicationRole(name: string): string {
  return replicaIdent(name, 'pe_repl_');
}

/** Role with REPLICATION LOGIN and a fresh random password; only the SCRAM verifier reaches the server. */
export async function ensureReplicationRole(primary: PgInstance, role: string, password: string): Promise<void> {
  const verifier = scramVerifier(password);
  primary.host.redactor.add(password).add(verifier);
  const exists = await query(primary, `SELECT 1 FROM pg_roles WHERE rolname = ${quoteLiteral(role)}`);
  const verb = exists.length > 0 ? 'ALTER' : 'CREATE';
  await psql(primary, `${verb} ROLE ${quoteIdent(role)} WITH REPLICATION LOGIN PASSWORD ${quoteLiteral(verifier)};\n`, {
    secrets: [password, verifier],
  });
}

async function ensureSlot(primary: PgInstance, slot: string): Promise<void> {
  const rows = await query<{ active: boolean; slot_type: string }>(
    primary,
    `SELECT active, slot_type FROM pg_replication_slots WHERE slot_name = ${quoteLiteral(slot)}`,
  );
  const row = rows[0];
  if (row?.active)
    throw new DbReplicationError(
      primary.host.name,
      `replication slot ${slot} is in use by a running standby.`,
      'Stop that standby, or choose another name.',
    );
  // a stale slot holds WAL from an older position: start from a new one
  if (row) await psql(primary, `SELECT pg_drop_replication_slot(${quoteLiteral(slot)});`);
  await psql(primary, `SELECT pg_create_physical_replication_slot(${quoteLiteral(slot)}, true);`);
}

async function checkPrimaryReady(primary: PgInstance): Promise<void> {
  await requireVersion(primary, 'a streaming replica built by pe-db', 120000);
  if (await isInRecovery(primary))
    throw new DbReplicationError(
      primary.host.name,
      'the source of a replica must be a primary, but this server is in recovery.',
    );
  const s = await queryOne<{ wal_level: string; senders: string; slots: string }>(
    primary,
    `SELECT current_setting('wal_level') AS wal_level, current_setting('max_wal_senders') AS senders, current_setting('max_replication_slots') AS slots`,
  );
  if (s.wal_level === 'minimal' || Number(s.senders) < 2 || Number(s.slots) < 1) {
    throw new DbReplicationError(
      primary.host.name,
      `the primary cannot stream (wal_level ${s.wal_level}, max_wal_senders ${s.senders}, max_replication_slots ${s.slots}).`,
      'Set wal_level = replica, max_wal_senders >= 2 and max_replication_slots >= 1, then restart the primary.',
    );
  }
}

/** Files a pe3-style instance keeps in its data directory: the standby's own, kept across the base backup. */
export function ownConfigFiles(inst: PgInstance): string[] {
  const inData = (p: string) => p.startsWith(`${inst.dataDir}/`);
  const files = [inst.confFile, inst.hbaFile].filter(inData);
  if (files.length > 0) files.push(`${inst.dataDir}/pg_ident.conf`);
  return files;
}

/** Sets primary_conninfo's application_name (pg_basebackup -R does not write one, and Debian sets cluster_name). */
async function setApplicationName(standby: PgInstance, name: string): Promise<void> {
  const auto = `${standby.dataDir}/postgresql.auto.conf`;
  const before = await readText(standby.host, auto);
  const doc = editors.conf(before, auto);
  const conninfo = doc.get('primary_conninfo');
  if (conninfo === undefined)
    throw new DbReplicationError(standby.host.name, `pg_basebackup -R wrote no primary_conninfo into ${auto}.`);
  if (/(^|\s)application_name=/.test(conninfo)) return;
  doc.set('primary_conninfo', `${conninfo} application_name=${quoteConninfo(name)}`);
  await standby.host.writeFile(auto, doc.toString(), { backup: false, secrets: [conninfo] });
}

export function quoteConninfo(v: string): string {
  return /^[A-Za-z0-9_.-]+$/.test(v) ? v : `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** Replication credentials of one standby: they live in memory and in the standby's postgresql.auto.conf only. */
export interface ReplicationSource {
  slot: string;
  role: string;
  password: string;
}

/** On the primary: the standby's replication role (fresh random password), its pg_hba replication record and a new slot. */
export async function prepareReplicationSource(
  primary: PgInstance,
  standby: PgInstance,
  o: ReplicaOptions,
): Promise<ReplicationSource> {
  hostCidr(o.standbyAddress);
  await checkPrimaryReady(primary);
  const slot = replicaIdent(o.name);
  const role = replicationRole(o.name);
  const password = randomPassword();
  standby.host.redactor.add(password);
  await ensureReplicationRole(primary, role, password);
  await grantAccess(primary, o.standbyAddress, [{ database: 'replication', user: role }], {
    listen: o.listen ?? (isIpLiteral(o.primaryAddress) ? o.primaryAddress : '*'),
  });
  await ensureSlot(primary, slot);
  return { slot, role, password };
}

/** The standby's own cluster stops and its data directory is moved aside (returned); a new empty one is made. */
async function setDataAside(standby: PgInstance): Promise<string | undefined> {
  await stopInstance(standby);
  let previousData: string | undefined;
  if (await standby.host.exists(standby.dataDir, { sudo: true })) {
    previousData = backupPath(standby.dataDir);
    await standby.host.exec(['mv', '--', standby.dataDir, previousData], { sudo: true });
  }
  await standby.host.exec(
    ['install', '-d', '-m', '0700', '-o', standby.osUser, '-g', standby.osUser, standby.dataDir],
    { sudo: true },
  );
  return previousData;
}

/** `pg_basebackup -R -X stream -S <slot>` into the standby's empty data directory, the password in PGPASSWORD. */
async function baseBackup(
  primary: PgInstance,
  standby: PgInstance,
  source: ReplicationSource,
  o: ReplicaOptions & { previousData: string | undefined },
): Promise<void> {
  try {
    await standby.host.exec(
      asDbUser(standby, [
        bin(standby, 'pg_basebackup'),
        '-D',
        standby.dataDir,
        '-h',
        o.primaryAddress,
        '-p',
        String(primary.port),
        '-U',
        source.role,
        '-R',
        '-X',
        'stream',
        '-S',
        source.slot,
        '-c',
        'fast',
        '-w',
      ]),
      {
        sudo: true,
        cwd: '/',
        env: { PGPASSWORD: source.password, PGAPPNAME: o.name },
        secrets: [source.password],
        timeoutMs: o.basebackupTimeoutMs ?? 3_600_000,
      },
    );
  } catch (e) {
    throw new DbReplicationError(
      standby.host.name,
      `pg_basebackup from ${o.primaryAddress}:${primary.port} failed: ${standby.host.redactor.redact((e as Error).message)}`,
      o.previousData ? `The previous data directory is kept in ${o.previousData}.` : undefined,
    );
  }
}

/** Copies the standby's own configuration files (see ownConfigFiles) back from the previous data directory. */
async function restoreOwnConfig(
  standby: PgInstance,
  keep: readonly string[],
  previousData: string | undefined,
): Promise<void> {
  for (const f of keep) {
    const name = f.slice(standby.dataDir.length + 1);
    if (previousData && (await standby.host.exists(`${previousData}/${name}`, { sudo: true }))) {
      await standby.host.exec(['cp', '-p', '--', `${previousData}/${name}`, f], { sudo: true });
    }
  }
}

/** Starts the standby and waits until pg_stat_replication on the primary shows it streaming. */
async function startStreaming(primary: PgInstance, standby: PgInstance, o: ReplicaOptions): Promise<void> {
  await startInstance(standby, { allowFenced: true });
  const streaming = await waitForStreaming(primary, o.name, o.streamingTimeoutMs ?? 60_000);
  if (!streaming.ok) {
    throw new DbReplicationError(
      standby.host.name,
      `the standby started but pg_stat_replication on ${primary.host.name} does not show "${o.name}" streaming after ${Math.round(streaming.ms)} ms.`,
      "Read the standby's server log (primary_conninfo, pg_hba replication record, slot).",
    );
  }
}

/**
 * A streaming replica of `primary` on `standby`: a replication role with a
 * random password, a physical slot, a pg_hba replication record for the
 * standby's address; on the standby: stop, move the old data directory
 * aside, `pg_basebackup -R -X stream -S <slot>` (the password in PGPASSWORD),
 * start, and wait until pg_stat_replication on the primary shows it
 * streaming. With `synchronous`, commits then wait for it.
 */
export async function buildReplica(
  primary: PgInstance,
  standby: PgInstance,
  o: ReplicaOptions,
): Promise<ReplicaResult> {
  const t0 = performance.now();
  const source = await prepareReplicationSource(primary, standby, o);
  const previousData = await setDataAside(standby);
  const keep = ownConfigFiles(standby);
  const b0 = performance.now();
  await baseBackup(primary, standby, source, { ...o, previousData });
  const basebackupMs = performance.now() - b0;
  await restoreOwnConfig(standby, keep, previousData);
  await setApplicationName(standby, o.name);
  const s0 = performance.now();
  await startStreaming(primary, standby, o);
  const streamingMs = performance.now() - s0;
  if (o.synchronous) await setSynchronous(primary, [o.name]);
  const lag = await replicationLag(primary, o.name);
  return {
    name: o.name,
    slot: source.slot,
    role: source.role,
    previousData,
    basebackupMs,
    streamingMs,
    totalMs: performance.now() - t0,
    synchronous: Boolean(o.synchronous),
    lag,
  };
}

export async function waitForStreaming(
  primary: PgInstance,
  name: string,
  timeoutMs: number,
): Promise<{ ok: boolean; ms: number }> {
  return waitFor(
    async () => {
      const r = await query(
        primary,
        `SELECT 1 FROM pg_stat_replication WHERE application_name = ${quoteLiteral(name)} AND state = 'streaming'`,
      );
      return r.length > 0;
    },
    timeoutMs,
    100,
  );
}

/**
 * Commits on the primary wait until one of these standbys has the WAL
 * (FIRST 1): no committed transaction is lost when the primary dies. An empty
 * list turns it off.
 */
export async function setSynchronous(primary: PgInstance, names: readonly string[]): Promise<void> {
  const value = names.length === 0 ? '' : `FIRST 1 (${names.map((n) => `"${n.replace(/"/g, '')}"`).join(', ')})`;
  await setParameters(primary, { synchronous_standby_names: value });
  if (names.length > 0) {
    const ok = await waitFor(
      async () =>
        (
          await query(
            primary,
            `SELECT 1 FROM pg_stat_replication WHERE application_name = ${quoteLiteral(names[0]!)} AND sync_state = 'sync'`,
          )
        ).length > 0,
      15_000,
    );
    if (!ok.ok)
      throw new DbReplicationError(
        primary.host.name,
        `"${names[0]}" did not become the synchronous standby.`,
        'Check that it is streaming (pg_stat_replication).',
      );
  }
}

/** Lag of one standby, as the primary sees it. */
export async function replicationLag(primary: PgInstance, name: string): Promise<ReplicationLag> {
  const rows = await query<{
    state: string;
    sync_state: string;
    bytes: string | null;
    sent: string | null;
    seconds: number | null;
  }>(
    primary,
    `SELECT state, sync_state,
            pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint AS bytes,
            pg_wal_lsn_diff(pg_current_wal_lsn(), sent_lsn)::bigint AS sent,
            extract(epoch FROM replay_lag)::float8 AS seconds
       FROM pg_stat_replication WHERE application_name = ${quoteLiteral(name)}`,
  );
  const r = rows[0];
  if (!r)
    throw new DbReplicationError(
      primary.host.name,
      `no standby named "${name}" is connected (pg_stat_replication).`,
      'Is the standby running? Is its primary_conninfo pointing here?',
    );
  return {
    name,
    state: r.state,
    syncState: r.sync_state,
    bytes: Number(r.bytes ?? 0),
    seconds: r.seconds ?? 0,
    sentBytes: Number(r.sent ?? 0),
  };
}

/** Seconds since the last transaction the standby replayed was committed (0 when it has replayed all it received). */
export async function standbyDelaySeconds(standby: PgInstance): Promise<number> {
  const r = await queryOne<{ s: number | null }>(
    standby,
    `SELECT CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
                 ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 END AS s`,
  );
  return r.s ?? 0;
}

/** Waits until the standby has replayed everything the primary wrote up to now. */
export async function waitCaughtUp(
  primary: PgInstance,
  name: string,
  timeoutMs = 60_000,
): Promise<{ ok: boolean; ms: number }> {
  const target = (await queryOne<{ l: string }>(primary, 'SELECT pg_current_wal_lsn()::text AS l')).l;
  return waitFor(
    async () => {
      const r = await query(
        primary,
        `SELECT 1 FROM pg_stat_replication WHERE application_name = ${quoteLiteral(name)} AND replay_lsn >= ${quoteLiteral(target)}::pg_lsn`,
      );
      return r.length > 0;
    },
    timeoutMs,
    50,
  );
}

/** Undoes buildReplica on the primary: slot, replication record, role (and takes the standby out of synchronous_standby_names). */
export async function removeReplica(primary: PgInstance, name: string, standbyAddress: string): Promise<void> {
  const slot = replicaIdent(name);
  const role = replicationRole(name);
  const sync = (await queryOne<{ v: string }>(primary, `SELECT current_setting('synchronous_standby_names') AS v`)).v;
  if (sync.includes(`"${name}"`)) await setSynchronous(primary, []);
  const slots = await query<{ active_pid: number | null }>(
    primary,
    `SELECT active_pid FROM pg_replication_slots WHERE slot_name = ${quoteLiteral(slot)}`,
  );
  if (slots[0]?.active_pid) await psql(primary, `SELECT pg_terminate_backend(${Number(slots[0].active_pid)});`);
  if (slots.length > 0) {
    await waitFor(
      async () =>
        (await query(primary, `SELECT 1 FROM pg_replication_slots WHERE slot_name = ${quoteLiteral(slot)} AND active`))
          .length === 0,
      10_000,
    );
    await psql(primary, `SELECT pg_drop_replication_slot(${quoteLiteral(slot)});`);
  }
  const before = await readText(primary.host, primary.hbaFile);
  if (
    editors
      .hba(before, primary.hbaFile)
      .records()
      .some((r) => r.database === 'replication' && r.user === role)
  ) {
    const doc = editors.hba(before, primary.hbaFile);
    doc.remove({ database: 'replication', user: role, address: hostCidr(standbyAddress) });
    await primary.host.writeFile(primary.hbaFile, doc.toString(), { backup: true });
    await psql(primary, 'SELECT pg_reload_conf();');
  }
  await psql(primary, `DROP ROLE IF EXISTS ${quoteIdent(role)};`);
}
