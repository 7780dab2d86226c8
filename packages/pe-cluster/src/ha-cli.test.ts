import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { main } from './main.js';
import { applyClusterState, readState, writeState } from './state.js';
import { parseInventory } from './inventory.js';

let root: string;
beforeEach(async () => {
  root = await fs.mkdtemp(join(tmpdir(), 'pe-ha-cli-'));
});
afterEach(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

const INV = (root: string) => `cluster: t
layout: debian
primary_cname: ca.test
general_cname: puppet.test
masters:
  - {name: p.test, role: primary, address: 10.9.0.1}
  - {name: s1.test, role: secondary, address: 10.9.0.2}
journals: ${root}/state/journal
backups: ${root}/backups
`;

async function cli(args: string[]) {
  const inv = join(root, 'inventory.yaml');
  await fs.writeFile(inv, INV(root));
  let stdout = '';
  let stderr = '';
  const code = await main(['-i', inv, ...args], {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    env: {},
  });
  return { code, stdout, stderr };
}

describe('failover-side commands', () => {
  it('usage errors are exit 2 and contact nothing', async () => {
    expect((await cli(['failover'])).code).toBe(2);
    expect((await cli(['standby'])).code).toBe(2);
    expect((await cli(['rejoin', '--database', 'both', 'p.test'])).code).toBe(2);
    // the primary is not a standby candidate; an unknown host is refused (flow build, before any connection)
    const r = await cli(['--json', 'standby', 'p.test']);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout.trim()).error.code).toBe('E_USAGE');
    expect((await cli(['--json', 'rejoin', 'nope.test'])).code).toBe(2);
  });

  it('help names the modes and the data-loss flag', async () => {
    const h = await cli(['failover', '--help']);
    expect(h.code).toBe(0);
    expect(h.stdout).toContain('--accept-data-loss');
    expect(h.stdout).toContain('never two CAs');
    expect((await cli(['standby', '--help'])).stdout).toMatch(/--watch[\s\S]*cron/);
  });

  it('restore --verify-only refuses an archive without a backup key, without its .hmac or with a wrong one (exit 6, E_BACKUP)', async () => {
    const a = join(root, 'x.tar');
    await fs.writeFile(a, 'not a tar');
    let r = await cli(['--json', 'restore', '--verify-only', a]);
    expect(r.code).toBe(6);
    expect(JSON.parse(r.stdout.trim()).error).toMatchObject({
      code: 'E_BACKUP',
      message: expect.stringMatching(/no backup key/),
    });
    // the key in the state directory (as the first backup makes it); a .sha256 beside the archive authenticates nothing
    await fs.mkdir(join(root, 'state'), { recursive: true });
    await fs.writeFile(join(root, 'state', 't.backup-key'), `${'ab'.repeat(32)}\n`, { mode: 0o600 });
    await fs.writeFile(`${a}.sha256`, `${'0'.repeat(64)}  x.tar\n`);
    r = await cli(['--json', 'restore', '--verify-only', a]);
    expect(r.code).toBe(6);
    expect(JSON.parse(r.stdout.trim()).error.message).toMatch(/x\.tar\.hmac/);
    const { loadBackupKey } = await import('./flows/backup-key.js');
    const key = await loadBackupKey(join(root, 'state', 't.backup-key'), { create: false });
    await fs.writeFile(
      `${a}.hmac`,
      JSON.stringify({ alg: 'HMAC-SHA256', key: key.id, archive: 'x.tar', mac: '0'.repeat(64) }),
    );
    r = await cli(['--json', 'restore', '--verify-only', a]);
    expect(JSON.parse(r.stdout.trim()).error.message).toMatch(/does not match its HMAC/);
  });
});

describe('cluster state', () => {
  it('after a failover the state names the primary: roles swap, the new primary comes first; no state file changes nothing', () => {
    const inv = parseInventory(INV(root), join(root, 'inventory.yaml'), { env: {}, home: root });
    expect(applyClusterState(inv)).toBe(inv);
    writeState(inv, {
      version: 1,
      primary: 's1.test',
      fenced: [{ host: 'p.test', at: 'x', how: 'unreachable', newPrimary: 's1.test' }],
    });
    const now = applyClusterState(inv);
    expect(now.primary.name).toBe('s1.test');
    expect(now.masters.map((m) => `${m.name}:${m.role}`)).toEqual(['s1.test:primary', 'p.test:secondary']);
    expect(readState(inv).fenced.map((f) => f.host)).toEqual(['p.test']);
  });

  it('join leaves a fenced former primary out, and refuses it by name (rejoin brings it back)', async () => {
    const inv = parseInventory(INV(root), join(root, 'inventory.yaml'), { env: {}, home: root });
    writeState(inv, {
      version: 1,
      primary: 's1.test',
      fenced: [{ host: 'p.test', at: 'x', how: 'unreachable', newPrimary: 's1.test' }],
    });
    const { Cluster } = await import('./cluster.js');
    const c = new Cluster(inv);
    expect(() => c.secondaries([])).toThrow(/lists no secondary/);
    expect(() => c.secondaries(['p.test'])).toThrow(/fenced by a failover; .*rejoin p\.test/);
    const r = await cli(['--json', 'join', 'p.test']);
    expect(r.code).toBe(2);
  });
});
