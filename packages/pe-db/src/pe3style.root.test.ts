import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalHost } from '@pe-stack/pe-host';
import { freePort } from '@pe-stack/testkit/sshd';
import {
  FenceRegistry,
  buildReplica,
  destroyCluster,
  fence,
  initCluster,
  isInRecovery,
  isRunning,
  postmasterPid,
  promote,
  psql,
  queryOne,
  replicationLag,
  startInstance,
  waitFor,
  rejoin,
  waitCaughtUp,
  type PgInstance,
} from './index.js';

// PE 3's pe-postgresql keeps postgresql.conf and pg_hba.conf in the data directory: a base backup
// copies the primary's, and a setting made with ALTER SYSTEM travels in postgresql.auto.conf.
const host = new LocalHost({ name: 'pe3.test' });
let P: PgInstance;
let S: PgInstance;
let dir: string;
const rows = async (inst: PgInstance) =>
  (await queryOne<{ n: number }>(inst, 'SELECT count(*)::int AS n FROM t', { database: 'app' })).n;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pe-db-pe3-'));
  chmodSync(dir, 0o755);
  [P, S] = await Promise.all([
    initCluster(host, { dir: `${dir}/primary`, port: await freePort(), configInDataDir: true }),
    initCluster(host, { dir: `${dir}/secondary`, port: await freePort(), configInDataDir: true }),
  ]);
  await Promise.all([startInstance(P), startInstance(S)]);
  await psql(P, 'CREATE DATABASE app;');
  await psql(
    P,
    'CREATE TABLE t (id serial PRIMARY KEY, v text); INSERT INTO t (v) SELECT i::text FROM generate_series(1, 500) i;',
    { database: 'app' },
  );
});

afterAll(async () => {
  for (const c of [P, S]) if (c) await destroyCluster(c).catch(() => undefined);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('configuration inside the data directory (pe3 style), synchronous standby, primary killed', () => {
  it('builds the replica without hanging on a synchronous_standby_names set by ALTER SYSTEM, and the standby keeps its own configuration', async () => {
    await psql(P, `ALTER SYSTEM SET synchronous_standby_names = 'FIRST 1 ("secondary-pe3")';`);
    await psql(P, 'SELECT pg_reload_conf();');
    const ownConf = readFileSync(S.confFile, 'utf8');
    const ownHba = readFileSync(S.hbaFile, 'utf8');
    // our administrative statements commit locally; the standby does not exist yet
    const r = await buildReplica(P, S, {
      name: 'secondary-pe3',
      primaryAddress: '127.0.0.1',
      standbyAddress: '127.0.0.1',
    });
    expect(r.lag.state).toBe('streaming');
    // the standby becomes the synchronous one once it has reported its first flush position
    expect(
      (await waitFor(async () => (await replicationLag(P, 'secondary-pe3')).syncState === 'sync', 10_000)).ok,
    ).toBe(true);
    expect(readFileSync(S.confFile, 'utf8')).toBe(ownConf);
    expect(readFileSync(S.hbaFile, 'utf8')).toBe(ownHba);
    expect((await queryOne<{ p: string }>(S, `SELECT current_setting('port') AS p`)).p).toBe(String(S.port));
    // the setting came along in postgresql.auto.conf
    expect(readFileSync(join(S.dataDir, 'postgresql.auto.conf'), 'utf8')).toContain('synchronous_standby_names');
  });

  let committed = 0;
  it('every commit acknowledged by the killed primary is on the promoted standby, which takes writes at once', async () => {
    await psql(P, "INSERT INTO t (v) SELECT 'sync-' || i FROM generate_series(1, 300) i;", {
      database: 'app',
      localCommit: false,
    });
    for (let i = 0; i < 20; i++)
      await psql(P, `INSERT INTO t (v) VALUES ('one-${i}');`, { database: 'app', localCommit: false });
    committed = await rows(P);
    expect(committed).toBe(820);
    // power cut: SIGKILL the postmaster, no shutdown checkpoint, no chance to send anything more
    const pid = await postmasterPid(P);
    expect(pid).toBeGreaterThan(1);
    process.kill(pid!, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 300));
    expect(await isRunning(P)).toBe(false);
    const pr = await promote(S);
    expect(pr.resetSynchronous).toBe(true);
    expect(await isInRecovery(S)).toBe(false);
    expect(await rows(S)).toBe(committed);
    // without the reset this commit would wait forever for a standby that does not exist
    const w = await psql(S, "INSERT INTO t (v) VALUES ('after');", {
      database: 'app',
      localCommit: false,
      timeoutMs: 10_000,
    });
    expect(w.ms).toBeLessThan(5000);
    expect((await queryOne<{ v: string }>(S, `SELECT current_setting('synchronous_standby_names') AS v`)).v).toBe('');
  });

  it('fencing a reachable but dead old primary leaves the marker and a standby.signal', async () => {
    const reg = new FenceRegistry(join(dir, 'fences.json'));
    const f = await fence(P, { newPrimary: 'secondary-pe3', reason: 'primary killed' }, reg);
    expect(f.how).toBe('stopped');
    expect(f.wasRunning).toBe(false);
    expect(readFileSync(join(P.dataDir, 'standby.signal'), 'utf8')).toBe('');
    await expect(startInstance(P)).rejects.toMatchObject({ code: 'E_DB_FENCED' });
    await expect(replicationLag(S, 'secondary-pe3')).rejects.toMatchObject({ code: 'E_DB_REPLICATION' });
  });

  it('the killed old primary rejoins with pg_rewind (crash recovery first), keeping its own configuration', async () => {
    const reg = new FenceRegistry(join(dir, 'fences.json'));
    const ownConf = readFileSync(P.confFile, 'utf8');
    const r = await rejoin(P, S, reg, {
      name: 'primary-pe3',
      primaryAddress: '127.0.0.1',
      standbyAddress: '127.0.0.1',
    });
    expect(r.rewindSkipped).toBeUndefined();
    expect(r.method).toBe('rewind');
    expect(await isInRecovery(P)).toBe(true);
    expect(readFileSync(P.confFile, 'utf8')).toBe(ownConf);
    expect((await waitCaughtUp(S, 'primary-pe3')).ok).toBe(true);
    expect(await rows(P)).toBe(committed + 1);
    expect(await reg.list()).toEqual([]);
  });
});
