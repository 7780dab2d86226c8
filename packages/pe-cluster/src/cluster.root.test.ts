import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { dirname } from 'node:path';
import { layouts } from '@pe-stack/pe-config-files';
import { destroyCluster, grantAccess, initCluster, psql, startInstance, type PgInstance } from '@pe-stack/pe-db';
import { LocalHost } from '@pe-stack/pe-host';
import { freePort, startTestSshd, type TestSshd } from '@pe-stack/testkit/sshd';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Cluster, loadInventory, main, type CliIo, type Flow, type Step } from './index.js';

// Root only: a throwaway OpenSSH server on 127.0.0.1; every "host" of the inventory is that server
// (distinct names, distinct directories), reached through the real SshHost the CLI builds from the inventory.

const SECRET = 'Root-Test-Sudo-Secret-7';
let sshd: TestSshd;
let root: string;

beforeAll(async () => {
  sshd = await startTestSshd();
});
afterAll(async () => {
  await sshd?.stop();
});
beforeEach(async () => {
  root = await fs.mkdtemp(join(tmpdir(), 'pe-cluster-root-'));
});
afterEach(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

async function writeInventory(extraSsh = ''): Promise<string> {
  const p = join(root, 'inventory.yaml');
  await fs.writeFile(
    p,
    `version: 2
config:
  transport: ssh
  ssh:
    user: root
    port: ${sshd.port}
    private-key: ${sshd.clientKeyPath}
    known-hosts: ${sshd.knownHostsPath}
    sudo-password: {_plugin: env_var, var: PE_ROOT_TEST_SECRET}
${extraSsh}
vars:
  cluster: rt
  layout: debian
  primary_cname: ca.rt.test
  general_cname: puppet.rt.test
  journals: ${root}/journal
  audit_log: ${root}/audit.log
groups:
  - name: primary
    vars: {role: primary}
    targets: [{uri: 127.0.0.1, name: primary.rt.test}]
  - name: secondaries
    vars: {role: secondary}
    targets:
      - {uri: 127.0.0.1, name: s1.rt.test}
      - {uri: 127.0.0.1, name: s2.rt.test}
`,
  );
  return p;
}

const dir = (h: string) => join(root, 'hosts', h);

/** A join-shaped flow over real SSH: a config edit, a command carrying a secret, an optional crash. */
function demo(crashAt?: string) {
  return (_c: Cluster, hosts: readonly string[]): Flow => {
    const step = (
      h: string,
      id: string,
      apply: (host: import('@pe-stack/pe-host').Host) => Promise<unknown>,
      done: (host: import('@pe-stack/pe-host').Host) => Promise<boolean>,
    ): Step => ({
      id,
      host: h,
      title: `${id} on ${h}`,
      check: async (ctx) =>
        (await done(ctx.host)) ? { done: true, why: 'as wanted' } : { done: false, why: 'not yet' },
      apply: async (ctx) => {
        await apply(ctx.host);
        if (`${id}@${h}` === crashAt) throw new Error('simulated crash');
      },
    });
    const lanes = (hosts.length ? hosts : ['s1.rt.test', 's2.rt.test']).map((h) => [
      step(
        h,
        'conf',
        (host) => host.writeFile(`${dir(h)}/puppet.conf`, '[main]\nca_server = ca.rt.test\n'),
        async (host) =>
          (await host.exists(`${dir(h)}/puppet.conf`)) &&
          (await host.readFile(`${dir(h)}/puppet.conf`)).toString().includes('ca_server'),
      ),
      step(
        h,
        'marker',
        (host) => host.exec(['sh', '-c', 'printf %s "$1" | sha256sum > "$2"', 'sh', SECRET, `${dir(h)}/marker`]),
        (host) => host.exists(`${dir(h)}/marker`),
      ),
    ]);
    return { name: 'join', items: [{ group: 'secondaries', lanes }] };
  };
}

async function cli(args: string[], flows?: ReturnType<typeof demo>) {
  let stdout = '';
  let stderr = '';
  for (const h of ['s1.rt.test', 's2.rt.test']) await fs.mkdir(dir(h), { recursive: true });
  const io: CliIo = {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    env: { PE_ROOT_TEST_SECRET: SECRET },
    ...(flows ? { cluster: { flows: { join: flows } } } : {}),
  };
  const code = await main(args, io);
  return { code, stdout, stderr };
}

async function snapshot(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const h of ['s1.rt.test', 's2.rt.test']) {
    for (const f of await fs.readdir(dir(h)).catch(() => [] as string[]))
      if (!f.includes('.pe-backup-')) out[`${h}/${f}`] = await fs.readFile(join(dir(h), f), 'utf8');
  }
  return out;
}

describe('pe-cluster over a real sshd', () => {
  it('plan changes nothing; join applies; a rerun does nothing; journal and audit log carry no secret', async () => {
    const inv = await writeInventory();
    const plan = await cli(['-i', inv, 'plan', 'join', 's1.rt.test', 's2.rt.test'], demo());
    expect(plan.code).toBe(0);
    expect(plan.stdout).toContain('+ca_server = ca.rt.test');
    expect(plan.stdout).toMatch(/\$ sh -c .* sh \*{8} /);
    expect(await snapshot()).toEqual({});
    const run = await cli(['-i', inv, 'join', 's1.rt.test', 's2.rt.test'], demo());
    expect(run.code).toBe(0);
    const state = await snapshot();
    expect(Object.keys(state).sort()).toEqual([
      's1.rt.test/marker',
      's1.rt.test/puppet.conf',
      's2.rt.test/marker',
      's2.rt.test/puppet.conf',
    ]);
    const again = await cli(['-i', inv, '--json', 'join', 's1.rt.test', 's2.rt.test'], demo());
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout.trim().split('\n').at(-1)!)).toMatchObject({
      status: 'ok',
      steps: [{ status: 'skipped' }, { status: 'skipped' }, { status: 'skipped' }, { status: 'skipped' }],
    });
    const journals = await fs.readdir(join(root, 'journal'));
    expect(journals).toHaveLength(2);
    const blobs = [
      await fs.readFile(join(root, 'audit.log'), 'utf8'),
      ...(await Promise.all(journals.map((j) => fs.readFile(join(root, 'journal', j), 'utf8')))),
      plan.stdout,
      run.stdout,
      again.stdout,
    ];
    for (const b of blobs) expect(b).not.toContain(SECRET);
  });

  it('a crash after step k, then --resume, converges to the end state of an uninterrupted run (every k)', async () => {
    const inv = await writeInventory();
    await cli(['-i', inv, 'join', 's1.rt.test', 's2.rt.test'], demo());
    const want = await snapshot();
    for (const k of ['conf@s1.rt.test', 'marker@s1.rt.test', 'conf@s2.rt.test', 'marker@s2.rt.test']) {
      await fs.rm(join(root, 'hosts'), { recursive: true, force: true });
      const crashed = await cli(['-i', inv, 'join', 's1.rt.test', 's2.rt.test'], demo(k));
      expect(crashed.code, k).toBe(1); // a plain Error in a step is an internal error
      const resumed = await cli(['-i', inv, '--resume', 'join', 's1.rt.test', 's2.rt.test'], demo());
      expect(resumed.code, k).toBe(0);
      expect(resumed.stdout, k).toContain(`resuming (stopped at ${k})`);
      expect(await snapshot(), k).toEqual(want);
    }
  });

  it('status through the API: every master reachable over SSH, and the missing Puppet files are reported (broken)', async () => {
    const inv = await loadInventory(await writeInventory(), { env: { PE_ROOT_TEST_SECRET: SECRET } });
    const cluster = new Cluster({
      ...inv,
      layout: {
        ...inv.layout,
        files: { ...inv.layout.files, puppetConf: { ...inv.layout.files.puppetConf!, path: `${root}/none.conf` } },
      },
    });
    try {
      const r = await cluster.status();
      expect(r.masters.map((m) => m.reachable)).toEqual([true, true, true]);
      expect(r.health).toBe('broken');
      expect(JSON.stringify(r)).not.toContain(SECRET);
    } finally {
      await cluster.close();
    }
  });

  it('a changed host key: typed error, exit 5 for join, nothing changed on any host', async () => {
    const empty = join(root, 'empty_known_hosts');
    await fs.writeFile(empty, '');
    const inv = await writeInventory(`    host-keys: [SHA256:${'A'.repeat(43)}]\n`);
    await fs.writeFile(inv, (await fs.readFile(inv, 'utf8')).replace(sshd.knownHostsPath, empty));
    const r = await cli(['-i', inv, '--json', 'join', 's1.rt.test'], demo());
    expect(r.code).toBe(5);
    expect(r.stdout).toContain('E_HOSTKEY_CHANGED');
    expect(await snapshot()).toEqual({});
    const st = await cli(['-i', inv, '--json', 'status']);
    expect(st.code).toBe(4);
    expect(JSON.parse(st.stdout).masters[0].error.code).toBe('E_HOSTKEY_CHANGED');
  });

  it('an unknown host key (not in known_hosts, no pin): E_HOSTKEY_UNKNOWN, exit 5, nothing changed', async () => {
    const empty = join(root, 'empty_known_hosts');
    await fs.writeFile(empty, '');
    const inv = await writeInventory();
    await fs.writeFile(inv, (await fs.readFile(inv, 'utf8')).replace(sshd.knownHostsPath, empty));
    const r = await cli(['-i', inv, '--json', 'join', 's1.rt.test'], demo());
    expect(r.code).toBe(5);
    expect(r.stdout).toContain('E_HOSTKEY_UNKNOWN');
    expect(await snapshot()).toEqual({});
  });
});

/** sha256 of every file under dir (the whole tree), to prove a plan changed nothing. */
async function treeHash(d: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const e of await fs.readdir(d, { recursive: true, withFileTypes: true })) {
    if (e.isFile())
      out[join(e.parentPath, e.name)] = createHash('sha256')
        .update(await fs.readFile(join(e.parentPath, e.name)))
        .digest('hex');
  }
  return out;
}

const DB_PW = 'Real-Pdb-Pw-5150';
let pg: PgInstance | undefined;
let pgDir: string;

describe('the real join flow over a real sshd (debian layout moved into a temp dir, a throwaway PostgreSQL as the primary database)', () => {
  beforeAll(async () => {
    pgDir = await fs.mkdtemp(join(tmpdir(), 'pe-cluster-pg-'));
    await fs.chmod(pgDir, 0o755);
    const local = new LocalHost({ name: 'primary.rt.test' });
    // also on the socket directory the debian layout names, so the flow's pe-db instance (layout port overridden) reaches it
    pg = await initCluster(local, {
      dir: `${pgDir}/pg`,
      port: await freePort(),
      settings: { unix_socket_directories: `'${pgDir}/pg/sock,/var/run/postgresql'` },
    });
    await startInstance(pg);
    await psql(pg, `CREATE ROLE puppetdb LOGIN PASSWORD '${DB_PW}'; CREATE DATABASE puppetdb OWNER puppetdb;\n`, {
      secrets: [DB_PW],
    });
    // listening on 127.0.0.1 already (the primary's address in the inventory): nothing pending a restart
    await grantAccess(pg, '127.0.0.1', [{ database: 'puppetdb', user: 'puppetdb' }], { listen: '127.0.0.1' });
  }, 120_000);
  afterAll(async () => {
    if (pg) await destroyCluster(pg);
    await fs.rm(pgDir, { recursive: true, force: true });
  });

  /** The debian layout with every path under T, the installed Debian files copied there, and an inventory. */
  async function site(password: string): Promise<{ T: string; inv: string }> {
    const T = join(root, 'site');
    const L = layouts.debian;
    const files: Record<string, { path: string }> = {};
    const dirs: Record<string, string> = {};
    for (const [k, f] of Object.entries(L.files)) {
      files[k] = { path: `${T}${f.path}` };
      await fs.mkdir(dirname(`${T}${f.path}`), { recursive: true });
      // the files the Debian packages installed on this machine (root tests need them)
      await fs.copyFile(f.path, `${T}${f.path}`).catch(() => undefined);
    }
    for (const [k, d] of Object.entries(L.dirs)) if (d) dirs[k] = `${T}${d}`;
    await fs.writeFile(
      `${T}${L.files.puppetdbDatabaseIni!.path}`,
      `[database]\nsubname = //127.0.0.1:${pg!.port}/puppetdb\nusername = puppetdb\npassword = ${password}\n`,
    );
    await fs.writeFile(`${T}${L.files.pgHbaConf!.path}`, 'local all postgres peer\n');
    const inv = join(root, 'inventory.json.yaml');
    await fs.writeFile(
      inv,
      JSON.stringify({
        cluster: 'rt',
        layout: 'debian',
        layout_overrides: { files, dirs, postgresql: { port: pg!.port } },
        primary_cname: 'ca.rt.test',
        general_cname: 'puppet.rt.test',
        masters: [
          { name: 'primary.rt.test', role: 'primary', address: '127.0.0.1' },
          { name: 's1.rt.test', role: 'secondary', address: '127.0.0.1' },
        ],
        ssh: { user: 'root', port: sshd.port, 'private-key': sshd.clientKeyPath, 'known-hosts': sshd.knownHostsPath },
        journals: `${root}/journal`,
        audit_log: `${root}/audit.log`,
      }),
    );
    return { T, inv };
  }

  it('plan join: every step per host, diffs of the installed Debian files, masked secrets, nothing changed', async () => {
    const DB_SECRET = DB_PW;
    const { T, inv } = await site(DB_PW);
    const before = await treeHash(T);
    const r = await cli(['-i', inv, 'plan', 'join', 's1.rt.test']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(await treeHash(T)).toEqual(before);
    expect(await fs.stat(join(root, 'journal')).catch(() => undefined)).toBeUndefined();
    const plan = r.stdout.slice(r.stdout.indexOf('Plan for join'));
    const s1 = plan.slice(plan.indexOf('\ns1.rt.test\n'));
    const ids = [...s1.matchAll(/^ {2}\[(?:to do|done )\] ([^:]+(?::[a-z0-9.]+)?):/gm)].map((m) => m[1]);
    expect(ids).toEqual([
      'preflight.ssh',
      'settings',
      'certificate',
      'database-settings',
      'puppetdb-ssl',
      'mco-config:s1.rt.test',
      'activemq-instance:s1.rt.test',
      'mco-restart:s1.rt.test',
      'restart',
      'validate-self',
      'validate-general',
      'crl-refresh',
    ]);
    expect(plan).toContain('+    allow-subject-alt-names: true');
    // the throwaway PostgreSQL admits 127.0.0.1 already (pg_hba_file_rules): pe-db's read-only check says done
    expect(plan).toMatch(
      /\[done \] primary\.db-access:s1\.rt\.test: .*\(pg_hba admits 127\.0\.0\.1 for puppetdb\/puppetdb\)/,
    );
    // every master's PuppetDB pools (2 x (25 + 25)) do not fit max_connections 100: maximum-pool-size is lowered
    expect(plan).toMatch(/\[to do\] primary\.connection-budget/);
    expect(plan).toMatch(/^ +\+maximum-pool-size = \d+$/m);
    expect(plan).toMatch(/^ +-puppetlabs\.services\.ca\.certificate-authority-service/m);
    expect(plan).toContain('+ca_server = ca.rt.test');
    expect(plan).toContain(`+subname = //ca.rt.test:${pg!.port}/puppetdb`);
    expect(plan).toContain('$ puppet agent --test --server puppet.rt.test');
    expect(plan).toMatch(/certificate: .*cannot be checked before the planned changes are made/);
    expect(plan).toMatch(/\[done \] preflight\.database: .*\(puppetdb connect as configured\)/);
    expect(plan).toMatch(/\[done \] preflight\.ssh: .*\(reachable, host key verified\)/);
    expect(r.stdout).not.toContain(DB_SECRET);
  });

  it('a wrong database password on the primary: typed error (E_DB_AUTH), exit 7, no change on any host, the password nowhere', async () => {
    const WRONG = 'Wrong-Pdb-Pw-0000';
    const { T, inv } = await site(WRONG);
    const before = await treeHash(T);
    const r = await cli(['-i', inv, '--json', 'join', 's1.rt.test']);
    expect(r.code).toBe(7);
    const result = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as {
      error: { code: string; host: string; step: string };
      steps: { id: string; status: string }[];
    };
    expect(result.error).toMatchObject({ code: 'E_DB_AUTH', host: 'primary.rt.test', step: 'preflight.database' });
    expect(result.steps.filter((x) => x.status === 'done')).toEqual([]);
    expect(await treeHash(T)).toEqual(before);
    const audit = await fs.readFile(join(root, 'audit.log'), 'utf8').catch(() => '');
    expect(audit).toBe('');
    for (const b of [
      r.stdout,
      r.stderr,
      ...(await Promise.all(
        (await fs.readdir(join(root, 'journal'))).map((j) => fs.readFile(join(root, 'journal', j), 'utf8')),
      )),
    ]) {
      expect(b).not.toContain(WRONG);
    }
  });
});
