import { ConfigEditError } from './errors.js';
import { type Line, splitLines, joinLines, insertLines, removeLines, indentOf } from './text.js';

/**
 * Apache httpd configuration (pe-httpd conf.d/puppetmaster.conf,
 * puppetdashboard.conf): `Directive args` lines inside `<Section>` blocks.
 * Directive names are case-insensitive, as in httpd. Setting a directive
 * rewrites the arguments of each active occurrence, keeping its indentation
 * and the spacing between name and value; a missing directive goes at the end
 * of the first <VirtualHost> (or of the file), indented like its neighbours.
 */
export type ApacheOp = { op: 'set'; directive: string; value: string } | { op: 'unset'; directive: string };

const DIRECTIVE = /^(\s*)([A-Za-z][A-Za-z0-9_]*)(\s+)(.*?)(\s*)$/;

export class ApacheDocument {
  readonly path: string;
  private readonly lines: Line[];

  constructor(text: string, path: string) {
    this.path = path;
    this.lines = splitLines(text);
  }

  /** Arguments of each active occurrence, in file order. */
  get(directive: string): string[] {
    return this.find(directive).map((i) => DIRECTIVE.exec(this.lines[i]!.text)![4]!);
  }

  set(directive: string, value: string): boolean {
    checkName(this.path, directive);
    if (/[\r\n]/.test(value) || value.trim() === '' || value !== value.trim())
      throw new ConfigEditError(this.path, `invalid value for ${directive}.`);
    const found = this.find(directive);
    if (found.length > 0) {
      let changed = false;
      for (const i of found) {
        const m = DIRECTIVE.exec(this.lines[i]!.text)!;
        if (m[4] === value) continue;
        this.lines[i]!.text = `${m[1]}${m[2]}${m[3]}${value}${m[5]}`;
        changed = true;
      }
      return changed;
    }
    const close = this.lines.findIndex((l) => /^\s*<\/VirtualHost\s*>/i.test(l.text));
    if (close >= 0) {
      let indent = '    ';
      for (let i = close - 1; i >= 0; i--) {
        const t = this.lines[i]!.text;
        if (t.trim() === '') continue;
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
    for (const i of [...found].reverse()) removeLines(this.lines, i);
    return found.length > 0;
  }

  apply(op: ApacheOp): boolean {
    return op.op === 'set' ? this.set(op.directive, op.value) : this.unset(op.directive);
  }

  toString(): string {
    return joinLines(this.lines);
  }

  private find(directive: string): number[] {
    const want = directive.toLowerCase();
    const out: number[] = [];
    this.lines.forEach((l, i) => {
      const m = DIRECTIVE.exec(l.text);
      if (m && m[2]!.toLowerCase() === want) out.push(i);
    });
    return out;
  }
}

function checkName(path: string, d: string): void {
  if (!/^[A-Za-z][A-Za-z0-9_]*$/.test(d)) throw new ConfigEditError(path, `"${d}" is not an Apache directive name.`);
}

export function parseApache(text: string, path: string): ApacheDocument {
  return new ApacheDocument(text, path);
}
