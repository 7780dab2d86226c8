import { describe, expect, it } from 'vitest';
import { parseApache } from './apache.js';
import { allSamples, lineChanges, pe3Fixture } from '@pe-stack/testkit/config-samples';

const P = '/etc/puppetlabs/httpd/conf.d/puppetmaster.conf';

describe('Apache directives', () => {
  it('points SSLCARevocationFile at the host CRL, keeping the column alignment and the comment above', () => {
    const before = pe3Fixture('puppetmaster.conf');
    const doc = parseApache(before, P);
    expect(doc.get('SSLCARevocationFile')).toEqual(['/etc/puppetlabs/puppet/ssl/ca/ca_crl.pem']);
    expect(doc.set('SSLCARevocationFile', '/etc/puppetlabs/puppet/ssl/crl.pem')).toBe(true);
    expect(doc.set('sslcarevocationfile', '/etc/puppetlabs/puppet/ssl/crl.pem')).toBe(false);
    expect(lineChanges(before, doc.toString())).toEqual({
      removed: ['    SSLCARevocationFile     /etc/puppetlabs/puppet/ssl/ca/ca_crl.pem\n'],
      added: ['    SSLCARevocationFile     /etc/puppetlabs/puppet/ssl/crl.pem\n'],
    });
  });

  it.each(allSamples('apache').map((s) => [s.name, s] as const))(
    '%s: a missing or present directive is set with one line',
    (_n, s) => {
      const doc = parseApache(s.text, s.path);
      doc.set('SSLCARevocationFile', '/etc/puppetlabs/puppet/ssl/crl.pem');
      const after = doc.toString();
      const { removed, added } = lineChanges(s.text, after);
      expect(added.filter((l) => l.includes('SSLCARevocationFile')).length).toBe(1);
      expect(removed.length).toBeLessThanOrEqual(1);
      expect(parseApache(after, s.path).get('SSLCARevocationFile')).toEqual(['/etc/puppetlabs/puppet/ssl/crl.pem']);
      // a new directive goes inside the VirtualHost, before its end
      if (/<\/VirtualHost>/i.test(after))
        expect(after.indexOf('SSLCARevocationFile')).toBeLessThan(after.search(/<\/VirtualHost>/i));
    },
  );

  it('ignores commented directives, unsets all active ones, keeps CRLF', () => {
    const doc = parseApache(
      '<VirtualHost *:443>\r\n  # SSLVerifyClient none\r\n  SSLVerifyClient optional\r\n</VirtualHost>\r\n',
      '/v.conf',
    );
    expect(doc.get('SSLVerifyClient')).toEqual(['optional']);
    doc.set('SSLVerifyDepth', '1');
    expect(doc.toString()).toBe(
      '<VirtualHost *:443>\r\n  # SSLVerifyClient none\r\n  SSLVerifyClient optional\r\n  SSLVerifyDepth 1\r\n</VirtualHost>\r\n',
    );
    expect(doc.unset('SSLVerifyClient')).toBe(true);
    expect(doc.toString()).not.toContain('SSLVerifyClient optional');
    expect(doc.toString()).toContain('# SSLVerifyClient none');
  });
});
