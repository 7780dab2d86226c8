import { readFileSync, writeFileSync } from 'node:fs';
import { Lab } from './lab.js';
import { fixtureKeyFile } from './paths.js';
import type { LabState, UpOptions } from './types.js';

/** What a freshly brought-up lab is: every master standalone, nothing joined. */
export const FRESH_STAGE = 'installed';

/** The shapes the lab suite's chains share (vitest.config.ts, labOrder). */
export const LAB_SHAPES = {
  /** The cluster: three masters and an agent (the lab's own checks, join, what needs a joined cluster, failover). */
  debianTrio: { profile: 'debian', hosts: ['primary', 'secondary1', 'secondary2'], agents: 1 },
  /** Two masters, an agent and MCollective (certificates, the broker mesh, the database's failover). */
  debianPairWithMcollective: { profile: 'debian', hosts: ['primary', 'secondary1'], agents: 1, withMcollective: true },
} as const satisfies Record<string, Omit<UpOptions, 'log'>>;

export interface UseLabOptions {
  /** Stages a file can start from (default: only a fresh lab). */
  accepts?: readonly string[];
}

/** The subset of a vitest suite `leaveLab` reads: whether any test in it failed. */
export interface FinishedSuite {
  tasks?: readonly FinishedSuite[];
  result?: { state?: string } | undefined;
}

interface FixtureKey {
  shape: string;
  stage: string;
}

/**
 * Shared lab for the `lab` test suite. A lab is brought up once and handed
 * from test file to test file while each leaves it in a stage the next one
 * accepts: a file names the stages it can start from (`accepts`, default a
 * fresh lab) and, when all its tests passed, the stage it leaves
 * (`leaveLab`). A file that leaves nothing, fails, or crashes leaves the lab
 * claimed, so the next file brings a fresh one up. The run's order of files
 * (vitest.config.ts, labOrder) makes the chains. The suite's globalSetup takes
 * whatever is up down at the end.
 */
export async function useLab(
  opts: Omit<UpOptions, 'log'>,
  use: UseLabOptions = {},
): Promise<{ lab: Lab; state: LabState }> {
  const lab = new Lab();
  lab.assertInController();
  const cur = lab.state();
  const shape = shapeOf(opts);
  const key = readKey(lab);
  const accepts = use.accepts ?? [FRESH_STAGE];
  if (cur && cur.phase === 'up' && key?.shape === shape && accepts.includes(key.stage)) {
    writeKey(lab, { shape, stage: 'claimed' });
    await powerEverythingOn(lab);
    return { lab, state: cur };
  }
  await lab.down();
  const state = await lab.up({ ...opts, log: (l) => process.stderr.write(`lab: ${l}\n`) });
  writeKey(lab, { shape, stage: 'claimed' });
  return { lab, state };
}

/**
 * Called from a file's afterAll with the vitest suite: hands the lab on in
 * `stage` when every test passed; otherwise it stays claimed (fresh next time).
 */
export function leaveLab(lab: Lab, stage: string, suite?: FinishedSuite): void {
  if (suite && anyFailed(suite)) return;
  const key = readKey(lab);
  if (key) writeKey(lab, { shape: key.shape, stage });
}

function anyFailed(suite: FinishedSuite): boolean {
  if (suite.result?.state === 'fail') return true;
  return (suite.tasks ?? []).some(anyFailed);
}

/** A test may have powered hosts off or cut them: bring them back. */
async function powerEverythingOn(lab: Lab): Promise<void> {
  const st = await lab.status();
  for (const h of st.hosts) {
    if (h.power === 'off') await lab.powerOn(h.name);
    if (h.link === 'down') await lab.heal(h.name);
  }
}

function shapeOf(opts: Omit<UpOptions, 'log'>): string {
  return JSON.stringify({
    p: opts.profile,
    h: opts.hosts ?? null,
    a: opts.agents ?? null,
    m: !!opts.withMcollective,
  });
}

function readKey(lab: Lab): FixtureKey | undefined {
  try {
    const key = JSON.parse(readFileSync(fixtureKeyFile(lab.config), 'utf8')) as Partial<FixtureKey>;
    return typeof key.shape === 'string' && typeof key.stage === 'string'
      ? { shape: key.shape, stage: key.stage }
      : undefined;
  } catch {
    return undefined;
  }
}

function writeKey(lab: Lab, key: FixtureKey): void {
  writeFileSync(fixtureKeyFile(lab.config), JSON.stringify(key));
}
