import { ConfigEditError } from './errors.js';
import { type Line, splitLines, joinLines, insertLines, removeLines, indentOf } from './text.js';

/**
 * `key = value` files: MCollective server.cfg/client.cfg (style 'spaced':
 * blanks around `=` allowed, values raw to the end of the line) and shell
 * variable files such as /etc/default/puppetserver (style 'shell': `NAME=value`,
 * values may be "double" or 'single' quoted and are returned unquoted; a
 * line may hold several assignments (`A=1 B=2`, `A=1; B=2`) and a quoted or
 * backslash-continued value may run over several lines, which are then one
 * statement: never an anchor for a new line, never split).
 * `#` starts a comment line. The last occurrence of a key wins.
 */
export type KvStyle = 'spaced' | 'shell';
export type KvOp = { op: 'set'; key: string; value: string } | { op: 'unset'; key: string };

interface Entry {
  /** First and last line of the statement holding the entry. */
  index: number;
  lastIndex: number;
  key: string;
  value: string;
  /** The statement's text before the value, the value as written, and the text after it. */
  before: string;
  rawValue: string;
  after: string;
  /** Where the assignment's own text starts in `before` (a line may hold several). */
  assignStart: number;
}

const SPACED = /^(\s*([A-Za-z0-9_.:-]+)\s*=[ \t]*)(.*?)([ \t]*)$/;
/** One shell assignment at the sticky position: `export NAME=value` with its value quoted, escaped or bare. */
const SHELL_ASSIGN =
  /((?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_]*)=)("(?:[^"\\]|\\[\s\S])*"|'[^']*'|(?:[^\s#;"'\\]|\\[\s\S])*)/y;
/** What may separate two assignments of one statement: blanks, a `;`, a backslash-newline. */
const SHELL_SEP = /(?:[ \t]|\\\r?\n)*(?:;(?:[ \t]|\\\r?\n)*)?/y;

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
    if (this.style === 'shell') return this.shellEntries();
    const out: Entry[] = [];
    this.lines.forEach((l, index) => {
      if (/^\s*#/.test(l.text)) return;
      const m = SPACED.exec(l.text);
      if (!m) return;
      const [, before, key, rawValue, after] = m as unknown as [string, string, string, string, string];
      out.push({ index, lastIndex: index, key, value: rawValue, before, rawValue, after, assignStart: 0 });
    });
    return out;
  }

  /** Every assignment of every statement (a statement: the lines a quoted or continued value runs over). */
  private shellEntries(): Entry[] {
    const out: Entry[] = [];
    for (let index = 0; index < this.lines.length;) {
      const lastIndex = statementEnd(this.lines, index);
      const text = joinLines(this.lines.slice(index, lastIndex + 1)).slice(
        0,
        -this.lines[lastIndex]!.eol.length || undefined,
      );
      for (const a of shellAssignments(text)) out.push({ index, lastIndex, ...a });
      index = lastIndex + 1;
    }
    return out;
  }

  /** Replace the lines of an entry's statement with `text` (which may hold line breaks of its own). */
  private rewriteStatement(e: Entry, text: string): void {
    const eol = this.lines[e.lastIndex]!.eol;
    const lines = text === '' ? [] : splitLines(text + eol);
    if (lines.length > 0 && eol === '') lines.at(-1)!.eol = '';
    if (lines.length === 0) removeLines(this.lines, e.index, e.lastIndex + 1);
    else this.lines.splice(e.index, e.lastIndex - e.index + 1, ...lines);
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
      this.rewriteStatement(last, last.before + raw + last.after);
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
    insertLines(this.lines, anchor && best > 0 ? anchor.lastIndex + 1 : this.lines.length, [text]);
    return true;
  }

  /** Remove every assignment of the key: its whole statement when it is alone there, else just the assignment. */
  unset(key: string): boolean {
    const found = this.entries().filter((e) => e.key === key);
    for (const e of [...found].reverse()) {
      const head = e.before.slice(0, e.assignStart);
      if (head.trim() === '' && /^\s*(?:#.*)?$/.test(e.after)) removeLines(this.lines, e.index, e.lastIndex + 1);
      else {
        // the assignment and the separator after it (or, for the last one, the separator before it)
        const sep = /^(?:[ \t]|\\\r?\n)*;?(?:[ \t]|\\\r?\n)*/.exec(e.after)![0];
        const rest = e.after.slice(sep.length);
        this.rewriteStatement(
          e,
          rest.trim() === '' || rest.startsWith('#') ? head.replace(/[\s;]+$/, '') + e.after : head + rest,
        );
      }
    }
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

/**
 * The last line of the shell statement starting at line `first`: a quote left
 * open, or a backslash ending the line outside quotes, carries it on.
 */
function statementEnd(lines: readonly Line[], first: number): number {
  let quote = '';
  for (let i = first; i < lines.length; i++) {
    const t = lines[i]!.text;
    let continued = false;
    for (let j = 0; j < t.length; j++) {
      const c = t[j]!;
      if (quote === "'") {
        if (c === "'") quote = '';
      } else if (c === '\\') {
        if (j === t.length - 1) continued = true;
        j++;
      } else if (quote === '"') {
        if (c === '"') quote = '';
      } else if (c === '"' || c === "'") quote = c;
      else if (c === '#' && (j === 0 || /[\s;]/.test(t[j - 1]!))) break;
    }
    if (!quote && !continued) return i;
  }
  return lines.length - 1;
}

/** The assignments at the start of a shell statement (`A=1 B="2"; export C=3`); none for a command or comment. */
function shellAssignments(text: string): Omit<Entry, 'index' | 'lastIndex'>[] {
  const out: Omit<Entry, 'index' | 'lastIndex'>[] = [];
  let pos = /^\s*/.exec(text)![0].length;
  for (;;) {
    SHELL_ASSIGN.lastIndex = pos;
    const m = SHELL_ASSIGN.exec(text);
    if (!m) break;
    const valueStart = pos + m[1]!.length;
    const end = SHELL_ASSIGN.lastIndex;
    const next = text[end];
    if (next !== undefined && !/[\s;#]/.test(next)) break; // `A=1x"` or similar: not a plain assignment
    const rawValue = m[3]!;
    out.push({
      key: m[2]!,
      value: shellUnquote(rawValue),
      before: text.slice(0, valueStart),
      rawValue,
      after: text.slice(end),
      assignStart: pos,
    });
    SHELL_SEP.lastIndex = end;
    SHELL_SEP.exec(text);
    if (SHELL_SEP.lastIndex === end) break;
    pos = SHELL_SEP.lastIndex;
  }
  return out;
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
