import { describe, expect, it } from 'vitest';
import { pollUntil } from './poll.js';

describe('pollUntil', () => {
  it('returns the first value other than false, after as many attempts as it took', async () => {
    let n = 0;
    const r = await pollUntil(async () => (++n >= 3 ? `after ${n}` : false), { timeoutMs: 5_000, intervalMs: 1 });
    expect(r).toMatchObject({ ok: true, value: 'after 3', attempts: 3 });
  });

  it('an undefined value ends the wait too (only false means "not yet")', async () => {
    const r = await pollUntil(async () => undefined, { timeoutMs: 1_000, intervalMs: 1 });
    expect(r).toMatchObject({ ok: true, value: undefined, attempts: 1 });
  });

  it('gives up after timeoutMs; a zero timeout makes one attempt', async () => {
    const r = await pollUntil(async () => false, { timeoutMs: 50, intervalMs: 10 });
    expect(r.ok).toBe(false);
    expect(r.ms).toBeGreaterThanOrEqual(50);
    expect((await pollUntil(async () => false, { timeoutMs: 0, intervalMs: 10 })).attempts).toBe(1);
  });

  it('an error ends the wait unless retryErrors, which keeps the last error for the caller', async () => {
    const boom = async (): Promise<boolean> => {
      throw new Error('not yet');
    };
    await expect(pollUntil(boom, { timeoutMs: 1_000, intervalMs: 1 })).rejects.toThrow('not yet');
    const r = await pollUntil(boom, { timeoutMs: 20, intervalMs: 5, retryErrors: true });
    expect(r.ok).toBe(false);
    expect(!r.ok && (r.lastError as Error).message).toBe('not yet');
    expect(r.attempts).toBeGreaterThan(1);
  });

  it('stops waiting when the signal aborts', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 20);
    const t0 = Date.now();
    const r = await pollUntil(async () => false, { timeoutMs: 60_000, intervalMs: 10_000, signal: ac.signal });
    expect(r).toMatchObject({ ok: false, aborted: true });
    expect(Date.now() - t0).toBeLessThan(5_000);
  });
});
