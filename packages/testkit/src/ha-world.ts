// The world of the failover-side root tests: three "masters" on this machine,
// each a LocalHost whose layout paths live under its own directory, each with its own real PostgreSQL 15
// cluster on its own loopback address (127.0.0.11..13, one port), a real OpenSSL CA on the primary, and a
// simulated DNS: primary_cname in any command's argv is replaced by the address the DNS provider last set.
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { CA_DISABLED_SERVICE, CA_SERVICE, HoconDocument, layouts, ServicesDocument } from '@pe-stack/pe-config-files';
import { OpensslAgent, OpensslCa } from '@pe-stack/pe-certs';
import { destroyCluster, initCluster, isRunning, psql, startInstance, waitFor, type PgInstance } from '@pe-stack/pe-db';
import {
  LocalHost,
  Redactor,
  readFilesOneByOne,
  writeFilesOneByOne,
  type BatchWrite,
  type Host,
  type ReadFilesOptions,
  type WriteFilesOptions,
} from '@pe-stack/pe-host';
import { CA_GATE, Cluster, loadInventory, type ClusterOptions, type DnsProvider } from '@pe-stack/pe-cluster';
import { freePort } from './sshd.js';

export const CNAME = 'master.rt.test';
export const GENERAL = 'puppet.rt.test';
export const DB_PW = 'Ha-Root-Pdb-Pw-4711';
export const NAMES = ['p.rt.test', 's1.rt.test', 's2.rt.test'] as const;
export const ADDR: Record<string, string> = {
  'p.rt.test': '127.0.0.11',
  's1.rt.test': '127.0.0.12',
  's2.rt.test': '127.0.0.13',
};
// the boot-time guard's script, drop-ins and state too: never on this machine
const PREFIXES = [
  '/etc/puppet',
  '/var/lib/puppet',
  '/etc/puppetdb',
  '/etc/hosts',
  '/etc/mcollective',
  '/etc/default',
  '/etc/activemq',
  '/usr/local/sbin',
  '/etc/systemd/system',
  '/var/local/pe-cluster',
];

/**
 * A master of the world would sign as a CA when its puppetserver starts or reloads: its CA service enabled in
 * services.d and no CA gate in its auth.conf (the standby's CA runs gated and signs nothing).
 */
export async function caSignsOn(w: Pick<World, 'J'>, host: string): Promise<boolean> {
  const L = layouts.debian;
  const p = w.J(host, L.files.caCfg!.path);
  if (new ServicesDocument(await fs.readFile(p, 'utf8'), p).caEnabled() !== true) return false;
  const a = w.J(host, L.files.authConf!.path);
  const rules = new HoconDocument(await fs.readFile(a, 'utf8'), a).get(['authorization', 'rules']);
  return !(Array.isArray(rules) && rules.some((r) => (r as Record<string, unknown> | null)?.['name'] === CA_GATE.name));
}

export interface World {
  root: string;
  /** Re-read the DNS state another process (the CLI in a child) may have changed. */
  reloadDns(): Promise<void>;
  inventoryPath: string;
  pg: Record<string, PgInstance>;
  dns: { current: string; sets: string[] };
  down: Set<string>;
  J(name: string, path?: string): string;
  cluster(): Promise<Cluster>;
  /** How the CLI (main) reaches this world's hosts, PostgreSQL and DNS. */
  options(): ClusterOptions;
  svcLog(): Promise<string>;
  destroy(): Promise<void>;
}

function jailPath(root: string, name: string, p: string): string {
  return PREFIXES.some((x) => p === x || p.startsWith(`${x}/`) || p.startsWith(`${x}.`))
    ? join(root, 'hosts', name, p)
    : p;
}

/** A LocalHost whose layout paths (files, argv, cwd) live under root/hosts/<name>; `down` makes it unreachable. */
export function jail(w: Pick<World, 'root' | 'dns' | 'down'>, name: string, redactor: Redactor): Host {
  const base = new LocalHost({ name, redactor });
  const jp = (p: string) => jailPath(w.root, name, p);
  const argv = (a: readonly string[]) => a.map((x) => (x === CNAME ? w.dns.current : jp(x)));
  return new Proxy(base, {
    get(target, prop, recv) {
      const v = Reflect.get(target, prop, recv) as unknown;
      if (typeof v !== 'function') return v;
      const f = v as (...a: unknown[]) => unknown;
      if (prop === 'exec' || prop === 'spawn') {
        return (a: readonly string[], o: Record<string, unknown> = {}) => {
          if (w.down.has(name))
            return Promise.reject(
              Object.assign(new Error(`${name}: cannot reach the host over SSH (powered off)`), {
                code: 'E_UNREACHABLE',
              }),
            );
          return f.call(target, argv(a), {
            ...o,
            ...(typeof o.cwd === 'string' ? { cwd: jp(o.cwd) } : {}),
            env: { ...((o.env as Record<string, string>) ?? {}), JAIL_HOST: name },
          });
        };
      }
      if (['readFile', 'writeFile', 'stat', 'exists', 'remove', 'mkdir'].includes(String(prop))) {
        return (p: string, ...rest: unknown[]) => {
          if (w.down.has(name)) return Promise.reject(new Error(`${name}: powered off`));
          return f.call(target, jp(p), ...rest);
        };
      }
      // the batches file by file through this proxy, so that their paths are jailed too
      if (prop === 'readFiles')
        return (paths: string[], o?: ReadFilesOptions) => readFilesOneByOne(recv as Host, paths, o);
      if (prop === 'writeFiles')
        return (files: BatchWrite[], o?: WriteFilesOptions) => writeFilesOneByOne(recv as Host, files, o);
      return f.bind(target);
    },
  });
}

export async function makeWorld(opts: { secondCa?: boolean } = {}): Promise<World> {
  const root = await fs.mkdtemp(join(tmpdir(), 'pe-ha-'));
  await fs.chmod(root, 0o755);
  const port = await freePort();
  const dns = { current: ADDR['p.rt.test']!, sets: [] as string[] };
  const down = new Set<string>();
  const J = (name: string, p = '') => join(root, 'hosts', name, p);
  const L = layouts.debian;
  const local = new LocalHost({ name: 'setup' });
  const files: Record<string, { path: string }> = {};
  const dirs: Record<string, string> = {};
  for (const [k, f] of Object.entries(L.files)) files[k] = { path: f.path };
  for (const [k, d] of Object.entries(L.dirs)) if (d) dirs[k] = d;
  // service commands: a recorder (status: inactive, so nothing waits for a JVM)
  const svc = join(root, 'bin', 'svc');
  await fs.mkdir(dirname(svc), { recursive: true });
  await fs.writeFile(svc, `#!/bin/sh\necho "$JAIL_HOST $*" >> ${root}/svc.log\n[ "$2" = status ] && exit 3\nexit 0\n`, {
    mode: 0o755,
  });
  // every master: the Debian files this machine has installed, copied into its directory
  for (const n of NAMES) {
    for (const f of Object.values(L.files)) {
      await fs.mkdir(dirname(J(n, f.path)), { recursive: true });
      await fs.copyFile(f.path, J(n, f.path)).catch(() => undefined);
    }
    await fs.mkdir(J(n, L.dirs.cadir), { recursive: true });
    await fs.rm(J(n, L.dirs.cadir), { recursive: true });
    await fs.writeFile(
      J(n, L.files.caCfg!.path),
      n === 'p.rt.test' ? `${CA_SERVICE}\n` : `#${CA_SERVICE}\n${CA_DISABLED_SERVICE}\n`,
    );
    await fs.writeFile(
      J(n, L.files.puppetdbDatabaseIni!.path),
      `[database]\nsubname = //${CNAME}:${port}/puppetdb\nusername = puppetdb\npassword = ${DB_PW}\n`,
    );
    await fs.writeFile(
      J(n, L.files.puppetConf!.path),
      `[main]\nserver = ${GENERAL}\n${n === 'p.rt.test' ? '' : `ca_server = ${CNAME}\n`}`,
    );
    await fs.writeFile(
      J(n, L.files.sitePp!.path),
      `filebucket { 'main': server => 'p.rt.test', path => false }\nFile { backup => 'main' }\nnode default {}\n`,
    );
    await fs.writeFile(J(n, '/etc/hosts'), `127.0.0.1\tlocalhost\n${ADDR['p.rt.test']}\tp.rt.test ${CNAME}\n`);
  }
  // the CA on the primary and every master's certificate (real OpenSSL)
  const ca = await OpensslCa.init(local, J('p.rt.test', L.dirs.cadir), {
    commonName: 'Puppet CA: p.rt.test',
    key: { type: 'rsa', bits: 2048 },
  });
  for (const n of NAMES) {
    const agent = new OpensslAgent(ca, J(n, L.dirs.ssldir), { key: { type: 'ec' } });
    await agent.submit(local, n, [n, CNAME, GENERAL]);
    await ca.sign(n, { allowed: [CNAME, GENERAL] });
    await agent.fetch(local, n);
    await fs.copyFile(join(J('p.rt.test', L.dirs.cadir), 'ca_crl.pem'), J(n, L.files.hostCrl!.path));
  }
  // a standalone master's own, different CA left on s1 (as after a Debian install): the standby copy replaces it, keeping it aside
  if (opts.secondCa !== false)
    await OpensslCa.init(local, J('s1.rt.test', L.dirs.cadir), {
      commonName: 'Puppet CA: s1.rt.test',
      key: { type: 'ec' },
    });
  // PostgreSQL per master: its own address, one port; clients on loopback come from 127.0.0.1
  const pg: Record<string, PgInstance> = {};
  for (const n of NAMES) {
    const inst = await initCluster(local, {
      dir: join(root, 'pg', n),
      port,
      listen: ADDR[n]!,
      settings: { wal_keep_size: `'256MB'`, wal_log_hints: 'on', max_wal_senders: 10 },
    });
    await fs.appendFile(
      inst.hbaFile,
      'host replication all 127.0.0.1/32 scram-sha-256\nhost all all 127.0.0.1/32 scram-sha-256\n',
    );
    await startInstance(inst);
    pg[n] = inst;
  }
  await psql(
    pg['p.rt.test']!,
    `CREATE ROLE puppetdb LOGIN PASSWORD '${DB_PW}'; CREATE DATABASE puppetdb OWNER puppetdb;\n`,
    { secrets: [DB_PW] },
  );
  await psql(
    pg['p.rt.test']!,
    'CREATE TABLE reports (id serial PRIMARY KEY, node text NOT NULL, at timestamptz DEFAULT now()); ALTER TABLE reports OWNER TO puppetdb;',
    { database: 'puppetdb' },
  );
  const inventoryPath = join(root, 'inventory.yaml');
  await fs.writeFile(
    inventoryPath,
    JSON.stringify({
      cluster: 'ha',
      layout: 'debian',
      layout_overrides: {
        commands: {
          serviceReload: [svc, '{service}', 'reload'],
          serviceRestart: [svc, '{service}', 'restart'],
          serviceStatus: [svc, '{service}', 'status'],
          serviceStart: [svc, '{service}', 'start'],
          serviceStop: [svc, '{service}', 'stop'],
        },
        postgresql: { port },
      },
      primary_cname: CNAME,
      general_cname: GENERAL,
      masters: NAMES.map((n, i) => ({ name: n, role: i === 0 ? 'primary' : 'secondary', address: ADDR[n] })),
      journals: `${root}/state/journal`,
      audit_log: `${root}/state/audit.log`,
      backups: `${root}/backups`,
      ssh: { user: 'root' },
      dns: { provider: 'manual' },
    }),
  );
  void files;
  void dirs;
  await fs.writeFile(join(root, 'dns.json'), JSON.stringify(dns));
  await fs.writeFile(
    join(root, 'world.json'),
    JSON.stringify({
      port,
      pg: Object.fromEntries(Object.entries(pg).map(([k, v]) => [k, { ...v, host: undefined }])),
    }),
  );
  return worldOf(root, inventoryPath, pg, dns, down);
}

/** The world made by makeWorld in `root`, from another process (a CLI child that gets killed). */
export async function openWorld(root: string): Promise<World> {
  const saved = JSON.parse(await fs.readFile(join(root, 'world.json'), 'utf8')) as { pg: Record<string, PgInstance> };
  const dns = JSON.parse(await fs.readFile(join(root, 'dns.json'), 'utf8')) as World['dns'];
  const local = new LocalHost({ name: 'setup' });
  const pg = Object.fromEntries(Object.entries(saved.pg).map(([k, v]) => [k, { ...v, host: local }]));
  return worldOf(root, join(root, 'inventory.yaml'), pg, dns, new Set());
}

function worldOf(
  root: string,
  inventoryPath: string,
  pg: Record<string, PgInstance>,
  dns: World['dns'],
  down: Set<string>,
): World {
  const J = (name: string, p = '') => join(root, 'hosts', name, p);
  const w: World = {
    async reloadDns() {
      const d = JSON.parse(await fs.readFile(join(root, 'dns.json'), 'utf8')) as World['dns'];
      dns.current = d.current;
      dns.sets = d.sets;
    },
    root,
    inventoryPath,
    pg,
    dns,
    down,
    J,
    options() {
      const provider: DnsProvider = {
        kind: 'command',
        set: async (name: string, address: string) => {
          const changed = dns.current !== address;
          dns.current = address;
          dns.sets.push(`${name}=${address}`);
          await fs.writeFile(join(root, 'dns.json'), JSON.stringify(dns));
          return { changed, detail: `${name} -> ${address}`, skipped: [] };
        },
      };
      return {
        hostFactory: (node, redactor) => jail(w, node.name, redactor),
        pgInstance: (name, host) => ({ ...pg[name]!, host }),
        dns: () => provider,
      };
    },
    async cluster() {
      return new Cluster(await loadInventory(inventoryPath, { env: {}, home: root }), w.options());
    },
    svcLog: () => fs.readFile(join(root, 'svc.log'), 'utf8').catch(() => ''),
    async destroy() {
      for (const inst of Object.values(pg)) await destroyCluster(inst).catch(() => undefined);
      await fs.rm(root, { recursive: true, force: true });
    },
  };
  return w;
}

/** A power cut: the host stops answering, its postmaster gets SIGKILL (its backends die with it). */
export async function powerCut(w: World, host: string): Promise<void> {
  w.down.add(host);
  await new LocalHost().exec(
    [
      'sh',
      '-c',
      'pid=$(head -1 "$1/postmaster.pid"); kill -STOP "$pid"; pkill -KILL -P "$pid"; kill -KILL "$pid"; true',
      'sh',
      w.pg[host]!.dataDir,
    ],
    { allowFailure: true },
  );
  await waitFor(async () => !(await isRunning(w.pg[host]!)), 10_000, 100);
}
