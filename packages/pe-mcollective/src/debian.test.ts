import { chmodSync, existsSync, lstatSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Redactor } from '@pe-stack/pe-host';
import { KeyValueDocument, parseActiveMq } from '@pe-stack/pe-config-files';
import { ActiveMqAuthEditor } from './activemq-auth.js';
import { poolBrokers, readPool } from './brokers.js';
import { debianRemoveSteps, debianSyncSteps, readSecrets, verifyDebian } from './debian.js';
import {
  debianLayoutUnder,
  fakeServiceCommands,
  localMaster,
  plannedOn,
  runMcoFlow,
  tempRoot,
} from '@pe-stack/testkit/mcollective';
import { allMasters, type Master, type McoCluster } from './cluster.js';
import { assertMcoVerified } from './verify.js';

function cluster(n: number) {
  const redactor = new Redactor();
  const masters: Master[] = [];
  const services: string[] = [];
  for (let i = 1; i <= n; i++) {
    const root = tempRoot(`pe-mco-deb${i}-`);
    const state = join(root, 'services.json');
    services.push(state);
    masters.push(
      localMaster(
        `master${i}.example.com`,
        debianLayoutUnder(root, { commands: fakeServiceCommands(state) }),
        redactor,
      ),
    );
  }
  const c: McoCluster = { primary: masters[0]!, secondaries: masters.slice(1), sudo: false };
  const calls = (i: number): string[] =>
    existsSync(services[i]!) ? (JSON.parse(readFileSync(services[i]!, 'utf8')) as { calls: string[] }).calls : [];
  return { c, masters, calls, redactor };
}

const read = (m: Master, key: 'mcollectiveServerCfg' | 'mcollectiveClientCfg' | 'activemqXml') =>
  readFileSync(m.layout.files[key]!.path, 'utf8');

describe('debian: shared psk and credentials, complete broker lists, a network of brokers', () => {
  it('readSecrets replaces the Debian placeholders with fresh values and keeps real ones', async () => {
    const { c, redactor } = cluster(1);
    const a = await readSecrets(c);
    expect(a.generated).toEqual(['psk', 'password']);
    expect(a.secrets.user).toBe('mcollective');
    expect(a.secrets.psk).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(a.secrets.password).not.toBe('marionette');
    expect(redactor.has(a.secrets.psk) && redactor.has(a.secrets.password)).toBe(true);
    const path = c.primary.layout.files.mcollectiveServerCfg!.path;
    writeFileSync(
      path,
      readFileSync(path, 'utf8')
        .replace('plugin.psk = unset', 'plugin.psk = Existing-Psk-Value-42')
        .replace('= marionette', '= Existing-Password-42'),
    );
    const b = await readSecrets(c);
    expect(b).toEqual({
      secrets: { psk: 'Existing-Psk-Value-42', user: 'mcollective', password: 'Existing-Password-42' },
      generated: [],
    });
    expect((await readSecrets(c, { rotate: true })).generated).toEqual(['psk', 'password']);
  });

  it('sync over three masters: every file names every broker, a mesh of connectors, services restarted once; a rerun does nothing', async () => {
    const { c, masters, calls } = cluster(3);
    const { secrets } = await readSecrets(c);
    const out = (await runMcoFlow(debianSyncSteps(c, secrets), masters)).steps;
    expect(out.map((o) => o.status)).toEqual(Array(9).fill('done'));
    for (const [i, m] of masters.entries()) {
      for (const key of ['mcollectiveServerCfg', 'mcollectiveClientCfg'] as const) {
        const text = read(m, key);
        const doc = new KeyValueDocument(text, 'x');
        expect(doc.get('plugin.psk')).toBe(secrets.psk);
        const pool = poolBrokers(readPool(text, 'x'));
        expect(pool[0]).toBe(`${m.fqdn}:61613`);
        expect([...pool].sort()).toEqual([
          'master1.example.com:61613',
          'master2.example.com:61613',
          'master3.example.com:61613',
        ]);
      }
      expect(new KeyValueDocument(read(m, 'mcollectiveServerCfg'), 'x').get('identity')).toBe(m.fqdn);
      const xml = read(m, 'activemqXml');
      const amq = parseActiveMq(xml, 'x');
      expect(amq.connectors('transport')).toEqual([
        { name: 'openwire', uri: 'tcp://0.0.0.0:61616' },
        { name: 'stomp', uri: 'stomp+nio://0.0.0.0:61613' },
      ]);
      const peers = masters.filter((p) => p !== m);
      expect(amq.connectors('network')).toEqual(
        peers.map((p) => ({
          name: `pe-mesh-${p.fqdn}`,
          uri: `static:(tcp://${p.fqdn}:61616)`,
          userName: 'mcollective',
          password: secrets.password,
          duplex: 'false',
          networkTTL: '1',
          dynamicOnly: 'true',
          decreaseNetworkConsumerPriority: 'true',
        })),
      );
      const auth = new ActiveMqAuthEditor(xml, 'x');
      expect(auth.brokerName()).toBe(m.fqdn);
      expect(auth.passwordOf('mcollective')).toBe(secrets.password);
      // it holds the STOMP password now: not readable by all (the Debian package ships it 0644)
      expect(statSync(m.layout.files.activemqXml!.path).mode & 0o777).toBe(0o640);
      const enabled = join(m.layout.files.activemqXml!.path, '../../../instances-enabled/main');
      expect(lstatSync(enabled).isSymbolicLink()).toBe(true);
      expect(readlinkSync(enabled)).toMatch(/instances-available\/main$/);
      expect(calls(i)).toEqual([
        'restart activemq',
        'restart mcollective',
        'is-active activemq',
        'is-active mcollective',
      ]);
    }
    const again = (await runMcoFlow(debianSyncSteps(c, secrets), masters)).steps;
    expect(again.every((o) => o.status === 'skipped')).toBe(true);
    // someone opens activemq.xml to all: the config step notices and closes it again
    chmodSync(masters[1]!.layout.files.activemqXml!.path, 0o644);
    const fix = (await runMcoFlow(debianSyncSteps(c, secrets), masters)).steps;
    expect(fix.filter((o) => o.status === 'done').map((o) => [o.id, o.why])).toEqual([
      ['mco-config:master2.example.com', expect.stringContaining('readable by all users')],
      ['mco-restart:master2.example.com', 'the configuration changed'],
    ]);
    expect(statSync(masters[1]!.layout.files.activemqXml!.path).mode & 0o777).toBe(0o640);
    expect(calls(0).filter((x) => x.startsWith('restart'))).toHaveLength(2);
    expect(calls(1).filter((x) => x.startsWith('restart'))).toHaveLength(4);
    const r = assertMcoVerified(await verifyDebian(c));
    expect(r.checks.map((x) => x.name)).toContain('psk');
  });

  it('removing a master drops it from every list and mesh of the others, stops it, and the rest still verify', async () => {
    const { c, masters, calls } = cluster(3);
    const { secrets } = await readSecrets(c);
    await runMcoFlow(debianSyncSteps(c, secrets), masters);
    const remaining: McoCluster = { primary: masters[0]!, secondaries: [masters[1]!], sudo: false };
    const gone = masters[2]!;
    const out = (await runMcoFlow(debianRemoveSteps(remaining, gone, secrets, { stopRemoved: true }), masters)).steps;
    expect(out.map((o) => [o.id, o.status])).toEqual([
      ['mco-config:master1.example.com', 'done'],
      ['activemq-instance:master1.example.com', 'skipped'],
      ['mco-restart:master1.example.com', 'done'],
      ['mco-config:master2.example.com', 'done'],
      ['activemq-instance:master2.example.com', 'skipped'],
      ['mco-restart:master2.example.com', 'done'],
      ['mco-stop:master3.example.com', 'done'],
    ]);
    for (const m of remaining.secondaries.concat(remaining.primary)) {
      for (const key of ['mcollectiveServerCfg', 'mcollectiveClientCfg', 'activemqXml'] as const)
        expect(read(m, key)).not.toContain('master3');
      expect(readPool(read(m, 'mcollectiveServerCfg'), 'x').size).toBe(2);
    }
    expect(calls(2).slice(-4)).toEqual([
      'stop mcollective',
      'stop activemq',
      'is-active mcollective',
      'is-active activemq',
    ]);
    assertMcoVerified(await verifyDebian(remaining));
    // the removed master's own files are left as they were (it is gone from the cluster, not wiped)
    expect(read(gone, 'mcollectiveServerCfg')).toContain('master1.example.com');
  });

  it('verification reports a psk that differs and an incomplete pool without printing secrets', async () => {
    const { c, masters } = cluster(2);
    const { secrets } = await readSecrets(c);
    await runMcoFlow(debianSyncSteps(c, secrets, { restart: false }), masters);
    const path = masters[1]!.layout.files.mcollectiveClientCfg!.path;
    writeFileSync(
      path,
      readFileSync(path, 'utf8')
        .replace(secrets.psk, 'Some-Other-Psk-123')
        .replace(/plugin\.activemq\.pool\.2\.host = .*\n/, '')
        .replace('pool.size = 2', 'pool.size = 1'),
    );
    const r = await verifyDebian(c);
    expect(r.ok).toBe(false);
    const text = r.problems.join('\n');
    expect(text).toMatch(
      /psk: differs between files \(master1.example.com: .*server.cfg, master1.example.com: .*client.cfg, master2.example.com: .*server.cfg \| master2.example.com: .*client.cfg\)/,
    );
    expect(text).toMatch(/master2.example.com: broker pool in .*client.cfg: missing master1.example.com:61613/);
    expect(JSON.stringify(r)).not.toContain(secrets.psk);
    expect(JSON.stringify(r)).not.toContain('Some-Other-Psk-123');
    expect(JSON.stringify(r)).not.toContain(secrets.password);
  });

  it('dry run: the plan shows the edits with the psk and passwords masked and writes nothing', async () => {
    const { c, masters } = cluster(2);
    const { secrets } = await readSecrets(c);
    const before = masters.map((m) => read(m, 'activemqXml'));
    const result = await runMcoFlow(debianSyncSteps(c, secrets), allMasters(c), { dryRun: true });
    const out = result.steps;
    expect(out.every((o) => o.status === 'planned')).toBe(true);
    const mutations = masters.flatMap((m) => plannedOn(result, m.host.name));
    expect(
      mutations
        .filter((m) => m.kind === 'write')
        .map((m) => (m.kind === 'write' ? m.path.replace(/.*\/etc\//, '/etc/') : '')),
    ).toEqual([
      '/etc/mcollective/server.cfg',
      '/etc/mcollective/client.cfg',
      '/etc/activemq/instances-available/main/activemq.xml',
      '/etc/mcollective/server.cfg',
      '/etc/mcollective/client.cfg',
      '/etc/activemq/instances-available/main/activemq.xml',
    ]);
    expect(
      mutations.filter((m) => m.kind === 'exec').map((m) => (m.kind === 'exec' ? m.argv.slice(-2).join(' ') : '')),
    ).toEqual(expect.arrayContaining(['restart activemq', 'restart mcollective']));
    const plan = JSON.stringify([mutations, out]);
    expect(plan).not.toContain(secrets.psk);
    expect(plan).not.toContain(secrets.password);
    expect(plan).toContain('plugin.activemq.pool.2.host = master2.example.com');
    expect(plan).toContain('pe-mesh-master2.example.com');
    expect(masters.map((m) => read(m, 'activemqXml'))).toEqual(before);
  });

  it('a master without server.cfg stops the run there with an error naming the file (masters before it are done)', async () => {
    const { c, masters } = cluster(2);
    const { secrets } = await readSecrets(c);
    const { rmSync } = await import('node:fs');
    rmSync(masters[1]!.layout.files.mcollectiveServerCfg!.path);
    const before = read(masters[0]!, 'mcollectiveServerCfg');
    const steps = debianSyncSteps(c, secrets, { restart: false });
    // the steps of master1 run first; master2's config step fails
    const err = (await runMcoFlow(steps, masters).catch((e: unknown) => e)) as Error;
    expect(err).toMatchObject({ code: 'E_MCO_CONFIG', message: expect.stringContaining('server.cfg does not exist') });
    expect(String(err.message)).not.toContain(secrets.psk);
    expect(read(masters[0]!, 'mcollectiveServerCfg')).not.toBe(before);
  });
});
