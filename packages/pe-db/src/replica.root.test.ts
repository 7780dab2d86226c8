import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HostUnreachableError, LocalHost, type Host } from '@pe-stack/pe-host';
import { freePort } from '@pe-stack/testkit/sshd';
import {
  DbFencedError,
  FENCE_MARKER,
  FenceRegistry,
  buildReplica,
  destroyCluster,
  failover,
  fence,
  guardedStart,
  hbaFileRules,
  initCluster,
  isInRecovery,
  isRunning,
  psql,
  query,
  queryOne,
  readServiceCredentials,
  rejoin,
  replicaStreaming,
  replicationLag,
  setSynchronous,
  standbyDelaySeconds,
  startInstance,
  stopInstance,
  waitCaughtUp,
  waitForStreaming,
  type PgInstance,
  type ReplicaResult,
  type ServiceDbFile,
} from './index.js';

/** The same host, but every call fails as an SSH connection to a powered-off machine would. */
function unreachable(h: Host): Host {
  return new Proxy(h, {
    get(target, key, recv) {
      const v = Reflect.get(target, key, recv) as unknown;
      if (typeof v === 'function' && key !== 'constructor')
        return () => Promise.reject(new HostUnreachableError(target.name, 'connect ETIMEDOUT'));
      return v;
    },
  });
}

const primaryHost = new LocalHost({ name: 'primary.test' });
const standbyHost = new LocalHost({ name: 'secondary1.test' });
let P: PgInstance;
let S: PgInstance;
let dir: string;
let registry: FenceRegistry;

async function count(inst: PgInstance, table = 't'): Promise<number> {
  return (await queryOne<{ n: number }>(inst, `SELECT count(*)::int AS n FROM ${table}`, { database: 'app' })).n;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pe-db-replica-'));
  chmodSync(dir, 0o755);
  registry = new FenceRegistry(join(dir, 'controller', 'fences.json'));
  [P, S] = await Promise.all([
    // wal_keep_size: the old primary keeps the WAL back to the fork, which pg_rewind needs
    // log_statement = all: the test shows no clear replication password ever reaches the server's log
    initCluster(primaryHost, {
      dir: `${dir}/primary`,
      port: await freePort(),
      settings: { wal_keep_size: "'256MB'", log_statement: "'all'" },
    }),
    initCluster(standbyHost, {
      dir: `${dir}/secondary1`,
      port: await freePort(),
      settings: { wal_keep_size: "'256MB'" },
    }),
  ]);
  await Promise.all([startInstance(P), startInstance(S)]);
  await psql(P, 'CREATE DATABASE app;');
  await psql(
    P,
    'CREATE TABLE t (id serial PRIMARY KEY, v text); INSERT INTO t (v) SELECT md5(i::text) FROM generate_series(1, 1000) i;',
    { database: 'app' },
  );
  // the standby's own cluster has data of its own, which must be kept aside, not lost
  await psql(S, 'CREATE DATABASE mine;');
});

afterAll(async () => {
  for (const c of [P, S]) if (c) await destroyCluster(c).catch(() => undefined);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('streaming replica, promotion, fencing, rejoin', () => {
  let replica: ReplicaResult;

  it('builds a streaming replica: role with a random password, slot, pg_hba replication record, pg_basebackup -R -X stream -S', async () => {
    replica = await buildReplica(P, S, {
      name: 'secondary1.test',
      primaryAddress: '127.0.0.1',
      standbyAddress: '127.0.0.1',
    });
    expect(replica.slot).toBe('pe_secondary1_test');
    expect(replica.role).toBe('pe_repl_secondary1_test');
    expect(replica.lag.state).toBe('streaming');
    expect(await replicaStreaming(P, 'secondary1.test')).toBe(true);
    expect(await replicaStreaming(P, 'secondary1.test', { synchronous: true })).toBe(false);
    expect(await replicaStreaming(P, 'other.test')).toBe(false);
    expect(await isInRecovery(S)).toBe(true);
    expect(await count(S)).toBe(1000);
    // the slot is in use, the record parsed, the role can replicate and nothing else
    const slot = await queryOne<{ active: boolean; slot_type: string }>(
      P,
      `SELECT active, slot_type FROM pg_replication_slots WHERE slot_name = 'pe_secondary1_test'`,
    );
    expect(slot).toEqual({ active: true, slot_type: 'physical' });
    const rules = (await hbaFileRules(P)).filter((r) => r.database?.[0] === 'replication');
    expect(rules.map((r) => [r.user_name, r.address, r.netmask, r.auth_method])).toEqual([
      [['pe_repl_secondary1_test'], '127.0.0.1', '255.255.255.255', 'scram-sha-256'],
    ]);
    const role = await queryOne<{ rolreplication: boolean; rolsuper: boolean; scram: boolean }>(
      P,
      `SELECT rolreplication, rolsuper, rolpassword LIKE 'SCRAM-SHA-256$%' AS scram FROM pg_authid WHERE rolname = 'pe_repl_secondary1_test'`,
    );
    expect(role).toEqual({ rolreplication: true, rolsuper: false, scram: true });
    // the standby's previous cluster was moved aside, with its own database in it
    expect(replica.previousData).toBeDefined();
    expect(existsSync(`${replica.previousData}/PG_VERSION`)).toBe(true);
    // the password is nowhere in the result, and the standby names itself in pg_stat_replication
    expect(JSON.stringify(replica)).not.toMatch(/password/i);
    const auto = readFileSync(`${S.dataDir}/postgresql.auto.conf`, 'utf8');
    expect(auto).toContain('application_name=secondary1.test');
    // the random replication password lives in the standby's postgresql.auto.conf (0600) and nowhere else
    // libpq quotes a value with '-' in the conninfo ('...'), and the conf file doubles those quotes
    const m = /password=(?:''([^']+)''|([^\s']+))/.exec(auto);
    const pw = m?.[1] ?? m?.[2];
    expect(pw).toMatch(/^[A-Za-z0-9_-]{32}$/);
    const log = readFileSync(join(dir, 'primary', 'server.log'), 'utf8');
    expect(log).toContain(
      'CREATE ROLE "pe_repl_secondary1_test" WITH REPLICATION LOGIN PASSWORD \'SCRAM-SHA-256$4096:',
    );
    expect(log).not.toContain(pw!);
    expect(readFileSync(join(dir, 'secondary1', 'server.log'), 'utf8')).not.toContain(pw!);
    expect(JSON.stringify(replica)).not.toContain(pw!);
    expect(statSync(`${S.dataDir}/postgresql.auto.conf`).mode & 0o077).toBe(0);
  });

  it('reports lag in bytes and seconds, and catches up', async () => {
    await psql(P, 'INSERT INTO t (v) SELECT md5(i::text) FROM generate_series(1, 20000) i;', { database: 'app' });
    const lag = await replicationLag(P, 'secondary1.test');
    expect(lag.bytes).toBeGreaterThanOrEqual(0);
    expect(lag.seconds).toBeGreaterThanOrEqual(0);
    const caught = await waitCaughtUp(P, 'secondary1.test', 30_000);
    expect(caught.ok).toBe(true);
    expect(await count(S)).toBe(21000);
    // caught up: what is left is at most background WAL (autovacuum, checkpoints) written since, far below the insert's ~2 MB
    expect((await replicationLag(P, 'secondary1.test')).bytes).toBeLessThan(256 * 1024);
    expect(await standbyDelaySeconds(S)).toBeLessThan(5);
  });

  it('synchronous mode: commits wait for the standby, and do not complete while it is down', async () => {
    await setSynchronous(P, ['secondary1.test']);
    expect((await replicationLag(P, 'secondary1.test')).syncState).toBe('sync');
    const up = await psql(P, "INSERT INTO t (v) VALUES ('sync-1');", { database: 'app', localCommit: false });
    expect(up.ms).toBeLessThan(2000);
    expect((await waitCaughtUp(P, 'secondary1.test')).ok).toBe(true);
    expect(await count(S)).toBe(21001);
    await stopInstance(S);
    let settled = false;
    const pending = psql(P, "INSERT INTO t (v) VALUES ('sync-2');", { database: 'app', localCommit: false }).finally(
      () => {
        settled = true;
      },
    );
    await new Promise((r) => setTimeout(r, 1500));
    expect(settled).toBe(false); // the commit waits for the standby
    await startInstance(S);
    await pending;
    expect(settled).toBe(true);
    expect((await waitForStreaming(P, 'secondary1.test', 30_000)).ok).toBe(true);
    expect((await waitCaughtUp(P, 'secondary1.test')).ok).toBe(true);
    expect(await count(S)).toBe(21002);
    await setSynchronous(P, []);
    expect((await replicationLag(P, 'secondary1.test')).syncState).toBe('async');
  });

  let committed = 0;
  const filesOf = (root: string): ServiceDbFile[] => [
    { service: 'puppetdb', path: join(root, 'database.ini'), format: 'ini', section: 'database' },
  ];

  it('promotes the standby, points its services at it, fences the reachable old primary', async () => {
    committed = await count(P);
    expect((await waitCaughtUp(P, 'secondary1.test')).ok).toBe(true);
    writeFileSync(
      join(dir, 'secondary1', 'database.ini'),
      `[database]\nsubname = //primary.test:${P.port}/app\nusername = app\npassword = app-pw-1234\n`,
    );
    const r = await failover(S, P, registry, { files: filesOf(join(dir, 'secondary1')), reason: 'test' });
    expect(r.promote.alreadyPrimary).toBe(false);
    expect(r.promote.timeline).toBe(2);
    expect(r.promote.ms).toBeLessThan(30_000);
    expect(await isInRecovery(S)).toBe(false);
    // every committed row is there, and the new primary takes writes
    expect(await count(S)).toBe(committed);
    await psql(S, "INSERT INTO t (v) VALUES ('after-promote');", { database: 'app' });
    // services now use the promoted host
    expect(r.servicesRewritten).toEqual([join(dir, 'secondary1', 'database.ini')]);
    expect(await readServiceCredentials(standbyHost, filesOf(join(dir, 'secondary1'))[0]!)).toMatchObject({
      server: 'localhost',
      port: S.port,
      password: 'app-pw-1234',
    });
    // the old primary: stopped, marked, and its data directory would start in recovery
    expect(r.fence.how).toBe('stopped');
    expect(r.fence.wasRunning).toBe(true);
    expect(await isRunning(P)).toBe(false);
    expect(JSON.parse(readFileSync(join(P.dataDir, FENCE_MARKER), 'utf8'))).toMatchObject({
      host: 'primary.test',
      newPrimary: 'secondary1.test',
      how: 'stopped',
    });
    expect(existsSync(join(P.dataDir, 'standby.signal'))).toBe(true);
    expect((await registry.list()).map((x) => x.host)).toEqual(['primary.test']);
  });

  it('our tools refuse to start a fenced old primary', async () => {
    const e = await startInstance(P).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(DbFencedError);
    expect((e as DbFencedError).code).toBe('E_DB_FENCED');
    expect((e as DbFencedError).message).toContain('secondary1.test');
    await expect(guardedStart(P, registry)).rejects.toBeInstanceOf(DbFencedError);
    expect(await isRunning(P)).toBe(false);
  });

  it('an unreachable old primary is recorded as fenced, and that record alone blocks a start', async () => {
    const reg = new FenceRegistry(join(dir, 'controller', 'fences-unreachable.json'));
    const ghost: PgInstance = { ...P, host: unreachable(primaryHost), dataDir: `${dir}/elsewhere/data` };
    const r = await fence(ghost, { newPrimary: 'secondary1.test', reason: 'power-off' }, reg, { reachTimeoutMs: 2000 });
    expect(r.how).toBe('unreachable');
    expect(await reg.get('primary.test', `${dir}/elsewhere/data`)).toMatchObject({
      how: 'unreachable',
      newPrimary: 'secondary1.test',
    });
    // the host comes back: the registry refuses the start before any command runs
    const back: PgInstance = { ...ghost, host: primaryHost };
    const e = await guardedStart(back, reg).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(DbFencedError);
    expect((e as Error).message).toMatch(/recorded as fenced/);
  });

  it('rejoin rewinds the old primary (pg_rewind, checksums on) into a standby of the new one and lifts the fence', async () => {
    const r = await rejoin(P, S, registry, {
      name: 'primary.test',
      primaryAddress: '127.0.0.1',
      standbyAddress: '127.0.0.1',
    });
    expect(r.rewindSkipped).toBeUndefined();
    expect(r.method).toBe('rewind');
    expect(r.rewind?.lag.state).toBe('streaming');
    expect(await isInRecovery(P)).toBe(true);
    expect(existsSync(join(P.dataDir, FENCE_MARKER))).toBe(false);
    expect(await registry.list()).toEqual([]);
    expect((await waitCaughtUp(S, 'primary.test')).ok).toBe(true);
    expect(await count(P)).toBe(committed + 1);
    const rows = await query<{ v: string }>(P, `SELECT v FROM t WHERE v = 'after-promote'`, { database: 'app' });
    expect(rows).toHaveLength(1);
    // the rewind role was only temporary; the replication role stays, without superuser
    const roles = await query<{ rolname: string; rolsuper: boolean }>(
      S,
      `SELECT rolname, rolsuper FROM pg_roles WHERE rolname LIKE 'pe\\_%' ORDER BY 1`,
    );
    expect(roles).toEqual([
      { rolname: 'pe_repl_primary_test', rolsuper: false },
      { rolname: 'pe_repl_secondary1_test', rolsuper: false },
    ]);
    expect((await hbaFileRules(S)).some((x) => x.user_name?.[0] === 'pe_rewind_primary_test')).toBe(false);
  });

  it('fails back, and rejoins the other side by a fresh base backup when pg_rewind is not wanted', async () => {
    await psql(S, "INSERT INTO t (v) VALUES ('before-failback');", { database: 'app' });
    expect((await waitCaughtUp(S, 'primary.test')).ok).toBe(true);
    const total = await count(S);
    const back = await failover(P, S, registry, { reason: 'failback' });
    expect(back.promote.timeline).toBe(3);
    expect(back.fence.how).toBe('stopped');
    expect(await count(P)).toBe(total);
    const r = await rejoin(
      S,
      P,
      registry,
      { name: 'secondary1.test', primaryAddress: '127.0.0.1', standbyAddress: '127.0.0.1' },
      { rewind: false },
    );
    expect(r.method).toBe('basebackup');
    expect(r.rewindSkipped).toBe('disabled by the caller');
    expect(r.replica?.lag.state).toBe('streaming');
    expect(await count(S)).toBe(total);
    expect(await registry.list()).toEqual([]);
  });
});
