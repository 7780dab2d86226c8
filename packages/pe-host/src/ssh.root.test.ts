import { execFileSync, spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyTree, treeManifest } from './tree.js';
import { DryRunHost } from './dryrun.js';
import {
  AuthFailedError,
  CommandFailedError,
  CommandTimeoutError,
  HostKeyChangedError,
  HostKeyUnknownError,
  HostUnreachableError,
  SudoPasswordError,
} from './errors.js';
import { MASK, Redactor } from './redact.js';
import { SshHost, type SshHostConfig } from './ssh.js';
import { freePort, startTestSshd, type TestSshd } from '@pe-stack/testkit/sshd';

// Real OpenSSH servers on 127.0.0.1, real users and sudo rules. Needs root.
const suffix = String(process.pid % 100000);
const NOPW = `pehnopw${suffix}`; // NOPASSWD sudo
const TTY = `pehtty${suffix}`; // password sudo + requiretty
const TTY_PASSWORD = 'Tty-Sudo-Pass-9!';
const sudoers = `/etc/sudoers.d/pe-host-test-${suffix}`;

let sshd: TestSshd;
let bastion: TestSshd;
const hosts: SshHost[] = [];

function host(extra: Partial<SshHostConfig> = {}): SshHost {
  const h = new SshHost({
    name: 'node.test',
    address: '127.0.0.1',
    port: sshd.port,
    user: 'root',
    privateKey: sshd.clientKeyPath,
    knownHosts: sshd.knownHostsPath,
    connectTimeoutMs: 5000,
    ...extra,
  });
  hosts.push(h);
  return h;
}

function sh(argv: string[]): string {
  return execFileSync(argv[0]!, argv.slice(1)).toString();
}

beforeAll(async () => {
  for (const u of [NOPW, TTY]) sh(['useradd', '-m', '-s', '/bin/bash', u]);
  sh(['usermod', '-p', '*', NOPW]); // no password, but not locked
  execFileSync('chpasswd', { input: `${TTY}:${TTY_PASSWORD}\n` });
  await fs.writeFile(sudoers, `${NOPW} ALL=(ALL) NOPASSWD: ALL\nDefaults:${TTY} requiretty\n${TTY} ALL=(ALL) ALL\n`, {
    mode: 0o440,
  });
  sh(['visudo', '-cf', sudoers]);
  sshd = await startTestSshd({ users: [NOPW, TTY] });
  bastion = await startTestSshd({ clientKeyPath: sshd.clientKeyPath });
});

afterAll(async () => {
  await Promise.all(hosts.map((h) => h.close().catch(() => undefined)));
  await sshd?.stop();
  await bastion?.stop();
  await fs.rm(sudoers, { force: true });
  for (const u of [NOPW, TTY]) {
    try {
      sh(['pkill', '-KILL', '-u', u]);
    } catch {
      /* no processes */
    }
    try {
      sh(['userdel', '-r', u]);
    } catch {
      /* already gone */
    }
  }
});

describe('SshHost against a real OpenSSH server', () => {
  it('runs awkward argv unchanged', async () => {
    const h = host();
    const args = ['a b', "it's", '"q"', '$(touch /tmp/pe-pwned)', '`id`', 'a;b', 'x\ny', '*', '$HOME', '', '\\', 'ü€'];
    const r = await h.exec(['printf', '%s\\0', ...args]);
    expect(r.stdout.split('\0').slice(0, -1)).toEqual(args);
    expect(await h.exists('/tmp/pe-pwned')).toBe(false);
    expect(r.ms).toBeGreaterThan(0);
  });

  it('carries stdin, env (not in argv) and cwd', async () => {
    const h = host();
    const r = await h.exec(['sh', '-c', 'printf "%s|%s|" "$PE_SECRET" "$(pwd)"; cat; ps -o args= -p $$'], {
      stdin: 'line1\nline2',
      env: { PE_SECRET: 'env-secret-value-1' },
      cwd: '/etc',
    });
    expect(r.stdout.startsWith('env-secret-value-1|/etc|line1\nline2')).toBe(true);
    // the secret is not on the remote command line
    expect(r.stdout.split('line2')[1]).not.toContain('env-secret-value-1');
  });

  it('throws CommandFailedError with masked secrets and the stderr tail', async () => {
    const h = host({ redactor: new Redactor(['known-secret-77']) });
    const err = await h
      .exec(['sh', '-c', 'echo "failed for known-secret-77 / $PGPASSWORD" >&2; exit 4', 'arg-secret-88'], {
        env: { PGPASSWORD: 'env-secret-99' },
        secrets: ['arg-secret-88'],
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommandFailedError);
    const e = err as CommandFailedError;
    expect(e.exitCode).toBe(4);
    expect(e.host).toBe('node.test');
    expect(e.message).toContain(MASK);
    expect(`${e.message} ${e.stderr} ${e.argv.join(' ')}`).not.toMatch(/known-secret-77|env-secret-99|arg-secret-88/);
  });

  it('kills the remote process on timeout', async () => {
    const h = host();
    const tag = `30.${suffix}`; // a sleep length no other process uses
    const t0 = Date.now();
    const err = await h.exec(['sh', '-c', `sleep ${tag}; echo never`], { timeoutMs: 1000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommandTimeoutError);
    expect(Date.now() - t0).toBeLessThan(6000);
    await new Promise((r) => setTimeout(r, 300));
    // 'slee[p]' matches the sleep but not this pgrep's own command line
    const left = await h.exec(['pgrep', '-f', `slee[p] ${tag}`], { allowFailure: true });
    expect(left.code).toBe(1);
  });

  it('runs 50 concurrent commands on one connection under the channel cap', async () => {
    const h = host({ maxChannels: 8 });
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => h.exec(['sh', '-c', `sleep 0.05; echo ${i}`])),
    );
    expect(results.map((r) => r.stdout.trim())).toEqual(Array.from({ length: 50 }, (_, i) => String(i)));
    expect(h.stats.connects).toBe(1);
    expect(h.stats.peakChannels).toBe(8);
  });

  it('never loses an exit status when a command lives and dies within one TCP read', async () => {
    // a user with a fast login shell makes commands finish in ~2 ms: the whole
    // channel life can arrive in one chunk (regression: exit codes came back null)
    const h = host({ user: NOPW });
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => h.exec(['sh', '-c', `echo ${i}; exit ${i % 3}`], { allowFailure: true })),
    );
    expect(results.map((r) => r.code)).toEqual(Array.from({ length: 200 }, (_, i) => i % 3));
    expect(results.map((r) => r.stdout)).toEqual(Array.from({ length: 200 }, (_, i) => `${i}\n`));
  });

  it('writes atomically over SFTP: backup, owner and mode kept, no-op when equal', async () => {
    const h = host();
    const dir = `/tmp/pe-write-${suffix}`;
    await h.mkdir(dir);
    const p = `${dir}/database.ini`;
    await h.exec(['sh', '-c', 'printf "old\\n" > "$1" && chown "$2" "$1" && chmod 640 "$1"', 'sh', p, NOPW]);
    const before = await h.stat(p);
    const w = await h.writeFile(p, 'new\n');
    expect(w.changed).toBe(true);
    const after = await h.stat(p);
    expect(after).toMatchObject({ mode: 0o640, uid: before!.uid, gid: before!.gid, size: 4 });
    expect((await h.readFile(w.backup!)).toString()).toBe('old\n');
    expect(await h.writeFile(p, 'new\n')).toEqual({ path: p, changed: false });
    expect((await h.exec(['ls', '-a', dir])).stdout).not.toContain('pe-tmp');
    await h.remove(dir, { recursive: true });
  });

  it('reads many files in one command (readFiles), as root over exec and through sudo, as stat and readFile see them', async () => {
    for (const h of [host(), host({ user: NOPW })]) {
      const dir = `/root/pe-batch-${suffix}`;
      await h.mkdir(dir, { mode: 0o700 });
      const bin = Buffer.from([0, 1, 10, 13, 10, 255, 0x2d, 0x0a, 0x3f, 0x0a]);
      await h.writeFile(`${dir}/bin`, bin, { mode: 0o600 });
      await h.writeFile(`${dir}/empty`, '');
      await h.writeFile(`${dir}/key.pem`, 'PRIVATE\n', { mode: 0o600 });
      await h.writeFile(`${dir}/big`, 'x'.repeat(100));
      await h.exec(['ln', '-s', 'bin', `${dir}/link`], { sudo: true });
      await h.exec(['ln', '-s', 'nowhere', `${dir}/dangling`], { sudo: true });
      await h.mkdir(`${dir}/sub`);
      const paths = ['bin', 'empty', 'key.pem', 'big', 'link', 'dangling', 'sub', 'absent', 'bin'].map(
        (n) => `${dir}/${n}`,
      );
      const before = h.stats.commands;
      const r = await h.readFiles(paths, { statOnly: [`${dir}/key.pem`], maxBytes: 50 });
      expect(h.stats.commands - before).toBe(1);
      expect([...r.keys()]).toEqual(paths.slice(0, -1));
      for (const p of paths.slice(0, -1)) {
        const e = r.get(p)!;
        expect(e.stat).toEqual(await h.stat(p, { sudo: true }));
      }
      expect(r.get(`${dir}/bin`)!.data).toEqual(bin);
      expect(r.get(`${dir}/link`)!.data).toEqual(bin);
      expect(r.get(`${dir}/link`)!.stat!.isSymlink).toBe(true);
      expect(r.get(`${dir}/empty`)!.data).toEqual(Buffer.alloc(0));
      expect(r.get(`${dir}/key.pem`)!.data).toBeUndefined();
      expect(r.get(`${dir}/key.pem`)!.stat).toMatchObject({ isFile: true, mode: 0o600, size: 8 });
      expect(r.get(`${dir}/big`)!.data).toBeUndefined();
      expect(r.get(`${dir}/big`)!.stat!.size).toBe(100);
      expect(r.get(`${dir}/sub`)!.stat!.isDirectory).toBe(true);
      expect(r.get(`${dir}/dangling`)!.stat!.isSymlink).toBe(true);
      expect(r.get(`${dir}/dangling`)!.data).toBeUndefined();
      expect(r.get(`${dir}/absent`)).toEqual({ path: `${dir}/absent`, stat: undefined });
      await h.remove(dir, { recursive: true });
    }
  });

  it('writes many files in one command (writeFiles), as root and through sudo (also requiretty): atomic, backup, owner by name, mode, no-op when equal', async () => {
    for (const h of [host(), host({ user: NOPW }), host({ user: TTY, sudoPassword: TTY_PASSWORD })]) {
      const dir = `/root/pe-bwrite-${suffix}`;
      await h.mkdir(dir, { mode: 0o700 });
      await h.exec(
        ['sh', '-c', 'printf "old\\n" > "$1" && chown "$2" "$1" && chmod 640 "$1"', 'sh', `${dir}/old`, NOPW],
        { sudo: true },
      );
      const secret = 'PRIVATE-KEY-BYTES-7';
      const bin = Buffer.from([0, 1, 10, 13, 255, 10]);
      const before = h.stats.commands;
      const r = await h.writeFiles([
        { path: `${dir}/old`, data: 'new\n' },
        { path: `${dir}/key.pem`, data: secret, opts: { mode: 0o600, owner: NOPW, group: 'root', secrets: [secret] } },
        { path: `${dir}/bin`, data: bin },
      ]);
      expect(h.stats.commands - before).toBe(1);
      expect(r.map((x) => x.changed)).toEqual([true, true, true]);
      expect((await h.readFile(r[0]!.backup!)).toString()).toBe('old\n');
      const uid = Number(sh(['id', '-u', NOPW]).trim());
      expect(await h.stat(`${dir}/old`, { sudo: true })).toMatchObject({ mode: 0o640, uid, size: 4 });
      expect(await h.stat(`${dir}/key.pem`, { sudo: true })).toMatchObject({ mode: 0o600, uid, gid: 0 });
      expect(await h.readFile(`${dir}/bin`, { sudo: true })).toEqual(bin);
      const again = await h.writeFiles([
        { path: `${dir}/old`, data: 'new\n' },
        { path: `${dir}/key.pem`, data: secret, opts: { mode: 0o600, owner: NOPW, group: 'root' } },
      ]);
      expect(again.map((x) => x.changed)).toEqual([false, false]);
      expect((await h.exec(['ls', '-a', dir], { sudo: true })).stdout).not.toContain('pe-tmp');
      await h.remove(dir, { recursive: true });
    }
  });

  it('cleans temp files a killed writer left, over SFTP and through sudo', async () => {
    for (const h of [host(), host({ user: NOPW })]) {
      const dir = `/root/pe-stale-${suffix}`;
      await h.mkdir(dir);
      const stale = `${dir}/.x.conf.pe-tmp-9-dead`;
      await h.exec(['sh', '-c', 'echo half > "$1" && touch -d "2 hours ago" "$1"', 'sh', stale], { sudo: true });
      await h.writeFile(`${dir}/x.conf`, 'whole\n');
      expect(await h.exists(stale)).toBe(false);
      await h.remove(dir, { recursive: true });
    }
  });

  it('writes through sudo when the login user is not root', async () => {
    const h = host({ user: NOPW });
    const dir = `/root/pe-sudo-write-${suffix}`;
    await h.mkdir(dir, { mode: 0o700 });
    const p = `${dir}/auth.conf`;
    const w1 = await h.writeFile(p, 'a = 1\n', { mode: 0o600, owner: 'root', group: 'root' });
    expect(w1.changed).toBe(true);
    const w2 = await h.writeFile(p, 'a = 2\n');
    expect((await h.readFile(w2.backup!)).toString()).toBe('a = 1\n');
    expect(await h.stat(p)).toMatchObject({ mode: 0o600, uid: 0, gid: 0 });
    expect((await h.writeFile(p, 'a = 2\n')).changed).toBe(false);
    expect((await h.exec(['id', '-u'], { sudo: true })).stdout.trim()).toBe('0');
    expect((await h.exec(['id', '-u'])).stdout.trim()).not.toBe('0');
    await h.remove(dir, { recursive: true });
    expect(await h.exists(dir)).toBe(false);
  });

  it('answers a sudo password on a pty for a requiretty user, and refuses a wrong or missing one', async () => {
    const ok = host({ user: TTY, sudoPassword: TTY_PASSWORD });
    const r = await ok.exec(['sh', '-c', 'id -u; printf "%s|" "$V"; cat'], {
      sudo: true,
      stdin: 'binary\x00\x04\r\nsafe',
      env: { V: 'pty-env' },
      timeoutMs: 20_000,
    });
    expect(r.stdout).toBe('0\npty-env|binary\x00\x04\r\nsafe');
    const wrong = host({ user: TTY, sudoPassword: 'not-the-password' });
    const e1 = await wrong.exec(['true'], { sudo: true, timeoutMs: 20_000 }).catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(SudoPasswordError);
    expect((e1 as Error).message).not.toContain('not-the-password');
    const missing = host({ user: TTY });
    const e2 = await missing.exec(['true'], { sudo: true, timeoutMs: 20_000 }).catch((e: unknown) => e);
    expect(e2).toBeInstanceOf(SudoPasswordError);
  }, 90_000);

  it('writes a new file with an owner through sudo on a pty (requiretty), atomically, and a no-op when equal', async () => {
    const h = host({ user: TTY, sudoPassword: TTY_PASSWORD });
    const dir = `/root/pe-ttywrite-${suffix}`;
    await h.mkdir(dir, { mode: 0o700, sudo: true });
    const r = await h.writeFile(`${dir}/new.conf`, 'a = 1\n', { sudo: true, owner: NOPW, mode: 0o640 });
    expect(r.changed).toBe(true);
    const uid = Number(sh(['id', '-u', NOPW]).trim());
    expect(await h.stat(`${dir}/new.conf`, { sudo: true })).toMatchObject({ mode: 0o640, uid, size: 6 });
    expect((await h.writeFile(`${dir}/new.conf`, 'a = 1\n', { sudo: true, owner: NOPW, mode: 0o640 })).changed).toBe(
      false,
    );
    await h.remove(dir, { recursive: true, sudo: true });
  }, 90_000);

  it('refuses an unknown or changed host key, accepts a pinned fingerprint, and writes known_hosts only on opt-in', async () => {
    const empty = `${sshd.dir}/empty_known_hosts`;
    await fs.writeFile(empty, '');
    await expect(host({ knownHosts: empty }).exec(['true'])).rejects.toBeInstanceOf(HostKeyUnknownError);

    const other = generateKeyPairSync('ed25519').publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
    const blob = Buffer.concat([
      Buffer.from([0, 0, 0, 11]),
      Buffer.from('ssh-ed25519'),
      Buffer.from([0, 0, 0, 32]),
      other,
    ]);
    const wrong = `${sshd.dir}/wrong_known_hosts`;
    await fs.writeFile(wrong, `[127.0.0.1]:${sshd.port} ssh-ed25519 ${blob.toString('base64')}\n`);
    const changed = await host({ knownHosts: wrong })
      .exec(['true'])
      .catch((e: unknown) => e);
    expect(changed).toBeInstanceOf(HostKeyChangedError);
    expect((changed as HostKeyChangedError).fingerprint).toBe(sshd.hostKeyFingerprint);
    // a changed key is refused even with trust-on-first-use
    await expect(host({ knownHosts: wrong, trustOnFirstUse: true }).exec(['true'])).rejects.toBeInstanceOf(
      HostKeyChangedError,
    );

    const pinned = host({ knownHosts: undefined, hostKeys: [sshd.hostKeyFingerprint] });
    expect((await pinned.exec(['echo', 'pinned'])).stdout).toBe('pinned\n');

    const tofuFile = `${sshd.dir}/tofu_known_hosts`;
    await host({ knownHosts: tofuFile, trustOnFirstUse: true }).exec(['true']);
    const written = await fs.readFile(tofuFile, 'utf8');
    expect(written).toMatch(/^\|1\|/); // hashed
    expect((await host({ knownHosts: tofuFile }).exec(['echo', 'again'])).stdout).toBe('again\n');
  });

  it('reports a refused key and an unreachable port as typed errors', async () => {
    const { privateKey } = generateKeyPairSync('ed25519', {
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
      publicKeyEncoding: { type: 'spki', format: 'pem' },
    });
    const keyPath = `${sshd.dir}/stranger_key`;
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', keyPath]);
    void privateKey;
    await expect(host({ privateKey: keyPath }).exec(['true'])).rejects.toBeInstanceOf(AuthFailedError);
    const closed = await freePort();
    const err = await host({ port: closed })
      .exec(['true'])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HostUnreachableError);
    expect((err as Error).message).toMatch(/ECONNREFUSED/);
  });

  it('authenticates through an ssh-agent', async () => {
    const sock = `${sshd.dir}/agent.sock`;
    const agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 50 && !(await fs.stat(sock).catch(() => undefined)); i++)
        await new Promise((r) => setTimeout(r, 50));
      execFileSync('ssh-add', ['-q', sshd.clientKeyPath], {
        env: { ...process.env, SSH_AUTH_SOCK: sock },
        stdio: 'ignore',
      });
      const h = host({ privateKey: undefined, agent: sock });
      expect((await h.exec(['echo', 'agent'])).stdout).toBe('agent\n');
    } finally {
      agent.kill();
    }
  });

  it('gives up on a silent port after the connect timeout', async () => {
    // a listener that accepts TCP but never speaks SSH
    const silent: Server = createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const t0 = Date.now();
    const err = await host({ port: (silent.address() as AddressInfo).port, connectTimeoutMs: 700 })
      .exec(['true'])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HostUnreachableError);
    expect(Date.now() - t0).toBeLessThan(5000);
    silent.close();
  });

  it('reaches a host through a bastion (ProxyJump)', async () => {
    const jump: SshHostConfig = {
      name: 'bastion.test',
      address: '127.0.0.1',
      port: bastion.port,
      user: 'root',
      privateKey: sshd.clientKeyPath,
      knownHosts: bastion.knownHostsPath,
    };
    const h = host({ jump });
    const r = await h.exec(['echo', 'via-bastion']);
    expect(r.stdout).toBe('via-bastion\n');
    expect(h.stats.connects).toBe(1);
  });

  it('forwards a local port through the connection', async () => {
    const server: Server = createServer((s) => s.end('hello from the far side'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const h = host();
    const fwd = await h.forward(port);
    const got = await new Promise<string>((resolve, reject) => {
      let data = '';
      const s = require_net_connect(fwd.localPort);
      s.on('data', (b: Buffer) => (data += b.toString()));
      s.on('end', () => resolve(data));
      s.on('error', reject);
    });
    expect(got).toBe('hello from the far side');
    await fwd.close();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('copies a tree between two hosts with matching manifests', async () => {
    const a = host();
    const b = host({ user: NOPW });
    const src = `/tmp/pe-tree-src-${suffix}`;
    const dst = `/root/pe-tree-dst-${suffix}`;
    await a.exec([
      'sh',
      '-c',
      'mkdir -p "$1/signed" && head -c 300000 /dev/urandom > "$1/big" && echo k > "$1/ca_key.pem" && chmod 600 "$1/ca_key.pem" && for i in 1 2 3; do echo $i > "$1/signed/n$i.pem"; done',
      'sh',
      src,
    ]);
    const r = await copyTree(a, src, b, dst);
    expect(r.files).toBe(5);
    expect(r.bytes).toBeGreaterThan(300_000);
    expect(await treeManifest(a, dst)).toEqual(r.manifest);
    expect(await a.stat(`${dst}/ca_key.pem`)).toMatchObject({ mode: 0o600 });
    await a.remove(src, { recursive: true });
    await a.remove(dst, { recursive: true });
  });

  it('DryRunHost leaves the remote untouched', async () => {
    const h = host();
    const p = `/tmp/pe-dry-${suffix}`;
    await h.writeFile(p, 'password = real-secret-1\n');
    const dry = new DryRunHost(h);
    await dry.writeFile(p, 'password = planned-secret-2\n');
    await dry.exec(['rm', '-f', p]);
    await dry.remove(p);
    expect((await h.readFile(p)).toString()).toBe('password = real-secret-1\n');
    expect(JSON.stringify(dry.mutations)).not.toMatch(/real-secret-1|planned-secret-2/);
    expect(dry.mutations).toHaveLength(3);
    await h.remove(p);
  });
});

import { connect as netConnect } from 'node:net';
function require_net_connect(port: number) {
  return netConnect(port, '127.0.0.1');
}
