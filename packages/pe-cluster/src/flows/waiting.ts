/** Calls `fn` until it answers anything but false (true, or undefined: cannot tell) or the time is up; returns its last answer. */
export async function pollUntil(
  fn: () => Promise<boolean | undefined>,
  timeoutMs: number,
  intervalMs = 500,
): Promise<boolean | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== false || Date.now() >= deadline) return v;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
