import { validateHostname } from '@pe-stack/pe-host';
import { KeyValueDocument, type KvOp } from '@pe-stack/pe-config-files';
import { McoError } from './errors.js';

/** What the broker lists need to know about a master. */
export interface MasterRef {
  /** The master's FQDN: its MCollective identity and its name in the console lists. */
  fqdn: string;
  /** Address the broker is reached at (default: the FQDN). */
  brokerHost?: string;
  /** STOMP port of its ActiveMQ (default 61613). */
  stompPort?: number;
  /** OpenWire port of its ActiveMQ, used by the network of brokers (default 61616). */
  openwirePort?: number;
}

export interface BrokerEndpoint {
  /** The master this broker runs on. */
  fqdn: string;
  host: string;
  port: number;
}

export const DEFAULT_STOMP_PORT = 61613;
export const DEFAULT_OPENWIRE_PORT = 61616;

function checkPort(p: number, what: string): number {
  if (!Number.isInteger(p) || p < 1 || p > 65535)
    throw new McoError('E_MCO_INPUT', `${what} ${String(p)} is not a TCP port.`);
  return p;
}

/** A master's STOMP endpoint. */
export function stompEndpoint(m: MasterRef): BrokerEndpoint {
  return {
    fqdn: m.fqdn,
    host: validateHostname(m.brokerHost ?? m.fqdn),
    port: checkPort(m.stompPort ?? DEFAULT_STOMP_PORT, `the STOMP port of ${m.fqdn}`),
  };
}

/** A master's OpenWire endpoint (network of brokers). */
export function openwireEndpoint(m: MasterRef): BrokerEndpoint {
  return {
    fqdn: m.fqdn,
    host: validateHostname(m.brokerHost ?? m.fqdn),
    port: checkPort(m.openwirePort ?? DEFAULT_OPENWIRE_PORT, `the OpenWire port of ${m.fqdn}`),
  };
}

/**
 * The masters of a cluster, checked: valid FQDNs, each named once
 * (case-insensitively), no two brokers on one endpoint. Order is kept
 * (the primary first, by convention).
 */
export function checkMasters<T extends MasterRef>(masters: readonly T[]): T[] {
  if (masters.length === 0) throw new McoError('E_MCO_INPUT', 'a cluster needs at least one master.');
  const names = new Set<string>();
  const endpoints = new Set<string>();
  for (const m of masters) {
    validateHostname(m.fqdn);
    const key = m.fqdn.toLowerCase().replace(/\.$/, '');
    if (names.has(key)) throw new McoError('E_MCO_INPUT', `the master ${m.fqdn} is named twice.`);
    names.add(key);
    for (const e of [stompEndpoint(m), openwireEndpoint(m)]) {
      const ek = `${e.host.toLowerCase()}:${e.port}`;
      if (endpoints.has(ek)) throw new McoError('E_MCO_INPUT', `two brokers would listen on ${ek} (master ${m.fqdn}).`);
      endpoints.add(ek);
    }
  }
  return [...masters];
}

/** The comma-separated FQDNs of all masters (PE console variables `activemq_brokers`, `fact_stomp_server`). */
export function commaList(masters: readonly MasterRef[]): string {
  return checkMasters(masters)
    .map((m) => m.fqdn)
    .join(',');
}

/**
 * The broker pool for one master's MCollective: its own broker first (its
 * server and client talk to the local broker while it is up), then every
 * other master's in cluster order. Every master's pool names the same
 * brokers; only the first entry differs.
 */
export function poolFor(self: MasterRef, masters: readonly MasterRef[]): BrokerEndpoint[] {
  const all = checkMasters(masters);
  const me = all.find((m) => m.fqdn.toLowerCase() === self.fqdn.toLowerCase());
  if (!me)
    throw new McoError('E_MCO_INPUT', `${self.fqdn} is not one of the masters (${all.map((m) => m.fqdn).join(', ')}).`);
  return [me, ...all.filter((m) => m !== me)].map(stompEndpoint);
}

export interface PoolEntry {
  index: number;
  host: string | undefined;
  port: number | undefined;
  user: string | undefined;
  /** Whether a password is set (its value is never returned). */
  hasPassword: boolean;
}

export interface PoolView {
  connector: string | undefined;
  size: number | undefined;
  entries: PoolEntry[];
}

const ACTIVEMQ_POOL = /^plugin\.activemq\.pool\.(\d+)\.(.+)$/;
const STOMP_POOL = /^plugin\.stomp\.pool\.(host|port|user|password)(\d+)$/;

/**
 * The broker pool a server.cfg/client.cfg names: `plugin.activemq.pool.N.*`
 * (MCollective 2.x) or the older `plugin.stomp.pool.hostN` form (PE 2).
 */
export function readPool(text: string, path: string): PoolView {
  const doc = new KeyValueDocument(text, path, 'spaced');
  const connector = doc.get('connector');
  const byIndex = new Map<number, Map<string, string>>();
  const put = (i: number, k: string, v: string | undefined): void => {
    if (v === undefined) return;
    if (!byIndex.has(i)) byIndex.set(i, new Map());
    byIndex.get(i)!.set(k, v);
  };
  const stomp = connector === 'stomp';
  for (const key of doc.keys()) {
    const m = stomp ? STOMP_POOL.exec(key) : ACTIVEMQ_POOL.exec(key);
    if (!m) continue;
    if (stomp) put(Number(m[2]), m[1]!, doc.get(key));
    else put(Number(m[1]), m[2]!, doc.get(key));
  }
  const sizeText = doc.get(stomp ? 'plugin.stomp.pool.size' : 'plugin.activemq.pool.size');
  const size = sizeText !== undefined && /^\d+$/.test(sizeText) ? Number(sizeText) : undefined;
  const entries = [...byIndex.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([index, kv]) => {
      const port = kv.get('port');
      return {
        index,
        host: kv.get('host'),
        port: port !== undefined && /^\d+$/.test(port) ? Number(port) : undefined,
        user: kv.get('user'),
        hasPassword: (kv.get('password') ?? '') !== '',
      };
    });
  return { connector, size, entries };
}

/** The brokers a pool actually uses: entries 1..size with a host (`host:port`). */
export function poolBrokers(view: PoolView): string[] {
  const n = view.size ?? view.entries.length;
  return view.entries
    .filter((e) => e.index >= 1 && e.index <= n && e.host !== undefined)
    .map((e) => `${e.host}:${e.port ?? DEFAULT_STOMP_PORT}`);
}

export interface StompCredentials {
  user: string;
  password: string;
}

const BASIC = new Set(['host', 'port', 'user', 'password']);

/**
 * kv edits that make a server.cfg/client.cfg name exactly these brokers, in
 * this order, with these credentials: `connector = activemq`,
 * `plugin.activemq.pool.size`, `pool.N.host/port/user/password` for each
 * broker, per-broker extras of entry 1 (e.g. `ssl`, `ssl.ca`) repeated for
 * new entries, and every key of entries past the new size removed.
 */
export function poolOps(
  text: string,
  path: string,
  brokers: readonly BrokerEndpoint[],
  creds: StompCredentials,
): KvOp[] {
  if (brokers.length === 0) throw new McoError('E_MCO_INPUT', `the broker list for ${path} is empty.`);
  if (!/^[A-Za-z0-9_.@-]+$/.test(creds.user))
    throw new McoError('E_MCO_INPUT', 'the STOMP user name must be letters, digits, "_", ".", "@" or "-".');
  if (creds.password === '' || /[\s]/.test(creds.password))
    throw new McoError('E_MCO_INPUT', 'the STOMP password must be non-empty and contain no blanks.');
  const doc = new KeyValueDocument(text, path, 'spaced');
  const connector = doc.get('connector');
  if (connector !== undefined && connector !== 'activemq') {
    throw new McoError(
      'E_MCO_CONFIG',
      `${path} uses the "${connector}" connector; MCollective 2.12 needs "activemq".`,
      {
        hint: 'Change the connector to activemq by hand (the plugin.stomp.* settings do not carry over), then rerun.',
      },
    );
  }
  const existing = new Map<number, string[]>();
  for (const key of doc.keys()) {
    const m = ACTIVEMQ_POOL.exec(key);
    if (!m) continue;
    const i = Number(m[1]);
    existing.set(i, [...(existing.get(i) ?? []), m[2]!]);
  }
  const template = (existing.get(1) ?? [])
    .filter((k) => !BASIC.has(k))
    .map((k) => [k, doc.get(`plugin.activemq.pool.1.${k}`)!] as const);
  const ops: KvOp[] = [
    { op: 'set', key: 'connector', value: 'activemq' },
    { op: 'set', key: 'plugin.activemq.pool.size', value: String(brokers.length) },
  ];
  brokers.forEach((b, n) => {
    const i = n + 1;
    const p = `plugin.activemq.pool.${i}`;
    ops.push(
      { op: 'set', key: `${p}.host`, value: b.host },
      { op: 'set', key: `${p}.port`, value: String(b.port) },
      { op: 'set', key: `${p}.user`, value: creds.user },
      { op: 'set', key: `${p}.password`, value: creds.password },
    );
    for (const [k, v] of template)
      if (!existing.get(i)?.includes(k)) ops.push({ op: 'set', key: `${p}.${k}`, value: v });
  });
  for (const [i, keys] of [...existing.entries()].sort((a, b) => a[0] - b[0])) {
    if (i > brokers.length) for (const k of keys) ops.push({ op: 'unset', key: `plugin.activemq.pool.${i}.${k}` });
  }
  return ops;
}
