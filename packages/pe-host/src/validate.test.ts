import { describe, expect, it } from 'vitest';
import { InvalidInputError } from './errors.js';
import { isIpLiteral, validateEnvName, validateHostname, validateRemotePath } from './validate.js';

describe('validation at the edge', () => {
  it('accepts host names and IP literals', () => {
    for (const h of ['master.lab.test', 'puppet', 'pe-master-01.example.com', '10.77.0.2', '::1', 'fe80::1'])
      expect(validateHostname(h)).toBe(h);
    expect(isIpLiteral('300.1.1.1')).toBe(false);
  });

  it('refuses names that could smuggle options or shell syntax', () => {
    for (const h of ['-oProxyCommand=x', 'a b', 'a;b', '', 'host_name', 'x'.repeat(64) + '.com', '$(id)']) {
      expect(() => validateHostname(h)).toThrow(InvalidInputError);
    }
  });

  it('wants absolute paths without .. or newlines', () => {
    expect(validateRemotePath('/etc/puppet/puppet.conf')).toBe('/etc/puppet/puppet.conf');
    for (const p of ['etc/puppet', '/etc/../root', '/a\nb', '/a\0b'])
      expect(() => validateRemotePath(p)).toThrow(InvalidInputError);
  });

  it('keeps environment names plain', () => {
    expect(validateEnvName('PGPASSWORD')).toBe('PGPASSWORD');
    expect(() => validateEnvName('A=B')).toThrow(InvalidInputError);
  });
});
