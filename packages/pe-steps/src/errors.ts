import { PeError } from '@pe-stack/pe-host';

/** A step's apply returned but its check still says "to do": the change did not take. */
export class StepVerifyError extends PeError {
  constructor(host: string, step: string, why: string) {
    super('E_VERIFY', `step ${step} was applied but its check still says it is not done (${why}).`, {
      host,
      step,
      hint: 'Look at the host; the journal and audit log show what was changed.',
    });
  }
}

/** The run was interrupted (SIGINT or an abort signal); steps not started are listed in the result. */
export class InterruptedError extends PeError {
  constructor(detail: string) {
    super('E_INTERRUPTED', detail, { hint: 'Rerun the same command with --resume to continue.' });
  }
}
