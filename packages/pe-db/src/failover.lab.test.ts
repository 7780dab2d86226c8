import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SshHost } from '@pe-stack/pe-host';
import { layouts } from '@pe-stack/pe-config-files';
import { FRESH_STAGE, LAB_SHAPES, labHost, ownLab, type Lab } from '@pe-stack/testkit/lab';
import {
  DEBIAN_DB_FILES,
  FenceRegistry,
  buildReplica,
  checkBudget,
  checkFromController,
  checkFromHost,
  fence,
  grantAccess,
  guardedStart,
  instanceFromLayout,
  pointServicesAt,
  promote,
  psql,
  query,
  queryOne,
  readCredentials,
  replicationLag,
  waitFor,
  writeCredentials,
  type DbCredentials,
  type PgInstance,
} from './index.js';

/**
 * Against the lab's debian profile (real PostgreSQL 15 and PuppetDB 7 on two
 * masters, namespaced hosts, SSH from the controller): the secondary's
 * puppetdb stores into the primary's database; then a synchronous replica on
 * secondary1 is promoted after the primary is powered off, with every
 * committed row present. This file changes both hosts, so it uses a lab of
 * its own and marks it used afterwards (other files' fixtures rebuild theirs).
 * Run inside the controller namespace (npm run test:lab).
 */
async function puppetdbRunning(host: SshHost): Promise<boolean> {
  const r = await host.exec(['curl', '-sf', 'http://127.0.0.1:8080/status/v1/services/puppetdb-status'], {
    allowFailure: true,
    timeoutMs: 10_000,
  });
  return r.code === 0 && (JSON.parse(r.stdout) as { state?: string }).state === 'running';
}

describe('pe-db in the lab (debian profile)', () => {
  let lab: Lab;
  let primary: SshHost;
  let secondary: SshHost;
  let P: PgInstance;
  let S: PgInstance;
  let creds: DbCredentials[];
  let controller: string;
  const certname = 'pe-db-lab.lab.test';

  beforeAll(async () => {
    // the pair after pe-certs and pe-mcollective (their changes don't touch PostgreSQL) or a fresh one;
    // a promoted standby is left to no later file
    lab = await ownLab(LAB_SHAPES.debianPairWithMcollective, {
      accepts: [FRESH_STAGE, 'secondary-certified', 'brokers-meshed'],
    });
    primary = labHost(lab, 'primary');
    secondary = labHost(lab, 'secondary1');
    P = instanceFromLayout(primary, layouts.debian);
    S = instanceFromLayout(secondary, layouts.debian);
    controller = await mkdtemp(join(tmpdir(), 'pe-db-lab-'));
  });

  afterAll(async () => {
    await primary?.close();
    await secondary?.close();
    if (controller) await rm(controller, { recursive: true, force: true });
  });

  it("the secondary's puppetdb stores into the primary's database", async () => {
    const sIp = lab.host('secondary1').ip;
    const cname = `master.${lab.config.domain}`;
    creds = await readCredentials(primary, DEBIAN_DB_FILES);
    const pdb = creds[0]!;
    const access = await grantAccess(P, sIp, [{ database: pdb.database, user: pdb.user }], {
      listen: '*',
      restart: true,
    });
    expect(access.confirmedLines).toHaveLength(1);
    expect(access.restartRequired).toBe(false);
    const target = { server: cname, port: 5432, database: pdb.database, user: pdb.user };
    const viaPsql = await checkFromHost(secondary, target, pdb.password);
    expect(viaPsql.clientAddress).toBe(sIp);
    expect(viaPsql.serverVersion).toMatch(/^15\./);
    const viaTunnel = await checkFromController(secondary, target, pdb.password);
    expect(viaTunnel.clientAddress).toBe(sIp);
    process.stderr.write(
      `pe-db lab: psql from secondary ${viaPsql.connectMs.toFixed(0)} ms, tunnel ${viaTunnel.connectMs.toFixed(0)} ms, SELECT 1 ${viaTunnel.queryMs.toFixed(2)} ms\n`,
    );

    const nodes = [
      { host: primary, files: DEBIAN_DB_FILES },
      { host: secondary, files: DEBIAN_DB_FILES },
    ];
    const budget = await checkBudget(P, nodes, { mode: 'fit' });
    expect(budget.fits).toBe(true);
    await writeCredentials(secondary, DEBIAN_DB_FILES, creds, { server: cname });
    await Promise.all(
      [primary, secondary].map((h) => h.exec(['systemctl', 'restart', 'puppetdb'], { timeoutMs: 400_000 })),
    );
    for (const h of [primary, secondary])
      expect((await waitFor(() => puppetdbRunning(h), 300_000, 2000)).ok).toBe(true);

    const body = JSON.stringify({
      certname,
      environment: 'production',
      values: { pe_db: 'stored-through-secondary1' },
      producer_timestamp: new Date().toISOString(),
      producer: 'secondary1.lab.test',
    });
    await secondary.exec(
      [
        'curl',
        '-sf',
        '-X',
        'POST',
        '-H',
        'Content-Type: application/json',
        '--data-binary',
        '@-',
        `http://127.0.0.1:8080/pdb/cmd/v1?command=replace_facts&version=5&certname=${certname}`,
      ],
      { stdin: body },
    );
    const stored = await waitFor(
      async () =>
        (await query(P, `SELECT 1 FROM certnames WHERE certname = '${certname}'`, { database: pdb.database }))
          .length === 1,
      60_000,
      500,
    );
    expect(stored.ok).toBe(true);
    const fact = await primary.exec(['curl', '-sf', `http://127.0.0.1:8080/pdb/query/v4/facts/pe_db`]);
    expect(fact.stdout).toContain('stored-through-secondary1');
    const conns = await queryOne<{ n: number }>(
      P,
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE client_addr = '${sIp}' AND usename = '${pdb.user}'`,
    );
    expect(conns.n).toBeGreaterThan(0);
    if (budget.setPoolSize !== undefined) expect(conns.n).toBeLessThanOrEqual(budget.setPoolSize * 2);
  });

  it('a synchronous replica on secondary1, promoted after power-off primary, has every committed row', async () => {
    const pIp = lab.host('primary').ip;
    const sIp = lab.host('secondary1').ip;
    const rep = await buildReplica(P, S, {
      name: 'secondary1.lab.test',
      primaryAddress: pIp,
      standbyAddress: sIp,
      synchronous: true,
      listen: '*',
    });
    expect(rep.lag.state).toBe('streaming');
    expect(rep.lag.syncState).toBe('sync');
    process.stderr.write(
      `pe-db lab: replica built in ${rep.totalMs.toFixed(0)} ms (base backup ${rep.basebackupMs.toFixed(0)} ms)\n`,
    );
    await psql(P, 'CREATE DATABASE pe_db_lab;');
    await psql(P, 'CREATE TABLE t (id serial PRIMARY KEY, v text);', { database: 'pe_db_lab' });
    for (let i = 0; i < 50; i++)
      await psql(P, `INSERT INTO t (v) VALUES ('row-${i}');`, { database: 'pe_db_lab', localCommit: false });
    const committed = (await queryOne<{ n: number }>(P, 'SELECT count(*)::int AS n FROM t', { database: 'pe_db_lab' }))
      .n;
    expect(committed).toBe(50);
    const lag = await replicationLag(P, 'secondary1.lab.test');
    process.stderr.write(`pe-db lab: lag ${lag.bytes} bytes, ${lag.seconds} s\n`);

    await lab.powerOff('primary');
    const registry = new FenceRegistry(join(controller, 'fences.json'));
    const f = await fence(P, { newPrimary: 'secondary1.lab.test', reason: 'power-off primary' }, registry, {
      reachTimeoutMs: 5000,
    });
    expect(f.how).toBe('unreachable');
    const pr = await promote(S);
    process.stderr.write(`pe-db lab: promoted in ${pr.ms.toFixed(0)} ms\n`);
    expect(pr.resetSynchronous).toBe(false);
    lab.moveCname('secondary1');
    expect((await queryOne<{ n: number }>(S, 'SELECT count(*)::int AS n FROM t', { database: 'pe_db_lab' })).n).toBe(
      committed,
    );
    expect(
      await query(S, `SELECT 1 FROM certnames WHERE certname = '${certname}'`, { database: creds[0]!.database }),
    ).toHaveLength(1);
    // the secondary's services now use the promoted database
    await pointServicesAt(secondary, DEBIAN_DB_FILES, 'localhost');
    await secondary.exec(['systemctl', 'restart', 'puppetdb'], { timeoutMs: 400_000 });
    expect((await waitFor(() => puppetdbRunning(secondary), 300_000, 2000)).ok).toBe(true);
    const fact = await secondary.exec(['curl', '-sf', 'http://127.0.0.1:8080/pdb/query/v4/facts/pe_db']);
    expect(fact.stdout).toContain('stored-through-secondary1');
    // the powered-off primary is recorded as fenced: our tools will not start it
    await expect(guardedStart(P, registry)).rejects.toMatchObject({ code: 'E_DB_FENCED' });
  });
});
