import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { link, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TarManifest, unsafeEntryName } from './tar.js';
import { tempDir } from '@pe-stack/testkit/certs';

let t: Awaited<ReturnType<typeof tempDir>>;
beforeAll(async () => {
  t = await tempDir('tar');
  const src = join(t.dir, 'src');
  await mkdir(join(src, 'signed'), { recursive: true });
  await writeFile(join(src, 'ca_crt.pem'), 'cert\n');
  await writeFile(join(src, 'empty'), '');
  await writeFile(join(src, 'signed', `${'a'.repeat(150)}.example.com.pem`), Buffer.alloc(1537, 7));
  await writeFile(join(src, 'big'), Buffer.alloc(70_000, 1));
});
afterAll(() => t.cleanup());

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

describe('TarManifest', () => {
  it.each(['gnu', 'posix', 'ustar'])('hashes every file of a %s archive fed in odd-sized chunks', async (format) => {
    const args = ['-C', join(t.dir, 'src'), `--format=${format}`, '-cf', '-', '.'];
    let archive: Buffer;
    try {
      archive = execFileSync('tar', args, { stdio: ['ignore', 'pipe', 'ignore'] });
    } catch {
      // ustar cannot store a 150-character name: that is tar's limit, not ours
      expect(format).toBe('ustar');
      return;
    }
    const m = new TarManifest();
    for (let i = 0; i < archive.length; i += 777) m.write(archive.subarray(i, i + 777));
    await new Promise<void>((r) => m.end(r));
    const long = `signed/${'a'.repeat(150)}.example.com.pem`;
    expect(Object.fromEntries(m.files)).toEqual({
      'ca_crt.pem': sha('cert\n'),
      empty: sha(''),
      [long]: sha(await readFile(join(t.dir, 'src', long))),
      big: sha(Buffer.alloc(70_000, 1)),
    });
  });

  it('lists links, special files and names outside the root as unsafe', async () => {
    const src = join(t.dir, 'hostile');
    await mkdir(src);
    await writeFile(join(src, 'plain'), 'x');
    await symlink('/etc/cron.d/x', join(src, 'sym'));
    await link(join(src, 'plain'), join(src, 'hard'));
    execFileSync('mkfifo', [join(src, 'fifo')]);
    const tarOf = (args: string[]) => execFileSync('tar', args, { stdio: ['ignore', 'pipe', 'ignore'] });
    const inside = tarOf(['-C', src, '-cf', '-', 'plain', 'sym', 'hard', 'fifo']);
    const outside = tarOf(['-P', '-cf', '-', join(src, 'plain'), `${src}/../hostile/plain`]);
    const unsafe = async (archive: Buffer) => {
      const m = new TarManifest();
      await new Promise<void>((r) => m.end(archive, r));
      return m.unsafe;
    };
    expect(await unsafe(inside)).toEqual(['sym: a symbolic link', 'hard: a hard link', 'fifo: a FIFO']);
    expect(await unsafe(outside)).toEqual([
      `${join(src, 'plain')}: an absolute path`,
      `${src}/../hostile/plain: an absolute path`,
    ]);
    expect(unsafeEntryName('a/../../b')).toBe('a ".." component');
    expect(unsafeEntryName('./signed/x.pem')).toBeUndefined();
    // an honest CA archive has none
    expect(await unsafe(tarOf(['-C', join(t.dir, 'src'), '--format=gnu', '-cf', '-', '.']))).toEqual([]);
  });

  it('rejects a corrupt header', async () => {
    const archive = execFileSync('tar', ['-C', join(t.dir, 'src'), '-cf', '-', 'ca_crt.pem']);
    archive[10] = archive[10]! ^ 0xff;
    const m = new TarManifest();
    const err = await new Promise<Error>((r) => {
      m.on('error', r);
      m.write(archive);
    });
    expect(err?.message).toMatch(/checksum/);
  });
});
