import { execFile, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { layouts } from '@pe-stack/pe-config-files';
import { isInRecovery, psql, query } from '@pe-stack/pe-db';
import { LocalHost, treeManifest } from '@pe-stack/pe-host';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readState } from '../state.js';
import { ADDR, caSignsOn, makeWorld, type World } from '@pe-stack/testkit/ha-world';

// Root only. The CLI (dist) in a real process, SIGKILLed right after the k-th step of a planned
// failover reports done (for every k), then `--resume` in a new process. The child reaches the
// world of @pe-stack/testkit/ha-world (jailed hosts, real PostgreSQL clusters, the OpenSSL CA) through a
// harness that passes the world's host factory to main(), as kill.test.ts does for the engine.

const run = promisify(execFile);
const PKG = fileURLToPath(new URL('../..', import.meta.url));
const TESTKIT = join(PKG, '..', 'testkit');
const L = layouts.debian;
const P = 'p.rt.test';
const S1 = 's1.rt.test';
let harness: string;

beforeAll(async () => {
  await run(process.execPath, [join(PKG, '..', '..', 'node_modules', 'typescript', 'bin', 'tsc'), '-b', PKG, TESTKIT], {
    cwd: PKG,
  });
  harness = join(TESTKIT, 'dist', '.failover-kill-harness.mjs');
  await fs.writeFile(
    harness,
    `import { openWorld } from ${JSON.stringify(join(TESTKIT, 'dist', 'ha-world.js'))};
import { main } from ${JSON.stringify(join(PKG, 'dist', 'index.js'))};
const [root, ...args] = process.argv.slice(2);
const w = await openWorld(root);
process.exitCode = await main(['-i', w.inventoryPath, ...args], { stdout: process.stdout, stderr: process.stderr, env: {}, cluster: w.options() });
`,
  );
}, 180_000);

let world: World | undefined;
afterEach(async () => {
  await world?.destroy();
  world = undefined;
});

/** The CLI child; with `killAfter`, SIGKILL once that many steps have reported done or skipped. */
function child(
  root: string,
  args: string[],
  killAfter?: number,
): Promise<{ code: number | null; signal: string | null; stdout: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [harness, root, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let finished = 0;
    p.stdout.on('data', (b: Buffer) => {
      const text = b.toString();
      out += text;
      for (const line of text.split('\n')) {
        if (killAfter !== undefined && /"type":"step-(done|skip)"/.test(line) && ++finished === killAfter)
          p.kill('SIGKILL');
      }
    });
    p.stderr.resume();
    p.on('exit', (code, signal) => resolve({ code, signal, stdout: out }));
  });
}

async function caTree(w: World, host: string): Promise<string> {
  const d = w.J(host, L.dirs.cadir);
  if (!(await fs.stat(d).catch(() => undefined))) return '';
  return JSON.stringify([...(await treeManifest(new LocalHost(), d))].sort());
}

describe('the CLI process killed (SIGKILL) after every step of a planned failover, then --resume', () => {
  it('converges; at every kill at most one CA is enabled and every CA directory has the original checksums; no committed row is lost', async () => {
    let steps = 0;
    let kills = 0;
    for (let k = 1; steps === 0 || k < steps; k++) {
      const w = (world = await makeWorld({ secondCa: false }));
      const c = await w.cluster();
      const sb = await c.standby(S1, { synchronous: true });
      await c.close();
      expect(sb.status).toBe('ok');
      await psql(w.pg[P]!, `INSERT INTO reports (node) SELECT 'k${k}-' || g FROM generate_series(1, 40) g;`, {
        database: 'puppetdb',
      });
      const original = await caTree(w, P);
      const killed = await child(w.root, ['--json', '--concurrency', '1', 'failover', '--to', S1], k);
      if (killed.signal !== 'SIGKILL') {
        // the run finished before the k-th step: k is past the last boundary
        expect(killed.code).toBe(0);
        break;
      }
      kills++;
      if (steps === 0)
        steps = (
          JSON.parse(killed.stdout.split('\n').find((l) => l.includes('"type":"flow-start"'))!) as { steps: unknown[] }
        ).steps.length;
      const enabled = [await caSignsOn(w, P), await caSignsOn(w, S1)].filter(Boolean).length;
      expect(enabled, `killed after ${k}: CAs enabled`).toBeLessThanOrEqual(1);
      for (const h of [P, S1]) {
        const t = await caTree(w, h);
        if (t) expect(t, `killed after ${k}: CA on ${h}`).toBe(original);
      }
      const resumed = await child(w.root, ['--json', '--concurrency', '1', '--resume', 'failover', '--to', S1]);
      const res = JSON.parse(resumed.stdout.trim().split('\n').at(-1)!) as {
        status: string;
        resumedFrom?: string;
        error?: unknown;
      };
      expect(resumed.code, `resume after ${k}: ${JSON.stringify(res.error)}`).toBe(0);
      expect(res.resumedFrom).toBeDefined();
      await w.reloadDns();
      expect(await isInRecovery(w.pg[S1]!)).toBe(false);
      expect(
        (await query<{ n: number }>(w.pg[S1]!, 'SELECT count(*)::int AS n FROM reports', { database: 'puppetdb' }))[0]!
          .n,
      ).toBe(40);
      expect([await caSignsOn(w, P), await caSignsOn(w, S1)]).toEqual([false, true]);
      expect(w.dns.current).toBe(ADDR[S1]);
      expect(await caTree(w, S1)).toBe(original);
      expect(readState((await w.cluster()).inventory)).toMatchObject({ primary: S1, fenced: [{ host: P }] });
      await w.destroy();
      world = undefined;
    }
    process.stderr.write(`failover-kill: ${kills} kills at ${steps} step boundaries, each resumed\n`);
    expect(steps).toBeGreaterThan(10);
    expect(kills).toBe(steps - 1);
  }, 1_500_000);
});
