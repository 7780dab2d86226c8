import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parse as iniParse } from 'ini';
import { parseIni } from './ini.js';
import { allSamples, lineChanges, pe3Fixture } from '@pe-stack/testkit/config-samples';

const P = '/etc/puppetlabs/puppet/puppet.conf';

describe('INI editor', () => {
  it('reads sections and keys like Puppet (last duplicate wins, top-level keys in "")', () => {
    const doc = parseIni('top = 1\n[main]\n  server = a\n\n[agent]\nx=1\n[main]\nserver = b\n; c = 3\n# d = 4\n', P);
    expect(doc.get('', 'top')).toBe('1');
    expect(doc.get('main', 'server')).toBe('b');
    expect(doc.get('main', 'c')).toBeUndefined();
    expect(doc.sections()).toEqual(['main', 'agent']);
    expect(doc.keys('main')).toEqual(['server']);
  });

  it('agrees with the ini package on every sample it can read', () => {
    for (const s of allSamples('ini')) {
      const doc = parseIni(s.text, s.path);
      const ref = iniParse(s.text) as Record<string, unknown>;
      for (const section of doc.sections()) {
        const sec = ref[section] as Record<string, unknown> | undefined;
        if (!sec || typeof sec !== 'object') continue;
        for (const key of doc.keys(section)) {
          const v = sec[key];
          // the ini package strips quotes and inline ;/# comments; compare plain values only
          if (typeof v === 'string' && !/['";#]/.test(doc.get(section, key) ?? ''))
            expect(doc.get(section, key), `${s.name} [${section}] ${key}`).toBe(v);
        }
      }
    }
  });

  it('sets [master] ca = false and [main] ca_server in the PE 3 puppet.conf, touching only what it must', () => {
    const before = pe3Fixture('puppet.conf');
    const doc = parseIni(before, P);
    expect(doc.set('master', 'ca', 'false')).toBe(true);
    expect(doc.set('main', 'ca_server', 'master1.example.com')).toBe(true);
    const after = doc.toString();
    const { removed, added } = lineChanges(before, after);
    expect(removed).toEqual([]);
    // new keys use the section's 4-space indentation and land after its last key
    expect(added).toEqual(['    ca_server = master1.example.com\n', '    ca = false\n']);
    expect(after).toContain(
      '    archive_file_server = master1.example.com\n    ca_server = master1.example.com\n    # ca_server',
    );
    expect(after).toContain('puppet.example.com\n    ca = false\n\n[agent]');
    expect(parseIni(after, P).get('master', 'ca')).toBe('false');
  });

  it('is a no-op when the value is already set', () => {
    const before = pe3Fixture('puppet.conf');
    const doc = parseIni(before, P);
    expect(doc.set('agent', 'server', 'master1.example.com')).toBe(false);
    expect(doc.toString()).toBe(before);
  });

  it('changes one line in place, keeping indentation, spacing and the CRLF terminator', () => {
    const before = '[main]\r\n\tserver=old   \r\n# comment\r\n[agent]\r\nfoo = 1';
    const doc = parseIni(before, P);
    expect(doc.set('main', 'server', 'new')).toBe(true);
    expect(doc.toString()).toBe('[main]\r\n\tserver=new   \r\n# comment\r\n[agent]\r\nfoo = 1');
  });

  it('adds a missing section at the end with the file line ending, keeping a missing final newline missing', () => {
    const doc = parseIni('[main]\r\nserver = a', P);
    doc.set('puppetdb', 'certificate-allowlist', '/etc/puppetdb/certificate-allowlist');
    expect(doc.toString()).toBe(
      '[main]\r\nserver = a\r\n\r\n[puppetdb]\r\ncertificate-allowlist = /etc/puppetdb/certificate-allowlist',
    );
  });

  it('updates every duplicate so that no stale value can win, and unsets all of them', () => {
    const doc = parseIni('[main]\nserver = a\nserver = b\n', P);
    expect(doc.set('main', 'server', 'c')).toBe(true);
    expect(doc.toString()).toBe('[main]\nserver = c\nserver = c\n');
    expect(doc.unset('main', 'server')).toBe(true);
    expect(doc.toString()).toBe('[main]\n');
    expect(doc.unset('main', 'server')).toBe(false);
  });

  it('adds a top-level key before the first section', () => {
    const doc = parseIni('# header\n\n[main]\nx = 1\n', P);
    doc.set('', 'top', 'y');
    expect(doc.toString()).toBe('# header\ntop = y\n\n[main]\nx = 1\n');
  });

  it('rejects values it could not write back faithfully', () => {
    const doc = parseIni('[main]\n', P);
    expect(() => doc.set('main', 'k', 'a\nb')).toThrow(/line break/);
    expect(() => doc.set('main', 'k', ' padded')).toThrow(/whitespace/);
    expect(() => doc.set('main', 'bad=key', 'x')).toThrow(/not a valid INI key/);
  });

  it('property: generated files round-trip; set then get gives the value and touches at most the lines it must', () => {
    const key = fc.stringMatching(/^[a-z][a-z0-9_-]{0,8}$/);
    const value = fc.stringMatching(/^[A-Za-z0-9/:.,=_-]([A-Za-z0-9/:.,= _-]{0,12}[A-Za-z0-9/:.,=_-])?$/);
    const line = fc.oneof(
      fc
        .tuple(key, value, fc.constantFrom(' = ', '=', '  =  ', ' =\t'), fc.constantFrom('', '    ', '\t'))
        .map(([k, v, sep, ind]) => `${ind}${k}${sep}${v}`),
      key.map((k) => `[${k}]`),
      fc.constantFrom('', '# comment = x', '; other', '   ', '\t# indented'),
    );
    const file = fc
      .tuple(fc.array(fc.tuple(line, fc.constantFrom('\n', '\r\n')), { maxLength: 30 }), fc.boolean())
      .map(([ls, chop]) => {
        const t = ls.map(([l, e]) => l + e).join('');
        return chop ? t.replace(/\r?\n$/, '') : t;
      });
    fc.assert(
      fc.property(file, key, key, value, (text, section, k, v) => {
        const doc = parseIni(text, P);
        if (doc.toString() !== text) return false;
        const had = doc.get(section, k);
        const occurrences = text.split(/\r?\n/).length;
        const changed = doc.set(section, k, v);
        if (changed !== (had !== v)) return false;
        const after = doc.toString();
        if (parseIni(after, P).get(section, k) !== v) return false;
        const { removed, added } = lineChanges(text, after);
        if (had === undefined) {
          // only the new key (plus, for a new section, its header and a blank line; plus a terminator on the old last line)
          return added.length <= 4 && removed.length <= 1 && removed.every((r) => added.some((a) => a.startsWith(r)));
        }
        return removed.length === added.length && removed.length <= occurrences;
      }),
      { numRuns: 300 },
    );
  });
});
