import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseLineList } from './lines.js';
import { parseServices, CA_SERVICE, CA_DISABLED_SERVICE } from './services.js';
import { allSamples, lineChanges, pe3Fixture } from '@pe-stack/testkit/config-samples';

describe('line lists (autosign.conf, certificate-whitelist)', () => {
  it('adds an entry once, with the file line ending, keeping comments', () => {
    const doc = parseLineList(pe3Fixture('certificate-whitelist'), '/etc/puppetlabs/puppetdb/certificate-whitelist');
    expect(doc.add('master2.example.com')).toBe(true);
    expect(doc.add('master2.example.com')).toBe(false);
    expect(doc.add('  master1.example.com ')).toBe(false);
    expect(doc.toString()).toBe('master1.example.com\npe-internal-dashboard\nmaster2.example.com\n');
    const crlf = parseLineList('# hi\r\na', '/x');
    crlf.add('b');
    expect(crlf.toString()).toBe('# hi\r\na\r\nb');
  });

  it('removes every copy of an entry and nothing else; an empty file gets its first entry', () => {
    const doc = parseLineList('a\n# a\nb\n a \n', '/x');
    expect(doc.remove('a')).toBe(true);
    expect(doc.toString()).toBe('# a\nb\n');
    expect(doc.remove('a')).toBe(false);
    const empty = parseLineList('', '/x');
    empty.add('first');
    expect(empty.toString()).toBe('first\n');
    expect(() => empty.add('# comment')).toThrow(/not a valid list entry/);
  });

  it('property: add then remove gives back the entries, adding twice changes once', () => {
    fc.assert(
      fc.property(
        fc.array(fc.stringMatching(/^[a-z*.#-]{0,8}$/), { maxLength: 10 }),
        fc.constantFrom('\n', '\r\n'),
        fc.stringMatching(/^[a-z][a-z.-]{0,8}$/),
        (ls, eol, entry) => {
          const text = ls.map((l) => l + eol).join('');
          const doc = parseLineList(text, '/x');
          if (doc.toString() !== text) return false;
          const had = doc.has(entry);
          if (doc.add(entry) === had) return false;
          if (doc.add(entry)) return false;
          const after = doc.toString();
          return had ? after === text : lineChanges(text, after).added.length === 1;
        },
      ),
    );
  });
});

describe('services.d (ca.cfg)', () => {
  const samples = allSamples('services').filter((s) => s.text.includes('certificate-authority'));

  it.skipIf(samples.length === 0).each(samples.map((s) => [s.name, s] as const))(
    'switches the CA off and on in %s by (un)commenting lines',
    (_n, s) => {
      const doc = parseServices(s.text, s.path);
      const wasOn = doc.caEnabled();
      doc.setCa(false);
      expect(doc.caEnabled()).toBe(false);
      expect(doc.isEnabled(CA_SERVICE)).toBe(false);
      const off = doc.toString();
      expect(doc.setCa(false)).toBe(false);
      // only the two CA lines changed; a line is added only when the file never mentioned the disabled service
      const { removed, added } = lineChanges(s.text, off);
      expect(added.length - removed.length).toBe(s.text.includes(CA_DISABLED_SERVICE) ? 0 : 1);
      expect(added.every((l) => l.includes('certificate-authority'))).toBe(true);
      doc.setCa(true);
      expect(doc.caEnabled()).toBe(true);
      if (wasOn === true && s.text.includes(`#${CA_DISABLED_SERVICE}`)) expect(doc.toString()).toBe(s.text);
    },
  );

  it('keeps CRLF and an indented comment style; appends a service never mentioned', () => {
    const doc = parseServices(`# enable\r\n${CA_SERVICE}\r\n  # ${CA_DISABLED_SERVICE}\r\n`, '/ca.cfg');
    doc.setCa(false);
    expect(doc.toString()).toBe(`# enable\r\n#${CA_SERVICE}\r\n  ${CA_DISABLED_SERVICE}\r\n`);
    const bare = parseServices('a.b/c\n', '/bootstrap.cfg');
    bare.setCa(false);
    expect(bare.toString()).toBe(`a.b/c\n${CA_DISABLED_SERVICE}\n`);
    expect(() => bare.enable('not a service')).toThrow(/not a trapperkeeper service/);
  });
});
