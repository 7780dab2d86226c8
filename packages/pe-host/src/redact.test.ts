import { describe, expect, it } from 'vitest';
import { maskedDiff } from './diff.js';
import { PeError } from './errors.js';
import { MASK, Redactor, isSecretKey } from './redact.js';

describe('Redactor', () => {
  it('masks registered values everywhere, longest first', () => {
    const r = new Redactor(['s3cr3t-pw', 's3cr3t-pw-long']);
    expect(r.redact('a s3cr3t-pw-long b s3cr3t-pw c')).toBe(`a ${MASK} b ${MASK} c`);
    expect(r.redactArgv(['psql', '--password=s3cr3t-pw'])).toEqual(['psql', `--password=${MASK}`]);
  });

  it('masks short secrets (1-3 characters) as whole tokens only', () => {
    const r = new Redactor(['a', 'pe', 'x9!']);
    expect(r.redact('password=a;')).toBe(`password=${MASK};`);
    expect(r.redact('a cat ate a')).toBe(`${MASK} cat ate ${MASK}`);
    expect(r.redact('{"user":"pe","host":"puppet.example"}')).toBe(`{"user":"${MASK}","host":"puppet.example"}`);
    expect(r.redact('the pass is x9! now')).toBe(`the pass is ${MASK} now`);
    expect(r.redact('abx9!c')).toBe('abx9!c');
    expect(r.has('a')).toBe(true);
  });

  it('ignores empty and blank values', () => {
    const r = new Redactor(['', '  ', '\n']);
    expect(r.redact('a  b\n')).toBe('a  b\n');
    expect(r.has('  ')).toBe(false);
  });

  it('masks the JSON-escaped form of a secret in text (quotes, backslashes, newlines, control characters)', () => {
    const secrets = ['pa"ss\\word', 'back\\slash', 'new\nline', 'tab\tand\u0001', 'a"b'];
    const r = new Redactor(secrets);
    const text = JSON.stringify({ error: `failed: ${secrets.join(' / ')}`, argv: secrets });
    const out = r.redact(text);
    for (const s of secrets) {
      expect(out).not.toContain(JSON.stringify(s).slice(1, -1));
      expect(out).not.toContain(s);
    }
    expect(JSON.parse(out)).toEqual({ error: `failed: ${Array(5).fill(MASK).join(' / ')}`, argv: Array(5).fill(MASK) });
    // a message quoted in a JSON record that is itself serialised (escaped twice)
    expect(r.redact(JSON.stringify({ line: JSON.stringify({ e: secrets[0] }) }))).not.toMatch(/pa.*ss/);
  });

  it('masks the URL-encoded form of a secret', () => {
    expect(new Redactor(['p@ss w/rd']).redact('postgres://u:p%40ss%20w%2Frd@h/db')).not.toMatch(/p%40ss/);
  });

  it('masks URL passwords and secret query parameters in any text', () => {
    const r = new Redactor();
    expect(r.redact('could not connect to postgresql://puppetdb:hunter22@db.example:5432/puppetdb')).toBe(
      `could not connect to postgresql://puppetdb:${MASK}@db.example:5432/puppetdb`,
    );
    expect(r.redact('jdbc:postgresql://m1:5432/pdb?user=pdb&password=hunter22&ssl=true')).toBe(
      `jdbc:postgresql://m1:5432/pdb?user=pdb&password=${MASK}&ssl=true`,
    );
    expect(r.redact('https://:tok3n@api.example/x?api_key=k3y&page=2')).toBe(
      `https://:${MASK}@api.example/x?api_key=${MASK}&page=2`,
    );
    expect(r.redactArgv(['pg_basebackup', '-d', 'host=m1 user=rep password=hunter22', '--db-pass=x'])).toEqual([
      'pg_basebackup',
      '-d',
      `host=m1 user=rep password=${MASK}`,
      `--db-pass=${MASK}`,
    ]);
    // what is not a secret stays readable
    expect(r.redact('https://m1.example:8140/status?verbose=1 user=pe password_file=/etc/pw PWD=/root')).toBe(
      'https://m1.example:8140/status?verbose=1 user=pe password_file=/etc/pw PWD=/root',
    );
  });

  it('masks secret-looking keys in config text without touching others', () => {
    const text = [
      '[database]',
      'subname = //master:5432/puppetdb',
      'password = hunter22',
      'psk=abc123',
      '  password: "yaml-pw"',
      'user = puppetdb',
    ].join('\n');
    const out = new Redactor().redactConfig(text);
    expect(out).not.toMatch(/hunter22|abc123|yaml-pw/);
    expect(out).toContain('subname = //master:5432/puppetdb');
    expect(out).toContain('user = puppetdb');
    expect(out).toContain(`password = ${MASK}`);
  });

  it('masks keys that name a secret in any spelling', () => {
    const keys = ['my_pass', 'db_password', 'DB_PASS', 'passwd', 'psk', 'plugin.psk', 'keystore_pass', 'pwd'];
    keys.push('ssl_key_password', 'mypassword', 'keyStorePassword', 'api_key', 'apiKey', 'private-key', 'key-data');
    keys.push('authToken', 'client_secret', 'credentials', 'plugin.activemq.pool.1.password', 'passphrase');
    for (const k of keys) {
      expect(isSecretKey(k), k).toBe(true);
      expect(new Redactor().redactConfig(`${k} = v4lue-of-${k}`), k).toBe(`${k} = ${MASK}`);
    }
    const plain = ['user', 'key', 'subname', 'passenger', 'bypass', 'compass', 'password_file', 'token_ttl'];
    plain.push('password_encryption', 'PWD', 'OLDPWD', 'ssl_server_private', 'hostprivkey');
    for (const k of plain) expect(isSecretKey(k), k).toBe(false);
  });

  it('masks secrets inside config lines: export, list items, XML attributes, JSON, conninfo, URLs', () => {
    const text = [
      'export DB_PASSWORD=hunter22',
      '- password: yaml-list-pw',
      '<authenticationUser username="mcollective" password="xml-pw" groups="mcollective,everyone"/>',
      '{"user": "pdb", "password": "json-pw", "port": 5432}',
      "primary_conninfo = 'host=m1 user=replicator password=conninfo-pw sslmode=verify-full'",
      'subname = //m1:5432/puppetdb?user=pdb&password=query-pw',
      "  $db_password => 'puppet-pw',",
      'url = postgres://pdb:userinfo-pw@m1/puppetdb',
    ].join('\n');
    const out = new Redactor().redactConfig(text);
    expect(out).not.toMatch(/hunter22|-pw/);
    expect(out).toContain('groups="mcollective,everyone"');
    expect(out).toContain('"user": "pdb"');
    expect(out).toContain('sslmode=verify-full');
    expect(out).toContain('//m1:5432/puppetdb?user=pdb&password=');
  });

  it('children add secrets without changing the parent', () => {
    const parent = new Redactor();
    const child = parent.with(['child-secret']);
    expect(child.redact('child-secret')).toBe(MASK);
    expect(parent.redact('child-secret')).toBe('child-secret');
  });
});

describe('Redactor.redactValue (masking before serialising)', () => {
  it('masks every string on its own, so no escaping can hide a secret', () => {
    const r = new Redactor(['q"uo\\te', 'ab']);
    const rec = { t: 1, why: 'sudo said q"uo\\te', argv: ['psql', 'ab', 'abc'], nested: [{ m: 'x ab y' }] };
    const out = r.redactValue(rec);
    expect(out).toEqual({
      t: 1,
      why: `sudo said ${MASK}`,
      argv: ['psql', MASK, 'abc'],
      nested: [{ m: `x ${MASK} y` }],
    });
    expect(r.redactJson(rec)).toBe(JSON.stringify(out));
    expect(rec.why).toBe('sudo said q"uo\\te');
  });

  it('masks strings and numbers under secret-looking keys, keeps booleans and structure', () => {
    const out = new Redactor().redactValue({
      db: { user: 'pdb', password: 'unregistered', port: 5432 },
      secrets: { psk: 'x', pin: 1234 },
      sudo_password: 1234,
      passwordSet: true,
      tokens: ['t1', 't2'],
      password_file: '/etc/pw',
      empty_password: '',
      url: 'postgres://u:pw@h/db',
    });
    expect(out).toEqual({
      db: { user: 'pdb', password: MASK, port: 5432 },
      secrets: { psk: MASK, pin: 1234 },
      sudo_password: MASK,
      passwordSet: true,
      tokens: [MASK, MASK],
      password_file: '/etc/pw',
      empty_password: '',
      url: `postgres://u:${MASK}@h/db`,
    });
  });

  it('follows toJSON (errors, dates), masks keys, and survives cycles and shared objects', () => {
    const r = new Redactor(['s3cret-key-name']);
    const err = new PeError('E_X', 'failed with s3cret-key-name', { host: 'm1' });
    const shared = { a: 1 };
    const cyclic: Record<string, unknown> = { shared, again: shared };
    cyclic.self = cyclic;
    const out = r.redactValue({ err, at: new Date(0), 's3cret-key-name': 1, cyclic }) as Record<string, unknown>;
    expect(out.err).toMatchObject({ code: 'E_X', message: `m1: failed with ${MASK}` });
    expect(out.at).toBe('1970-01-01T00:00:00.000Z');
    expect(out[MASK]).toBe(1);
    expect(out.cyclic).toEqual({ shared: { a: 1 }, again: { a: 1 }, self: '[Circular]' });
  });
});

describe('maskedDiff', () => {
  it('shows changes with secrets masked', () => {
    const d = maskedDiff(
      '/etc/puppetdb/conf.d/database.ini',
      'password = old-pass\nsubname = a\n',
      'password = new-pass\nsubname = b\n',
      new Redactor(),
    );
    expect(d).toContain('-subname = a');
    expect(d).toContain('+subname = b');
    expect(d).not.toMatch(/old-pass|new-pass/);
  });

  it('says so when only a masked value changed', () => {
    const d = maskedDiff('/x', 'password = one-pass\n', 'password = two-pass\n', new Redactor());
    expect(d).toContain('only a masked secret value changed');
    expect(d).not.toMatch(/one-pass|two-pass/);
  });
});
