import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalHost, SshHost } from '@pe-stack/pe-host';
import { startTestSshd, freePort } from '@pe-stack/testkit/sshd';
import {
  buildReplica,
  checkFromController,
  checkFromHost,
  destroyCluster,
  grantAccess,
  initCluster,
  promote,
  psql,
  queryOne,
  replicationLag,
  startInstance,
  waitCaughtUp,
  type PgInstance,
} from '@pe-stack/pe-db';
import { percentile, round, timed } from './stats.js';

export interface DbBenchOptions {
  /** pgbench scale factor: ~15 MB each; 68 is ~1 GB. Env PE_BENCH_DB_SCALE. */
  scale?: number;
  /** Seconds of pgbench write load while lag is sampled. Env PE_BENCH_DB_LOAD_S. */
  loadSeconds?: number;
  /** Connectivity checks through the SSH tunnel. */
  checks?: number;
}

/**
 * pe-db on two throwaway PostgreSQL 15 clusters on loopback: a pgbench
 * database of `scale` (default ~1 GB) replicated with buildReplica; lag
 * sampled every 200 ms under a pgbench TPC-B load; promotion time; the
 * connectivity check through an SSH tunnel (SshHost.forward to a throwaway
 * sshd) and psql over SSH. Needs root.
 */
export async function benchDb(opts: DbBenchOptions = {}): Promise<Record<string, number>> {
  const scale = opts.scale ?? Number(process.env.PE_BENCH_DB_SCALE ?? 68);
  const loadSeconds = opts.loadSeconds ?? Number(process.env.PE_BENCH_DB_LOAD_S ?? 20);
  const checks = opts.checks ?? 10;
  const local = new LocalHost({ name: 'bench-db' });
  const dir = mkdtempSync(join(tmpdir(), 'pe-db-bench-'));
  chmodSync(dir, 0o755);
  const settings = { max_wal_size: "'2GB'", shared_buffers: "'128MB'", checkpoint_timeout: "'5min'" };
  let P: PgInstance | undefined;
  let S: PgInstance | undefined;
  const sshd = await startTestSshd();
  const ssh = new SshHost({
    name: 'bench-db-ssh',
    address: '127.0.0.1',
    port: sshd.port,
    user: 'root',
    privateKey: sshd.clientKeyPath,
    knownHosts: sshd.knownHostsPath,
  });
  const out: Record<string, number> = { 'db.scale': scale };
  try {
    P = await initCluster(local, { dir: `${dir}/primary`, port: await freePort(), settings, noSync: false });
    S = await initCluster(local, { dir: `${dir}/standby`, port: await freePort(), settings, noSync: false });
    await startInstance(P);
    await startInstance(S);
    const pgbench = (p: PgInstance, args: string[]) =>
      p.host.exec(
        ['runuser', '-u', p.osUser, '--', `${p.binDir}/pgbench`, '-h', p.socketDir, '-p', String(p.port), ...args],
        { sudo: true, cwd: '/', timeoutMs: 3_600_000 },
      );
    await psql(P, 'CREATE DATABASE bench;');
    const init = await timed(() => pgbench(P!, ['-i', '-q', '-s', String(scale), 'bench']));
    const size = await queryOne<{ b: string }>(P, `SELECT pg_database_size('bench')::text AS b`);
    out['db.pgbench_init_ms'] = round(init.ms);
    out['db.database_mb'] = round(Number(size.b) / 1048576);

    const rep = await buildReplica(P, S, {
      name: 'bench-standby',
      primaryAddress: '127.0.0.1',
      standbyAddress: '127.0.0.1',
    });
    const cluster = await queryOne<{ b: string }>(
      P,
      `SELECT sum(pg_database_size(datname))::text AS b FROM pg_database`,
    );
    out['db.replica_build_ms'] = round(rep.totalMs);
    out['db.basebackup_ms'] = round(rep.basebackupMs);
    out['db.basebackup_mb_per_s'] = round(Number(cluster.b) / 1048576 / (rep.basebackupMs / 1000));
    out['db.streaming_after_start_ms'] = round(rep.streamingMs);

    // lag under a write load
    const bytes: number[] = [];
    const seconds: number[] = [];
    const load = pgbench(P, ['-c', '4', '-j', '2', '-T', String(loadSeconds), '-n', 'bench']);
    let running = true;
    void load.finally(() => (running = false)).catch(() => undefined);
    while (running) {
      const l = await replicationLag(P, 'bench-standby').catch(() => undefined);
      if (l) {
        bytes.push(l.bytes);
        seconds.push(l.seconds);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    const tps = /tps = ([\d.]+)/.exec((await load).stdout)?.[1];
    out['db.load_tps'] = round(Number(tps ?? NaN));
    out['db.lag_samples'] = bytes.length;
    out['db.lag_bytes_p50'] = percentile(bytes, 50);
    out['db.lag_bytes_p95'] = percentile(bytes, 95);
    out['db.lag_bytes_max'] = Math.max(...bytes);
    out['db.lag_seconds_p50'] = round(percentile(seconds, 50), 4);
    out['db.lag_seconds_max'] = round(Math.max(...seconds), 4);
    const caught = await waitCaughtUp(P, 'bench-standby', 120_000);
    out['db.catch_up_after_load_ms'] = round(caught.ms);

    // connectivity through an SSH tunnel (pg client) and psql over SSH, as the flows run them
    await psql(P, "CREATE ROLE benchcheck LOGIN PASSWORD 'bench-check-pw-1';", { secrets: ['bench-check-pw-1'] });
    await grantAccess(P, '127.0.0.1', [{ database: 'bench', user: 'benchcheck' }], { listen: '127.0.0.1' });
    const target = { server: '127.0.0.1', port: P.port, database: 'bench', user: 'benchcheck' };
    const tunnel: number[] = [];
    const overSsh: number[] = [];
    for (let i = 0; i < checks; i++)
      tunnel.push((await timed(() => checkFromController(ssh, target, 'bench-check-pw-1'))).ms);
    for (let i = 0; i < checks; i++)
      overSsh.push((await timed(() => checkFromHost(ssh, target, 'bench-check-pw-1'))).ms);
    const one = await checkFromController(ssh, target, 'bench-check-pw-1');
    out['db.check_tunnel_first_ms'] = round(tunnel[0]!);
    out['db.check_tunnel_p50_ms'] = round(percentile(tunnel, 50));
    out['db.check_tunnel_query_p50_ms'] = round(one.queryMs, 3);
    out['db.check_psql_over_ssh_p50_ms'] = round(percentile(overSsh, 50));

    // promotion
    await waitCaughtUp(P, 'bench-standby', 60_000);
    const pr = await promote(S);
    out['db.promote_ms'] = round(pr.ms);
    return out;
  } finally {
    await ssh.close().catch(() => undefined);
    await sshd.stop().catch(() => undefined);
    for (const c of [P, S]) if (c) await destroyCluster(c).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}
