import { execFileSync } from 'node:child_process';
import { createHash, createHmac } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Host } from '@pe-stack/pe-host';
import { jailedHost, testInventory } from '@pe-stack/testkit/jail';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Inventory } from '../inventory.js';
import { backupKeyPath, loadBackupKey, writeMacFile } from './backup-key.js';
import { isPlainDbName, restoreCluster, verifyClusterBackup, type BackupContext } from './backup.js';

// Unit: archives built by hand (tar + MANIFEST.json + .hmac), restored onto a jailed host; every refusal
// must come before the context hands out a host.

const INI = '/etc/puppetdb/conf.d/database.ini';
const INI_MEMBER = `credentials${INI}`;

let root: string;
let inv: Inventory;
beforeEach(async () => {
  root = await fs.mkdtemp(join(tmpdir(), 'pe-backup-'));
  inv = testInventory(root, 'debian', ['{name: p.test, role: primary}', '{name: s1.test, role: secondary}']);
});
afterEach(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

const sha = (b: string | Buffer) => createHash('sha256').update(b).digest('hex');

interface Crafted {
  members: Record<string, string>;
  credentials?: Record<string, string>;
  databases?: Record<string, string>;
  ca?: { archive: string; manifest: string; cadir: string };
}

/** A backup archive as `backup` writes one, from the given members and manifest maps, authenticated with the controller's key. */
async function craft(name: string, c: Crafted, opts: { sign?: boolean } = {}): Promise<string> {
  const staging = await fs.mkdtemp(join(root, 'staging-'));
  const members: Record<string, { sha256: string; bytes: number }> = {};
  for (const [m, text] of Object.entries(c.members)) {
    await fs.mkdir(dirname(join(staging, m)), { recursive: true });
    await fs.writeFile(join(staging, m), text);
    members[m] = { sha256: sha(text), bytes: Buffer.byteLength(text) };
  }
  const manifest = {
    version: 1,
    cluster: 't',
    layout: 'debian',
    host: 'p.test',
    created: new Date().toISOString(),
    members,
    credentials: c.credentials ?? {},
    databases: c.databases ?? {},
    ...(c.ca ? { ca: c.ca } : {}),
  };
  await fs.writeFile(join(staging, 'MANIFEST.json'), JSON.stringify(manifest));
  await fs.mkdir(inv.backupDir, { recursive: true });
  const archive = join(inv.backupDir, `${name}.tar`);
  execFileSync('tar', ['-C', staging, '-cf', archive, '.']);
  if (opts.sign !== false) await writeMacFile(await loadBackupKey(backupKeyPath(inv), { create: true }), archive);
  return archive;
}

/** A context that records every host it hands out (a contact) and gives jailed hosts. */
function context(): { c: BackupContext; contacted: string[] } {
  const contacted: string[] = [];
  const c: BackupContext = {
    inventory: inv,
    host: (name: string): Host => {
      contacted.push(name);
      return jailedHost(root, name);
    },
  };
  return { c, contacted };
}

const honest: Crafted = { members: { [INI_MEMBER]: '[database]\npassword = x\n' }, credentials: { [INI_MEMBER]: INI } };

async function refused(archive: string, message: RegExp): Promise<void> {
  const { c, contacted } = context();
  await expect(restoreCluster(c, archive)).rejects.toMatchObject({
    code: 'E_BACKUP',
    message: expect.stringMatching(message),
  });
  expect(contacted).toEqual([]);
}

describe('restore of a hostile archive: refused before any host is contacted', () => {
  it('an honest archive restores its credentials to the layout path (the control case)', async () => {
    const archive = await craft('honest', honest);
    await fs.mkdir(join(root, 'p.test', dirname(INI)), { recursive: true });
    const { c, contacted } = context();
    const r = await restoreCluster(c, archive);
    expect(contacted).toEqual(['p.test']);
    expect(r.credentials).toEqual([{ path: INI, changed: true }]);
    expect(await fs.readFile(join(root, 'p.test', INI), 'utf8')).toBe(honest.members[INI_MEMBER]);
  });

  it('a manifest that sends a credentials member elsewhere (a root cron job) is refused', async () => {
    const cron = '* * * * * root /tmp/x\n';
    await refused(
      await craft('cron', { members: { [INI_MEMBER]: cron }, credentials: { [INI_MEMBER]: '/etc/cron.d/pe-evil' } }),
      /database\.ini names "\/etc\/cron\.d\/pe-evil", the layout's file is \/etc\/puppetdb\/conf\.d\/database\.ini/,
    );
    await refused(
      await craft('cron2', {
        members: { 'credentials/etc/cron.d/pe-evil': cron },
        credentials: { 'credentials/etc/cron.d/pe-evil': '/etc/cron.d/pe-evil' },
      }),
      /no credentials file of the debian layout/,
    );
    await expect(fs.stat(join(root, 'p.test', 'etc/cron.d'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it.each([
    ['spaces and =', 'puppetdb host=evil.example.com user=postgres'],
    ['a URI', 'postgresql://evil.example.com/puppetdb'],
    ['a leading dash', '-puppetdb'],
    ['a quote', "puppet'db"],
  ])('a database name with %s is refused', async (_what, db) => {
    await refused(
      await craft('db', { members: { 'db/x.dump': 'PGDMP' }, databases: { 'db/x.dump': db } }),
      /is not a plain identifier/,
    );
  });

  it('a dump member not named after its database is refused', async () => {
    await refused(
      await craft('dump', { members: { 'db/other.dump': 'PGDMP' }, databases: { 'db/other.dump': 'puppetdb' } }),
      /expected the member db\/puppetdb\.dump/,
    );
  });

  it('a CA archive named outside ca/ is refused', async () => {
    await refused(
      await craft('ca', { ...honest, ca: { archive: '../../etc/shadow', manifest: 'ca/m.json', cadir: '/tmp' } }),
      /as the CA archive/,
    );
  });

  it('an archive changed after it was made (HMAC differs) is refused, and one without .hmac', async () => {
    const archive = await craft('flipped', honest);
    const bytes = await fs.readFile(archive);
    bytes[600] = bytes[600]! ^ 1;
    await fs.writeFile(archive, bytes);
    await refused(archive, /does not match its HMAC/);
    await refused(await craft('unsigned', honest, { sign: false }), /\.hmac.*not authenticated/);
  });

  it('an archive authenticated with another key is refused with both key ids', async () => {
    const archive = await craft('other-key', honest);
    const other = join(root, 'other.key');
    await writeMacFile(await loadBackupKey(other, { create: true }), archive);
    await refused(archive, /was authenticated with another key/);
  });

  it('a forged .sha256 counts for nothing: only the HMAC does', async () => {
    await loadBackupKey(backupKeyPath(inv), { create: true });
    const archive = await craft('forged', honest, { sign: false });
    await fs.writeFile(`${archive}.sha256`, `${sha(await fs.readFile(archive))}  forged.tar\n`);
    await refused(archive, /not authenticated/);
  });
});

describe('tar on the controller', () => {
  it('runs with the allow-listed environment: no sudo password or key data reaches it', async () => {
    const archive = await craft('honest', honest);
    const bin = join(root, 'bin');
    await fs.mkdir(bin);
    const seen = join(root, 'tar-env');
    await fs.writeFile(join(bin, 'tar'), `#!/bin/sh\nenv > ${seen}\nexec /usr/bin/tar "$@"\n`, { mode: 0o755 });
    const saved = { PATH: process.env.PATH, PE_SUDO_PASSWORD: process.env.PE_SUDO_PASSWORD };
    process.env.PATH = `${bin}:${process.env.PATH ?? ''}`;
    process.env.PE_SUDO_PASSWORD = 'Sudo-Secret-4711';
    try {
      await verifyClusterBackup(archive, { keyFile: backupKeyPath(inv) });
    } finally {
      for (const [k, v] of Object.entries(saved))
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
    }
    const env = await fs.readFile(seen, 'utf8');
    expect(env).toContain(`PATH=${bin}:`);
    expect(env).not.toContain('Sudo-Secret-4711');
  });
});

describe('the backup key', () => {
  it('is made once, 0600, outside the backup directory; the .hmac is plain HMAC-SHA256 of the archive', async () => {
    const archive = await craft('honest', honest);
    const keyFile = backupKeyPath(inv);
    expect(keyFile.startsWith(inv.backupDir)).toBe(false);
    expect((await fs.stat(keyFile)).mode & 0o777).toBe(0o600);
    const key = Buffer.from((await fs.readFile(keyFile, 'utf8')).trim(), 'hex');
    const rec = JSON.parse(await fs.readFile(`${archive}.hmac`, 'utf8')) as { mac: string };
    expect(rec.mac).toBe(
      createHmac('sha256', key)
        .update(await fs.readFile(archive))
        .digest('hex'),
    );
    expect((await verifyClusterBackup(archive, { keyFile, layout: inv.layout })).host).toBe('p.test');
  });

  it('a key others can read, a symlinked key, or a key inside the backup directory is refused', async () => {
    const archive = await craft('honest', honest);
    const keyFile = backupKeyPath(inv);
    await fs.chmod(keyFile, 0o644);
    await refused(archive, /readable or writable by others/);
    await fs.chmod(keyFile, 0o600);
    const link = join(root, 'link.key');
    await fs.symlink(keyFile, link);
    const { c, contacted } = context();
    await expect(restoreCluster(c, archive, { keyFile: link })).rejects.toThrow(/not a regular file/);
    const inside = join(inv.backupDir, 'sub', 'k.key');
    await expect(restoreCluster(c, archive, { keyFile: inside })).rejects.toThrow(/kept with the archives/);
    expect(contacted).toEqual([]);
  });

  it('a restore with no key at all says how to get one, and contacts nothing', async () => {
    const archive = await craft('honest', honest);
    await fs.rm(backupKeyPath(inv));
    await refused(archive, /there is no backup key/);
  });
});

describe('isPlainDbName', () => {
  it('accepts the names the layouts use and nothing a conninfo parser reads', () => {
    for (const ok of ['puppetdb', 'pe-puppetdb', 'console_auth', 'console']) expect(isPlainDbName(ok)).toBe(true);
    for (const bad of ['', 'a b', 'db=x', 'postgres://x', '-x', 'a;b', 'x'.repeat(64), 3])
      expect(isPlainDbName(bad)).toBe(false);
  });
});
