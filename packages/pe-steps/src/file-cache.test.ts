import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DryRunHost,
  execWriteFiles,
  FileNotFoundError,
  LocalHost,
  readFiles,
  readFilesOneByOne,
  writeFiles,
  writeFilesOneByOne,
  type BatchWrite,
  type Host,
  type ReadFilesOptions,
  type WriteFilesOptions,
} from '@pe-stack/pe-host';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runFlow } from './engine.js';
import { FileCache, type FileHint } from './file-cache.js';
import type { Flow } from './types.js';

let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(join(tmpdir(), 'pe-file-cache-'));
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

/** A LocalHost that counts its remote-style calls; with `batch`, it reads and writes many files in one command (as SshHost), else file by file. */
function counted(name: string, batch = true) {
  const calls: string[] = [];
  const base = new LocalHost({ name });
  const host = new Proxy(base, {
    get(target, prop, recv) {
      if (prop === 'readFiles') {
        if (!batch) return (paths: string[], o: ReadFilesOptions) => readFilesOneByOne(recv as Host, paths, o);
        return (paths: string[], o: { statOnly?: string[] }) => {
          calls.push(`readFiles:${paths.length}`);
          return readFiles(target, paths, o);
        };
      }
      if (prop === 'writeFiles') {
        if (!batch) return (files: BatchWrite[], o: WriteFilesOptions) => writeFilesOneByOne(recv as Host, files, o);
        return (files: BatchWrite[]) => {
          calls.push(`writeFiles:${files.length}`);
          return execWriteFiles(target, files, { sudo: false });
        };
      }
      const v = Reflect.get(target, prop, recv) as unknown;
      if (typeof v !== 'function') return v;
      return (...a: unknown[]) => {
        if (['readFile', 'writeFile', 'stat', 'exists', 'remove', 'mkdir', 'exec', 'spawn'].includes(String(prop)))
          calls.push(
            `${String(prop)}:${typeof a[0] === 'string' ? a[0].slice(dir.length + 1) : (a[0] as string[]).join(' ')}`,
          );
        return (v as (...x: unknown[]) => unknown).apply(target, a);
      };
    },
  }) as Host;
  return { host, calls };
}

const p = (n: string) => join(dir, n);

describe('FileCache', () => {
  it('writes several files together in one command, answers the known-equal ones itself, and knows what it wrote', async () => {
    await fs.writeFile(p('a.conf'), 'a\n');
    await fs.writeFile(p('b.conf'), 'b\n', { mode: 0o600 });
    const { host, calls } = counted('h1');
    const c = new FileCache(() => [{ path: p('a.conf') }, { path: p('b.conf') }, { path: p('c.conf') }]).wrap(host);
    await c.readFile(p('a.conf'));
    calls.length = 0;
    const r = await writeFiles(c, [
      { path: p('a.conf'), data: 'a\n' },
      { path: p('b.conf'), data: 'B\n' },
      { path: p('c.conf'), data: 'c\n' },
    ]);
    expect(r.map((x) => x.changed)).toEqual([false, true, true]);
    expect(calls).toEqual(['writeFiles:2']);
    expect((await fs.stat(p('b.conf'))).mode & 0o777).toBe(0o600);
    // what was written is known: reads and an equal rewrite cost nothing
    expect((await c.readFile(p('b.conf'))).toString()).toBe('B\n');
    expect(
      (
        await writeFiles(c, [
          { path: p('b.conf'), data: 'B\n' },
          { path: p('a.conf'), data: 'a\n' },
        ])
      ).map((x) => x.changed),
    ).toEqual([false, false]);
    expect(calls).toEqual(['writeFiles:2']);
  });

  it('a miss when every named file is known already is one plain read, not a command', async () => {
    await fs.writeFile(p('a.conf'), 'a\n');
    const { host, calls } = counted('h1');
    const c = new FileCache(() => [{ path: p('a.conf') }]).wrap(host);
    await c.readFile(p('a.conf'));
    await c.readFile(p('a.conf'));
    expect(calls).toEqual(['readFile:a.conf']);
  });

  it('reads a file once, and the hinted files with it in one command', async () => {
    await fs.writeFile(p('a.conf'), 'a = 1\n');
    await fs.writeFile(p('b.conf'), 'b = 2\n');
    const { host, calls } = counted('h1');
    const c = new FileCache(() => [{ path: p('a.conf') }, { path: p('b.conf') }, { path: p('absent.conf') }]).wrap(
      host,
    );
    expect((await c.readFile(p('a.conf'))).toString()).toBe('a = 1\n');
    expect(await c.exists(p('a.conf'))).toBe(true);
    expect((await c.readFile(p('b.conf'))).toString()).toBe('b = 2\n');
    expect((await c.stat(p('b.conf')))?.size).toBe(6);
    expect(await c.exists(p('absent.conf'))).toBe(false);
    await expect(c.readFile(p('absent.conf'))).rejects.toBeInstanceOf(FileNotFoundError);
    expect(calls).toEqual(['readFiles:3']);
    // a copy each time: a caller wiping its buffer (a secret) does not wipe the cache
    (await c.readFile(p('a.conf'))).fill(0);
    expect((await c.readFile(p('a.conf'))).toString()).toBe('a = 1\n');
  });

  it('a command that may change files makes the host forget; a read-only one does not', async () => {
    await fs.writeFile(p('a.conf'), 'old\n');
    const { host, calls } = counted('h1');
    const c = new FileCache(() => [{ path: p('a.conf') }, { path: p('b.conf') }]).wrap(host);
    expect((await c.readFile(p('a.conf'))).toString()).toBe('old\n');
    await c.exec(['cat', p('a.conf')], { readOnly: true });
    expect((await c.readFile(p('a.conf'))).toString()).toBe('old\n');
    await c.exec(['sh', '-c', 'echo new > "$1"', 'sh', p('a.conf')]);
    expect((await c.readFile(p('a.conf'))).toString()).toBe('new\n');
    expect(calls.filter((x) => x.startsWith('readFiles')).length).toBe(2);
  });

  it('a command that declares the files it changes makes the host forget only those, and other hosts nothing', async () => {
    await fs.mkdir(p('ssl'), { recursive: true });
    await fs.writeFile(p('a.conf'), 'a\n');
    await fs.writeFile(p('ssl/cert.pem'), 'old\n');
    const cache = new FileCache(() => [{ path: p('a.conf') }, { path: p('ssl/cert.pem') }, { path: p('absent.pem') }]);
    const one = counted('h1');
    const other = counted('h2');
    const c = cache.wrap(one.host);
    const o = cache.wrap(other.host);
    expect(await c.exists(p('a.conf'))).toBe(true);
    expect(await o.exists(p('absent.pem'))).toBe(false);
    // a service restart: no file
    await c.exec(['true'], { changesFiles: [] });
    expect((await c.readFile(p('a.conf'))).toString()).toBe('a\n');
    expect(one.calls.filter((x) => x.startsWith('readFiles')).length).toBe(1);
    // a command that rewrites what lies below ssl/: that is read again, a.conf is not
    await c.exec(['sh', '-c', 'echo new > "$1"; echo b > "$2"', 'sh', p('ssl/cert.pem'), p('a.conf')], {
      changesFiles: [p('ssl')],
    });
    expect((await c.readFile(p('ssl/cert.pem'))).toString()).toBe('new\n');
    expect((await c.readFile(p('a.conf'))).toString()).toBe('a\n'); // the command broke its word: the cache keeps what it knew
    // the other host still knows what it read as absent (a declared command changes no other host)
    const before = other.calls.length;
    expect(await o.exists(p('absent.pem'))).toBe(false);
    expect(other.calls.length).toBe(before);
  });

  it('a command on another host forgets what was absent here (a CA storing a request), not what was read', async () => {
    await fs.writeFile(p('ca.pem'), 'CA\n');
    const cache = new FileCache(() => [{ path: p('ca.pem') }, { path: p('request.pem') }]);
    const a = counted('primary');
    const b = counted('secondary');
    const primary = cache.wrap(a.host);
    const secondary = cache.wrap(b.host);
    expect(await primary.exists(p('request.pem'))).toBe(false);
    await fs.writeFile(p('request.pem'), 'CSR\n'); // written by the CA service when the secondary submits
    await secondary.exec(['true']);
    expect(await primary.exists(p('request.pem'))).toBe(true);
    const before = a.calls.length;
    expect((await primary.readFile(p('ca.pem'))).toString()).toBe('CA\n');
    expect(a.calls.length).toBe(before);
  });

  it('a command on another host while files are read here drops only what was read absent (the files read present are kept)', async () => {
    await fs.writeFile(p('a.conf'), 'a\n');
    const cache = new FileCache(() => [{ path: p('a.conf') }, { path: p('new.pem') }]);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const a = counted('primary');
    const slow = new Proxy(a.host, {
      get(t, k, r) {
        const v = Reflect.get(t, k, r) as unknown;
        if (k !== 'readFiles' || typeof v !== 'function') return v;
        return async (...x: unknown[]) => {
          const out = (await (v as (...y: unknown[]) => Promise<unknown>)(...x)) as unknown;
          await gate;
          return out;
        };
      },
    });
    const primary = cache.wrap(slow);
    const secondary = cache.wrap(counted('secondary').host);
    const read = primary.readFile(p('a.conf'));
    await new Promise((r) => setTimeout(r, 50)); // the batch read is in flight
    await secondary.exec(['true']);
    release();
    expect((await read).toString()).toBe('a\n');
    await fs.writeFile(p('new.pem'), 'CSR\n'); // created by the other host's command
    const before = a.calls.length;
    expect((await primary.readFile(p('a.conf'))).toString()).toBe('a\n');
    expect(await primary.exists(p('new.pem'))).toBe(true);
    expect(a.calls.slice(before)).toEqual([`stat:new.pem`]);
  });

  it('keeps what it wrote; an equal write is a no-op without a round trip; a different one is atomic with a backup', async () => {
    await fs.writeFile(p('a.conf'), 'a = 1\n', { mode: 0o640 });
    const { host, calls } = counted('h1');
    const c = new FileCache(() => [{ path: p('a.conf') }, { path: p('b.conf') }]).wrap(host);
    await c.readFile(p('a.conf'));
    expect(await c.writeFile(p('a.conf'), 'a = 1\n')).toEqual({ path: p('a.conf'), changed: false });
    expect(calls).toEqual(['readFiles:2']);
    const w = await c.writeFile(p('a.conf'), 'a = 2\n');
    expect(w.changed).toBe(true);
    expect(await fs.readFile(w.backup!, 'utf8')).toBe('a = 1\n');
    expect(((await fs.stat(p('a.conf'))).mode & 0o777).toString(8)).toBe('640');
    const n = calls.length;
    expect((await c.readFile(p('a.conf'))).toString()).toBe('a = 2\n');
    expect(await c.stat(p('a.conf'))).toMatchObject({ size: 6, mode: 0o640, isFile: true });
    expect(await c.writeFile(p('a.conf'), 'a = 2\n')).toEqual({ path: p('a.conf'), changed: false });
    expect(calls.length).toBe(n);
    // a mode that differs is not a no-op
    expect((await c.writeFile(p('a.conf'), 'a = 2\n', { mode: 0o600 })).changed).toBe(true);
    expect(((await fs.stat(p('a.conf'))).mode & 0o777).toString(8)).toBe('600');
  });

  it('never keeps the content of a file named without it (a private key), nor of files the flow did not name', async () => {
    await fs.writeFile(p('key.pem'), 'PRIVATE\n');
    await fs.writeFile(p('other'), 'x\n');
    const hints: FileHint[] = [{ path: p('key.pem'), content: false }, { path: p('b.conf') }];
    const { host, calls } = counted('h1');
    const c = new FileCache(() => hints).wrap(host);
    expect(await c.exists(p('key.pem'))).toBe(true);
    expect((await c.readFile(p('key.pem'))).toString()).toBe('PRIVATE\n');
    expect((await c.readFile(p('key.pem'))).toString()).toBe('PRIVATE\n');
    expect((await c.readFile(p('other'))).toString()).toBe('x\n');
    expect((await c.readFile(p('other'))).toString()).toBe('x\n');
    expect(calls.filter((x) => x.startsWith('readFile:')).length).toBe(4);
    expect(await c.exists(p('other'))).toBe(true);
    expect(calls.filter((x) => x.startsWith('stat') || x.startsWith('exists')).length).toBe(0);
  });

  it('keeps nothing read while a change runs on the host, and forgets after it', async () => {
    await fs.writeFile(p('a.conf'), 'old\n');
    const { host } = counted('h1', false);
    const c = new FileCache(() => [{ path: p('a.conf') }, { path: p('b.conf') }]).wrap(host);
    const running = c.exec(['sh', '-c', 'sleep 0.3; echo new > "$1"', 'sh', p('a.conf')]);
    expect((await c.readFile(p('a.conf'))).toString()).toBe('old\n');
    await running;
    expect((await c.readFile(p('a.conf'))).toString()).toBe('new\n');
  });

  it('removal and mkdir: gone is gone, a created directory exists', async () => {
    await fs.mkdir(p('d'));
    await fs.writeFile(p('d/x'), '1');
    const { host } = counted('h1');
    const c = new FileCache(() => [{ path: p('d/x') }, { path: p('e') }]).wrap(host);
    expect(await c.exists(p('d/x'))).toBe(true);
    expect(await c.exists(p('e'))).toBe(false);
    await c.remove(p('d'), { recursive: true });
    expect(await c.exists(p('d/x'))).toBe(false);
    expect(await c.exists(p('d'))).toBe(false);
    await c.mkdir(p('e'));
    expect(await c.exists(p('e'))).toBe(true);
  });

  it('a sudo-less read is not answered from what was read with sudo', async () => {
    await fs.writeFile(p('a.conf'), 'a\n');
    const { host, calls } = counted('h1');
    const c = new FileCache(() => [{ path: p('a.conf') }, { path: p('b.conf') }]).wrap(host);
    await c.readFile(p('a.conf'));
    await c.readFile(p('a.conf'), { sudo: false });
    expect(calls).toEqual(['readFiles:2', 'readFile:a.conf']);
    // what was read without sudo answers both
    const d = counted('h2');
    const c2 = new FileCache(() => [{ path: p('a.conf') }, { path: p('b.conf') }]).wrap(d.host);
    await c2.readFile(p('a.conf'), { sudo: false });
    await c2.readFile(p('a.conf'), { sudo: false });
    await c2.readFile(p('a.conf'));
    expect(d.calls).toEqual(['readFiles:2']);
    // a host logged in as root (SshHost actsAsRoot): sudo makes no difference, one read answers both
    const r = counted('h3');
    const c3 = new FileCache(() => [{ path: p('a.conf') }, { path: p('b.conf') }]).wrap(
      new Proxy(r.host, { get: (t, k, rcv) => (k === 'actsAsRoot' ? true : (Reflect.get(t, k, rcv) as unknown)) }),
    );
    await c3.readFile(p('a.conf'));
    await c3.readFile(p('a.conf'), { sudo: false });
    expect(await c3.exists(p('b.conf'), { sudo: false })).toBe(false);
    expect(r.calls).toEqual(['readFiles:2']);
  });
});

describe('runFlow with a file cache', () => {
  const flow = (fileCache: boolean): Flow => ({
    name: 't',
    items: [
      {
        id: 'edit',
        host: 'h1',
        title: 'a = 2',
        check: async (ctx) => ({ done: (await ctx.host.readFile(p('a.conf'))).toString() === 'a = 2\n', why: 'a' }),
        apply: async (ctx) => void (await ctx.host.writeFile(p('a.conf'), 'a = 2\n')),
      },
    ],
    ...(fileCache ? { fileCache: { hints: () => [{ path: p('a.conf') }, { path: p('b.conf') }] } } : {}),
  });

  it('check, apply and re-check read the file once; the plan sees planned writes; without the option every read goes out', async () => {
    await fs.writeFile(p('a.conf'), 'a = 1\n');
    const plain = counted('h1');
    expect((await runFlow(flow(false), { host: () => plain.host })).status).toBe('ok');
    expect(plain.calls.filter((x) => x.startsWith('readFile')).length).toBe(2);
    await fs.writeFile(p('a.conf'), 'a = 1\n');
    const one = counted('h1');
    const plan = await runFlow(flow(true), { host: () => one.host, dryRun: true });
    expect(plan.steps[0]!.status).toBe('planned');
    expect(await fs.readFile(p('a.conf'), 'utf8')).toBe('a = 1\n');
    expect(one.host).not.toBeInstanceOf(DryRunHost);
    const two = counted('h1');
    const r = await runFlow(flow(true), { host: () => two.host });
    expect(r.status).toBe('ok');
    expect(r.steps[0]!.status).toBe('done');
    expect(two.calls).toEqual(['readFiles:2', 'writeFile:a.conf']);
    expect(await fs.readFile(p('a.conf'), 'utf8')).toBe('a = 2\n');
  });

  it('a step writing several files: one command for real, each recorded as a write; a plan records each with its diff and writes nothing', async () => {
    await fs.writeFile(p('a.conf'), 'a = 1\n');
    const flow = (): Flow => ({
      name: 't',
      fileCache: { hints: () => [{ path: p('a.conf') }, { path: p('b.conf') }] },
      items: [
        {
          id: 'two',
          host: 'h1',
          title: 'two files',
          check: async (ctx) => ({
            done:
              (await ctx.host.exists(p('b.conf'))) && (await ctx.host.readFile(p('a.conf'))).toString() === 'a = 2\n',
            why: 'x',
          }),
          apply: async (ctx) =>
            void (await writeFiles(ctx.host, [
              { path: p('a.conf'), data: 'a = 2\n' },
              { path: p('b.conf'), data: 'b\n' },
            ])),
        },
      ],
    });
    const dry = counted('h1');
    const plan = await runFlow(flow(), { host: () => dry.host, dryRun: true });
    expect(
      plan.steps[0]!.mutations.map((m) => [m.kind, 'path' in m ? m.path : '', 'diff' in m && m.diff.length > 0]),
    ).toEqual([
      ['write', p('a.conf'), true],
      ['write', p('b.conf'), true],
    ]);
    expect(dry.calls.filter((c) => c.startsWith('write'))).toEqual([]);
    const real = counted('h1');
    const r = await runFlow(flow(), { host: () => real.host });
    expect(r.steps[0]!.status).toBe('done');
    expect(real.calls.filter((c) => c.startsWith('write'))).toEqual(['writeFiles:2']);
    expect(r.steps[0]!.mutations.map((m) => [m.kind, 'path' in m ? m.path : ''])).toEqual([
      ['write', p('a.conf')],
      ['write', p('b.conf')],
    ]);
    expect(await fs.readFile(p('b.conf'), 'utf8')).toBe('b\n');
  });
});
