export interface PollOptions {
  /** Give up once this long has passed since the first attempt (0: one attempt). */
  timeoutMs: number;
  /** Pause between two attempts. */
  intervalMs: number;
  /** Stop waiting at once when aborted (the result is then not ok, `aborted` set). */
  signal?: AbortSignal | undefined;
  /**
   * An attempt that throws counts as "not yet" and the wait goes on (its
   * error is the result's `lastError` if no later attempt succeeds). Without
   * it the error ends the wait and is thrown.
   */
  retryErrors?: boolean;
}

export type PollResult<T> =
  | { ok: true; value: T; ms: number; attempts: number }
  | { ok: false; ms: number; attempts: number; lastError?: unknown; aborted?: boolean };

/**
 * Calls `attempt` until it returns something other than `false` (that value
 * is the result), or the time is up, or `signal` aborts. The first attempt
 * runs at once; the last one starts before the deadline.
 */
export async function pollUntil<T>(attempt: () => Promise<T | false>, opts: PollOptions): Promise<PollResult<T>> {
  const t0 = performance.now();
  const elapsed = () => performance.now() - t0;
  let attempts = 0;
  let lastError: unknown;
  for (;;) {
    if (opts.signal?.aborted) return { ok: false, ms: elapsed(), attempts, aborted: true };
    attempts++;
    let value: T | false = false;
    try {
      value = await attempt();
    } catch (e) {
      if (!opts.retryErrors) throw e;
      lastError = e;
    }
    if (value !== false) return { ok: true, value, ms: elapsed(), attempts };
    if (elapsed() >= opts.timeoutMs)
      return { ok: false, ms: elapsed(), attempts, ...(lastError === undefined ? {} : { lastError }) };
    await pause(opts.intervalMs, opts.signal);
  }
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
