import { isSameRule, noRuleSelected, renderAuthRule, ruleIndex, selectedRuleIndexes } from './auth-rules.js';
import type { AuthRule, AuthRuleSelection } from './auth-rules.js';
import { ConfigEditError, ConfigParseError } from './errors.js';
import { isPlainObject } from './json.js';
import { detectEolText, indentOf, lineEnd, lineOfOffset, lineStart, splice } from './text.js';

/**
 * puppetserver's HOCON files (ca.conf, webserver.conf, auth.conf,
 * puppetserver.conf, ...). A small hand-written parser records where every
 * field, object, array and value sits in the source; edits splice new text at
 * those offsets, so comments, ordering, spacing and line endings stay as they
 * were. It understands the HOCON that Puppet's files use: braced or braceless
 * root, `:`/`=`/`+=`/implicit-object separators, dotted and quoted keys,
 * quoted, triple-quoted and unquoted strings, substitutions, arrays, comments
 * with `#` and `//`, commas or newlines between fields, `include` lines.
 * Repeated keys merge as HOCON merges them (objects deep, the last scalar wins).
 */
export type HoconPath = readonly (string | number)[];
export type HoconScalar = string | number | boolean | null;
export type HoconValue = HoconScalar | readonly HoconScalar[];
export type HoconOp =
  | { op: 'set'; path: HoconPath; value: HoconValue }
  | { op: 'unset'; path: HoconPath }
  | { op: 'add-to-list'; path: HoconPath; value: HoconScalar }
  | { op: 'remove-from-list'; path: HoconPath; value: HoconScalar }
  /** Add a certname to the `allow` of every auth.conf rule guarding the CA admin endpoints (pp_cli_auth). */
  | { op: 'auth-allow'; certname: string; rules?: AuthRuleSelection }
  /** auth.conf: this rule (by name) first in `authorization.rules`, exactly as given (replaced when it differs). */
  | { op: 'auth-rule'; rule: AuthRule }
  /** auth.conf: no rule of this name. */
  | { op: 'auth-rule-remove'; name: string };

interface Span {
  start: number;
  end: number;
}
export interface HoconObject extends Span {
  kind: 'object';
  fields: HoconField[];
  braced: boolean;
}
export interface HoconArray extends Span {
  kind: 'array';
  items: HoconNode[];
}
export interface HoconScalarNode extends Span {
  kind: 'scalar';
  raw: string;
  value: HoconScalar;
  quoted: boolean;
}
export type HoconNode = HoconObject | HoconArray | HoconScalarNode;
export interface HoconField extends Span {
  key: string[];
  value: HoconNode;
}

const UNQUOTED_STOP = new Set([...'$"{}[]:=,+#`^?!@*&\\\n']);

class Parser {
  i = 0;
  constructor(
    private readonly s: string,
    private readonly path: string,
  ) {}

  fail(msg: string, at = this.i): never {
    throw new ConfigParseError(this.path, lineOfOffset(this.s, at), msg);
  }

  /** Skip blanks and comments; newlines too when asked. */
  ws(newlines: boolean): void {
    const s = this.s;
    while (this.i < s.length) {
      const c = s[this.i]!;
      if (c === ' ' || c === '\t' || c === '\r' || c === '\uFEFF' || (newlines && c === '\n')) this.i++;
      else if (c === '#' || (c === '/' && s[this.i + 1] === '/')) {
        while (this.i < s.length && s[this.i] !== '\n') this.i++;
      } else break;
    }
  }

  root(): HoconObject {
    this.ws(true);
    if (this.s[this.i] === '{') {
      const start = this.i++;
      const obj = this.body(start, true);
      this.ws(true);
      if (this.i < this.s.length) this.fail('unexpected content after the closing brace of the root object');
      return obj;
    }
    return this.body(0, false);
  }

  body(start: number, braced: boolean): HoconObject {
    const fields: HoconField[] = [];
    const s = this.s;
    for (;;) {
      this.ws(true);
      if (s[this.i] === ',') {
        this.i++;
        continue;
      }
      if (this.i >= s.length) {
        if (braced) this.fail('unterminated { block (no closing brace)', start);
        return { kind: 'object', start, end: s.length, fields, braced };
      }
      if (s[this.i] === '}') {
        if (!braced) this.fail('unexpected }');
        this.i++;
        return { kind: 'object', start, end: this.i, fields, braced };
      }
      if (/^include\s/.test(s.slice(this.i, this.i + 8))) {
        while (this.i < s.length && s[this.i] !== '\n') this.i++;
        continue;
      }
      fields.push(this.field());
    }
  }

  field(): HoconField {
    const start = this.i;
    const key = this.key();
    this.ws(false);
    const s = this.s;
    if (s[this.i] === ':' || s[this.i] === '=') this.i++;
    else if (s.startsWith('+=', this.i)) this.i += 2;
    else if (s[this.i] !== '{') this.fail(`expected ":" or "=" after the key ${key.join('.')}`);
    this.ws(false);
    const value = this.value();
    return { key, value, start, end: value.end };
  }

  key(): string[] {
    const s = this.s;
    const segs: string[] = [];
    let cur = '';
    let any = false;
    for (;;) {
      const c = s[this.i];
      if (c === '"') {
        const q = this.quoted();
        cur += q.value as string;
        any = true;
      } else if (c === '.') {
        segs.push(cur);
        cur = '';
        this.i++;
      } else if (c !== undefined && !UNQUOTED_STOP.has(c) && !/\s/.test(c) && !(c === '/' && s[this.i + 1] === '/')) {
        cur += c;
        any = true;
        this.i++;
      } else break;
    }
    if (!any) this.fail(this.i >= s.length ? 'unexpected end of file' : `expected a key, found "${s[this.i]}"`);
    segs.push(cur);
    return segs;
  }

  /** A value, with HOCON value concatenation on one line. */
  value(): HoconNode {
    const start = this.i;
    const first = this.simple();
    let last: HoconNode = first;
    let parts = 1;
    for (;;) {
      const save = this.i;
      while (this.s[this.i] === ' ' || this.s[this.i] === '\t') this.i++;
      const c = this.s[this.i];
      if (
        c === undefined ||
        c === '\n' ||
        c === '\r' ||
        c === ',' ||
        c === '}' ||
        c === ']' ||
        c === '#' ||
        (c === '/' && this.s[this.i + 1] === '/')
      ) {
        this.i = save;
        break;
      }
      last = this.simple();
      parts++;
    }
    if (parts === 1) return first;
    const raw = this.s.slice(start, last.end);
    return { kind: 'scalar', start, end: last.end, raw, value: raw, quoted: false };
  }

  simple(): HoconNode {
    const s = this.s;
    const c = s[this.i];
    const start = this.i;
    if (c === '{') {
      this.i++;
      return this.body(start, true);
    }
    if (c === '[') {
      this.i++;
      const items: HoconNode[] = [];
      for (;;) {
        this.ws(true);
        if (s[this.i] === ',') {
          this.i++;
          continue;
        }
        if (this.i >= s.length) this.fail('unterminated [ list (no closing bracket)', start);
        if (s[this.i] === ']') {
          this.i++;
          return { kind: 'array', start, end: this.i, items };
        }
        items.push(this.value());
      }
    }
    if (c === '"') return this.quoted();
    if (c === '$' && s[this.i + 1] === '{') {
      const close = s.indexOf('}', this.i);
      const nl = s.indexOf('\n', this.i);
      if (close === -1 || (nl !== -1 && nl < close)) this.fail('unterminated ${ substitution');
      this.i = close + 1;
      const raw = s.slice(start, this.i);
      return { kind: 'scalar', start, end: this.i, raw, value: raw, quoted: false };
    }
    while (this.i < s.length) {
      const d = s[this.i]!;
      if (UNQUOTED_STOP.has(d) || d === '\r' || (d === '/' && s[this.i + 1] === '/')) break;
      this.i++;
    }
    let end = this.i;
    while (end > start && (s[end - 1] === ' ' || s[end - 1] === '\t')) end--;
    if (end === start)
      this.fail(
        this.i >= s.length
          ? 'unexpected end of file, a value was expected'
          : `unexpected "${s[this.i]}" where a value was expected`,
      );
    this.i = end;
    const raw = s.slice(start, end);
    return { kind: 'scalar', start, end, raw, value: unquotedValue(raw), quoted: false };
  }

  quoted(): HoconScalarNode {
    const s = this.s;
    const start = this.i;
    if (s.startsWith('"""', this.i)) {
      const close = s.indexOf('"""', this.i + 3);
      if (close === -1) this.fail('unterminated """ string', start);
      let end = close + 3;
      while (s[end] === '"') end++;
      this.i = end;
      return { kind: 'scalar', start, end, raw: s.slice(start, end), value: s.slice(start + 3, end - 3), quoted: true };
    }
    let j = this.i + 1;
    while (j < s.length && s[j] !== '"' && s[j] !== '\n') j += s[j] === '\\' ? 2 : 1;
    if (s[j] !== '"') this.fail('unterminated quoted string', start);
    this.i = j + 1;
    const raw = s.slice(start, this.i);
    let value: string;
    try {
      value = JSON.parse(raw) as string;
    } catch {
      this.fail('invalid escape in a quoted string', start);
    }
    return { kind: 'scalar', start, end: this.i, raw, value, quoted: true };
  }
}

function unquotedValue(raw: string): HoconScalar {
  if (raw === 'true' || raw === 'yes' || raw === 'on') return raw === 'true' ? true : raw;
  if (raw === 'false') return false;
  if (raw === 'null') return null;
  if (/^-?\d+(\.\d+)?([eE][+-]?\d+)?$/.test(raw)) return Number(raw);
  return raw;
}

export function toJs(node: HoconNode): unknown {
  if (node.kind === 'scalar') return node.value;
  if (node.kind === 'array') return node.items.map(toJs);
  const out: Record<string, unknown> = {};
  for (const f of node.fields) {
    let target = out;
    for (const k of f.key.slice(0, -1)) {
      const next = target[k];
      if (next === null || typeof next !== 'object' || Array.isArray(next)) target[k] = {};
      target = target[k] as Record<string, unknown>;
    }
    const last = f.key.at(-1)!;
    const v = toJs(f.value);
    const prev = target[last];
    target[last] = isPlainObject(prev) && isPlainObject(v) ? deepMergeObjects(prev, v) : v;
  }
  return out;
}

function deepMergeObjects(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const p = out[k];
    out[k] = isPlainObject(p) && isPlainObject(v) ? deepMergeObjects(p, v) : v;
  }
  return out;
}

function renderScalar(v: HoconScalar, quotedStyle: boolean | undefined): string {
  if (v === null) return 'null';
  if (typeof v !== 'string') return String(v);
  if (
    quotedStyle === false &&
    /^[A-Za-z0-9_./-]+$/.test(v) &&
    typeof unquotedValue(v) === 'string' &&
    !v.includes('//')
  )
    return v;
  return JSON.stringify(v);
}

function renderValue(v: HoconValue, quotedStyle?: boolean): string {
  if (Array.isArray(v)) return `[${(v as HoconScalar[]).map((x) => renderScalar(x, quotedStyle)).join(', ')}]`;
  return renderScalar(v as HoconScalar, quotedStyle);
}

function sameValue(node: HoconNode, v: HoconValue): boolean {
  return JSON.stringify(toJs(node)) === JSON.stringify(v);
}

export class HoconDocument {
  readonly path: string;
  private text: string;
  private root!: HoconObject;

  constructor(text: string, path: string) {
    this.path = path;
    this.text = text;
    this.reparse();
  }

  private reparse(): void {
    this.root = new Parser(this.text, this.path).root();
  }

  /** The merged value at the path as plain JS (objects, arrays, scalars). */
  get(path: HoconPath): unknown {
    let cur: unknown = toJs(this.root);
    for (const k of path) {
      if (cur === null || typeof cur !== 'object') return undefined;
      cur = (cur as Record<string | number, unknown>)[k];
    }
    return cur;
  }

  /** The parsed tree (offsets into toString()). */
  tree(): HoconObject {
    return this.root;
  }

  /**
   * Set a scalar (or a list of scalars). Existing value replaced in place; a missing key is added inside the nearest
   * existing object.
   */
  set(path: HoconPath, value: HoconValue): boolean {
    if (path.length === 0) throw new ConfigEditError(this.path, 'an empty HOCON path cannot be set.');
    const hit = this.resolve(path).at(-1);
    if (hit) {
      if (sameValue(hit.node, value)) return false;
      if (hit.node.kind === 'object') throw new ConfigEditError(this.path, `${show(path)} is an object, not a value.`);
      const quotedStyle =
        hit.node.kind === 'scalar'
          ? hit.node.quoted
          : hit.node.items[0]?.kind === 'scalar'
            ? hit.node.items[0].quoted
            : undefined;
      this.text = splice(this.text, hit.node.start, hit.node.end, renderValue(value, quotedStyle));
    } else {
      this.insert(path, renderValue(value, true));
    }
    this.reparse();
    return true;
  }

  /** Remove the field(s) at the path; each must sit on its own lines. */
  unset(path: HoconPath): boolean {
    const hits = this.resolve(path).filter((h) => h.field && h.field.key.length === h.keyDepth);
    if (hits.length === 0) return false;
    for (const h of [...hits].reverse()) {
      const f = h.field!;
      const s = lineStart(this.text, f.start);
      let e = lineEnd(this.text, f.end);
      const tail = this.text.slice(f.end, e).trim();
      if (
        this.text.slice(s, f.start).trim() !== '' ||
        (tail !== '' && tail !== ',' && !tail.startsWith('#') && !tail.startsWith('//'))
      ) {
        throw new ConfigEditError(this.path, `${show(path)} shares its line with other content; edit it by hand.`);
      }
      if (e === this.text.length && !this.text.endsWith('\n')) e = this.text.length;
      this.text = this.text.slice(0, s) + this.text.slice(e);
    }
    this.reparse();
    return true;
  }

  /**
   * Make the value at the path include `value`: a list gets it appended; a
   * single value (string or object) becomes a list `[old, value]`; a missing
   * key is created holding just `value`. No change when already included.
   */
  addToList(path: HoconPath, value: HoconScalar): boolean {
    const hit = this.resolve(path).at(-1);
    if (!hit) {
      this.insert(path, renderScalar(value, true));
      this.reparse();
      return true;
    }
    const node = hit.node;
    const rendered = renderScalar(value, true);
    if (node.kind === 'array') {
      if (node.items.some((it) => it.kind === 'scalar' && it.value === value)) return false;
      const last = node.items.at(-1);
      if (!last) this.text = splice(this.text, node.start + 1, node.start + 1, rendered);
      else if (lineOfOffset(this.text, node.start) !== lineOfOffset(this.text, last.end)) {
        const ls = lineStart(this.text, last.start);
        const indent = indentOf(this.text.slice(ls, last.start));
        const onOwnLine = this.text.slice(ls, last.start).trim() === '';
        const eol = detectEolText(this.text);
        this.text = splice(this.text, last.end, last.end, onOwnLine ? `,${eol}${indent}${rendered}` : `, ${rendered}`);
      } else this.text = splice(this.text, last.end, last.end, `, ${rendered}`);
    } else {
      if (node.kind === 'scalar' && node.value === value) return false;
      this.text = splice(this.text, node.end, node.end, `, ${rendered}]`);
      this.text = splice(this.text, node.start, node.start, '[');
    }
    this.reparse();
    return true;
  }

  /** Remove `value` from the list at the path (no change when absent). */
  removeFromList(path: HoconPath, value: HoconScalar): boolean {
    const hit = this.resolve(path).at(-1);
    if (!hit) return false;
    const node = hit.node;
    if (node.kind !== 'array') {
      if (node.kind === 'scalar' && node.value === value)
        throw new ConfigEditError(this.path, `${show(path)} holds only that value; unset it instead.`);
      return false;
    }
    const idx = node.items.findIndex((it) => it.kind === 'scalar' && it.value === value);
    if (idx === -1) return false;
    const item = node.items[idx]!;
    const prev = node.items[idx - 1];
    const next = node.items[idx + 1];
    // remove the item together with the separator that joined it to a neighbour
    if (prev) this.text = splice(this.text, prev.end, item.end, '');
    else if (next) this.text = splice(this.text, item.start, next.start, '');
    else this.text = splice(this.text, item.start, item.end, '');
    this.reparse();
    return true;
  }

  /**
   * auth.conf: add `certname` to the allow list of the chosen rules: by
   * default the rules whose allow requires the pp_cli_auth extension (the CA
   * admin endpoints: certificate_status(es), clean, CRL update); else the rules named.
   */
  authAllow(certname: string, rules: AuthRuleSelection = 'ca-admin'): boolean {
    const matches = selectedRuleIndexes(this.authRules(), rules);
    if (matches.length === 0) throw new ConfigEditError(this.path, noRuleSelected(rules));
    let changed = false;
    for (const i of matches) changed = this.addToList(['authorization', 'rules', i, 'allow'], certname) || changed;
    return changed;
  }

  /** auth.conf: the rule named `rule.name` first in the rules list, exactly as given; no change when it already is. */
  authRule(rule: AuthRule): boolean {
    const list = this.authRules();
    const at = ruleIndex(list, rule.name);
    if (at === 0 && isSameRule(list[0], rule)) return false;
    if (at >= 0) this.authRuleRemove(rule.name);
    const arr = this.resolve(['authorization', 'rules']).at(-1)?.node;
    if (arr?.kind !== 'array') throw new ConfigEditError(this.path, 'authorization.rules is not a list.');
    const eol = detectEolText(this.text);
    const first = arr.items[0];
    if (first) {
      const indent = indentOf(this.text.slice(lineStart(this.text, first.start)));
      this.text = splice(this.text, first.start, first.start, `${renderAuthRule(rule, indent, eol)},${eol}${indent}`);
    } else {
      const indent = `${indentOf(this.text.slice(lineStart(this.text, arr.start)))}    `;
      this.text = splice(
        this.text,
        arr.start + 1,
        arr.end - 1,
        `${eol}${indent}${renderAuthRule(rule, indent, eol)}${eol}${indent.slice(4)}`,
      );
    }
    this.reparse();
    return true;
  }

  /** auth.conf: remove every rule named `name` (no change when there is none). */
  authRuleRemove(name: string): boolean {
    let changed = false;
    for (;;) {
      const arr = this.resolve(['authorization', 'rules']).at(-1)?.node;
      if (arr?.kind !== 'array') return changed;
      const list = this.get(['authorization', 'rules']) as unknown[];
      const idx = ruleIndex(list, name);
      if (idx === -1) return changed;
      const item = arr.items[idx]!;
      const prev = arr.items[idx - 1];
      const next = arr.items[idx + 1];
      if (next) this.text = splice(this.text, item.start, next.start, '');
      else if (prev) this.text = splice(this.text, prev.end, item.end, '');
      else this.text = splice(this.text, item.start, item.end, '');
      this.reparse();
      changed = true;
    }
  }

  /** auth.conf's `authorization.rules` as parsed values. */
  private authRules(): unknown[] {
    const list = this.get(['authorization', 'rules']);
    if (!Array.isArray(list))
      throw new ConfigEditError(this.path, 'no authorization.rules list: is this an auth.conf?');
    return list;
  }

  apply(op: HoconOp): boolean {
    switch (op.op) {
      case 'set':
        return this.set(op.path, op.value);
      case 'unset':
        return this.unset(op.path);
      case 'add-to-list':
        return this.addToList(op.path, op.value);
      case 'remove-from-list':
        return this.removeFromList(op.path, op.value);
      case 'auth-allow':
        return this.authAllow(op.certname, op.rules);
      case 'auth-rule':
        return this.authRule(op.rule);
      case 'auth-rule-remove':
        return this.authRuleRemove(op.name);
    }
  }

  toString(): string {
    return this.text;
  }

  /** Every (field, node) the path names, in source order; the last is the effective one. */
  private resolve(path: HoconPath): { node: HoconNode; field?: HoconField; keyDepth: number }[] {
    const out: { node: HoconNode; field?: HoconField; keyDepth: number }[] = [];
    const walk = (node: HoconNode, rest: HoconPath, field: HoconField | undefined, keyDepth: number): void => {
      if (rest.length === 0) {
        out.push({ node, ...(field ? { field } : {}), keyDepth });
        return;
      }
      const k = rest[0]!;
      if (node.kind === 'array') {
        if (typeof k === 'number' && node.items[k]) walk(node.items[k], rest.slice(1), undefined, 0);
        return;
      }
      if (node.kind !== 'object') return;
      for (const f of node.fields) {
        const n = Math.min(f.key.length, rest.length);
        let ok = true;
        for (let j = 0; j < n; j++) if (f.key[j] !== String(rest[j])) ok = false;
        if (!ok || f.key.length > rest.length) continue;
        walk(f.value, rest.slice(f.key.length), f, f.key.length);
      }
    };
    walk(this.root, path, undefined, 0);
    return out;
  }

  /** Add `path = rendered` inside the deepest existing object on the path. */
  private insert(path: HoconPath, rendered: string): void {
    let obj: HoconObject = this.root;
    let depth = 0;
    for (;;) {
      if (depth >= path.length) break;
      const hits = this.resolve(path.slice(0, depth + 1));
      const h = hits.at(-1);
      if (!h) break;
      if (h.node.kind === 'object') {
        obj = h.node;
        depth++;
        continue;
      }
      if (h.node.kind === 'array' && typeof path[depth + 1] === 'number') {
        const item = h.node.items[path[depth + 1] as number];
        if (item?.kind !== 'object')
          throw new ConfigEditError(this.path, `${show(path.slice(0, depth + 2))} is not an object.`);
        obj = item;
        depth += 2;
        continue;
      }
      throw new ConfigEditError(this.path, `${show(path.slice(0, depth + 1))} is not an object.`);
    }
    const rest = path.slice(depth);
    if (rest.some((k) => typeof k !== 'string'))
      throw new ConfigEditError(this.path, `${show(path)}: no such list item.`);
    const place = this.placeField(obj);
    const keyText = (k: string | number): string =>
      /^[A-Za-z0-9_-]+$/.test(String(k)) ? String(k) : JSON.stringify(String(k));
    if (place.inline !== undefined) {
      let field = `${keyText(rest.at(-1)!)}: ${rendered}`;
      for (let i = rest.length - 2; i >= 0; i--) field = `${keyText(rest[i]!)}: { ${field} }`;
      this.text = splice(this.text, place.at, place.at, place.inline.before + field + place.inline.after);
      return;
    }
    const { indent, at, eol } = place;
    const step = '    ';
    const out: string[] = [];
    rest.forEach((k, i) =>
      out.push(`${indent}${step.repeat(i)}${keyText(k)}: ${i === rest.length - 1 ? rendered : '{'}`),
    );
    for (let i = rest.length - 2; i >= 0; i--) out.push(`${indent}${step.repeat(i)}}`);
    let chunk = out.join(eol);
    if (place.breakLine !== undefined) chunk = eol + chunk + place.breakLine;
    else if (at === this.text.length && this.text.length > 0 && !this.text.endsWith('\n')) chunk = eol + chunk;
    else chunk += eol;
    this.text = splice(this.text, at, at, chunk);
  }

  /**
   * Where a new field of `obj` goes. An object written on one line gets it
   * inline (`{ a: 1, new: 2 }`). Otherwise it goes on lines of its own after
   * the last field: after that field's line when only a comma or a comment
   * follows it there, else right after the field, breaking the line
   * (`  b: 1 }` becomes `  b: 1` + the new field + ` }`), so the field never
   * lands after a closing brace that shares its line.
   */
  private placeField(obj: HoconObject): {
    at: number;
    eol: string;
    indent: string;
    inline?: { before: string; after: string };
    breakLine?: string;
  } {
    const t = this.text;
    const eol = detectEolText(t);
    const last = obj.fields.at(-1);
    const ownIndent = obj.braced ? indentOf(t.slice(lineStart(t, obj.start))) : '';
    const lined = obj.fields.find((f) => t.slice(lineStart(t, f.start), f.start).trim() === '');
    const indent = lined ? indentOf(t.slice(lineStart(t, lined.start))) : obj.braced ? `${ownIndent}    ` : '';
    if (obj.braced && !t.slice(obj.start, obj.end).includes('\n')) {
      if (last) return { at: last.end, eol, indent, inline: { before: ', ', after: '' } };
      return {
        at: obj.start + 1,
        eol,
        indent,
        inline: { before: ' ', after: /\s/.test(t[obj.start + 1]!) ? '' : ' ' },
      };
    }
    if (last) {
      const le = lineEnd(t, last.end);
      const tail = t.slice(last.end, le).replace(/\r?\n$/, '');
      if (/^[\s,]*(?:(?:#|\/\/).*)?$/.test(tail)) return { at: le, eol, indent };
      return { at: last.end, eol, indent, breakLine: '' };
    }
    if (!obj.braced) return { at: t.length, eol, indent };
    const close = obj.end - 1;
    const cs = lineStart(t, close);
    if (t.slice(cs, close).trim() === '') return { at: cs, eol, indent };
    return { at: close, eol, indent, breakLine: eol + ownIndent };
  }
}

function show(path: HoconPath): string {
  return path.map(String).join('.') || '(root)';
}

export function parseHocon(text: string, path: string): HoconDocument {
  return new HoconDocument(text, path);
}
