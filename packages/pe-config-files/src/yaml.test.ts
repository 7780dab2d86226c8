import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parse } from 'yaml';
import { parseYaml } from './yaml.js';
import { ConfigParseError } from './errors.js';
import { lineChanges, pe3Fixture } from '@pe-stack/testkit/config-samples';

const DB = '/etc/puppetlabs/puppet-dashboard/database.yml';

describe('YAML editor', () => {
  it('reads through merge keys and anchors', () => {
    const doc = parseYaml(pe3Fixture('database.yml'), DB);
    expect(doc.get(['production', 'host'])).toBe('localhost');
    expect(doc.get(['test', 'database'])).toBe('console_test');
    expect(doc.get(['production', 'port'])).toBe(5432);
  });

  it('changes the console database host on the anchored block only, keeping quotes and comments', () => {
    const before = pe3Fixture('database.yml');
    const doc = parseYaml(before, DB);
    expect(doc.set(['common', 'host'], 'db.example.com')).toBe(true);
    expect(doc.set(['common', 'password'], 'N3w-s3cret!')).toBe(true);
    const after = doc.toString();
    const { removed, added } = lineChanges(before, after);
    expect(removed).toEqual(["    password: 'Zx9tB4qLmN2vR8wK'\n", '    host: localhost\n']);
    expect(added).toEqual(["    password: 'N3w-s3cret!'\n", '    host: db.example.com\n']);
    expect(parseYaml(after, DB).get(['production', 'host'])).toBe('db.example.com');
  });

  it('sets settings.yml ca_server (single-quoted) and is a no-op the second time', () => {
    const before = pe3Fixture('settings.yml');
    const doc = parseYaml(before, '/etc/puppetlabs/puppet-dashboard/settings.yml');
    expect(doc.set(['ca_server'], 'master2.example.com')).toBe(true);
    expect(doc.set(['ca_server'], 'master2.example.com')).toBe(false);
    expect(lineChanges(before, doc.toString())).toEqual({
      removed: ["ca_server: 'master1.example.com'\n"],
      added: ["ca_server: 'master2.example.com'\n"],
    });
  });

  it('adds a missing key to a nested block at its indentation, and a new key to a merge-only block', () => {
    const before = pe3Fixture('event-inspector-config.yml');
    const doc = parseYaml(before, '/opt/puppet/share/event-inspector/config/config.yml');
    doc.set(['puppetdb', 'pem', 'verify'], true);
    expect(lineChanges(before, doc.toString()).added).toEqual(['    verify: true\n']);
    expect(doc.toString()).toContain('cert.pem\n    verify: true\n  server:');

    const db = parseYaml(pe3Fixture('database.yml'), DB);
    db.set(['production', 'host'], 'replica.example.com');
    expect(db.toString()).toContain('production:\n    <<: *common\n    host: replica.example.com\n\ntest:');
    expect(db.get(['production', 'host'])).toBe('replica.example.com');
    expect(db.get(['development', 'host'])).toBe('localhost');
  });

  it('quotes a string that would otherwise read as another type', () => {
    const doc = parseYaml('a: x\nb: 1\n', '/x.yml');
    doc.set(['a'], '5432');
    doc.set(['b'], 'yes: no');
    expect(parse(doc.toString())).toEqual({ a: '5432', b: 'yes: no' });
  });

  it('keeps CRLF for new lines and unsets a whole block', () => {
    const doc = parseYaml('# top\r\na:\r\n  b: 1\r\n  c: 2\r\nd: 3', '/x.yml');
    doc.set(['a', 'e'], 'x');
    expect(doc.toString()).toBe('# top\r\na:\r\n  b: 1\r\n  c: 2\r\n  e: x\r\nd: 3');
    doc.unset(['a']);
    expect(doc.toString()).toBe('# top\r\nd: 3');
    doc.set(['f'], 'g');
    expect(doc.toString()).toBe('# top\r\nd: 3\r\nf: g');
  });

  it('a syntax error is a ConfigParseError naming the file and line, without the file content', () => {
    const text = "production:\n  password: 'Sup3rS3cret'\n  host: [unclosed\n  port: 5432\n";
    let err: unknown;
    try {
      parseYaml(text, DB);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigParseError);
    expect((err as ConfigParseError).code).toBe('E_CONFIG_PARSE');
    expect((err as ConfigParseError).line).toBeGreaterThanOrEqual(3);
    expect((err as Error).message).toContain(DB);
    expect((err as Error).message).not.toContain('Sup3rS3cret');
  });

  it('property: generated block mappings round-trip, and set changes exactly one line', () => {
    const key = fc.stringMatching(/^[a-z][a-z_]{0,6}$/);
    const scalar = fc.oneof(
      fc.stringMatching(/^[a-z][a-z0-9 ./-]{0,10}[a-z0-9]$/),
      fc.integer().map(String),
      fc.constantFrom("'quoted'", '"dq"', 'true', '~'),
    );
    const entry = fc.tuple(key, scalar, fc.constantFrom('', ' # note'));
    const file = fc
      .tuple(
        fc.uniqueArray(entry, { selector: (e) => e[0], minLength: 1, maxLength: 12 }),
        fc.constantFrom('\n', '\r\n'),
        fc.boolean(),
        fc.boolean(),
      )
      .map(([es, eol, chop, comment]) => {
        const t = (comment ? `# generated${eol}` : '') + es.map(([k, v, c]) => `${k}: ${v}${c}${eol}`).join('');
        return { text: chop ? t.slice(0, -eol.length) : t, keys: es.map((e) => e[0]) };
      });
    fc.assert(
      fc.property(file, fc.nat(), fc.stringMatching(/^[A-Za-z0-9 :#'"-]{1,12}$/), ({ text, keys }, i, v) => {
        const doc = parseYaml(text, '/g.yml');
        if (doc.toString() !== text) return false;
        const k = keys[i % keys.length]!;
        const had = doc.get([k]);
        const changed = doc.set([k], v);
        if (changed !== (had !== v)) return false;
        const after = doc.toString();
        if (parseYaml(after, '/g.yml').get([k]) !== v) return false;
        const { removed, added } = lineChanges(text, after);
        return changed ? removed.length === 1 && added.length === 1 : after === text;
      }),
      { numRuns: 300 },
    );
  });
});
