import { McoVerifyError } from './errors.js';

/** A verification's result: one line per check, no secret values, no fingerprints. */
export interface VerifyReport {
  ok: boolean;
  checks: { name: string; ok: boolean; detail: string }[];
  /** The failed checks as sentences. */
  problems: string[];
}

export function report(checks: VerifyReport['checks']): VerifyReport {
  const problems = checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`);
  return { ok: problems.length === 0, checks, problems };
}

/** Throw McoVerifyError when the report is not ok. */
export function assertMcoVerified(r: VerifyReport): VerifyReport {
  if (!r.ok) throw new McoVerifyError(r.problems);
  return r;
}
