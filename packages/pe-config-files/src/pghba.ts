import { ConfigEditError, ConfigParseError } from './errors.js';
import { type Line, splitLines, joinLines, insertLines, removeLines } from './text.js';

/**
 * pg_hba.conf: one record per line, `type database user [address [mask]]
 * method [options]`, `#` comments, double-quoted fields. A record is
 * identified by (type, database, user, address): adding a record that exists
 * is a no-op, adding one whose method or options differ rewrites that line in
 * place (never a duplicate). New lines are padded to the columns of the
 * file's last record so the table stays aligned. A line ending in a
 * backslash continues on the next one (PostgreSQL 16+, comment lines too):
 * such lines are one record, rewritten or removed whole, and nothing is ever
 * inserted between them.
 */
export interface HbaRecord {
  type: 'local' | 'host' | 'hostssl' | 'hostnossl' | 'hostgssenc' | 'hostnogssenc';
  database: string;
  user: string;
  /** CIDR address, host name, `all`, `samehost`, `samenet` (absent for local). */
  address?: string;
  method: string;
  options?: string;
}

/** Fields a record must have to be removed (all given ones must match). */
export type HbaMatch = Partial<Omit<HbaRecord, 'options'>>;

export type PgHbaOp = { op: 'add'; record: HbaRecord; position?: 'end' | 'start' } | { op: 'remove'; match: HbaMatch };

const TYPES = new Set(['local', 'host', 'hostssl', 'hostnossl', 'hostgssenc', 'hostnogssenc']);

interface Parsed {
  /** First and last line of the record (last > index when backslashes continue it). */
  index: number;
  lastIndex: number;
  record: HbaRecord;
  /** Column where each field starts, for alignment. */
  columns: number[];
}

function tokenize(t: string, path: string, lineNo: number): { tokens: string[]; columns: number[] } {
  const tokens: string[] = [];
  const columns: number[] = [];
  const n = t.length;
  let i = 0;
  while (i < n) {
    const c = t.charCodeAt(i);
    if (c === 32 || c === 9) {
      i++;
      continue;
    }
    if (c === 35) break; // '#'
    const start = i;
    while (i < n) {
      const d = t.charCodeAt(i);
      if (d === 32 || d === 9 || d === 35) break;
      if (d === 34) {
        // '"': a quoted stretch may hold blanks and '#'
        const close = t.indexOf('"', i + 1);
        if (close === -1) throw new ConfigParseError(path, lineNo, 'unterminated double quote');
        i = close + 1;
      } else i++;
    }
    tokens.push(t.slice(start, i));
    columns.push(start);
  }
  return { tokens, columns };
}

export class PgHbaDocument {
  readonly path: string;
  private readonly lines: Line[];

  private cache: Parsed[] | undefined;

  constructor(text: string, path: string) {
    this.path = path;
    this.lines = splitLines(text);
    this.parsed();
  }

  records(): (HbaRecord & { line: number })[] {
    return this.parsed().map((p) => ({ ...p.record, line: p.index + 1 }));
  }

  private parsed(): Parsed[] {
    if (this.cache) return this.cache;
    const out: Parsed[] = [];
    for (let index = 0; index < this.lines.length;) {
      let lastIndex = index;
      while (lastIndex < this.lines.length - 1 && this.lines[lastIndex]!.text.endsWith('\\')) lastIndex++;
      // PostgreSQL drops each continuing backslash and appends the next line as it is
      const text = this.lines
        .slice(index, lastIndex + 1)
        .map((l, i) => (i < lastIndex - index ? l.text.slice(0, -1) : l.text))
        .join('');
      const p = this.parseRecord(text, index);
      if (p) out.push({ ...p, index, lastIndex });
      index = lastIndex + 1;
    }
    this.cache = out;
    return out;
  }

  /** The record of one (joined) line, or undefined for a blank, comment or include line. */
  private parseRecord(text: string, index: number): Omit<Parsed, 'index' | 'lastIndex'> | undefined {
    const { tokens, columns } = tokenize(text, this.path, index + 1);
    if (tokens.length === 0) return undefined;
    // include / include_if_exists / include_dir directives (PostgreSQL 16+)
    if (tokens[0]!.startsWith('include')) return undefined;
    const type = tokens[0]!;
    if (!TYPES.has(type)) throw new ConfigParseError(this.path, index + 1, `unknown connection type "${type}"`);
    const local = type === 'local';
    let rest = tokens.slice(3);
    let address: string | undefined;
    if (!local) {
      address = tokens[3];
      rest = tokens.slice(4);
      // address + separate netmask
      if (address && /^\d+\.\d+\.\d+\.\d+$/.test(address) && rest[0] && /^\d+\.\d+\.\d+\.\d+$/.test(rest[0])) {
        address = `${address} ${rest[0]}`;
        rest = rest.slice(1);
      }
    }
    const method = rest[0];
    if (tokens.length < 3 || method === undefined || (!local && address === undefined)) {
      throw new ConfigParseError(this.path, index + 1, 'incomplete record');
    }
    const record: HbaRecord = { type: type as HbaRecord['type'], database: tokens[1]!, user: tokens[2]!, method };
    if (address) record.address = address;
    if (rest.length > 1) record.options = rest.slice(1).join(' ');
    return { record, columns };
  }

  /** Add a record, or rewrite the one with the same type/database/user/address. Returns whether the file changed. */
  add(record: HbaRecord, position: 'end' | 'start' = 'end'): boolean {
    this.check(record);
    const all = this.parsed();
    const same = all.filter((p) => sameKey(p.record, record));
    const text = this.format(record, all.at(-1)?.columns);
    if (same.length > 0) {
      const first = same[0]!;
      let changed = false;
      // a duplicate record later in the file can never match: drop it (back to front: indexes stay valid)
      for (const dup of same.slice(1).reverse()) {
        removeLines(this.lines, dup.index, dup.lastIndex + 1);
        this.cache = undefined;
        changed = true;
      }
      if (first.record.method !== record.method || (first.record.options ?? '') !== (record.options ?? '')) {
        const eol = this.lines[first.lastIndex]!.eol;
        this.lines.splice(first.index, first.lastIndex - first.index + 1, {
          text: this.format(record, first.columns),
          eol,
        });
        this.cache = undefined;
        changed = true;
      }
      return changed;
    }
    const at =
      position === 'start'
        ? (all[0]?.index ?? this.lines.length)
        : (all.at(-1)?.lastIndex ?? this.lines.length - 1) + 1;
    insertLines(this.lines, at, [text]);
    this.cache = undefined;
    return true;
  }

  /** Remove every record matching all given fields. */
  remove(match: HbaMatch): boolean {
    const hits = this.parsed().filter((p) =>
      (Object.keys(match) as (keyof typeof match)[]).every(
        (k) => match[k] === undefined || normalize(String(p.record[k] ?? '')) === normalize(String(match[k])),
      ),
    );
    for (const h of [...hits].reverse()) removeLines(this.lines, h.index, h.lastIndex + 1);
    if (hits.length > 0) this.cache = undefined;
    return hits.length > 0;
  }

  apply(op: PgHbaOp): boolean {
    return op.op === 'add' ? this.add(op.record, op.position) : this.remove(op.match);
  }

  toString(): string {
    return joinLines(this.lines);
  }

  private format(r: HbaRecord, columns: number[] | undefined): string {
    const fields = [
      r.type,
      r.database,
      r.user,
      ...(r.type === 'local' ? [] : [r.address!]),
      r.method,
      ...(r.options ? [r.options] : []),
    ];
    // columns of a local record lack the address column: line methods up with host records
    const cols = columns && r.type !== 'local' && columns.length >= 5 ? columns : undefined;
    let out = '';
    fields.forEach((f, i) => {
      if (i > 0) {
        const want = cols?.[i] ?? 0;
        out += out.length < want ? ' '.repeat(want - out.length) : out.endsWith(' ') ? '' : ' ';
      }
      out += f;
    });
    return out;
  }

  private check(r: HbaRecord): void {
    if (!TYPES.has(r.type)) throw new ConfigEditError(this.path, `unknown connection type "${r.type}".`);
    const fields = [r.database, r.user, r.method, ...(r.address ? [r.address] : [])];
    if (fields.some((f) => !f || /[\s#]/.test(f.replace(/ (?=\d+\.\d+\.\d+\.\d+$)/, '')) || /[\r\n]/.test(f)))
      throw new ConfigEditError(this.path, 'a pg_hba field is empty or contains blanks.');
    if (r.type !== 'local' && !r.address) throw new ConfigEditError(this.path, `a ${r.type} record needs an address.`);
    if (r.options && /[\r\n#]/.test(r.options)) throw new ConfigEditError(this.path, 'invalid pg_hba options.');
  }
}

function normalize(s: string): string {
  return s.toLowerCase();
}

function sameKey(a: HbaRecord, b: HbaRecord): boolean {
  return (
    a.type === b.type &&
    a.database === b.database &&
    a.user === b.user &&
    normalize(a.address ?? '') === normalize(b.address ?? '')
  );
}

export function parsePgHba(text: string, path: string): PgHbaDocument {
  return new PgHbaDocument(text, path);
}
