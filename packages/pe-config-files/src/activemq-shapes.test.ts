import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseActiveMq, type ConnectorKind } from './activemq.js';
import { allSamples, toCrlf } from '@pe-stack/testkit/config-samples';
import { changedRegion } from '@pe-stack/testkit/config-samples';

// Adding a connector to activemq.xml in every shape XML allows (not only the
// shapes of the packaged files): the result is well-formed, the connector is
// a child of <broker>'s container, a second edit is a no-op, and the bytes
// outside the inserted text are those of the input.

const SHAPES_DIR = fileURLToPath(new URL('./fixtures/activemq-shapes/', import.meta.url));
const P = '/etc/activemq/activemq.xml';

interface XmlNode {
  qname: string;
  attrs: Record<string, string>;
  children: XmlNode[];
}

const NAME = '[A-Za-z_][\\w.:-]*';
const START_TAG = new RegExp(`<(${NAME})((?:\\s+${NAME}\\s*=\\s*(?:"[^"<]*"|'[^'<]*'))*)\\s*(/?)>`, 'y');
const ATTR = new RegExp(`(${NAME})\\s*=\\s*(?:"([^"<]*)"|'([^'<]*)')`, 'g');
const END_TAG = new RegExp(`</(${NAME})\\s*>`, 'y');
const TEXT = /[^<]*/y;

const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

const BARE_AMP = /&(?!(?:[A-Za-z_][\w.-]*|#\d+|#x[0-9a-fA-F]+);)/;

function unescape(v: string): string {
  if (BARE_AMP.test(v)) throw new Error('bare "&" in an attribute value');
  return v.replace(/&([^;]*);/g, (_m, e: string) => {
    if (e.startsWith('#x')) return String.fromCodePoint(parseInt(e.slice(2), 16));
    if (e.startsWith('#')) return String.fromCodePoint(parseInt(e.slice(1), 10));
    if (!/^[A-Za-z_][\w.-]*$/.test(e)) throw new Error(`malformed reference &${e};`);
    return ENTITIES[e] ?? `&${e};`; // declared in the DOCTYPE: kept as written
  });
}

function attrsOf(raw: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of raw.matchAll(ATTR)) {
    if (m[1]! in out) throw new Error(`duplicate attribute ${m[1]}`);
    out[m[1]!] = unescape(m[2] ?? m[3]!);
  }
  return out;
}

/** Where the comment, CDATA, PI or DOCTYPE at `i` ends; undefined if `i` opens no such markup. */
function skipMarkup(s: string, i: number, inRoot: boolean): number | undefined {
  const closer = (open: string, close: string) => {
    if (!s.startsWith(open, i)) return undefined;
    const e = s.indexOf(close, i + open.length);
    if (e === -1) throw new Error(`unterminated ${open}`);
    return e + close.length;
  };
  const comment = closer('<!--', '-->');
  if (comment !== undefined) {
    if (s.slice(i + 4, comment - 3).includes('--')) throw new Error('"--" inside a comment');
    return comment;
  }
  if (inRoot) return closer('<![CDATA[', ']]>');
  return closer('<?', '?>') ?? (s.startsWith('<!DOCTYPE', i) ? s.indexOf(']>', i) + 2 || undefined : undefined);
}

function checkText(text: string, inRoot: boolean): void {
  if (!inRoot && text.trim() !== '') throw new Error('text outside the root element');
  if (text.includes(']]>')) throw new Error('"]]>" in text');
  if (BARE_AMP.test(text)) throw new Error('bare "&" in text');
}

/** A small, independent XML well-formedness check (no DTD processing); returns the root element. */
function wellFormed(s: string): XmlNode {
  const stack: XmlNode[] = [];
  let root: XmlNode | undefined;
  let i = 0;
  while (i < s.length) {
    TEXT.lastIndex = i;
    const text = TEXT.exec(s)![0];
    checkText(text, stack.length > 0);
    i += text.length;
    if (i >= s.length) break;
    const skipped = skipMarkup(s, i, stack.length > 0);
    if (skipped !== undefined) {
      i = skipped;
      continue;
    }
    END_TAG.lastIndex = i;
    const end = END_TAG.exec(s);
    if (end) {
      const open = stack.pop();
      if (open?.qname !== end[1]) throw new Error(`</${end[1]}> closes <${open?.qname}>`);
      i = END_TAG.lastIndex;
      continue;
    }
    START_TAG.lastIndex = i;
    const tag = START_TAG.exec(s);
    if (!tag) throw new Error(`malformed markup at ${i}: ${JSON.stringify(s.slice(i, i + 40))}`);
    if (!stack.length && root) throw new Error('a second root element');
    const node: XmlNode = { qname: tag[1]!, attrs: attrsOf(tag[2]!), children: [] };
    if (stack.length) stack.at(-1)!.children.push(node);
    else root = node;
    if (!tag[3]) stack.push(node);
    i = START_TAG.lastIndex;
  }
  if (stack.length) throw new Error(`<${stack.at(-1)!.qname}> is never closed`);
  if (!root) throw new Error('no root element');
  return root;
}

const local = (q: string) => q.slice(q.indexOf(':') + 1);

function brokersOf(n: XmlNode): XmlNode[] {
  return local(n.qname) === 'broker' ? [n] : n.children.flatMap(brokersOf);
}

/** The attribute maps of `<broker>/<kindConnectors>/<kindConnector>`, read with the independent checker. */
function connectorsUnderBroker(text: string, kind: ConnectorKind): Record<string, string>[] {
  const brokers = brokersOf(wellFormed(text));
  expect(brokers).toHaveLength(1);
  return brokers[0]!.children
    .filter((c) => local(c.qname) === `${kind}Connectors`)
    .flatMap((c) => c.children.filter((e) => local(e.qname) === `${kind}Connector`).map((e) => e.attrs));
}

const NEW: Record<ConnectorKind, { name: string } & Record<string, string>> = {
  network: { name: 'to-primary', uri: 'static:(ssl://primary.example.com:61616)', duplex: 'true' },
  transport: { name: 'pe-stack+stomp+ssl', uri: 'stomp+ssl://0.0.0.0:61614?needClientAuth=true&transport.x=>' },
};

/** Add a connector, then check every property of the contract; returns the edited text. */
function addAndCheck(text: string, kind: ConnectorKind): string {
  const doc = parseActiveMq(text, P);
  const otherKind: ConnectorKind = kind === 'network' ? 'transport' : 'network';
  const others = connectorsUnderBroker(text, otherKind);
  const had = connectorsUnderBroker(text, kind);
  expect(doc.setConnector(kind, NEW[kind])).toBe(true);
  const after = doc.toString();

  // well-formed, the connector under the broker's container, nothing else lost
  expect(connectorsUnderBroker(after, kind)).toEqual([...had, NEW[kind]]);
  expect(connectorsUnderBroker(after, otherKind)).toEqual(others);

  // idempotent: on the same document and on a fresh parse of the result
  expect(doc.setConnector(kind, NEW[kind])).toBe(false);
  const again = parseActiveMq(after, P);
  expect(again.setConnector(kind, NEW[kind])).toBe(false);
  expect(again.toString()).toBe(after);

  // one contiguous insertion (a self-closing container gives up its "/"), in the file's line ending
  const { removed, added } = changedRegion(text, after);
  expect(['', '/']).toContain(removed);
  if (removed) expect(text).toMatch(new RegExp(`<(\\w+:)?${kind}Connectors\\s*/>`));
  const eol = text.includes('\r\n') ? '\r\n' : '\n';
  expect(added.replace(/\r\n/g, '')).not.toMatch(eol === '\r\n' ? /[\r\n]/ : /\r/);
  if (!text.includes('\n')) expect(added).not.toContain('\n');
  return after;
}

const shapes = readdirSync(SHAPES_DIR)
  .filter((f) => f.endsWith('.xml'))
  .sort()
  .map((f) => ({ name: f, text: readFileSync(`${SHAPES_DIR}${f}`, 'utf8') }));

/** Each shape as written, with CRLF line endings, and without its final newline. */
const variants = shapes.flatMap((s) => [
  { name: s.name, text: s.text },
  { name: `${s.name} (CRLF)`, text: toCrlf(s.text) },
  { name: `${s.name} (no final newline)`, text: s.text.replace(/\r?\n$/, '') },
]);

describe('the shapes corpus is well-formed XML', () => {
  it.each(shapes.map((s) => [s.name, s.text] as const))('%s', (_n, text) => {
    expect(() => wellFormed(text)).not.toThrow();
    expect(parseActiveMq(text, P).toString()).toBe(text);
  });

  it('the checker refuses what is not well-formed', () => {
    for (const bad of [
      '<a><b></a></b>',
      '<a x="1" x="2"/>',
      '<a x="<"/>',
      '<a/><b/>',
      '<a>&</a>',
      '<a><!-- x -- y --></a>',
      'text<a/>',
      '<a:b></a:c>',
    ])
      expect(() => wellFormed(bad), bad).toThrow();
  });
});

describe.each(['network', 'transport'] as const)('adding a %s connector to every shape', (kind) => {
  it.each(variants.map((v) => [v.name, v.text] as const))('%s', (_n, text) => {
    addAndCheck(text, kind);
  });

  it.each(allSamples('activemq').map((s) => [s.name, s.text] as const))('%s (published file)', (_n, text) => {
    addAndCheck(text, kind);
    addAndCheck(toCrlf(text), kind);
  });
});

describe('shapes, by what an operator sees', () => {
  const shape = (n: string) => shapes.find((s) => s.name === n)!.text;

  it('<broker ...><first-child> on one line: the block goes inside the broker, on its own lines', () => {
    const doc = parseActiveMq(shape('first-child-after-name.xml'), P);
    doc.setConnector('network', { name: 'n', uri: 'static:(tcp://a:61616)' });
    expect(doc.toString()).toContain(
      [
        '  <broker xmlns="http://activemq.apache.org/schema/core" brokerName="mq1">',
        '    <networkConnectors>',
        '      <networkConnector name="n" uri="static:(tcp://a:61616)"/>',
        '    </networkConnectors>',
        '    <persistenceAdapter><kahaDB directory="/var/lib/activemq"/></persistenceAdapter>',
        '    <transportConnectors>',
      ].join('\n'),
    );
  });

  it('a document on one line stays on one line', () => {
    const doc = parseActiveMq(shape('one-line.xml').trimEnd(), P);
    doc.setConnector('network', { name: 'n', uri: 'static:(tcp://a:61616)' });
    expect(doc.toString()).toContain(
      '</managementContext><networkConnectors><networkConnector name="n" uri="static:(tcp://a:61616)"/></networkConnectors><persistenceAdapter>',
    );
  });

  it('<amq:broker> gets <amq:networkConnectors> and <amq:networkConnector>', () => {
    const doc = parseActiveMq(shape('amq-prefix.xml'), P);
    doc.setConnector('network', { name: 'n', uri: 'static:(tcp://a:61616)' });
    expect(doc.toString()).toContain(
      '<amq:networkConnectors>\n            <amq:networkConnector name="n" uri="static:(tcp://a:61616)"/>\n        </amq:networkConnectors>',
    );
    expect(doc.connectors('network')).toEqual([{ name: 'n', uri: 'static:(tcp://a:61616)' }]);
  });

  it('a self-closing <networkConnectors/> opens up to hold the connector', () => {
    const doc = parseActiveMq(shape('self-closing-container.xml'), P);
    doc.setConnector('network', { name: 'n', uri: 'static:(tcp://a:61616)' });
    expect(doc.toString()).toContain(
      '        <networkConnectors>\n            <networkConnector name="n" uri="static:(tcp://a:61616)"/>\n        </networkConnectors>\n',
    );
  });

  it('comments and CDATA that mention <broker> and <networkConnectors> are left alone', () => {
    const text = shape('comments-and-cdata.xml');
    const doc = parseActiveMq(text, P);
    expect(doc.connectors('network')).toEqual([]);
    doc.setConnector('network', { name: 'n', uri: 'static:(tcp://a:61616)' });
    const after = doc.toString();
    expect(after.split('\n').slice(0, 7)).toEqual(text.split('\n').slice(0, 7));
    expect(after).toContain('brokerName="mq"><!-- <networkConnectors> go here? -->\n    <networkConnectors>');
  });

  it('one removal undoes one addition into an existing container, whatever the shape', () => {
    for (const v of variants) {
      const doc = parseActiveMq(v.text, P);
      if (!doc.connectors('transport').length) continue;
      doc.setConnector('transport', NEW.transport);
      expect(doc.removeConnector('transport', NEW.transport.name), v.name).toBe(true);
      expect(doc.toString(), v.name).toBe(v.text);
    }
  });
});

// Generated brokers: every child on its own line, after the previous one, or
// on the start tag's line; start tags spanning lines; comments holding markup;
// `>` in attribute values; with and without a prefix; LF or CRLF.
const CHILDREN = [
  '<destinationPolicy><policyMap/></destinationPolicy>',
  '<managementContext><managementContext createConnector="false"/></managementContext>',
  '<networkConnectors/>',
  '<persistenceAdapter><kahaDB directory="d>1"/></persistenceAdapter>',
  '<plugins>\n  <statisticsBrokerPlugin/>\n</plugins>',
  '<systemUsage><systemUsage/></systemUsage>',
  '<transportConnectors><transportConnector name="openwire" uri="tcp://0.0.0.0:61616"/></transportConnectors>',
];
const SEPARATORS = [
  '',
  ' ',
  '\n',
  '\n    ',
  '\n\n        ',
  '\t',
  '<!-- <broker> </networkConnectors> -->',
  '\n  <!-- x -->\n  ',
];

const generatedBroker = fc
  .record({
    present: fc.array(fc.boolean(), { minLength: CHILDREN.length, maxLength: CHILDREN.length }),
    seps: fc.array(fc.constantFrom(...SEPARATORS), { minLength: CHILDREN.length + 1, maxLength: CHILDREN.length + 1 }),
    tagBreak: fc.constantFrom(' ', '\n      '),
    prefix: fc.constantFrom('', 'amq:'),
    crlf: fc.boolean(),
  })
  .map(({ present, seps, tagBreak, prefix, crlf }) => {
    const p = (xml: string) => xml.replace(/<(\/?)([a-zA-Z])/g, `<$1${prefix}$2`);
    const children = CHILDREN.filter((_c, i) => present[i]).map(p);
    const body = children.map((c, i) => seps[i] + c).join('') + seps.at(-1);
    const ns = prefix ? ' xmlns:amq="http://activemq.apache.org/schema/core"' : '';
    const text = `<beans${ns}>\n  <${prefix}broker${tagBreak}brokerName="g>1"${tagBreak}useJmx="false">${body}</${prefix}broker>\n</beans>\n`;
    return crlf ? toCrlf(text) : text;
  });

describe('generated brokers', () => {
  it.each(['network', 'transport'] as const)('adding a %s connector keeps the contract', (kind) => {
    fc.assert(
      fc.property(generatedBroker, (text) => {
        addAndCheck(text, kind);
      }),
      { numRuns: 300 },
    );
  });
});
