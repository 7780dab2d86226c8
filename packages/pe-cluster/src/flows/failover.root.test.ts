import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { layouts } from '@pe-stack/pe-config-files';
import { OpensslAgent, OpensslCa } from '@pe-stack/pe-certs';
import { isInRecovery, isRunning, query, readFenceMarker, replicaStreaming } from '@pe-stack/pe-db';
import { LocalHost, treeManifest } from '@pe-stack/pe-host';
import { afterEach, describe, expect, it } from 'vitest';
import type { FlowEvent, RunResult } from '@pe-stack/pe-steps';
import { readState } from '../state.js';
import { caCopyVerified } from './ca-switch.js';
import { watchCaCopy } from './standby.js';
import { CNAME, ADDR, DB_PW, caSignsOn, makeWorld, powerCut, type World } from '@pe-stack/testkit/ha-world';

// Root only (PostgreSQL 15, openssl): see @pe-stack/testkit/ha-world. Every world is made fresh and destroyed.

const L = layouts.debian;
const P = 'p.rt.test';
const S1 = 's1.rt.test';
const S2 = 's2.rt.test';
let world: World | undefined;
afterEach(async () => {
  await world?.destroy();
  world = undefined;
});

async function rows(w: World, host: string): Promise<number> {
  const r = await query<{ n: number }>(w.pg[host]!, 'SELECT count(*)::int AS n FROM reports', { database: 'puppetdb' });
  return r[0]!.n;
}
async function insert(w: World, n: number, tag: string): Promise<void> {
  const { psql } = await import('@pe-stack/pe-db');
  await psql(w.pg[P]!, `INSERT INTO reports (node) SELECT '${tag}-' || g FROM generate_series(1, ${n}) g;`, {
    database: 'puppetdb',
  });
}
async function caTree(w: World, host: string): Promise<Map<string, string>> {
  const d = w.J(host, L.dirs.cadir);
  if (!(await fs.stat(d).catch(() => undefined))) return new Map();
  return treeManifest(new LocalHost(), d);
}
const same = (a: Map<string, string>, b: Map<string, string>) =>
  JSON.stringify([...a].sort()) === JSON.stringify([...b].sort());

async function run(
  w: World,
  what: (c: Awaited<ReturnType<World['cluster']>>, onEvent: (e: FlowEvent) => void) => Promise<RunResult>,
): Promise<{ r: RunResult; events: FlowEvent[] }> {
  const c = await w.cluster();
  const events: FlowEvent[] = [];
  try {
    const r = await what(c, (e) => events.push(e));
    return { r, events };
  } finally {
    await c.close();
  }
}
const ok = (r: RunResult) => expect(r.error ? `${r.error.code}: ${r.error.message}` : r.status).toBe('ok');

/** A new agent's certificate signed by the CA on `host` (its CA directory, through OpenSSL) verifies against the CA certificate every master has. */
async function newAgentSignedBy(w: World, host: string, agent: string): Promise<boolean> {
  const local = new LocalHost();
  const ca = new OpensslCa(local, w.J(host, L.dirs.cadir));
  const a = new OpensslAgent(ca, join(w.root, 'agents', agent), { key: { type: 'ec' } });
  await a.submit(local, agent, []);
  await ca.sign(agent, { allowed: [] });
  await a.fetch(local, agent);
  const cert = new X509Certificate(await fs.readFile(join(w.root, 'agents', agent, 'certs', `${agent}.pem`)));
  const caPem = await fs
    .readFile(w.J(S2, `${L.dirs.certsDir}/ca.pem`))
    .catch(() => fs.readFile(w.J(host, `${L.dirs.cadir}/ca_crt.pem`)));
  return cert.verify(new X509Certificate(caPem).publicKey);
}

describe('standby, planned switchover and back, rejoin (real PostgreSQL, real OpenSSL CA)', () => {
  it('standby --sync; switchover to s1 loses nothing and leaves one CA; rejoin makes p a streaming standby; switchover back', async () => {
    const w = (world = await makeWorld());
    const original = await caTree(w, P);
    // the primary's autosign policy (and one entry of the standby's own)
    await fs.writeFile(w.J(P, L.files.autosignConf!.path), '# agents\n*.agents.rt.test\nconsole.rt.test\n');
    await fs.writeFile(w.J(S1, L.files.autosignConf!.path), 'own.rt.test\n');
    // ---- standby ----
    let { r } = await run(w, (c, onEvent) => c.standby(S1, { synchronous: true, onEvent }));
    ok(r);
    expect(await fs.readFile(w.J(S1, L.files.autosignConf!.path), 'utf8')).toBe(
      'own.rt.test\n*.agents.rt.test\nconsole.rt.test\n',
    );
    expect(await replicaStreaming(w.pg[P]!, S1, { synchronous: true })).toBe(true);
    expect(same(await caTree(w, S1), original)).toBe(true);
    expect(await caSignsOn(w, S1)).toBe(false);
    // the standalone CA s1 had is kept aside, not deleted
    expect((await fs.readdir(w.J(S1, '/etc/puppet/puppetserver'))).some((f) => f.startsWith('ca.pe-backup-'))).toBe(
      true,
    );
    expect(readState((await w.cluster()).inventory).standby).toMatchObject({ host: S1, synchronous: true });
    // a rerun finds everything done
    ({ r } = await run(w, (c, onEvent) => c.standby(S1, { synchronous: true, onEvent })));
    ok(r);
    expect(r.steps.filter((s) => s.status === 'done').map((s) => s.id)).toEqual([]);
    // status reports the standby
    const c0 = await w.cluster();
    const st = await c0.status();
    await c0.close();
    expect(
      (
        st as {
          ha?: { standby?: { host: string; caCopy: { verified: boolean }; replication: { syncState?: string } } };
        }
      ).ha?.standby,
    ).toMatchObject({ host: S1, caCopy: { verified: true }, replication: { syncState: 'sync' } });
    expect(st.caHolders).toEqual([P]);

    // ---- the CA signs something: the copy is stale, status says so, a standby rerun pushes a verified copy ----
    await newAgentSignedBy(w, P, 'agent-before.rt.test');
    const c1 = await w.cluster();
    const st1 = await c1.status();
    await c1.close();
    expect(st1.problems.some((p) => p.host === S1 && /CA copy/.test(p.message))).toBe(true);
    ({ r } = await run(w, (c, onEvent) => c.standby(S1, { synchronous: true, onEvent })));
    ok(r);
    expect(r.steps.find((s) => s.id === 'standby.ca-copy')?.status).toBe('done');
    const caNow = await caTree(w, P);
    expect(same(await caTree(w, S1), caNow)).toBe(true);

    // ---- planned switchover ----
    await insert(w, 500, 'before');
    const { r: f, events } = await run(w, (c, onEvent) => c.failover({ to: S1 }, { onEvent }));
    ok(f);
    expect(events.find((e) => e.type === 'flow-start' && 'steps' in e)).toBeDefined();
    expect(f.steps.map((s) => `${s.id}@${s.host}:${s.status}`)).toEqual(
      expect.arrayContaining([
        `old.ca-disabled@${P}:done`,
        `old.db-fenced@${P}:done`,
        `db-promote@${S1}:done`,
        `dns-move@${S1}:done`,
        `ca-enabled@${S1}:done`,
        `state.commit@${S1}:done`,
      ]),
    );
    // the order: the old CA off before the new one on
    const order = f.steps.map((s) => s.id);
    expect(order.indexOf('old.ca-disabled')).toBeLessThan(order.indexOf('ca-enabled'));
    expect(await isInRecovery(w.pg[S1]!)).toBe(false);
    expect(await rows(w, S1)).toBe(500);
    expect(await isRunning(w.pg[P]!)).toBe(false);
    expect((await readFenceMarker(w.pg[P]!))?.newPrimary).toBe(S1);
    expect([await caSignsOn(w, P), await caSignsOn(w, S1), await caSignsOn(w, S2)]).toEqual([false, true, false]);
    expect(w.dns.current).toBe(ADDR[S1]);
    expect(same(await caTree(w, S1), caNow)).toBe(true);
    // every master's main filebucket follows primary_cname
    for (const h of [S1, S2])
      expect(await fs.readFile(w.J(h, L.files.sitePp!.path), 'utf8')).toContain(`server => '${CNAME}'`);
    // auth.conf lets the new CA host use the CA admin endpoints
    expect(await fs.readFile(w.J(S1, L.files.authConf!.path), 'utf8')).toContain(S1);
    // a new agent is signed by the CA on s1, and its certificate verifies against the CA every master trusts
    expect(await newAgentSignedBy(w, S1, 'agent-after.rt.test')).toBe(true);
    // the controller state now names s1 primary; the Cluster sees it
    const c2 = await w.cluster();
    expect(c2.inventory.primary.name).toBe(S1);
    const st2 = await c2.status();
    await c2.close();
    expect(st2.caHolders).toEqual([S1]);
    expect((st2 as { ha?: { fenced: { host: string }[] } }).ha?.fenced.map((x) => x.host)).toEqual([P]);
    // puppetserver on s1 (stopped in this world) was started with the CA enabled; nothing else touched puppetserver
    const svc = await w.svcLog();
    expect(svc).toContain(`${S1} puppetserver start`);
    expect(svc).not.toMatch(new RegExp(`${S2.replace(/\./g, '\\.')} puppetserver (start|restart|reload)`));
    // a rerun of the same failover does nothing
    const { r: again } = await run(w, (c, onEvent) => c.failover({ to: S1 }, { onEvent }));
    ok(again);
    expect(again.steps.filter((s) => s.status === 'done').map((s) => s.id)).toEqual([]);
    // no secret in the journal or the audit log
    for (const f2 of await fs.readdir(join(w.root, 'state', 'journal')))
      expect(await fs.readFile(join(w.root, 'state', 'journal', f2), 'utf8')).not.toContain(DB_PW);
    expect(await fs.readFile(join(w.root, 'state', 'audit.log'), 'utf8')).not.toContain(DB_PW);

    // ---- rejoin p ----
    const { r: rj } = await run(w, (c, onEvent) => c.rejoin(P, { onEvent }));
    ok(rj);
    expect(await replicaStreaming(w.pg[S1]!, P)).toBe(true);
    expect(await readFenceMarker(w.pg[P]!)).toBeUndefined();
    expect(await fs.stat(w.J(P, L.dirs.cadir)).catch(() => undefined)).toBeUndefined();
    // with its CA off, its web server names the agent's certificate, key and CA (else puppetserver does not start)
    expect(await fs.readFile(w.J(P, L.files.webServerConf!.path), 'utf8')).toContain(`${L.dirs.ssldir}/certs/ca.pem`);
    const kept = await fs.readdir(join(w.root, 'backups', 'rejoin'));
    expect(kept.some((f2) => f2.endsWith('.manifest.json'))).toBe(true);
    expect(readState((await w.cluster()).inventory).fenced).toEqual([]);

    // ---- and back: p becomes the standby, then primary again ----
    ({ r } = await run(w, (c, onEvent) => c.standby(P, { synchronous: true, onEvent })));
    ok(r);
    const { psql } = await import('@pe-stack/pe-db');
    await psql(w.pg[S1]!, "INSERT INTO reports (node) SELECT 'on-s1-' || g FROM generate_series(1, 25) g;", {
      database: 'puppetdb',
    });
    const { r: back } = await run(w, (c, onEvent) => c.failover({ to: P }, { onEvent }));
    ok(back);
    expect(await rows(w, P)).toBe(525);
    expect([await caSignsOn(w, P), await caSignsOn(w, S1), await caSignsOn(w, S2)]).toEqual([true, false, false]);
    expect(w.dns.current).toBe(ADDR[P]);
    expect(same(await caTree(w, P), await caTree(w, S1))).toBe(true);
  }, 240_000);
});

describe('plan (dry run)', () => {
  it('plan failover lists the steps and changes nothing: the standby stays a standby, no CA enabled, DNS and state untouched', async () => {
    const w = (world = await makeWorld({ secondCa: false }));
    const { r } = await run(w, (c, onEvent) => c.standby(S1, { synchronous: true, onEvent }));
    ok(r);
    const stBefore = JSON.stringify(readState((await w.cluster()).inventory));
    const c = await w.cluster();
    const plan = await c.plan('failover', [S1]);
    await c.close();
    expect(plan.status).toBe('ok');
    expect(plan.steps.filter((s) => s.status === 'planned').map((s) => s.id)).toEqual(
      expect.arrayContaining([
        'failover.decide',
        'old.ca-disabled',
        'old.db-fenced',
        'db-promote',
        'dns-move',
        'ca-enabled',
        'state.commit',
      ]),
    );
    expect(
      plan.steps
        .find((s) => s.id === 'db-promote')
        ?.mutations.some((m) => m.kind === 'exec' && m.argv.includes('promote')),
    ).toBe(true);
    expect(await isInRecovery(w.pg[S1]!)).toBe(true);
    expect(await isRunning(w.pg[P]!)).toBe(true);
    expect([await caSignsOn(w, P), await caSignsOn(w, S1)]).toEqual([true, false]);
    expect(w.dns.sets).toEqual([]);
    expect(JSON.stringify(readState((await w.cluster()).inventory))).toBe(stBefore);
    expect(JSON.stringify(plan)).not.toContain(DB_PW);
  }, 120_000);
});

describe('emergency failover', () => {
  it('asynchronous standby, primary powered off: refused (E_DATA_LOSS_RISK, nothing changed); with --accept-data-loss it proceeds and records the fence', async () => {
    const w = (world = await makeWorld());
    let { r } = await run(w, (c, onEvent) => c.standby(S1, { onEvent }));
    ok(r);
    await insert(w, 200, 'async');
    // power cut: PostgreSQL killed, the host unreachable
    await powerCut(w, P);
    ({ r } = await run(w, (c, onEvent) => c.failover({ to: S1, reachTimeoutMs: 1000 }, { onEvent })));
    expect(r.status).toBe('failed');
    expect(r.error).toMatchObject({ code: 'E_DATA_LOSS_RISK', step: 'failover.decide' });
    expect(await isInRecovery(w.pg[S1]!)).toBe(true);
    expect(await caSignsOn(w, S1)).toBe(false);
    expect(w.dns.sets).toEqual([]);
    ({ r } = await run(w, (c, onEvent) =>
      c.failover({ to: S1, reachTimeoutMs: 1000, acceptDataLoss: true }, { onEvent }),
    ));
    ok(r);
    expect(r.steps.find((s) => s.id === 'old.fence-recorded')?.status).toBe('done');
    expect(await isInRecovery(w.pg[S1]!)).toBe(false);
    expect(await caSignsOn(w, S1)).toBe(true);
    expect(w.dns.current).toBe(ADDR[S1]);
    const st = readState((await w.cluster()).inventory);
    expect(st.fenced).toMatchObject([{ host: P, how: 'unreachable', newPrimary: S1 }]);
    expect(st.failover).toMatchObject({ mode: 'emergency', acceptDataLoss: true });

    // ---- power on: its own files still say CA enabled and PostgreSQL primary; rejoin fences and rebuilds it ----
    w.down.delete(P);
    // power on: what a boot starts (its own PostgreSQL, as a primary); the killed processes' lock may linger a moment
    const { startInstance, clearStaleLock } = await import('@pe-stack/pe-db');
    for (let i = 0; ; i++) {
      await clearStaleLock(w.pg[P]!);
      const ok = await startInstance(w.pg[P]!).then(
        () => true,
        (e: unknown) => (i < 10 ? false : Promise.reject(e)),
      );
      if (ok) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    expect(await caSignsOn(w, P)).toBe(true);
    const c = await w.cluster();
    const two = await c.status();
    await c.close();
    expect(two.caHolders.sort()).toEqual([P, S1]);
    expect(two.health).toBe('broken');
    const { r: rj } = await run(w, (cl, onEvent) => cl.rejoin(P, { onEvent }));
    ok(rj);
    expect(await caSignsOn(w, P)).toBe(false);
    expect(await replicaStreaming(w.pg[S1]!, P)).toBe(true);
    const c3 = await w.cluster();
    const after = await c3.status();
    await c3.close();
    expect(after.caHolders).toEqual([S1]);
  }, 180_000);

  it('synchronous standby, primary powered off: proceeds without --accept-data-loss; every committed row is on the new primary', async () => {
    const w = (world = await makeWorld());
    const { r } = await run(w, (c, onEvent) => c.standby(S1, { synchronous: true, onEvent }));
    ok(r);
    await insert(w, 300, 'sync');
    await powerCut(w, P);
    const { r: f } = await run(w, (c, onEvent) => c.failover({ to: S1, reachTimeoutMs: 1000 }, { onEvent }));
    ok(f);
    expect(await rows(w, S1)).toBe(300);
    expect(readState((await w.cluster()).inventory).failover).toMatchObject({
      mode: 'emergency',
      acceptDataLoss: false,
    });
  }, 120_000);
});

describe('standby --watch (watchCaCopy)', () => {
  it('pushes a verified copy after the CA signs, and only then; the copy verifies against the state', async () => {
    const w = (world = await makeWorld());
    const { r } = await run(w, (c, onEvent) => c.standby(S1, { onEvent }));
    ok(r);
    const c = await w.cluster();
    const ac = new AbortController();
    const syncs: { files: number }[] = [];
    const watching = watchCaCopy(c, S1, { intervalS: 0.2, signal: ac.signal, onSync: (x) => syncs.push(x) });
    try {
      await new Promise((res) => setTimeout(res, 1000));
      expect(syncs).toHaveLength(0); // nothing changed: nothing pushed
      await newAgentSignedBy(w, P, 'agent-watched.rt.test');
      const t0 = Date.now();
      while (syncs.length === 0 && Date.now() - t0 < 15_000) await new Promise((res) => setTimeout(res, 100));
      expect(syncs.length).toBe(1);
    } finally {
      ac.abort();
    }
    expect(await watching).toBe(1);
    expect(same(await caTree(w, S1), await caTree(w, P))).toBe(true);
    expect((await caCopyVerified(c.inventory, { host: c.host(S1), sudo: false })).ok).toBe(true);
    await c.close();
  }, 120_000);
});
