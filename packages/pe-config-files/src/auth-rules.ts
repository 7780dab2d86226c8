import { isPlainObject, sameJson } from './json.js';

/**
 * Puppet's auth.conf rules (trapperkeeper-authorization, `authorization.rules`
 * in HOCON): which rules guard the CA admin endpoints, how pe-stack writes a
 * rule, and how a written rule compares with a parsed one. The HOCON editor
 * (hocon.ts) does the splicing; this file knows what the rules mean.
 */

/** One tk-auth rule of puppetserver's auth.conf, as pe-stack writes them. */
export interface AuthRule {
  name: string;
  match: { path: string; type: 'path' | 'regex'; method?: readonly string[] };
  allow?: string | readonly string[];
  deny?: string | readonly string[];
  allowUnauthenticated?: boolean;
  sortOrder: number;
}

/** Which rules an `auth-allow` edit extends: the CA admin rules, or rules by name. */
export type AuthRuleSelection = 'ca-admin' | readonly string[];

/** True for an auth.conf rule that guards the CA admin endpoints: its allow requires the pp_cli_auth extension. */
export function isCaAdminRule(rule: unknown): boolean {
  if (!isPlainObject(rule)) return false;
  const allow = rule['allow'];
  const list = Array.isArray(allow) ? allow : [allow];
  return list.some((a) => isPlainObject(a) && isPlainObject(a['extensions']) && 'pp_cli_auth' in a['extensions']);
}

/** Indexes of the parsed rules the selection names, in list order. */
export function selectedRuleIndexes(rules: readonly unknown[], selection: AuthRuleSelection): number[] {
  const wanted = (rule: unknown): boolean =>
    selection === 'ca-admin'
      ? isCaAdminRule(rule)
      : isPlainObject(rule) && typeof rule['name'] === 'string' && selection.includes(rule['name']);
  return rules.map((r, i) => (wanted(r) ? i : -1)).filter((i) => i >= 0);
}

/** Why a selection matched nothing, for the editor's error. */
export function noRuleSelected(selection: AuthRuleSelection): string {
  return selection === 'ca-admin' ? 'no rule requires pp_cli_auth.' : `no rule named ${selection.join(', ')}.`;
}

/** Index of the first parsed rule named `name`, or -1. */
export function ruleIndex(rules: readonly unknown[], name: string): number {
  return rules.findIndex((r) => isPlainObject(r) && r['name'] === name);
}

/** True when a parsed rule is exactly `rule` as pe-stack writes it. */
export function isSameRule(parsed: unknown, rule: AuthRule): boolean {
  return sameJson(parsed, authRuleValue(rule));
}

/** The rule as the parsed document holds it (for comparison). */
function authRuleValue(r: AuthRule): Record<string, unknown> {
  const match: Record<string, unknown> = { path: r.match.path, type: r.match.type };
  if (r.match.method) match['method'] = [...r.match.method];
  const v: Record<string, unknown> = { 'match-request': match };
  if (r.allow !== undefined) v['allow'] = typeof r.allow === 'string' ? r.allow : [...r.allow];
  if (r.deny !== undefined) v['deny'] = typeof r.deny === 'string' ? r.deny : [...r.deny];
  if (r.allowUnauthenticated !== undefined) v['allow-unauthenticated'] = r.allowUnauthenticated;
  v['sort-order'] = r.sortOrder;
  v['name'] = r.name;
  return v;
}

/** The rule as HOCON text: an object whose first line starts at the cursor, later lines indented by `indent`. */
export function renderAuthRule(r: AuthRule, indent: string, eol: string): string {
  const i1 = `${indent}    `;
  const i2 = `${i1}    `;
  const list = (x: string | readonly string[]) =>
    typeof x === 'string' ? JSON.stringify(x) : `[${x.map((y) => JSON.stringify(y)).join(', ')}]`;
  const lines = [
    '{',
    `${i1}match-request: {`,
    `${i2}path: ${JSON.stringify(r.match.path)}`,
    `${i2}type: ${r.match.type}`,
  ];
  if (r.match.method) lines.push(`${i2}method: ${list(r.match.method)}`);
  lines.push(`${i1}}`);
  if (r.allow !== undefined) lines.push(`${i1}allow: ${list(r.allow)}`);
  if (r.deny !== undefined) lines.push(`${i1}deny: ${list(r.deny)}`);
  if (r.allowUnauthenticated !== undefined) lines.push(`${i1}allow-unauthenticated: ${r.allowUnauthenticated}`);
  lines.push(`${i1}sort-order: ${r.sortOrder}`, `${i1}name: ${JSON.stringify(r.name)}`, `${indent}}`);
  return lines.join(eol);
}
