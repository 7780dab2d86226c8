import {
  LineCounter,
  parseDocument,
  parse,
  stringify,
  isMap,
  isSeq,
  isScalar,
  isPair,
  type Document,
  type Node,
  type Pair,
  type YAMLMap,
} from 'yaml';
import { ConfigEditError, ConfigParseError } from './errors.js';
import { detectEolText, lineEnd, lineStart, splice } from './text.js';

/**
 * YAML files (console database.yml, settings.yml, event-inspector config.yml,
 * PuppetDB routes.yaml). Read with the `yaml` package's Document API (merge
 * keys, anchors, duplicate keys tolerated); changes are spliced into the
 * source text at the node's source range, so comments, quoting, anchors and
 * layout survive and only the changed lines differ. After each change the
 * text is parsed again and the new value checked.
 */
export type YamlPath = readonly (string | number)[];
export type YamlScalar = string | number | boolean | null;
export type YamlOp = { op: 'set'; path: YamlPath; value: YamlScalar } | { op: 'unset'; path: YamlPath };

export class YamlDocument {
  readonly path: string;
  private text: string;
  private doc!: Document.Parsed;

  constructor(text: string, path: string) {
    this.path = path;
    this.text = text;
    this.reparse();
  }

  private reparse(): void {
    const lineCounter = new LineCounter();
    const doc = parseDocument(this.text, {
      lineCounter,
      merge: true,
      uniqueKeys: false,
      prettyErrors: false,
      keepSourceTokens: false,
    });
    const err = doc.errors[0];
    if (err) {
      const line = lineCounter.linePos(err.pos[0]).line;
      throw new ConfigParseError(this.path, line, firstLine(err.message), undefined);
    }
    this.doc = doc;
  }

  /** The value at the path, merge keys and aliases resolved (plain JS). */
  get(path: YamlPath): unknown {
    let cur: unknown = this.doc.toJS({ maxAliasCount: 1000 });
    for (const k of path) {
      if (cur === null || typeof cur !== 'object') return undefined;
      cur = (cur as Record<string | number, unknown>)[k];
    }
    return cur;
  }

  /**
   * Set a scalar at the path. An existing scalar is replaced in place in its
   * own quoting style; a missing key is added to the nearest existing block
   * mapping on the path, at its indentation. The key is set on the node the
   * path names: a mapping that only merges (`<<: *common`) gets its own key.
   */
  set(path: YamlPath, value: YamlScalar): boolean {
    if (path.length === 0) throw new ConfigEditError(this.path, 'an empty YAML path cannot be set.');
    const found = this.locate(path);
    if (found.node) {
      const node = found.node;
      if (!isScalar(node) || !node.range) throw new ConfigEditError(this.path, `${showPath(path)} is not a scalar.`);
      if (sameScalar(node.value, value)) return false;
      const rendered = renderScalar(value, node.type);
      this.text = splice(this.text, node.range[0], node.range[1], rendered);
    } else {
      this.insert(found.parent, found.depth, path, value);
    }
    this.reparse();
    if (!sameScalar(this.get(path), value))
      throw new ConfigEditError(this.path, `setting ${showPath(path)} did not give the expected value.`);
    return true;
  }

  /** Remove the key at the path (its whole block). Returns whether the file changed. */
  unset(path: YamlPath): boolean {
    const found = this.locate(path);
    if (!found.node || !found.pair) return false;
    const pair = found.pair;
    const key = pair.key as Node;
    if (!key.range) throw new ConfigEditError(this.path, `${showPath(path)} has no source position.`);
    const start = lineStart(this.text, key.range[0]);
    if (this.text.slice(start, key.range[0]).trim() !== '')
      throw new ConfigEditError(
        this.path,
        `${showPath(path)} does not start its own line (flow mapping); edit it by hand.`,
      );
    const end = this.pairEnd(pair);
    this.text = this.text.slice(0, start) + this.text.slice(end);
    this.reparse();
    return true;
  }

  apply(op: YamlOp): boolean {
    return op.op === 'set' ? this.set(op.path, op.value) : this.unset(op.path);
  }

  toString(): string {
    return this.text;
  }

  private locate(path: YamlPath): { node?: Node; pair?: Pair; parent: YAMLMap | undefined; depth: number } {
    let cur: unknown = this.doc.contents;
    let parent: YAMLMap | undefined = isMap(cur) ? cur : undefined;
    let pair: Pair | undefined;
    for (let i = 0; i < path.length; i++) {
      const k = path[i]!;
      if (isMap(cur)) {
        parent = cur;
        const p = [...cur.items].reverse().find((it) => isPair(it) && keyOf(it) === String(k));
        if (!p) return { parent, depth: i };
        pair = p as Pair;
        cur = pair.value;
      } else if (isSeq(cur) && typeof k === 'number') {
        cur = cur.items[k];
        pair = undefined;
        if (cur === undefined) throw new ConfigEditError(this.path, `${showPath(path)}: no item ${k} in the sequence.`);
      } else if (cur === null || cur === undefined) {
        return { parent: undefined, depth: i };
      } else {
        throw new ConfigEditError(this.path, `${showPath(path.slice(0, i))} is not a mapping.`);
      }
    }
    return { node: cur as Node, ...(pair ? { pair } : {}), parent, depth: path.length };
  }

  /** Offset just past the last line of a pair (its value included). */
  private pairEnd(pair: Pair): number {
    const v = pair.value as Node | null;
    const end = v?.range ? v.range[1] : (pair.key as Node).range![1];
    if (end > 0 && this.text[end - 1] === '\n') return end;
    return lineEnd(this.text, end);
  }

  private insert(parent: YAMLMap | undefined, depth: number, path: YamlPath, value: YamlScalar): void {
    const rest = path.slice(depth);
    if (rest.some((k) => typeof k !== 'string'))
      throw new ConfigEditError(this.path, `${showPath(path)}: cannot create sequence items.`);
    const eol = detectEolText(this.text);
    let indent = '';
    let at: number;
    if (parent && depth > 0) {
      if (parent.flow)
        throw new ConfigEditError(this.path, `${showPath(path.slice(0, depth))} is a flow mapping; edit it by hand.`);
      const first = parent.items[0];
      const last = parent.items.at(-1);
      if (!first || !last || !(first.key as Node | null)?.range)
        throw new ConfigEditError(
          this.path,
          `${showPath(path.slice(0, depth))} is empty; cannot infer its indentation.`,
        );
      const k0 = (first.key as Node).range![0];
      indent = this.text.slice(lineStart(this.text, k0), k0);
      if (indent.trim() !== '')
        throw new ConfigEditError(this.path, `${showPath(path.slice(0, depth))} is not a block mapping.`);
      at = this.pairEnd(last);
    } else if (depth === 0 && (parent || this.doc.contents === null)) {
      if (parent?.flow) throw new ConfigEditError(this.path, 'the top level is a flow mapping; edit it by hand.');
      const last = parent?.items.at(-1);
      at = last ? this.pairEnd(last) : this.text.length;
    } else {
      throw new ConfigEditError(this.path, `${showPath(path.slice(0, depth))} is not a mapping.`);
    }
    const step = '  ';
    const newLines = rest.map(
      (k, i) =>
        `${indent}${step.repeat(i)}${renderKey(String(k))}:${i === rest.length - 1 ? ` ${renderScalar(value)}` : ''}`,
    );
    let chunk = newLines.join(eol);
    if (at === this.text.length && this.text.length > 0 && !this.text.endsWith('\n')) chunk = eol + chunk;
    else chunk += eol;
    this.text = splice(this.text, at, at, chunk);
  }
}

function keyOf(p: Pair): string | undefined {
  const k = p.key;
  if (isScalar(k)) return String(k.value);
  return undefined;
}

function sameScalar(a: unknown, b: YamlScalar): boolean {
  return a === b || (a === undefined && b === null);
}

function firstLine(s: string): string {
  return s.split('\n')[0]!.trim();
}

function showPath(path: YamlPath): string {
  return path.map(String).join('.') || '(top level)';
}

function renderKey(k: string): string {
  return plainRoundTrips(k) ? k : `'${k.replace(/'/g, "''")}'`;
}

function plainRoundTrips(s: string): boolean {
  if (s === '' || s !== s.trim() || /[\r\n]/.test(s)) return false;
  try {
    const back = parse(`k: ${s}\n`) as unknown;
    return typeof back === 'object' && back !== null && (back as Record<string, unknown>)['k'] === s;
  } catch {
    return false;
  }
}

/** A scalar in the given style when that style can hold it, else the safest. */
export function renderScalar(value: YamlScalar, style?: string): string {
  if (typeof value !== 'string') return value === null ? 'null' : stringify(value).trimEnd();
  if (/[\r\n]/.test(value)) return JSON.stringify(value);
  if (style === 'QUOTE_DOUBLE') return JSON.stringify(value);
  if (style === 'QUOTE_SINGLE') return `'${value.replace(/'/g, "''")}'`;
  return plainRoundTrips(value) ? value : `'${value.replace(/'/g, "''")}'`;
}

export function parseYaml(text: string, path: string): YamlDocument {
  return new YamlDocument(text, path);
}
