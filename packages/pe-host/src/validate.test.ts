import { describe, expect, it } from 'vitest';
import { InvalidInputError } from './errors.js';
import { isIpLiteral, validateEnvName, validateHostname, validateRemotePath } from './validate.js';

describe('validation at the edge', () => {
  it('accepts host names and IP literals', () => {
    for (const h of ['master.lab.test', 'puppet', 'pe-master-01.example.com', '10.77.0.2', '::1', 'fe80::1'])
      expect(validateHostname(h)).toBe(h);
    expect(isIpLiteral('300.1.1.1')).toBe(false);
  });

  it('isIpLiteral is net.isIP: bare IPv4/IPv6 (with a zone), nothing malformed, no brackets', () => {
    for (const ip of ['10.77.0.2', '0.0.0.0', '::', '::1', 'fe80::1', 'fd00::5', '::ffff:10.0.0.1', 'fe80::1%eth0'])
      expect(isIpLiteral(ip), ip).toBe(true);
    const refused = ['::::', '[::1', '::1]', '[::1]', ':::1', '1::2::3', 'fe80::1%', 'fe80::1%eth0;id', 'fe80::1%a b'];
    refused.push('1.2.3', '1.2.3.4.5', '1.2.3.256', '010.0.0.1', '1.2.3.4%eth0', 'g::1', '', ' ::1', '::1\n');
    for (const s of refused) expect(isIpLiteral(s), JSON.stringify(s)).toBe(false);
  });

  it('validateHostname refuses malformed and bracketed IPv6, and numbers the resolver would read as an address', () => {
    for (const h of ['::::', '[::1', '1::2::3', 'fe80::1%eth0;id'])
      expect(() => validateHostname(h), h).toThrow(/not a valid IP address/);
    expect(() => validateHostname('[::1]')).toThrow(/without brackets/);
    for (const h of ['010.0.0.1', '1.2.3.256', '0x7f.1', '2130706433', '10.1'])
      expect(() => validateHostname(h), h).toThrow(/four decimal parts/);
    for (const h of ['1password.example.com', '0xdead.example.com', '123.example.com'])
      expect(validateHostname(h)).toBe(h);
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
