import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { LocalHost } from '@pe-stack/pe-host';
import { layouts, resolveLayout } from '@pe-stack/pe-config-files';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DbAuthError,
  DbConnectError,
  DbHbaRejectedError,
  DbQueryError,
  classifyFailure,
  fitPoolSize,
  hbaRecord,
  hostCidr,
  instanceFromLayout,
  instanceFromHost,
  quoteIdent,
  quoteLiteral,
  replicaIdent,
  scramVerifier,
  type PoolUse,
} from './index.js';

const target = { server: 'primary.example.com', port: 5432, database: 'puppetdb', user: 'puppetdb' };

describe('classifyFailure maps libpq and server messages to typed errors', () => {
  it.each([
    [
      'psql: error: connection to server at "10.0.0.1", port 5432 failed: FATAL:  password authentication failed for user "puppetdb"',
      DbAuthError,
      'E_DB_AUTH',
    ],
    [
      'psql: error: connection to server at "10.0.0.1", port 5432 failed: fe_sendauth: no password supplied',
      DbAuthError,
      'E_DB_AUTH',
    ],
    [
      'psql: error: connection to server at "10.0.0.1", port 5432 failed: FATAL:  no pg_hba.conf entry for host "10.0.0.7", user "puppetdb", database "puppetdb", no encryption',
      DbHbaRejectedError,
      'E_DB_HBA',
    ],
    [
      'psql: error: connection to server at "10.0.0.1", port 5432 failed: Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?',
      DbConnectError,
      'E_DB_CONNECT',
    ],
    [
      'psql: error: could not translate host name "nope.example" to address: Name or service not known',
      DbConnectError,
      'E_DB_CONNECT',
    ],
    [
      'psql: error: connection to server at "10.0.0.1", port 5432 failed: timeout expired',
      DbConnectError,
      'E_DB_CONNECT',
    ],
    [
      'psql: error: connection to server at "10.0.0.1", port 5432 failed: FATAL:  database "puppetdb" does not exist',
      DbQueryError,
      'E_DB_QUERY',
    ],
  ])('%s', (text, cls, code) => {
    const e = classifyFailure('secondary1', target, text) as InstanceType<typeof cls>;
    expect(e).toBeInstanceOf(cls);
    expect((e as { code: string }).code).toBe(code);
    expect(e.message).toContain('primary.example.com:5432');
    expect(e.message).toContain('database "puppetdb"');
    expect(e.message).toContain('user "puppetdb"');
    expect((e as { host?: string }).host).toBe('secondary1');
  });

  it('takes the client address from the pg_hba rejection and from SQLSTATE codes of the pg client', () => {
    const e = classifyFailure(
      'c',
      target,
      'no pg_hba.conf entry for host "10.0.0.7", user "puppetdb"',
    ) as DbHbaRejectedError;
    expect(e.clientAddress).toBe('10.0.0.7');
    expect(e.hint).toContain('10.0.0.7');
    expect(classifyFailure('c', target, 'whatever', '28P01')).toBeInstanceOf(DbAuthError);
    expect(classifyFailure('c', target, 'whatever', '28000')).toBeInstanceOf(DbHbaRejectedError);
  });
});

describe('connection budget arithmetic', () => {
  const pool = (connections: number, adjustable: boolean): PoolUse => ({
    node: 'n',
    service: adjustable ? 'puppetdb' : 'console',
    file: '/f',
    connections,
    basis: '',
    adjustable,
  });
  it('shares what is left after the fixed users between two pools per puppetdb', () => {
    expect(fitPoolSize([pool(50, true), pool(50, true), pool(50, true)], 92)).toBe(15);
    expect(fitPoolSize([pool(50, true), pool(20, false)], 92)).toBe(36);
    expect(fitPoolSize([pool(20, false)], 10)).toBe(Infinity);
    expect(fitPoolSize([pool(50, true), pool(100, false)], 92)).toBeLessThan(0);
  });
});

describe('names', () => {
  it('slot and role names from host names', () => {
    expect(replicaIdent('secondary-1.example.com')).toBe('pe_secondary_1_example_com');
    expect(replicaIdent('Sec1', 'pe_repl_')).toBe('pe_repl_sec1');
    expect(() => replicaIdent('x'.repeat(70))).toThrow();
  });

  it('SQL quoting', () => {
    expect(quoteLiteral("it's")).toBe("'it''s'");
    expect(quoteIdent('we"ird')).toBe('"we""ird"');
    expect(() => quoteLiteral('a\0b')).toThrow();
  });

  it('pg_hba records are single-host scram rules only', () => {
    expect(hostCidr('2001:db8::7')).toBe('2001:db8::7/128');
    expect(hostCidr('10.1.2.3/32')).toBe('10.1.2.3/32');
    expect(() => hostCidr('0.0.0.0/0')).toThrow();
    expect(() => hostCidr('2001:db8::/64')).toThrow();
    expect(hbaRecord({ database: 'replication', user: 'pe_repl_s1' }, '10.1.2.3').method).toBe('scram-sha-256');
    expect(() => hbaRecord({ database: 'pdb', user: 'samerole' }, '10.1.2.3')).toThrow();
    expect(() => hbaRecord({ database: 'pdb db', user: 'u' }, '10.1.2.3')).toThrow();
  });
});

describe('instances from the layouts', () => {
  const host = new LocalHost();
  it('debian: pg_ctlcluster for one cluster, configuration under /etc', () => {
    const i = instanceFromLayout(host, layouts.debian);
    expect(i).toMatchObject({
      binDir: '/usr/lib/postgresql/15/bin',
      dataDir: '/var/lib/postgresql/15/main',
      confFile: '/etc/postgresql/15/main/postgresql.conf',
      hbaFile: '/etc/postgresql/15/main/pg_hba.conf',
      osUser: 'postgres',
      port: 5432,
      startConf: '/etc/postgresql/15/main/start.conf',
    });
    expect(i.control.promote).toEqual(['pg_ctlcluster', '15', 'main', 'promote']);
    expect(i.control.stop).toEqual(['pg_ctlcluster', '15', 'main', 'stop', '-m', 'fast']);
  });
  it('pe3: pe-postgresql service, configuration in the data directory, pg_ctl promote as pe-postgres', () => {
    const i = instanceFromLayout(host, layouts.pe3);
    expect(i).toMatchObject({
      binDir: '/opt/puppet/bin',
      dataDir: '/opt/puppet/var/lib/pgsql/9.2/data',
      confFile: '/opt/puppet/var/lib/pgsql/9.2/data/postgresql.conf',
      osUser: 'pe-postgres',
    });
    expect(i.control.start).toEqual(['/sbin/service', 'pe-postgresql', 'start']);
    expect(i.control.promote).toEqual([
      'runuser',
      '-u',
      'pe-postgres',
      '--',
      '/opt/puppet/bin/pg_ctl',
      'promote',
      '-D',
      '/opt/puppet/var/lib/pgsql/9.2/data',
    ]);
  });
});

describe('instanceFromHost: the socket directory the server is configured with', () => {
  it('takes the first of the last active unix_socket_directories; the layout default otherwise', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pe-db-sock-'));
    try {
      const conf = join(dir, 'postgresql.conf');
      const layout = resolveLayout('pe3', { files: { postgresqlConf: { path: conf } } });
      const host = new LocalHost();
      expect((await instanceFromHost(host, layout)).socketDir).toBe('/tmp'); // no file: the build's default
      writeFileSync(conf, "#unix_socket_directories = '/var/run/postgresql'\nport = 5432\n");
      expect((await instanceFromHost(host, layout)).socketDir).toBe('/tmp');
      writeFileSync(
        conf,
        "unix_socket_directories = '/a'\nunix_socket_directories = '/var/run/pe-postgresql/, /tmp'\t# PE\n",
      );
      expect((await instanceFromHost(host, layout)).socketDir).toBe('/var/run/pe-postgresql');
      writeFileSync(conf, "unix_socket_directories = '@abstract'\n");
      expect((await instanceFromHost(host, layout)).socketDir).toBe('/tmp');
      // PostgreSQL 9.2 (PE 3's pe-postgresql) names it unix_socket_directory
      writeFileSync(conf, "#unix_socket_directory = ''\nunix_socket_directory = '/var/run/pe-postgresql'\n");
      expect((await instanceFromHost(host, layout)).socketDir).toBe('/var/run/pe-postgresql');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('SCRAM-SHA-256 verifier', () => {
  it('matches the RFC 7677 exchange (user "user", password "pencil")', () => {
    const salt = Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64');
    const v = scramVerifier('pencil', 4096, salt);
    const m = /^SCRAM-SHA-256\$4096:([^$]+)\$([^:]+):(.+)$/.exec(v)!;
    expect(m[1]).toBe('W22ZaJ0SNY7soEsUEjb6gQ==');
    const storedKey = Buffer.from(m[2]!, 'base64');
    const serverKey = Buffer.from(m[3]!, 'base64');
    const nonce = 'rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0';
    const authMessage = `n=user,r=rOprNGfwEbeRWgbNEkqO,r=${nonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r=${nonce}`;
    expect(createHmac('sha256', serverKey).update(authMessage).digest('base64')).toBe(
      '6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
    );
    // ClientProof = ClientKey XOR HMAC(StoredKey, AuthMessage); H(ClientKey) must be StoredKey
    const proof = Buffer.from('dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=', 'base64');
    const sig = createHmac('sha256', storedKey).update(authMessage).digest();
    const clientKey = Buffer.from(proof.map((b, i) => b ^ sig[i]!));
    expect(createHash('sha256').update(clientKey).digest().equals(storedKey)).toBe(true);
  });
  it('a fresh random salt each time', () => {
    expect(scramVerifier('x1234')).not.toBe(scramVerifier('x1234'));
  });
});
