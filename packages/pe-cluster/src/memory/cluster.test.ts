import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { accessGranted, checkManyFromHost, instanceFromHost } from '@pe-stack/pe-db';
import { layouts } from '@pe-stack/pe-config-files';
import * as cluster from '../index.js';
import * as testing from './index.js';
import type { PeError } from '@pe-stack/pe-host';
import { Cluster, parseInventory } from '../index.js';
import { answerDatabase, MemoryHost, memoryCluster, type MemoryCluster } from './index.js';

const README = fileURLToPath(new URL('../../README.md', import.meta.url));

/** The README's code block that imports from `@pe-stack/pe-cluster/testing`. */
function readmeExample(): string {
  const blocks = [...readFileSync(README, 'utf8').matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
  const found = blocks.filter((b) => b.includes("from '@pe-stack/pe-cluster/testing'"));
  expect(found).toHaveLength(1);
  return found[0]!;
}

/**
 * Runs a README block as written: its import lines bind the names from `modules` (by specifier), the rest runs as
 * the body of an async function with `console.log` captured. The block is plain JavaScript (no type annotations).
 */
async function runBlock(code: string, modules: Record<string, Record<string, unknown>>): Promise<string[]> {
  const logged: string[] = [];
  const body = code.replace(/^import \{([^}]+)\} from '([^']+)';$/gm, (_all, names: string, spec: string) => {
    if (!modules[spec]) throw new Error(`the README imports ${spec}, which the test does not provide`);
    return `const {${names}} = modules[${JSON.stringify(spec)}];`;
  });
  const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor as new (
    ...args: string[]
  ) => (...a: unknown[]) => Promise<void>;
  await new AsyncFunction('modules', 'console', body)(modules, { log: (s: unknown) => logged.push(String(s)) });
  return logged;
}

const inventory = (layout = 'debian') =>
  parseInventory(
    [
      'cluster: t',
      `layout: ${layout}`,
      'primary_cname: ca.t.test',
      'general_cname: puppet.t.test',
      'masters:',
      '  - {name: primary.t.test, role: primary, address: 10.1.0.1}',
      '  - {name: s1.t.test, role: secondary, address: 10.1.0.2}',
      '',
    ].join('\n'),
    '/nowhere/inventory.yaml',
    { env: {}, home: '/nowhere' },
  );

describe("the README's plan on memory hosts", () => {
  it('runs as written: preflight (incl. the psql check) passes, every join step is planned, nothing changes', async () => {
    let world: MemoryCluster | undefined;
    const logged = await runBlock(readmeExample(), {
      '@pe-stack/pe-cluster': cluster,
      '@pe-stack/pe-cluster/testing': {
        ...testing,
        memoryCluster: (...a: Parameters<typeof memoryCluster>) => (world = memoryCluster(...a)),
      },
    });
    const plan = logged.join('\n');
    expect(plan).toMatch(/^Plan for join \(\d+ of \d+ steps to do; nothing was changed\)/);
    expect(plan).toMatch(/\[done \] preflight\.database: .*\(puppetdb connect as configured\)/);
    expect(plan.match(/\[done \] preflight\.ssh/g)).toHaveLength(2);
    for (const id of [
      'primary.ca-alt-names',
      'primary.db-access:secondary1.example.com',
      'settings',
      'database-settings',
    ])
      expect(plan).toMatch(new RegExp(`\\[to do\\] ${id.replace(/\./g, '\\.')}: `));
    expect(plan).toMatch(/no pg_hba record in effect for 10\.0\.0\.11/);
    expect(plan).toContain('+subname = //puppet-ca.example.com:5432/puppetdb');
    expect(plan).toContain('$ puppet agent --test --server puppet.example.com');
    expect(plan).not.toContain('example-password');
    // a plan: the hosts ran only read-only commands (the psql checks and queries), every file as seeded
    const secondary = world!.host('secondary1.example.com');
    expect(secondary.file('/etc/puppetdb/conf.d/database.ini')?.text).toContain('subname = //localhost/puppetdb');
    const argv0 = [...world!.hosts.values()].flatMap((h) => h.commands.map((c) => c.argv[0]));
    expect(new Set(argv0)).toEqual(new Set(['sh', 'runuser']));
  });
});

describe('memoryCluster', () => {
  it('seeds each master with the layout paths, owners and modes, on first use', () => {
    const world = memoryCluster(inventory());
    expect(world.hosts.size).toBe(0);
    const h = world.host('s1.t.test');
    const ini = h.file(layouts.debian.files.puppetdbDatabaseIni!.path)!;
    expect(ini.text).toContain('password = memory-db-password');
    expect([ini.mode, ini.uid, ini.gid]).toEqual([0o640, 0, h.gidOf('puppetdb')]);
    expect(world.host('s1.t.test')).toBe(h);
    expect(() => world.host('nope.t.test')).toThrow(/not in the inventory/);
  });

  it('a wrong database password: the plan stops at preflight.database with E_DB_AUTH, the password nowhere', async () => {
    const world = memoryCluster(inventory(), { databasePassword: 'Stale-Pw-1', acceptedPassword: 'Real-Pw-2' });
    const c = new Cluster(inventory(), { hostFactory: world.hostFactory });
    const r = await c.plan('join', ['s1.t.test']);
    expect(r.status).toBe('failed');
    expect(r.error).toMatchObject({ code: 'E_DB_AUTH', step: 'preflight.database' });
    expect(JSON.stringify(r)).not.toMatch(/Stale-Pw-1|Real-Pw-2/);
  });

  it('setup adds answers and files per host; pe3 needs seed: false', () => {
    const world = memoryCluster(inventory(), {
      setup: (h, node) => h.setFile('/etc/role', node.role),
    });
    expect(world.host('primary.t.test').file('/etc/role')?.text).toBe('primary');
    expect(() => memoryCluster(inventory('pe3'))).toThrow(expect.objectContaining({ code: 'E_USAGE' }) as PeError);
    expect(memoryCluster(inventory('pe3'), { seed: false }).host('s1.t.test').paths()).toEqual([]);
  });
});

describe('answerDatabase', () => {
  const layout = layouts.debian;
  const files = { confFile: layout.files.postgresqlConf!.path, hbaFile: layout.files.pgHbaConf!.path };
  const target = { server: 'ca.t.test', port: 5432, database: 'puppetdb', user: 'puppetdb' };

  it("pe-db's credential checks: the right password connects, a wrong one is E_DB_AUTH", async () => {
    const h = answerDatabase(new MemoryHost({ name: 'db' }), { password: 'Right-Pw' });
    const [ok] = await checkManyFromHost(h, [{ target, password: 'Right-Pw' }]);
    expect(ok).toMatchObject({ serverVersion: '15.6', serverVersionNum: 150006 });
    await expect(checkManyFromHost(h, [{ target, password: 'Wrong-Pw' }])).rejects.toMatchObject({
      code: 'E_DB_AUTH',
    });
  });

  it("pg_hba_file_rules and listen_addresses come from the host's own files", async () => {
    const h = answerDatabase(
      new MemoryHost({
        name: 'db',
        files: { [files.confFile]: "listen_addresses = '*'\n", [files.hbaFile]: 'local all postgres peer\n' },
      }),
      { password: 'x', files },
    );
    const inst = await instanceFromHost(h, layout);
    const grants = [{ database: 'puppetdb', user: 'puppetdb' }];
    expect(await accessGranted(inst, '10.1.0.2', grants, { listen: '*' })).toBe(false);
    h.setFile(files.hbaFile, 'local all postgres peer\nhost puppetdb puppetdb 10.1.0.2/32 scram-sha-256\n');
    expect(await accessGranted(inst, '10.1.0.2', grants, { listen: '*' })).toBe(true);
    expect(await accessGranted(inst, '10.1.0.2', grants, { listen: '10.1.0.1' })).toBe(true);
  });
});
