import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { createServer, connect as netConnect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DryRunHost } from './dryrun.js';
import { CommandFailedError, CommandTimeoutError, FileNotFoundError, InvalidInputError } from './errors.js';
import { LocalHost } from './local.js';
import { MASK, Redactor } from './redact.js';
import { buildRemoteCommand } from './remote.js';
import { copyTree, treeManifest } from './tree.js';

let dir: string;
const host = new LocalHost({ name: 'local', redactor: new Redactor(['db-secret-123']) });

beforeAll(async () => {
  dir = await fs.mkdtemp(join(tmpdir(), 'pe-host-local-'));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('LocalHost.exec', () => {
  it('runs argv without a shell and reports code, output and time', async () => {
    const r = await host.exec(['printf', '%s|', 'a b', '$(id)', ';']);
    expect(r).toMatchObject({ code: 0, stdout: 'a b|$(id)|;|', stderr: '' });
    expect(r.ms).toBeGreaterThan(0);
  });

  it('passes stdin, env and cwd', async () => {
    const r = await host.exec(['sh', '-c', 'cat; printf "%s %s" "$PE_X" "$(pwd)"'], {
      stdin: 'in\n',
      env: { PE_X: 'val' },
      cwd: dir,
    });
    expect(r.stdout).toBe(`in\nval ${await fs.realpath(dir)}`);
  });

  it('throws CommandFailedError with the stderr tail, secrets masked', async () => {
    const err = await host
      .exec(['sh', '-c', 'echo "bad db-secret-123 and $X" >&2; exit 3'], { env: { X: 'env-secret-456' } })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommandFailedError);
    const e = err as CommandFailedError;
    expect(e.exitCode).toBe(3);
    expect(e.message).toContain('bad');
    expect(e.message).not.toMatch(/db-secret-123|env-secret-456/);
    expect(e.message).toContain(MASK);
  });

  it('returns the failure when asked', async () => {
    const r = await host.exec(['false'], { allowFailure: true });
    expect(r.code).toBe(1);
  });

  it('kills the whole process tree on timeout', async () => {
    const marker = `${dir}/child-ran`;
    const t0 = Date.now();
    const err = await host.exec(['sh', '-c', `sleep 5; touch ${marker}`], { timeoutMs: 300 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommandTimeoutError);
    expect(Date.now() - t0).toBeLessThan(3000);
    await new Promise((r) => setTimeout(r, 200));
    expect(await host.exists(marker)).toBe(false);
  });
});

describe('LocalHost files', () => {
  it('writes atomically, keeps a backup, preserves mode, and is a no-op when equal', async () => {
    const p = join(dir, 'puppet.conf');
    await fs.writeFile(p, '[main]\nserver = old\n', { mode: 0o640 });
    await fs.chmod(p, 0o640);
    const w1 = await host.writeFile(p, '[main]\nserver = new\n');
    expect(w1.changed).toBe(true);
    expect(await fs.readFile(p, 'utf8')).toBe('[main]\nserver = new\n');
    expect((await fs.stat(p)).mode & 0o777).toBe(0o640);
    expect(await fs.readFile(w1.backup!, 'utf8')).toBe('[main]\nserver = old\n');
    const w2 = await host.writeFile(p, '[main]\nserver = new\n');
    expect(w2).toEqual({ path: p, changed: false });
    const leftovers = (await fs.readdir(dir)).filter((f) => f.includes('pe-tmp'));
    expect(leftovers).toEqual([]);
  });

  it('removes temp files a killed writer left, but not a fresh one', async () => {
    const p = join(dir, 'stale.conf');
    const stale = join(dir, '.stale.conf.pe-tmp-1-dead');
    const fresh = join(dir, '.stale.conf.pe-tmp-2-live');
    await fs.writeFile(stale, 'half');
    await fs.writeFile(fresh, 'half');
    const old = new Date(Date.now() - 3600_000);
    await fs.utimes(stale, old, old);
    await host.writeFile(p, 'whole');
    expect(await host.exists(stale)).toBe(false);
    expect(await host.exists(fresh)).toBe(true);
    await fs.unlink(fresh);
  });

  it('creates new files with the requested mode and no backup', async () => {
    const p = join(dir, 'new.ini');
    const w = await host.writeFile(p, 'x', { mode: 0o600 });
    expect(w).toEqual({ path: p, changed: true });
    expect((await fs.stat(p)).mode & 0o777).toBe(0o600);
  });

  it('writes through a symlink to its target', async () => {
    const target = join(dir, 'target.conf');
    const link = join(dir, 'link.conf');
    await fs.writeFile(target, 'a');
    await fs.symlink(target, link);
    const w = await host.writeFile(link, 'b');
    expect(w.path).toBe(target);
    expect((await fs.lstat(link)).isSymbolicLink()).toBe(true);
    expect(await fs.readFile(target, 'utf8')).toBe('b');
  });

  it('reports missing files and refuses relative paths', async () => {
    await expect(host.readFile(join(dir, 'nope'))).rejects.toBeInstanceOf(FileNotFoundError);
    await expect(host.readFile('relative/path')).rejects.toBeInstanceOf(InvalidInputError);
    expect(await host.stat(join(dir, 'nope'))).toBeUndefined();
    expect(await host.remove(join(dir, 'nope'))).toBe(false);
  });

  it('refuses to remove directories too close to the root', async () => {
    await expect(host.remove('/etc', { recursive: true })).rejects.toBeInstanceOf(InvalidInputError);
  });
});

describe('LocalHost.forward', () => {
  it('tunnels to the target and closes even while a client stays connected', async () => {
    const server = createServer((s) => s.write('hello'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const fwd = await host.forward((server.address() as AddressInfo).port);
    const client = netConnect(fwd.localPort, '127.0.0.1');
    const first = await new Promise<string>((r) => client.once('data', (b: Buffer) => r(b.toString())));
    expect(first).toBe('hello');
    const t0 = Date.now();
    await fwd.close(); // the client never hung up
    expect(Date.now() - t0).toBeLessThan(500);
    await new Promise<void>((r) => (client.destroyed ? r() : client.once('close', () => r())));
    server.close();
  });
});

describe('DryRunHost', () => {
  it('records mutations with masked diffs and leaves the host untouched', async () => {
    const p = join(dir, 'database.ini');
    await fs.writeFile(p, '[database]\nsubname = //old:5432/puppetdb\npassword = old-pass-1\n');
    const dry = new DryRunHost(host);
    const w = await dry.writeFile(p, '[database]\nsubname = //master:5432/puppetdb\npassword = new-pass-2\n');
    expect(w.changed).toBe(true);
    await dry.exec(['systemctl', 'restart', 'puppetdb'], { sudo: true });
    await dry.exec(['psql', '-c', 'select 1'], { env: { PGPASSWORD: 'new-pass-2' } });
    await dry.remove(p);
    expect(await fs.readFile(p, 'utf8')).toContain('old-pass-1');
    const plan = JSON.stringify(dry.mutations);
    expect(plan).toContain('//master:5432/puppetdb');
    expect(plan).not.toMatch(/old-pass-1|new-pass-2/);
    expect(dry.mutations.map((m) => m.kind)).toEqual(['write', 'exec', 'exec', 'remove']);
    // later reads see the plan, not the disk
    expect(await dry.exists(p)).toBe(false);
  });

  it('runs read-only commands for real and sees planned content', async () => {
    const dry = new DryRunHost(host);
    const p = join(dir, 'planned.txt');
    await dry.writeFile(p, 'planned');
    expect((await dry.readFile(p)).toString()).toBe('planned');
    expect(await host.exists(p)).toBe(false);
    expect((await dry.exec(['echo', 'hi'], { readOnly: true })).stdout).toBe('hi\n');
    expect((await dry.writeFile(p, 'planned')).changed).toBe(false);
  });
});

describe('copyTree', () => {
  it('streams a tree between hosts and verifies sha256 manifests', async () => {
    const src = join(dir, 'ca');
    await fs.mkdir(join(src, 'signed'), { recursive: true });
    await fs.writeFile(join(src, 'ca_crt.pem'), 'cert');
    await fs.writeFile(join(src, 'signed', 'a b.pem'), 'x'.repeat(100_000));
    await fs.writeFile(join(src, 'ca_key.pem'), 'key', { mode: 0o600 });
    const dst = join(dir, 'ca-copy');
    const r = await copyTree(host, src, new LocalHost({ name: 'other' }), dst, { sudo: false });
    expect(r.files).toBe(3);
    expect(r.manifest.get('signed/a b.pem')).toMatch(/^[0-9a-f]{64}$/);
    expect((await fs.stat(join(dst, 'ca_key.pem'))).mode & 0o777).toBe(0o600);
    expect(await treeManifest(host, dst)).toEqual(r.manifest);
  });
});

describe('the remote wrapper program', () => {
  it('delivers env from stdin, cwd, and passes the rest of stdin through', () => {
    const cmd = buildRemoteCommand(['sh', '-c', 'printf "%s|%s|" "$A" "$(pwd)"; cat'], {
      sudo: false,
      pty: false,
      timeoutMs: 5000,
      env: { A: 'multi\nline $(x) secret' },
      cwd: '/tmp',
      stdinLength: 0,
    });
    const out = execFileSync('sh', ['-c', cmd.line], {
      input: Buffer.concat([cmd.prelude, Buffer.from('rest-of-stdin')]),
    });
    expect(out.toString()).toBe('multi\nline $(x) secret|/tmp|rest-of-stdin');
    expect(cmd.line).not.toContain('secret');
  });
});
