import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { execWriteFiles, writeFiles } from './batch-write.js';
import type { ExecOptions, Host } from './host.js';
import { LocalHost } from './local.js';

/** This machine as a host that writes batches with the one command SshHost runs, counting commands. */
function batching() {
  const base = new LocalHost({ name: 'local' });
  const calls: { argv: readonly string[]; opts: ExecOptions | undefined }[] = [];
  const host = new Proxy(base, {
    get(target, prop, recv) {
      if (prop === 'exec')
        return (argv: readonly string[], opts?: ExecOptions) => (calls.push({ argv, opts }), target.exec(argv, opts));
      if (prop === 'writeFiles')
        return (files: Parameters<typeof execWriteFiles>[1]) => execWriteFiles(recv as Host, files, { sudo: false });
      return Reflect.get(target, prop, recv) as unknown;
    },
  });
  return { host, calls };
}

describe('writeFiles', () => {
  it('writes many files in one command, each as writeFile would: atomic, backup, mode kept or given, no-op when equal, symlink followed', async () => {
    const dir = await fs.mkdtemp(join(tmpdir(), 'pe-bw-'));
    try {
      await fs.writeFile(join(dir, 'keep'), 'old\n', { mode: 0o600 });
      await fs.writeFile(join(dir, 'same'), 'same\n', { mode: 0o640 });
      await fs.writeFile(join(dir, 'target'), 'x');
      await fs.symlink(join(dir, 'target'), join(dir, 'link'));
      const secret = 'PRIVATE KEY BYTES';
      const { host, calls } = batching();
      const r = await writeFiles(host, [
        { path: join(dir, 'keep'), data: 'new\n' },
        { path: join(dir, 'same'), data: 'same\n' },
        { path: join(dir, 'created'), data: Buffer.from(secret), opts: { mode: 0o600, secrets: [secret] } },
        { path: join(dir, 'link'), data: 'via link\n' },
        { path: join(dir, 'empty'), data: '' },
      ]);
      expect(calls).toHaveLength(1);
      // the bytes travel on stdin, never in argv
      expect(calls[0]!.argv.join(' ')).not.toContain(secret);
      expect(r.map((x) => x.changed)).toEqual([true, false, true, true, true]);
      expect(r[3]!.path).toBe(join(dir, 'target'));
      expect(r[0]!.backup).toMatch(/\/keep\.pe-backup-\d{8}T\d{9}Z$/);
      expect(await fs.readFile(r[0]!.backup!, 'utf8')).toBe('old\n');
      expect(r[2]!.backup).toBeUndefined();
      expect(await fs.readFile(join(dir, 'keep'), 'utf8')).toBe('new\n');
      expect((await fs.stat(join(dir, 'keep'))).mode & 0o7777).toBe(0o600);
      expect((await fs.stat(join(dir, 'created'))).mode & 0o7777).toBe(0o600);
      expect((await fs.stat(join(dir, 'empty'))).mode & 0o7777).toBe(0o644);
      expect(await fs.readFile(join(dir, 'created'), 'utf8')).toBe(secret);
      expect(await fs.readFile(join(dir, 'target'), 'utf8')).toBe('via link\n');
      expect((await fs.lstat(join(dir, 'link'))).isSymbolicLink()).toBe(true);
      expect(await fs.readFile(join(dir, 'empty'), 'utf8')).toBe('');
      // no temp files left; a second run changes nothing
      expect((await fs.readdir(dir)).filter((n) => n.includes('pe-tmp'))).toEqual([]);
      const again = await writeFiles(host, [
        { path: join(dir, 'keep'), data: 'new\n' },
        { path: join(dir, 'created'), data: secret, opts: { mode: 0o600 } },
      ]);
      expect(again.map((x) => x.changed)).toEqual([false, false]);
      // a mode change alone is a change
      expect(
        (
          await writeFiles(host, [
            { path: join(dir, 'same'), data: 'same\n', opts: { mode: 0o644 } },
            { path: join(dir, 'keep'), data: 'new\n' },
          ])
        ).map((x) => x.changed),
      ).toEqual([true, false]);
      expect((await fs.stat(join(dir, 'same'))).mode & 0o7777).toBe(0o644);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('stops at the first file it cannot write, names it, and has written the ones before it', async () => {
    const dir = await fs.mkdtemp(join(tmpdir(), 'pe-bw-'));
    try {
      const { host } = batching();
      const err = await writeFiles(host, [
        { path: join(dir, 'a'), data: 'a' },
        { path: join(dir, 'missing-dir', 'b'), data: 'b' },
        { path: join(dir, 'c'), data: 'c' },
      ]).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'E_IO' });
      expect((err as Error).message).toContain(join(dir, 'missing-dir', 'b'));
      expect(await fs.readFile(join(dir, 'a'), 'utf8')).toBe('a');
      await expect(fs.stat(join(dir, 'c'))).rejects.toThrow();
      expect((await fs.readdir(dir)).filter((n) => n.includes('pe-tmp'))).toEqual([]);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('falls back to one writeFile per file on a host without writeFiles', async () => {
    const dir = await fs.mkdtemp(join(tmpdir(), 'pe-bw-'));
    try {
      const r = await writeFiles(new LocalHost(), [
        { path: join(dir, 'a'), data: 'a' },
        { path: join(dir, 'b'), data: 'b', opts: { mode: 0o600 } },
      ]);
      expect(r.map((x) => x.changed)).toEqual([true, true]);
      expect((await fs.stat(join(dir, 'b'))).mode & 0o7777).toBe(0o600);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
