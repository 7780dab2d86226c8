import type { Lab, LabState } from './lab.js';

export async function setupDebian(_lab: Lab, _state: LabState, _log: (line: string) => void): Promise<void> {
  throw new Error('debian setup: being written');
}
