import { randomBytes } from 'node:crypto';
import { pollUntil, type Host } from '@pe-stack/pe-host';
import {
  buildCommand,
  editText,
  fileOf,
  KeyValueDocument,
  maskedEditDiff,
  parseActiveMq,
  type ActiveMqOp,
  type KvOp,
} from '@pe-stack/pe-config-files';
import { ActiveMqAuthEditor } from './activemq-auth.js';
import {
  checkMasters,
  DEFAULT_STOMP_PORT,
  openwireEndpoint,
  poolBrokers,
  poolFor,
  poolOps,
  readPool,
  stompEndpoint,
  type MasterRef,
  type PoolView,
} from './brokers.js';
import { McoError } from './errors.js';
import { mcoPing } from './mco.js';
import type { Step } from '@pe-stack/pe-steps';
import { allMasters, bindCluster, bindMaster, type Master, type McoCluster } from './cluster.js';
import { report, type VerifyReport } from './verify.js';

/** What every master's MCollective shares (debian: psk security provider, one STOMP user). */
export interface McoSecrets {
  psk: string;
  user: string;
  password: string;
}

/** Values Debian ships (`plugin.psk = unset`, password `marionette`): never shared as they are. */
const PLACEHOLDERS = new Set(['unset', 'changeme', 'marionette', 'secret', '']);

function randomSecret(): string {
  return randomBytes(24).toString('base64url');
}

function register(cluster: McoCluster, s: McoSecrets): void {
  for (const m of allMasters(cluster)) m.host.redactor.add(s.psk).add(s.password);
}

/**
 * The secrets of the cluster, from the primary's server.cfg: `plugin.psk`
 * and the STOMP user/password of pool entry 1. Debian's placeholders (or
 * `rotate`) are replaced by fresh random values, which the steps then write
 * on every master, the primary included. The values are registered with
 * every master's Redactor; they are returned to the caller only to pass on.
 */
export async function readSecrets(
  cluster: McoCluster,
  opts: { rotate?: boolean } = {},
): Promise<{ secrets: McoSecrets; generated: ('psk' | 'password')[] }> {
  const p = cluster.primary;
  const path = fileOf(p.layout, 'mcollectiveServerCfg').path;
  const text = (await p.host.readFile(path, { sudo: cluster.sudo ?? true })).toString('utf8');
  const doc = new KeyValueDocument(text, path, 'spaced');
  const generated: ('psk' | 'password')[] = [];
  let psk = doc.get('plugin.psk');
  if (opts.rotate || psk === undefined || PLACEHOLDERS.has(psk) || psk.length < 8) {
    psk = randomSecret();
    generated.push('psk');
  }
  let password = doc.get('plugin.activemq.pool.1.password');
  if (opts.rotate || password === undefined || PLACEHOLDERS.has(password) || password.length < 8) {
    password = randomSecret();
    generated.push('password');
  }
  const user = doc.get('plugin.activemq.pool.1.user') ?? 'mcollective';
  const secrets = { psk, user, password };
  register(cluster, secrets);
  return { secrets, generated };
}

export interface DebianOptions {
  /** Address the broker's connectors bind to (default 0.0.0.0). */
  bindAddress?: string;
  /** Restart activemq and mcollective where the configuration changed (default true). */
  restart?: boolean;
  /** Groups of the STOMP user in activemq.xml. */
  userGroups?: string;
}

export const MESH_PREFIX = 'pe-mesh-';

/** The network connector from one broker to a peer (full mesh: one hop, one direction each). */
export function meshConnector(peer: MasterRef, s: McoSecrets): { name: string } & Record<string, string> {
  const e = openwireEndpoint(peer);
  return {
    name: `${MESH_PREFIX}${peer.fqdn}`,
    uri: `static:(tcp://${e.host}:${e.port})`,
    userName: s.user,
    password: s.password,
    duplex: 'false',
    networkTTL: '1',
    dynamicOnly: 'true',
    decreaseNetworkConsumerPriority: 'true',
  };
}

export interface FilePlan {
  path: string;
  before: string;
  after: string;
  changed: boolean;
  /** Unified diff with every secret masked. */
  diff: string;
  owner: string;
  group: string;
  mode: number;
}

async function readOrEmpty(m: Master, path: string, sudo: boolean): Promise<string | undefined> {
  return (await m.host.exists(path, { sudo })) ? (await m.host.readFile(path, { sudo })).toString('utf8') : undefined;
}

/**
 * The new server.cfg, client.cfg and activemq.xml of one master, computed
 * in memory from the files on the host (pe-config-files editors; the
 * activemq user and brokerName through the ActiveMqAuthEditor adapter).
 */
export async function planMasterFiles(
  m: Master,
  cluster: McoCluster,
  s: McoSecrets,
  opts: DebianOptions = {},
): Promise<FilePlan[]> {
  const sudo = cluster.sudo ?? true;
  const masters = checkMasters(allMasters(cluster));
  const pool = poolFor(m, masters);
  const out: FilePlan[] = [];
  const secrets = [s.psk, s.password];
  for (const key of ['mcollectiveServerCfg', 'mcollectiveClientCfg'] as const) {
    const spec = fileOf(m.layout, key);
    const before = await readOrEmpty(m, spec.path, sudo);
    if (before === undefined)
      throw new McoError('E_MCO_CONFIG', `${spec.path} does not exist.`, {
        host: m.host.name,
        hint: 'Install the mcollective package (server.cfg and client.cfg come with it), then rerun.',
      });
    const ops: KvOp[] = [{ op: 'set', key: 'plugin.psk', value: s.psk }, ...poolOps(before, spec.path, pool, s)];
    if (key === 'mcollectiveServerCfg') ops.push({ op: 'set', key: 'identity', value: m.fqdn });
    const after = editText({ kind: 'kv', path: spec.path, ops }, before, m.host.redactor).text;
    out.push({
      path: spec.path,
      before,
      after,
      changed: after !== before,
      diff: maskedEditDiff(spec.path, before, after, m.host.redactor.with(secrets)),
      owner: spec.owner,
      group: spec.group,
      mode: spec.mode,
    });
  }
  const xml = fileOf(m.layout, 'activemqXml');
  const before = await readOrEmpty(m, xml.path, sudo);
  if (before === undefined)
    throw new McoError('E_MCO_CONFIG', `${xml.path} does not exist.`, {
      host: m.host.name,
      hint: 'Install the activemq package, then rerun.',
    });
  const bind = opts.bindAddress ?? '0.0.0.0';
  const me = stompEndpoint(m);
  const ow = openwireEndpoint(m);
  const ops: ActiveMqOp[] = [
    { op: 'set-connector', kind: 'transport', attrs: { name: 'openwire', uri: `tcp://${bind}:${ow.port}` } },
    { op: 'set-connector', kind: 'transport', attrs: { name: 'stomp', uri: `stomp+nio://${bind}:${me.port}` } },
  ];
  const peers = masters.filter((x) => x.fqdn.toLowerCase() !== m.fqdn.toLowerCase());
  const wanted = new Set(peers.map((p) => `${MESH_PREFIX}${p.fqdn}`));
  for (const c of parseActiveMq(before, xml.path).connectors('network')) {
    const name = c['name'];
    if (name?.startsWith(MESH_PREFIX) && !wanted.has(name)) ops.push({ op: 'remove-connector', kind: 'network', name });
  }
  for (const p of peers) ops.push({ op: 'set-connector', kind: 'network', attrs: meshConnector(p, s) });
  const connected = editText({ kind: 'activemq', path: xml.path, ops }, before, m.host.redactor.with(secrets)).text;
  const auth = new ActiveMqAuthEditor(connected, xml.path);
  auth.setBrokerAttribute('brokerName', m.fqdn);
  auth.setUser({ username: s.user, password: s.password, groups: opts.userGroups ?? 'mcollective,everyone' });
  const after = auth.toString();
  out.push({
    path: xml.path,
    before,
    after,
    changed: after !== before,
    diff: maskedEditDiff(xml.path, before, after, m.host.redactor.with(secrets)),
    owner: xml.owner,
    group: xml.group,
    mode: xml.mode,
  });
  return out;
}

function instancePaths(m: Master): { available: string; enabled: string } | undefined {
  const r = /^(.*)\/instances-available\/([^/]+)\/activemq\.xml$/.exec(fileOf(m.layout, 'activemqXml').path);
  return r
    ? { available: `${r[1]}/instances-available/${r[2]}`, enabled: `${r[1]}/instances-enabled/${r[2]}` }
    : undefined;
}

/** What the steps of one master share: the masters whose configuration changed since their restart. */
interface MasterSync {
  m: Master;
  cluster: McoCluster;
  secrets: McoSecrets;
  opts: DebianOptions;
  sudo: boolean;
  changed: Set<string>;
}

/**
 * Steps that give every master the same MCollective (debian): per master,
 * server.cfg/client.cfg (shared psk, STOMP credentials, a pool naming every
 * master's broker, own first; `identity` = the FQDN) and activemq.xml
 * (openwire and stomp connectors, the STOMP user, brokerName = FQDN, a mesh
 * of network connectors to every other master, stale mesh connectors
 * removed), the Debian instance enabled, then activemq and mcollective
 * restarted where something changed.
 */
export function debianSyncSteps(cluster: McoCluster, s: McoSecrets, opts: DebianOptions = {}): Step[] {
  const masters = checkMasters(allMasters(cluster));
  if (cluster.primary.layout.flavour !== 'debian')
    throw new McoError(
      'E_MCO_INPUT',
      `the debian MCollective steps need the debian layout, not ${cluster.primary.layout.name}.`,
    );
  register(cluster, s);
  const changed = new Set<string>();
  return masters.flatMap((m) => {
    const sync: MasterSync = { m, cluster, secrets: s, opts, sudo: cluster.sudo ?? true, changed };
    const inst = instancePaths(m);
    return [
      mcoConfigStep(sync),
      ...(inst ? [activeMqInstanceStep(sync, inst)] : []),
      ...((opts.restart ?? true) ? [mcoRestartStep(sync)] : []),
    ];
  });
}

/** server.cfg, client.cfg and activemq.xml of one master as planMasterFiles computes them. */
function mcoConfigStep({ m, cluster, secrets: s, opts, sudo, changed }: MasterSync): Step {
  return {
    id: `mco-config:${m.fqdn}`,
    host: m.host.name,
    title: 'MCollective psk, credentials and broker pool; ActiveMQ connectors, user and network of brokers',
    check: async (ctx) => {
      const bm = bindMaster(m, ctx);
      const plans = (await planMasterFiles(bm, bindCluster(cluster, ctx), s, opts)).filter((p) => p.changed);
      if (plans.length > 0) return { done: false, why: `${plans.map((p) => p.path).join(', ')} to change` };
      const xml = fileOf(m.layout, 'activemqXml').path;
      const st = await bm.host.stat(xml, { sudo });
      if (st && st.mode & 0o007)
        return { done: false, why: `${xml} holds the STOMP password and is readable by all users` };
      return { done: true, why: 'configured' };
    },
    apply: async (ctx) => {
      const bm = bindMaster(m, ctx);
      const xml = fileOf(m.layout, 'activemqXml').path;
      for (const p of await planMasterFiles(bm, bindCluster(cluster, ctx), s, opts)) {
        const isXml = p.path === xml;
        const st = isXml ? await bm.host.stat(p.path, { sudo }) : undefined;
        const exposed = st !== undefined && (st.mode & 0o007) !== 0;
        if (!p.changed && !exposed) continue;
        // activemq.xml now holds the STOMP password: readable by root and the broker's group only
        const attrs = isXml
          ? { mode: ((st?.mode ?? 0o640) & 0o770) | 0o040, group: m.layout.users.activemq.group }
          : {};
        await bm.host.writeFile(p.path, p.after, { sudo, secrets: [s.psk, s.password], ...attrs });
        changed.add(m.fqdn);
      }
    },
  };
}

/** The Debian ActiveMQ instance linked into instances-enabled. */
function activeMqInstanceStep({ m, sudo, changed }: MasterSync, inst: { available: string; enabled: string }): Step {
  return {
    id: `activemq-instance:${m.fqdn}`,
    host: m.host.name,
    title: `enable the ActiveMQ instance ${inst.available}`,
    check: async (ctx) =>
      (await bindMaster(m, ctx).host.stat(inst.enabled, { sudo }))?.isSymlink
        ? { done: true, why: 'enabled' }
        : { done: false, why: `${inst.enabled} is missing` },
    apply: async (ctx) => {
      await bindMaster(m, ctx).host.exec(['ln', '-sfn', '--', inst.available, inst.enabled], { sudo });
      changed.add(m.fqdn);
    },
  };
}

/** activemq and mcollective restarted when the configuration changed or one of them is down. */
function mcoRestartStep({ m, sudo, changed }: MasterSync): Step {
  const services = [m.layout.services.activemq, m.layout.services.mcollective];
  return {
    id: `mco-restart:${m.fqdn}`,
    host: m.host.name,
    title: `restart ${services.join(' and ')} to load the configuration`,
    check: async (ctx) => {
      if (changed.has(m.fqdn)) return { done: false, why: 'the configuration changed' };
      for (const svc of services) {
        const r = await bindMaster(m, ctx).host.exec(buildCommand(m.layout, 'serviceStatus', { service: svc }), {
          sudo,
          readOnly: true,
          allowFailure: true,
        });
        if (r.code !== 0) return { done: false, why: `${svc} is not running` };
      }
      return { done: true, why: `${services.join(' and ')} running with the current configuration` };
    },
    apply: async (ctx) => {
      const host = bindMaster(m, ctx).host;
      const { activemq, mcollective } = m.layout.services;
      await host.exec(buildCommand(m.layout, 'serviceRestart', { service: activemq }), { sudo, timeoutMs: 120_000 });
      // Debian's activemq returns before the broker listens: an mcollectived started now would find its own
      // broker down and stay on the next one in its pool
      if (!ctx.dryRun) await waitForStomp(m, host, sudo, ctx.signal);
      await host.exec(buildCommand(m.layout, 'serviceRestart', { service: mcollective }), { sudo, timeoutMs: 120_000 });
      changed.delete(m.fqdn);
    },
  };
}

const BROKER_START_TIMEOUT_MS = 180_000;

async function waitForStomp(m: Master, host: Host, sudo: boolean, signal: AbortSignal): Promise<void> {
  const port = String(m.stompPort ?? DEFAULT_STOMP_PORT);
  const listening = await pollUntil(
    async () => {
      const r = await host.exec(buildCommand(m.layout, 'tcpListening', { port }), { sudo, readOnly: true });
      return /^LISTEN\s/m.test(r.stdout);
    },
    { timeoutMs: BROKER_START_TIMEOUT_MS, intervalMs: 1000, signal },
  );
  if (!listening.ok && !listening.aborted)
    throw new McoError(
      'E_MCO_CONFIG',
      `ActiveMQ on ${m.fqdn} was restarted but does not listen on STOMP port ${port} after ${BROKER_START_TIMEOUT_MS / 1000} s.`,
      { host: m.host.name, hint: `Read the ActiveMQ log on ${m.fqdn}; fix what it names, then rerun the step.` },
    );
}

/**
 * After a master left (cluster = the remaining masters): the same sync over
 * the remaining masters (their pools and meshes drop the removed broker),
 * then, when the removed master is still reachable and `stopRemoved` is set,
 * its mcollective and activemq stopped so no stale broker bridges remain.
 */
export function debianRemoveSteps(
  cluster: McoCluster,
  removed: MasterRef & { host?: Master['host']; layout?: Master['layout'] },
  s: McoSecrets,
  opts: DebianOptions & { stopRemoved?: boolean } = {},
): Step[] {
  if (allMasters(cluster).some((m) => m.fqdn.toLowerCase() === removed.fqdn.toLowerCase())) {
    throw new McoError(
      'E_MCO_INPUT',
      `${removed.fqdn} is still listed among the masters; pass the cluster without it.`,
    );
  }
  const steps = debianSyncSteps(cluster, s, opts);
  const { host, layout } = removed;
  if (opts.stopRemoved && host && layout) {
    const services = [layout.services.mcollective, layout.services.activemq];
    steps.push({
      id: `mco-stop:${removed.fqdn}`,
      host: host.name,
      title: `stop ${services.join(' and ')} on the removed master`,
      check: async (ctx) => {
        const h = ctx.hostFor(host.name);
        for (const svc of services) {
          const r = await h.exec(buildCommand(layout, 'serviceStatus', { service: svc }), {
            sudo: cluster.sudo ?? true,
            readOnly: true,
            allowFailure: true,
          });
          if (r.code === 0) return { done: false, why: `${svc} is running` };
        }
        return { done: true, why: `${services.join(' and ')} stopped` };
      },
      apply: async (ctx) => {
        const h = ctx.hostFor(host.name);
        for (const svc of services)
          await h.exec(buildCommand(layout, 'serviceStop', { service: svc }), {
            sudo: cluster.sudo ?? true,
            timeoutMs: 120_000,
          });
      },
    });
  }
  return steps;
}

export interface VerifyDebianOptions {
  ping?: boolean;
  expectNodes?: readonly string[];
  pingTimeoutMs?: number;
  discoveryTimeoutS?: number;
}

/** What the server.cfg/client.cfg reads collected: checks, and the secrets to compare across files. */
interface PoolFindings {
  checks: VerifyReport['checks'];
  psks: Map<string, string | undefined>;
  creds: Map<string, string>;
}

/**
 * debian verification: psk and STOMP credentials identical on every master
 * (compared in memory, never shown), each pool complete and naming the same
 * brokers, activemq.xml with the STOMP user and a connector to every peer,
 * and (with `ping`) `mco ping` from each master answered by every expected
 * identity exactly once.
 */
export async function verifyDebian(cluster: McoCluster, opts: VerifyDebianOptions = {}): Promise<VerifyReport> {
  const sudo = cluster.sudo ?? true;
  const masters = checkMasters(allMasters(cluster));
  const pools = await readPoolFiles(masters, sudo);
  const checks = [...pools.checks, pskCheck(pools.psks), stompCredentialsCheck(pools.creds)];
  const stompSecret = [...pools.creds.values()][0]?.split('\0') ?? [];
  for (const m of masters) checks.push(...(await activeMqChecks(m, masters, stompSecret, sudo)));
  if (opts.ping) checks.push(...(await pingChecks(masters, opts, sudo)));
  return report(checks);
}

/** Every master's server.cfg and client.cfg, in order: a pool check each, psks and credentials collected. */
async function readPoolFiles(masters: Master[], sudo: boolean): Promise<PoolFindings> {
  const found: PoolFindings = { checks: [], psks: new Map(), creds: new Map() };
  const expectedBrokers = masters
    .map(stompEndpoint)
    .map((e) => `${e.host}:${e.port}`)
    .sort();
  for (const m of masters) {
    for (const key of ['mcollectiveServerCfg', 'mcollectiveClientCfg'] as const) {
      const path = fileOf(m.layout, key).path;
      const text = await readOrEmpty(m, path, sudo);
      if (text === undefined) {
        found.checks.push({ name: `${m.fqdn}: ${path}`, ok: false, detail: 'missing' });
        continue;
      }
      const doc = new KeyValueDocument(text, path, 'spaced');
      found.psks.set(`${m.fqdn}: ${path}`, doc.get('plugin.psk'));
      const view = readPool(text, path);
      for (const e of view.entries)
        if (e.index <= (view.size ?? 0))
          found.creds.set(
            `${m.fqdn}: ${path} pool ${e.index}`,
            `${e.user}\0${doc.get(`plugin.activemq.pool.${e.index}.password`) ?? ''}`,
          );
      found.checks.push(poolCheck(m, path, view, expectedBrokers));
    }
  }
  return found;
}

/** One file's broker pool against the masters' brokers: complete, no strangers, no duplicates, size right. */
function poolCheck(m: Master, path: string, view: PoolView, expectedBrokers: string[]): VerifyReport['checks'][number] {
  const brokers = poolBrokers(view);
  const sorted = [...brokers].sort();
  const missing = expectedBrokers.filter((b) => !sorted.includes(b));
  const extra = sorted.filter((b) => !expectedBrokers.includes(b));
  const dup = brokers.length !== new Set(brokers).size;
  const local = stompEndpoint(m);
  const ok = missing.length === 0 && extra.length === 0 && !dup && view.size === brokers.length;
  return {
    name: `${m.fqdn}: broker pool in ${path}`,
    ok,
    detail: ok
      ? `names all ${brokers.length} brokers${brokers[0] === `${local.host}:${local.port}` ? ', its own first' : ''}`
      : [
          missing.length ? `missing ${missing.join(', ')}` : '',
          extra.length ? `names non-masters ${extra.join(', ')}` : '',
          dup ? 'a broker twice' : '',
          view.size !== brokers.length ? `pool.size ${view.size ?? 'unset'} for ${brokers.length} entries` : '',
        ]
          .filter(Boolean)
          .join('; '),
  };
}

function distinctValues(m: Map<string, string | undefined>): number {
  return new Set(m.values()).size;
}

/** The psk: one value in every file, and not a placeholder. */
function pskCheck(psks: Map<string, string | undefined>): VerifyReport['checks'][number] {
  const pskValues = [...psks.values()];
  return {
    name: 'psk',
    ok:
      pskValues.length > 0 &&
      distinctValues(psks) === 1 &&
      pskValues[0] !== undefined &&
      !PLACEHOLDERS.has(pskValues[0]),
    detail:
      distinctValues(psks) === 1
        ? pskValues[0] === undefined || PLACEHOLDERS.has(pskValues[0])
          ? 'unset or a placeholder everywhere'
          : `identical in all ${psks.size} files`
        : `differs between files (${groupsOf(psks)})`,
  };
}

/** The STOMP user and password: one pair in every pool entry. */
function stompCredentialsCheck(creds: Map<string, string>): VerifyReport['checks'][number] {
  return {
    name: 'STOMP credentials',
    ok: creds.size > 0 && distinctValues(creds) === 1,
    detail:
      distinctValues(creds) === 1
        ? `identical in all ${creds.size} pool entries`
        : `differ between pool entries (${groupsOf(creds)})`,
  };
}

/** One master's activemq.xml: the STOMP user with the shared password, a mesh connector to every peer. */
async function activeMqChecks(
  m: Master,
  masters: Master[],
  stompSecret: string[],
  sudo: boolean,
): Promise<VerifyReport['checks']> {
  const path = fileOf(m.layout, 'activemqXml').path;
  const text = await readOrEmpty(m, path, sudo);
  if (text === undefined) return [{ name: `${m.fqdn}: ${path}`, ok: false, detail: 'missing' }];
  const auth = new ActiveMqAuthEditor(text, path);
  const userOk = stompSecret.length === 2 && auth.passwordOf(stompSecret[0]!) === stompSecret[1];
  const userCheck = {
    name: `${m.fqdn}: ActiveMQ user`,
    ok: userOk,
    detail: userOk
      ? `${stompSecret[0]} with the shared password`
      : `no user ${stompSecret[0] ?? '?'} with the shared password`,
  };
  return [userCheck, meshCheck(m, masters, text, path)];
}

/** The network connectors of one activemq.xml: one to every peer, none to a broker that left. */
function meshCheck(m: Master, masters: Master[], text: string, path: string): VerifyReport['checks'][number] {
  const names = parseActiveMq(text, path)
    .connectors('network')
    .map((c) => c['name'] ?? '');
  const peers = masters.filter((p) => p !== m).map((p) => `${MESH_PREFIX}${p.fqdn}`);
  const missing = peers.filter((p) => !names.includes(p));
  const stale = names.filter((n) => n.startsWith(MESH_PREFIX) && !peers.includes(n));
  const ok = missing.length === 0 && stale.length === 0;
  return {
    name: `${m.fqdn}: network of brokers`,
    ok,
    detail: ok
      ? `connected to all ${peers.length} peers`
      : [missing.length ? `no connector ${missing.join(', ')}` : '', stale.length ? `stale ${stale.join(', ')}` : '']
          .filter(Boolean)
          .join('; '),
  };
}

/** `mco ping` from every master at once, each answered by every expected identity exactly once. */
async function pingChecks(
  masters: Master[],
  opts: VerifyDebianOptions,
  sudo: boolean,
): Promise<VerifyReport['checks']> {
  const expect = [...new Set([...masters.map((m) => m.fqdn), ...(opts.expectNodes ?? [])])].sort();
  const results = await Promise.all(masters.map((m) => pingFrom(m, opts, sudo)));
  return results.map((x) => {
    if ('error' in x) return { name: `${x.m.fqdn}: mco ping`, ok: false, detail: `failed: ${x.error}` };
    const got = x.r.responders;
    const missing = expect.filter((n) => !got.includes(n));
    const dups = got.filter((n, i) => got.indexOf(n) !== i);
    const ok = missing.length === 0 && dups.length === 0;
    return {
      name: `${x.m.fqdn}: mco ping`,
      ok,
      detail: ok
        ? `answered by all ${expect.length} nodes (${got.length} replies)`
        : [
            missing.length ? `no answer from ${missing.join(', ')}` : '',
            dups.length ? `duplicate answers from ${[...new Set(dups)].join(', ')}` : '',
          ]
            .filter(Boolean)
            .join('; '),
    };
  });
}

async function pingFrom(
  m: Master,
  opts: VerifyDebianOptions,
  sudo: boolean,
): Promise<{ m: Master; r: Awaited<ReturnType<typeof mcoPing>> } | { m: Master; error: string }> {
  try {
    return {
      m,
      r: await mcoPing(m, {
        sudo,
        ...(opts.pingTimeoutMs ? { timeoutMs: opts.pingTimeoutMs } : {}),
        ...(opts.discoveryTimeoutS ? { discoveryTimeoutS: opts.discoveryTimeoutS } : {}),
      }),
    };
  } catch (e) {
    return { m, error: e instanceof Error ? m.host.redactor.redact(e.message) : String(e) };
  }
}

/** Which files agree with which, without values: "A, B | C". */
function groupsOf(m: Map<string, string | undefined>): string {
  const groups = new Map<string | undefined, string[]>();
  for (const [k, v] of m) groups.set(v, [...(groups.get(v) ?? []), k]);
  return [...groups.values()].map((g) => g.join(', ')).join(' | ');
}
