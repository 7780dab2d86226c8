import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigEditError, ConfigParseError, parseActiveMq } from '@pe-stack/pe-config-files';
import { ActiveMqAuthEditor } from './activemq-auth.js';
import { FIXTURES, fixture } from '@pe-stack/testkit/mcollective';

const P = '/etc/activemq/instances-available/main/activemq.xml';
const user = { username: 'mcollective', password: 'Zx9-stomp&"pw', groups: 'mcollective,everyone' };

function lineDiff(a: string, b: string): { removed: string[]; added: string[] } {
  const x = a.split('\n');
  const y = b.split('\n');
  return { removed: x.filter((l) => !y.includes(l)), added: y.filter((l) => !x.includes(l)) };
}

describe('ActiveMqAuthEditor (adapter)', () => {
  it('Debian default: adds a <plugins> block in alphabetical place, only added lines, idempotent, escaped', () => {
    const before = fixture('debian/activemq.xml');
    const ed = new ActiveMqAuthEditor(before, P);
    expect(ed.users()).toEqual([]);
    expect(ed.setUser(user)).toBe(true);
    expect(ed.setUser(user)).toBe(false);
    const after = ed.toString();
    const { removed, added } = lineDiff(before, after);
    expect(removed).toEqual([]);
    expect(added).toEqual([
      '        <plugins>',
      '            <simpleAuthenticationPlugin>',
      '                <users>',
      '                    <authenticationUser username="mcollective" password="Zx9-stomp&amp;&quot;pw" groups="mcollective,everyone"/>',
      '                </users>',
      '            </simpleAuthenticationPlugin>',
      '        </plugins>',
    ]);
    // between persistenceAdapter and transportConnectors, followed by a blank line
    expect(after.indexOf('<plugins>')).toBeGreaterThan(after.indexOf('</persistenceAdapter>'));
    expect(after).toMatch(/<\/plugins>\n\n {8}<!-- \n {12}The transport connectors/);
    const again = new ActiveMqAuthEditor(after, P);
    expect(again.users()).toEqual([{ username: 'mcollective', groups: 'mcollective,everyone', hasPassword: true }]);
    expect(again.passwordOf('mcollective')).toBe(user.password);
    // the connector editor still reads the result
    expect(
      parseActiveMq(after, P)
        .connectors('transport')
        .map((c) => c['name']),
    ).toEqual(['openwire']);
    expect(again.removeUser('mcollective')).toBe(true);
  });

  it('brokerName is changed in place', () => {
    const before = fixture('debian/activemq.xml');
    const ed = new ActiveMqAuthEditor(before, P);
    expect(ed.brokerName()).toBe('localhost');
    expect(ed.setBrokerAttribute('brokerName', 'master1.example.com')).toBe(true);
    expect(ed.setBrokerAttribute('brokerName', 'master1.example.com')).toBe(false);
    expect(lineDiff(before, ed.toString())).toEqual({
      removed: ['            brokerName="localhost"'],
      added: ['            brokerName="master1.example.com"'],
    });
  });

  it('a missing broker attribute is added after the last one, on its own line when attributes are one per line', () => {
    const before = fixture('debian/activemq.xml');
    const ed = new ActiveMqAuthEditor(before, P);
    ed.setBrokerAttribute('schedulerSupport', 'false');
    expect(lineDiff(before, ed.toString())).toEqual({
      removed: ['            dataDirectory="${activemq.base}/data">'],
      added: ['            dataDirectory="${activemq.base}/data"', '            schedulerSupport="false">'],
    });
  });

  it('PE 3 broker: updates the existing user in place and adds a new user beside the others', () => {
    const before = fixture('pe3/activemq.xml');
    const ed = new ActiveMqAuthEditor(before, P);
    expect(ed.users().map((u) => u.username)).toEqual(['mcollective', 'admin']);
    expect(ed.setUser({ username: 'mcollective', password: 'N3wPassw0rd', groups: 'mcollective,everyone' })).toBe(true);
    expect(lineDiff(before, ed.toString())).toEqual({
      removed: [
        '              <authenticationUser username="mcollective" password="Kd83nVzQ7pWmR2xT" groups="mcollective,everyone"/>',
      ],
      added: [
        '              <authenticationUser username="mcollective" password="N3wPassw0rd" groups="mcollective,everyone"/>',
      ],
    });
    const mid = ed.toString();
    ed.setUser({ username: 'mco2', password: 'An0therPw', groups: 'everyone' });
    expect(lineDiff(mid, ed.toString()).added).toEqual([
      '              <authenticationUser username="mco2" password="An0therPw" groups="everyone"/>',
    ]);
    expect(ed.removeUser('mco2')).toBe(true);
    expect(ed.toString()).toBe(mid);
  });

  it('every corpus activemq.xml: setting the user and brokerName changes only what it means to', () => {
    const files = readdirSync(join(FIXTURES, 'corpus')).filter((f) => f.endsWith('.xml'));
    expect(files.length).toBe(4);
    for (const f of files) {
      const before = fixture(`corpus/${f}`);
      const ed = new ActiveMqAuthEditor(before, f);
      const hadUser = ed.users().some((u) => u.username === 'mcollective');
      ed.setUser(user);
      ed.setBrokerAttribute('brokerName', 'm1.example.com');
      const after = ed.toString();
      const reread = new ActiveMqAuthEditor(after, f);
      expect(reread.passwordOf('mcollective'), f).toBe(user.password);
      expect(reread.brokerName(), f).toBe('m1.example.com');
      const { removed } = lineDiff(before, after);
      // only the user's line (when it existed) and the line holding brokerName may change
      expect(removed.length, f).toBeLessThanOrEqual(hadUser ? 2 : 1);
      expect(parseActiveMq(after, f).connectors('transport'), f).toEqual(
        parseActiveMq(before, f).connectors('transport'),
      );
    }
  });

  it('CRLF files stay CRLF', () => {
    const before = fixture('debian/activemq.xml').replace(/\n/g, '\r\n');
    const ed = new ActiveMqAuthEditor(before, P);
    ed.setUser(user);
    expect(ed.toString().replace(/\r\n/g, '')).not.toContain('\n');
  });

  it('refuses JAAS brokers, bad names and malformed XML without writing', () => {
    const jaas = fixture('debian/activemq.xml').replace(
      '    </broker>',
      '        <plugins>\n            <jaasAuthenticationPlugin configuration="activemq"/>\n        </plugins>\n    </broker>',
    );
    expect(() => new ActiveMqAuthEditor(jaas, P).setUser(user)).toThrow(ConfigEditError);
    expect(() =>
      new ActiveMqAuthEditor(fixture('debian/activemq.xml'), P).setUser({ ...user, username: 'a b' }),
    ).toThrow(ConfigEditError);
    expect(() => new ActiveMqAuthEditor('<beans>\n<broker>\n</beans>\n', P)).toThrow(ConfigParseError);
    expect(() => new ActiveMqAuthEditor('<beans/>', P).setUser(user)).toThrow(/no <broker>/);
  });
});
