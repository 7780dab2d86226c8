import { ConfigEditError } from './errors.js';
import { type Line, splitLines, joinLines, insertLines, removeLines } from './text.js';

/**
 * Files that are a list of entries, one per line, with `#` comments:
 * autosign.conf, PuppetDB's certificate-whitelist. Entries compare on their
 * trimmed text. Adding an entry that is present, or removing one that is
 * absent, changes nothing.
 */
export type LineListOp = { op: 'add'; entry: string } | { op: 'remove'; entry: string };

export class LineListDocument {
  readonly path: string;
  private readonly lines: Line[];

  constructor(text: string, path: string) {
    this.path = path;
    this.lines = splitLines(text);
  }

  entries(): string[] {
    return this.lines.map((l) => l.text.trim()).filter((t) => t !== '' && !t.startsWith('#'));
  }

  has(entry: string): boolean {
    return this.entries().includes(entry.trim());
  }

  add(entry: string): boolean {
    const e = this.check(entry);
    if (this.has(e)) return false;
    insertLines(this.lines, this.lines.length, [e]);
    return true;
  }

  remove(entry: string): boolean {
    const e = this.check(entry);
    let changed = false;
    for (let i = this.lines.length - 1; i >= 0; i--) {
      if (this.lines[i]!.text.trim() === e) {
        removeLines(this.lines, i);
        changed = true;
      }
    }
    return changed;
  }

  apply(op: LineListOp): boolean {
    return op.op === 'add' ? this.add(op.entry) : this.remove(op.entry);
  }

  toString(): string {
    return joinLines(this.lines);
  }

  private check(entry: string): string {
    const e = entry.trim();
    if (e === '' || /[\r\n]/.test(e) || e.startsWith('#'))
      throw new ConfigEditError(this.path, `"${entry}" is not a valid list entry.`);
    return e;
  }
}

export function parseLineList(text: string, path: string): LineListDocument {
  return new LineListDocument(text, path);
}
