// Real ActiveMQ 5.17 and MCollective 2.12 (Debian packages) on 127.0.0.1:
// two masters, each with its own broker and mcollectived, configured only
// by this package's steps; `mco ping` from each master's client must be
// answered by both nodes (the second node is only reachable through the
// network of brokers). Then one master is removed and the other still works.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redactor } from '@pe-stack/pe-host';
import { freePort } from '@pe-stack/testkit/sshd';
import { editText, resolveLayout } from '@pe-stack/pe-config-files';
import { poolOps, readPool, stompEndpoint } from './brokers.js';
import { debianRemoveSteps, debianSyncSteps, readSecrets, verifyDebian, type McoSecrets } from './debian.js';
import { mcoPing } from './mco.js';
import {
  debianLayoutUnder,
  runMcoFlow,
  startActiveMq,
  startMcollectived,
  tempRoot,
  waitForPort,
  type TestProcess,
} from '@pe-stack/testkit/mcollective';
import { allMasters, type Master, type McoCluster } from './cluster.js';

const have =
  existsSync('/usr/share/activemq/bin/activemq.jar') &&
  existsSync('/usr/sbin/mcollectived') &&
  process.getuid?.() === 0;

interface Node {
  m: Master;
  root: string;
  broker?: TestProcess;
  daemon?: TestProcess;
}

describe.skipIf(!have)('MCollective over two networked ActiveMQ brokers (real processes, loopback)', () => {
  const nodes: Node[] = [];
  let cluster: McoCluster;
  let secrets: McoSecrets;
  const redactor = new Redactor();
  const figures: Record<string, number> = {};

  async function startBroker(n: Node): Promise<void> {
    const xml = n.m.layout.files.activemqXml!.path;
    n.broker = await startActiveMq(dirname(xml), join(n.root, 'amq-base'), join(n.root, 'activemq.log'));
    figures[`broker start ${n.m.fqdn} (ms)`] = await waitForPort(n.m.stompPort!, 60_000);
  }

  async function startDaemon(n: Node): Promise<void> {
    n.daemon = await startMcollectived(
      n.m.layout.files.mcollectiveServerCfg!.path,
      join(n.root, 'mcollectived.pid'),
      join(n.root, 'mcollectived.out'),
    );
  }

  /** mco ping until every expected identity answers (mcollectived needs a moment to subscribe). */
  async function pingUntil(m: Master, expect: string[], timeoutMs: number): Promise<string[]> {
    const t0 = performance.now();
    for (;;) {
      const r = await mcoPing(m, { sudo: false, discoveryTimeoutS: 2 });
      if (expect.every((e) => r.responders.includes(e)) || performance.now() - t0 > timeoutMs) return r.responders;
    }
  }

  beforeAll(async () => {
    for (let i = 1; i <= 2; i++) {
      const root = tempRoot(`pe-mco-real${i}-`);
      const layout = debianLayoutUnder(root);
      // what makes the packaged server.cfg runnable in a temp dir (log, foreground, facts); the rest is the steps' work
      const cfg = layout.files.mcollectiveServerCfg!.path;
      writeFileSync(join(root, 'facts.yaml'), `role: master${i}\n`);
      const local = editText(
        {
          kind: 'kv',
          path: cfg,
          ops: [
            { op: 'set', key: 'logfile', value: join(root, 'mcollective.log') },
            { op: 'set', key: 'daemonize', value: '0' },
            { op: 'set', key: 'plugin.yaml', value: join(root, 'facts.yaml') },
          ],
        },
        readFileSync(cfg, 'utf8'),
      ).text;
      writeFileSync(cfg, local);
      const m: Master = {
        fqdn: `mco${i}.test`,
        brokerHost: '127.0.0.1',
        stompPort: await freePort(),
        openwirePort: await freePort(),
        host: new (await import('@pe-stack/pe-host')).LocalHost({ name: `mco${i}.test`, redactor }),
        layout,
      };
      nodes.push({ m, root });
    }
    cluster = { primary: nodes[0]!.m, secondaries: [nodes[1]!.m], sudo: false };
    ({ secrets } = await readSecrets(cluster));
    const t0 = performance.now();
    const out = (
      await runMcoFlow(
        debianSyncSteps(cluster, secrets, { restart: false, bindAddress: '127.0.0.1' }),
        allMasters(cluster),
      )
    ).steps;
    figures['sync steps, 2 masters (ms)'] = performance.now() - t0;
    expect(out.filter((o) => o.status === 'done').length).toBe(4);
    await Promise.all(nodes.map(startBroker));
    await Promise.all(nodes.map(startDaemon));
  }, 180_000);

  afterAll(async () => {
    for (const n of nodes) {
      await n.daemon?.stop();
      await n.broker?.stop();
    }
    console.log('pe-mcollective real-process figures', figures);
  }, 60_000);

  it('each mcollectived uses its own broker; mco ping from each master is answered by both nodes, once each', async () => {
    const t0 = performance.now();
    for (const n of nodes)
      expect(await pingUntil(n.m, ['mco1.test', 'mco2.test'], 45_000)).toEqual(
        expect.arrayContaining(['mco1.test', 'mco2.test']),
      );
    figures['first full answer (ms)'] = performance.now() - t0;
    for (const n of nodes) {
      const log = readFileSync(join(n.root, 'mcollective.log'), 'utf8');
      expect(log).toContain(`Connected to stomp://mcollective@127.0.0.1:${n.m.stompPort}`);
    }
    // control: a client that can only use broker 1 still hears mco2.test, whose mcollectived sits on broker 2:
    // only the bridge between the brokers can carry that
    const n1 = nodes[0]!;
    const onlyBroker1 = join(n1.root, 'client-broker1-only.cfg');
    const clientText = readFileSync(n1.m.layout.files.mcollectiveClientCfg!.path, 'utf8');
    writeFileSync(
      onlyBroker1,
      editText(
        { kind: 'kv', path: onlyBroker1, ops: poolOps(clientText, onlyBroker1, [stompEndpoint(n1.m)], secrets) },
        clientText,
      ).text,
    );
    const control = {
      ...n1.m,
      layout: resolveLayout(n1.m.layout, { files: { mcollectiveClientCfg: { path: onlyBroker1 } } }),
    };
    expect(readPool(readFileSync(onlyBroker1, 'utf8'), onlyBroker1).size).toBe(1);
    expect((await mcoPing(control, { sudo: false, discoveryTimeoutS: 2 })).responders.sort()).toEqual([
      'mco1.test',
      'mco2.test',
    ]);
    const t1 = performance.now();
    const report = await verifyDebian(cluster, { ping: true, discoveryTimeoutS: 2 });
    figures['verify with ping, 2 masters (ms)'] = performance.now() - t1;
    expect(report.problems).toEqual([]);
    expect(report.checks.filter((c) => c.name.endsWith('mco ping')).map((c) => c.detail)).toEqual([
      'answered by all 2 nodes (2 replies)',
      'answered by all 2 nodes (2 replies)',
    ]);
    expect(JSON.stringify(report)).not.toContain(secrets.psk);
  });

  it('failover: with broker 1 down, both clients still reach both nodes through broker 2 (every pool names every broker)', async () => {
    const n1 = nodes[0]!;
    await n1.broker!.stop();
    const t0 = performance.now();
    // mcollectived 1 and client 1 find broker 1 gone and move on to the next broker in their pools
    for (const n of nodes)
      expect(await pingUntil(n.m, ['mco1.test', 'mco2.test'], 60_000)).toEqual(
        expect.arrayContaining(['mco1.test', 'mco2.test']),
      );
    figures['both answer again after broker 1 died (ms)'] = performance.now() - t0;
    await startBroker(n1);
  });

  it('removing a master: the other keeps working and its lists no longer name the removed one', async () => {
    const [n1, n2] = nodes as [Node, Node];
    await n2.daemon!.stop();
    await n2.broker!.stop();
    const remaining: McoCluster = { primary: n1.m, secondaries: [], sudo: false };
    const out = (
      await runMcoFlow(debianRemoveSteps(remaining, n2.m, secrets, { restart: false, bindAddress: '127.0.0.1' }), [
        n1.m,
        n2.m,
      ])
    ).steps;
    expect(out.map((o) => [o.id, o.status])).toEqual([
      ['mco-config:mco1.test', 'done'],
      ['activemq-instance:mco1.test', 'skipped'],
    ]);
    for (const key of ['mcollectiveServerCfg', 'mcollectiveClientCfg', 'activemqXml'] as const)
      expect(readFileSync(n1.m.layout.files[key]!.path, 'utf8')).not.toContain(String(n2.m.stompPort));
    await n1.daemon!.stop();
    await n1.broker!.stop();
    await startBroker(n1);
    await startDaemon(n1);
    expect(await pingUntil(n1.m, ['mco1.test'], 45_000)).toEqual(['mco1.test']);
    const report = await verifyDebian(remaining, { ping: true, discoveryTimeoutS: 2 });
    expect(report.problems).toEqual([]);
  });
});
