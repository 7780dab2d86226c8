import type { Mutation } from '@pe-stack/pe-host';
import type { RunResult } from './types.js';

function mutationText(m: Mutation, stepHost: string): string {
  const on = m.host !== stepHost ? ` [on ${m.host}]` : '';
  switch (m.kind) {
    case 'exec':
      return `    $ ${m.sudo ? 'sudo ' : ''}${m.argv.join(' ')}${on}\n`;
    case 'write':
      return `    ${m.created ? 'create' : 'edit'} ${m.path}${on}${m.mode !== undefined ? ` (mode ${m.mode.toString(8)})` : ''}\n${m.diff
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => `      ${l}`)
        .join('\n')}\n`;
    case 'remove':
      return `    remove ${m.path}${m.recursive ? ' (recursive)' : ''}${on}\n`;
    case 'mkdir':
      return `    mkdir ${m.path}${on}\n`;
  }
}

/** The human plan of a dry run: per host, each step (to do / done) with its masked commands and unified diffs. */
export function formatPlan(r: RunResult): string {
  const hosts = [...new Set(r.steps.map((s) => s.host))];
  let out = `Plan for ${r.flow} (${r.steps.filter((s) => s.status === 'planned').length} of ${r.steps.length} steps to do; nothing was changed)\n`;
  for (const h of hosts) {
    out += `\n${h}\n`;
    for (const s of r.steps.filter((x) => x.host === h)) {
      const tag =
        s.status === 'planned'
          ? 'to do'
          : s.status === 'skipped'
            ? 'done '
            : s.status === 'failed'
              ? 'FAIL '
              : 'not run';
      out += `  [${tag}] ${s.id}: ${s.title}${s.why ? ` (${s.why})` : ''}\n`;
      if (s.error) out += `    ${s.error.code}: ${s.error.message}\n`;
      for (const m of s.mutations) out += mutationText(m, s.host);
    }
  }
  return out;
}
