import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { EXIT, EXIT_BY_CODE, exitCodeForCode } from './exit-codes.js';

const README = readFileSync(fileURLToPath(new URL('../README.md', import.meta.url)), 'utf8');

/** The rows of the README's code table: `| \`E_X\` | 6 | ... |`. */
function documented(): Map<string, number> {
  const rows = [...README.matchAll(/^\| `(E_[A-Z0-9_]+)` \| (\d+) \|/gm)];
  return new Map(rows.map((m) => [m[1]!, Number(m[2])]));
}

describe('exit codes', () => {
  it('the README documents every code with the exit status the CLI uses, and no other code', () => {
    expect(Object.fromEntries(documented())).toEqual({ ...EXIT_BY_CODE });
  });

  it('every status a code maps to is in the README status table', () => {
    const statuses = new Set([...README.matchAll(/^\| (\d+) \| /gm)].map((m) => Number(m[1])));
    for (const status of Object.values(EXIT)) expect(statuses).toContain(status);
  });

  it('a code no package declares counts as a failure on a host', () => {
    expect(exitCodeForCode('E_SOMETHING_NEW')).toBe(EXIT.COMMAND_FAILED);
    expect(exitCodeForCode('toString')).toBe(EXIT.COMMAND_FAILED);
    expect(exitCodeForCode('E_USAGE')).toBe(EXIT.BAD_INPUT);
  });
});
