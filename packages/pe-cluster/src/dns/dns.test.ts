import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { layouts } from '@pe-stack/pe-config-files';
import { DryRunHost, LocalHost, Redactor, type Host } from '@pe-stack/pe-host';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { jailedHost } from '@pe-stack/testkit/jail';
import { parseInventory } from '../inventory.js';
import {
  assertResolved,
  CommandDns,
  dnsProvider,
  HostsFileDns,
  NsupdateDns,
  parseTsigKey,
  resolveOn,
  verifyResolution,
} from './index.js';

let root: string;
beforeEach(async () => {
  root = await fs.mkdtemp(join(tmpdir(), 'pe-dns-'));
});
afterEach(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

const jailed = (name: string, opts: { down?: boolean } = {}): Host => jailedHost(root, name, opts);

const HOSTS = `127.0.0.1\tlocalhost
# the lab
10.77.0.11\tprimary.lab.test primary master.lab.test   # keep this comment
10.77.0.12\tsecondary1.lab.test secondary1
`;

describe('hosts-file provider', () => {
  it('moves the name on every reachable node, keeps every other byte, skips (and names) an unreachable node; a rerun changes nothing', async () => {
    for (const n of ['a', 'b', 'c']) {
      await fs.mkdir(join(root, n, 'etc'), { recursive: true });
      await fs.writeFile(join(root, n, 'etc/hosts'), HOSTS);
    }
    const nodes = [
      { host: jailed('a'), sudo: false },
      { host: jailed('b'), sudo: false },
      { host: jailed('c', { down: true }), sudo: false },
    ];
    const dns = new HostsFileDns(() => nodes, layouts.debian, { reachTimeoutMs: 500 });
    const r = await dns.set('master.lab.test', '10.77.0.12');
    expect(r.changed).toBe(true);
    expect(r.skipped).toEqual([{ host: 'c', why: 'unreachable' }]);
    const want = HOSTS.replace('primary master.lab.test   #', 'primary   #').replace(
      'secondary1.lab.test secondary1\n',
      'secondary1.lab.test secondary1 master.lab.test\n',
    );
    expect(await fs.readFile(join(root, 'a/etc/hosts'), 'utf8')).toBe(want);
    expect(await fs.readFile(join(root, 'b/etc/hosts'), 'utf8')).toBe(want);
    expect(await fs.readFile(join(root, 'c/etc/hosts'), 'utf8')).toBe(HOSTS);
    const again = await dns.set('master.lab.test', '10.77.0.12');
    expect(again.changed).toBe(false);
    await expect(dns.set('master.lab.test', 'not-an-ip')).rejects.toThrow(/not an IP address/);
  });

  it('under a DryRunHost it records the write and changes nothing', async () => {
    await fs.mkdir(join(root, 'a', 'etc'), { recursive: true });
    await fs.writeFile(join(root, 'a/etc/hosts'), HOSTS);
    const dry = new DryRunHost(jailed('a'));
    await new HostsFileDns(() => [{ host: dry, sudo: false }], layouts.debian).set('master.lab.test', '10.77.0.13');
    expect(dry.mutations.map((m) => m.kind)).toEqual(['write']);
    expect(await fs.readFile(join(root, 'a/etc/hosts'), 'utf8')).toBe(HOSTS);
  });
});

describe('verification by resolving on every host', () => {
  it('getent on a real host: localhost resolves to loopback, a wrong expectation is reported per host', async () => {
    const h = new LocalHost({ name: 'here' });
    const addrs = await resolveOn(h, 'localhost');
    expect(addrs.length).toBeGreaterThan(0);
    const ok = await verifyResolution([h], 'localhost', addrs[0]!, { timeoutMs: 1000 });
    expect(ok[0]!.ok).toBe(addrs.length === 1);
    const bad = await verifyResolution([h], 'localhost', '192.0.2.99', { timeoutMs: 300, intervalMs: 100 });
    expect(bad[0]!.ok).toBe(false);
    expect(() => assertResolved(bad, 'localhost', '192.0.2.99')).toThrow(
      /does not resolve to 192\.0\.2\.99 everywhere \(here: /,
    );
    const none = await verifyResolution([h], 'no-such-name.invalid', '192.0.2.1', { timeoutMs: 100 });
    expect(none[0]).toMatchObject({ ok: false, addresses: [] });
  });
});

describe('command hook', () => {
  it('gets the name and the address as its last arguments and in its environment; a failure is an E_DNS error', async () => {
    const out = join(root, 'hook.out');
    const hook = join(root, 'hook.sh');
    await fs.writeFile(
      hook,
      `#!/bin/sh\nprintf '%s|' "$@" > ${out}\nprintf '%s %s' "$PE_CLUSTER_DNS_NAME" "$PE_CLUSTER_DNS_ADDRESS" >> ${out}\necho moved\n`,
      { mode: 0o755 },
    );
    const r = await new CommandDns(new LocalHost(), [hook, '--zone', 'lab.test']).set('master.lab.test', '10.77.0.12');
    expect(r).toMatchObject({ changed: true });
    expect(r.detail).toMatch(/moved$/);
    expect(await fs.readFile(out, 'utf8')).toBe(
      '--zone|lab.test|master.lab.test|10.77.0.12|master.lab.test 10.77.0.12',
    );
    const fail = join(root, 'fail.sh');
    await fs.writeFile(fail, '#!/bin/sh\necho "no such zone" >&2\nexit 3\n', { mode: 0o755 });
    await expect(new CommandDns(new LocalHost(), [fail]).set('master.lab.test', '10.77.0.12')).rejects.toMatchObject({
      code: 'E_DNS',
      message: expect.stringMatching(/exited 3 .*no such zone/),
    });
  });
});

describe('child processes get an allow-listed environment', () => {
  const SECRET = 'sudo-password-never-in-a-child';
  beforeEach(() => {
    process.env.PE_CLUSTER_SUDO_PASSWORD = SECRET;
    process.env.PE_CLUSTER_TEST_KEY_DATA = SECRET;
  });
  afterEach(() => {
    delete process.env.PE_CLUSTER_SUDO_PASSWORD;
    delete process.env.PE_CLUSTER_TEST_KEY_DATA;
  });
  it('the DNS hook sees PATH, HOME, its two variables and no secret of the CLI', async () => {
    const out = join(root, 'env.out');
    const hook = join(root, 'dump-env.sh');
    await fs.writeFile(
      hook,
      `#!/bin/sh
env > ${out}
`,
      { mode: 0o755 },
    );
    await new CommandDns(new LocalHost(), [hook]).set('master.lab.test', '10.77.0.12');
    const env = await fs.readFile(out, 'utf8');
    expect(env).not.toContain(SECRET);
    const names = env
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split('=')[0]);
    expect(names).toContain('PE_CLUSTER_DNS_NAME');
    expect(names).toContain('PATH');
    for (const n of names) expect(n).toMatch(/^(PATH|HOME|LANG|LANGUAGE|LC_\w+|TZ|PWD|SHLVL|_|PE_CLUSTER_DNS_\w+)$/);
  });
  it('nsupdate and dig start under env -i, the key only on stdin', async () => {
    const keyFile = join(root, 'k.key');
    await fs.writeFile(keyFile, 'key "k" { algorithm hmac-sha256; secret "c2VjcmV0"; };\n', { mode: 0o600 });
    const argvs: string[][] = [];
    const spy = Object.assign(Object.create(new LocalHost()) as Host, {
      exec: (argv: readonly string[]) => (
        argvs.push([...argv]),
        Promise.resolve({ code: 1, stdout: '', stderr: '', ms: 0 })
      ),
    });
    await new NsupdateDns(spy, { server: '127.0.0.1', port: 9, zone: 'lab.test', keyFile })
      .set('master.lab.test', '10.77.0.12')
      .catch(() => undefined);
    expect(argvs.map((a) => a.slice(0, 3))).toEqual([
      ['env', '-i', '--'],
      ['env', '-i', '--'],
    ]);
    expect(argvs.map((a) => a.find((x) => x === 'dig' || x === 'nsupdate'))).toEqual(['dig', 'nsupdate']);
    expect(argvs.flat().join(' ')).not.toContain(SECRET);
  });
  it('a hook whose program name holds "=" is refused (env would take it for a variable)', async () => {
    await expect(new CommandDns(new LocalHost(), ['a=b']).set('m.lab.test', '10.0.0.1')).rejects.toMatchObject({
      code: 'E_DNS',
    });
  });
});

describe('nsupdate input is checked at the edge', () => {
  const base = { server: '10.0.0.2', zone: 'lab.test', keyFile: '/nonexistent' };
  it.each([
    ['server', { server: '10.0.0.2\nupdate add evil.lab.test 30 A 6.6.6.6' }],
    ['server', { server: 'ns.lab.test 53\nsend' }],
    ['server', { server: '-p1' }],
    ['server', { server: '::::' }],
    ['zone', { zone: 'lab.test\nupdate delete lab.test' }],
    ['zone', { zone: 'lab test' }],
    ['zone', { zone: '' }],
    ['port', { port: 0 }],
    ['ttl', { ttl: 1.5 }],
  ])('refuses a bad %s before anything runs: %j', (what, bad) => {
    expect(() => new NsupdateDns(new LocalHost(), { ...base, ...bad })).toThrow(
      expect.objectContaining({
        code: 'E_DNS',
        message: expect.stringContaining(`nsupdate ${what}`) as string,
      }) as Error,
    );
  });
  it('accepts host names, IPv4, IPv6 and a final dot', () => {
    for (const server of ['ns1.lab.test', '10.0.0.2', 'fd00::2', 'ns.lab.test.'])
      expect(() => new NsupdateDns(new LocalHost(), { ...base, server, zone: '_dyn.lab.test.' })).not.toThrow();
  });
  it('refuses a record name with a newline before reading the key or running anything', async () => {
    let ran = 0;
    const local = new LocalHost();
    const spy = Object.assign(Object.create(local) as Host, { exec: () => (ran++, Promise.reject(new Error('ran'))) });
    await expect(
      new NsupdateDns(spy, base).set('m.lab.test\nupdate add x.lab.test 30 A 6.6.6.6', '10.0.0.1'),
    ).rejects.toMatchObject({ code: 'E_DNS', message: expect.stringContaining('record name') as string });
    expect(ran).toBe(0);
  });
});

describe('nsupdate provider (no server)', () => {
  const KEY =
    'key "pe-cluster" {\n\talgorithm hmac-sha256;\n\tsecret "c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seS0xMjM0NTY=";\n};\n';
  it('parses a BIND key file and refuses other text', () => {
    expect(parseTsigKey(KEY, 'k')).toEqual({
      name: 'pe-cluster',
      algorithm: 'hmac-sha256',
      secret: 'c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seS0xMjM0NTY=',
    });
    expect(() => parseTsigKey('secret "x";', 'k')).toThrow(/not a TSIG key file/);
  });
  it('the key never reaches argv or an error: the run fails against a closed port and the message is masked', async () => {
    const keyFile = join(root, 'k.key');
    await fs.writeFile(keyFile, KEY, { mode: 0o600 });
    const calls: { argv: readonly string[]; stdin?: unknown }[] = [];
    const redactor = new Redactor();
    const local = new LocalHost({ redactor });
    const spy = new Proxy(local, {
      get(t, p, r) {
        const v = Reflect.get(t, p, r) as unknown;
        if (p === 'exec')
          return (argv: readonly string[], o: { stdin?: unknown }) => (
            calls.push({ argv, stdin: o?.stdin }),
            (v as (...a: unknown[]) => unknown).call(t, argv, o)
          );
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
      },
    });
    // port 9 (discard) on loopback: nothing answers DNS there
    const err = await new NsupdateDns(spy, { server: '127.0.0.1', port: 9, zone: 'lab.test', keyFile })
      .set('master.lab.test', '10.77.0.12')
      .catch((e: unknown) => e as Error);
    expect(err).toBeInstanceOf(Error);
    expect(JSON.stringify(calls.map((c) => c.argv))).not.toContain('c2VjcmV0');
    expect((err as Error).message).not.toContain('c2VjcmV0');
    expect(String(calls.find((c) => c.argv.includes('nsupdate'))?.stdin)).toContain(
      'key hmac-sha256:pe-cluster c2VjcmV0',
    );
  });
});

describe('dnsProvider from the inventory', () => {
  const inv = (dns: string) =>
    parseInventory(
      `cluster: t\nlayout: debian\nprimary_cname: ca.test\ngeneral_cname: puppet.test\nmasters:\n  - {name: p.test, role: primary}\n${dns}`,
      join('/srv/inv', 'inventory.yaml'),
      { env: {}, home: '/root' },
    );
  it('picks the provider; relative paths are relative to the inventory; bad settings are inventory errors', () => {
    expect(dnsProvider(inv(''), () => new LocalHost()).kind).toBe('manual');
    expect(dnsProvider(inv('dns: {provider: hosts-file}\n'), () => new LocalHost()).kind).toBe('hosts-file');
    expect(
      dnsProvider(
        inv('dns: {provider: nsupdate, server: 10.0.0.2, zone: lab.test, key_file: keys/k.key}\n'),
        () => new LocalHost(),
      ).kind,
    ).toBe('nsupdate');
    expect(
      dnsProvider(inv('dns: {provider: command, command: [./move-cname, --fast]}\n'), () => new LocalHost()).kind,
    ).toBe('command');
    expect(() => inv('dns: {provider: nsupdate, server: 10.0.0.2}\n')).toThrow(/dns/);
    expect(() => inv('dns: {provider: route53}\n')).toThrow(/dns/);
  });
});
