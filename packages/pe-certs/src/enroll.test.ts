import { describe, expect, it } from 'vitest';
import { Pe3PuppetAgent, PuppetSslAgent } from './enroll.js';

describe('Puppet agent argv', () => {
  it('debian: puppet ssl bootstrap with the keep-alive fix and explicit alt names, even when there are none', () => {
    const a = new PuppetSslAgent({ ssldir: '/var/lib/puppet/ssl', caServer: 'master.example.com' });
    expect(a.argv('s1.example.com', ['s1.example.com', 'Puppet.Example.com'])).toEqual([
      'puppet',
      'ssl',
      'bootstrap',
      '--certname',
      's1.example.com',
      '--ca_server',
      'master.example.com',
      '--ssldir',
      '/var/lib/puppet/ssl',
      '--waitforcert',
      '0',
      '--http_keepalive_timeout',
      '0',
      '--dns_alt_names=s1.example.com,puppet.example.com',
    ]);
    // a host whose puppet.conf has dns_alt_names (any master) must not lend them to another request
    expect(a.argv('agent.example.com', []).at(-1)).toBe('--dns_alt_names=');
    expect(() => a.argv('-rf', [])).toThrow();
    expect(() => a.argv('x.example.com', ['a b'])).toThrow();
    expect(() => new PuppetSslAgent({ ssldir: '/x', caServer: 'bad host' })).toThrow();
  });

  it('pe3: puppet agent -t against the primary', () => {
    const a = new Pe3PuppetAgent({ ssldir: '/etc/puppetlabs/puppet/ssl', caServer: 'master.example.com' });
    expect(a.argv('s1.example.com', ['puppet.example.com'])).toEqual([
      '/opt/puppet/bin/puppet',
      'agent',
      '--test',
      '--certname',
      's1.example.com',
      '--server',
      'master.example.com',
      '--ca_server',
      'master.example.com',
      '--ssldir',
      '/etc/puppetlabs/puppet/ssl',
      '--waitforcert',
      '0',
      '--dns_alt_names=puppet.example.com',
    ]);
  });
});
