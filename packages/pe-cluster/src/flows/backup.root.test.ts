import { promises as fs } from 'node:fs';
import { dirname, join } from 'node:path';
import { layouts } from '@pe-stack/pe-config-files';
import { OpensslAgent, OpensslCa } from '@pe-stack/pe-certs';
import { psql, query } from '@pe-stack/pe-db';
import { LocalHost, treeManifest } from '@pe-stack/pe-host';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../main.js';
import { openClusterBackup, restoreCluster, verifyClusterBackup, type BackupManifest } from './backup.js';
import { backupKeyPath, loadBackupKey, writeMacFile } from './backup-key.js';
import { syncCaCopy } from './ca-switch.js';
import { remoteOf } from './cluster-access.js';
import { readState, updateState } from '../state.js';
import { DB_PW, makeWorld, type World } from '@pe-stack/testkit/ha-world';

// Root only (PostgreSQL 15, openssl): the primary of @pe-stack/testkit/ha-world (real CA, real PostgreSQL with a puppetdb database).

const L = layouts.debian;
const P = 'p.rt.test';
let w: World;
beforeAll(async () => {
  w = await makeWorld({ secondCa: false });
  await psql(w.pg[P]!, "INSERT INTO reports (node) SELECT 'node-' || g FROM generate_series(1, 120) g;", {
    database: 'puppetdb',
  });
}, 120_000);
afterAll(async () => {
  await w?.destroy();
});

const count = async () =>
  (await query<{ n: number }>(w.pg[P]!, 'SELECT count(*)::int AS n FROM reports', { database: 'puppetdb' }))[0]!.n;
const caTree = async () => [...(await treeManifest(new LocalHost(), w.J(P, L.dirs.cadir)))].sort();
const dbIni = () => fs.readFile(w.J(P, L.files.puppetdbDatabaseIni!.path), 'utf8');
const keyOf = (c: { inventory: Parameters<typeof backupKeyPath>[0] }) => ({ keyFile: backupKeyPath(c.inventory) });

/** An archive rebuilt from a real backup with its manifest changed by `edit`, authenticated with the real key (an insider's forgery). */
async function reforged(
  c: { inventory: Parameters<typeof backupKeyPath>[0] },
  archive: string,
  name: string,
  edit: (m: BackupManifest, dir: string) => Promise<void>,
): Promise<string> {
  const v = await openClusterBackup(archive, keyOf(c));
  const m = v.manifest;
  await edit(m, v.dir);
  await fs.writeFile(join(v.dir, 'MANIFEST.json'), JSON.stringify(m));
  const out = join(w.root, `${name}.tar`);
  await new LocalHost().exec(['tar', '-C', v.dir, '-cf', out, '.']);
  await v.dispose();
  await writeMacFile(await loadBackupKey(keyOf(c).keyFile, { create: false }), out);
  return out;
}

describe('backup and restore', () => {
  it('backup: one timestamped 0600 archive with the CA, the credentials and a database dump; every member checksummed; verified', async () => {
    const c = await w.cluster();
    const r = await c.backup();
    await c.close();
    expect(r.archive).toMatch(/pe-cluster-ha-\d{8}T\d{9}Z\.tar$/);
    expect((await fs.stat(r.archive)).mode & 0o777).toBe(0o600);
    expect(await fs.readFile(r.checksumFile, 'utf8')).toMatch(new RegExp(`^${r.sha256}  pe-cluster-ha-`));
    expect(JSON.parse(await fs.readFile(r.hmacFile, 'utf8'))).toMatchObject({ alg: 'HMAC-SHA256' });
    expect((await fs.stat(r.keyFile)).mode & 0o777).toBe(0o600);
    expect(r.keyFile.startsWith(c.inventory.backupDir)).toBe(false);
    expect(Object.keys(r.manifest.members)).toEqual(
      expect.arrayContaining(['credentials/etc/puppetdb/conf.d/database.ini', 'db/puppetdb.dump']),
    );
    expect(Object.keys(r.manifest.members).some((m) => /^ca\/ca-p\.rt\.test-.*\.tar$/.test(m))).toBe(true);
    expect(r.manifest.databases).toEqual({ 'db/puppetdb.dump': 'puppetdb' });
    expect((await verifyClusterBackup(r.archive, keyOf(c))).created).toBe(r.manifest.created);
  });

  it('restore authenticates before it writes: a flipped byte, a missing .hmac or a changed member is refused and nothing changes on the master', async () => {
    const c = await w.cluster();
    const r = await c.backup();
    // a flipped byte in the archive
    const bad = join(w.root, 'bad.tar');
    const bytes = await fs.readFile(r.archive);
    const mid = bytes.length >> 1;
    bytes[mid] = bytes[mid]! ^ 0x01;
    await fs.writeFile(bad, bytes);
    await fs.copyFile(r.hmacFile, `${bad}.hmac`);
    const before = { rows: await count(), ca: await caTree(), ini: await dbIni() };
    await psql(w.pg[P]!, 'DELETE FROM reports WHERE id > 100;', { database: 'puppetdb' });
    const gone = await count();
    await expect(c.restore(bad, { force: true })).rejects.toMatchObject({
      code: 'E_BACKUP',
      message: expect.stringMatching(/does not match its HMAC/),
    });
    // no .hmac (as every archive made before backups were authenticated): the .sha256 beside it counts for nothing
    const lone = join(w.root, 'lone.tar');
    await fs.copyFile(r.archive, lone);
    await fs.writeFile(`${lone}.sha256`, (await fs.readFile(r.checksumFile, 'utf8')).replace(/\S+$/m, 'lone.tar'));
    await expect(c.restore(lone, { force: true })).rejects.toMatchObject({
      code: 'E_BACKUP',
      message: expect.stringMatching(/\.hmac/),
    });
    // a member changed and the archive re-authenticated with the key: the manifest still catches it
    const forged = await reforged(c, r.archive, 'forged', async (_m, dir) => {
      await fs.appendFile(join(dir, 'credentials/etc/puppetdb/conf.d/database.ini'), '# changed\n');
    });
    await expect(c.restore(forged, { force: true })).rejects.toMatchObject({
      code: 'E_BACKUP',
      message: expect.stringMatching(/database\.ini \(sha256 differs\)/),
    });
    expect({ rows: await count(), ca: await caTree(), ini: await dbIni() }).toEqual({
      rows: gone,
      ca: before.ca,
      ini: before.ini,
    });
    await c.close();
  });

  it('restore puts back the CA, the credentials and the rows, after a verified safety backup of what was there; the password is in no output', async () => {
    const c = await w.cluster();
    const r = await c.backup();
    const want = { rows: await count(), ca: await caTree(), ini: await dbIni() };
    // the CA signs something, the credentials change, rows go
    const local = new LocalHost();
    const ca = new OpensslCa(local, w.J(P, L.dirs.cadir));
    const a = new OpensslAgent(ca, join(w.root, 'agents', 'late'), { key: { type: 'ec' } });
    await a.submit(local, 'late.rt.test', []);
    await ca.sign('late.rt.test', { allowed: [] });
    await fs.writeFile(w.J(P, L.files.puppetdbDatabaseIni!.path), want.ini.replace(DB_PW, 'Something-Else-1'));
    await psql(w.pg[P]!, 'DELETE FROM reports;', { database: 'puppetdb' });
    // the same CA in another state: refused without --force (nothing written)
    await expect(c.restore(r.archive)).rejects.toMatchObject({ code: expect.stringMatching(/^E_CA/) });
    expect(await count()).toBe(0);
    await c.close();
    // through the CLI
    let out = '';
    let err = '';
    const code = await main(['-i', w.inventoryPath, '--json', 'restore', r.archive, '--force'], {
      stdout: { write: (s: string) => (out += s) },
      stderr: { write: (s: string) => (err += s) },
      env: {},
      cluster: w.options(),
    });
    // the world's inventory replaces service commands: the loader warns about that, and nothing else is said
    expect(err.replace(/^warning: .*\n/gm, '')).toBe('');
    expect(code).toBe(0);
    const rep = JSON.parse(out.trim()) as {
      type: string;
      safetyBackup: string;
      ca: { changed: boolean; previous: string };
    };
    expect(rep).toMatchObject({ type: 'restore', ca: { changed: true } });
    expect({ rows: await count(), ca: await caTree(), ini: await dbIni() }).toEqual(want);
    // the state before the restore was kept, verified, and the replaced CA directory kept aside
    expect((await verifyClusterBackup(rep.safetyBackup, { keyFile: backupKeyPath(c.inventory) })).host).toBe(P);
    expect(await fs.stat(w.J(P, rep.ca.previous))).toBeDefined();
    expect(out).not.toContain(DB_PW);
    expect(out).not.toContain('Something-Else-1');
  });

  it('a hostile archive (a destination the manifest names, a database name that is a conninfo string) is refused before any host is contacted', async () => {
    const c = await w.cluster();
    const r = await c.backup();
    const ini = 'credentials/etc/puppetdb/conf.d/database.ini';
    const puppetConf = L.files.puppetConf!.path;
    const confBefore = await fs.readFile(w.J(P, puppetConf), 'utf8');
    const hostile = [
      await reforged(c, r.archive, 'dest', async (m) => {
        m.credentials[ini] = puppetConf;
      }),
      await reforged(c, r.archive, 'conninfo', async (m) => {
        m.databases['db/puppetdb.dump'] = 'puppetdb host=10.9.9.9 user=postgres';
      }),
    ];
    const before = { rows: await count(), ca: await caTree(), ini: await dbIni() };
    const contacted: string[] = [];
    const ctx = { inventory: c.inventory, host: (n: string) => (contacted.push(n), c.host(n)) };
    for (const a of hostile)
      await expect(restoreCluster(ctx, a, { force: true })).rejects.toMatchObject({
        code: 'E_BACKUP',
        message: expect.stringMatching(
          /cannot be restored here: .*(names "\/etc\/puppet\/puppet\.conf"|not a plain identifier)/,
        ),
      });
    expect(contacted).toEqual([]);
    expect(await fs.readFile(w.J(P, puppetConf), 'utf8')).toBe(confBefore);
    expect({ rows: await count(), ca: await caTree(), ini: await dbIni() }).toEqual(before);
    await c.close();
  });
});

describe('CA copies under standby --watch (one per signing) are bounded', () => {
  it('each verified push removes the kept-aside copy; archives and stale kept-aside copies follow the retention policy', async () => {
    const S1 = 's1.rt.test';
    const c = await w.cluster();
    const inv = c.inventory;
    const node = (n: string) => inv.masters.find((m) => m.name === n)!;
    const parent = w.J(S1, dirname(L.dirs.cadir));
    // copies kept aside by an earlier version: two of this CA (one recent, one 40 days old), one of another CA
    const stamp = (days: number) => new Date(Date.now() - days * 86_400_000).toISOString().replace(/[-:.]/g, '');
    const [recent, old, other] = [1, 40, 41].map((d) => `ca.pe-backup-${stamp(d)}`);
    await fs.mkdir(parent, { recursive: true });
    for (const d of [recent!, old!]) await fs.cp(w.J(P, L.dirs.cadir), join(parent, d), { recursive: true });
    await fs.mkdir(join(parent, other!));
    await fs.writeFile(join(parent, other!, 'ca_crt.pem'), 'another CA\n');
    updateState(inv, (s) => (s.standby = { host: S1, synchronous: false, since: new Date().toISOString() }));
    const local = new LocalHost();
    const ca = new OpensslCa(local, w.J(P, L.dirs.cadir));
    for (let i = 0; i < 5; i++) {
      const name = `watch${i}.rt.test`;
      await new OpensslAgent(ca, join(w.root, 'agents', name), { key: { type: 'ec' } }).submit(local, name, []);
      await ca.sign(name, { allowed: [] });
      const r = await syncCaCopy(inv, remoteOf(c.host(P), node(P)), remoteOf(c.host(S1), node(S1)), {
        retention: { keep: 2 },
      });
      expect(r.changed).toBe(true);
    }
    await c.close();
    const dir = join(inv.backupDir, 'ca-sync');
    const archives = (await fs.readdir(dir)).filter((n) => n.endsWith('.tar')).sort();
    expect(archives).toHaveLength(2);
    expect(readState(inv).standby?.caSync?.archive).toBe(join(dir, archives[1]!));
    // the live copy, the recent kept-aside copy (within the count), and the other CA; the 40-day-old copy is gone
    expect((await fs.readdir(parent)).filter((n) => n.startsWith('ca')).sort()).toEqual(['ca', recent!, other!].sort());
    expect([...(await treeManifest(local, w.J(S1, L.dirs.cadir)))].sort()).toEqual(await caTree());
  });
});
