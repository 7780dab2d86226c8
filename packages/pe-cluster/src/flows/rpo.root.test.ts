import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { query } from '@pe-stack/pe-db';
import { afterEach, describe, expect, it } from 'vitest';
import { ADDR, DB_PW, makeWorld, powerCut, type World } from '@pe-stack/testkit/ha-world';

// Root only. RPO under a concurrent writer: one psql session commits one row per statement through
// the primary's address and prints each acknowledged id; the primary is power-cut mid-stream (its
// postmaster and backends SIGKILLed, the host unreachable); emergency failover to the standby; an
// acknowledged id missing on the new primary is a lost row. Synchronous standby: none may be lost.

const P = 'p.rt.test';
const S1 = 's1.rt.test';
let world: World | undefined;
let writer: ChildProcess | undefined;
afterEach(async () => {
  writer?.kill('SIGKILL');
  writer = undefined;
  await world?.destroy();
  world = undefined;
});

async function measure(
  synchronous: boolean,
): Promise<{ acked: number; lost: number; failoverMs: number; steps: Record<string, number> }> {
  const w = (world = await makeWorld({ secondCa: false }));
  const c = await w.cluster();
  const sb = await c.standby(S1, { synchronous });
  await c.close();
  expect(sb.status).toBe('ok');
  const acked = join(w.root, 'acked');
  const port = w.pg[P]!.port;
  writer = spawn(
    'sh',
    [
      '-c',
      `seq 1 10000000 | sed 's/.*/INSERT INTO reports (node) VALUES (1) RETURNING id;/' | psql -h ${ADDR[P]} -p ${port} -U puppetdb -d puppetdb -tAq > ${acked} 2>/dev/null`,
    ],
    { env: { ...process.env, PGPASSWORD: DB_PW }, stdio: 'ignore', detached: true },
  );
  await new Promise((r) => setTimeout(r, 2500));
  await powerCut(w, P);
  try {
    process.kill(-writer.pid!, 'SIGKILL');
  } catch {
    // already gone
  }
  const ids = (await fs.readFile(acked, 'utf8'))
    .split('\n')
    .filter((l) => /^\d+$/.test(l))
    .map(Number);
  const c2 = await w.cluster();
  const t0 = performance.now();
  const f = await c2.failover({ to: S1, reachTimeoutMs: 1000, ...(synchronous ? {} : { acceptDataLoss: true }) });
  const failoverMs = performance.now() - t0;
  await c2.close();
  expect(f.error ? `${f.error.code}: ${f.error.message}` : f.status).toBe('ok');
  const present = new Set(
    (await query<{ id: number }>(w.pg[S1]!, 'SELECT id FROM reports', { database: 'puppetdb' })).map((r) =>
      Number(r.id),
    ),
  );
  return {
    acked: ids.length,
    lost: ids.filter((i) => !present.has(i)).length,
    failoverMs,
    steps: Object.fromEntries(f.steps.map((s) => [s.id + '@' + s.host, Math.round(s.ms ?? 0)])),
  };
}

describe('RPO under a concurrent writer, emergency failover after a power cut', () => {
  it('synchronous standby: no acknowledged row is lost', async () => {
    const m = await measure(true);
    process.stderr.write(
      `rpo sync: acked ${m.acked}, lost ${m.lost}; failover ${Math.round(m.failoverMs)} ms ${JSON.stringify(m.steps)}\n`,
    );
    expect(m.acked).toBeGreaterThan(50);
    expect(m.lost).toBe(0);
  }, 180_000);

  it('asynchronous standby (--accept-data-loss): the loss is measured, not assumed', async () => {
    const m = await measure(false);
    process.stderr.write(
      `rpo async: acked ${m.acked}, lost ${m.lost}; failover ${Math.round(m.failoverMs)} ms ${JSON.stringify(m.steps)}\n`,
    );
    expect(m.acked).toBeGreaterThan(50);
    expect(m.lost).toBeGreaterThanOrEqual(0);
  }, 180_000);
});
