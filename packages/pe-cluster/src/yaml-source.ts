import {
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  parseDocument,
  visit,
  type Alias,
  type Document,
  type Node,
} from 'yaml';
import type { InventoryIssue } from './errors.js';

export type KeyPath = readonly (string | number)[];

/** Alias expansions allowed when reading a document (an inventory needs a handful, if any). */
export const MAX_ALIASES = 100;
/** Nesting allowed (a Bolt inventory with groups in groups stays far below). */
export const MAX_DEPTH = 64;

/** The key path of the last node of a `visit` chain (document, collections, pairs, node). */
function keyPathOf(chain: readonly unknown[]): KeyPath {
  const out: (string | number)[] = [];
  for (let i = 0; i < chain.length - 1; i++) {
    const a = chain[i];
    if (isPair(a) && isScalar(a.key)) out.push(String(a.key.value));
    else if (isSeq(a)) out.push(a.items.indexOf(chain[i + 1] as never));
  }
  return out;
}

/** The path of a value nested deeper than `max`, if any (iterative: a deep document must not blow the stack). */
function tooDeep(root: unknown, max: number): KeyPath | undefined {
  const stack: { v: unknown; path: (string | number)[] }[] = [{ v: root, path: [] }];
  while (stack.length) {
    const { v, path } = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (path.length >= max) return path;
    for (const [k, x] of Object.entries(v)) stack.push({ v: x, path: [...path, Array.isArray(v) ? Number(k) : k] });
  }
  return undefined;
}

/** `['masters', 1, 'ssh', 'port']` -> `masters[1].ssh.port` */
export function formatKey(path: KeyPath): string {
  let out = '';
  for (const seg of path) out += typeof seg === 'number' ? `[${seg}]` : out === '' ? seg : `.${seg}`;
  return out;
}

/**
 * A YAML file parsed with the Document API, so that any key path can be
 * traced back to a line and column for error messages.
 */
export class YamlSource {
  readonly doc: Document;
  private readonly lines = new LineCounter();

  constructor(
    readonly file: string,
    readonly text: string,
  ) {
    this.doc = parseDocument(text, { lineCounter: this.lines, prettyErrors: false, uniqueKeys: true, merge: false });
  }

  /** Syntax errors (and duplicate keys), each with its line. */
  syntaxIssues(): InventoryIssue[] {
    return this.doc.errors.map((e) => {
      const pos = this.pos(e.pos[0]);
      const first = e.message.split('\n')[0] ?? e.message;
      // for a duplicate key, name the key: the text at the error position up to the colon
      const key = e.code === 'DUPLICATE_KEY' ? (/^\s*([^:#\n]+?)\s*:/.exec(this.text.slice(e.pos[0]))?.[1] ?? '') : '';
      return {
        file: this.file,
        line: pos.line,
        column: pos.col,
        key,
        message: `${e.code === 'DUPLICATE_KEY' ? 'duplicate key' : 'YAML syntax error'}: ${first.replace(/ at line \d+, column \d+:?$/, '')}`,
      };
    });
  }

  /**
   * The document as plain data, or the issue that forbids it: an alias
   * expansion beyond MAX_ALIASES (a "billion laughs" file), an alias without
   * its anchor, an alias inside the node it names (a cycle), or nesting deeper
   * than MAX_DEPTH. Each is reported at the alias (or the deepest node).
   */
  toData(): { value: unknown } | { issue: InventoryIssue } {
    const cyclic = this.cyclicAlias();
    if (cyclic) return { issue: this.aliasIssue(cyclic, 'refers to a node that contains it (a cycle)') };
    let value: unknown;
    try {
      value = this.doc.toJS({ maxAliasCount: MAX_ALIASES });
    } catch (e) {
      const first = this.aliases()[0];
      const why = /Excessive alias count/.test(String((e as Error).message))
        ? `expands aliases more than ${MAX_ALIASES} times (a "billion laughs" document); expected an inventory that repeats values plainly or with few aliases`
        : `cannot be resolved (${(e as Error).message.split('\n')[0]}); expected each alias after its anchor`;
      if (first) return { issue: this.aliasIssue(first, why) };
      return { issue: { file: this.file, line: 1, column: 1, key: '', message: `YAML cannot be read: ${why}` } };
    }
    const deep = tooDeep(value, MAX_DEPTH);
    if (deep)
      return {
        issue: this.issue(
          // named by its last key: the full path of a deep list is as long as the attack
          deep.slice(0, deep.findLastIndex((seg) => typeof seg === 'string') + 1),
          `nests deeper than ${MAX_DEPTH} levels; expected an inventory (a few levels of groups)`,
        ),
      };
    return { value };
  }

  private aliases(): { alias: Alias; path: KeyPath }[] {
    const out: { alias: Alias; path: KeyPath }[] = [];
    visit(this.doc, {
      Alias: (_key, node, ancestors) => {
        out.push({ alias: node, path: keyPathOf([...ancestors, node]) });
      },
    });
    return out;
  }

  private cyclicAlias(): { alias: Alias; path: KeyPath } | undefined {
    return this.aliases().find(({ alias }) => {
      const target = alias.resolve(this.doc);
      const at = alias.range?.[0];
      const [start, end] = [target?.range?.[0], target?.range?.[1]];
      return at !== undefined && start !== undefined && end !== undefined && at >= start && at < end;
    });
  }

  private aliasIssue({ alias, path }: { alias: Alias; path: KeyPath }, why: string): InventoryIssue {
    const pos = alias.range ? this.pos(alias.range[0]) : { line: undefined, col: undefined };
    return {
      file: this.file,
      line: pos.line,
      column: pos.col,
      key: formatKey(path),
      message: `the alias *${alias.source} ${why}`,
    };
  }

  private pos(offset: number): { line: number; col: number } {
    return this.lines.linePos(offset);
  }

  /**
   * Line and column of the deepest node along `path`: the key itself when it
   * exists (so "port" points at `port:`), else the closest existing parent.
   */
  locate(path: KeyPath): { line: number | undefined; column: number | undefined; found: boolean } {
    let node: unknown = this.doc.contents;
    let at: [number, number, number] | undefined = (node as Node | null)?.range ?? undefined;
    let found = true;
    for (const seg of path) {
      if (isMap(node)) {
        const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
        if (!pair) {
          found = false;
          break;
        }
        const keyRange = (pair.key as Node).range;
        if (keyRange) at = keyRange;
        node = pair.value;
      } else if (isSeq(node) && typeof seg === 'number') {
        const item = node.items[seg] as Node | undefined;
        if (!item) {
          found = false;
          break;
        }
        if (item.range) at = item.range;
        node = item;
      } else {
        found = false;
        break;
      }
    }
    if (!at) return { line: undefined, column: undefined, found: false };
    const p = this.pos(at[0]);
    return { line: p.line, column: p.col, found };
  }

  issue(path: KeyPath, message: string): InventoryIssue {
    const loc = this.locate(path);
    return { file: this.file, line: loc.line, column: loc.column, key: formatKey(path), message };
  }
}
