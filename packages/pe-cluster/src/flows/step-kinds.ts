import type { Step, StepContext, StepGroup } from '@pe-stack/pe-steps';

/** Lanes that run in parallel (one host each, usually); the steps of a lane run in order. */
export function group(name: string, lanes: Step[][]): StepGroup {
  return { group: name, lanes };
}

/** A step that runs only when this run changed the host (restarts, validations), and once per run. */
export function afterChanges(
  id: string,
  host: string,
  title: string,
  apply: (ctx: StepContext) => Promise<void>,
): Step {
  return {
    id,
    host,
    title,
    verify: false,
    check: async (ctx) => {
      if (ctx.completedEarlier) return { done: true, why: 'done earlier in this run' };
      if (!ctx.changedInRun(host)) return { done: true, why: 'nothing changed on the host in this run' };
      return { done: false, why: 'the host changed in this run' };
    },
    apply,
  };
}
