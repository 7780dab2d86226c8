import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { layouts } from '@pe-stack/pe-config-files';
import { OpensslAgent, OpensslCa } from '@pe-stack/pe-certs';
import { psql, query } from '@pe-stack/pe-db';
import { LocalHost, treeManifest } from '@pe-stack/pe-host';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../main.js';
import { openClusterBackup, verifyClusterBackup } from './backup.js';
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

describe('backup and restore', () => {
  it('backup: one timestamped 0600 archive with the CA, the credentials and a database dump; every member checksummed; verified', async () => {
    const c = await w.cluster();
    const r = await c.backup();
    await c.close();
    expect(r.archive).toMatch(/pe-cluster-ha-\d{8}T\d{9}Z\.tar$/);
    expect((await fs.stat(r.archive)).mode & 0o777).toBe(0o600);
    expect(await fs.readFile(r.checksumFile, 'utf8')).toMatch(new RegExp(`^${r.sha256}  pe-cluster-ha-`));
    expect(Object.keys(r.manifest.members)).toEqual(
      expect.arrayContaining(['credentials/etc/puppetdb/conf.d/database.ini', 'db/puppetdb.dump']),
    );
    expect(Object.keys(r.manifest.members).some((m) => /^ca\/ca-p\.rt\.test-.*\.tar$/.test(m))).toBe(true);
    expect(r.manifest.databases).toEqual({ 'db/puppetdb.dump': 'puppetdb' });
    expect((await verifyClusterBackup(r.archive)).created).toBe(r.manifest.created);
  });

  it('restore verifies before it writes: a flipped byte, a missing checksum file or a changed member is refused and nothing changes on the master', async () => {
    const c = await w.cluster();
    const r = await c.backup();
    // a flipped byte in the archive
    const bad = join(w.root, 'bad.tar');
    const bytes = await fs.readFile(r.archive);
    const mid = bytes.length >> 1;
    bytes[mid] = bytes[mid]! ^ 0x01;
    await fs.writeFile(bad, bytes);
    await fs.copyFile(r.checksumFile, `${bad}.sha256`);
    await fs.writeFile(`${bad}.sha256`, (await fs.readFile(r.checksumFile, 'utf8')).replace(/\S+$/m, 'bad.tar'));
    const before = { rows: await count(), ca: await caTree(), ini: await dbIni() };
    await psql(w.pg[P]!, 'DELETE FROM reports WHERE id > 100;', { database: 'puppetdb' });
    const gone = await count();
    await expect(c.restore(bad, { force: true })).rejects.toMatchObject({
      code: 'E_BACKUP',
      message: expect.stringMatching(/does not match its checksum/),
    });
    // no checksum file
    const lone = join(w.root, 'lone.tar');
    await fs.copyFile(r.archive, lone);
    await expect(c.restore(lone, { force: true })).rejects.toMatchObject({
      code: 'E_BACKUP',
      message: expect.stringMatching(/\.sha256/),
    });
    // a member changed and the archive's checksum recomputed to match: the manifest catches it
    const v = await openClusterBackup(r.archive);
    await fs.appendFile(join(v.dir, 'credentials/etc/puppetdb/conf.d/database.ini'), '# changed\n');
    const forged = join(w.root, 'forged.tar');
    await new LocalHost().exec(['tar', '-C', v.dir, '-cf', forged, '.']);
    await v.dispose();
    const sum = (await new LocalHost().exec(['sha256sum', forged])).stdout.split(' ')[0];
    await fs.writeFile(`${forged}.sha256`, `${sum}  forged.tar\n`);
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
    expect(err).toBe('');
    expect(code).toBe(0);
    const rep = JSON.parse(out.trim()) as {
      type: string;
      safetyBackup: string;
      ca: { changed: boolean; previous: string };
    };
    expect(rep).toMatchObject({ type: 'restore', ca: { changed: true } });
    expect({ rows: await count(), ca: await caTree(), ini: await dbIni() }).toEqual(want);
    // the state before the restore was kept, verified, and the replaced CA directory kept aside
    expect((await verifyClusterBackup(rep.safetyBackup)).host).toBe(P);
    expect(await fs.stat(w.J(P, rep.ca.previous))).toBeDefined();
    expect(out).not.toContain(DB_PW);
    expect(out).not.toContain('Something-Else-1');
  });
});
