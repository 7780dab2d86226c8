import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { freePort } from '@pe-stack/testkit/sshd';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const PKG = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(PKG, 'dist', 'cli.js');
let root: string;

beforeAll(async () => {
  // the bin is the compiled dist/cli.js: bring it up to date (incremental, fast when it is)
  await run(process.execPath, [join(PKG, '..', '..', 'node_modules', 'typescript', 'bin', 'tsc'), '-b', PKG], {
    cwd: PKG,
  });
  root = await fs.mkdtemp(join(tmpdir(), 'pe-cli-child-'));
}, 120_000);
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

async function pecluster(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [CLI, ...args], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: root, ...env },
      timeout: 60_000,
    });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

/** An inventory whose hosts are on a loopback port where nothing listens. */
async function unreachableInventory(): Promise<string> {
  const port = await freePort();
  const p = join(root, `inv-${port}.yaml`);
  await fs.writeFile(
    p,
    `cluster: t
layout: debian
primary_cname: ca.test
general_cname: puppet.test
masters:
  - {name: primary.test, role: primary, address: 127.0.0.1}
  - {name: s1.test, role: secondary, address: 127.0.0.1}
ssh:
  port: ${port}
  connect-timeout: 3
  known-hosts: ${root}/known_hosts
journals: ${root}/journal
audit_log: ${root}/audit.log
`,
  );
  return p;
}

describe('pe-cluster as a child process (node dist/cli.js)', () => {
  it('--help exits 0 and documents the exit codes', async () => {
    const r = await pecluster(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Usage: pe-cluster');
    expect(r.stdout).toContain('130  interrupted');
  });

  it('a malformed inventory exits 2 with file, line and key; --json gives one error object', async () => {
    const bad = fileURLToPath(new URL('./fixtures/inventories/bad/port-string.yaml', import.meta.url));
    const r = await pecluster(['-i', bad, 'status']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('port-string.yaml:9:');
    expect(r.stderr).toContain('masters[0].ssh.port');
    const j = await pecluster(['-i', bad, '--json', 'status']);
    expect(j.code).toBe(2);
    expect(JSON.parse(j.stdout)).toMatchObject({
      type: 'error',
      exitCode: 2,
      error: { code: 'E_INVENTORY', issues: [{ line: 9, key: 'masters[0].ssh.port' }] },
    });
  });

  it('the inventory can come from PE_CLUSTER_INVENTORY', async () => {
    const r = await pecluster(['status'], { PE_CLUSTER_INVENTORY: join(root, 'nope.yaml') });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('nope.yaml');
  });

  it('status with the primary unreachable: broken (exit 4), --json says why per master', async () => {
    const inv = await unreachableInventory();
    const r = await pecluster(['-i', inv, '--json', 'status']);
    expect(r.code).toBe(4);
    const o = JSON.parse(r.stdout) as {
      health: string;
      masters: { name: string; reachable: boolean; error?: { code: string } }[];
    };
    expect(o.health).toBe('broken');
    expect(o.masters.map((m) => [m.name, m.reachable, m.error?.code])).toEqual([
      ['primary.test', false, 'E_UNREACHABLE'],
      ['s1.test', false, 'E_UNREACHABLE'],
    ]);
    const t = await pecluster(['-i', inv, 'status']);
    expect(t.code).toBe(4);
    expect(t.stdout).toMatch(/t: BROKEN/);
  });

  it('join with the hosts unreachable: exit 5, nothing journaled as done', async () => {
    const inv = await unreachableInventory();
    const r = await pecluster(['-i', inv, '--json', 'join', 's1.test']);
    expect(r.code).toBe(5);
    expect(JSON.parse(r.stdout.trim().split('\n').at(-1)!)).toMatchObject({
      exitCode: 5,
      error: { code: 'E_UNREACHABLE' },
    });
  });

  it('an unknown host exits 2', async () => {
    const inv = await unreachableInventory();
    const r = await pecluster(['-i', inv, 'join', 'ghost.test']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown host "ghost.test"');
  });
});
