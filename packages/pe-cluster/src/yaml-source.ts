import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { InventoryIssue } from './errors.js';

export type KeyPath = readonly (string | number)[];

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

  toJS(): unknown {
    return this.doc.toJS({ maxAliasCount: 100 });
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
