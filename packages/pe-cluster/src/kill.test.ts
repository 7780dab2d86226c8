import { execFile, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// The CLI in a real process that is killed (SIGKILL) right after step k, for every k, or
// interrupted (SIGINT) during a step; then `--resume` in a new process. The process runs a small
// harness: main() from dist with a file-based flow on LocalHost temp dirs (the bin's flows cannot
// be replaced, by design), and the bin's own SIGINT handling (interruptOnSigint).

const run = promisify(execFile);
const PKG = fileURLToPath(new URL('..', import.meta.url));
const HOSTS = ['s1.test', 's2.test'];
const STEPS = ['conf', 'marker', 'tail'];
let root: string;
let harness: string;

const HARNESS = (pkg: string) => `
import { LocalHost } from ${JSON.stringify(join(pkg, '..', 'pe-host', 'dist', 'index.js'))};
import { interruptOnSigint, main } from ${JSON.stringify(join(pkg, 'dist', 'index.js'))};
const [inv, dir, killAt, slowAt, ...args] = process.argv.slice(2);
const { promises: fs } = await import('node:fs');
const step = (h, id, content) => ({
  id, host: h, title: id + ' on ' + h,
  check: async () => ({ done: (await fs.readFile(dir + '/' + h + '.' + id, 'utf8').catch(() => '')) === content, why: 'content' }),
  apply: async (ctx) => {
    if (id + '@' + h === slowAt) { process.stderr.write('SLOW\\n'); await new Promise((r) => setTimeout(r, 1500)); }
    await ctx.host.writeFile(dir + '/' + h + '.' + id, content);
    if (id + '@' + h === killAt) process.kill(process.pid, 'SIGKILL');
  },
});
const flow = (_c, hosts) => ({ name: 'join', items: [{ group: 'g', lanes: (hosts.length ? hosts : ${JSON.stringify(HOSTS)}).map((h) => ${JSON.stringify(STEPS)}.map((id) => step(h, id, id + ' of ' + h + '\\n'))) }] });
const ac = interruptOnSigint(process);
process.exitCode = await main(['-i', inv, ...args], {
  stdout: process.stdout, stderr: process.stderr, env: process.env, signal: ac.signal,
  cluster: { hostFactory: (n) => new LocalHost({ name: n.name }), flows: { join: flow } },
});
`;

beforeAll(async () => {
  await run(process.execPath, [join(PKG, '..', '..', 'node_modules', 'typescript', 'bin', 'tsc'), '-b', PKG], {
    cwd: PKG,
  });
  root = await fs.mkdtemp(join(tmpdir(), 'pe-kill-'));
  harness = join(root, 'harness.mjs');
  await fs.writeFile(harness, HARNESS(PKG));
}, 120_000);
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

async function setup(name: string): Promise<{ inv: string; dir: string }> {
  const base = join(root, name);
  const dir = join(base, 'hosts');
  await fs.mkdir(dir, { recursive: true });
  const inv = join(base, 'inventory.yaml');
  await fs.writeFile(
    inv,
    `cluster: k\nlayout: debian\nprimary_cname: ca.test\ngeneral_cname: puppet.test\nmasters:\n  - {name: p.test, role: primary}\n${HOSTS.map((h) => `  - {name: ${h}, role: secondary}\n`).join('')}journals: ${base}/journal\naudit_log: ${base}/audit.log\n`,
  );
  return { inv, dir };
}

async function harnessRun(inv: string, dir: string, killAt: string, slowAt: string, args: string[]) {
  try {
    const r = await run(process.execPath, [harness, inv, dir, killAt, slowAt, ...args], { timeout: 60_000 });
    return { code: 0, signal: undefined as string | undefined, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code: number | null; signal: string | null; stdout: string; stderr: string };
    return { code: x.code, signal: x.signal ?? undefined, stdout: x.stdout, stderr: x.stderr };
  }
}

/**
 * The files of the hosts, without backups and without the temp file of an atomic write that a
 * SIGKILL interrupted in another lane (pe-host writes `.<name>.pe-tmp-*` then renames; a kill
 * between the two leaves it; the target itself is never torn).
 */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const f of (await fs.readdir(dir)).sort())
    if (!f.includes('.pe-backup-') && !f.includes('.pe-tmp-')) out[f] = await fs.readFile(join(dir, f), 'utf8');
  return out;
}

describe('kill -9 after step k, then --resume (real processes)', () => {
  const keys = HOSTS.flatMap((h) => STEPS.map((s) => `${s}@${h}`));
  for (const k of keys) {
    it(`killed after ${k}`, async () => {
      const ref = await setup(`ref-${k}`);
      expect((await harnessRun(ref.inv, ref.dir, '', '', ['join'])).code).toBe(0);
      const want = await snapshot(ref.dir);
      expect(Object.keys(want)).toHaveLength(6);

      const t = await setup(`kill-${k}`);
      const killed = await harnessRun(t.inv, t.dir, k, '', ['join']);
      expect(killed.signal).toBe('SIGKILL');
      // the killed run never recorded its end
      const [journal] = await fs.readdir(join(root, `kill-${k}`, 'journal'));
      expect(await fs.readFile(join(root, `kill-${k}`, 'journal', journal!), 'utf8')).not.toContain('"run-end"');
      const resumed = await harnessRun(t.inv, t.dir, '', '', ['--resume', 'join']);
      expect(resumed.code).toBe(0);
      expect(resumed.stdout).toMatch(/resuming \(stopped at [a-z]+@s\d\.test\)/);
      expect(await snapshot(t.dir)).toEqual(want);
      // one journal: the killed run, continued
      expect(await fs.readdir(join(root, `kill-${k}`, 'journal'))).toHaveLength(1);
    });
  }
});

describe('Ctrl-C (SIGINT) to the CLI process', () => {
  it('stops after the running step, exits 130, records it; --resume finishes', async () => {
    const t = await setup('sigint');
    const child = spawn(process.execPath, [harness, t.inv, t.dir, '', 'marker@s1.test', '--concurrency', '1', 'join'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    await new Promise<void>((resolve) =>
      child.stderr.on('data', (b: Buffer) => {
        stderr += b.toString();
        if (stderr.includes('SLOW')) resolve();
      }),
    );
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(stderr).toContain('interrupt: stopping after the running step');
    // the running step finished; nothing after it started
    expect(Object.keys(await snapshot(t.dir))).toEqual(['s1.test.conf', 's1.test.marker']);
    const [journal] = await fs.readdir(join(root, 'sigint', 'journal'));
    expect(await fs.readFile(join(root, 'sigint', 'journal', journal!), 'utf8')).toMatch(/"type":"interrupted"/);
    const resumed = await harnessRun(t.inv, t.dir, '', '', ['--resume', 'join']);
    expect(resumed.code).toBe(0);
    expect(Object.keys(await snapshot(t.dir))).toHaveLength(6);
  });
});
