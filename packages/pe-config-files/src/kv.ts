import { ConfigEditError } from './errors.js';
import { type Line, splitLines, joinLines, insertLines, removeLines, indentOf } from './text.js';

/**
 * `key = value` files: MCollective server.cfg/client.cfg (style 'spaced':
 * blanks around `=` allowed, values raw to the end of the line) and shell
 * variable files such as /etc/default/puppetserver (style 'shell': `NAME=value`,
 * values may be "double" or 'single' quoted and are returned unquoted).
 * `#` starts a comment line. The last occurrence of a key wins.
 */
export type KvStyle = 'spaced' | 'shell';
export type KvOp = { op: 'set'; key: string; value: string } | { op: 'unset'; key: string };

interface Entry {
  index: number;
  key: string;
  value: string;
  before: string;
  rawValue: string;
  after: string;
}

const SPACED = /^(\s*([A-Za-z0-9_.:-]+)\s*=[ \t]*)(.*?)([ \t]*)$/;
const SHELL = /^(\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=)("(?:[^"\\]|\\.)*"|'[^']*'|[^\s#]*)(.*)$/;

export class KeyValueDocument {
  readonly path: string;
  readonly style: KvStyle;
  private readonly lines: Line[];

  constructor(text: string, path: string, style: KvStyle = 'spaced') {
    this.path = path;
    this.style = style;
    this.lines = splitLines(text);
  }

  private entries(): Entry[] {
    const out: Entry[] = [];
    this.lines.forEach((l, index) => {
      if (/^\s*#/.test(l.text)) return;
      const m = (this.style === 'shell' ? SHELL : SPACED).exec(l.text);
      if (!m) return;
      const rawValue = m[3]!;
      out.push({
        index,
        key: m[2]!,
        value: this.style === 'shell' ? shellUnquote(rawValue) : rawValue,
        before: m[1]!,
        rawValue,
        after: m[4]!,
      });
    });
    return out;
  }

  keys(): string[] {
    return [...new Set(this.entries().map((e) => e.key))];
  }

  get(key: string): string | undefined {
    return this.entries()
      .filter((e) => e.key === key)
      .at(-1)?.value;
  }

  /**
   * Set a key: the last occurrence is rewritten in place. A new key goes
   * after the last key sharing its longest dotted prefix (so
   * plugin.activemq.pool.2.host lands beside plugin.activemq.pool.1.*), with
   * the same spacing, else at the end.
   */
  set(key: string, value: string): boolean {
    this.checkKey(key);
    if (/[\r\n]/.test(value)) throw new ConfigEditError(this.path, `the value for ${key} contains a line break.`);
    if (this.style === 'spaced' && value !== value.trim())
      throw new ConfigEditError(this.path, `the value for ${key} has leading or trailing blanks.`);
    const all = this.entries();
    const last = all.filter((e) => e.key === key).at(-1);
    if (last) {
      if (last.value === value) return false;
      const raw = this.style === 'shell' ? shellQuote(value, last.rawValue[0]) : value;
      this.lines[last.index]!.text = last.before + raw + last.after;
      return true;
    }
    let anchor: Entry | undefined;
    let best = -1;
    for (const e of all) {
      const n = commonDottedPrefix(e.key, key);
      if (n >= best) {
        best = n;
        anchor = e;
      }
    }
    const raw = this.style === 'shell' ? shellQuote(value, '"') : value;
    let text: string;
    if (anchor && this.style === 'spaced') {
      const m = /^(\s*)([A-Za-z0-9_.:-]+)(\s*)(=[ \t]*)$/.exec(anchor.before)!;
      // keep the column of '=' when the neighbours pad their keys to one
      const eqCol = (e: Entry): number => e.before.indexOf('=');
      const near = all.filter((e) => Math.abs(e.index - anchor!.index) <= 3);
      const aligned =
        near.length > 1 &&
        near.every((e) => eqCol(e) === eqCol(anchor!)) &&
        new Set(near.map((e) => e.key.length)).size > 1;
      const gap = aligned ? ' '.repeat(Math.max(1, eqCol(anchor) - m[1]!.length - key.length)) : m[3]!;
      text = `${m[1]}${key}${gap}${m[4]}${raw}`;
    } else text = `${anchor ? indentOf(anchor.before) : ''}${key}${this.style === 'shell' ? '=' : ' = '}${raw}`;
    insertLines(this.lines, anchor && best > 0 ? anchor.index + 1 : this.lines.length, [text]);
    return true;
  }

  unset(key: string): boolean {
    const found = this.entries().filter((e) => e.key === key);
    for (const e of [...found].reverse()) removeLines(this.lines, e.index);
    return found.length > 0;
  }

  apply(op: KvOp): boolean {
    return op.op === 'set' ? this.set(op.key, op.value) : this.unset(op.key);
  }

  toString(): string {
    return joinLines(this.lines);
  }

  private checkKey(key: string): void {
    const ok = this.style === 'shell' ? /^[A-Za-z_][A-Za-z0-9_]*$/ : /^[A-Za-z0-9_.:-]+$/;
    if (!ok.test(key)) throw new ConfigEditError(this.path, `"${key}" is not a valid key.`);
  }
}

function commonDottedPrefix(a: string, b: string): number {
  const x = a.split('.');
  const y = b.split('.');
  let n = 0;
  while (n < x.length - 1 && n < y.length - 1 && x[n] === y[n]) n++;
  return n;
}

function shellUnquote(raw: string): string {
  if (raw.startsWith('"') && raw.endsWith('"') && raw.length >= 2)
    return raw.slice(1, -1).replace(/\\(["\\$`])/g, '$1');
  if (raw.startsWith("'") && raw.endsWith("'") && raw.length >= 2) return raw.slice(1, -1);
  return raw;
}

function shellQuote(value: string, style: string | undefined): string {
  if (style === "'" && !value.includes("'")) return `'${value}'`;
  if (style !== '"' && style !== "'" && /^[A-Za-z0-9_./:=,@+-]*$/.test(value)) return value;
  return `"${value.replace(/(["\\$`])/g, '\\$1')}"`;
}

/** Java options in a JAVA_ARGS value: set (or add) a flag such as -Xmx512m or -Dkey=value. */
export function setJavaOption(javaArgs: string, prefix: string, option: string): string {
  const parts = javaArgs.split(/\s+/).filter((p) => p !== '');
  const i = parts.findIndex((p) => p.startsWith(prefix));
  if (i >= 0) parts[i] = option;
  else parts.push(option);
  return parts.join(' ');
}

export function parseKeyValue(text: string, path: string, style: KvStyle = 'spaced'): KeyValueDocument {
  return new KeyValueDocument(text, path, style);
}
