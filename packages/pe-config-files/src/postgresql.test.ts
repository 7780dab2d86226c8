import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parsePostgresqlConf } from './postgresql.js';
import { parsePgHba } from './pghba.js';
import { ConfigParseError } from './errors.js';
import { allSamples, lineChanges, pe3Fixture } from '@pe-stack/testkit/config-samples';

const CONF = '/etc/postgresql/15/main/postgresql.conf';
const HBA = '/etc/postgresql/15/main/pg_hba.conf';

describe('postgresql.conf', () => {
  it('reads values: quoted, unquoted, with and without =, the last one wins, case-insensitively', () => {
    const doc = parsePostgresqlConf(
      "port 5433\nPort = 5434 # again\nlisten_addresses = 'a,b'  # c\nx = 'it''s'\n#max_connections = 1\n",
      CONF,
    );
    expect(doc.get('port')).toBe('5434');
    expect(doc.get('listen_addresses')).toBe('a,b');
    expect(doc.get('x')).toBe("it's");
    expect(doc.get('max_connections')).toBeUndefined();
  });

  it('sets listen_addresses right after its commented-out default, and replication settings', () => {
    const before = pe3Fixture('postgresql.conf');
    const doc = parsePostgresqlConf(before, CONF);
    doc.set('listen_addresses', '*');
    doc.set('wal_level', 'hot_standby');
    doc.set('max_wal_senders', 5);
    doc.set('hot_standby', true);
    doc.set('port', 5432);
    const after = doc.toString();
    const { removed, added } = lineChanges(before, after);
    expect(removed).toEqual([]);
    expect(added).toEqual([
      "listen_addresses = '*'\n",
      "wal_level = 'hot_standby'\n",
      'max_wal_senders = 5\n',
      'hot_standby = on\n',
    ]);
    expect(after).toContain(
      "#listen_addresses = 'localhost'\t\t# what IP address(es) to listen on;\nlisten_addresses = '*'\n",
    );
  });

  it('changes a value in place keeping its comment and alignment', () => {
    const doc = parsePostgresqlConf(
      "max_connections = 400\t\t\t# (change requires restart)\r\nlog_destination = 'stderr'\t\t# c\r\n",
      CONF,
    );
    doc.set('max_connections', 100);
    doc.set('log_destination', 'csvlog');
    expect(doc.toString()).toBe(
      "max_connections = 100\t\t\t# (change requires restart)\r\nlog_destination = 'csvlog'\t\t# c\r\n",
    );
    expect(doc.set('max_connections', '100')).toBe(false);
  });

  it.each(allSamples('postgresql-conf').map((s) => [s.name, s] as const))(
    '%s: listen_addresses edit touches at most one line',
    (_n, s) => {
      const doc = parsePostgresqlConf(s.text, s.path);
      const was = doc.get('listen_addresses');
      doc.set('listen_addresses', '*');
      const { removed, added } = lineChanges(s.text, doc.toString());
      if (was === '*') expect(added).toEqual([]);
      else {
        expect(added).toHaveLength(1);
        expect(removed.length).toBeLessThanOrEqual(1);
      }
      expect(parsePostgresqlConf(doc.toString(), s.path).get('listen_addresses')).toBe('*');
    },
  );

  it('an unterminated quote is a ConfigParseError with the line', () => {
    expect(() => parsePostgresqlConf("port = 5432\nlisten_addresses = '*\n", CONF)).toThrow(ConfigParseError);
    expect(() => parsePostgresqlConf("port = 5432\nlisten_addresses = '*\n", CONF)).toThrow(/postgresql\.conf line 2/);
  });

  it('property: generated files round-trip and set is read back', () => {
    const name = fc.stringMatching(/^[a-z][a-z_]{0,10}$/);
    const value = fc.oneof(
      fc.stringMatching(/^[a-z0-9]{1,6}$/),
      fc.stringMatching(/^[a-z ,*'%]{0,8}$/).map((v) => `'${v.replace(/'/g, "''")}'`),
    );
    const line = fc.oneof(
      fc
        .tuple(name, fc.constantFrom(' = ', '=', ' ', '\t=\t'), value, fc.constantFrom('', '\t\t# comment', ' #x'))
        .map(([n, s, v, c]) => `${n}${s}${v}${c}`),
      fc.constantFrom('', '# comment', "#listen_addresses = 'localhost'", '\t\t\t\t\t# continuation'),
    );
    fc.assert(
      fc.property(
        fc.array(fc.tuple(line, fc.constantFrom('\n', '\r\n')), { maxLength: 25 }),
        name,
        fc.stringMatching(/^[A-Za-z0-9 *',.]{0,10}$/),
        (ls, n, v) => {
          const text = ls.map(([l, e]) => l + e).join('');
          const doc = parsePostgresqlConf(text, CONF);
          if (doc.toString() !== text) return false;
          const had = doc.get(n);
          if (doc.set(n, v) !== (had !== v)) return false;
          const after = doc.toString();
          if (parsePostgresqlConf(after, CONF).get(n) !== v) return false;
          const { removed, added } = lineChanges(text, after);
          return had === v ? after === text : added.length === 1 && removed.length <= 1;
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('pg_hba.conf', () => {
  const rec = {
    type: 'host',
    database: 'pe-puppetdb',
    user: 'pe-puppetdb',
    address: '10.0.0.2/32',
    method: 'md5',
  } as const;

  it('adds a record aligned with the table, never twice', () => {
    const before = pe3Fixture('pg_hba.conf');
    const doc = parsePgHba(before, HBA);
    expect(doc.add(rec)).toBe(true);
    expect(doc.add(rec)).toBe(false);
    expect(lineChanges(before, doc.toString())).toEqual({
      removed: [],
      added: ['host    pe-puppetdb     pe-puppetdb     10.0.0.2/32             md5\n'],
    });
  });

  it('rewrites the method of an existing record in place instead of duplicating it', () => {
    const doc = parsePgHba('host all all 127.0.0.1/32 md5\nhost replication rep 10.0.0.2/32 md5\n', HBA);
    expect(
      doc.add({ type: 'host', database: 'replication', user: 'rep', address: '10.0.0.2/32', method: 'scram-sha-256' }),
    ).toBe(true);
    expect(doc.toString()).toBe('host all all 127.0.0.1/32 md5\nhost replication rep 10.0.0.2/32 scram-sha-256\n');
    expect(doc.records()).toHaveLength(2);
  });

  it('removes by partial match, keeps CRLF, and reads netmask and quoted fields', () => {
    const doc = parsePgHba(
      'local all postgres peer\r\nhost "my db" all 10.0.0.0 255.0.0.0 md5\r\nhost all all 10.1.0.0/16 md5 clientcert=verify-full\r\n',
      HBA,
    );
    expect(doc.records().map((r) => [r.database, r.address, r.options])).toEqual([
      ['all', undefined, undefined],
      ['"my db"', '10.0.0.0 255.0.0.0', undefined],
      ['all', '10.1.0.0/16', 'clientcert=verify-full'],
    ]);
    expect(doc.remove({ address: '10.1.0.0/16' })).toBe(true);
    expect(doc.toString()).toBe('local all postgres peer\r\nhost "my db" all 10.0.0.0 255.0.0.0 md5\r\n');
    doc.add({ type: 'local', database: 'all', user: 'puppetdb', method: 'peer' }, 'start');
    expect(doc.toString().startsWith('local all puppetdb peer\r\nlocal all postgres peer\r\n')).toBe(true);
  });

  it.each(allSamples('pg-hba').map((s) => [s.name, s] as const))(
    '%s: adding a peer is one new line after the last record',
    (_n, s) => {
      const doc = parsePgHba(s.text, s.path);
      const n = doc.records().length;
      doc.add({
        type: 'host',
        database: 'puppetdb',
        user: 'puppetdb',
        address: '10.77.0.12/32',
        method: 'scram-sha-256',
      });
      const { removed, added } = lineChanges(s.text, doc.toString());
      expect(added.filter((l) => l.includes('10.77.0.12/32'))).toHaveLength(1);
      expect(removed.length).toBeLessThanOrEqual(1); // a last line without a terminator gains one
      expect(doc.records()).toHaveLength(n + 1);
      expect(doc.records().at(-1)?.address).toBe('10.77.0.12/32');
    },
  );

  it('malformed records are ConfigParseErrors with their line', () => {
    expect(() => parsePgHba('local all all peer\nhost all all\n', HBA)).toThrow(
      /pg_hba\.conf line 2: incomplete record/,
    );
    expect(() => parsePgHba('hots all all 1.2.3.4/32 md5\n', HBA)).toThrow(/line 1: unknown connection type/);
  });

  it('property: generated tables round-trip; add is idempotent and never duplicates', () => {
    const word = fc.stringMatching(/^[a-z][a-z0-9_]{0,7}$/);
    const addr = fc
      .tuple(fc.integer({ min: 1, max: 254 }), fc.integer({ min: 0, max: 254 }), fc.constantFrom(8, 16, 24, 32))
      .map(([a, b, m]) => `10.${a}.${b}.0/${m}`);
    const row = fc.oneof(
      fc
        .tuple(word, word, addr, fc.constantFrom('md5', 'scram-sha-256', 'trust'), fc.constantFrom(' ', '\t', '    '))
        .map(([d, u, a, m, sp]) => ['host', d, u, a, m].join(sp)),
      fc.constantFrom('', '# TYPE  DATABASE  USER  ADDRESS  METHOD', 'local all all peer'),
    );
    fc.assert(
      fc.property(
        fc.array(fc.tuple(row, fc.constantFrom('\n', '\r\n')), { maxLength: 20 }),
        word,
        addr,
        (rows, u, a) => {
          const text = rows.map(([r, e]) => r + e).join('');
          const doc = parsePgHba(text, HBA);
          if (doc.toString() !== text) return false;
          const r = { type: 'host' as const, database: u, user: u, address: a, method: 'scram-sha-256' };
          doc.add(r);
          const once = doc.toString();
          if (doc.add(r)) return false;
          return (
            doc.records().filter((x) => x.database === u && x.user === u && x.address === a).length === 1 &&
            doc.toString() === once
          );
        },
      ),
      { numRuns: 300 },
    );
  });
});
