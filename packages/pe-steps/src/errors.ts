import { PeError } from '@pe-stack/pe-host';

/** The codes pe-steps raises (E_INTERNAL: a flow that lists a step twice). */
export type StepsErrorCode = 'E_VERIFY' | 'E_INTERRUPTED' | 'E_INTERNAL';

/** Base of pe-steps' errors. */
export class StepsError extends PeError<StepsErrorCode> {}

/** A step's apply returned but its check still says "to do": the change did not take. */
export class StepVerifyError extends StepsError {
  constructor(host: string, step: string, why: string) {
    super('E_VERIFY', `step ${step} was applied but its check still says it is not done (${why}).`, {
      host,
      step,
      hint: 'Look at the host; the journal and audit log show what was changed.',
    });
  }
}

/** The run was interrupted (SIGINT or an abort signal); steps not started are listed in the result. */
export class InterruptedError extends StepsError {
  constructor(detail: string) {
    super('E_INTERRUPTED', detail, { hint: 'Rerun the same command with --resume to continue.' });
  }
}
