import { ConfigEditError } from './errors.js';
import { type Line, splitLines, joinLines, insertLines, removeLines, indentOf } from './text.js';

/**
 * Apache httpd configuration (pe-httpd conf.d/puppetmaster.conf,
 * puppetdashboard.conf): `Directive args` lines inside `<Section>` blocks.
 * Directive names are case-insensitive, as in httpd. Setting a directive
 * rewrites the arguments of each active occurrence, keeping its indentation
 * and the spacing between name and value; a missing directive goes at the end
 * of the first <VirtualHost> (or of the file), indented like its neighbours.
 * A line ending in a backslash continues on the next one, as in httpd: the
 * lines it joins are one directive (read joined, set as one line, removed
 * together), and a continuation line is never taken for a directive.
 */
export type ApacheOp = { op: 'set'; directive: string; value: string } | { op: 'unset'; directive: string };

const DIRECTIVE = /^(\s*)([A-Za-z][A-Za-z0-9_]*)(\s+)(.*?)(\s*)$/;

/** The lines [first, last] of one directive (last > first when backslashes continue it). */
interface Directive {
  first: number;
  last: number;
}

export class ApacheDocument {
  readonly path: string;
  private readonly lines: Line[];

  constructor(text: string, path: string) {
    this.path = path;
    this.lines = splitLines(text);
  }

  /** Arguments of each active occurrence, in file order (continued lines joined with a blank). */
  get(directive: string): string[] {
    return this.find(directive).map((d) => DIRECTIVE.exec(this.joined(d))![4]!);
  }

  /** The text of a directive's lines, each continuation (backslash, line break, indentation) one blank. */
  private joined(d: Directive): string {
    const parts = this.lines.slice(d.first, d.last + 1).map((l, i, all) => {
      const t = i < all.length - 1 ? l.text.slice(0, -1) : l.text;
      return i === 0 ? t.trimEnd() : t.trim();
    });
    return parts.filter((p, i) => i === 0 || p !== '').join(' ');
  }

  set(directive: string, value: string): boolean {
    checkName(this.path, directive);
    if (/[\r\n]/.test(value) || value.trim() === '' || value !== value.trim())
      throw new ConfigEditError(this.path, `invalid value for ${directive}.`);
    const found = this.find(directive);
    if (found.length > 0) {
      let changed = false;
      for (const d of [...found].reverse()) {
        const m = DIRECTIVE.exec(this.joined(d))!;
        if (m[4] === value) continue;
        if (d.last > d.first) {
          // continued over lines: one line now, with the last line's terminator
          const last = this.lines[d.last]!;
          this.lines.splice(d.first, d.last - d.first + 1, { text: `${m[1]}${m[2]}${m[3]}${value}`, eol: last.eol });
        } else this.lines[d.first]!.text = `${m[1]}${m[2]}${m[3]}${value}${m[5]}`;
        changed = true;
      }
      return changed;
    }
    const starts = new Set(this.directives().map((d) => d.first));
    const close = this.lines.findIndex((l, i) => starts.has(i) && /^\s*<\/VirtualHost\s*>/i.test(l.text));
    if (close >= 0) {
      let indent = '    ';
      for (let i = close - 1; i >= 0; i--) {
        const t = this.lines[i]!.text;
        if (t.trim() === '' || !starts.has(i)) continue;
        if (/^\s*<VirtualHost/i.test(t)) indent = `${indentOf(t)}    `;
        else indent = indentOf(t);
        if (/^\s*<\//.test(t)) indent = indentOf(t);
        break;
      }
      insertLines(this.lines, close, [`${indent}${directive} ${value}`]);
    } else insertLines(this.lines, this.lines.length, [`${directive} ${value}`]);
    return true;
  }

  /** Remove every active occurrence of the directive. */
  unset(directive: string): boolean {
    const found = this.find(directive);
    for (const d of [...found].reverse()) removeLines(this.lines, d.first, d.last + 1);
    return found.length > 0;
  }

  apply(op: ApacheOp): boolean {
    return op.op === 'set' ? this.set(op.directive, op.value) : this.unset(op.directive);
  }

  toString(): string {
    return joinLines(this.lines);
  }

  private find(directive: string): Directive[] {
    const want = directive.toLowerCase();
    return this.directives().filter((d) => DIRECTIVE.exec(this.lines[d.first]!.text)?.[2]!.toLowerCase() === want);
  }

  /** Every logical line: a line and the lines its trailing backslashes join to it. */
  private directives(): Directive[] {
    const out: Directive[] = [];
    for (let first = 0; first < this.lines.length;) {
      let last = first;
      while (last < this.lines.length - 1 && this.lines[last]!.text.endsWith('\\')) last++;
      out.push({ first, last });
      first = last + 1;
    }
    return out;
  }
}

function checkName(path: string, d: string): void {
  if (!/^[A-Za-z][A-Za-z0-9_]*$/.test(d)) throw new ConfigEditError(path, `"${d}" is not an Apache directive name.`);
}

export function parseApache(text: string, path: string): ApacheDocument {
  return new ApacheDocument(text, path);
}
