import { chmodSync, rmSync, mkdtempSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DryRunHost, LocalHost, MASK, SshHost, writeFiles, type BatchWrite, type Host } from '@pe-stack/pe-host';
import { startTestSshd, freePort } from '@pe-stack/testkit/sshd';
import {
  DbAuthError,
  DbConfigError,
  DbFencedError,
  FENCE_MARKER,
  accessGranted,
  isRunning,
  postmasterPid,
  DbBudgetError,
  DbConnectError,
  DbHbaRejectedError,
  checkBudget,
  checkFromController,
  checkFromHost,
  destroyCluster,
  grantAccess,
  grantAccessMany,
  hbaFileRules,
  hbaMethods,
  hbaRulesAndMethods,
  hostCidr,
  hbaRecord,
  initCluster,
  psql,
  queryOne,
  revokeAccess,
  scramVerifier,
  startInstance,
  type PgInstance,
  type ServiceDbFile,
} from './index.js';

const PDB_PW = 'pdb-Secret-pw-4821';
const CONSOLE_PW = 'console-Secret-pw-77';
const host = new LocalHost({ name: 'primary.test' });
const secondary = new LocalHost({ name: 'secondary1.test' });
let primary: PgInstance;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pe-db-access-'));
  chmodSync(dir, 0o755);
  primary = await initCluster(host, {
    dir: `${dir}/primary`,
    port: await freePort(),
    settings: { max_connections: 100, superuser_reserved_connections: 3 },
  });
  await startInstance(primary);
  // the primary's service roles, as the puppetdb/console installers create them (password_encryption = scram-sha-256)
  await psql(
    primary,
    `CREATE ROLE pdb LOGIN PASSWORD '${PDB_PW}'; CREATE DATABASE pdb OWNER pdb;\nCREATE ROLE console LOGIN PASSWORD '${CONSOLE_PW}'; CREATE DATABASE console OWNER console;\n`,
    { secrets: [PDB_PW, CONSOLE_PW] },
  );
});

afterAll(async () => {
  if (primary) await destroyCluster(primary);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const target = (over: Partial<{ server: string; port: number; database: string; user: string }> = {}) => ({
  server: '127.0.0.1',
  port: primary.port,
  database: 'pdb',
  user: 'pdb',
  ...over,
});

describe('primary access rules', () => {
  it('refuses subnets, host names and keyword rules', () => {
    expect(() => hostCidr('10.0.0.0/24')).toThrow(/subnet/);
    expect(() => hostCidr('db.example.com')).toThrow(/single IP/);
    expect(hostCidr('fd00::5')).toBe('fd00::5/128');
    expect(() => hbaRecord({ database: 'all', user: 'pdb' }, '10.0.0.5')).toThrow(/keywords/);
    expect(() => hbaRecord({ database: 'pdb', user: 'all' }, '10.0.0.5')).toThrow(/keywords/);
    expect(hbaRecord({ database: 'pdb', user: 'pdb' }, '10.0.0.5')).toEqual({
      type: 'host',
      database: 'pdb',
      user: 'pdb',
      address: '10.0.0.5/32',
      method: 'scram-sha-256',
    });
  });

  it('before any rule, a connection is rejected by pg_hba with a typed error naming host, database, user and the fix', async () => {
    const e = await checkFromHost(secondary, target(), PDB_PW).catch((x: unknown) => x as Error);
    expect(e).toBeInstanceOf(DbHbaRejectedError);
    const err = e as DbHbaRejectedError;
    expect(err.code).toBe('E_DB_HBA');
    expect(err.host).toBe('secondary1.test');
    expect(err.message).toContain('database "pdb"');
    expect(err.message).toContain('user "pdb"');
    expect(err.message).toContain('127.0.0.1');
    expect(err.message).toMatch(/grantAccess/);
    expect(err.clientAddress).toBe('127.0.0.1');
  });

  it('a dry run plans the pg_hba change, the listen_addresses change and the reload, and changes nothing', async () => {
    const dry = new DryRunHost(host);
    const before = readFileSync(primary.hbaFile, 'utf8');
    const conf = readFileSync(primary.confFile, 'utf8');
    const r = await grantAccess({ ...primary, host: dry }, '10.9.8.7', [{ database: 'pdb', user: 'pdb' }], {
      listen: '10.9.8.1',
    });
    expect(r).toMatchObject({
      dryRun: true,
      hbaChanged: true,
      listenChanged: true,
      restartRequired: true,
      confirmedLines: [],
    });
    expect(readFileSync(primary.hbaFile, 'utf8')).toBe(before);
    expect(readFileSync(primary.confFile, 'utf8')).toBe(conf);
    const writes = dry.mutations.filter((m) => m.kind === 'write') as { path: string; diff: string }[];
    expect(writes.map((w) => w.path)).toEqual([primary.hbaFile, primary.confFile]);
    expect(writes[0]!.diff).toMatch(/^\+host\s+pdb\s+pdb\s+10\.9\.8\.7\/32\s+scram-sha-256$/m);
    expect(writes[1]!.diff).toMatch(/^\+listen_addresses = '127\.0\.0\.1,10\.9\.8\.1'$/m);
    // one reload for both files (the write of both is one round trip on a host that batches)
    expect(dry.mutations.filter((m) => m.kind === 'exec')).toHaveLength(1);
  });

  it('adds one scram-sha-256 record per database/user pair, reloads and confirms them in pg_hba_file_rules', async () => {
    const r = await grantAccess(
      primary,
      '127.0.0.1',
      [
        { database: 'pdb', user: 'pdb' },
        { database: 'console', user: 'console' },
      ],
      { listen: '127.0.0.1' },
    );
    expect(r.hbaChanged).toBe(true);
    expect(r.confirmedLines).toHaveLength(2);
    const rules = await hbaFileRules(primary);
    const ours = rules.filter((x) => x.type === 'host');
    expect(ours.map((x) => [x.database, x.user_name, x.address, x.netmask, x.auth_method])).toEqual([
      [['pdb'], ['pdb'], '127.0.0.1', '255.255.255.255', 'scram-sha-256'],
      [['console'], ['console'], '127.0.0.1', '255.255.255.255', 'scram-sha-256'],
    ]);
    expect(rules.every((x) => x.auth_method !== 'trust')).toBe(true);
    expect(
      await accessGranted(primary, '127.0.0.1', [
        { database: 'pdb', user: 'pdb' },
        { database: 'console', user: 'console' },
      ]),
    ).toBe(true);
    expect(await accessGranted(primary, '127.0.0.1', [{ database: 'pdb', user: 'console' }])).toBe(false);
    expect(await accessGranted(primary, '127.0.0.9', [{ database: 'pdb', user: 'pdb' }])).toBe(false);
    // idempotent
    const again = await grantAccess(primary, '127.0.0.1', [{ database: 'pdb', user: 'pdb' }], { listen: '127.0.0.1' });
    expect(again.hbaChanged).toBe(false);
    expect(readFileSync(primary.hbaFile, 'utf8').match(/127\.0\.0\.1\/32/g)).toHaveLength(2);
  });

  it('grants several hosts in one pg_hba change, one reload and one confirmation (grantAccessMany), idempotent', async () => {
    const before = readFileSync(primary.hbaFile, 'utf8');
    const targets = [
      { address: '127.0.0.21', grants: [{ database: 'pdb', user: 'pdb' }] },
      {
        address: '127.0.0.22',
        grants: [
          { database: 'pdb', user: 'pdb' },
          { database: 'console', user: 'console' },
        ],
      },
    ];
    const r = await grantAccessMany(primary, targets, { listen: '127.0.0.1' });
    expect(r.hbaChanged).toBe(true);
    expect(r.records.map((x) => `${x.address} ${x.database}/${x.user}`)).toEqual([
      '127.0.0.21/32 pdb/pdb',
      '127.0.0.22/32 pdb/pdb',
      '127.0.0.22/32 console/console',
    ]);
    expect(r.confirmedLines).toHaveLength(3);
    expect(await accessGranted(primary, '127.0.0.21', targets[0]!.grants)).toBe(true);
    expect(await accessGranted(primary, '127.0.0.22', targets[1]!.grants)).toBe(true);
    expect(await accessGranted(primary, '127.0.0.21', [{ database: 'console', user: 'console' }])).toBe(false);
    expect((await grantAccessMany(primary, targets, { listen: '127.0.0.1' })).hbaChanged).toBe(false);
    for (const t of targets) await revokeAccess(primary, t.address);
    expect(readFileSync(primary.hbaFile, 'utf8')).toBe(before);
  });

  it('a secondary connects with psql as its service would, the password only in the environment', async () => {
    const r = await checkFromHost(secondary, target(), PDB_PW);
    expect(r.method).toBe('psql');
    expect(r.serverVersionNum).toBeGreaterThanOrEqual(150000);
    expect(r.serverVersion).toMatch(/^15\./);
    expect(r.clientAddress).toBe('127.0.0.1');
    expect(r.connectMs).toBeGreaterThan(0);
    expect(r.queryMs).toBeGreaterThan(0);
  });

  it('the controller connects with pg through a tunnel (Host.forward) and reports version and latency', async () => {
    const r = await checkFromController(host, target({ database: 'console', user: 'console' }), CONSOLE_PW);
    expect(r.method).toBe('pg-tunnel');
    expect(r.serverVersion).toMatch(/^15\./);
    expect(r.connectMs).toBeGreaterThan(0);
    expect(r.queryMs).toBeGreaterThan(0);
  });

  it('a wrong password is E_DB_AUTH on both paths, and neither the wrong nor the right password is in the error', async () => {
    const wrong = 'Wrong-password-xyz1';
    for (const check of [checkFromHost, checkFromController]) {
      const via = check === checkFromHost ? secondary : host;
      const e = (await check(via, target(), wrong).catch((x: unknown) => x)) as DbAuthError;
      expect(e).toBeInstanceOf(DbAuthError);
      expect(e.code).toBe('E_DB_AUTH');
      expect(e.message).toContain('user "pdb"');
      expect(e.message).toContain('database "pdb"');
      expect(e.hint).toMatch(/password/);
      const all = `${e.message} ${JSON.stringify(e)} ${e.stack} ${String((e.cause as Error | undefined)?.message ?? '')}`;
      expect(all).not.toContain(wrong);
      expect(all).not.toContain(PDB_PW);
    }
    expect(secondary.redactor.redact(`x${PDB_PW}x`)).toBe(`x${MASK}x`);
  });

  it('an unreachable port is E_DB_CONNECT on both paths', async () => {
    const closed = await freePort();
    const a = await checkFromHost(secondary, target({ port: closed }), PDB_PW).then(
      () => new Error('connected'),
      (x: unknown) => x as Error,
    );
    expect(a).toBeInstanceOf(DbConnectError);
    expect(a.message).toContain(`127.0.0.1:${closed}`);
    expect((a as DbConnectError).hint).toMatch(/listen_addresses/);
    const b = await checkFromController(host, target({ port: closed }), PDB_PW).then(
      () => new Error('connected'),
      (x: unknown) => x as Error,
    );
    expect(b).toBeInstanceOf(DbConnectError);
  });

  it('listen_addresses: a new address is written and takes effect after the restart it needs', async () => {
    const r1 = await grantAccess(primary, '127.0.0.1', [{ database: 'pdb', user: 'pdb' }], { listen: '127.0.0.2' });
    expect(r1.listenChanged).toBe(true);
    expect(r1.restartRequired).toBe(true);
    await expect(checkFromHost(secondary, target({ server: '127.0.0.2' }), PDB_PW)).rejects.toBeInstanceOf(
      DbConnectError,
    );
    const r2 = await grantAccess(primary, '127.0.0.1', [{ database: 'pdb', user: 'pdb' }], {
      listen: '127.0.0.2',
      restart: true,
    });
    expect(r2.restartRequired).toBe(false);
    expect((await queryOne<{ v: string }>(primary, `SELECT current_setting('listen_addresses') AS v`)).v).toBe(
      '127.0.0.1,127.0.0.2',
    );
    const ok = await checkFromHost(secondary, target({ server: '127.0.0.2' }), PDB_PW);
    expect(ok.serverVersion).toMatch(/^15\./);
  });

  it('a password set from a SCRAM verifier computed here logs in (the clear password never reaches the server)', async () => {
    const pw = 'verifier-only-pw-31';
    await psql(primary, `CREATE ROLE verif LOGIN PASSWORD '${scramVerifier(pw)}';`);
    await grantAccess(primary, '127.0.0.1', [{ database: 'pdb', user: 'verif' }], { listen: '127.0.0.1' });
    const r = await checkFromController(host, target({ user: 'verif' }), pw);
    expect(r.serverVersionNum).toBeGreaterThan(0);
    await expect(checkFromController(host, target({ user: 'verif' }), `${pw}x`)).rejects.toBeInstanceOf(DbAuthError);
  });

  it('a role whose password is stored as md5 (PE 3 pe-postgresql: password_encryption = md5) gets an md5 record, and logs in', async () => {
    const pw = 'legacy-md5-pw-58';
    await psql(primary, `SET password_encryption = 'md5';\nCREATE ROLE legacy LOGIN PASSWORD '${pw}';\n`, {
      secrets: [pw],
    });
    expect(await accessGranted(primary, '127.0.0.1', [{ database: 'pdb', user: 'legacy' }])).toBe(false);
    const g = await grantAccess(primary, '127.0.0.1', [{ database: 'pdb', user: 'legacy' }], { listen: '127.0.0.1' });
    expect(g.records).toEqual([expect.objectContaining({ user: 'legacy', method: 'md5' })]);
    expect(await accessGranted(primary, '127.0.0.1', [{ database: 'pdb', user: 'legacy' }])).toBe(true);
    const r = await checkFromController(host, target({ user: 'legacy' }), pw);
    expect(r.serverVersionNum).toBeGreaterThan(0);
    // the SCRAM roles keep their scram-sha-256 records
    expect(
      (await hbaFileRules(primary)).find((x) => x.user_name?.[0] === 'pdb' && x.address === '127.0.0.1')?.auth_method,
    ).toBe('scram-sha-256');
    // rules and methods in one psql run say what the two separate queries say
    const grants = [
      { database: 'pdb', user: 'legacy' },
      { database: 'pdb', user: 'pdb' },
      { database: 'pdb', user: 'nosuchrole' },
    ];
    const one = await hbaRulesAndMethods(primary, grants);
    expect(one.rules).toEqual(await hbaFileRules(primary));
    expect(one.methods).toEqual(await hbaMethods(primary, grants));
    expect(one.methods.get('legacy')).toBe('md5');
    expect((await hbaRulesAndMethods(primary, [])).methods.size).toBe(0);
  });

  it('removing a secondary removes its rules, and its connections are rejected again', async () => {
    const r = await revokeAccess(primary, '127.0.0.1');
    expect(r.removed).toBe(4);
    expect((await hbaFileRules(primary)).filter((x) => x.type !== 'local')).toEqual([]);
    await expect(checkFromHost(secondary, target(), PDB_PW)).rejects.toBeInstanceOf(DbHbaRejectedError);
    expect(await accessGranted(primary, '127.0.0.1', [{ database: 'pdb', user: 'pdb' }])).toBe(false);
    expect((await revokeAccess(primary, '127.0.0.1')).hbaChanged).toBe(false);
  });
});

/** Counts what would be one SSH round trip each (writeFiles: one command, as SshHost does it). */
function counting(inner: Host): { host: Host; calls: string[] } {
  const calls: string[] = [];
  const ops = new Set(['exec', 'readFile', 'writeFile', 'stat', 'exists', 'remove', 'mkdir', 'spawn']);
  const host = new Proxy(inner, {
    get(t, k, r) {
      if (k === 'writeFiles') {
        return (files: readonly BatchWrite[]) => {
          calls.push('writeFiles');
          return writeFiles(inner, files);
        };
      }
      const v = Reflect.get(t, k, r) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        if (ops.has(String(k))) calls.push(String(k));
        return (v as (...a: unknown[]) => unknown).apply(t, args);
      };
    },
  });
  return { host, calls };
}

describe('first join on a fresh primary: pg_hba records and listen_addresses with the restart (round trips)', () => {
  let fresh: PgInstance;
  beforeAll(async () => {
    fresh = await initCluster(host, { dir: `${dir}/fresh`, port: await freePort() });
    await startInstance(fresh);
    await psql(fresh, `CREATE ROLE pdb LOGIN PASSWORD '${PDB_PW}'; CREATE DATABASE pdb OWNER pdb;\n`, {
      secrets: [PDB_PW],
    });
  });
  afterAll(async () => {
    if (fresh) await destroyCluster(fresh);
  });
  const grants = [{ database: 'pdb', user: 'pdb' }];

  it('check 1, apply 5 (2 file reads a run cache answers), re-check 1 round trip; then the secondary connects on the new address', async () => {
    const c = counting(host);
    const P = { ...fresh, host: c.host };
    expect(await accessGranted(P, '127.0.0.1', grants, { listen: '127.0.0.3' })).toBe(false);
    expect(c.calls).toEqual(['exec']);
    c.calls.length = 0;
    const pid = await postmasterPid(fresh);
    const r = await grantAccessMany(P, [{ address: '127.0.0.1', grants }], { listen: '127.0.0.3', restart: true });
    expect(r).toMatchObject({ hbaChanged: true, listenChanged: true, restartRequired: false, dryRun: false });
    expect(r.confirmedLines).toHaveLength(1);
    expect(c.calls).toEqual(['exec', 'readFile', 'readFile', 'writeFiles', 'exec']);
    expect(await postmasterPid(fresh)).not.toBe(pid);
    c.calls.length = 0;
    expect(await accessGranted(P, '127.0.0.1', grants, { listen: '127.0.0.3' })).toBe(true);
    expect(c.calls).toEqual(['exec']);
    const ok = await checkFromHost(
      secondary,
      { server: '127.0.0.3', port: fresh.port, database: 'pdb', user: 'pdb' },
      PDB_PW,
    );
    expect(ok.serverVersion).toMatch(/^15\./);
    // again: one read-only psql run, no restart
    c.calls.length = 0;
    const pid2 = await postmasterPid(fresh);
    expect(
      (await grantAccessMany(P, [{ address: '127.0.0.1', grants }], { listen: '127.0.0.3', restart: true }))
        .confirmedLines,
    ).toEqual(r.confirmedLines);
    expect(c.calls).toEqual(['exec']);
    expect(await postmasterPid(fresh)).toBe(pid2);
  });

  it('a fence marker stops the restart before the server is touched (E_DB_FENCED); it keeps running', async () => {
    const marker = join(fresh.dataDir, FENCE_MARKER);
    writeFileSync(
      marker,
      `${JSON.stringify({ host: 'primary.test', dataDir: fresh.dataDir, at: '2024-05-01T10:00:00Z', newPrimary: 'secondary1.test', how: 'stopped', reason: 'test' }, null, 2)}\n`,
    );
    try {
      const pid = await postmasterPid(fresh);
      const e = (await grantAccess(fresh, '127.0.0.1', grants, { listen: '127.0.0.4', restart: true }).catch(
        (x: unknown) => x,
      )) as DbFencedError;
      expect(e).toBeInstanceOf(DbFencedError);
      expect(e.code).toBe('E_DB_FENCED');
      expect(e.host).toBe('primary.test');
      expect(e.message).toContain('2024-05-01T10:00:00Z');
      expect(e.message).toContain('secondary1.test');
      expect(await isRunning(fresh)).toBe(true);
      expect(await postmasterPid(fresh)).toBe(pid);
    } finally {
      rmSync(marker, { force: true });
    }
    // without the marker the restart the file still asks for happens
    const r = await grantAccess(fresh, '127.0.0.1', grants, { listen: '127.0.0.4', restart: true });
    expect(r.restartRequired).toBe(false);
    expect((await queryOne<{ v: string }>(fresh, `SELECT current_setting('listen_addresses') AS v`)).v).toBe(
      '127.0.0.1,127.0.0.3,127.0.0.4',
    );
  });

  it('a pg_hba.conf PostgreSQL cannot parse: both files put back, no restart, the line named', async () => {
    const bad = `${readFileSync(fresh.hbaFile, 'utf8')}host all all 999.1.2.3/32 scram-sha-256\n`;
    writeFileSync(fresh.hbaFile, bad);
    const conf = readFileSync(fresh.confFile, 'utf8');
    const pid = await postmasterPid(fresh);
    try {
      const e = (await grantAccess(fresh, '127.0.0.9', grants, { listen: '127.0.0.5', restart: true }).catch(
        (x: unknown) => x,
      )) as DbConfigError;
      expect(e).toBeInstanceOf(DbConfigError);
      expect(e.message).toMatch(/line \d+: .*999\.1\.2\.3/);
      expect(e.message).toContain('not restarted');
      expect(readFileSync(fresh.hbaFile, 'utf8')).toBe(bad);
      expect(readFileSync(fresh.confFile, 'utf8')).toBe(conf);
      expect(await postmasterPid(fresh)).toBe(pid);
    } finally {
      writeFileSync(fresh.hbaFile, bad.replace('host all all 999.1.2.3/32 scram-sha-256\n', ''));
    }
  });
});

describe('connection budget', () => {
  const node = (name: string, ini: string): { host: LocalHost; files: ServiceDbFile[] } => {
    const p = join(dir, name, 'database.ini');
    mkdirSync(join(dir, name), { recursive: true });
    writeFileSync(p, ini);
    return {
      host: new LocalHost({ name }),
      files: [{ service: 'puppetdb', path: p, format: 'ini', section: 'database' }],
    };
  };
  const ini = (server: string) => `[database]\nsubname = //${server}:5432/pdb\nusername = pdb\npassword = ${PDB_PW}\n`;

  it('three puppetdbs with default pools (2 x 25 each) exceed max_connections 100: refused with the numbers and the fix', async () => {
    const nodes = [node('n1', ini('primary')), node('n2', ini('primary')), node('n3', ini('primary'))];
    const e = (await checkBudget(primary, nodes).catch((x: unknown) => x)) as DbBudgetError;
    expect(e).toBeInstanceOf(DbBudgetError);
    expect(e.code).toBe('E_DB_BUDGET');
    expect(e.message).toContain('150 connections');
    expect(e.message).toContain('allows 92');
    expect(e.hint).toContain('maximum-pool-size = 15');
  });

  it('fit mode writes maximum-pool-size so the total fits, and PostgreSQL really serves that many connections', async () => {
    const nodes = [
      node('f1', ini('primary')),
      node('f2', ini('primary')),
      node('f3', `${ini('primary')}\n[read-database]\nsubname = //primary:5432/pdb\nmaximum-pool-size = 40\n`),
    ];
    const r = await checkBudget(primary, nodes, { mode: 'fit' });
    expect(r.setPoolSize).toBe(15);
    expect(r.total).toBe(90);
    expect(r.fits).toBe(true);
    expect(readFileSync(nodes[0]!.files[0]!.path, 'utf8')).toContain('maximum-pool-size = 15');
    expect(readFileSync(nodes[2]!.files[0]!.path, 'utf8').match(/maximum-pool-size = 15/g)).toHaveLength(2);
    // second run: nothing to do
    const again = await checkBudget(primary, nodes, { mode: 'fit' });
    expect(again.setPoolSize).toBeUndefined();
    expect(again.writes).toEqual([]);

    // the arithmetic is PostgreSQL's: max_connections - superuser_reserved_connections non-superuser sessions, no more
    await grantAccess(primary, '127.0.0.1', [{ database: 'pdb', user: 'pdb' }], { listen: '127.0.0.1' });
    const clients: pg.Client[] = [];
    try {
      const open = async () => {
        const c = new pg.Client({
          host: '127.0.0.1',
          port: primary.port,
          user: 'pdb',
          database: 'pdb',
          password: PDB_PW,
        });
        c.on('error', () => undefined);
        await c.connect();
        clients.push(c);
      };
      for (let i = 0; i < 10; i++) await Promise.all(Array.from({ length: 9 }, open));
      expect(clients).toHaveLength(90);
      for (let i = 0; i < 7; i++) await open();
      const e = (await open().catch((x: unknown) => x)) as { code?: string; message: string };
      expect(e.code).toBe('53300');
    } finally {
      await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    }
  });
});

describe('connectivity over SSH (SshHost to a throwaway sshd on 127.0.0.1)', () => {
  let sshd: Awaited<ReturnType<typeof startTestSshd>>;
  let ssh: SshHost;
  beforeAll(async () => {
    sshd = await startTestSshd();
    ssh = new SshHost({
      name: 'secondary-over-ssh.test',
      address: '127.0.0.1',
      port: sshd.port,
      user: 'root',
      privateKey: sshd.clientKeyPath,
      knownHosts: sshd.knownHostsPath,
    });
    await grantAccess(primary, '127.0.0.1', [{ database: 'pdb', user: 'pdb' }], { listen: '127.0.0.1' });
  });
  afterAll(async () => {
    await ssh?.close();
    await sshd?.stop();
  });

  it('psql on the remote host, the password carried in the environment over the channel', async () => {
    const r = await checkFromHost(ssh, target(), PDB_PW);
    expect(r.from).toBe('secondary-over-ssh.test');
    expect(r.serverVersion).toMatch(/^15\./);
    const e = (await checkFromHost(ssh, target(), 'Wrong-over-ssh-77').catch((x: unknown) => x)) as DbAuthError;
    expect(e).toBeInstanceOf(DbAuthError);
    expect(`${e.message} ${JSON.stringify(e)}`).not.toContain('Wrong-over-ssh-77');
  });

  it('the pg client from the controller through an SSH port forward', async () => {
    const r = await checkFromController(ssh, target(), PDB_PW);
    expect(r.method).toBe('pg-tunnel');
    expect(r.from).toBe('controller via secondary-over-ssh.test');
    expect(r.clientAddress).toBe('127.0.0.1');
    const closed = await freePort();
    await expect(checkFromController(ssh, target({ port: closed }), PDB_PW)).rejects.toBeInstanceOf(DbConnectError);
    await expect(
      checkFromController(ssh, target({ user: 'console', database: 'console' }), CONSOLE_PW),
    ).rejects.toBeInstanceOf(DbHbaRejectedError);
  });
});
