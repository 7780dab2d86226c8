import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseInventory } from './index.js';

// The inventories the repository README shows an operator are valid inventories (the guide stays true).
const README = fileURLToPath(new URL('../../../README.md', import.meta.url));

describe('README inventory examples', () => {
  const blocks = [...readFileSync(README, 'utf8').matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
  it('shows one for each layout', () => {
    expect(blocks.map((b) => /^layout: (\S+)/m.exec(b)?.[1]).sort()).toEqual(['debian', 'pe3']);
  });
  it.each(blocks.map((b, i) => [i, b] as const))('example %i parses and validates', (_i, text) => {
    const inv = parseInventory(text, '/work/README-example.yaml');
    expect(inv.masters.filter((m) => m.role === 'primary')).toHaveLength(1);
    expect(inv.masters.length).toBeGreaterThanOrEqual(2);
  });
});
