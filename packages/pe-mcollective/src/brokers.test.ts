import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { editText } from '@pe-stack/pe-config-files';
import { checkMasters, commaList, poolBrokers, poolFor, poolOps, readPool } from './brokers.js';
import { McoError } from './errors.js';
import { FIXTURES, fixture } from '@pe-stack/testkit/mcollective';

const P = '/etc/mcollective/server.cfg';
const creds = { user: 'mcollective', password: 'S3cretStompPw' };
const m1 = { fqdn: 'master1.example.com' };
const m2 = { fqdn: 'master2.example.com' };
const m3 = { fqdn: 'master3.example.com' };

function apply(text: string, ops: ReturnType<typeof poolOps>): string {
  return editText({ kind: 'kv', path: P, ops }, text).text;
}

function lineDiff(a: string, b: string): { removed: string[]; added: string[] } {
  const x = a.split('\n');
  const y = b.split('\n');
  return { removed: x.filter((l) => !y.includes(l)), added: y.filter((l) => !x.includes(l)) };
}

describe('broker lists', () => {
  it('comma list of all masters in cluster order', () => {
    expect(commaList([m1, m2, m3])).toBe('master1.example.com,master2.example.com,master3.example.com');
  });

  it('refuses duplicates, bad names, an empty cluster and two brokers on one endpoint', () => {
    expect(() => commaList([m1, { fqdn: 'MASTER1.example.com' }])).toThrow(/named twice/);
    expect(() => commaList([m1, { fqdn: 'bad name;rm' }])).toThrow(/not a valid host name/);
    expect(() => commaList([])).toThrow(McoError);
    expect(() =>
      checkMasters([
        { fqdn: 'a.test', brokerHost: '127.0.0.1', stompPort: 7000 },
        { fqdn: 'b.test', brokerHost: '127.0.0.1', stompPort: 7000 },
      ]),
    ).toThrow(/two brokers would listen on 127.0.0.1:7000/);
    expect(() => checkMasters([{ fqdn: 'a.test', stompPort: 70000 }])).toThrow(/not a TCP port/);
  });

  it('each master gets its own broker first and the same set of brokers', () => {
    const all = [m1, m2, m3];
    const pools = all.map((m) => poolFor(m, all).map((e) => `${e.host}:${e.port}`));
    expect(pools[0]).toEqual(['master1.example.com:61613', 'master2.example.com:61613', 'master3.example.com:61613']);
    expect(pools[1]).toEqual(['master2.example.com:61613', 'master1.example.com:61613', 'master3.example.com:61613']);
    expect(pools[2]![0]).toBe('master3.example.com:61613');
    for (const p of pools) expect([...p].sort()).toEqual([...pools[0]!].sort());
    expect(() => poolFor({ fqdn: 'other.example.com' }, all)).toThrow(/not one of the masters/);
  });
});

describe('pool edits through the kv editor', () => {
  it('Debian server.cfg: rewrites entry 1 in place and adds the other brokers beside it', () => {
    const before = fixture('debian/server.cfg');
    const after = apply(before, poolOps(before, P, poolFor(m1, [m1, m2]), creds));
    expect(lineDiff(before, after)).toEqual({
      removed: [
        'plugin.activemq.pool.size = 1',
        'plugin.activemq.pool.1.host = stomp1',
        'plugin.activemq.pool.1.password = marionette',
      ],
      added: [
        'plugin.activemq.pool.size = 2',
        'plugin.activemq.pool.1.host = master1.example.com',
        'plugin.activemq.pool.1.password = S3cretStompPw',
        'plugin.activemq.pool.2.host = master2.example.com',
        'plugin.activemq.pool.2.port = 61613',
        'plugin.activemq.pool.2.user = mcollective',
        'plugin.activemq.pool.2.password = S3cretStompPw',
      ],
    });
    // the new entry sits right after entry 1, before the facts section
    expect(after).toContain(
      'plugin.activemq.pool.1.password = S3cretStompPw\nplugin.activemq.pool.2.host = master2.example.com\n',
    );
    const view = readPool(after, P);
    expect(view.size).toBe(2);
    expect(poolBrokers(view)).toEqual(['master1.example.com:61613', 'master2.example.com:61613']);
    expect(view.entries.every((e) => e.hasPassword && e.user === 'mcollective')).toBe(true);
    // idempotent
    expect(apply(after, poolOps(after, P, poolFor(m1, [m1, m2]), creds))).toBe(after);
  });

  it('adding then removing a master gives back the same bytes; removal unsets every key of the dropped entry', () => {
    const base = fixture('debian/server.cfg');
    const two = apply(base, poolOps(base, P, poolFor(m1, [m1, m2]), creds));
    const three = apply(two, poolOps(two, P, poolFor(m1, [m1, m2, m3]), creds));
    expect(poolBrokers(readPool(three, P))).toEqual([
      'master1.example.com:61613',
      'master2.example.com:61613',
      'master3.example.com:61613',
    ]);
    const back = apply(three, poolOps(three, P, poolFor(m1, [m1, m2]), creds));
    expect(back).toBe(two);
    expect(back).not.toMatch(/pool\.3\./);
    // removing the master in the middle renumbers: entry 2 becomes master3
    const without2 = apply(three, poolOps(three, P, poolFor(m1, [m1, m3]), creds));
    expect(poolBrokers(readPool(without2, P))).toEqual(['master1.example.com:61613', 'master3.example.com:61613']);
    expect(without2).not.toContain('master2');
  });

  it('new entries repeat the per-broker extras of entry 1 (ssl settings of PE 3)', () => {
    const before = fixture('pe3/server.cfg');
    const after = apply(
      before,
      poolOps(before, P, poolFor(m1, [m1, m2]), { user: 'mcollective', password: 'Kd83nVzQ7pWmR2xT' }),
    );
    const { removed, added } = lineDiff(before, after);
    expect(removed).toEqual(['plugin.activemq.pool.size = 1']);
    expect(added).toEqual([
      'plugin.activemq.pool.size = 2',
      'plugin.activemq.pool.2.host = master2.example.com',
      'plugin.activemq.pool.2.port = 61613',
      'plugin.activemq.pool.2.user = mcollective',
      'plugin.activemq.pool.2.password = Kd83nVzQ7pWmR2xT',
      'plugin.activemq.pool.2.ssl = true',
      'plugin.activemq.pool.2.ssl.ca = /etc/puppetlabs/mcollective/ssl/mcollective-cacert.pem',
      'plugin.activemq.pool.2.ssl.cert = /etc/puppetlabs/mcollective/ssl/mcollective-cert.pem',
      'plugin.activemq.pool.2.ssl.key = /etc/puppetlabs/mcollective/ssl/mcollective-private.pem',
    ]);
  });

  it('reads the pool of every corpus file, both the activemq and the old stomp form', () => {
    const files = readdirSync(join(FIXTURES, 'corpus')).filter((f) => f.endsWith('.cfg'));
    expect(files.length).toBeGreaterThanOrEqual(5);
    const seen: Record<string, string[]> = {};
    for (const f of files) seen[f] = poolBrokers(readPool(fixture(`corpus/${f}`), f));
    expect(seen['311962__puppetlabs__mcollective__server.cfg']).toEqual(['ip-10-60-131-91.ec2.internal:61613']);
    expect(seen['DineshSingh94__dineshsingh5.labserver__mcollective__server.cfg']).toEqual([
      'dineshsingh5.mylabsever.com:61613',
    ]);
    expect(seen['patelnainesh222__devops-compucorp__etc__puppetlabs__mcollective__client.cfg']).toEqual([
      'stomp1:6163',
    ]);
  });

  it('a stomp-connector file is refused with a hint (the keys do not carry over), unchanged', () => {
    const text = fixture('corpus/311962__puppetlabs__mcollective__server.cfg');
    expect(() => poolOps(text, P, poolFor(m1, [m1]), creds)).toThrow(/uses the "stomp" connector/);
  });

  it('refuses an empty list and credentials that would break the file', () => {
    const text = fixture('debian/server.cfg');
    expect(() => poolOps(text, P, [], creds)).toThrow(/empty/);
    expect(() => poolOps(text, P, poolFor(m1, [m1]), { user: 'mco', password: 'has blank' })).toThrow(McoError);
    expect(() => poolOps(text, P, poolFor(m1, [m1]), { user: 'a=b', password: 'x1234567' })).toThrow(McoError);
  });
});
