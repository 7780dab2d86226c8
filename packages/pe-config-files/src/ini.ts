import { ConfigEditError } from './errors.js';
import { type Line, splitLines, joinLines, insertLines, removeLines, indentOf } from './text.js';

/**
 * INI files as Puppet, PuppetDB and Jetty read them (puppet.conf,
 * database.ini, jetty.ini, config.ini): `[section]` headers, `key = value`
 * (or `key: value`), `#`/`;` comment lines. Keys before the first header
 * belong to the section ''. A repeated section continues the earlier one; for
 * a repeated key the last one wins, as in Puppet and the `ini` package.
 *
 * Lossless: only the lines an edit must touch change; everything else,
 * comments, blank lines, indentation, CRLF, a missing final newline, stays.
 */
export type IniOp =
  { op: 'set'; section: string; key: string; value: string } | { op: 'unset'; section: string; key: string };

interface Entry {
  index: number;
  section: string;
  key: string;
  value: string;
  /** Everything before the value (indent, key, spacing, separator, spacing). */
  prefix: string;
  /** Whitespace after the value. */
  suffix: string;
}

interface Header {
  index: number;
  name: string;
}

const SECTION = /^\s*\[([^\]]*)\]\s*(?:[#;].*)?$/;
const COMMENT = /^\s*(?:[#;]|$)/;

export class IniDocument {
  readonly path: string;
  private readonly lines: Line[];
  private entries: Entry[] = [];
  private headers: Header[] = [];

  constructor(text: string, path: string) {
    this.path = path;
    this.lines = splitLines(text);
    this.scan();
  }

  private scan(): void {
    this.entries = [];
    this.headers = [];
    let section = '';
    this.lines.forEach((line, index) => {
      const t = line.text;
      if (COMMENT.test(t)) return;
      const h = SECTION.exec(t);
      if (h) {
        section = h[1]!.trim();
        this.headers.push({ index, name: section });
        return;
      }
      const e = parseAssignment(t);
      if (e) this.entries.push({ index, section, ...e });
    });
  }

  sections(): string[] {
    return [...new Set(this.headers.map((h) => h.name))];
  }

  /** Keys of a section, in file order, without repeats. */
  keys(section: string): string[] {
    return [...new Set(this.entries.filter((e) => e.section === section).map((e) => e.key))];
  }

  has(section: string, key: string): boolean {
    return this.find(section, key).length > 0;
  }

  /** The effective (last) value of the key, undefined when absent. */
  get(section: string, key: string): string | undefined {
    return this.find(section, key).at(-1)?.value;
  }

  /**
   * Set a key. Every existing occurrence of the key in the section is updated
   * in place (so no stale duplicate can win); when absent, the key is added
   * after the section's last key, with the section's own indentation and
   * spacing, and the section is appended when absent. Returns whether the file changed.
   */
  set(section: string, key: string, value: string): boolean {
    validateKey(this.path, key);
    if (/[\r\n]/.test(value))
      throw new ConfigEditError(
        this.path,
        `the value for ${section ? `[${section}] ` : ''}${key} contains a line break.`,
      );
    if (value !== value.trim())
      throw new ConfigEditError(
        this.path,
        `the value for ${key} has leading or trailing whitespace, which INI cannot keep.`,
      );
    const found = this.find(section, key);
    if (found.length > 0) {
      let changed = false;
      for (const e of found) {
        if (e.value === value) continue;
        this.lines[e.index]!.text = e.prefix + value + e.suffix;
        changed = true;
      }
      if (changed) this.scan();
      return changed;
    }
    const style = this.styleFor(section);
    const text = `${style.indent}${key}${style.sep}${value}`;
    const blocks = this.headers.filter((h) => h.name === section);
    if (section === '' || blocks.length > 0) {
      const at = this.insertionPoint(section, blocks.at(-1));
      insertLines(this.lines, at, [text]);
    } else {
      const add: string[] = [];
      const last = this.lines.at(-1);
      if (last && last.text.trim() !== '') add.push('');
      add.push(`[${section}]`, text);
      insertLines(this.lines, this.lines.length, add);
    }
    this.scan();
    return true;
  }

  /** Remove every occurrence of the key in the section. Returns whether the file changed. */
  unset(section: string, key: string): boolean {
    const found = this.find(section, key);
    for (const e of [...found].reverse()) removeLines(this.lines, e.index);
    if (found.length > 0) this.scan();
    return found.length > 0;
  }

  apply(op: IniOp): boolean {
    return op.op === 'set' ? this.set(op.section, op.key, op.value) : this.unset(op.section, op.key);
  }

  toString(): string {
    return joinLines(this.lines);
  }

  private find(section: string, key: string): Entry[] {
    return this.entries.filter((e) => e.section === section && e.key === key);
  }

  private insertionPoint(section: string, header: Header | undefined): number {
    const inSection = this.entries.filter((e) => e.section === section);
    const lastHeaderIndex = header?.index ?? -1;
    const lastInBlock = inSection.filter((e) => e.index > lastHeaderIndex).at(-1);
    if (lastInBlock) return lastInBlock.index + 1;
    if (header) return header.index + 1;
    // top-level key, none yet: before the first header (after leading comments)
    const first = this.headers[0];
    if (!first) return this.lines.length;
    let at = first.index;
    while (at > 0 && this.lines[at - 1]!.text.trim() === '') at--;
    return at;
  }

  /** Indentation and separator of the section's keys, else the file's, else `key = value`. */
  private styleFor(section: string): { indent: string; sep: string } {
    const sample = this.entries.filter((e) => e.section === section).at(-1) ?? this.entries.at(-1);
    if (!sample) return { indent: '', sep: ' = ' };
    const indent = indentOf(sample.prefix);
    const m = /^\s*\S(?:.*?\S)?(\s*[=:]\s*)$/.exec(sample.prefix);
    return { indent, sep: m?.[1] ?? ' = ' };
  }
}

function parseAssignment(t: string): Omit<Entry, 'index' | 'section'> | undefined {
  let sepAt = t.indexOf('=');
  if (sepAt === -1) sepAt = t.indexOf(':');
  if (sepAt === -1) return undefined;
  const key = t.slice(0, sepAt).trim();
  if (key === '') return undefined;
  const afterSep = t.slice(sepAt + 1);
  const lead = /^[ \t]*/.exec(afterSep)![0];
  const rest = afterSep.slice(lead.length);
  const trail = /[ \t]*$/.exec(rest)![0];
  const value = rest.slice(0, rest.length - trail.length);
  return { key, value, prefix: t.slice(0, sepAt + 1) + lead, suffix: trail };
}

function validateKey(path: string, key: string): void {
  if (!/^[^\s=:[\]#;][^=:\r\n]*$/.test(key) || key !== key.trim())
    throw new ConfigEditError(path, `"${key}" is not a valid INI key.`);
}

export function parseIni(text: string, path: string): IniDocument {
  return new IniDocument(text, path);
}
