import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HostUnreachableError, LocalHost, type Host } from '@pe-stack/pe-host';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EXIT, main, NotAvailableError, type CliIo, type Cluster, type Flow, type Step } from './index.js';

const SECRET = 'Sudo-Pw-For-Tests-42';
let root: string;
let inventory: string;

beforeEach(async () => {
  root = await fs.mkdtemp(join(tmpdir(), 'pe-cli-'));
  inventory = join(root, 'inventory.yaml');
  await fs.writeFile(
    inventory,
    `cluster: t
layout: debian
primary_cname: ca.test
general_cname: puppet.test
masters:
  - {name: primary.test, role: primary, address: 127.0.0.1}
  - {name: s1.test, role: secondary, address: 127.0.0.1}
  - {name: s2.test, role: secondary, address: 127.0.0.1}
ssh:
  user: ops
  run-as: root
  sudo-password: {env: PE_TEST_SUDO}
journals: state/journal
audit_log: state/audit.log
`,
  );
});
afterEach(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

const file = (host: string, name: string) => join(root, 'hosts', host, name);

/** A small join-shaped flow on LocalHost temp dirs: one file per host, one command carrying the secret. */
function demoFlow(
  extra: Partial<Record<'fail' | 'verify' | 'unreachable' | 'unavailable' | 'slow', boolean>> = {},
  ac?: AbortController,
) {
  return (_c: Cluster, hosts: readonly string[]): Flow => {
    const targets = hosts.length ? [...hosts] : ['s1.test', 's2.test'];
    const conf = (h: string): Step => ({
      id: 'conf',
      host: h,
      title: 'ca_server points at the primary',
      check: async (ctx) => {
        const p = file(h, 'puppet.conf');
        const t = (await ctx.host.exists(p)) ? (await ctx.host.readFile(p)).toString() : '';
        return t.includes('ca_server = ca.test') ? { done: true, why: 'set' } : { done: false, why: 'not set' };
      },
      apply: async (ctx) => {
        const p = file(h, 'puppet.conf');
        const t = (await ctx.host.exists(p)) ? (await ctx.host.readFile(p)).toString() : '[main]\n';
        await ctx.host.writeFile(p, `${t}ca_server = ca.test\n`);
        if (extra.slow) ac?.abort();
      },
    });
    const cmd = (h: string): Step => ({
      id: 'command',
      host: h,
      title: 'a command with a secret',
      check: async (ctx) =>
        (await ctx.host.exists(file(h, 'marker'))) ? { done: true, why: 'marker' } : { done: false, why: 'no marker' },
      apply: async (ctx) => {
        if (extra.unreachable) throw new HostUnreachableError(h, 'test');
        if (extra.unavailable) throw new NotAvailableError('the demo operation', ['pe-demo: operation X']);
        if (extra.verify) return;
        await ctx.host.exec([
          'sh',
          '-c',
          `test "$1" != x && touch "$2"${extra.fail ? ' && exit 9' : ''}`,
          'sh',
          SECRET,
          file(h, 'marker'),
        ]);
      },
    });
    return { name: 'join', items: [{ group: 'secondaries', lanes: targets.map((h) => [conf(h), cmd(h)]) }] };
  };
}

interface Captured {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(
  args: string[],
  opts: { flow?: ReturnType<typeof demoFlow>; tty?: boolean; signal?: AbortSignal } = {},
): Promise<Captured> {
  let stdout = '';
  let stderr = '';
  for (const h of ['primary.test', 's1.test', 's2.test']) await fs.mkdir(join(root, 'hosts', h), { recursive: true });
  const io: CliIo = {
    stdout: { write: (s: string) => (stdout += s), isTTY: opts.tty ?? false, columns: 120 },
    stderr: { write: (s: string) => (stderr += s) },
    env: { PE_TEST_SUDO: SECRET },
    cluster: {
      hostFactory: (n, redactor): Host => new LocalHost({ name: n.name, redactor }),
      ...(opts.flow ? { flows: { join: opts.flow } } : {}),
    },
    ...(opts.signal ? { signal: opts.signal } : {}),
  };
  const code = await main(['-i', inventory, ...args], io);
  return { code, stdout, stderr };
}

describe('pe-cluster CLI (in process)', () => {
  it('--help on the program and on every command, exit 0, exit codes documented', async () => {
    const top = await cli(['--help']);
    expect(top.code).toBe(0);
    expect(top.stdout).toMatch(/Exit codes:[\s\S]*130 +interrupted/);
    for (const c of ['status', 'join', 'plan']) {
      const r = await cli([c, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`Usage: pe-cluster ${c}`);
    }
  });

  it('usage errors exit 2', async () => {
    expect((await cli(['bogus'])).code).toBe(EXIT.BAD_INPUT);
    expect((await cli(['--concurrency', '0', 'status'])).code).toBe(EXIT.BAD_INPUT);
    const j = await cli(['--json', 'plan']);
    expect(j.code).toBe(EXIT.BAD_INPUT);
    expect(JSON.parse(j.stdout.trim())).toMatchObject({ type: 'error', exitCode: 2, error: { code: 'E_USAGE' } });
  });

  it('a bad inventory exits 2 and names file, line and key (--json: the issues)', async () => {
    await fs.writeFile(
      inventory,
      'cluster: t\nlayout: debian\nprimary_cname: ca.test\ngeneral_cname: puppet.test\nmasters:\n  - {name: p.test, role: boss}\n',
    );
    const r = await cli(['status']);
    expect(r.code).toBe(EXIT.BAD_INPUT);
    expect(r.stderr).toContain(`${inventory}:6:`);
    expect(r.stderr).toContain('masters[0].role: expected primary or secondary');
    const j = await cli(['--json', 'join', 's1.test']);
    expect(j.code).toBe(2);
    const o = JSON.parse(j.stdout.trim()) as { error: { code: string; issues: { line: number; key: string }[] } };
    expect(o.error.code).toBe('E_INVENTORY');
    expect(o.error.issues[0]).toMatchObject({ line: 6, key: 'masters[0].role' });
  });

  it('an unknown host, the primary or an unknown flow exit 2 and change nothing', async () => {
    for (const args of [
      ['join', 'nothere.test'],
      ['join', 'primary.test'],
      ['plan', 'nope'],
    ]) {
      const r = await cli(args, { flow: undefined });
      expect(r.code, args.join(' ')).toBe(EXIT.BAD_INPUT);
    }
    expect(await fs.readdir(join(root, 'hosts', 's1.test'))).toEqual([]);
    expect(await fs.stat(join(root, 'state')).catch(() => undefined)).toBeUndefined();
  });

  it('join without hosts and without secondaries in the inventory exits 2', async () => {
    await fs.writeFile(
      inventory,
      'cluster: t\nlayout: debian\nprimary_cname: ca.test\ngeneral_cname: puppet.test\nmasters:\n  - {name: primary.test, role: primary}\n',
    );
    const r = await cli(['join']);
    expect(r.code).toBe(EXIT.BAD_INPUT);
    expect(r.stderr).toContain('lists no secondary');
  });

  it('join: plain progress lines, journal and audit log, exit 0; a rerun does nothing', async () => {
    const r = await cli(['join', 's1.test', 's2.test'], { flow: demoFlow() });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/\[s1\.test\] conf: ok, 1 change/);
    expect(r.stdout).toMatch(/join ok: 4 done/);
    expect(await fs.readdir(join(root, 'state', 'journal'))).toHaveLength(1);
    const audit = await fs.readFile(join(root, 'state', 'audit.log'), 'utf8');
    expect(audit.trim().split('\n')).toHaveLength(4);
    const again = await cli(['join', 's1.test', 's2.test'], { flow: demoFlow() });
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/join ok: 0 done, 4 already done/);
    for (const blob of [r.stdout, r.stderr, audit, again.stdout]) expect(blob).not.toContain(SECRET);
  });

  it('--json: NDJSON events then one result object with the exit code', async () => {
    const r = await cli(['--json', 'join'], { flow: demoFlow() });
    expect(r.code).toBe(0);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; exitCode?: number; status?: string });
    expect(lines[0]!.type).toBe('flow-start');
    expect(lines.at(-2)!.type).toBe('flow-end');
    expect(lines.at(-1)).toMatchObject({ type: 'result', status: 'ok', exitCode: 0, flow: 'join' });
    expect(new Set(lines.map((l) => l.type))).toEqual(
      new Set(['flow-start', 'step-start', 'step-check', 'step-done', 'flow-end', 'result']),
    );
    expect(r.stdout).not.toContain(SECRET);
  });

  it('--dry-run and plan: the plan with diffs and masked commands; nothing changes, no journal', async () => {
    await fs.mkdir(join(root, 'hosts', 's1.test'), { recursive: true });
    await fs.writeFile(file('s1.test', 'puppet.conf'), '[main]\nserver = old.test\n');
    for (const args of [
      ['--dry-run', 'join', 's1.test'],
      ['plan', 'join', 's1.test'],
    ]) {
      const r = await cli(args, { flow: demoFlow() });
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.stdout).toContain('Plan for join (2 of 2 steps to do; nothing was changed)');
      expect(r.stdout).toContain('+ca_server = ca.test');
      expect(r.stdout).toMatch(/\$ sh -c .* sh \*{8} /);
      expect(r.stdout).not.toContain(SECRET);
    }
    expect(await fs.readFile(file('s1.test', 'puppet.conf'), 'utf8')).toBe('[main]\nserver = old.test\n');
    expect(await fs.stat(join(root, 'state')).catch(() => undefined)).toBeUndefined();
  });

  it.each([
    ['fail', EXIT.COMMAND_FAILED, 'E_COMMAND_FAILED'],
    ['verify', EXIT.VERIFY_FAILED, 'E_VERIFY'],
    ['unreachable', EXIT.CONNECTION, 'E_UNREACHABLE'],
    ['unavailable', EXIT.NOT_AVAILABLE, 'E_NOT_AVAILABLE'],
  ] as const)('a step that fails with %s exits %i', async (kind, code, errCode) => {
    const r = await cli(['--json', 'join', 's1.test'], { flow: demoFlow({ [kind]: true }) });
    expect(r.code).toBe(code);
    expect(JSON.parse(r.stdout.trim().split('\n').at(-1)!)).toMatchObject({
      type: 'result',
      status: 'failed',
      exitCode: code,
      error: { code: errCode, host: 's1.test', step: 'command' },
    });
    expect(r.stdout).not.toContain(SECRET);
  });

  it('an interrupt stops after the running step (exit 130); --resume finishes', async () => {
    const ac = new AbortController();
    const r = await cli(['join', 's1.test'], { flow: demoFlow({ slow: true }, ac), signal: ac.signal });
    expect(r.code).toBe(EXIT.INTERRUPTED);
    expect(r.stderr).toContain('--resume');
    const resumed = await cli(['--resume', 'join', 's1.test'], { flow: demoFlow() });
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toMatch(/resuming \(stopped at conf@s1\.test\)|resuming/);
    expect(resumed.stdout).toMatch(/join ok: 1 done, 1 already done/);
  });

  it('on a terminal: a live step list with durations', async () => {
    const r = await cli(['join', 's1.test'], { flow: demoFlow(), tty: true });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('\x1b[J');
    expect(r.stdout).toMatch(/✔ s1\.test +ca_server points at the primary \d+ ms/);
    expect(r.stdout).toMatch(/run join .* — ok in/);
  });
});
