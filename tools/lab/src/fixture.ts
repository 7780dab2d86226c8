import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Lab } from './lab.js';
import { fixtureKeyFile } from './paths.js';
import type { LabState, UpOptions } from './types.js';

/**
 * Shared lab for the `lab` test suite: brings a profile up once per run and
 * reuses it from every test file that asks for the same profile and hosts
 * (the lab's state lives on disk, so reuse works across test files). Asking for
 * another profile takes the current lab down first. The suite's globalSetup
 * takes whatever is up down at the end.
 */
export async function useLab(opts: Omit<UpOptions, 'log'>): Promise<{ lab: Lab; state: LabState }> {
  const lab = new Lab();
  lab.assertInController();
  const cur = lab.state();
  const want = JSON.stringify({
    p: opts.profile,
    h: opts.hosts ?? null,
    a: opts.agents ?? null,
    m: !!opts.withMcollective,
  });
  if (cur && cur.phase === 'up' && readKey(lab) === want) {
    const st = await lab.status();
    // a test may have powered hosts off or cut them: bring them back
    for (const h of st.hosts) {
      if (h.power === 'off') await lab.powerOn(h.name);
      if (h.link === 'down') await lab.heal(h.name);
    }
    return { lab, state: cur };
  }
  await lab.down();
  const state = await lab.up({ ...opts, log: (l) => process.stderr.write(`lab: ${l}\n`) });
  writeKey(lab, want);
  return { lab, state };
}

/**
 * A test that leaves the shared lab changed in a way the next test file must
 * not inherit (a failover, a power cut) calls this: the next `useLab` brings
 * a fresh lab up, whatever it asks for.
 */
export function markLabDirty(lab: Lab): void {
  rmSync(fixtureKeyFile(lab.config), { force: true });
}

function readKey(lab: Lab): string | undefined {
  try {
    return readFileSync(fixtureKeyFile(lab.config), 'utf8');
  } catch {
    return undefined;
  }
}
function writeKey(lab: Lab, key: string): void {
  writeFileSync(fixtureKeyFile(lab.config), key);
}
