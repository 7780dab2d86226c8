import { describe, expect, it } from 'vitest';
import { CommandFailedError, DryRunHost, FileNotFoundError, Redactor } from '@pe-stack/pe-host';
import { applyEdits } from '@pe-stack/pe-config-files';
import { MemoryHost, UNANSWERED_EXIT } from './index.js';

const conf = '/etc/puppet/puppet.conf';

describe('MemoryHost files', () => {
  const host = () =>
    new MemoryHost({
      name: 'm1',
      files: { [conf]: { content: '[main]\n', mode: 0o640, owner: 'puppet', group: 'puppet' } },
      users: { puppet: 110 },
    });

  it('seeds files with owner and mode; their directories exist', async () => {
    const h = host();
    expect(await h.stat(conf)).toMatchObject({ size: 7, mode: 0o640, uid: 110, gid: 1000, isFile: true });
    expect(await h.stat('/etc/puppet')).toMatchObject({ isDirectory: true, mode: 0o755 });
    expect((await h.readFile(conf)).toString()).toBe('[main]\n');
    await expect(h.readFile('/etc/nothing')).rejects.toBeInstanceOf(FileNotFoundError);
    expect(await h.exists('/etc/nothing')).toBe(false);
  });

  it('writes as an atomic write does: no-op when equal, a backup of the old content, attributes kept or set', async () => {
    const h = host();
    expect(await h.writeFile(conf, '[main]\n')).toEqual({ path: conf, changed: false });
    const w = await h.writeFile(conf, '[main]\nserver = a\n');
    expect(w).toMatchObject({
      changed: true,
      backup: expect.stringMatching(/^\/etc\/puppet\/puppet\.conf\.pe-backup-/),
    });
    expect(h.file(w.backup!)?.text).toBe('[main]\n');
    expect(h.file(conf)).toMatchObject({ text: '[main]\nserver = a\n', mode: 0o640, uid: 110 });
    expect((await h.writeFile(conf, '[main]\nserver = a\n', { mode: 0o600, backup: false })).changed).toBe(true);
    expect(h.paths('/etc/puppet')).toHaveLength(2);
    const created = await h.writeFile('/etc/puppet/new.conf', 'x', { owner: 'root', group: 'puppet' });
    expect(created).toEqual({ path: '/etc/puppet/new.conf', changed: true });
    expect(h.file('/etc/puppet/new.conf')).toMatchObject({ mode: 0o644, uid: 0, gid: h.gidOf('puppet') });
    await expect(h.writeFile('/etc/missing/dir.conf', 'x')).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
  });

  it('mkdir, remove (a directory only recursively, never a protected path), readFiles and writeFiles', async () => {
    const h = host();
    await h.mkdir('/srv/a/b', { mode: 0o700 });
    expect((await h.stat('/srv/a/b'))?.mode).toBe(0o700);
    await h.writeFiles([
      { path: '/srv/a/b/1', data: 'one' },
      { path: '/srv/a/b/2', data: 'two' },
    ]);
    const read = await h.readFiles(['/srv/a/b/1', '/srv/a/b/3'], { statOnly: [] });
    expect(read.get('/srv/a/b/1')?.data?.toString()).toBe('one');
    expect(read.get('/srv/a/b/3')?.stat).toBeUndefined();
    await expect(h.remove('/srv/a')).rejects.toMatchObject({ code: 'E_IO' });
    await expect(h.remove('/etc', { recursive: true })).rejects.toMatchObject({ code: 'E_INVALID_INPUT' });
    expect(await h.remove('/srv/a', { recursive: true })).toBe(true);
    expect(h.paths('/srv')).toEqual([]);
    expect(await h.remove('/srv/a')).toBe(false);
  });

  it('under DryRunHost a plan records the edits and leaves the memory as it was', async () => {
    const h = host();
    const dry = new DryRunHost(h);
    await applyEdits(dry, [
      { kind: 'ini', path: conf, ops: [{ op: 'set', section: 'main', key: 'server', value: 'b' }] },
    ]);
    expect(dry.mutations).toEqual([expect.objectContaining({ kind: 'write', path: conf })]);
    expect(h.file(conf)?.text).toBe('[main]\n');
  });
});

describe('MemoryHost commands', () => {
  it('answers by argv prefix (strings and RegExps), the last registration first; records each command', async () => {
    const h = new MemoryHost({ name: 'm1' })
      .onCommand(['systemctl', 'is-active'], { code: 3, stdout: 'inactive\n' })
      .onCommand(['systemctl', 'is-active', /^puppet/], 'active\n');
    expect((await h.exec(['systemctl', 'is-active', 'puppetserver'])).stdout).toBe('active\n');
    const other = await h.exec(['systemctl', 'is-active', 'postgresql'], { allowFailure: true });
    expect([other.code, other.stdout]).toEqual([3, 'inactive\n']);
    expect(h.commands.map((c) => [c.argv.join(' '), c.code])).toEqual([
      ['systemctl is-active puppetserver', 0],
      ['systemctl is-active postgresql', 3],
    ]);
    expect((await h.exec(['true'])).code).toBe(0);
  });

  it('a function reply sees stdin, env, sudo and the host, and may change its files', async () => {
    const h = new MemoryHost({ name: 'm1' });
    h.onCommand(
      (c) => c.argv[0] === 'tee',
      (c) => {
        c.host.setFile(c.argv[1]!, c.stdin ?? '');
        return { stdout: `${c.sudo} ${c.env.MODE}` };
      },
    );
    const r = await h.exec(['tee', '/tmp/out'], { stdin: 'data', env: { MODE: 'x' }, sudo: true });
    expect(r.stdout).toBe('true x');
    expect(h.file('/tmp/out')?.text).toBe('data');
  });

  it('a command nothing answers exits 127: CommandFailedError names it; secrets are masked in records and errors', async () => {
    const h = new MemoryHost({ name: 'm1', redactor: new Redactor().add('Top-Secret-1') });
    const e = await h.exec(['mysql', '--password=Top-Secret-1']).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(CommandFailedError);
    expect((e as CommandFailedError).exitCode).toBe(UNANSWERED_EXIT);
    expect((e as Error).message).toMatch(/no answer for `mysql` \(register one with onCommand\)/);
    expect(JSON.stringify([h.commands, (e as Error).message])).not.toContain('Top-Secret-1');
  });

  it('spawn streams the answer; there is no network', async () => {
    const h = new MemoryHost({ name: 'm1' }).onCommand(['tar', '-c'], 'archive');
    const p = await h.spawn(['tar', '-c', '.']);
    p.stdin.end('dropped');
    let out = '';
    for await (const chunk of p.stdout) out += String(chunk);
    expect([out, (await p.done).code]).toEqual(['archive', 0]);
    await expect(h.forward(5432)).rejects.toMatchObject({ code: 'E_CHANNEL' });
  });
});
