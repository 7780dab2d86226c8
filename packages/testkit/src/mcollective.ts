// Test support for pe-mcollective: masters whose layouts point into temp directories, driven through LocalHost;
// the fake rake and service stand-ins; real ActiveMQ and mcollectived processes for the root tests; a host that
// counts round trips; and the steps run as one flow by pe-steps' engine.
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  LocalHost,
  Redactor,
  execWriteFiles,
  readFiles,
  type BatchWrite,
  type Host,
  type Mutation,
  type WriteFilesOptions,
} from '@pe-stack/pe-host';
import { resolveLayout, type Layout } from '@pe-stack/pe-config-files';
import type { Master } from '@pe-stack/pe-mcollective';
import { runFlow, type RunResult, type Step } from '@pe-stack/pe-steps';

export const FIXTURES = fileURLToPath(new URL('../fixtures/mcollective', import.meta.url));
export const FAKE_RAKE = join(FIXTURES, 'fake-rake.mjs');

export function fixture(rel: string): string {
  return readFileSync(join(FIXTURES, rel), 'utf8');
}

export function tempRoot(prefix = 'pe-mco-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function put(path: string, text: string | Buffer, mode = 0o644): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
  chmodSync(path, mode);
}

const PE_SSL = '/etc/puppetlabs/puppet/ssl';
const PKI = [
  'pe-internal-broker',
  'pe-internal-mcollective-servers',
  'pe-internal-peadmin-mcollective-client',
  'pe-internal-puppet-console-mcollective-client',
];

/** The pe3 layout with every MCollective path (and the console rake) moved under root. */
export function pe3LayoutUnder(root: string, rakeState?: string): Layout {
  return resolveLayout('pe3', {
    mcollective: {
      pki: Object.fromEntries(
        PKI.map((n) => [
          n,
          {
            cert: `${root}${PE_SSL}/certs/${n}.pem`,
            privateKey: `${root}${PE_SSL}/private_keys/${n}.pem`,
            publicKey: `${root}${PE_SSL}/public_keys/${n}.pem`,
          },
        ]),
      ),
      credentials: `${root}/etc/puppetlabs/mcollective/credentials`,
    },
    ...(rakeState
      ? {
          commands: {
            consoleCreateKeyPair: [
              process.execPath,
              FAKE_RAKE,
              rakeState,
              '-f',
              '/opt/puppet/share/puppet-dashboard/Rakefile',
              'RAILS_ENV=production',
              'cert:create_key_pair',
            ],
          },
        }
      : {}),
  });
}

/** Fake PEM material: random bytes (no line shared with any other file), for leak checks. */
export function fakeKey(_seed: string): string {
  const body = randomBytes(600).toString('base64');
  return `-----BEGIN RSA PRIVATE KEY-----\n${body.match(/.{1,64}/g)!.join('\n')}\n-----END RSA PRIVATE KEY-----\n`;
}

/** Write a primary's pe3 MCollective files under root (private keys 0640, certs 0644, credentials 0600). */
export function seedPe3Primary(layout: Layout, seed = 'primary'): { keys: string[]; credentials: string } {
  const keys: string[] = [];
  for (const [n, e] of Object.entries(layout.mcollective.pki)) {
    const k = fakeKey(`${seed}-${n}`);
    keys.push(k);
    put(e.privateKey, k, 0o640);
    put(
      e.publicKey,
      `-----BEGIN PUBLIC KEY-----\n${Buffer.from(`${seed}-${n}-pub`).toString('base64')}\n-----END PUBLIC KEY-----\n`,
      0o644,
    );
    put(
      e.cert,
      `-----BEGIN CERTIFICATE-----\n${Buffer.from(`${seed}-${n}-cert`).toString('base64')}\n-----END CERTIFICATE-----\n`,
      0o644,
    );
  }
  const credentials = `Cr3d-${seed}-Zq8wLx2Vn5Rt\n`;
  put(layout.mcollective.credentials!, credentials, 0o600);
  return { keys, credentials };
}

export function localMaster(fqdn: string, layout: Layout, redactor = new Redactor()): Master {
  return { fqdn, host: new LocalHost({ name: fqdn, redactor }) as Host, layout };
}

/** The debian layout with server.cfg, client.cfg and activemq.xml under root, seeded from the installed package files. */
export function debianLayoutUnder(root: string, overrides: Record<string, unknown> = {}): Layout {
  // the broker's group (for activemq.xml) is the test user's own, so no test needs root to chgrp
  const group = execFileSync('id', ['-gn'], { encoding: 'utf8' }).trim();
  const layout = resolveLayout('debian', {
    users: { activemq: { user: userInfo().username, group } },
    files: {
      mcollectiveServerCfg: { path: `${root}/etc/mcollective/server.cfg` },
      mcollectiveClientCfg: { path: `${root}/etc/mcollective/client.cfg` },
      activemqXml: { path: `${root}/etc/activemq/instances-available/main/activemq.xml` },
    },
    ...overrides,
  });
  put(layout.files.mcollectiveServerCfg!.path, fixture('debian/server.cfg'), 0o600);
  put(layout.files.mcollectiveClientCfg!.path, fixture('debian/client.cfg'), 0o600);
  put(layout.files.activemqXml!.path, fixture('debian/activemq.xml'), 0o644);
  mkdirSync(`${root}/etc/activemq/instances-enabled`, { recursive: true });
  return layout;
}

export const FAKE_SERVICE = join(FIXTURES, 'fake-service.mjs');

/** Layout command overrides that drive fake-service.mjs with the given state file. */
export function fakeServiceCommands(state: string): Record<string, string[]> {
  const cmd = (action: string) => [process.execPath, FAKE_SERVICE, state, action, '{service}'];
  return {
    serviceStart: cmd('start'),
    serviceStop: cmd('stop'),
    serviceRestart: cmd('restart'),
    serviceReload: cmd('restart'),
    serviceStatus: cmd('is-active'),
    // the fake brokers listen as soon as they are started
    tcpListening: ['echo', 'LISTEN 0 128 0.0.0.0:{port} 0.0.0.0:*'],
  };
}

/** A process this test started: killed by its PID, never by name. */
export interface TestProcess {
  pid: number;
  stop(): Promise<void>;
}

function track(child: import('node:child_process').ChildProcess, what: string): TestProcess {
  if (!child.pid) throw new Error(`${what} did not start`);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    pid: child.pid,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 8000);
      await exited;
      clearTimeout(timer);
    },
  };
}

const AMQ_JAVA_OPENS = [
  '--add-reads=java.xml=java.logging',
  '--add-opens',
  'java.base/java.security=ALL-UNNAMED',
  '--add-opens',
  'java.base/java.net=ALL-UNNAMED',
  '--add-opens',
  'java.base/java.lang=ALL-UNNAMED',
  '--add-opens',
  'java.base/java.util=ALL-UNNAMED',
  '--add-opens',
  'java.naming/javax.naming.spi=ALL-UNNAMED',
  '--add-opens',
  'java.rmi/sun.rmi.transport.tcp=ALL-UNNAMED',
  '--add-opens',
  'java.base/java.util.concurrent=ALL-UNNAMED',
  '--add-opens',
  'java.base/java.util.concurrent.atomic=ALL-UNNAMED',
];

/**
 * Debian's ActiveMQ 5.17 in the foreground with a configuration directory
 * and a base directory of the test's own (what /usr/bin/activemq runs, minus
 * the pid file and the daemonising), small heap.
 */
export async function startActiveMq(confDir: string, baseDir: string, log: string): Promise<TestProcess> {
  const { spawn } = await import('node:child_process');
  const { openSync } = await import('node:fs');
  mkdirSync(`${baseDir}/data`, { recursive: true });
  const out = openSync(log, 'a');
  const child = spawn(
    'java',
    [
      '-Xms64m',
      '-Xmx192m',
      '-XX:TieredStopAtLevel=1',
      '-XX:+UseSerialGC',
      ...AMQ_JAVA_OPENS,
      `-Dactivemq.classpath=${confDir}`,
      '-Dactivemq.home=/usr/share/activemq',
      `-Dactivemq.base=${baseDir}`,
      `-Dactivemq.conf=${confDir}`,
      `-Dactivemq.data=${baseDir}/data`,
      '-jar',
      '/usr/share/activemq/bin/activemq.jar',
      'start',
      `xbean:file:${confDir}/activemq.xml`,
    ],
    { stdio: ['ignore', out, out] },
  );
  return track(child, 'activemq');
}

/** mcollectived in the foreground (the server.cfg must say daemonize = 0). */
export async function startMcollectived(serverCfg: string, pidfile: string, log: string): Promise<TestProcess> {
  const { spawn } = await import('node:child_process');
  const { openSync } = await import('node:fs');
  const out = openSync(log, 'a');
  const child = spawn('mcollectived', [`--config=${serverCfg}`, `--pidfile=${pidfile}`], {
    stdio: ['ignore', out, out],
  });
  return track(child, 'mcollectived');
}

/** Resolves once something accepts TCP connections on 127.0.0.1:port. */
export async function waitForPort(port: number, timeoutMs: number): Promise<number> {
  const { connect } = await import('node:net');
  const t0 = performance.now();
  for (;;) {
    const ok = await new Promise<boolean>((r) => {
      const s = connect({ port, host: '127.0.0.1' }, () => {
        s.destroy();
        r(true);
      });
      s.once('error', () => r(false));
    });
    if (ok) return performance.now() - t0;
    if (performance.now() - t0 > timeoutMs)
      throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** One round trip a CountingHost saw: the host, the operation, and a short label (the command's first words, or the path). */
export interface RoundTrip {
  host: string;
  op: string;
  what: string;
}

/**
 * A host that counts round trips the way SshHost makes them: every exec and
 * every file operation is one, and a batch of writes (`writeFiles`, which
 * SshHost does in one command) is one, done here with pe-host's batch script.
 * Labels: rake runs by their task names, `sh -c` scripts by their first line.
 */
export function countingHost(inner: Host, log: RoundTrip[]): Host {
  const label = (argv: readonly string[]): string => {
    const tasks = argv.filter((a) => /^[a-z_]+(:[a-z_]+)+(\[|$)/.test(a)).map((a) => a.replace(/\[.*$/s, ''));
    if (argv[0] === 'sh' && argv[1] === '-c') {
      const inScript = [...(argv[2] ?? '').matchAll(/\b([a-z_]+(?::[a-z_]+)+)\[/g)].map((m) => m[1]!);
      return inScript.length ? `rake ${inScript.join(' ')}` : `sh ${(argv[2] ?? '').split('\n')[0]!.slice(0, 40)}`;
    }
    return tasks.length ? `rake ${tasks.join(' ')}` : argv.slice(0, 2).join(' ');
  };
  const count = (op: string, what: string) => log.push({ host: inner.name, op, what });
  const wrapper: Host & {
    writeFiles(files: readonly BatchWrite[], opts?: WriteFilesOptions): ReturnType<typeof execWriteFiles>;
  } = {
    get name() {
      return inner.name;
    },
    get redactor() {
      return inner.redactor;
    },
    get actsAsRoot() {
      return inner.actsAsRoot;
    },
    exec: (argv, opts) => (count('exec', label(argv)), inner.exec(argv, opts)),
    spawn: (argv, opts) => (count('spawn', label(argv)), inner.spawn(argv, opts)),
    readFile: (p, o) => (count('readFile', p), inner.readFile(p, o)),
    writeFile: (p, d, o) => (count('writeFile', p), inner.writeFile(p, d, o)),
    stat: (p, o) => (count('stat', p), inner.stat(p, o)),
    exists: (p, o) => (count('exists', p), inner.exists(p, o)),
    remove: (p, o) => (count('remove', p), inner.remove(p, o)),
    mkdir: (p, o) => (count('mkdir', p), inner.mkdir(p, o)),
    forward: (port, h) => inner.forward(port, h),
    connect: (port, h) => inner.connect(port, h),
    close: () => inner.close(),
    readFiles: (paths, opts) => (count('readFiles', String(paths.length)), readFiles(inner, paths, opts)),
    writeFiles: (files, opts = {}) => (
      count('writeFiles', files.map((f) => f.path.split('/').at(-1)).join(',')),
      execWriteFiles({ name: inner.name, exec: (a, o) => inner.exec(a, o) }, files, { sudo: opts.sudo ?? false })
    ),
  };
  return wrapper;
}

/**
 * Runs steps in order as one flow through pe-steps' engine, on the masters' hosts: check, apply when not done,
 * check again. `dryRun` plans (the engine's DryRunHosts; the outcomes carry the planned mutations). A failed step
 * is thrown as an error with the engine's code and message.
 */
export async function runMcoFlow(
  steps: Step[],
  masters: readonly Master[],
  opts: { dryRun?: boolean } = {},
): Promise<RunResult> {
  const hosts = new Map(masters.map((m) => [m.host.name, m.host]));
  const host = (name: string): Host => {
    const h = hosts.get(name);
    if (!h) throw new Error(`no master ${name} in this test`);
    return h;
  };
  const r = await runFlow({ name: 'mcollective', items: steps }, { host, ...(opts.dryRun ? { dryRun: true } : {}) });
  if (r.error) throw Object.assign(new Error(r.error.message), r.error);
  return r;
}

/** The mutations a run's steps made (or, in a dry run, planned) on one host, in order. */
export function plannedOn(result: RunResult, host: string): Mutation[] {
  return result.steps.flatMap((s) => s.mutations).filter((m) => m.host === host);
}
