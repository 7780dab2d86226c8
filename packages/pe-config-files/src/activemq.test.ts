import { describe, expect, it } from 'vitest';
import { parseActiveMq } from './activemq.js';
import { ConfigParseError } from './errors.js';
import { allSamples, lineChanges, pe3Fixture } from '@pe-stack/testkit/config-samples';

const P = '/etc/puppetlabs/activemq/activemq.xml';

describe('activemq.xml connectors', () => {
  it('reads the network and transport connectors of the PE 3 broker', () => {
    const doc = parseActiveMq(pe3Fixture('activemq.xml'), P);
    expect(doc.connectors('network').map((c) => c['uri'])).toEqual(['static:(ssl://master2.example.com:61616)']);
    expect(doc.connectors('transport').map((c) => c['name'])).toEqual(['openwire+ssl', 'stomp+nio+ssl']);
    expect(doc.connectors('transport')[0]!['uri']).toContain('needClientAuth=true&transport');
  });

  it('updates a network connector attribute in place (multi-line attributes), idempotently', () => {
    const before = pe3Fixture('activemq.xml');
    const doc = parseActiveMq(before, P);
    const attrs = {
      name: 'master1.example.com-master2.example.com-topics',
      uri: 'static:(ssl://master3.example.com:61616)',
    };
    expect(doc.setConnector('network', attrs)).toBe(true);
    expect(doc.setConnector('network', attrs)).toBe(false);
    expect(lineChanges(before, doc.toString())).toEqual({
      removed: ['                uri="static:(ssl://master2.example.com:61616)"\n'],
      added: ['                uri="static:(ssl://master3.example.com:61616)"\n'],
    });
    doc.setConnector('network', { ...attrs, conduitSubscriptions: 'true' });
    expect(doc.toString()).toContain('dynamicOnly="true"\n                conduitSubscriptions="true">');
  });

  it('adds and removes a connector, escaping attribute values', () => {
    const before = pe3Fixture('activemq.xml');
    const doc = parseActiveMq(before, P);
    doc.setConnector('transport', { name: 'stomp', uri: 'stomp://0.0.0.0:61612?a=1&b=2' });
    expect(lineChanges(before, doc.toString())).toEqual({
      removed: [],
      added: ['            <transportConnector name="stomp" uri="stomp://0.0.0.0:61612?a=1&amp;b=2"/>\n'],
    });
    expect(doc.connectors('transport').at(-1)!['uri']).toBe('stomp://0.0.0.0:61612?a=1&b=2');
    expect(doc.removeConnector('transport', 'stomp')).toBe(true);
    expect(doc.toString()).toBe(before);
    expect(doc.removeConnector('transport', 'stomp')).toBe(false);
  });

  it.each(allSamples('activemq').map((s) => [s.name, s] as const))(
    '%s: adding a network connector creates the block in schema order',
    (_n, s) => {
      const doc = parseActiveMq(s.text, s.path);
      const hadBlock =
        doc.connectors('network').length > 0 || /<networkConnectors/.test(s.text.replace(/<!--[\s\S]*?-->/g, ''));
      doc.setConnector('network', { name: 'to-primary', uri: 'static:(tcp://primary.lab:61616)', duplex: 'true' });
      const after = doc.toString();
      const { removed, added } = lineChanges(s.text, after);
      expect(removed).toEqual([]);
      expect(added.length).toBe(hadBlock ? 1 : 4);
      const reread = parseActiveMq(after, s.path);
      expect(reread.connectors('network').map((c) => c['name'])).toContain('to-primary');
      expect(reread.connectors('transport')).toEqual(parseActiveMq(s.text, s.path).connectors('transport'));
    },
  );

  it('malformed XML is a ConfigParseError with the line', () => {
    expect(() => parseActiveMq('<beans>\n  <broker>\n  </beans>\n', P)).toThrow(ConfigParseError);
    expect(() => parseActiveMq('<beans>\n  <broker>\n  </beans>\n', P)).toThrow(
      /line 3: end tag <\/beans> does not match <broker>/,
    );
    expect(() => parseActiveMq('<beans>\n<!-- open\n', P)).toThrow(/line 2: unterminated comment/);
  });
});
