import { promises as fs, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Host } from '@pe-stack/pe-host';
import { describe, expect, it } from 'vitest';
import { EXIT, main, type CliIo } from './index.js';

/**
 * The hostile corpus: each file attacks the loader one way (its first line
 * says how). Every one must be refused before anything is contacted: exit 2,
 * an E_* code, file:line:key in the message, and no host asked for (the host
 * factory and the DNS provider record every attempt).
 */

const DIR = fileURLToPath(new URL('./fixtures/hostile-inventories/', import.meta.url));

// file -> [line, key, what the first issue says]
const HOSTILE: Record<string, [number, string, RegExp]> = {
  'nsupdate-server-newline.yaml': [12, 'dns.server', /is not a DNS server: expected a host name or an IP address/],
  'nsupdate-zone-newline.yaml': [13, 'dns.zone', /is not a DNS zone name/],
  'nsupdate-server-two-words.yaml': [12, 'dns.server', /is not a DNS server/],
  'nsupdate-zone-ip.yaml': [13, 'dns.zone', /is not a DNS zone name/],
  'nsupdate-key-file-newline.yaml': [14, 'dns.key_file', /without control characters/],
  'dns-command-newline.yaml': [12, 'dns.command[1]', /without control characters/],
  'bolt-uri-user-option.yaml': [8, 'targets[0].uri', /the user "-oProxyCommand=touch" in the uri is not a user name/],
  'bolt-uri-user-shell.yaml': [8, 'targets[0].uri', /in the uri is not a user name/],
  'bolt-uri-password.yaml': [8, 'targets[0].uri', /contains a password .*not supported/],
  'bolt-uri-newline.yaml': [8, 'targets[0].uri', /is not a target uri/],
  'bolt-uri-bad-ipv6.yaml': [8, 'targets[0].uri', /not a host name or IP address/],
  'bolt-string-target-user.yaml': [12, 'groups[0].targets[0]', /in the uri is not a user name/],
  'bolt-plugin-uri.yaml': [8, 'targets[0].uri', /_plugin: "task"/],
  'bolt-plugin-ssh-user.yaml': [9, 'config.ssh.user', /_plugin: "puppetdb"/],
  'bolt-plugin-sudo-password.yaml': [
    11,
    'config.ssh.sudo-password',
    /_plugin: "vault".*only _plugin: env_var in secrets/,
  ],
  'bolt-plugin-role.yaml': [10, 'targets[0].vars.role', /_plugin: "task"/],
  'yaml-alias-bomb.yaml': [3, 'b[0]', /expands aliases more than 100 times/],
  'yaml-alias-cycle.yaml': [11, 'layout_overrides.files', /contains it \(a cycle\)/],
  'yaml-alias-undefined.yaml': [10, 'journals', /cannot be resolved/],
  'yaml-deep-nesting.yaml': [7, 'vars.deep', /nests deeper than 64 levels/],
  'yaml-duplicate-key.yaml': [10, 'primary_cname', /duplicate key/],
  'bolt-local-transport-cluster-target.yaml': [
    10,
    'groups[0].config.transport',
    /transport local is not supported for p.example.com/,
  ],
  'bolt-group-named-like-target.yaml': [14, 'groups[1].name', /group p has the name of a target/],
  'bolt-alias-two-targets.yaml': [17, 'groups[1].targets[0].alias', /alias ca refers to two targets/],
  'bolt-group-all.yaml': [8, 'groups[0].name', /group all is defined twice/],
  'bolt-two-uris.yaml': [17, 'groups[1].targets[0].uri', /defined with two uris/],
  'bolt-bad-alias.yaml': [9, 'targets[0].alias', /is not a Bolt alias/],
  'bolt-group-name-leading-hyphen.yaml': [8, 'groups[0].name', /Bolt group names/],
  'bolt-run-as-command-shell.yaml': [11, 'config.ssh.run-as-command', /expected a sudo command/],
  'ours-proxyjump-option.yaml': [11, 'ssh.proxyjump', /not a jump host/],
  'ours-user-option.yaml': [11, 'ssh.user', /expected a user name/],
  'ours-name-newline.yaml': [7, 'masters[0].name', /not a valid host name/],
  'ours-name-option.yaml': [7, 'masters[0].name', /not a valid host name/],
  'ours-name-homoglyph.yaml': [7, 'masters[0].name', /not a valid host name/],
  'ours-address-bad-ipv6.yaml': [9, 'masters[0].address', /not a valid host name/],
  'ours-env-name-injection.yaml': [13, 'ssh.sudo-password.env', /expected an environment variable name/],
  'ours-plugin-key-data.yaml': [12, 'ssh.private-key.key-data', /_plugin: "task"/],
  'ours-layout-command-newline.yaml': [12, 'layout_overrides.commands.caSign', /must be an argv array of strings/],
  'ours-layout-path-traversal.yaml': [13, 'layout_overrides.files.puppetConf.path', /not an absolute, normalised path/],
  'ours-layout-world-writable.yaml': [13, 'layout_overrides.files.puppetConf.mode', /must not be world-writable/],
  'ours-cluster-traversal.yaml': [2, 'cluster', /expected letters, digits/],
  'ours-journal-newline.yaml': [10, 'journals', /without control characters/],
  'ours-max-channels.yaml': [11, 'ssh.max-channels', /<=9/],
};

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  contacted: string[];
}

/** The CLI in process, with a host factory and a DNS provider that record any attempt to reach something. */
async function cli(args: string[]): Promise<Run> {
  const out = { stdout: '', stderr: '', contacted: [] as string[] };
  const io: CliIo = {
    stdout: { write: (s: string) => (out.stdout += s), isTTY: false, columns: 120 },
    stderr: { write: (s: string) => (out.stderr += s) },
    env: {},
    cluster: {
      hostFactory: (n): Host => {
        out.contacted.push(n.name);
        throw new Error(`the loader let ${n.name} be contacted`);
      },
      dns: () => {
        out.contacted.push('dns');
        throw new Error('the loader let the DNS provider be made');
      },
    },
  };
  const code = await main(args, io);
  return { code, ...out };
}

describe('hostile inventories', () => {
  it('the corpus has at least 30 files, each in the table and saying what it attacks', () => {
    const files = readdirSync(DIR).sort();
    expect(files.length).toBeGreaterThanOrEqual(30);
    expect(files).toEqual(Object.keys(HOSTILE).sort());
    for (const f of files) expect(readFileSync(`${DIR}${f}`, 'utf8')).toMatch(/^# attacks: \S/);
  });

  for (const [file, [line, key, msg]] of Object.entries(HOSTILE)) {
    it(`${file}: refused at line ${line}, key "${key}", exit 2, nothing contacted`, async () => {
      for (const command of [['plan', 'join'], ['join'], ['status']]) {
        const r = await cli(['-i', `${DIR}${file}`, '--json', ...command]);
        expect(r.code).toBe(EXIT.BAD_INPUT);
        expect(r.contacted).toEqual([]);
        const res = JSON.parse(r.stdout.trim()) as {
          exitCode: number;
          error: { code: string; message: string; issues: { line: number; key: string; message: string }[] };
        };
        expect(res.exitCode).toBe(2);
        expect(res.error.code).toMatch(/^E_[A-Z_]+$/);
        expect(res.error.code).toBe('E_INVENTORY');
        expect(res.error.issues[0]).toMatchObject({ line, key });
        expect(res.error.issues[0]!.message).toMatch(msg);
        expect(res.error.message).toContain(`${file}:${line}:`);
        if (key) expect(res.error.message).toContain(`${key}: `);
      }
      const plain = await cli(['-i', `${DIR}${file}`, 'plan', 'join']);
      expect(plain.code).toBe(EXIT.BAD_INPUT);
      expect(plain.stderr).toContain(`${file}:${line}:`);
      expect(plain.stderr).not.toMatch(/\n\s+at /); // no stack trace
      expect(plain.contacted).toEqual([]);
    });
  }

  it('never repeats a password given in a uri', async () => {
    const r = await cli(['-i', `${DIR}bolt-uri-password.yaml`, '--json', 'plan', 'join']);
    expect(r.stdout).not.toContain('Hunter2-In-Uri');
  });

  it('messages quote control characters instead of printing them', async () => {
    const r = await cli(['-i', `${DIR}dns-command-newline.yaml`, 'plan', 'join']);
    expect(r.stderr).not.toContain('\u001b');
  });

  it('an inventory file others can write is refused through the CLI: exit 2, nothing contacted', async () => {
    const dir = await fs.mkdtemp(join(tmpdir(), 'pe-hostile-'));
    const f = join(dir, 'inventory.yaml');
    await fs.writeFile(
      f,
      readFileSync(fileURLToPath(new URL('./fixtures/inventories/good/ours.yaml', import.meta.url))),
    );
    for (const mode of [0o664, 0o666]) {
      await fs.chmod(f, mode);
      const r = await cli(['-i', f, '--json', 'plan', 'join']);
      expect(r.code).toBe(EXIT.BAD_INPUT);
      expect(r.contacted).toEqual([]);
      expect(JSON.parse(r.stdout.trim())).toMatchObject({
        exitCode: 2,
        error: { code: 'E_INVENTORY', message: expect.stringMatching(/is writable by .*chmod go-w/) },
      });
    }
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('a layout command override is printed as a SECURITY warning before anything runs (also with --json)', async () => {
    const dir = await fs.mkdtemp(join(tmpdir(), 'pe-hostile-'));
    const f = join(dir, 'inventory.yaml');
    await fs.writeFile(
      f,
      `cluster: c1\nlayout: debian\nprimary_cname: ca.example.com\ngeneral_cname: puppet.example.com\nmasters:\n  - {name: p.example.com, role: primary}\nlayout_overrides:\n  commands:\n    caSign: [/usr/local/bin/sign, '{certname}']\n`,
      { mode: 0o600 },
    );
    for (const json of [[], ['--json']]) {
      const r = await cli(['-i', f, ...json, 'plan', 'join']);
      expect(r.stderr).toMatch(
        /warning: .*inventory\.yaml:9: layout_overrides\.commands\.caSign: SECURITY: .*"\/usr\/local\/bin\/sign".* as root on every master/,
      );
    }
    await fs.rm(dir, { recursive: true, force: true });
  });
});
