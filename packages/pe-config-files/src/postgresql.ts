import { ConfigEditError, ConfigParseError } from './errors.js';
import { type Line, splitLines, joinLines, insertLines, removeLines } from './text.js';

/**
 * postgresql.conf: `name = value  # comment` (the `=` is optional), values
 * plain or single-quoted with '' or \' escapes. Names are case-insensitive;
 * the last occurrence wins, as in PostgreSQL. Setting a value rewrites the
 * last active occurrence (earlier ones are overridden anyway and are left as
 * the operator wrote them); a new setting goes right after the commented-out
 * default (`#listen_addresses = 'localhost'`) when the file has one, else at
 * the end.
 */
export type PostgresqlConfOp =
  { op: 'set'; name: string; value: string | number | boolean } | { op: 'unset'; name: string };

interface Setting {
  index: number;
  name: string;
  value: string;
  /** Text before and after the value's raw form. */
  before: string;
  after: string;
  quoted: boolean;
}

// name, then `=` with optional blanks around it or just blanks, then a quoted or bare value
const SETTING = /^(\s*)([A-Za-z_][A-Za-z0-9_.]*)(\s*=\s*|\s+(?![=\s]))('(?:[^'\\]|''|\\.)*'|[^\s#']+)(.*)$/;
const SETTING_PREFIX = /^(\s*)([A-Za-z_][A-Za-z0-9_.]*)(\s*=\s*|\s+(?![=\s]))(.*)$/;

export class PostgresqlConfDocument {
  readonly path: string;
  private readonly lines: Line[];

  constructor(text: string, path: string) {
    this.path = path;
    this.lines = splitLines(text);
    this.lines.forEach((l, i) => {
      if (isComment(l.text)) return;
      if (!SETTING.exec(l.text) && SETTING_PREFIX.exec(l.text)?.[4]?.startsWith("'")) {
        throw new ConfigParseError(path, i + 1, 'unterminated quoted value');
      }
    });
  }

  private settings(name?: string): Setting[] {
    const want = name?.toLowerCase();
    const out: Setting[] = [];
    this.lines.forEach((l, index) => {
      if (isComment(l.text)) return;
      const m = SETTING.exec(l.text);
      if (!m) return;
      if (want !== undefined && m[2]!.toLowerCase() !== want) return;
      const raw = m[4]!;
      const quoted = raw.startsWith("'");
      out.push({
        index,
        name: m[2]!,
        value: quoted ? unquote(raw) : raw,
        before: m[1]! + m[2]! + m[3]!,
        after: m[5]!,
        quoted,
      });
    });
    return out;
  }

  /** Every active setting, name -> effective value. */
  all(): Map<string, string> {
    const out = new Map<string, string>();
    for (const s of this.settings()) out.set(s.name.toLowerCase(), s.value);
    return out;
  }

  get(name: string): string | undefined {
    return this.settings(name).at(-1)?.value;
  }

  set(name: string, value: string | number | boolean): boolean {
    checkName(this.path, name);
    const v = typeof value === 'boolean' ? (value ? 'on' : 'off') : String(value);
    if (/[\r\n]/.test(v)) throw new ConfigEditError(this.path, `the value for ${name} contains a line break.`);
    const last = this.settings(name).at(-1);
    if (last) {
      if (last.value === v) return false;
      this.lines[last.index]!.text = last.before + render(v, last.quoted) + last.after;
      return true;
    }
    const commented = this.lines.findIndex((l) =>
      new RegExp(`^\\s*#\\s*${name.replace(/\./g, '\\.')}\\s*(=|\\s)`, 'i').test(l.text),
    );
    const text = `${name} = ${render(v, typeof value === 'string' && !/^-?\d+(\.\d+)?[A-Za-z]*$/.test(v))}`;
    insertLines(this.lines, commented >= 0 ? commented + 1 : this.lines.length, [text]);
    return true;
  }

  /** Remove every active occurrence of the setting (PostgreSQL then uses its default). */
  unset(name: string): boolean {
    const found = this.settings(name);
    for (const s of [...found].reverse()) removeLines(this.lines, s.index);
    return found.length > 0;
  }

  apply(op: PostgresqlConfOp): boolean {
    return op.op === 'set' ? this.set(op.name, op.value) : this.unset(op.name);
  }

  toString(): string {
    return joinLines(this.lines);
  }
}

function isComment(t: string): boolean {
  return /^\s*(#|$)/.test(t);
}

function unquote(raw: string): string {
  return raw.slice(1, -1).replace(/''|\\(.)/g, (m, c: string | undefined) => (m === "''" ? "'" : (c ?? '')));
}

/** Quote unless the value is a plain word, number or number with unit. */
function render(v: string, quote: boolean): string {
  if (!quote && /^[A-Za-z0-9_.-]+$/.test(v)) return v;
  return `'${v.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

function checkName(path: string, name: string): void {
  if (!/^[A-Za-z_][A-Za-z0-9_.]*$/.test(name))
    throw new ConfigEditError(path, `"${name}" is not a PostgreSQL setting name.`);
}

export function parsePostgresqlConf(text: string, path: string): PostgresqlConfDocument {
  return new PostgresqlConfDocument(text, path);
}
