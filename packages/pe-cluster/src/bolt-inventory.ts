import type { BoltGroupInput, BoltInventoryInput, BoltTargetInput } from './inventory-schema.js';
import type { KeyPath } from './yaml-source.js';

/**
 * Bolt inventory v2 group and target resolution, after Bolt's own
 * (lib/bolt/inventory/group.rb and inventory.rb):
 * - the top level is the implicit group `all`;
 * - group names and aliases match `[a-z0-9_][a-z0-9_-]*`; group names, target
 *   names and aliases share one namespace (a clash is an error, `all` included);
 * - a string in `targets` names a target defined elsewhere, else an alias of
 *   one, else it is a new target whose uri is the string;
 * - a target defined twice in one group: the first definition counts;
 * - data of a group applies to every target beneath it; a child group wins
 *   over its parent; among sibling groups the earlier one wins; the target's
 *   own data (its definitions, same order) wins over every group's;
 * - `config` is deep-merged, `vars` are merged key by key (a var's value is
 *   replaced, not merged).
 */

/** Bolt's NAME_REGEX for group names and target aliases. */
export const BOLT_NAME = /^[a-z0-9_][a-z0-9_-]*$/;

/** One layer of config and vars: a group's, or one definition of a target. */
export interface BoltLayer {
  config?: Record<string, unknown> | undefined;
  vars?: Record<string, unknown> | undefined;
  path: KeyPath;
}

/** A target with its layers, lowest priority first (its groups', then its own definitions'). */
export interface BoltTarget {
  name: string;
  uri: string | undefined;
  /** Where the uri was given (a definition's `uri` key, or the string entry that made the target). */
  uriPath: KeyPath | undefined;
  /** Where the target is first defined (an object entry), else first mentioned. */
  path: KeyPath;
  layers: BoltLayer[];
}

export interface BoltIssue {
  path: KeyPath;
  message: string;
}

type TargetObject = Exclude<BoltTargetInput, string>;

/** A target in a group: its definition (none for a reference by name), where, and whether a bare string made it. */
interface Member {
  def: TargetObject | undefined;
  path: KeyPath;
  fromString: boolean;
}

/** One group's members: definitions by target name (first wins), string entries resolved later. */
interface GroupNode {
  name: string;
  path: KeyPath;
  data: BoltLayer;
  members: Map<string, Member>;
  strings: { ref: string; path: KeyPath }[];
  aliases: Map<string, { target: string; path: KeyPath }>;
  children: GroupNode[];
}

export interface BoltResolution {
  targets: BoltTarget[];
  issues: BoltIssue[];
  warnings: BoltIssue[];
}

/** Resolve every target of a (schema-checked) Bolt inventory. */
export function resolveBolt(data: BoltInventoryInput): BoltResolution {
  const r = new Resolver();
  const all = r.group(
    { name: 'all', targets: data.targets, groups: data.groups, config: data.config, vars: data.vars },
    [],
  );
  if (r.issues.length) return { targets: [], issues: r.issues, warnings: r.warnings };
  const aliases = new Map<string, string>();
  const known = new Set<string>();
  forEachGroup(all, (g) => {
    for (const [a, { target }] of g.aliases) aliases.set(a, target);
    for (const name of g.members.keys()) known.add(name);
  });
  forEachGroup(all, (g) => r.resolveStrings(g, aliases, known));
  r.validate(all);
  if (r.issues.length) return { targets: [], issues: r.issues, warnings: r.warnings };
  return { targets: r.targets(all), issues: r.issues, warnings: r.warnings };
}

function forEachGroup(g: GroupNode, fn: (g: GroupNode) => void): void {
  fn(g);
  for (const c of g.children) forEachGroup(c, fn);
}

class Resolver {
  readonly issues: BoltIssue[] = [];
  readonly warnings: BoltIssue[] = [];

  group(input: BoltGroupInput, path: KeyPath): GroupNode {
    const node: GroupNode = {
      name: input.name,
      path,
      data: { config: input.config as Record<string, unknown> | undefined, vars: input.vars, path },
      members: new Map(),
      strings: [],
      aliases: new Map(),
      children: [],
    };
    (input.targets ?? []).forEach((t, i) => this.member(node, t, [...path, 'targets', i]));
    node.children = (input.groups ?? []).map((g, i) => this.group(g, [...path, 'groups', i]));
    return node;
  }

  private member(g: GroupNode, t: BoltTargetInput, path: KeyPath): void {
    if (typeof t === 'string') {
      g.strings.push({ ref: t, path });
      return;
    }
    const name = t.name ?? t.uri;
    if (!name) return void this.issues.push({ path, message: 'has neither uri nor name; expected at least one' });
    if (g.members.has(name)) {
      this.warnings.push({ path, message: `target ${name} is defined twice in one group; Bolt ignores this one` });
      return;
    }
    g.members.set(name, { def: t, path, fromString: false });
    const list = t.alias === undefined ? [] : Array.isArray(t.alias) ? t.alias : [t.alias];
    list.forEach((a, i) => {
      const at = Array.isArray(t.alias) ? [...path, 'alias', i] : [...path, 'alias'];
      if (!BOLT_NAME.test(a))
        this.issues.push({
          path: at,
          message: `${JSON.stringify(a)} is not a Bolt alias; expected lower-case letters, digits, underscores and hyphens, not starting with a hyphen`,
        });
      else if (g.aliases.has(a) && g.aliases.get(a)!.target !== name)
        this.issues.push({
          path: at,
          message: `alias ${a} refers to two targets: ${g.aliases.get(a)!.target} and ${name}`,
        });
      else g.aliases.set(a, { target: name, path: at });
    });
  }

  /** Bolt's resolve_string_targets: a known name, else an alias, else a new target with the string as uri. */
  resolveStrings(g: GroupNode, aliases: Map<string, string>, known: Set<string>): void {
    for (const { ref, path } of g.strings) {
      const name = known.has(ref) ? ref : (aliases.get(ref) ?? ref);
      if (g.members.has(name)) continue;
      const def = known.has(name) ? undefined : { uri: ref };
      g.members.set(name, { def, path, fromString: true });
    }
  }

  /** Bolt's Group#validate: one namespace for groups, targets and aliases, walked in file order. */
  validate(
    g: GroupNode,
    used = { groups: new Set<string>(), targets: new Set<string>(), aliases: new Map<string, string>() },
  ): void {
    const at = g.path.length ? [...g.path, 'name'] : [];
    if (used.groups.has(g.name))
      this.issues.push({ path: at, message: `group ${g.name} is defined twice; expected unique group names` });
    else if (used.targets.has(g.name))
      this.issues.push({ path: at, message: `group ${g.name} has the name of a target; expected distinct names` });
    else if (used.aliases.has(g.name))
      this.issues.push({ path: at, message: `group ${g.name} has the name of an alias; expected distinct names` });
    used.groups.add(g.name);
    for (const [name, { path }] of g.members) {
      if (used.groups.has(name))
        this.issues.push({ path, message: `target ${name} has the name of a group; expected distinct names` });
      else if (used.aliases.has(name))
        this.issues.push({ path, message: `target ${name} has the name of an alias; expected distinct names` });
      used.targets.add(name);
    }
    for (const [a, { target, path }] of g.aliases) {
      const other = used.aliases.get(a);
      if (used.groups.has(a))
        this.issues.push({ path, message: `alias ${a} is also a group name; expected distinct names` });
      else if (used.targets.has(a))
        this.issues.push({ path, message: `alias ${a} is also a target name; expected distinct names` });
      else if (other !== undefined && other !== target)
        this.issues.push({ path, message: `alias ${a} refers to two targets: ${other} and ${target}` });
      used.aliases.set(a, target);
    }
    for (const c of g.children) this.validate(c, used);
  }

  targets(all: GroupNode): BoltTarget[] {
    const names: string[] = [];
    forEachGroup(all, (g) => {
      for (const n of g.members.keys()) if (!names.includes(n)) names.push(n);
    });
    return names.flatMap((n) => this.target(all, n) ?? []);
  }

  private target(all: GroupNode, name: string): BoltTarget | undefined {
    const mentions: Member[] = [];
    forEachGroup(all, (g) => {
      const m = g.members.get(name);
      if (m) mentions.push(m);
    });
    const uris = mentions.filter((m) => m.def?.uri !== undefined);
    const distinct = [...new Set(uris.map((m) => m.def!.uri))];
    const first = uris[0];
    if (distinct.length > 1) {
      this.issues.push({
        path: [...uris[1]!.path, 'uri'],
        message: `target ${name} is defined with two uris (${JSON.stringify(distinct[0])} at ${pathText(first!.path)}); expected one`,
      });
      return undefined;
    }
    const defined = mentions.find((m) => m.def && !m.fromString) ?? mentions[0]!;
    return {
      name,
      uri: first?.def!.uri,
      uriPath: first ? (first.fromString ? first.path : [...first.path, 'uri']) : undefined,
      path: defined.path,
      layers: [...groupLayers(all, name)!, ...targetLayers(all, name)],
    };
  }
}

function pathText(p: KeyPath): string {
  return p
    .map((s) => (typeof s === 'number' ? `[${s}]` : `.${s}`))
    .join('')
    .replace(/^\./, '');
}

/** Bolt's group_collect as a list, lowest priority first: the group, then its children, later ones first. */
function groupLayers(g: GroupNode, name: string): BoltLayer[] | undefined {
  const kids = g.children.map((c) => groupLayers(c, name)).filter((k) => k !== undefined);
  if (!kids.length && !g.members.has(name)) return undefined;
  return [g.data, ...kids.reverse().flat()];
}

/** Bolt's target_collect as a list: this group's definition, then its children's, later ones first. */
function targetLayers(g: GroupNode, name: string): BoltLayer[] {
  const kids = g.children.map((c) => targetLayers(c, name));
  const m = g.members.get(name);
  const own = m?.def
    ? [{ config: m.def.config as Record<string, unknown> | undefined, vars: m.def.vars, path: m.path }]
    : [];
  return [...own, ...kids.reverse().flat()];
}
