import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readFiles } from './batch.js';
import type { ExecResult, Host } from './host.js';
import { LocalHost } from './local.js';

/** A host whose one command answers with the given output (what a host would print). */
function answering(stdout: string): Host {
  const base = new LocalHost({ name: 'fake' });
  return new Proxy(base, {
    get(target, prop, recv) {
      if (prop === 'exec') return async (): Promise<ExecResult> => ({ code: 0, stdout, stderr: '', ms: 1 });
      return Reflect.get(target, prop, recv) as unknown;
    },
  });
}

const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('readFiles', () => {
  it('reads files, attributes and absence in one command on this machine', async () => {
    const dir = await fs.mkdtemp(join(tmpdir(), 'pe-batch-'));
    try {
      await fs.writeFile(join(dir, 'a'), 'alpha\n');
      await fs.writeFile(join(dir, 'k'), 'secret\n', { mode: 0o600 });
      const r = await readFiles(new LocalHost(), [join(dir, 'a'), join(dir, 'k'), join(dir, 'none')], {
        statOnly: [join(dir, 'k')],
      });
      expect(r.get(join(dir, 'a'))!.data!.toString()).toBe('alpha\n');
      expect(r.get(join(dir, 'a'))!.stat).toMatchObject({ isFile: true, size: 6 });
      expect(r.get(join(dir, 'k'))!.data).toBeUndefined();
      expect(r.get(join(dir, 'k'))!.stat).toMatchObject({ mode: 0o600 });
      expect(r.get(join(dir, 'none'))).toEqual({ path: join(dir, 'none'), stat: undefined });
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('splits the bytes by the sizes only when the sizes before and after agree; otherwise nothing is known', async () => {
    const stat = (n: number, p: string) => `+${n} 644 0 0 1700000000 regular file\t${p}`;
    const ok = [
      '?\t/c',
      stat(2, '/a'),
      stat(3, '/b'),
      '#sizes',
      '2\t/a',
      '3\t/b',
      '#data',
      b64('a\nbbb'),
      '#sizes',
      '2\t/a',
      '3\t/b',
      '',
    ].join('\n');
    const r = await readFiles(answering(ok), ['/a', '/b', '/c']);
    expect(r.get('/a')!.data!.toString()).toBe('a\n');
    expect(r.get('/b')!.data!.toString()).toBe('bbb');
    expect(r.get('/c')!.stat).toBeUndefined();
    // /b grew while it was read: the split could be wrong, so no content (and no attributes) are claimed
    const changed = ok
      .replace('#sizes\n2\t/a\n3\t/b\n\n', '#sizes\n2\t/a\n4\t/b\n\n')
      .replace(b64('a\nbbb'), b64('a\nbbbb'));
    const r2 = await readFiles(answering(changed), ['/a', '/b', '/c']);
    expect(r2.get('/a')).toEqual({ path: '/a', stat: undefined, unknown: true });
    expect(r2.get('/b')).toEqual({ path: '/b', stat: undefined, unknown: true });
    expect(r2.get('/c')).toEqual({ path: '/c', stat: undefined });
    // an existing path stat did not answer for is unknown, never absent
    const r3 = await readFiles(answering(['#sizes', '#data', '', '#sizes', ''].join('\n')), ['/x']);
    expect(r3.get('/x')).toEqual({ path: '/x', stat: undefined, unknown: true });
    await expect(readFiles(answering('garbage\n'), ['/x'])).rejects.toMatchObject({ code: 'E_IO' });
  });
});
