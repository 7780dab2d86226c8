import { ConfigEditError, ConfigParseError } from './errors.js';
import { detectEolText, indentOf, lineEnd, lineOfOffset, lineStart, splice } from './text.js';

/**
 * ActiveMQ activemq.xml: the broker's <networkConnectors> and
 * <transportConnectors>. A minimal XML scanner records every element's and
 * attribute's offsets (comments, CDATA, processing instructions and DOCTYPE
 * skipped, not interpreted); edits splice attribute values and whole
 * elements, so the rest of the file (Spring beans, comments, layout) is
 * untouched. Connectors are identified by their `name` attribute.
 */
export type ConnectorKind = 'network' | 'transport';
export type ConnectorAttrs = { name: string } & Record<string, string>;
export type ActiveMqOp =
  | { op: 'set-connector'; kind: ConnectorKind; attrs: ConnectorAttrs }
  | { op: 'remove-connector'; kind: ConnectorKind; name: string };

interface Attr {
  name: string;
  value: string;
  valueStart: number;
  valueEnd: number;
  start: number;
  end: number;
}
export interface XmlElement {
  /** Local name (`broker` for `<amq:broker>`). */
  name: string;
  /** Qualified name as written (`amq:broker`). */
  qname: string;
  start: number;
  /** Offset just after the start tag's '>'. */
  tagEnd: number;
  /** Offset of the '/' of '/>' or of the '>' ending the start tag. */
  tagClose: number;
  /** Offset of the end tag's '<' (= tagEnd for a self-closing element). */
  closeStart: number;
  end: number;
  selfClosing: boolean;
  attrs: Attr[];
  children: XmlElement[];
}

function localName(q: string): string {
  return q.includes(':') ? q.slice(q.indexOf(':') + 1) : q;
}

export function unescapeXml(s: string): string {
  return s.replace(/&(lt|gt|amp|quot|apos|#\d+|#x[0-9a-fA-F]+);/g, (_m, e: string) => {
    if (e === 'lt') return '<';
    if (e === 'gt') return '>';
    if (e === 'amp') return '&';
    if (e === 'quot') return '"';
    if (e === 'apos') return "'";
    return String.fromCodePoint(e.startsWith('#x') ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
  });
}

export function escapeXmlAttr(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/"/g, '&quot;');
}

type ParseFail = (msg: string, at: number) => never;

export function parseXmlTree(s: string, path: string): XmlElement[] {
  const tree: OpenTree = { roots: [], stack: [] };
  const fail: ParseFail = (msg, at) => {
    throw new ConfigParseError(path, lineOfOffset(s, at), msg);
  };
  let i = 0;
  while (i < s.length) {
    const lt = s.indexOf('<', i);
    if (lt === -1) break;
    i =
      skipMarkup(s, lt, fail) ??
      (s[lt + 1] === '/' ? closeElement(s, lt, tree.stack, fail) : openElement(s, lt, tree, fail));
  }
  const open = tree.stack.pop();
  if (open) fail(`<${open.name}> is never closed`, open.start);
  return tree.roots;
}

/** The elements found so far, and those whose end tag is still to come (innermost last). */
interface OpenTree {
  roots: XmlElement[];
  stack: XmlElement[];
}

/**
 * Where the comment, CDATA section, processing instruction or declaration
 * starting at `i` ends (skipped, not interpreted); undefined when `i` starts a tag.
 */
function skipMarkup(s: string, i: number, fail: ParseFail): number | undefined {
  if (s.startsWith('<!--', i)) {
    const e = s.indexOf('-->', i + 4);
    if (e === -1) fail('unterminated comment', i);
    return e + 3;
  }
  if (s.startsWith('<![CDATA[', i)) {
    const e = s.indexOf(']]>', i);
    if (e === -1) fail('unterminated CDATA section', i);
    return e + 3;
  }
  if (s.startsWith('<?', i)) {
    const e = s.indexOf('?>', i);
    if (e === -1) fail('unterminated processing instruction', i);
    return e + 2;
  }
  if (s.startsWith('<!', i)) return skipDeclaration(s, i, fail);
  return undefined;
}

/** A `<!...>` declaration (DOCTYPE), whose internal subset may hold `>` inside brackets. */
function skipDeclaration(s: string, i: number, fail: ParseFail): number {
  let depth = 0;
  let j = i + 2;
  for (; j < s.length; j++) {
    if (s[j] === '[') depth++;
    else if (s[j] === ']') depth--;
    else if (s[j] === '>' && depth <= 0) break;
  }
  if (j >= s.length) fail('unterminated declaration', i);
  return j + 1;
}

/** The end tag at `i` closes the innermost open element; returns where the end tag ends. */
function closeElement(s: string, i: number, stack: XmlElement[], fail: ParseFail): number {
  const m = /^<\/([^\s>]+)\s*>/.exec(s.slice(i, i + 300));
  if (!m) fail('malformed end tag', i);
  const open = stack.pop();
  if (!open) fail(`end tag </${m![1]}> without a start tag`, i);
  if (m![1] !== open!.qname)
    fail(`end tag </${m![1]}> does not match <${open!.qname}> (line ${lineOfOffset(s, open!.start)})`, i);
  open!.closeStart = i;
  open!.end = i + m![0].length;
  return open!.end;
}

/** The start tag at `i` becomes an element of the tree (open until its end tag unless self-closing); returns where the tag ends. */
function openElement(s: string, i: number, tree: OpenTree, fail: ParseFail): number {
  const nm = /^<([A-Za-z_][\w.:-]*)/.exec(s.slice(i, i + 200));
  if (!nm) fail('malformed start tag', i);
  const start = i;
  const { attrs, tagClose } = scanAttributes(s, { from: i + nm![0].length, tag: nm![1]!, tagStart: start }, fail);
  const selfClosing = s[tagClose] === '/';
  const tagEnd = tagClose + (selfClosing ? 2 : 1);
  const el: XmlElement = {
    name: localName(nm![1]!),
    qname: nm![1]!,
    start,
    tagEnd,
    tagClose,
    closeStart: tagEnd,
    end: tagEnd,
    selfClosing,
    attrs,
    children: [],
  };
  (tree.stack.at(-1)?.children ?? tree.roots).push(el);
  if (!selfClosing) tree.stack.push(el);
  return tagEnd;
}

/** The attributes of a start tag from `from` up to its `>` or `/>` (tagClose: the offset of that `>` or `/`). */
function scanAttributes(
  s: string,
  at: { from: number; tag: string; tagStart: number },
  fail: ParseFail,
): { attrs: Attr[]; tagClose: number } {
  let j = at.from;
  const attrs: Attr[] = [];
  for (;;) {
    while (j < s.length && /\s/.test(s[j]!)) j++;
    if (j >= s.length) fail(`unterminated <${at.tag}> tag`, at.tagStart);
    if (s[j] === '>' || (s[j] === '/' && s[j + 1] === '>')) break;
    const am = /^([A-Za-z_][\w.:-]*)\s*=\s*(["'])/.exec(s.slice(j, j + 300));
    if (!am) fail(`malformed attribute in <${at.tag}>`, j);
    const q = am![2]!;
    const valueStart = j + am![0].length;
    const close = s.indexOf(q, valueStart);
    if (close === -1) fail(`unterminated attribute value in <${at.tag}>`, j);
    attrs.push({
      name: am![1]!,
      value: unescapeXml(s.slice(valueStart, close)),
      valueStart,
      valueEnd: close,
      start: j,
      end: close + 1,
    });
    j = close + 1;
  }
  return { attrs, tagClose: j };
}

function findAll(els: readonly XmlElement[], name: string): XmlElement[] {
  const out: XmlElement[] = [];
  for (const e of els) {
    if (e.name === name) out.push(e);
    out.push(...findAll(e.children, name));
  }
  return out;
}

/** The namespace prefix of an element as written, with its colon ('' when unprefixed). */
function prefixOf(el: XmlElement): string {
  return el.qname.slice(0, el.qname.length - el.name.length);
}

/** The leading blanks of the line holding `offset`. */
function lineIndent(text: string, offset: number): string {
  return indentOf(text.slice(lineStart(text, offset)));
}

/** Whether only blanks precede `offset` on its line. */
function opensLine(text: string, offset: number): boolean {
  return text.slice(lineStart(text, offset), offset).trim() === '';
}

/**
 * How the children of `parent` are indented: like its first child that
 * opens a line, else one step deeper than the parent's line. `unit` is that
 * step (4 spaces, or a tab in a tab-indented file, when it cannot be seen).
 */
function childLayout(text: string, parent: XmlElement): { indent: string; unit: string } {
  const own = lineIndent(text, parent.start);
  const lined = parent.children.find((c) => opensLine(text, c.start));
  const seen = lined ? lineIndent(text, lined.start) : undefined;
  const unit =
    seen !== undefined && seen.length > own.length && seen.startsWith(own)
      ? seen.slice(own.length)
      : own.includes('\t')
        ? '\t'
        : '    ';
  return { indent: seen ?? own + unit, unit };
}

/** New markup: an element, written as `open` alone or as `open`, one-line children, `close`. */
interface NewElement {
  open: string;
  inner: string[];
  close: string;
}

export class ActiveMqDocument {
  readonly path: string;
  private text: string;
  private roots: XmlElement[] = [];

  constructor(text: string, path: string) {
    this.path = path;
    this.text = text;
    this.reparse();
  }

  private reparse(): void {
    this.roots = parseXmlTree(this.text, this.path);
  }

  private broker(): XmlElement {
    const b = findAll(this.roots, 'broker')[0];
    if (!b || b.selfClosing) throw new ConfigEditError(this.path, 'no <broker> element.');
    return b;
  }

  private container(kind: ConnectorKind): XmlElement | undefined {
    return this.broker().children.find((c) => c.name === `${kind}Connectors`);
  }

  /** The connectors of a kind, as attribute maps. */
  connectors(kind: ConnectorKind): Record<string, string>[] {
    const c = this.container(kind);
    if (!c) return [];
    return c.children
      .filter((e) => e.name === `${kind}Connector`)
      .map((e) => Object.fromEntries(e.attrs.map((a) => [a.name, a.value])));
  }

  /** Create or update the connector with this name; only the given attributes are touched. */
  setConnector(kind: ConnectorKind, attrs: ConnectorAttrs): boolean {
    for (const [k, v] of Object.entries(attrs)) {
      if (!/^[A-Za-z_][\w.-]*$/.test(k)) throw new ConfigEditError(this.path, `"${k}" is not an attribute name.`);
      if (/[\r\n]/.test(v)) throw new ConfigEditError(this.path, `attribute ${k} contains a line break.`);
    }
    const container = this.container(kind);
    const existing = container?.children.find(
      (e) => e.name === `${kind}Connector` && e.attrs.some((a) => a.name === 'name' && a.value === attrs.name),
    );
    const changed = existing ? this.updateAttributes(existing, attrs) : this.addConnector(kind, container, attrs);
    if (changed) this.reparse();
    return changed;
  }

  /** Splices changed attribute values in place and appends missing attributes after the last one. */
  private updateAttributes(el: XmlElement, attrs: ConnectorAttrs): boolean {
    const edits: { at: number; end: number; text: string }[] = [];
    const missing: string[] = [];
    for (const [k, v] of Object.entries(attrs)) {
      const a = el.attrs.find((x) => x.name === k);
      if (!a) missing.push(k);
      else if (a.value !== v) edits.push({ at: a.valueStart, end: a.valueEnd, text: escapeXmlAttr(v) });
    }
    if (missing.length > 0) {
      const last = el.attrs.at(-1)!;
      const multiLine = lineOfOffset(this.text, last.start) !== lineOfOffset(this.text, el.start);
      const sep = multiLine ? `${detectEolText(this.text)}${lineIndent(this.text, last.start)}` : ' ';
      const add = missing.map((k) => `${sep}${k}="${escapeXmlAttr(attrs[k]!)}"`).join('');
      edits.push({ at: last.end, end: last.end, text: add });
    }
    // back to front so earlier offsets stay valid
    for (const e of edits.sort((a, b) => b.at - a.at)) this.text = splice(this.text, e.at, e.end, e.text);
    return edits.length > 0;
  }

  /**
   * A new connector element: appended to its container, or in a new
   * container placed among the broker's children in the schema's
   * alphabetical order (ActiveMQ 5.4+). New elements take the prefix of
   * the element they go into, so `<amq:broker>` gets `<amq:networkConnectors>`.
   */
  private addConnector(kind: ConnectorKind, container: XmlElement | undefined, attrs: ConnectorAttrs): true {
    const broker = this.broker();
    const prefix = prefixOf(container ?? broker);
    const list = Object.entries(attrs)
      .map(([k, v]) => `${k}="${escapeXmlAttr(v)}"`)
      .join(' ');
    const element = `<${prefix}${kind}Connector ${list}/>`;
    if (container?.selfClosing) this.expandSelfClosing(container, broker, element);
    else if (container) this.insertChild(container, undefined, { open: element, inner: [], close: '' });
    else {
      const name = `${kind}Connectors`;
      const next = broker.children.find((c) => c.name.localeCompare(name) > 0);
      this.insertChild(broker, next, { open: `<${prefix}${name}>`, inner: [element], close: `</${prefix}${name}>` });
    }
    return true;
  }

  /**
   * Inserts `el` into `parent`, before the child `before` or before the
   * parent's end tag. A parent written on one line gets `el` inline on that
   * line. Otherwise `el` goes on lines of its own at the children's
   * indentation: right before the line of `at` when `at` opens its line,
   * else by breaking the line at `at` (`<broker ...><foo/>` keeps `<foo/>`
   * inside the broker, on the next line; `<foo/></broker>` gets the new
   * element on a new line, the end tag right after it). Only text is
   * inserted: every byte of the file stays where it was relative to its
   * neighbours.
   */
  private insertChild(parent: XmlElement, before: XmlElement | undefined, el: NewElement): void {
    const t = this.text;
    const at = before ? before.start : parent.closeStart;
    if (!t.slice(parent.start, parent.end).includes('\n')) {
      this.text = splice(t, at, at, el.open + el.inner.join('') + el.close);
      return;
    }
    const eol = detectEolText(t);
    const { indent, unit } = childLayout(t, parent);
    const lines = el.close ? [el.open, ...el.inner.map((l) => unit + l), el.close] : [el.open];
    const block = lines.map((l) => indent + l).join(eol);
    if (opensLine(t, at)) {
      const ls = lineStart(t, at);
      // a new block before a sibling stays one blank line apart from it, as the packaged files space them
      this.text = splice(t, ls, ls, block + eol + (before && el.close ? eol : ''));
    } else {
      // before a sibling, that sibling moves to a line of its own; an end tag stays right after the new element
      this.text = splice(t, at, at, eol + block + (before ? eol + indent : ''));
    }
  }

  /** `<networkConnectors/>` becomes `<networkConnectors>` holding `child`, then its end tag. */
  private expandSelfClosing(container: XmlElement, broker: XmlElement, child: string): void {
    const t = this.text;
    const close = `</${container.qname}>`;
    let inner = `>${child}${close}`;
    if (t.slice(broker.start, broker.end).includes('\n') && opensLine(t, container.start)) {
      const eol = detectEolText(t);
      const own = lineIndent(t, container.start);
      inner = `>${eol}${own}${childLayout(t, broker).unit}${child}${eol}${own}${close}`;
    }
    this.text = splice(t, container.tagClose, container.tagEnd, inner);
  }

  removeConnector(kind: ConnectorKind, name: string): boolean {
    const container = this.container(kind);
    const el = container?.children.find(
      (e) => e.name === `${kind}Connector` && e.attrs.some((a) => a.name === 'name' && a.value === name),
    );
    if (!el) return false;
    const { start, end } = this.removalSpan(el);
    this.text = splice(this.text, start, end, '');
    this.reparse();
    return true;
  }

  /**
   * What removing `el` takes out: its whole line when it is alone on it; the
   * line break and blanks before it when it opens its line and markup follows
   * (the inverse of insertChild before an end tag); else the element alone.
   */
  private removalSpan(el: XmlElement): { start: number; end: number } {
    const t = this.text;
    const ls = lineStart(t, el.start);
    const le = lineEnd(t, el.end);
    const opens = t.slice(ls, el.start).trim() === '';
    if (opens && t.slice(el.end, le).trim() === '') return { start: ls, end: le };
    if (opens && ls > 0) return { start: ls - (t[ls - 2] === '\r' ? 2 : 1), end: el.end };
    return { start: el.start, end: el.end };
  }

  apply(op: ActiveMqOp): boolean {
    return op.op === 'set-connector' ? this.setConnector(op.kind, op.attrs) : this.removeConnector(op.kind, op.name);
  }

  toString(): string {
    return this.text;
  }
}

export function parseActiveMq(text: string, path: string): ActiveMqDocument {
  return new ActiveMqDocument(text, path);
}
