import { ConfigEditError } from './errors.js';
import { detectEolText, indentOf, lineEnd, lineStart, splice } from './text.js';

/**
 * site.pp: only the `server` attribute of a `filebucket` resource (the
 * primary filebucket PE's site.pp defines), found by a targeted scan, not a
 * Puppet parser: the resource header `filebucket { 'main':`, then its body up
 * to the closing brace or `;`, skipping comments and quoted strings.
 */
export type SitePpOp = { op: 'filebucket-server'; server: string; title?: string };

interface Bucket {
  title: string;
  bodyStart: number;
  bodyEnd: number;
}

export class SitePpDocument {
  readonly path: string;
  private text: string;

  constructor(text: string, path: string) {
    this.path = path;
    this.text = text;
  }

  private buckets(): Bucket[] {
    const out: Bucket[] = [];
    // title quoted ('main', "main") or bare (main)
    const re = /filebucket\s*\{\s*(?:(['"])((?:(?!\1).)*)\1|([A-Za-z0-9_.$:-]+))\s*:/g;
    for (const m of this.text.matchAll(re)) {
      const at = m.index;
      const ls = lineStart(this.text, at);
      if (this.text.slice(ls, at).includes('#')) continue;
      const bodyStart = at + m[0].length;
      out.push({ title: m[2] ?? m[3]!, bodyStart, bodyEnd: this.bodyEnd(bodyStart) });
    }
    return out;
  }

  private bodyEnd(from: number): number {
    const s = this.text;
    let depth = 0;
    for (let i = from; i < s.length; i++) {
      const c = s[i]!;
      if (c === '#') {
        const nl = s.indexOf('\n', i);
        i = nl === -1 ? s.length : nl;
      } else if (c === '"' || c === "'") {
        for (i++; i < s.length && s[i] !== c; i++) if (s[i] === '\\') i++;
      } else if (c === '{' || c === '[' || c === '(') depth++;
      else if (c === ']' || c === ')') depth--;
      else if (c === '}') {
        if (depth === 0) return i;
        depth--;
      } else if (c === ';' && depth === 0) return i;
    }
    throw new ConfigEditError(this.path, 'the filebucket resource is not closed.');
  }

  private find(title?: string): Bucket {
    const all = this.buckets();
    const b =
      title === undefined ? (all.find((x) => x.title === 'main') ?? all[0]) : all.find((x) => x.title === title);
    if (!b)
      throw new ConfigEditError(
        this.path,
        `no filebucket resource${title ? ` titled '${title}'` : ''}.`,
        'Add the filebucket resource by hand or leave the filebucket unchanged.',
      );
    return b;
  }

  private serverAttr(b: Bucket): RegExpExecArray | undefined {
    const body = this.text.slice(b.bodyStart, b.bodyEnd);
    const re = /(^|[\s,])server(\s*=>\s*)(?:(['"])((?:(?!\3).)*)\3|([A-Za-z0-9_.$:-]+))/gm;
    for (const m of body.matchAll(re)) {
      const abs = b.bodyStart + m.index;
      if (this.text.slice(lineStart(this.text, abs), abs + m[1]!.length).includes('#')) continue;
      m.index = abs;
      return m as RegExpExecArray;
    }
    return undefined;
  }

  /** Whether the file declares the filebucket (by title, else 'main' or the first one); Puppet 4+ site.pp files usually declare none. */
  hasFilebucket(title?: string): boolean {
    const all = this.buckets();
    return title === undefined ? all.length > 0 : all.some((x) => x.title === title);
  }

  /** The filebucket's server attribute, undefined when it has none. */
  filebucketServer(title?: string): string | undefined {
    const m = this.serverAttr(this.find(title));
    return m ? (m[4] ?? m[5]) : undefined;
  }

  setFilebucketServer(server: string, title?: string): boolean {
    if (!/^[A-Za-z0-9_.:-]+$/.test(server)) throw new ConfigEditError(this.path, `"${server}" is not a server name.`);
    const b = this.find(title);
    const m = this.serverAttr(b);
    if (m) {
      const current = m[4] ?? m[5];
      if (current === server) return false;
      const valueStart = m.index + m[1]!.length + 'server'.length + m[2]!.length;
      const valueEnd = m.index + m[0].length;
      const q = m[3] ?? "'";
      this.text = splice(this.text, valueStart, valueEnd, `${q}${server}${q}`);
      return true;
    }
    this.addFirstAttribute(b, `server => '${server}',`);
    return true;
  }

  /**
   * `attr` (ending in a comma) as the resource's first attribute: on a line
   * of its own after the `title:` line, indented like the next line, when
   * only blanks or a comment follow the title there; else right after the
   * title on its line (`filebucket { 'main': path => false }` and the like),
   * never after a closing brace or before an attribute without its comma.
   */
  private addFirstAttribute(b: Bucket, attr: string): void {
    const t = this.text;
    const titleLineEnd = lineEnd(t, b.bodyStart);
    const restOfLine = t.slice(b.bodyStart, titleLineEnd).replace(/\r?\n$/, '');
    if (titleLineEnd < b.bodyEnd && /^\s*(#.*)?$/.test(restOfLine)) {
      const nextLine = t.slice(titleLineEnd, lineEnd(t, titleLineEnd));
      const indent = nextLine.trim() !== '' ? indentOf(nextLine) : '  ';
      this.text = splice(t, titleLineEnd, titleLineEnd, `${indent}${attr}${detectEolText(t)}`);
    } else this.text = splice(t, b.bodyStart, b.bodyStart, ` ${attr}`);
  }

  apply(op: SitePpOp): boolean {
    return this.setFilebucketServer(op.server, op.title);
  }

  toString(): string {
    return this.text;
  }
}

export function parseSitePp(text: string, path: string): SitePpDocument {
  return new SitePpDocument(text, path);
}
