import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseKeyValue, setJavaOption } from './kv.js';
import { parseSitePp } from './sitepp.js';
import { parseHosts } from './hosts.js';
import { allSamples, lineChanges, pe3Fixture } from '@pe-stack/testkit/config-samples';

describe('key = value (MCollective cfg)', () => {
  it('points the broker at a new host in place and adds a second pool entry beside the first', () => {
    const before = pe3Fixture('server.cfg');
    const doc = parseKeyValue(before, '/etc/puppetlabs/mcollective/server.cfg');
    expect(doc.set('plugin.activemq.pool.1.host', 'master2.example.com')).toBe(true);
    expect(doc.set('plugin.activemq.pool.size', '2')).toBe(true);
    expect(doc.set('plugin.activemq.pool.2.host', 'master1.example.com')).toBe(true);
    const after = doc.toString();
    expect(lineChanges(before, after)).toEqual({
      removed: ['plugin.activemq.pool.size = 1\n', 'plugin.activemq.pool.1.host = master1.example.com\n'],
      added: [
        'plugin.activemq.pool.size = 2\n',
        'plugin.activemq.pool.1.host = master2.example.com\n',
        'plugin.activemq.pool.2.host = master1.example.com\n',
      ],
    });
    expect(after).toContain(
      'ssl.key = /etc/puppetlabs/mcollective/ssl/mcollective-private.pem\nplugin.activemq.pool.2.host',
    );
    expect(doc.set('plugin.activemq.pool.2.host', 'master1.example.com')).toBe(false);
  });

  it('keeps the = column of aligned neighbours', () => {
    const doc = parseKeyValue('plugin.ssl_server_private  = /a\nplugin.ssl_client_cert_dir = /b\n', '/s.cfg');
    doc.set('plugin.ssl_serializer', 'yaml');
    expect(doc.toString()).toBe(
      'plugin.ssl_server_private  = /a\nplugin.ssl_client_cert_dir = /b\nplugin.ssl_serializer      = yaml\n',
    );
  });

  it.each(allSamples('kv').map((s) => [s.name, s] as const))('%s: the psk changes on one line', (_n, s) => {
    const doc = parseKeyValue(s.text, s.path);
    const had = doc.get('plugin.psk');
    doc.set('plugin.psk', 'n3w-psk-value');
    const { removed, added } = lineChanges(s.text, doc.toString());
    expect(added).toHaveLength(1);
    expect(removed).toHaveLength(had === undefined ? (s.text.endsWith('\n') || s.text === '' ? 0 : 1) : 1);
    expect(parseKeyValue(doc.toString(), s.path).get('plugin.psk')).toBe('n3w-psk-value');
  });

  it('shell variables: JAVA_ARGS keeps its quotes; flags are replaced, not duplicated', () => {
    const text =
      '# Init settings for puppetserver\nJAVA_ARGS="-Xms1g -Xmx1g -Djruby.logger.class=com.puppetlabs.jruby_utils.jruby.Slf4jLogger"\nJAVA_BIN="/usr/bin/java"\n';
    const doc = parseKeyValue(text, '/etc/default/puppetserver', 'shell');
    const args = setJavaOption(setJavaOption(doc.get('JAVA_ARGS')!, '-Xmx', '-Xmx512m'), '-Xms', '-Xms256m');
    expect(doc.set('JAVA_ARGS', setJavaOption(args, '-XX:TieredStopAtLevel', '-XX:TieredStopAtLevel=1'))).toBe(true);
    expect(doc.toString()).toBe(
      text.replace(
        '-Xms1g -Xmx1g -Djruby.logger.class=com.puppetlabs.jruby_utils.jruby.Slf4jLogger"',
        '-Xms256m -Xmx512m -Djruby.logger.class=com.puppetlabs.jruby_utils.jruby.Slf4jLogger -XX:TieredStopAtLevel=1"',
      ),
    );
    doc.set('TK_ARGS', 'a "b" $c');
    expect(doc.toString()).toContain('TK_ARGS="a \\"b\\" \\$c"');
    expect(parseKeyValue(doc.toString(), '/d', 'shell').get('TK_ARGS')).toBe('a "b" $c');
  });

  it('property: generated cfg files round-trip and set reads back', () => {
    const key = fc.stringMatching(/^[a-z][a-z0-9_.]{0,10}$/);
    const line = fc.oneof(
      fc
        .tuple(key, fc.constantFrom(' = ', '=', '      = ', ' =  '), fc.stringMatching(/^[A-Za-z0-9/:.,=_ -]{0,12}$/))
        .map(([k, s, v]) => `${k}${s}${v.trim()}`),
      fc.constantFrom('', '# comment', '#plugin.psk = x'),
    );
    fc.assert(
      fc.property(
        fc.array(fc.tuple(line, fc.constantFrom('\n', '\r\n')), { maxLength: 25 }),
        fc.boolean(),
        key,
        fc.stringMatching(/^[A-Za-z0-9/.=-]{1,10}$/),
        (ls, chop, k, v) => {
          let text = ls.map(([l, e]) => l + e).join('');
          if (chop) text = text.replace(/\r?\n$/, '');
          const doc = parseKeyValue(text, '/s.cfg');
          if (doc.toString() !== text) return false;
          const had = doc.get(k);
          if (doc.set(k, v) !== (had !== v)) return false;
          return parseKeyValue(doc.toString(), '/s.cfg').get(k) === v;
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('site.pp filebucket', () => {
  it('changes the filebucket server on one line, keeping its quotes', () => {
    const before = pe3Fixture('site.pp');
    const doc = parseSitePp(before, '/etc/puppetlabs/puppet/manifests/site.pp');
    expect(doc.filebucketServer()).toBe('master1.example.com');
    expect(doc.setFilebucketServer('puppet.example.com')).toBe(true);
    expect(doc.setFilebucketServer('puppet.example.com')).toBe(false);
    expect(lineChanges(before, doc.toString())).toEqual({
      removed: ["  server => 'master1.example.com',\n"],
      added: ["  server => 'puppet.example.com',\n"],
    });
  });

  it.each(allSamples('site-pp').map((s) => [s.name, s] as const))('%s', (_n, s) => {
    const doc = parseSitePp(s.text, s.path);
    expect(doc.hasFilebucket()).toBe(/^\s*filebucket\s*\{/m.test(s.text));
    if (!/^\s*filebucket\s*\{/m.test(s.text)) {
      expect(() => doc.setFilebucketServer('puppet.example.com')).toThrow(/no filebucket resource/);
      expect(doc.toString()).toBe(s.text);
      return;
    }
    doc.setFilebucketServer('puppet.example.com');
    const { removed, added } = lineChanges(s.text, doc.toString());
    expect(added).toHaveLength(1);
    expect(removed.length).toBeLessThanOrEqual(1);
    expect(parseSitePp(doc.toString(), s.path).filebucketServer()).toBe('puppet.example.com');
  });

  it('tells whether a filebucket is declared (none in a Puppet 7 site.pp, a commented one does not count)', () => {
    expect(parseSitePp("node default {\n  file { '/tmp/x': ensure => file }\n}\n", '/s.pp').hasFilebucket()).toBe(
      false,
    );
    expect(parseSitePp("# filebucket { 'main': server => 'x' }\nnode default {}\n", '/s.pp').hasFilebucket()).toBe(
      false,
    );
    const doc = parseSitePp("filebucket { main: server => 'p' }\n", '/s.pp');
    expect(doc.hasFilebucket()).toBe(true);
    expect(doc.hasFilebucket('main')).toBe(true);
    expect(doc.hasFilebucket('other')).toBe(false);
  });

  it('ignores commented-out attributes and adds server when the bucket has none', () => {
    const doc = parseSitePp("filebucket { 'main':\r\n  # server => 'old',\r\n  path => false,\r\n}\r\n", '/s.pp');
    expect(doc.filebucketServer()).toBeUndefined();
    doc.setFilebucketServer('p.example.com');
    expect(doc.toString()).toBe(
      "filebucket { 'main':\r\n  server => 'p.example.com',\r\n  # server => 'old',\r\n  path => false,\r\n}\r\n",
    );
    expect(() => doc.setFilebucketServer("x'; exec {")).toThrow(/not a server name/);
  });
});

describe('/etc/hosts', () => {
  it('makes a name resolve to exactly the given addresses, idempotently', () => {
    const before = '127.0.0.1\tlocalhost\n10.77.0.11\tprimary1 puppet\n10.77.0.12\tsecondary1\n';
    const doc = parseHosts(before, '/etc/hosts');
    expect(doc.set('puppet', ['10.77.0.12'])).toBe(true);
    expect(doc.toString()).toBe('127.0.0.1\tlocalhost\n10.77.0.11\tprimary1\n10.77.0.12\tsecondary1 puppet\n');
    expect(doc.set('puppet', ['10.77.0.12'])).toBe(false);
    expect(doc.set('puppet.lab', ['10.77.0.13', '10.77.0.12'])).toBe(true);
    expect(doc.addresses('puppet.lab').sort()).toEqual(['10.77.0.12', '10.77.0.13']);
    expect(doc.remove('puppet.lab')).toBe(true);
    expect(doc.addresses('puppet.lab')).toEqual([]);
    expect(doc.toString()).toBe('127.0.0.1\tlocalhost\n10.77.0.11\tprimary1\n10.77.0.12\tsecondary1 puppet\n');
    expect(() => doc.set('x', ['not-an-ip'])).toThrow(/not an IP address/);
  });

  it('drops a line left without names, keeps comments on lines', () => {
    const doc = parseHosts('10.0.0.1 puppet # the CA\r\n10.0.0.2 a puppet\r\n', '/etc/hosts');
    doc.set('puppet', ['10.0.0.3']);
    expect(doc.toString()).toBe('10.0.0.2 a\r\n10.0.0.3\tpuppet\r\n');
  });
});
