import { Lab } from './lab.js';

/** vitest globalSetup of the `lab` project: refuse to run outside the controller; take the lab down at the end. */
export function setup(): void {
  new Lab().assertInController();
}

export async function teardown(): Promise<void> {
  await new Lab().down();
}
