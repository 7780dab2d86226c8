import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { LocalHost, treeManifest } from '@pe-stack/pe-host';
import { parseHocon } from '@pe-stack/pe-config-files';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OpensslCa } from './ca-openssl.js';
import { allowSubjectAltNames, backupCa, grantCaAdmin, restoreCa, verifyCaArchive } from './backup.js';
import { OpensslAgent } from './enroll.js';
import { CaExistsError } from './errors.js';
import { failure, tempDir, testCa } from '@pe-stack/testkit/certs';
import { loadTrust, puppetSslPaths, verifyNode } from './verify.js';

const primary = new LocalHost({ name: 'primary.example.com' });
const secondary = new LocalHost({ name: 'secondary1.example.com' });
let t: Awaited<ReturnType<typeof tempDir>>;
let ca: OpensslCa;
const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

async function csr(dir: string, name: string): Promise<string> {
  const o = new OpensslAgent(ca, join(dir, `${name}-ssl`), { key: { type: 'ec' } });
  await o.submit(primary, name, []);
  return name;
}

beforeAll(async () => {
  t = await tempDir('backup');
  ca = await testCa(t.dir);
  for (const n of ['a1.example.com', 'a2.example.com']) {
    await csr(t.dir, n);
    await ca.sign(n, { allowed: [] });
  }
  await ca.revoke('a2.example.com');
});
afterAll(() => t.cleanup());

describe('backupCa / restoreCa', () => {
  it('archives the whole CA directory with a manifest of every member, both mode 0600', async () => {
    const b = await backupCa(primary, ca.cadir, join(t.dir, 'controller'), { sudo: false });
    expect(b.archive).toMatch(/ca-primary\.example\.com-\d{8}T\d+Z\.tar$/);
    expect((await stat(b.archive)).mode & 0o777).toBe(0o600);
    expect((await stat(b.manifestPath)).mode & 0o777).toBe(0o600);
    expect(new Map(Object.entries(b.manifest.files))).toEqual(await treeManifest(primary, ca.cadir));
    expect(Object.keys(b.manifest.files)).toEqual(
      expect.arrayContaining(['ca_crt.pem', 'ca_key.pem', 'ca_crl.pem', 'index.txt', 'signed/a1.example.com.pem']),
    );
    // the manifest holds hashes, never key material
    const key = (await readFile(join(ca.cadir, 'ca_key.pem'), 'utf8')).split('\n')[1]!;
    expect(await readFile(b.manifestPath, 'utf8')).not.toContain(key);
    expect((await verifyCaArchive(b.archive)).archiveSha256).toBe(b.manifest.archiveSha256);
  });

  it('refuses a corrupted archive or a tampered manifest before touching the target', async () => {
    const b = await backupCa(primary, ca.cadir, join(t.dir, 'controller2'), { sudo: false });
    const bad = join(t.dir, 'bad.tar');
    const bytes = await readFile(b.archive);
    bytes[bytes.length >> 1] = bytes[bytes.length >> 1]! ^ 0x55;
    await writeFile(bad, bytes);
    await copyFile(b.manifestPath, `${bad}.manifest.json`);
    await expect(verifyCaArchive(bad)).rejects.toMatchObject({ code: 'E_CA_BACKUP' });
    const target = join(t.dir, 'never');
    await expect(restoreCa(bad, secondary, target, { sudo: false })).rejects.toMatchObject({ code: 'E_CA_BACKUP' });
    expect(await secondary.exists(target)).toBe(false);
    const m = JSON.parse(await readFile(b.manifestPath, 'utf8')) as { files: Record<string, string> };
    m.files['ca_key.pem'] = '0'.repeat(64);
    await copyFile(b.archive, join(t.dir, 'good.tar'));
    await writeFile(
      join(t.dir, 'good.tar.manifest.json'),
      JSON.stringify({ ...JSON.parse(await readFile(b.manifestPath, 'utf8')), files: m.files }),
    );
    await expect(verifyCaArchive(join(t.dir, 'good.tar'))).rejects.toThrow(/members differ.*ca_key\.pem/);
  });

  it('restores onto another host: same files, and the restored CA signs a new agent that verifies against the original CA', async () => {
    const b = await backupCa(primary, ca.cadir, join(t.dir, 'controller3'), { sudo: false });
    const target = join(t.dir, 'secondary-ca');
    const r = await restoreCa(b.archive, secondary, target, { sudo: false });
    expect(r).toMatchObject({ changed: true, files: Object.keys(b.manifest.files).length });
    expect(await treeManifest(secondary, target)).toEqual(await treeManifest(primary, ca.cadir));
    const promoted = new OpensslCa(secondary, target);
    const agent = new OpensslAgent(promoted, join(t.dir, 'newagent-ssl'), { key: { type: 'ec' } });
    await agent.submit(secondary, 'newagent.example.com', []);
    await promoted.sign('newagent.example.com', { allowed: [] });
    await agent.fetch(secondary, 'newagent.example.com');
    const report = await verifyNode(secondary, {
      certname: 'newagent.example.com',
      paths: puppetSslPaths(join(t.dir, 'newagent-ssl'), 'newagent.example.com'),
      trust: loadTrust(await ca.caCertificate(), await promoted.crl()),
    });
    expect(report.failures).toEqual([]);
    // serials continue: the new cert does not reuse one the old CA issued
    const serials = (await ca.list()).map((e) => e.serial);
    expect(serials).not.toContain((await promoted.inspect('newagent.example.com')).serial);
    // restoring the same archive again onto the now-changed CA is refused; onto an identical one it is a no-op
    await expect(restoreCa(b.archive, secondary, target, { sudo: false })).rejects.toBeInstanceOf(CaExistsError);
    const again = join(t.dir, 'secondary-ca-2');
    await restoreCa(b.archive, secondary, again, { sudo: false });
    expect(await restoreCa(b.archive, secondary, again, { sudo: false })).toMatchObject({ changed: false });
  });

  it('refuses to overwrite a different CA without force; with force keeps the old one aside', async () => {
    const b = await backupCa(primary, ca.cadir, join(t.dir, 'controller4'), { sudo: false });
    const own = await testCa(t.dir, 'secondary1.example.com');
    const before = await treeManifest(secondary, own.cadir);
    const err = await failure<CaExistsError>(restoreCa(b.archive, secondary, own.cadir, { sudo: false }));
    expect(err).toBeInstanceOf(CaExistsError);
    expect(err.message).toMatch(/a different CA certificate/);
    expect(await treeManifest(secondary, own.cadir)).toEqual(before);
    const r = await restoreCa(b.archive, secondary, own.cadir, { sudo: false, force: true });
    expect(r.previous).toMatch(/\.pe-backup-/);
    expect(await treeManifest(secondary, r.previous!)).toEqual(before);
    expect(await treeManifest(secondary, own.cadir)).toEqual(new Map(Object.entries(b.manifest.files)));
  });

  it("previous: 'remove' deletes an older copy of the same CA once the swap is verified; a different CA stays aside", async () => {
    const b = await backupCa(primary, ca.cadir, join(t.dir, 'controller5'), { sudo: false });
    const target = join(t.dir, 'standby-ca');
    await restoreCa(b.archive, secondary, target, { sudo: false });
    // the copy drifts (an older state of the same CA), then the current state is pushed again
    await writeFile(join(target, 'serial'), '00\n');
    const r = await restoreCa(b.archive, secondary, target, { sudo: false, force: true, previous: 'remove' });
    expect(r).toMatchObject({ changed: true, previousRemoved: true });
    expect(r.previous).toBeUndefined();
    expect((await readdir(t.dir)).filter((n) => n.startsWith('standby-ca.pe-backup-'))).toEqual([]);
    expect(await treeManifest(secondary, target)).toEqual(new Map(Object.entries(b.manifest.files)));
    // another CA's directory is never deleted
    const own = await testCa(t.dir, 'other-ca.example.com');
    const r2 = await restoreCa(b.archive, secondary, own.cadir, { sudo: false, force: true, previous: 'remove' });
    expect(r2.previous).toMatch(/\.pe-backup-/);
    expect(r2.previousRemoved).toBeUndefined();
  });

  it('refuses an archive holding a link, or a name outside its root, though its manifest matches', async () => {
    const src = join(t.dir, 'linked-ca');
    await mkdir(src);
    await copyFile(join(ca.cadir, 'ca_crt.pem'), join(src, 'ca_crt.pem'));
    await symlink('/etc/cron.d/evil', join(src, 'ca_key.pem'));
    const archive = join(t.dir, 'linked.tar');
    execFileSync('tar', ['-C', src, '-cf', archive, '.']);
    const man = {
      version: 1,
      host: 'x',
      cadir: src,
      created: '',
      archive: 'linked.tar',
      archiveSha256: createHash('sha256')
        .update(await readFile(archive))
        .digest('hex'),
      bytes: 0,
      files: {
        'ca_crt.pem': createHash('sha256')
          .update(await readFile(join(src, 'ca_crt.pem')))
          .digest('hex'),
      },
    };
    await writeFile(`${archive}.manifest.json`, JSON.stringify(man));
    await expect(verifyCaArchive(archive)).rejects.toThrow(/ca_key\.pem: a symbolic link/);
    await expect(restoreCa(archive, secondary, join(t.dir, 'never2'), { sudo: false })).rejects.toMatchObject({
      code: 'E_CA_BACKUP',
    });
    expect(await secondary.exists(join(t.dir, 'never2'))).toBe(false);
    // and backupCa will not make such an archive in the first place
    await expect(backupCa(primary, src, join(t.dir, 'controller6'), { sudo: false })).rejects.toThrow(
      /entries a restore would refuse/,
    );
  });

  it('refuses to back up a directory without a CA', async () => {
    await expect(backupCa(primary, join(t.dir, 'controller'), join(t.dir, 'x'), { sudo: false })).rejects.toMatchObject(
      { code: 'E_CA_BACKUP' },
    );
  });
});

describe('CA admin rights and alt names (puppetserver config)', () => {
  it('adds the new CA host to every pp_cli_auth rule of the Debian auth.conf, idempotently', async () => {
    const path = join(t.dir, 'auth.conf');
    await copyFile(fixture('debian-auth.conf'), path);
    const original = await readFile(path, 'utf8');
    const r = await grantCaAdmin(secondary, path, 'secondary1.example.com', { sudo: false });
    expect(r.changed).toBe(true);
    const doc = parseHocon(await readFile(path, 'utf8'), path);
    const rules = doc.get(['authorization', 'rules']) as { name: string; allow?: unknown }[];
    const admin = rules.filter((x) => JSON.stringify(x.allow ?? '').includes('pp_cli_auth'));
    expect(admin.length).toBeGreaterThanOrEqual(2);
    for (const rule of admin) expect(rule.allow).toEqual(expect.arrayContaining(['secondary1.example.com']));
    // rules not about the CA admin API are untouched, and so is every original line
    const nonAdmin = (rs: { allow?: unknown }[]) =>
      rs.filter((x) => !JSON.stringify(x.allow ?? '').includes('pp_cli_auth'));
    expect(nonAdmin(rules)).toEqual(
      nonAdmin(parseHocon(original, path).get(['authorization', 'rules']) as { allow?: unknown }[]),
    );
    const removed = r.diff
      .split('\n')
      .filter((l) => l.startsWith('-') && !l.startsWith('---'))
      .map((l) => l.slice(1).trim());
    expect(removed.length).toBe(admin.length * 2);
    expect(new Set(removed)).toEqual(new Set(['allow: {', '}']));
    expect((await grantCaAdmin(secondary, path, 'secondary1.example.com', { sudo: false })).changed).toBe(false);
  });

  it('enables allow-subject-alt-names in ca.conf, idempotently', async () => {
    const path = join(t.dir, 'ca.conf');
    await copyFile(fixture('debian-ca.conf'), path);
    expect((await allowSubjectAltNames(secondary, path, { sudo: false })).changed).toBe(true);
    expect(
      parseHocon(await readFile(path, 'utf8'), path).get(['certificate-authority', 'allow-subject-alt-names']),
    ).toBe(true);
    expect((await allowSubjectAltNames(secondary, path, { sudo: false })).changed).toBe(false);
  });
});
