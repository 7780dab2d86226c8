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
  name: string;
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
  if (localName(m![1]!) !== open!.name)
    fail(`end tag </${m![1]}> does not match <${open!.name}> (line ${lineOfOffset(s, open!.start)})`, i);
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
    const eol = detectEolText(this.text);
    const container = this.container(kind);
    const existing = container?.children.find(
      (e) => e.name === `${kind}Connector` && e.attrs.some((a) => a.name === 'name' && a.value === attrs.name),
    );
    if (existing) {
      // back to front so earlier offsets stay valid
      const edits: { at: number; end: number; text: string }[] = [];
      const missing: string[] = [];
      for (const [k, v] of Object.entries(attrs)) {
        const a = existing.attrs.find((x) => x.name === k);
        if (!a) missing.push(k);
        else if (a.value !== v) edits.push({ at: a.valueStart, end: a.valueEnd, text: escapeXmlAttr(v) });
      }
      if (missing.length > 0) {
        const last = existing.attrs.at(-1)!;
        const multiLine = lineOfOffset(this.text, last.start) !== lineOfOffset(this.text, existing.start);
        const indent = indentOf(this.text.slice(lineStart(this.text, last.start)));
        const add = missing
          .map((k) => `${multiLine ? `${eol}${indent}` : ' '}${k}="${escapeXmlAttr(attrs[k]!)}"`)
          .join('');
        edits.push({ at: last.end, end: last.end, text: add });
      }
      if (edits.length === 0) return false;
      for (const e of edits.sort((a, b) => b.at - a.at)) this.text = splice(this.text, e.at, e.end, e.text);
      this.reparse();
      return true;
    }
    const element = `<${kind}Connector ${Object.entries(attrs)
      .map(([k, v]) => `${k}="${escapeXmlAttr(v)}"`)
      .join(' ')}/>`;
    if (container && !container.selfClosing) {
      const sibling = container.children.at(-1);
      const indent = sibling
        ? indentOf(this.text.slice(lineStart(this.text, sibling.start)))
        : `${indentOf(this.text.slice(lineStart(this.text, container.start)))}    `;
      this.insertBeforeClose(container, `${indent}${element}`, eol);
    } else {
      if (container?.selfClosing)
        throw new ConfigEditError(this.path, `<${kind}Connectors/> is empty and self-closing; edit it by hand.`);
      const broker = this.broker();
      const name = `${kind}Connectors`;
      const next = broker.children.find((c) => c.name.localeCompare(name) > 0);
      const ref = next ?? broker.children.at(-1);
      const indent = ref
        ? indentOf(this.text.slice(lineStart(this.text, ref.start)))
        : `${indentOf(this.text.slice(lineStart(this.text, broker.start)))}    `;
      const block = [`${indent}<${name}>`, `${indent}    ${element}`, `${indent}</${name}>`].join(eol) + eol;
      if (next) {
        const at = lineStart(this.text, next.start);
        // broker children stay in alphabetical order (ActiveMQ 5.4+ schema), one blank line apart
        this.text = splice(this.text, at, at, block + eol);
      } else this.insertBeforeClose(broker, block.slice(0, -eol.length), eol);
    }
    this.reparse();
    return true;
  }

  removeConnector(kind: ConnectorKind, name: string): boolean {
    const container = this.container(kind);
    const el = container?.children.find(
      (e) => e.name === `${kind}Connector` && e.attrs.some((a) => a.name === 'name' && a.value === name),
    );
    if (!el) return false;
    let s = el.start;
    let e = el.end;
    const ls = lineStart(this.text, s);
    const le = lineEnd(this.text, e);
    if (this.text.slice(ls, s).trim() === '' && this.text.slice(e, le).trim() === '') {
      s = ls;
      e = le;
    }
    this.text = splice(this.text, s, e, '');
    this.reparse();
    return true;
  }

  apply(op: ActiveMqOp): boolean {
    return op.op === 'set-connector' ? this.setConnector(op.kind, op.attrs) : this.removeConnector(op.kind, op.name);
  }

  toString(): string {
    return this.text;
  }

  private insertBeforeClose(el: XmlElement, line: string, eol: string): void {
    const cs = lineStart(this.text, el.closeStart);
    if (this.text.slice(cs, el.closeStart).trim() === '') this.text = splice(this.text, cs, cs, line + eol);
    else this.text = splice(this.text, el.closeStart, el.closeStart, eol + line + eol);
  }
}

export function parseActiveMq(text: string, path: string): ActiveMqDocument {
  return new ActiveMqDocument(text, path);
}
