import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Lab } from './lab.js';
import { homePid, netnsInode, pidsInNetns, runRoot } from './sys.js';

const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));

/** Everything of a lab named `name` that the machine still holds. */
async function remains(name: string, net: string, stateDir: string, inodes: number[]) {
  const home = homePid();
  const namespaces = readdirSync(`/proc/${home}/root/run/netns`).filter((n) => n.startsWith(`${name}-`));
  const etc = existsSync('/etc/netns') ? readdirSync('/etc/netns').filter((n) => n.startsWith(`${name}-`)) : [];
  const route = (await runRoot('ip', ['route', 'show', 'exact', `${net}.0/24`])).stdout.trim();
  const mounts = readFileSync(`/proc/${home}/mountinfo`, 'utf8')
    .split('\n')
    .filter((l) => l.includes(stateDir) || l.includes(`/${name}-`));
  const procs: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const { statSync } = await import('node:fs');
      if (inodes.includes(statSync(`/proc/${e}/ns/net`).ino)) procs.push(Number(e));
    } catch {
      // gone
    }
  }
  return { namespaces, etc, route, mounts, procs };
}

describe('teardown', () => {
  it('leaves no namespace, route, mount or process behind, even after a crashed up', async () => {
    const stateDir = mkdtempSync('/var/lib/pe-stack-labt-');
    const env = { ...process.env, PE_STACK_LAB_NAME: 'labt', PE_STACK_LAB_NET: '10.78.0', PE_STACK_LAB_DIR: stateDir };
    const lab = new Lab({ name: 'labt', net: '10.78.0', stateDir });
    try {
      // an `up` of 12 hosts killed mid-way: a crash
      const child = spawn(process.execPath, [cli, 'up', '--profile', 'light', '--hosts', 'primary', '--agents', '11'], {
        env,
        stdio: 'ignore',
      });
      const inodes = new Set<number>();
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline) {
        for (const n of readdirSync(`/proc/${homePid()}/root/run/netns`)) {
          if (!n.startsWith('labt-')) continue;
          const ino = netnsInode(n);
          if (ino !== undefined) inodes.add(ino);
          if (n !== 'labt-ctl' && pidsInNetns(n).length > 0) break;
        }
        if ([...inodes].length >= 4) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      child.kill('SIGKILL');
      await new Promise((r) => child.on('exit', r));
      expect(inodes.size).toBeGreaterThanOrEqual(2);
      const before = await remains('labt', '10.78.0', stateDir, [...inodes]);
      expect(before.namespaces.length).toBeGreaterThan(0);
      expect(before.route).toContain('unreachable');

      const report = await lab.down();
      expect(report.controllerKept).toBe(false);
      const after = await remains('labt', '10.78.0', stateDir, [...inodes]);
      expect(after).toEqual({ namespaces: [], etc: [], route: '', mounts: [], procs: [] });
      // and `up` works again on the cleaned machine, then `down` cleans again
      await lab.up({ profile: 'light', hosts: ['primary'], agents: 1 });
      expect((await lab.exec('agent1', ['hostname'])).stdout.trim()).toBe('agent1.lab.test');
      await lab.down();
      expect((await remains('labt', '10.78.0', stateDir, [])).namespaces).toEqual([]);
    } finally {
      await lab.down().catch(() => undefined);
      rmSync(stateDir, { recursive: true, force: true });
    }
  });

  it('down inside a run leaves no veth in the kept controller, so up works right after (the fixture switching labs)', async () => {
    const stateDir = mkdtempSync('/var/lib/pe-stack-labt-');
    const env = { ...process.env, PE_STACK_LAB_NAME: 'labt', PE_STACK_LAB_NET: '10.78.0', PE_STACK_LAB_DIR: stateDir };
    const lab = new Lab({ name: 'labt', net: '10.78.0', stateDir });
    try {
      const script = `set -e; L="${process.execPath} ${cli}"; $L up --profile light --hosts primary --agents 2 >/dev/null; $L down >/dev/null; echo "veths:$(ip -n labt-ctl -o link show type veth | grep -c labtv || true)"; $L up --profile light --hosts primary --agents 2 >/dev/null; echo up-again; $L down >/dev/null`;
      const child = spawn(process.execPath, [cli, 'run', '--', 'sh', '-c', script], {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const code = await new Promise((r) => child.on('exit', r));
      expect(out).toContain('veths:0');
      expect(out).toContain('up-again');
      expect(code).toBe(0);
    } finally {
      await lab.down().catch(() => undefined);
      rmSync(stateDir, { recursive: true, force: true });
    }
  });

  it('refuses to let a client connect from outside the controller namespace', () => {
    const other = new Lab({ name: 'labz', net: '10.79.0' });
    expect(() => other.assertInController()).toThrow(/not in the controller namespace labz-ctl/);
  });
});
