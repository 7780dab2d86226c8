import { createHmac, generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { fingerprint, knownHostsName, parseKnownHosts, patternsMatch, verifyAgainstKnownHosts } from './knownhosts.js';

function blob(): Buffer {
  // an ssh-ed25519 public key blob: string "ssh-ed25519" + string key
  const { publicKey } = generateKeyPairSync('ed25519');
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  const type = Buffer.from('ssh-ed25519');
  const b = Buffer.alloc(4 + type.length + 4 + raw.length);
  b.writeUInt32BE(type.length, 0);
  type.copy(b, 4);
  b.writeUInt32BE(raw.length, 4 + type.length);
  raw.copy(b, 8 + type.length);
  return b;
}

function hashed(name: string, salt = Buffer.from('0123456789abcdefghij')): string {
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`;
}

describe('known_hosts', () => {
  const k1 = blob();
  const k2 = blob();

  it('names non-standard ports the OpenSSH way', () => {
    expect(knownHostsName('master.lab.test', 22)).toBe('master.lab.test');
    expect(knownHostsName('127.0.0.1', 2222)).toBe('[127.0.0.1]:2222');
  });

  it('matches plain, wildcard, negated and hashed host fields', () => {
    expect(patternsMatch('master.lab.test,10.0.0.1', 'master.lab.test')).toBe(true);
    expect(patternsMatch('*.lab.test', 'secondary1.lab.test')).toBe(true);
    expect(patternsMatch('*.lab.test,!evil.lab.test', 'evil.lab.test')).toBe(false);
    expect(patternsMatch(hashed('[127.0.0.1]:2222'), '[127.0.0.1]:2222')).toBe(true);
    expect(patternsMatch(hashed('[127.0.0.1]:2222'), '[127.0.0.1]:2223')).toBe(false);
  });

  it('accepts the known key, reports unknown and changed keys', () => {
    const entries = parseKnownHosts(`# comment\n${hashed('master.lab.test')} ssh-ed25519 ${k1.toString('base64')}\n`);
    expect(verifyAgainstKnownHosts(entries, ['master.lab.test'], k1)).toEqual({ ok: true });
    expect(verifyAgainstKnownHosts(entries, ['other.lab.test'], k1)).toMatchObject({ ok: false, reason: 'unknown' });
    const changed = verifyAgainstKnownHosts(entries, ['master.lab.test'], k2);
    expect(changed).toMatchObject({ ok: false, reason: 'changed', expected: [fingerprint(k1)] });
  });

  it('refuses a revoked key even when another line accepts it', () => {
    const entries = parseKnownHosts(
      `master.lab.test ssh-ed25519 ${k1.toString('base64')}\n@revoked * ssh-ed25519 ${k1.toString('base64')}\n`,
    );
    expect(verifyAgainstKnownHosts(entries, ['master.lab.test'], k1)).toEqual({
      ok: false,
      reason: 'revoked',
      expected: [],
      line: 2,
    });
    expect(verifyAgainstKnownHosts(entries, ['master.lab.test'], k2)).toMatchObject({ reason: 'changed' });
  });

  it('prints fingerprints like ssh-keygen -l', () => {
    expect(fingerprint(k1)).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  });
});
