import { describe, expect, it } from 'vitest';
import { maskedDiff } from './diff.js';
import { MASK, Redactor } from './redact.js';

describe('Redactor', () => {
  it('masks registered values everywhere, longest first', () => {
    const r = new Redactor(['s3cr3t-pw', 's3cr3t-pw-long']);
    expect(r.redact('a s3cr3t-pw-long b s3cr3t-pw c')).toBe(`a ${MASK} b ${MASK} c`);
    expect(r.redactArgv(['psql', '--password=s3cr3t-pw'])).toEqual(['psql', `--password=${MASK}`]);
  });

  it('ignores values too short to mask safely', () => {
    expect(new Redactor(['ab']).redact('ab cd')).toBe('ab cd');
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

  it('children add secrets without changing the parent', () => {
    const parent = new Redactor();
    const child = parent.with(['child-secret']);
    expect(child.redact('child-secret')).toBe(MASK);
    expect(parent.redact('child-secret')).toBe('child-secret');
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
