import { connect } from 'node:net';
import { describe, expect, it, beforeAll } from 'vitest';
import { useLab } from './fixture.js';
import type { Lab } from './lab.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One TCP exchange through the load balancer: the answering master's name. */
function ask(addr: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: addr, port, timeout: 5000 });
    let buf = '';
    s.on('data', (d) => (buf += d.toString()));
    s.on('end', () => resolve(buf.trim()));
    s.on('timeout', () => s.destroy(new Error('timeout')));
    s.on('error', reject);
  });
}

async function until(what: string, fn: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

describe('light profile', () => {
  let lab: Lab;
  beforeAll(async () => {
    ({ lab } = await useLab({ profile: 'light', hosts: ['primary', 'secondary1'], agents: 1 }));
  });

  it('reaches hosts over ssh with pinned host keys, each with its own hostname', async () => {
    for (const h of ['primary', 'secondary1', 'agent1']) {
      const r = await lab.ssh(h, ['hostname']);
      expect(r.stdout.trim()).toBe(`${h}.lab.test`);
    }
    const hosts = await lab.ssh('agent1', ['getent', 'hosts', 'master.lab.test', 'puppet.lab.test']);
    expect(hosts.stdout).toContain(lab.host('primary').ip);
    expect(hosts.stdout).toContain(`${lab.config.net}.1 `);
  });

  it('isolates disks and process tables', async () => {
    const token = `iso-${Date.now()}`;
    await lab.ssh('primary', [
      'sh',
      '-c',
      `'echo ${token} > /tmp/iso && echo ${token} > /root/iso && echo ${token} > /etc/ssh/iso'`,
    ]);
    expect((await lab.ssh('primary', ['cat', '/tmp/iso', '/root/iso', '/etc/ssh/iso'])).stdout).toBe(
      `${token}\n${token}\n${token}\n`,
    );
    for (const f of ['/tmp/iso', '/root/iso', '/etc/ssh/iso']) {
      const r = await lab.ssh('secondary1', ['test', '-e', f], { allowFailure: true });
      expect(r.code).toBe(1);
    }
    const ps = await lab.ssh('primary', ['ps', '-eo', 'pid=,comm=']);
    const procs = ps.stdout
      .trim()
      .split('\n')
      .map((l) => l.trim().split(/\s+/));
    expect(procs.find((p) => p[0] === '1')?.[1]).toBe('init.sh');
    // only this host's processes: its init, sshd, the session; nothing of the machine (vitest, node) or of other hosts
    expect(procs.length).toBeLessThan(12);
    expect(procs.map((p) => p[1])).not.toContain('node');
    const sshds = (await lab.exec('secondary1', ['pgrep', '-c', 'sshd'])).stdout.trim();
    expect(Number(sshds)).toBe(1);
  });

  it('runs services through the systemctl stand-in', async () => {
    await lab.exec('agent1', ['systemctl', 'stop', 'sshd.service']);
    const r = await lab.exec('agent1', ['systemctl', 'is-active', 'ssh'], { allowFailure: true });
    expect(r).toMatchObject({ code: 3, stdout: 'inactive\n' });
    expect((await lab.ssh('agent1', ['true'], { allowFailure: true })).code).toBe(255);
    await lab.exec('agent1', ['systemctl', 'start', 'ssh']);
    expect((await lab.exec('agent1', ['systemctl', 'is-active', 'ssh'])).stdout).toBe('active\n');
    expect((await lab.ssh('agent1', ['systemctl', 'is-enabled', 'ssh'])).stdout).toBe('enabled\n');
    const unknown = await lab.exec('agent1', ['systemctl', 'start', 'nosuch'], { allowFailure: true });
    expect(unknown.code).toBe(5);
    const log = await lab.exec('agent1', ['cat', '/var/log/lab-systemctl.log']);
    expect(log.stdout).toContain('systemctl stop sshd.service');
  });

  it('keeps the disk across power-off and power-on', async () => {
    const token = `disk-${Date.now()}`;
    await lab.ssh('secondary1', ['sh', '-c', `'echo ${token} > /root/keep'`]);
    const before = lab.initPid('secondary1');
    await lab.powerOff('secondary1');
    expect(lab.initPid('secondary1')).toBeUndefined();
    expect((await lab.status()).hosts.find((h) => h.name === 'secondary1')).toMatchObject({
      power: 'off',
      memoryBytes: 0,
    });
    expect((await lab.ssh('secondary1', ['true'], { allowFailure: true, timeoutMs: 20_000 })).code).toBe(255);
    await lab.powerOn('secondary1');
    expect(lab.initPid('secondary1')).not.toBe(before);
    expect((await lab.ssh('secondary1', ['cat', '/root/keep'])).stdout.trim()).toBe(token);
  });

  it('cuts and heals a link', async () => {
    await lab.cut('agent1');
    expect((await lab.status()).hosts.find((h) => h.name === 'agent1')?.link).toBe('down');
    const r = await lab.ssh('agent1', ['-o', 'ConnectTimeout=2', 'true'], { allowFailure: true });
    expect(r.code).toBe(255);
    // the host itself is still on: a partition, not a power cut
    expect((await lab.exec('agent1', ['hostname'])).stdout.trim()).toBe('agent1.lab.test');
    await lab.heal('agent1');
    await until('ssh after heal', async () => (await lab.ssh('agent1', ['true'], { allowFailure: true })).code === 0);
  });

  it('load-balances puppet.lab.test:8140 over the masters and fails over on a power cut', async () => {
    const responder = "require('net').createServer((s) => s.end(require('os').hostname() + '\\n')).listen(8140)";
    for (const h of ['primary', 'secondary1']) {
      await lab.exec(h, ['sh', '-c', 'cat > /tmp/responder.js'], { input: responder });
      await lab.exec(h, ['sh', '-c', 'setsid -f node /tmp/responder.js < /dev/null > /dev/null 2>&1']);
    }
    await until('both masters UP', async () => (await lab.loadBalancerBackends()).every((b) => b.status === 'UP'));
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) seen.add(await ask('puppet.lab.test', 8140));
    expect([...seen].sort()).toEqual(['primary.lab.test', 'secondary1.lab.test']);

    await lab.powerOff('primary');
    await until(
      'primary DOWN',
      async () => (await lab.loadBalancerBackends()).find((b) => b.name === 'primary')?.status === 'DOWN',
    );
    for (let i = 0; i < 6; i++) expect(await ask('puppet.lab.test', 8140)).toBe('secondary1.lab.test');
    await lab.powerOn('primary');
  });

  it('writes an inventory with the key and known_hosts the CLI uses', async () => {
    const files = await lab.writeInventory();
    const { readFileSync } = await import('node:fs');
    const { parse } = await import('yaml');
    const inv = parse(readFileSync(files.inventory, 'utf8'));
    expect(inv.config.ssh).toMatchObject({ user: 'root', 'private-key': files.privateKey, 'host-key-check': true });
    expect(inv.vars).toMatchObject({
      cluster: 'lab',
      layout: 'debian',
      primary_cname: 'master.lab.test',
      general_cname: 'puppet.lab.test',
    });
    const masters = inv.groups
      .find((g: { name: string }) => g.name === 'masters')
      .targets.map((t: { uri: string }) => t.uri);
    expect(masters).toEqual(['primary.lab.test', 'secondary1.lab.test']);
    const known = readFileSync(files.knownHosts, 'utf8');
    expect(known.split('\n').filter(Boolean)).toHaveLength(3);
    expect(known).toContain(`primary.lab.test,primary,${lab.host('primary').ip} ssh-ed25519 `);
  });
});
