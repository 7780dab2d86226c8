import { LabError } from './errors.js';
import { namespaceInit, pidsInNetns, sleep } from './sys.js';

export function killPid(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** Kills every process in a network namespace and waits until none is left. */
export async function killNetns(ns: string): Promise<number> {
  let killed = 0;
  const deadline = Date.now() + 15_000;
  // Namespace inits first, so their parents (unshare) reap them instead of leaving zombies.
  const inits = pidsInNetns(ns).filter((p) => namespaceInit([p]) === p);
  for (const p of inits) killPid(p);
  for (let i = 0; i < 40 && inits.some((p) => pidsInNetns(ns).includes(p)); i++) await sleep(25);
  while (true) {
    const pids = pidsInNetns(ns).filter((p) => p !== process.pid);
    if (pids.length === 0) return killed;
    if (Date.now() > deadline)
      throw new LabError('E_LAB_COMMAND', `processes ${pids.join(', ')} in ${ns} survive SIGKILL.`);
    for (const p of pids) killPid(p);
    killed += pids.length;
    await sleep(50);
  }
}
