import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { LabConfig } from './config.js';
import { LabError } from './errors.js';
import { stateFile } from './paths.js';
import type { HostRecord, LabState } from './types.js';

/** The lab's state file (lab.json): profile, phase and hosts; absent when no lab is up. */
export function readState(c: LabConfig): LabState | undefined {
  try {
    return JSON.parse(readFileSync(stateFile(c), 'utf8')) as LabState;
  } catch {
    return undefined;
  }
}

export function saveState(c: LabConfig, s: LabState): void {
  mkdirSync(c.stateDir, { recursive: true });
  writeFileSync(stateFile(c), `${JSON.stringify(s, null, 2)}\n`);
}

export function requireState(c: LabConfig): LabState {
  const s = readState(c);
  if (!s)
    throw new LabError('E_LAB_NOT_UP', 'the lab is not up.', {
      hint: 'Bring it up with `npm run lab -- up --profile light`.',
    });
  return s;
}

/** A host of the lab by short name or FQDN. */
export function findHost(c: LabConfig, name: string): HostRecord {
  const s = requireState(c);
  const h = s.hosts.find((x) => x.name === name || x.fqdn === name);
  if (!h) {
    throw new LabError('E_LAB_UNKNOWN_HOST', `no host "${name}" in the lab.`, {
      hint: `The lab's hosts are: ${s.hosts.map((x) => x.name).join(', ')}.`,
    });
  }
  return h;
}
