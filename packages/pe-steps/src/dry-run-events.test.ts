import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalHost } from '@pe-stack/pe-host';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runFlow, type FlowEvent, type Step } from './index.js';

let root: string;
beforeEach(async () => {
  root = await fs.mkdtemp(join(tmpdir(), 'pe-dry-events-'));
});
afterEach(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

/** A file with this content; `reads` makes the check read the file with a command (fails while it is absent). */
function fileStep(id: string, path: string, opts: { reads?: boolean } = {}): Step {
  return {
    id,
    host: 'a',
    title: `write ${id}`,
    check: async (ctx) => {
      if (opts.reads) {
        const r = await ctx.host.exec(['cat', path], { readOnly: true });
        return { done: r.stdout === id, why: 'content' };
      }
      const cur = (await ctx.host.exists(path)) ? (await ctx.host.readFile(path)).toString() : undefined;
      return cur === id ? { done: true, why: 'as wanted' } : { done: false, why: 'missing' };
    },
    apply: async (ctx) => {
      await ctx.host.writeFile(path, id);
    },
  };
}

async function eventsOf(dryRun: boolean, steps: Step[]): Promise<FlowEvent[]> {
  const events: FlowEvent[] = [];
  await runFlow(
    { name: 'demo', items: steps },
    { host: (n) => new LocalHost({ name: n }), dryRun, onEvent: (e) => events.push(e) },
  );
  return events;
}

const perStep = (events: FlowEvent[]) =>
  events.filter((e) => 'key' in e && e.type !== 'step-start' && e.type !== 'step-check').map((e) => [e.type, e.id]);

describe('step events of a dry run', () => {
  it('a step only planned emits step-planned (with its changes), never step-done', async () => {
    const p = join(root, 'one');
    const planned = await eventsOf(true, [fileStep('one', p), fileStep('two', p, { reads: true })]);
    expect(perStep(planned)).toEqual([
      ['step-planned', 'one'],
      ['step-planned', 'two'],
    ]);
    expect(planned.find((e) => e.type === 'step-planned' && e.id === 'one')).toMatchObject({ changes: 1 });
    expect(await fs.stat(p).catch(() => undefined)).toBeUndefined();
  });

  it('a real run emits step-done, and a step done already step-skip, in a plan too', async () => {
    const p = join(root, 'one');
    expect(perStep(await eventsOf(false, [fileStep('one', p)]))).toEqual([['step-done', 'one']]);
    expect(perStep(await eventsOf(true, [fileStep('one', p)]))).toEqual([['step-skip', 'one']]);
  });
});
