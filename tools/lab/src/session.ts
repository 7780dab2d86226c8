import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { LabConfig } from './config.js';
import { LabError } from './errors.js';
import { sessionLockFile } from './paths.js';
import { homePid, sleep } from './sys.js';

/** One user at a time: the `lab run` session that holds the lab, by a PID in a lock file. */

/** PID of the live `lab run` that holds the lab, if any. */
export function sessionHolder(c: LabConfig): number | undefined {
  try {
    const pid = Number(readFileSync(sessionLockFile(c), 'utf8').trim());
    return pid > 0 && existsSync(`/proc/${pid}`) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Takes the lab for one `lab run` session: several test runs on one machine
 * would otherwise take each other's lab down. Waits while another live
 * session holds it; a lock left by a dead process is taken over.
 */
export async function acquireSession(
  c: LabConfig,
  opts: { waitMs?: number; log?: (l: string) => void } = {},
): Promise<() => void> {
  mkdirSync(c.stateDir, { recursive: true });
  const end = Date.now() + (opts.waitMs ?? 60 * 60_000);
  let told = false;
  while (true) {
    try {
      writeFileSync(sessionLockFile(c), `${process.pid}\n`, { flag: 'wx' });
      return () => {
        if (sessionHolder(c) === process.pid) rmSync(sessionLockFile(c), { force: true });
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const holder = sessionHolder(c);
    if (holder === undefined) {
      rmSync(sessionLockFile(c), { force: true });
      continue;
    }
    if (Date.now() > end)
      throw new LabError('E_LAB_BUSY', `the lab is in use by \`lab run\` (PID ${holder}).`, {
        hint: 'Wait for it to finish.',
      });
    if (!told) opts.log?.(`the lab is in use by \`lab run\` (PID ${holder}); waiting for it`);
    told = true;
    await sleep(1000);
  }
}

/** Refuses to change the lab while another `lab run` session holds it. */
export function assertMaySession(c: LabConfig): void {
  const holder = sessionHolder(c);
  if (holder !== undefined && holder !== process.pid && holder !== homePid()) {
    throw new LabError(
      'E_LAB_BUSY',
      `the lab is in use by \`lab run\` (PID ${holder}); it must not be changed under that session.`,
      {
        hint: 'Wait for it to finish, or run your command through `npm run lab -- run -- ...`, which waits its turn.',
      },
    );
  }
}
