import { PeError, type PeErrorOptions } from '@pe-stack/pe-host';

/**
 * Errors of pe-mcollective and the codes it raises. Messages name files,
 * hosts and settings, never a value of a secret (psk, stomp password, private
 * key, credentials).
 */
/** The codes pe-mcollective raises: McoError's, and E_VERIFY (McoVerifyError). */
export type McoErrorCode = 'E_MCO_CONFIG' | 'E_MCO_INPUT' | 'E_MCO_CONSOLE' | 'E_MCO_COPY' | 'E_VERIFY';

export class McoError extends PeError<Exclude<McoErrorCode, 'E_VERIFY'>> {}

/** A verification found the cluster inconsistent; `problems` lists what (no secret values, no fingerprints). */
export class McoVerifyError extends PeError<'E_VERIFY'> {
  readonly problems: readonly string[];
  constructor(problems: readonly string[], opts: PeErrorOptions = {}) {
    super(
      'E_VERIFY',
      `MCollective is not consistent across the masters: ${problems.slice(0, 8).join('; ')}${problems.length > 8 ? ` (and ${problems.length - 8} more)` : ''}.`,
      {
        hint: 'Rerun the MCollective step of the join (it is idempotent), then verify again.',
        ...opts,
      },
    );
    this.problems = problems;
  }
}
