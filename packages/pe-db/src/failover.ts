import { promises as fs } from 'node:fs';
import { dirname } from 'node:path';
import { pointServicesAt, type ServiceDbFile } from './credentials.js';
import { editors, readText } from './editors.js';
import { DbFencedError, DbReplicationError } from './errors.js';
import { isInRecovery, isRunning, psql, queryOne, waitFor, type PgInstance } from './instance.js';
import { fenceMarkerPath, readFenceMarker, startInstance, stopInstance, type FenceRecord } from './lifecycle.js';
import { buildReplica, type ReplicaOptions, type ReplicaResult } from './replica.js';
import { rewindAsStandby, rewindBlocker, type RewindResult } from './rewind.js';

export interface PromoteResult {
  /** From the promote command until pg_is_in_recovery() is false. */
  ms: number;
  alreadyPrimary: boolean;
  timeline: number;
  /** synchronous_standby_names was reset (copied from the old primary, it would block every commit). */
  resetSynchronous: boolean;
}

/** Promotes a standby and waits until it leaves recovery and accepts writes. */
export async function promote(standby: PgInstance, opts: { timeoutMs?: number } = {}): Promise<PromoteResult> {
  const t0 = performance.now();
  let alreadyPrimary = false;
  if (await isInRecovery(standby)) {
    await standby.host.exec(standby.control.promote, {
      sudo: true,
      cwd: '/',
      timeoutMs: (opts.timeoutMs ?? 60_000) + 5_000,
    });
    const done = await waitFor(async () => !(await isInRecovery(standby)), opts.timeoutMs ?? 60_000, 20);
    if (!done.ok)
      throw new DbReplicationError(
        standby.host.name,
        `the standby on port ${standby.port} is still in recovery ${opts.timeoutMs ?? 60_000} ms after promote.`,
        'Read its server log.',
      );
  } else {
    alreadyPrimary = true;
  }
  const ms = performance.now() - t0;
  // write the new timeline into pg_control now (pg_rewind and pg_controldata read it from there)
  if (!alreadyPrimary) await psql(standby, 'CHECKPOINT;');
  const sync = await queryOne<{ v: string; f: string | null }>(
    standby,
    `SELECT setting AS v, sourcefile AS f FROM pg_settings WHERE name = 'synchronous_standby_names'`,
  );
  let resetSynchronous = false;
  if (sync.v !== '') {
    if (sync.f === standby.confFile) {
      const before = await readText(standby.host, standby.confFile);
      const doc = editors.conf(before, standby.confFile);
      doc.unset('synchronous_standby_names');
      await standby.host.writeFile(standby.confFile, doc.toString(), { backup: true });
    } else {
      await psql(standby, 'ALTER SYSTEM RESET synchronous_standby_names;');
    }
    await psql(standby, 'SELECT pg_reload_conf();');
    resetSynchronous = true;
  }
  // the current WAL file's name starts with the timeline (hex); pg_control_checkpoint() lags until the next checkpoint
  const tl = await queryOne<{ w: string }>(standby, 'SELECT pg_walfile_name(pg_current_wal_lsn()) AS w');
  return { ms, alreadyPrimary, timeline: parseInt(tl.w.slice(0, 8), 16), resetSynchronous };
}

/**
 * Fences the controller keeps for hosts it could not reach: a JSON file on
 * the controller. `rejoin` and `startInstance`-through-flows consult it, so an
 * old primary that comes back from a power cut is rebuilt, never used.
 */
export class FenceRegistry {
  constructor(readonly path: string) {}

  async list(): Promise<FenceRecord[]> {
    try {
      return JSON.parse(await fs.readFile(this.path, 'utf8')) as FenceRecord[];
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
  }

  async get(host: string, dataDir: string): Promise<FenceRecord | undefined> {
    return (await this.list()).find((r) => r.host === host && r.dataDir === dataDir);
  }

  async record(rec: FenceRecord): Promise<void> {
    const all = (await this.list()).filter((r) => !(r.host === rec.host && r.dataDir === rec.dataDir));
    all.push(rec);
    await this.save(all);
  }

  async clear(host: string, dataDir: string): Promise<boolean> {
    const all = await this.list();
    const rest = all.filter((r) => !(r.host === host && r.dataDir === dataDir));
    if (rest.length !== all.length) await this.save(rest);
    return rest.length !== all.length;
  }

  private async save(all: FenceRecord[]): Promise<void> {
    await fs.mkdir(dirname(this.path), { recursive: true });
    const tmp = `${this.path}.tmp-${process.pid}`;
    await fs.writeFile(tmp, `${JSON.stringify(all, null, 2)}\n`, { mode: 0o600 });
    await fs.rename(tmp, this.path);
  }
}

export interface FenceResult {
  how: 'stopped' | 'unreachable';
  record: FenceRecord;
  /** The server was running when we stopped it. */
  wasRunning: boolean;
}

async function reachable(inst: PgInstance, timeoutMs: number): Promise<boolean> {
  // our own timer too: a powered-off host may never answer the channel open
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), timeoutMs + 1000)));
  const probe = inst.host.exec(['true'], { timeoutMs, readOnly: true }).then(
    () => true,
    () => false,
  );
  try {
    return await Promise.race([probe, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Fences the old primary. Reachable: the marker first (so no tool of ours
 * starts it while we work), standby.signal (so even another tool starts it
 * read-only, in recovery), start.conf `manual` where the layout has one, then
 * stop. Unreachable: the fence is recorded in the registry, and `rejoin`
 * must rebuild it as a standby before it serves again.
 */
export async function fence(
  oldPrimary: PgInstance,
  info: { newPrimary: string; reason: string },
  registry: FenceRegistry,
  opts: { reachTimeoutMs?: number } = {},
): Promise<FenceResult> {
  const record: FenceRecord = {
    host: oldPrimary.host.name,
    dataDir: oldPrimary.dataDir,
    at: new Date().toISOString(),
    newPrimary: info.newPrimary,
    how: 'stopped',
    reason: info.reason,
  };
  if (!(await reachable(oldPrimary, opts.reachTimeoutMs ?? 10_000))) {
    record.how = 'unreachable';
    await registry.record(record);
    return { how: 'unreachable', record, wasRunning: false };
  }
  const host = oldPrimary.host;
  await host.writeFile(fenceMarkerPath(oldPrimary), `${JSON.stringify(record, null, 2)}\n`, {
    owner: oldPrimary.osUser,
    mode: 0o600,
    backup: false,
  });
  await host.writeFile(`${oldPrimary.dataDir}/standby.signal`, '', {
    owner: oldPrimary.osUser,
    mode: 0o600,
    backup: false,
  });
  if (oldPrimary.startConf && (await host.exists(oldPrimary.startConf, { sudo: true }))) {
    await host.writeFile(oldPrimary.startConf, '# pe-db: fenced after failover; rebuild with pe-db rejoin\nmanual\n', {
      backup: true,
    });
  }
  const { wasRunning } = await stopInstance(oldPrimary);
  await registry.record(record);
  return { how: 'stopped', record, wasRunning };
}

/** Is this instance fenced, by its own marker or by the controller's registry? */
export async function fencedBy(inst: PgInstance, registry?: FenceRegistry): Promise<FenceRecord | undefined> {
  const marker = await readFenceMarker(inst).catch(() => undefined);
  if (marker) return marker;
  return registry?.get(inst.host.name, inst.dataDir);
}

/** Start through our tools, honouring both the marker and the controller's registry. */
export async function guardedStart(inst: PgInstance, registry: FenceRegistry): Promise<{ ms: number }> {
  const rec = await registry.get(inst.host.name, inst.dataDir);
  if (rec)
    throw new DbFencedError(
      inst.host.name,
      `PostgreSQL in ${inst.dataDir} is recorded as fenced (${rec.how}, ${rec.at}) since ${rec.newPrimary} became primary; it is not started.`,
    );
  return startInstance(inst);
}

export interface DbFailoverOptions {
  /** The standby's services' files, pointed at the new primary. */
  files?: readonly ServiceDbFile[];
  /** The name services on the promoted host use for it (default: localhost). */
  serviceServer?: string;
  reason?: string;
}

export interface FailoverResult {
  promote: PromoteResult;
  fence: FenceResult;
  servicesRewritten: string[];
}

/** Promote the standby, point its services at it, fence the old primary (reachable or not). */
export async function failover(
  standby: PgInstance,
  oldPrimary: PgInstance,
  registry: FenceRegistry,
  opts: DbFailoverOptions = {},
): Promise<FailoverResult> {
  const p = await promote(standby);
  const f = await fence(oldPrimary, { newPrimary: standby.host.name, reason: opts.reason ?? 'failover' }, registry);
  const writes = opts.files
    ? await pointServicesAt(standby.host, opts.files, opts.serviceServer ?? 'localhost', standby.port)
    : [];
  return { promote: p, fence: f, servicesRewritten: writes.filter((w) => w.changed).map((w) => w.path) };
}

export interface RejoinResult {
  method: 'rewind' | 'basebackup';
  /** Why pg_rewind was not used, or how it failed, when the base backup was taken instead. */
  rewindSkipped?: string;
  replica?: ReplicaResult;
  rewind?: RewindResult;
  ms: number;
}

/**
 * Brings a fenced old primary back as a standby of the new primary: stop it
 * if something started it, then pg_rewind when the cluster allows it (data
 * checksums or wal_log_hints), else, or when the rewind fails, a fresh base
 * backup (the old data directory is kept aside). The fence is lifted only
 * once the standby streams.
 */
export async function rejoin(
  oldPrimary: PgInstance,
  newPrimary: PgInstance,
  registry: FenceRegistry,
  o: ReplicaOptions,
  opts: { rewind?: boolean } = {},
): Promise<RejoinResult> {
  const t0 = performance.now();
  if (await isRunning(oldPrimary)) {
    // came back after a power cut and something started it: it must not take writes
    await stopInstance(oldPrimary);
  }
  if (await isInRecovery(newPrimary))
    throw new DbReplicationError(newPrimary.host.name, 'the new primary is still in recovery; promote it first.');
  let rewindSkipped: string | undefined =
    opts.rewind === false ? 'disabled by the caller' : await rewindBlocker(oldPrimary);
  let rewind: RewindResult | undefined;
  if (rewindSkipped === undefined) {
    try {
      rewind = await rewindAsStandby(oldPrimary, newPrimary, o);
    } catch (e) {
      rewindSkipped = `pg_rewind failed: ${oldPrimary.host.redactor.redact((e as Error).message)}`;
      await stopInstance(oldPrimary).catch(() => undefined);
    }
  }
  const replica = rewind ? undefined : await buildReplica(newPrimary, oldPrimary, o);
  await registry.clear(oldPrimary.host.name, oldPrimary.dataDir);
  if (oldPrimary.startConf && (await oldPrimary.host.exists(oldPrimary.startConf, { sudo: true }))) {
    await oldPrimary.host.writeFile(oldPrimary.startConf, 'auto\n', { backup: true });
  }
  return {
    method: rewind ? 'rewind' : 'basebackup',
    ...(rewindSkipped !== undefined ? { rewindSkipped } : {}),
    ...(replica ? { replica } : {}),
    ...(rewind ? { rewind } : {}),
    ms: performance.now() - t0,
  };
}
