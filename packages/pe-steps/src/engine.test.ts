import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalHost, Redactor, type Host } from '@pe-stack/pe-host';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  formatPlan,
  readJournal,
  runFlow,
  stepKey,
  type Flow,
  type FlowEvent,
  type RunOptions,
  type Step,
} from './index.js';

const SECRET = 'Sup3r-S3cret-DB-pw';

let root: string;
beforeEach(async () => {
  root = await fs.mkdtemp(join(tmpdir(), 'pe-engine-'));
});
afterEach(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

/** Every file under dir (relative path -> content), backups left out (their names carry a timestamp). */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (d: string, rel: string) => {
    let entries;
    try {
      entries = await fs.readdir(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (e.name.includes('.pe-backup-')) continue;
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p, `${rel}${e.name}/`);
      else out[`${rel}${e.name}`] = await fs.readFile(p, 'utf8');
    }
  };
  await walk(dir, '');
  return out;
}

const text = async (h: Host, p: string) => ((await h.exists(p)) ? (await h.readFile(p)).toString() : undefined);

/** A file that starts with this content (later steps may add lines). */
function fileStep(id: string, host: string, path: () => string, content: string): Step {
  return {
    id,
    host,
    title: `write ${id}`,
    check: async (ctx) => {
      const cur = await text(ctx.host, path());
      return cur?.startsWith(content)
        ? { done: true, why: 'content as wanted' }
        : { done: false, why: cur === undefined ? 'missing' : 'content differs' };
    },
    apply: async (ctx) => {
      await ctx.host.writeFile(path(), content);
    },
  };
}

/** A line present in a file (an edit of what an earlier step wrote). */
function lineStep(id: string, host: string, path: () => string, line: string): Step {
  return {
    id,
    host,
    title: `add a line to ${id}`,
    check: async (ctx) => {
      const cur = (await text(ctx.host, path())) ?? '';
      return cur.split('\n').includes(line) ? { done: true, why: 'line present' } : { done: false, why: 'line absent' };
    },
    apply: async (ctx) => {
      const cur = (await text(ctx.host, path())) ?? '';
      await ctx.host.writeFile(path(), `${cur}${line}\n`);
    },
  };
}

/** A command whose argv carries the secret (it must be masked in every record). */
function execStep(id: string, host: string, path: () => string): Step {
  return {
    id,
    host,
    title: `run a command for ${id}`,
    check: async (ctx) =>
      (await ctx.host.exists(path())) ? { done: true, why: 'marker exists' } : { done: false, why: 'no marker' },
    apply: async (ctx) => {
      await ctx.host.exec(['sh', '-c', 'printf "%s" "$1" | wc -c > "$2"', 'sh', SECRET, path()]);
    },
  };
}

/** A step whose effect cannot be observed (a restart): needed when this run changed the host, unless it finished earlier in this run. */
function restartStep(host: string, counter: () => string): Step {
  return {
    id: 'restart',
    host,
    title: 'restart the service',
    check: async (ctx) =>
      !ctx.changedInRun(host)
        ? { done: true, why: 'nothing changed on the host in this run' }
        : ctx.completedEarlier
          ? { done: true, why: 'restarted earlier in this run' }
          : { done: false, why: 'the host changed in this run' },
    apply: async (ctx) => {
      const n = Number((await text(ctx.host, counter())) ?? '0');
      await ctx.host.writeFile(counter(), String(n + 1));
    },
    verify: false,
  };
}

function buildFlow(dir: string): Flow {
  const p = (name: string) => () => join(dir, name);
  return {
    name: 'demo',
    items: [
      fileStep('db-conf', 'a', p('a/database.ini'), `[database]\nuser = puppetdb\npassword = ${SECRET}\n`),
      lineStep('db-conf-tuning', 'a', p('a/database.ini'), 'maximum-pool-size = 10'),
      execStep('marker', 'a', p('a/marker')),
      {
        group: 'secondaries',
        lanes: ['b', 'c', 'd'].map((h) => [
          fileStep('puppet-conf', h, p(`${h}/puppet.conf`), `[main]\nca_server = ca.example.com\n`),
          lineStep('allowlist', h, p(`${h}/allow`), `${h}.example.com`),
        ]),
      },
      restartStep('a', p('a/restarts')),
    ],
  };
}

function hostsIn(dir: string, redactor: Redactor): (name: string) => Host {
  const cache = new Map<string, Host>();
  return (name) => {
    let h = cache.get(name);
    if (!h) cache.set(name, (h = new LocalHost({ name, redactor })));
    return h;
  };
}

async function run(dir: string, extra: Partial<RunOptions> = {}, flow = buildFlow(dir)) {
  const redactor = new Redactor([SECRET]);
  for (const h of ['a', 'b', 'c', 'd']) await fs.mkdir(join(dir, h), { recursive: true });
  const events: FlowEvent[] = [];
  const result = await runFlow(flow, {
    host: hostsIn(dir, redactor),
    journalDir: join(root, 'journal'),
    auditLog: join(root, 'audit.log'),
    target: 'demo-target',
    redactor,
    onEvent: (e) => events.push(e),
    ...extra,
  });
  return { result, events };
}

/** The same flow, but the step `key` does its work and then "crashes" (throws) before reporting. */
function crashingAt(flow: Flow, key: string): Flow {
  const wrap = (s: Step): Step =>
    stepKey(s) !== key
      ? s
      : {
          ...s,
          apply: async (ctx) => {
            await s.apply(ctx);
            throw new Error('simulated crash');
          },
        };
  return {
    ...flow,
    items: flow.items.map((i) => ('lanes' in i ? { ...i, lanes: i.lanes.map((l) => l.map(wrap)) } : wrap(i))),
  };
}

describe('runFlow', () => {
  it('applies every step, then a rerun changes nothing (all checks done)', async () => {
    const dir = join(root, 'hosts');
    const first = await run(dir);
    expect(first.result.status).toBe('ok');
    expect(first.result.steps.every((s) => s.status === 'done')).toBe(true);
    const state = await snapshot(dir);
    expect(state['a/database.ini']).toContain('maximum-pool-size = 10');
    expect(state['a/marker']?.trim()).toBe(String(SECRET.length));
    expect(Object.keys(state).filter((k) => k.endsWith('/allow'))).toHaveLength(3);

    const again = await run(dir);
    expect(again.result.status).toBe('ok');
    // every step is done already; the restart is not needed because nothing changed
    expect(again.result.steps.filter((s) => s.status !== 'skipped').map((s) => s.key)).toEqual([]);
    expect(again.result.steps.find((s) => s.key === 'restart@a')?.why).toBe('nothing changed on the host in this run');
    expect(again.result.steps.filter((s) => s.status === 'skipped').every((s) => s.mutations.length === 0)).toBe(true);
  });

  it('emits typed events in order: flow-start, step-start/check/done|skip, flow-end', async () => {
    const { events, result } = await run(join(root, 'hosts'));
    expect(events[0]).toMatchObject({ type: 'flow-start', flow: 'demo', runId: result.runId, dryRun: false });
    expect(events.at(-1)).toMatchObject({ type: 'flow-end', status: 'ok', counts: { done: 10, failed: 0 } });
    const forKey = events.filter((e) => 'key' in e && e.key === 'db-conf@a').map((e) => e.type);
    expect(forKey).toEqual(['step-start', 'step-check', 'step-done']);
  });

  it('runs group lanes in parallel, never more than --concurrency at once', async () => {
    let active = 0;
    let peak = 0;
    const slow = (h: string): Step => ({
      id: 'slow',
      host: h,
      title: 'slow',
      check: async () => ({ done: false, why: 'always' }),
      apply: async () => {
        peak = Math.max(peak, ++active);
        await new Promise((r) => setTimeout(r, 60));
        active--;
      },
      verify: false,
    });
    const flow: Flow = {
      name: 'par',
      items: [{ group: 'g', lanes: ['h1', 'h2', 'h3', 'h4', 'h5', 'h6'].map((h) => [slow(h)]) }],
    };
    const t0 = Date.now();
    const r = await runFlow(flow, { host: (n) => new LocalHost({ name: n }), concurrency: 2 });
    expect(r.status).toBe('ok');
    expect(peak).toBe(2);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(170); // 3 waves of 60 ms
  });

  it('a failing lane stops itself; the other lanes of the group finish; nothing after the group starts', async () => {
    const bad: Step = {
      id: 'bad',
      host: 'x',
      title: 'fails',
      check: async () => ({ done: false, why: 'always' }),
      apply: async () => Promise.reject(new Error('boom')),
    };
    const after = fileStep('after', 'x', () => join(root, 'x-after'), 'x');
    const good = ['y1', 'y2'].map((n) => fileStep(n, 'y', () => join(root, n), n));
    const last = fileStep('last', 'z', () => join(root, 'z-last'), 'z');
    const r = await runFlow(
      { name: 'g', items: [{ group: 'g', lanes: [[bad, after], good] }, last] },
      { host: (n) => new LocalHost({ name: n }), concurrency: 2 },
    );
    expect(r.status).toBe('failed');
    expect(r.steps.map((s) => [s.key, s.status])).toEqual([
      ['bad@x', 'failed'],
      ['after@x', 'not-run'],
      ['y1@y', 'done'],
      ['y2@y', 'done'],
      ['last@z', 'not-run'],
    ]);
  });

  it('a step whose apply does not make its check pass fails with E_VERIFY, and the flow stops', async () => {
    const lazy: Step = {
      id: 'lazy',
      host: 'a',
      title: 'does nothing',
      check: async () => ({ done: false, why: 'never' }),
      apply: async () => {},
    };
    const after = fileStep('after', 'a', () => join(root, 'after'), 'x');
    const r = await runFlow({ name: 'v', items: [lazy, after] }, { host: (n) => new LocalHost({ name: n }) });
    expect(r.status).toBe('failed');
    expect(r.error).toMatchObject({ code: 'E_VERIFY', host: 'a', step: 'lazy' });
    expect(r.steps.map((s) => s.status)).toEqual(['failed', 'not-run']);
    expect(await fs.stat(join(root, 'after')).catch(() => undefined)).toBeUndefined();
  });

  describe('resume after a crash at every step k converges to the same end state', async () => {
    const keys = (await import('./types.js')).flowSteps(buildFlow('/x')).map(stepKey);
    it('has the steps it claims to cover', () => expect(keys).toHaveLength(10));
    for (const key of keys) {
      it(`crash at ${key}`, async () => {
        const ref = join(root, 'ref');
        await run(ref, { journalDir: join(root, 'ref-journal'), auditLog: undefined });
        const { 'a/restarts': restarts, ...want } = await snapshot(ref);
        expect(restarts).toBe('1');

        const dir = join(root, 'hosts');
        const crashed = await run(dir, {}, crashingAt(buildFlow(dir), key));
        expect(crashed.result.status).toBe('failed');
        expect(crashed.result.error?.message).toContain('simulated crash');

        const resumed = await run(dir, { resume: true });
        expect(resumed.result.status).toBe('ok');
        expect(resumed.result.runId).toBe(crashed.result.runId);
        expect(resumed.result.resumedFrom).toBe(key);
        const { 'a/restarts': n, ...got } = await snapshot(dir);
        expect(got).toEqual(want);
        // a restart cannot be observed: it runs once more when the crash hit it, else exactly once
        expect(n).toBe(key === 'restart@a' ? '2' : '1');
        // steps that finished before the crash are not applied again
        const before = crashed.result.steps.filter((s) => s.status === 'done').map((s) => s.key);
        for (const k of before) expect(resumed.result.steps.find((s) => s.key === k)?.status).toBe('skipped');
        // the journal tells the story: one run, a resume, an ok end
        const j = await readJournal(resumed.result.journal!);
        expect(j).toMatchObject({ runId: crashed.result.runId, status: 'ok', stoppedAt: undefined });
        // a third run with --resume has nothing to resume: a new run
        const third = await run(dir, { resume: true });
        expect(third.result.runId).not.toBe(crashed.result.runId);
      });
    }
  });

  it('SIGINT (abort) stops after the running step, records it, and --resume finishes the work', async () => {
    const dir = join(root, 'hosts');
    const ac = new AbortController();
    const flow = buildFlow(dir);
    const marker = flow.items[2] as Step;
    flow.items[2] = {
      ...marker,
      apply: async (ctx) => {
        ac.abort();
        await marker.apply(ctx);
      },
    };
    const first = await run(dir, { signal: ac.signal }, flow);
    expect(first.result.status).toBe('interrupted');
    expect(first.result.steps.map((s) => s.status)).toEqual(['done', 'done', 'done', ...Array(7).fill('not-run')]);
    const journal = await fs.readFile(first.result.journal!, 'utf8');
    expect(journal).toMatch(/"type":"interrupted"/);
    expect(journal).toMatch(/"status":"interrupted"/);
    const resumed = await run(dir, { resume: true });
    expect(resumed.result.status).toBe('ok');
    expect(resumed.result.steps.slice(0, 3).map((s) => s.status)).toEqual(['skipped', 'skipped', 'skipped']);
  });

  it('--dry-run changes nothing and gives the plan: steps per host, masked commands, unified diffs', async () => {
    const dir = join(root, 'hosts');
    await run(join(root, 'prep'), {}); // unrelated, to be sure the journal dir of a dry run is untouched below
    await fs.rm(join(root, 'journal'), { recursive: true });
    await fs.rm(join(root, 'audit.log'));
    for (const h of ['a', 'b', 'c', 'd']) await fs.mkdir(join(dir, h), { recursive: true });
    await fs.writeFile(join(dir, 'b/puppet.conf'), '[main]\nserver = old\n');
    const before = await snapshot(dir);
    const { result } = await run(dir, { dryRun: true });
    expect(await snapshot(dir)).toEqual(before);
    expect(await fs.stat(join(root, 'journal')).catch(() => undefined)).toBeUndefined();
    expect(await fs.stat(join(root, 'audit.log')).catch(() => undefined)).toBeUndefined();
    expect(result.status).toBe('ok');
    expect(result.dryRun).toBe(true);
    expect(result.steps.every((s) => s.status === 'planned')).toBe(true);
    // the second step's check saw the first step's planned content: its diff is against it
    const tuning = result.steps.find((s) => s.key === 'db-conf-tuning@a')!;
    expect(tuning.mutations).toHaveLength(1);
    expect(tuning.mutations[0]).toMatchObject({ kind: 'write', created: false });
    const plan = formatPlan(result);
    expect(plan).toContain('+maximum-pool-size = 10');
    expect(plan).toContain(`-server = old`);
    expect(plan).toContain('+ca_server = ca.example.com');
    expect(plan).toMatch(/\$ sh -c .* \*{8} /);
    expect(plan).not.toContain(SECRET);
    expect(JSON.stringify(result)).not.toContain(SECRET);
    for (const h of ['a', 'b', 'c', 'd']) expect(plan).toContain(`\n${h}\n`);
  });

  it('in a plan, a check that needs an earlier planned change is shown as to do (unpredictable); for real it fails', async () => {
    const p = join(root, 'made-by-step-1');
    const first = fileStep('make', 'a', () => p, 'x');
    const needs: Step = {
      id: 'needs',
      host: 'a',
      title: 'reads what step 1 makes through a command',
      check: async (ctx) => {
        const r = await ctx.host.exec(['cat', p], { readOnly: true });
        return { done: r.stdout === 'x', why: 'content' };
      },
      apply: async () => {},
    };
    const plan = await runFlow(
      { name: 'u', items: [first, needs] },
      { host: (n) => new LocalHost({ name: n }), dryRun: true },
    );
    expect(plan.status).toBe('ok');
    expect(plan.steps[1]).toMatchObject({
      status: 'planned',
      why: expect.stringMatching(/^cannot be checked before the planned changes are made \(.*cat/),
    });
    // the same check error without an earlier planned step is a real failure, also in a plan
    const alone = await runFlow(
      { name: 'u', items: [needs] },
      { host: (n) => new LocalHost({ name: n }), dryRun: true },
    );
    expect(alone.status).toBe('failed');
    expect(alone.error?.code).toBe('E_COMMAND_FAILED');
  });

  it('journal, audit log, events and errors carry no secrets; the audit log lists every mutation', async () => {
    const dir = join(root, 'hosts');
    const leaky: Step = {
      id: 'leaky',
      host: 'a',
      title: 'fails with the secret in its message',
      check: async () => ({ done: false, why: `password ${SECRET} not yet set` }),
      apply: async (ctx) => {
        await ctx.host.exec(['sh', '-c', 'echo "bad password $1" >&2; exit 3', 'sh', SECRET]);
      },
    };
    const flow = buildFlow(dir);
    flow.items.push(leaky);
    const { result, events } = await run(dir, {}, flow);
    expect(result.status).toBe('failed');
    expect(result.error?.code).toBe('E_COMMAND_FAILED');
    const journal = await fs.readFile(result.journal!, 'utf8');
    const audit = await fs.readFile(join(root, 'audit.log'), 'utf8');
    for (const blob of [journal, audit, JSON.stringify(events), JSON.stringify(result)]) {
      expect(blob).not.toContain(SECRET);
    }
    expect(journal).toContain('********');
    const lines = audit
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { kind: string; step: string; path?: string; argv?: string[]; code?: number });
    expect(lines.filter((l) => l.kind === 'write')).toHaveLength(1 + 1 + 3 * 2 + 1);
    expect(lines.filter((l) => l.kind === 'exec').map((l) => [l.step, l.code])).toEqual([
      ['marker', 0],
      ['leaky', 3],
    ]);
    expect(lines.find((l) => l.step === 'marker')?.argv).toContain('********');
    expect((await fs.stat(result.journal!)).mode & 0o077).toBe(0);
  });
});
