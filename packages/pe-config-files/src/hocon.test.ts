import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { readFileSync, existsSync } from 'node:fs';
import { parseHocon } from './hocon.js';
import { ConfigParseError } from './errors.js';
import { lineChanges, CORPUS_DIR } from '@pe-stack/testkit/config-samples';

const CA_CONF = `certificate-authority: {
    # allow CA to sign certificate requests that have subject alternative names.
    # allow-subject-alt-names: false

    # allow CA to sign certificate requests that have authorization extensions.
    # allow-authorization-extensions: false
}
`;

describe('HOCON editor', () => {
  it('parses braceless roots, dotted keys, quoted keys, arrays, substitutions and comments', () => {
    const doc = parseHocon(
      'a.b: 1\n"x.y" = "q"  // c\nlist: [a, "b", 3]\nobj { k = ${HOME}, j: true }\n# end\ntriple: """raw "text" """\n',
      '/t.conf',
    );
    expect(doc.get(['a', 'b'])).toBe(1);
    expect(doc.get(['x.y'])).toBe('q');
    expect(doc.get(['list'])).toEqual(['a', 'b', 3]);
    expect(doc.get(['obj', 'k'])).toBe('${HOME}');
    expect(doc.get(['obj', 'j'])).toBe(true);
    expect(doc.get(['triple'])).toBe('raw "text" ');
  });

  it('ca.conf: turns on allow-subject-alt-names inside the block, after its comments', () => {
    const doc = parseHocon(CA_CONF, '/etc/puppet/puppetserver/conf.d/ca.conf');
    expect(doc.set(['certificate-authority', 'allow-subject-alt-names'], true)).toBe(true);
    const after = doc.toString();
    expect(lineChanges(CA_CONF, after)).toEqual({ removed: [], added: ['    allow-subject-alt-names: true\n'] });
    expect(after.endsWith('# allow-authorization-extensions: false\n    allow-subject-alt-names: true\n}\n')).toBe(
      true,
    );
    expect(doc.set(['certificate-authority', 'allow-subject-alt-names'], true)).toBe(false);
    expect(doc.set(['certificate-authority', 'allow-subject-alt-names'], false)).toBe(true);
    expect(lineChanges(after, doc.toString()).added).toEqual(['    allow-subject-alt-names: false\n']);
  });

  it('webserver.conf: adds ssl-crl-path, then changes it in place keeping its quoting', () => {
    const text =
      'webserver: {\r\n    access-log-config: /etc/puppet/puppetserver/request-logging.xml\r\n    client-auth: want\r\n    ssl-host: 0.0.0.0\r\n    ssl-port: 8140\r\n}\r\n';
    const doc = parseHocon(text, '/etc/puppet/puppetserver/conf.d/webserver.conf');
    doc.set(['webserver', 'ssl-crl-path'], '/var/lib/puppet/ssl/crl.pem');
    expect(doc.toString()).toBe(
      text.replace('ssl-port: 8140\r\n', 'ssl-port: 8140\r\n    ssl-crl-path: "/var/lib/puppet/ssl/crl.pem"\r\n'),
    );
    doc.set(['webserver', 'ssl-crl-path'], '/etc/puppet/puppetserver/ca/ca_crl.pem');
    expect(doc.get(['webserver', 'ssl-crl-path'])).toBe('/etc/puppet/puppetserver/ca/ca_crl.pem');
    expect(doc.toString()).toContain('    ssl-crl-path: "/etc/puppet/puppetserver/ca/ca_crl.pem"\r\n}');
    // unquoted values stay unquoted when they can
    doc.set(['webserver', 'client-auth'], 'need');
    expect(doc.toString()).toContain('    client-auth: need\r\n');
  });

  it('creates nested objects for a path that does not exist yet', () => {
    const doc = parseHocon('jruby-puppet: {\n    max-active-instances: 1\n}\n', '/p.conf');
    doc.set(['http-client', 'ssl-protocols'], ['TLSv1.3', 'TLSv1.2']);
    expect(doc.toString()).toBe(
      'jruby-puppet: {\n    max-active-instances: 1\n}\nhttp-client: {\n    ssl-protocols: ["TLSv1.3", "TLSv1.2"]\n}\n',
    );
    expect(doc.get(['http-client', 'ssl-protocols'])).toEqual(['TLSv1.3', 'TLSv1.2']);
  });

  it('lists: add and remove entries, idempotent, single-line and multi-line', () => {
    const doc = parseHocon('a: [x, y]\nb: [\n    "p",\n    "q"\n]\n', '/l.conf');
    expect(doc.addToList(['a'], 'z')).toBe(true);
    expect(doc.addToList(['a'], 'z')).toBe(false);
    expect(doc.addToList(['b'], 'r')).toBe(true);
    expect(doc.toString()).toBe('a: [x, y, "z"]\nb: [\n    "p",\n    "q",\n    "r"\n]\n');
    expect(doc.removeFromList(['a'], 'y')).toBe(true);
    expect(doc.removeFromList(['b'], 'q')).toBe(true);
    expect(doc.get(['a'])).toEqual(['x', 'z']);
    expect(doc.get(['b'])).toEqual(['p', 'r']);
    expect(doc.removeFromList(['b'], 'nope')).toBe(false);
  });

  it('unset removes a field on its own line', () => {
    const doc = parseHocon('a: {\n    b: 1\n    c: 2\n}\n', '/u.conf');
    expect(doc.unset(['a', 'b'])).toBe(true);
    expect(doc.toString()).toBe('a: {\n    c: 2\n}\n');
    expect(doc.unset(['a', 'b'])).toBe(false);
  });

  it('an unterminated block is a ConfigParseError naming the file and the line of the opening brace', () => {
    const text = 'webserver: {\n    ssl-port: 8140\n    nested: {\n        a: 1\n}\n';
    let err: unknown;
    try {
      parseHocon(text, '/etc/puppet/puppetserver/conf.d/webserver.conf');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigParseError);
    expect((err as ConfigParseError).line).toBe(1);
    expect((err as Error).message).toMatch(/webserver\.conf line 1: unterminated \{/);
    expect(() => parseHocon('a: "open\n', '/x.conf')).toThrow(/line 1: unterminated quoted string/);
    expect(() => parseHocon('a: [1, 2\n', '/x.conf')).toThrow(/unterminated \[/);
    expect(() => parseHocon('a: 1\n}\n', '/x.conf')).toThrow(/line 2: unexpected \}/);
  });

  it('the corpus HOCON files read as their authors meant', () => {
    const f = `${CORPUS_DIR}hocon/SimonKlyne__puppetlabs302-lab3__puppetserver__conf.d__file-sync.conf`;
    if (!existsSync(f)) return;
    const doc = parseHocon(readFileSync(f, 'utf8'), f);
    expect(doc.get(['file-sync', 'client', 'poll-interval'])).toBe(5);
    expect(doc.get(['file-sync', 'client-identifiers'])).toHaveLength(2);
  });

  it('property: generated nested objects round-trip and set changes only the value', () => {
    const key = fc.stringMatching(/^[a-z][a-z-]{0,6}$/);
    const value = fc.oneof(
      fc.integer().map(String),
      fc.constantFrom('true', '"quoted value"', '/a/path', '[a, b]', '${sub}'),
    );
    const leaf = fc.tuple(key, value, fc.constantFrom(': ', ' = ', ':'), fc.constantFrom('', ' # c', ' // c', ','));
    const block = fc.tuple(key, fc.uniqueArray(leaf, { selector: (l) => l[0], minLength: 1, maxLength: 6 }));
    const file = fc
      .tuple(
        fc.uniqueArray(block, { selector: (b) => b[0], minLength: 1, maxLength: 4 }),
        fc.constantFrom('\n', '\r\n'),
        fc.boolean(),
      )
      .map(([blocks, eol, chop]) => {
        const t = blocks
          .map(
            ([k, leaves]) =>
              `${k}: {${eol}${leaves.map(([lk, v, sep, tail]) => `    ${lk}${sep}${v}${tail}${eol}`).join('')}}${eol}`,
          )
          .join('');
        return {
          text: chop ? t.slice(0, -eol.length) : t,
          paths: blocks.flatMap(([k, leaves]) => leaves.map(([lk]) => [k, lk])),
        };
      });
    fc.assert(
      fc.property(file, fc.nat(), fc.stringMatching(/^[A-Za-z0-9 /.]{1,10}$/), ({ text, paths }, i, v) => {
        const doc = parseHocon(text, '/g.conf');
        if (doc.toString() !== text) return false;
        const p = paths[i % paths.length]!;
        const changed = doc.set(p, v);
        const after = doc.toString();
        if (parseHocon(after, '/g.conf').get(p) !== v) return false;
        const { removed, added } = lineChanges(text, after);
        return changed ? removed.length === 1 && added.length === 1 : after === text;
      }),
      { numRuns: 300 },
    );
  });
});
