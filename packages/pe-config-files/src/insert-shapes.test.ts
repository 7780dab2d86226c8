import { describe, expect, it } from 'vitest';
import { parseHocon, type HoconPath } from './hocon.js';
import { parseKeyValue } from './kv.js';
import { parseApache } from './apache.js';
import { parsePgHba, type HbaRecord } from './pghba.js';
import { parseSitePp } from './sitepp.js';
import { toCrlf } from '@pe-stack/testkit/config-samples';
import { changedRegion } from '@pe-stack/testkit/config-samples';

// Editors that insert relative to a field or a line, on files where that
// field or line holds more than one thing (a closing brace, another field,
// another assignment, a value running over lines): the new content lands in
// the structure the edit names, the rest reads as before, a second edit is a
// no-op, and the input's bytes stay around one contiguous insertion.

function withVariants(shapes: Record<string, string>): [string, string][] {
  return Object.entries(shapes).flatMap(([n, t]) => [
    [n, t],
    [`${n} (CRLF)`, toCrlf(t)],
    [`${n} (no final newline)`, t.replace(/\r?\n$/, '')],
  ]);
}

function expectOneInsertion(before: string, after: string): void {
  const { removed, added } = changedRegion(before, after);
  expect(removed).toBe('');
  if (before.includes('\r\n')) expect(added.replace(/\r\n/g, '')).not.toMatch(/[\r\n]/);
  else expect(added).not.toContain('\r');
}

function setPath(obj: Record<string, unknown>, path: readonly string[], value: unknown): Record<string, unknown> {
  const [k, ...rest] = path;
  const cur = obj[k!];
  return {
    ...obj,
    [k!]: rest.length === 0 ? value : setPath((cur as Record<string, unknown>) ?? {}, rest, value),
  };
}

const HOCON: Record<string, string> = {
  'closing brace on the last field line': 'webserver: {\n    ssl-host: 0.0.0.0\n    ssl-port: 8140 }\n',
  'object on one line': 'webserver: { ssl-host: 0.0.0.0, ssl-port: 8140 }\n',
  'two objects on one line': 'webserver { ssl-host: 0.0.0.0 }, jruby-puppet { max-active-instances: 1 }\n',
  'nested objects closing on one line': 'webserver {\n  inner {\n    c: 1\n  } }\nother: 2\n',
  'empty object on one line': 'webserver: {}\nother: { }\n',
  'empty object over lines': 'webserver: {\n}\n',
  'braced root on one line': '{ webserver: { ssl-port: 8140 } }\n',
  'last field before a comment': 'webserver {\n  ssl-port: 8140 # the port\n}\n',
  'two fields on the last line': 'webserver {\n  ssl-host: 0.0.0.0, ssl-port: 8140\n}\n',
  'list value closing with the object': 'webserver {\n  ssl-protocols: [TLSv1.2,\n    TLSv1.3] }\n',
  'tab indentation, brace on the field line': 'webserver {\n\tssl-port: 8140}\n',
};

describe.each([[['webserver', 'ssl-crl-path']], [['webserver', 'client-auth', 'mode']]] as const)(
  'HOCON: setting %j in every shape',
  (path) => {
    it.each(withVariants(HOCON))('%s', (_n, text) => {
      const doc = parseHocon(text, '/etc/puppetserver/conf.d/webserver.conf');
      const before = doc.get([]) as Record<string, unknown>;
      const value = '/etc/puppetlabs/puppet/ssl/crl.pem';
      expect(doc.set(path as HoconPath, value)).toBe(true);
      const after = doc.toString();
      const reread = parseHocon(after, '/x');
      expect(reread.get([])).toEqual(setPath(before, path, value));
      expect(reread.set(path as HoconPath, value)).toBe(false);
      expect(doc.set(path as HoconPath, value)).toBe(false);
      expectOneInsertion(text, after);
    });
  },
);

describe('HOCON: what the operator sees', () => {
  it('a field after a last field that shares its line with the closing brace stays inside the object', () => {
    const doc = parseHocon(HOCON['closing brace on the last field line']!, '/x');
    doc.set(['webserver', 'ssl-crl-path'], '/crl.pem');
    expect(doc.toString()).toBe(
      'webserver: {\n    ssl-host: 0.0.0.0\n    ssl-port: 8140\n    ssl-crl-path: "/crl.pem" }\n',
    );
  });

  it('an object on one line stays on one line', () => {
    const doc = parseHocon(HOCON['two objects on one line']!, '/x');
    doc.set(['webserver', 'ssl-crl-path'], '/crl.pem');
    doc.set(['jruby-puppet', 'borrow-timeout'], 60);
    expect(doc.toString()).toBe(
      'webserver { ssl-host: 0.0.0.0, ssl-crl-path: "/crl.pem" }, jruby-puppet { max-active-instances: 1, borrow-timeout: 60 }\n',
    );
  });

  it('an empty object gets its first field', () => {
    const doc = parseHocon(HOCON['empty object on one line']!, '/x');
    doc.set(['webserver', 'a', 'b'], 1);
    doc.set(['other', 'c'], 2);
    expect(doc.toString()).toBe('webserver: { a: { b: 1 } }\nother: { c: 2 }\n');
  });
});

const SHELL: Record<string, string> = {
  'two assignments on one line': 'JAVA_BIN=/usr/bin/java JAVA_ARGS="-Xmx2g"\nUSER=puppet\n',
  'assignments separated by ;': 'JAVA_ARGS="-Xmx2g"; TK_ARGS=""\nUSER=puppet\n',
  'a quoted value over lines': 'JAVA_ARGS="-Xms2g\n  -Xmx2g\n  -Djruby.logger.class=x"\nUSER=puppet\n',
  'a value continued by backslashes': 'JAVA_ARGS=-Xms2g\\\n-Xmx2g\nUSER=puppet\n',
  'a quoted value over lines, last in the file': 'USER=puppet\nJAVA_ARGS="-Xms2g\n  -Xmx2g"\n',
  'a single-quoted value holding KEY=value lines': "NOTE='\nSTART_TIMEOUT=1\n'\nUSER=puppet\n",
};

describe('shell variables: assignments and statements, not lines', () => {
  it.each(withVariants(SHELL))('%s: reading, adding a key', (_n, text) => {
    const doc = parseKeyValue(text, '/etc/default/puppetserver', 'shell');
    expect(doc.get('USER')).toBe('puppet');
    expect(doc.get('START_TIMEOUT')).toBeUndefined();
    const keys = doc.keys();
    expect(doc.set('START_TIMEOUT', '300')).toBe(true);
    const after = doc.toString();
    const reread = parseKeyValue(after, '/x', 'shell');
    expect(reread.keys()).toEqual([...keys, 'START_TIMEOUT']);
    for (const k of keys) expect(reread.get(k)).toBe(parseKeyValue(text, '/x', 'shell').get(k));
    expect(reread.get('START_TIMEOUT')).toBe('300');
    expect(reread.set('START_TIMEOUT', '300')).toBe(false);
    expectOneInsertion(text, after);
  });

  it('reads every assignment of a line and a value over lines', () => {
    const two = parseKeyValue(SHELL['two assignments on one line']!, '/x', 'shell');
    expect(two.get('JAVA_BIN')).toBe('/usr/bin/java');
    expect(two.get('JAVA_ARGS')).toBe('-Xmx2g');
    const semi = parseKeyValue(SHELL['assignments separated by ;']!, '/x', 'shell');
    expect(semi.get('TK_ARGS')).toBe('');
    const multi = parseKeyValue(SHELL['a quoted value over lines']!, '/x', 'shell');
    expect(multi.get('JAVA_ARGS')).toBe('-Xms2g\n  -Xmx2g\n  -Djruby.logger.class=x');
    expect(parseKeyValue(SHELL['a single-quoted value holding KEY=value lines']!, '/x', 'shell').keys()).toEqual([
      'NOTE',
      'USER',
    ]);
  });

  it('changes one assignment of a line in place, and replaces a value over lines whole', () => {
    const two = parseKeyValue(SHELL['two assignments on one line']!, '/x', 'shell');
    two.set('JAVA_ARGS', '-Xmx4g');
    expect(two.toString()).toBe('JAVA_BIN=/usr/bin/java JAVA_ARGS="-Xmx4g"\nUSER=puppet\n');
    const multi = parseKeyValue(toCrlf(SHELL['a quoted value over lines']!), '/x', 'shell');
    multi.set('JAVA_ARGS', '-Xmx4g');
    expect(multi.toString()).toBe('JAVA_ARGS="-Xmx4g"\r\nUSER=puppet\r\n');
  });

  it('unset removes one assignment of a line, and a whole statement over lines', () => {
    const two = parseKeyValue(SHELL['two assignments on one line']!, '/x', 'shell');
    expect(two.unset('JAVA_BIN')).toBe(true);
    expect(two.toString()).toBe('JAVA_ARGS="-Xmx2g"\nUSER=puppet\n');
    const semi = parseKeyValue(SHELL['assignments separated by ;']!, '/x', 'shell');
    expect(semi.unset('TK_ARGS')).toBe(true);
    expect(semi.toString()).toBe('JAVA_ARGS="-Xmx2g"\nUSER=puppet\n');
    const multi = parseKeyValue(SHELL['a quoted value over lines, last in the file']!.trimEnd(), '/x', 'shell');
    expect(multi.unset('JAVA_ARGS')).toBe(true);
    expect(multi.toString()).toBe('USER=puppet');
  });
});

const APACHE = [
  'Listen 8140',
  '<VirtualHost *:8140>',
  '    SSLEngine on',
  '    SSLCipherSuite ALL:!ADH:RC4+RSA:+HIGH:\\',
  '        +MEDIUM:-LOW',
  '    RequestHeader set X-Note "a \\',
  'SSLCARevocationFile /not/a/directive"',
  '    SSLCARevocationFile \\',
  '        /etc/puppetlabs/puppet/ssl/ca/ca_crl.pem',
  '</VirtualHost>',
  '',
].join('\n');

describe('Apache: a backslash continues a directive on the next line', () => {
  it('reads continued directives joined, and never a continuation line as a directive', () => {
    const doc = parseApache(APACHE, '/etc/puppetlabs/httpd/conf.d/puppetmaster.conf');
    expect(doc.get('SSLCipherSuite')).toEqual(['ALL:!ADH:RC4+RSA:+HIGH: +MEDIUM:-LOW']);
    expect(doc.get('SSLCARevocationFile')).toEqual(['/etc/puppetlabs/puppet/ssl/ca/ca_crl.pem']);
  });

  it.each([
    ['as written', APACHE],
    ['CRLF', toCrlf(APACHE)],
  ])('%s: setting a continued directive makes it one line, idempotently', (_n, text) => {
    const doc = parseApache(text, '/x');
    expect(doc.set('SSLCARevocationFile', '/etc/puppetlabs/puppet/ssl/crl.pem')).toBe(true);
    const eol = text.includes('\r\n') ? '\r\n' : '\n';
    expect(doc.toString()).toBe(
      text.replace(
        `    SSLCARevocationFile \\${eol}        /etc/puppetlabs/puppet/ssl/ca/ca_crl.pem${eol}`,
        `    SSLCARevocationFile /etc/puppetlabs/puppet/ssl/crl.pem${eol}`,
      ),
    );
    const reread = parseApache(doc.toString(), '/x');
    expect(reread.get('SSLCARevocationFile')).toEqual(['/etc/puppetlabs/puppet/ssl/crl.pem']);
    expect(reread.set('SSLCARevocationFile', '/etc/puppetlabs/puppet/ssl/crl.pem')).toBe(false);
    expect(reread.get('RequestHeader')).toEqual(['set X-Note "a SSLCARevocationFile /not/a/directive"']);
  });

  it('unset removes every line of a continued directive; a new directive goes before </VirtualHost>', () => {
    const doc = parseApache(APACHE, '/x');
    expect(doc.unset('SSLCipherSuite')).toBe(true);
    expect(doc.toString()).not.toContain('+MEDIUM');
    expect(doc.set('SSLVerifyClient', 'optional')).toBe(true);
    expect(doc.toString()).toContain('/ca_crl.pem\n    SSLVerifyClient optional\n</VirtualHost>\n');
  });
});

const HBA = [
  '# TYPE  DATABASE  USER  ADDRESS  METHOD',
  'local   all       all            peer',
  'host    all       all   \\',
  '        127.0.0.1/32     scram-sha-256',
  'host    pe-puppetdb \\',
  'pe-puppetdb 10.0.0.5/32 md5',
  '',
].join('\n');
const NEW_HBA: HbaRecord = {
  type: 'hostssl',
  database: 'pe-puppetdb',
  user: 'pe-puppetdb',
  address: '10.0.0.6/32',
  method: 'scram-sha-256',
};

describe('pg_hba.conf: a backslash continues a record on the next line (PostgreSQL 16+)', () => {
  it('reads continued records joined, as PostgreSQL does', () => {
    expect(
      parsePgHba(HBA, '/x')
        .records()
        .map(({ line: _l, ...r }) => r),
    ).toEqual([
      { type: 'local', database: 'all', user: 'all', method: 'peer' },
      { type: 'host', database: 'all', user: 'all', address: '127.0.0.1/32', method: 'scram-sha-256' },
      { type: 'host', database: 'pe-puppetdb', user: 'pe-puppetdb', address: '10.0.0.5/32', method: 'md5' },
    ]);
  });

  it.each(withVariants({ continued: HBA, 'continued, ending the file': HBA.replace(/\n$/, '') }))(
    '%s: a new record goes after the last line of the last record, never between continued lines',
    (_n, text) => {
      for (const position of ['end', 'start'] as const) {
        const doc = parsePgHba(text, '/x');
        expect(doc.add(NEW_HBA, position)).toBe(true);
        const after = doc.toString();
        const records = parsePgHba(after, '/x').records();
        expect(records).toHaveLength(4);
        expect(records.at(position === 'end' ? -1 : 0)).toMatchObject(NEW_HBA);
        expect(parsePgHba(after, '/x').add(NEW_HBA, position)).toBe(false);
        expectOneInsertion(text, after);
      }
    },
  );

  it('rewrites and removes a continued record whole', () => {
    const doc = parsePgHba(HBA, '/x');
    expect(
      doc.add({
        type: 'host',
        database: 'pe-puppetdb',
        user: 'pe-puppetdb',
        address: '10.0.0.5/32',
        method: 'scram-sha-256',
      }),
    ).toBe(true);
    expect(doc.toString()).not.toContain('md5');
    expect(doc.toString().split('\n')).toHaveLength(HBA.split('\n').length - 1);
    expect(doc.remove({ address: '127.0.0.1/32' })).toBe(true);
    expect(doc.toString()).not.toContain('127.0.0.1');
    expect(doc.records()).toHaveLength(2);
  });
});

const SITE_PP: Record<string, string> = {
  'resource on one line': "filebucket { 'main': path => false }\nFile { backup => 'main' }\n",
  'first attribute on the title line, no comma': "filebucket { 'main': path => false\n}\nFile { backup => 'main' }\n",
  'title line then attributes': "filebucket { 'main':\n  path => false,\n}\n",
  'title line with a comment': "filebucket { 'main': # the primary's bucket\n  path => false,\n}\n",
  'empty body on one line': 'filebucket { main: }\n',
  'two resources on one line': "filebucket { 'main': path => false } filebucket { 'other': path => false }\n",
};

describe('site.pp: a filebucket written on one line gets its server inside the resource', () => {
  it.each(withVariants(SITE_PP))('%s', (_n, text) => {
    const doc = parseSitePp(text, '/etc/puppetlabs/puppet/manifests/site.pp');
    expect(doc.filebucketServer()).toBeUndefined();
    expect(doc.setFilebucketServer('master2.example.com')).toBe(true);
    const after = doc.toString();
    const reread = parseSitePp(after, '/x');
    expect(reread.filebucketServer()).toBe('master2.example.com');
    if (text.includes("'other'")) expect(reread.filebucketServer('other')).toBeUndefined();
    expect(reread.setFilebucketServer('master2.example.com')).toBe(false);
    // the first attribute, right after the title (or on the next line after a comment), with its comma
    expect(after).toMatch(/filebucket \{ '?main'?:[ \t]*(?:#[^\n]*\r?\n)?\s*server => 'master2\.example\.com',/);
    expectOneInsertion(text, after);
  });
});
