import { execFileSync } from 'node:child_process';
import { promises as fs, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { describeInventory, InventoryError, loadInventory, parseInventory, parseUri, type Inventory } from './index.js';
import { parseTargetUri } from './inventory.js';

const FIX = fileURLToPath(new URL('./fixtures/inventories/', import.meta.url));
const ENV = { PE_SUDO_PASSWORD: 's3cret-sudo-pw' };
const HOME = '/home/operator';

async function fail(file: string, env: Record<string, string> = {}): Promise<InventoryError> {
  try {
    await loadInventory(`${FIX}bad/${file}`, { env, home: HOME });
  } catch (e) {
    expect(e).toBeInstanceOf(InventoryError);
    return e as InventoryError;
  }
  throw new Error(`${file} was accepted`);
}

// file -> [line, key, what the message must say]; one entry per file of the corpus
const BAD: Record<string, [number, string, RegExp]> = {
  'syntax.yaml': [5, '', /YAML syntax error/],
  'duplicate-key.yaml': [8, 'layout', /duplicate key/],
  'not-a-mapping.yaml': [1, '', /expected a mapping/],
  'unknown-layout.yaml': [2, 'layout', /expected pe3 or debian/],
  'missing-primary-cname.yaml': [1, 'primary_cname', /is missing; expected a host name/],
  'bad-hostname.yaml': [8, 'masters[1].name', /not a valid host name/],
  'bad-role.yaml': [9, 'masters[1].role', /expected primary or secondary/],
  'two-primaries.yaml': [9, 'masters[1].role', /second primary .*expected exactly one/],
  'no-primary.yaml': [5, 'masters', /no master has role primary/],
  'duplicate-host.yaml': [10, 'masters[2]', /listed twice \(also at line 8\)/],
  'port-string.yaml': [9, 'masters[0].ssh.port', /expected a port number/],
  'port-range.yaml': [6, 'ssh.port', /expected a port number/],
  'unknown-key.yaml': [8, 'masters[0].adress', /unknown key/],
  'host-key-check-off.yaml': [6, 'ssh.host-key-check', /refuses it; expected pinned keys .*trust-on-first-use/],
  'run-as-other.yaml': [7, 'ssh.run-as', /expected root/],
  'non-root-without-run-as.yaml': [6, 'ssh.user', /expected run-as: root/],
  'sudo-password-env-missing.yaml': [
    8,
    'ssh.sudo-password',
    /environment variable PE_TEST_UNSET_VARIABLE, which is not set/,
  ],
  'bad-fingerprint.yaml': [9, 'masters[0].ssh.host-keys[0]', /SHA256:/],
  'bad-proxyjump.yaml': [6, 'ssh.proxyjump', /not a jump host; expected \[user@\]host\[:port\]/],
  'same-cnames.yaml': [4, 'general_cname', /equals primary_cname/],
  'layout-override-typo.yaml': [5, 'layout_overrides.services.puppetsrever', /is not a layout field/],
  'layout-override-relative-path.yaml': [
    6,
    'layout_overrides.files.puppetConf.path',
    /not an absolute, normalised path/,
  ],
  'ssh-password.yaml': [6, 'ssh.password', /password authentication is not supported/],
  'mixed-shapes.yaml': [1, '', /mixes our keys .* with Bolt keys/],
  'bolt-winrm.yaml': [7, 'targets[0].uri', /transport winrm is not supported/],
  'bolt-missing-vars.yaml': [1, 'vars', /the key cluster is missing; expected it under vars/],
  'bolt-bad-group-name.yaml': [7, 'groups[0].name', /Bolt group names/],
  'bolt-host-key-check.yaml': [10, 'groups[0].config.ssh.host-key-check', /refuses it/],
  'bolt-conflicting-vars.yaml': [
    9,
    'groups[0].vars.layout',
    /already set to a different value at vars.layout \(line 3\)/,
  ],
  'bolt-bad-uri.yaml': [7, 'targets[0].uri', /not a target uri/],
  'bolt-version-1.yaml': [1, 'version', /expected version 2/],
};

describe('malformed inventories', () => {
  it('the table covers every file of the corpus', () => {
    expect(readdirSync(`${FIX}bad`).sort()).toEqual(Object.keys(BAD).sort());
  });

  for (const [file, [line, key, msg]] of Object.entries(BAD)) {
    it(`${file}: typed error with line ${line} and key "${key}"`, async () => {
      const e = await fail(file);
      expect(e.code).toBe('E_INVENTORY');
      expect(e.first.file).toBe(`${FIX}bad/${file}`);
      expect(e.first.line).toBe(line);
      expect(e.first.key).toBe(key);
      expect(e.first.message).toMatch(msg);
      // the rendered message names file, line and key
      expect(e.message).toContain(`${file}:${line}:`);
      if (key) expect(e.message).toContain(`${key}: `);
    });
  }

  it('reports only the root cause, not consequences (a refused ssh setting does not also say "no primary")', async () => {
    const e = await fail('host-key-check-off.yaml');
    expect(e.issues).toHaveLength(1);
  });

  it('never echoes a secret given in the file', async () => {
    const e = await fail('ssh-password.yaml');
    expect(e.message).not.toContain('hunter2-secret');
    expect(JSON.stringify(e.toJSON())).not.toContain('hunter2-secret');
  });

  it('a missing file is an InventoryError too', async () => {
    await expect(loadInventory(`${FIX}does-not-exist.yaml`)).rejects.toMatchObject({
      code: 'E_INVENTORY',
      message: expect.stringMatching(/ENOENT/),
    });
  });
});

function model(inv: Inventory) {
  const { file: _f, format: _fo, warnings: _w, redactor: _r, ...rest } = inv;
  return rest;
}

describe('good inventories', () => {
  it('our format and the Bolt v2 file give the same model', async () => {
    const ours = await loadInventory(`${FIX}good/ours.yaml`, { env: ENV, home: HOME });
    const bolt = await loadInventory(`${FIX}good/bolt.yaml`, { env: ENV, home: HOME });
    expect(ours.format).toBe('pe-cluster');
    expect(bolt.format).toBe('bolt');
    expect(model(bolt)).toEqual(model(ours));
    // the unrelated Bolt target is reported, not silently dropped
    expect(bolt.warnings.map((w) => w.message)).toEqual([expect.stringContaining('web1.lab.test has no vars.role')]);
  });

  it('maps settings to SshHostConfig: address, port from the uri, user, key, known_hosts, proxyjump, sudo, connect timeout', async () => {
    const inv = await loadInventory(`${FIX}good/bolt.yaml`, { env: ENV, home: HOME });
    expect(inv.masters.map((m) => [m.name, m.role])).toEqual([
      ['primary.lab.test', 'primary'],
      ['secondary1.lab.test', 'secondary'],
      ['secondary2.lab.test', 'secondary'],
    ]);
    const s2 = inv.masters[2]!;
    expect(s2.ssh).toMatchObject({
      name: 'secondary2.lab.test',
      address: '10.77.0.12',
      port: 2222,
      user: 'admin',
      privateKey: `${FIX}good/keys/id_ed25519`,
      knownHosts: `${FIX}good/keys/known_hosts`,
      sudoPassword: 's3cret-sudo-pw',
      connectTimeoutMs: 10_000,
      jump: { name: 'bastion.lab.test', user: 'jump', port: 2200 },
    });
    expect(s2.sudo).toBe(true);
    expect(inv.agents.map((a) => a.name)).toEqual(['agent1.lab.test']);
    expect(inv.redactor.redact('pw=s3cret-sudo-pw')).toBe('pw=********');
  });

  it('passes per-site layout overrides to resolveLayout', async () => {
    const inv = await loadInventory(`${FIX}good/ours.yaml`, { env: ENV, home: HOME });
    expect(inv.layout.files.sitePp?.path).toBe('/srv/puppet/site.pp');
    expect(inv.layout.files.puppetConf?.path).toBe('/etc/puppet/puppet.conf');
    expect(inv.journalDir).toBe(`${FIX}good/state/journal`);
  });

  it('describeInventory never contains secrets', async () => {
    const inv = await loadInventory(`${FIX}good/ours.yaml`, { env: ENV, home: HOME });
    expect(JSON.stringify(describeInventory(inv))).not.toContain('s3cret-sudo-pw');
  });
});

const MIN = `cluster: c1
layout: pe3
primary_cname: ca.example.com
general_cname: puppet.example.com
masters:
  - name: p.example.com
    role: primary
`;

describe('rules', () => {
  it('defaults: root login, ~/.ssh/known_hosts, state dirs under XDG_STATE_HOME', () => {
    const inv = parseInventory(MIN, '/etc/pe/inv.yaml', { env: { XDG_STATE_HOME: '/var/state' }, home: HOME });
    expect(inv.primary.ssh).toEqual({ name: 'p.example.com', user: 'root', knownHosts: `${HOME}/.ssh/known_hosts` });
    expect(inv.primary.sudo).toBe(false);
    expect(inv.journalDir).toBe('/var/state/pe-cluster/c1/journal');
    expect(inv.layout.flavour).toBe('pe3');
    expect(inv.dnsAltNames).toEqual([]);
  });

  it('host-key-check: false is accepted only with the explicit trust-on-first-use opt-in', () => {
    const txt = `${MIN}ssh:\n  host-key-check: false\n  trust-on-first-use: true\n`;
    const inv = parseInventory(txt, '/x/inv.yaml', { env: {}, home: HOME });
    expect(inv.primary.ssh.trustOnFirstUse).toBe(true);
  });

  it('a plain-text sudo password is accepted as a secret: registered, masked, warned about', () => {
    const txt = `${MIN}ssh:\n  user: ops\n  run-as: root\n  sudo-password: plain-text-pw\n`;
    const inv = parseInventory(txt, '/x/inv.yaml', { env: {}, home: HOME });
    expect(inv.primary.ssh.sudoPassword).toBe('plain-text-pw');
    expect(inv.redactor.has('plain-text-pw')).toBe(true);
    expect(inv.warnings[0]).toMatchObject({
      key: 'ssh.sudo-password',
      line: 11,
      message: expect.stringContaining('plain text'),
    });
    expect(JSON.stringify(inv.warnings)).not.toContain('plain-text-pw');
  });

  it('Bolt env_var plugin with optional/default', () => {
    const txt = `vars: {cluster: c, layout: debian, primary_cname: ca.example.com, general_cname: p.example.com}
targets:
  - uri: ssh://ops@m1.example.com:2200
    config:
      ssh:
        run-as: root
        sudo-password: {_plugin: env_var, var: NOPE, optional: true}
    vars: {role: primary}
`;
    const inv = parseInventory(txt, '/x/inv.yaml', { env: {}, home: HOME });
    expect(inv.primary.ssh).toMatchObject({ name: 'm1.example.com', user: 'ops', port: 2200 });
    expect(inv.primary.ssh.sudoPassword).toBeUndefined();
  });

  it('Bolt precedence: target config over inner group over outer group over top-level config; string refs merge groups', () => {
    const txt = `config: {ssh: {user: root, port: 1}}
vars: {cluster: c, layout: debian, primary_cname: ca.example.com, general_cname: p.example.com}
groups:
  - name: outer
    config: {ssh: {port: 2, connect-timeout: 3}}
    groups:
      - name: inner
        config: {ssh: {port: 4}}
        targets:
          - {uri: 10.0.0.1, name: m1.example.com, vars: {role: primary}, config: {ssh: {max-channels: 5}}}
  - name: extra
    config: {ssh: {port: 9, connect-timeout: 7}}
    targets: [m1.example.com]
`;
    const inv = parseInventory(txt, '/x/inv.yaml', { env: {}, home: HOME });
    expect(inv.primary.ssh).toMatchObject({
      name: 'm1.example.com',
      address: '10.0.0.1',
      port: 4,
      connectTimeoutMs: 3000,
      maxChannels: 5,
    });
  });
});

describe('the lab inventory shape (tools/lab)', () => {
  it('vars.address gives the address to connect to; extra vars are ignored', () => {
    const txt = `config:
  transport: ssh
  ssh: {user: root, private-key: /k/id, host-key-check: true, known-hosts: /k/known_hosts}
vars: {lab_profile: debian, cluster: lab, layout: debian, primary_cname: master.lab.test, general_cname: puppet.lab.test}
groups:
  - name: masters
    targets:
      - name: primary.lab.test
        uri: primary.lab.test
        alias: [primary]
        vars: {role: primary, address: 10.77.0.11, host_key: ssh-ed25519 AAAA}
  - name: agents
    targets: []
`;
    const inv = parseInventory(txt, '/x/inv.yaml', { env: {}, home: HOME });
    expect(inv.primary.ssh).toEqual({
      name: 'primary.lab.test',
      address: '10.77.0.11',
      user: 'root',
      privateKey: '/k/id',
      knownHosts: '/k/known_hosts',
    });
  });
});

describe('parseUri', () => {
  it.each([
    ['host.example.com', { host: 'host.example.com' }],
    ['ssh://u@h.example.com:2222', { transport: 'ssh', user: 'u', host: 'h.example.com', port: 2222 }],
    ['10.0.0.1:22', { host: '10.0.0.1', port: 22 }],
    ['[::1]:2200', { host: '::1', port: 2200 }],
  ])('%s', (uri, want) => expect(parseUri(uri)).toEqual(want));
  it.each(['h:0', 'h:65536', 'a b', 'u@', '-rf.example.com', 'ssh://'])('refuses %s', (uri) =>
    expect(parseUri(uri)).toBeUndefined(),
  );
});

describe('DNS hook fields', () => {
  const nsupdate = (server: string, zone: string) =>
    `${MIN}dns: {provider: nsupdate, server: ${JSON.stringify(server)}, zone: ${JSON.stringify(zone)}, key_file: /k/tsig.key}\n`;
  it.each([
    ['ns1.example.com', 'example.com'],
    ['192.0.2.53', 'example.com.'],
    ['2001:db8::53', 'lab.test'],
  ])('accepts server %s, zone %s', (server, zone) => {
    const inv = parseInventory(nsupdate(server, zone), '/x/inv.yaml', { env: {}, home: HOME });
    expect(inv.dns).toMatchObject({ provider: 'nsupdate', server, zone });
  });
  it.each([
    ['ns1.example.com\nupdate add x 1 A 1.2.3.4', 'example.com', 'dns.server'],
    ['[2001:db8::53]', 'example.com', 'dns.server'],
    [':::', 'example.com', 'dns.server'],
    ['ns1.example.com', 'example.com\nsend', 'dns.zone'],
    ['ns1.example.com', 'bad zone', 'dns.zone'],
  ])('refuses server %j, zone %j', (server, zone, key) => {
    try {
      parseInventory(nsupdate(server, zone), '/x/inv.yaml', { env: {}, home: HOME });
    } catch (e) {
      expect((e as InventoryError).first).toMatchObject({ key, line: 8 });
      return;
    }
    throw new Error('accepted');
  });
});

describe('layout command overrides', () => {
  it('each overridden command is a loud warning naming the argv and root on every master', () => {
    const txt = `${MIN}layout_overrides:\n  commands:\n    caSign: [/opt/site/sign, '{certname}']\n`;
    const inv = parseInventory(txt, '/x/inv.yaml', { env: {}, home: HOME });
    expect(inv.layout.commands.caSign).toEqual(['/opt/site/sign', '{certname}']);
    expect(inv.warnings).toEqual([
      expect.objectContaining({
        key: 'layout_overrides.commands.caSign',
        line: 10,
        message: expect.stringMatching(/^SECURITY: .*"\/opt\/site\/sign" "\{certname\}".* as root on every master/),
      }),
    ]);
  });
});

describe('the inventory file itself', () => {
  const write = async (mode: number, text = MIN) => {
    const dir = await fs.mkdtemp(join(tmpdir(), 'pe-inv-'));
    const f = join(dir, 'inventory.yaml');
    await fs.writeFile(f, text);
    await fs.chmod(f, mode);
    return f;
  };

  it.each([
    [0o664, /writable by its group \(mode 0664\)/],
    [0o646, /writable by every user \(mode 0646\)/],
    [0o666, /writable by every user/],
  ])('mode %o is refused (it decides what runs as root)', async (mode, msg) => {
    const f = await write(mode);
    await expect(loadInventory(f, { env: {}, home: HOME })).rejects.toMatchObject({
      code: 'E_INVENTORY',
      issues: [expect.objectContaining({ file: f, key: '', message: expect.stringMatching(msg) })],
    });
  });

  it.each([0o644, 0o600, 0o400])('mode %o is accepted', async (mode) => {
    const f = await write(mode);
    expect((await loadInventory(f, { env: {}, home: HOME })).cluster).toBe('c1');
  });

  it('a FIFO in place of the file is refused at once (no hang)', async () => {
    const dir = await fs.mkdtemp(join(tmpdir(), 'pe-inv-'));
    const f = join(dir, 'inventory.yaml');
    execFileSync('mkfifo', ['-m', '600', f]);
    await expect(loadInventory(f)).rejects.toMatchObject({
      code: 'E_INVENTORY',
      message: expect.stringMatching(/not a regular file/),
    });
  });

  it('a file over 1 MiB is refused before it is parsed', async () => {
    const f = await write(0o600, `${MIN}# ${'x'.repeat(1024 * 1024)}\n`);
    await expect(loadInventory(f)).rejects.toMatchObject({ message: expect.stringMatching(/at most 1048576 bytes/) });
  });
});

describe('parseTargetUri', () => {
  it.each([
    ['ssh://a:b@h.example.com', /contains a password/],
    ['ssh://-oProxyCommand=x@h.example.com', /the user "-oProxyCommand=x" in the uri is not a user name/],
    ['[::1', /is not a target uri/],
    ['ssh://[::::]', /not a host name or IP address/],
    ['h.example.com:70000', /port 70000 is out of range/],
  ])('%s', (uri, msg) => expect(parseTargetUri(uri)).toEqual({ problem: expect.stringMatching(msg) }));
  it('never repeats the password', () =>
    expect(JSON.stringify(parseTargetUri('ssh://a:pw-123@h.example.com'))).not.toContain('pw-123'));
});
