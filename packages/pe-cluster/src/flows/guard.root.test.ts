import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { createServer as createHttps, type Server } from 'node:https';
import { createServer as createTcp, type Server as TcpServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseIni, parseServices } from '@pe-stack/pe-config-files';
import { freePort } from '@pe-stack/testkit/sshd';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';

/*
 * The real guard script against real HTTPS peers on loopback (127.0.0.11-16,
 * one port): a throwaway CA signs each peer's certificate; the peers answer as
 * an active CA (200 / 404), a gated standby (200 / 403), a disabled CA (404),
 * a master of another CA (its certificate does not verify), a silent one
 * (accepts, never answers: the time bound) and an unreachable one (nothing
 * listens). Each case gets its own host directory (CA switch, PostgreSQL data
 * directory owned by postgres, state directory).
 */
const SCRIPT = new URL('../../assets/pe-cluster-guard.sh', import.meta.url).pathname;
const CA_SVC = 'puppetlabs.services.ca.certificate-authority-service/certificate-authority-service';
const CA_CFG = `# To enable the CA service, leave the following line uncommented
${CA_SVC}
# To disable the CA service, comment out the above line and uncomment the line below
#puppetlabs.services.ca.certificate-authority-disabled-service/certificate-authority-disabled-service
puppetlabs.trapperkeeper.services.watcher.filesystem-watch-service/filesystem-watch-service
`;
const PUPPET_CONF = `[main]
    logdir = /var/log/pe-puppet
[master]
    certname = me.test
    ca = true
`;

let dir: string;
let port: number;
const servers: (Server | TcpServer)[] = [];
const sockets: Socket[] = [];
const hits: string[] = [];
const PEERS = {
  active: '127.0.0.11',
  gated: '127.0.0.12',
  disabled: '127.0.0.13',
  foreign: '127.0.0.14',
  silent: '127.0.0.15',
  unreachable: '127.0.0.16',
} as const;
type Peer = keyof typeof PEERS;

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function issue(ca: string, name: string): { key: Buffer; cert: Buffer } {
  const b = join(dir, 'pki', name);
  openssl([
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    `${b}.key`,
    '-out',
    `${b}.csr`,
    '-subj',
    `/CN=${name}`,
  ]);
  writeFileSync(`${b}.ext`, `subjectAltName=DNS:${name}\n`);
  openssl([
    'x509',
    '-req',
    '-in',
    `${b}.csr`,
    '-CA',
    `${dir}/pki/${ca}.pem`,
    '-CAkey',
    `${dir}/pki/${ca}.key`,
    '-CAcreateserial',
    '-out',
    `${b}.pem`,
    '-days',
    '1',
    '-extfile',
    `${b}.ext`,
  ]);
  return { key: readFileSync(`${b}.key`), cert: readFileSync(`${b}.pem`) };
}

function makeCa(name: string): void {
  openssl([
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    `${dir}/pki/${name}.key`,
    '-out',
    `${dir}/pki/${name}.pem`,
    '-subj',
    `/CN=${name}`,
    '-days',
    '1',
  ]);
}

/** status codes of a peer: [certificate/ca, certificate_request/...] for both API flavours */
const ANSWERS: Record<string, [number, number]> = {
  active: [200, 404],
  gated: [200, 403],
  disabled: [404, 404],
  foreign: [200, 404],
};

async function listen(s: Server | TcpServer, host: string): Promise<void> {
  await new Promise<void>((res, rej) => {
    s.once('error', rej);
    s.listen(port, host, () => res());
  });
  servers.push(s);
}

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('run as root (vitest --project root)');
  dir = mkdtempSync(join(tmpdir(), 'pe-guard-root-'));
  chmodSync(dir, 0o755); // postgres reaches its data directory, as on a real host
  mkdirSync(join(dir, 'pki'));
  makeCa('ca');
  makeCa('other-ca');
  port = await freePort();
  for (const name of ['active', 'gated', 'disabled', 'foreign'] as const) {
    const { key, cert } = issue(name === 'foreign' ? 'other-ca' : 'ca', `${name}.test`);
    const s = createHttps({ key, cert }, (req, res) => {
      hits.push(`${name} ${req.url}`);
      const [ca, csr] = ANSWERS[name]!;
      const url = req.url ?? '';
      const code = /\/certificate\/ca$/.test(url)
        ? ca
        : /\/certificate_request\/pe-cluster-guard-probe$/.test(url)
          ? csr
          : 404;
      res.writeHead(code, { 'content-type': 'text/plain' });
      res.end(code === 200 ? readFileSync(join(dir, 'pki/ca.pem')) : 'no');
    });
    await listen(s, PEERS[name]);
  }
  // accepts and never answers: only the guard's timeouts end the probe
  const silent = createTcp((sock) => {
    hits.push('silent connect');
    sockets.push(sock);
  });
  await listen(silent, PEERS.silent);
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface HostDir {
  base: string;
  conf: string;
  caCfg: string;
  puppetConf: string;
  pg: string;
  state: string;
}

let n = 0;
function hostDir(opts: {
  peers: Peer[];
  flavour?: 'debian' | 'pe3';
  gate?: string;
  authConf?: string;
  extra?: string[];
}): HostDir {
  const base = join(dir, `host${++n}`);
  const h: HostDir = {
    base,
    conf: join(base, 'guard.conf'),
    caCfg: join(base, 'ca.cfg'),
    puppetConf: join(base, 'puppet.conf'),
    pg: join(base, 'pgdata'),
    state: join(base, 'state'),
  };
  mkdirSync(h.pg, { recursive: true });
  writeFileSync(h.caCfg, CA_CFG);
  writeFileSync(h.puppetConf, PUPPET_CONF);
  writeFileSync(join(h.pg, 'PG_VERSION'), '15\n');
  execFileSync('chown', ['-R', 'postgres:postgres', h.pg]);
  execFileSync('chmod', ['0700', h.pg]);
  const pe3 = opts.flavour === 'pe3';
  const api = pe3 ? '/production' : '/puppet-ca/v1';
  const lines = [
    'CERTNAME=me.test',
    ...opts.peers.map((p) => `PEER=${p}.test ${PEERS[p]}`),
    `PORT=${port}`,
    `CA_PATH=${api}/certificate/ca`,
    `CSR_PATH=${api}/certificate_request/pe-cluster-guard-probe`,
    `VERIFY_CA=${join(dir, 'pki/ca.pem')}`,
    ...(pe3
      ? ['CA_SWITCH_KIND=ini', `CA_SWITCH_FILE=${h.puppetConf}`, 'CA_SWITCH_SECTION=master', 'CA_SWITCH_KEY=ca']
      : ['CA_SWITCH_KIND=services', `CA_SWITCH_FILE=${h.caCfg}`]),
    ...(opts.gate ? [`AUTH_CONF=${opts.authConf}`, `GATE=${opts.gate}`] : []),
    `PG_DATA=${h.pg}`,
    'PG_USER=postgres',
    `STATE_DIR=${h.state}`,
    'CONNECT_TIMEOUT=1',
    'MAX_TIME=2',
    ...(opts.extra ?? []),
  ];
  writeFileSync(h.conf, `${lines.join('\n')}\n`);
  return h;
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs a command without blocking this process (the peers are servers in it). */
function run(argv: string[]): Promise<Run> {
  const t0 = performance.now();
  return new Promise((res, rej) => {
    const c = spawn(argv[0]!, argv.slice(1), {
      env: { PATH: '/usr/bin:/bin', PE_CLUSTER_GUARD_STATE_DIR: join(dir, 'default-state') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    const t = setTimeout(() => c.kill('SIGKILL'), 30_000);
    c.on('error', rej);
    c.on('close', (code) => {
      clearTimeout(t);
      res({ code: code ?? -1, stdout, stderr, ms: performance.now() - t0 });
    });
  });
}

function guard(h: HostDir, ...args: string[]): Promise<Run> {
  return run(['bash', SCRIPT, '--config', h.conf, ...args]);
}

function caOn(h: HostDir): boolean | undefined {
  return parseServices(readFileSync(h.caCfg, 'utf8'), h.caCfg).caEnabled();
}

function unchanged(h: HostDir): void {
  expect(readFileSync(h.caCfg, 'utf8')).toBe(CA_CFG);
  expect(readFileSync(h.puppetConf, 'utf8')).toBe(PUPPET_CONF);
  expect(existsSync(join(h.pg, 'pe-db.fenced'))).toBe(false);
  expect(existsSync(join(h.pg, 'standby.signal'))).toBe(false);
  expect(existsSync(join(h.state, 'fenced'))).toBe(false);
}

beforeEach(() => {
  hits.length = 0;
});

describe('pe-cluster-guard against HTTPS peers', () => {
  it("fences when a directory above the CA switch is the service user's (Debian: puppet owns /etc/puppet/puppetserver)", async () => {
    const h = hostDir({ peers: ['active'] });
    const owned = join(h.base, 'puppetserver');
    const caCfg = join(owned, 'services.d', 'ca.cfg');
    mkdirSync(join(owned, 'services.d'), { recursive: true });
    writeFileSync(caCfg, CA_CFG);
    execFileSync('chown', ['nobody', owned]);
    chmodSync(owned, 0o750);
    writeFileSync(h.conf, `${readFileSync(h.conf, 'utf8')}CA_SWITCH_FILE=${caCfg}\n`);
    const r = await guard(h, 'puppetserver');
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(caCfg, 'utf8')).toContain(`#${CA_SVC}`);
    expect(r.stderr).not.toContain('not editing');
  });

  it('fences at boot when another master is the active CA: CA off (the editor agrees), pe-db marker and standby.signal owned by postgres, a clear log line; the start goes on', async () => {
    const h = hostDir({ peers: ['gated', 'disabled', 'unreachable', 'active'] });
    const r = await guard(h, 'puppetserver');
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(
      'pe-cluster-guard: active.test is the active CA; this host was fenced at boot; run `pe-cluster rejoin me.test`',
    );
    expect(caOn(h)).toBe(false);
    // the same bytes pe-config-files writes: its own edit is a no-op now
    const doc = parseServices(readFileSync(h.caCfg, 'utf8'), h.caCfg);
    expect(doc.setCa(false)).toBe(false);
    expect(readFileSync(h.caCfg, 'utf8')).toBe(
      CA_CFG.replace(`\n${CA_SVC}`, `\n#${CA_SVC}`).replace(
        '#puppetlabs.services.ca.certificate-authority-disabled',
        'puppetlabs.services.ca.certificate-authority-disabled',
      ),
    );
    const marker = JSON.parse(readFileSync(join(h.pg, 'pe-db.fenced'), 'utf8')) as Record<string, string>;
    expect(marker).toMatchObject({ host: 'me.test', dataDir: h.pg, newPrimary: 'active.test', how: 'stopped' });
    expect(marker.reason).toMatch(/pe-cluster-guard: fenced at boot/);
    for (const f of ['pe-db.fenced', 'standby.signal']) {
      const st = statSync(join(h.pg, f));
      expect([st.uid, st.mode & 0o777]).toEqual([
        Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' })),
        0o600,
      ]);
    }
    expect(readFileSync(join(h.state, 'guard.log'), 'utf8')).toContain('active.test is the active CA');
    // a backup of the switch, named as pe-host names them
    expect(execFileSync('ls', [h.base], { encoding: 'utf8' })).toMatch(/ca\.cfg\.pe-backup-\d{8}T\d{9}Z/);
    // the gated peer was asked both questions; the disabled one only the first
    expect(hits.filter((x) => x.startsWith('gated')).sort()).toEqual([
      'gated /puppet-ca/v1/certificate/ca',
      'gated /puppet-ca/v1/certificate_request/pe-cluster-guard-probe',
    ]);
    expect(hits.filter((x) => x.startsWith('disabled'))).toEqual(['disabled /puppet-ca/v1/certificate/ca']);
  });

  it('starts unchanged when the other masters are only gated, disabled, of another CA (unverified), silent or unreachable; bounded time', async () => {
    const h = hostDir({ peers: ['gated', 'disabled', 'foreign', 'silent', 'unreachable'] });
    const r = await guard(h, 'puppetserver');
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(
      /no other active CA \(\d+ ms: gated\.test ca=200 csr=403 not;disabled\.test ca=404 csr=- not;foreign\.test ca=000 csr=- not;silent\.test ca=000 csr=- not;unreachable\.test ca=000 csr=- not\): starting unchanged/,
    );
    unchanged(h);
    expect(hits).toContain('silent connect');
    // the silent peer never finishes the TLS handshake: curl's connect timeout (1 s, which covers the handshake) ends it, in parallel with the rest
    expect(r.ms).toBeGreaterThan(900);
    expect(r.ms).toBeLessThan(4500);
    const pg = await guard(h, 'postgresql');
    expect(pg.code).toBe(0);
    unchanged(h);
  });

  it('a fenced host stays fenced at every start, whoever answers: CA switched off again, standby.signal back', async () => {
    const h = hostDir({ peers: ['unreachable'] });
    expect((await guard(h, 'postgresql')).code).toBe(0);
    unchanged(h);
    writeFileSync(join(h.pg, 'pe-db.fenced'), '{"host":"me.test","newPrimary":"s1.test","how":"stopped"}\n');
    const r = await guard(h, 'postgresql');
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('this host is fenced');
    expect(caOn(h)).toBe(false);
    expect(existsSync(join(h.pg, 'standby.signal'))).toBe(true);
    expect(hits).toEqual([]);
    expect((await guard(h, 'check')).stdout).toBe(`fenced: ${h.pg}/pe-db.fenced\n`);
    // without a data directory the guard's own marker counts
    const g = hostDir({ peers: ['active'] });
    rmSync(g.pg, { recursive: true });
    mkdirSync(g.state, { recursive: true });
    writeFileSync(join(g.state, 'fenced'), '{}\n');
    expect((await guard(g, 'puppetserver')).code).toBe(0);
    expect(caOn(g)).toBe(false);
    expect(hits).toEqual([]);
  });

  it('a host that is not an active CA does not ask and changes nothing: a secondary (CA off), a gated standby, a takeover pe-cluster allowed', async () => {
    const sec = hostDir({ peers: ['active'] });
    writeFileSync(sec.caCfg, CA_CFG.replace(`\n${CA_SVC}`, `\n#${CA_SVC}`));
    const before = readFileSync(sec.caCfg, 'utf8');
    expect((await guard(sec, 'postgresql')).code).toBe(0);
    expect(readFileSync(sec.caCfg, 'utf8')).toBe(before);
    expect(existsSync(join(sec.pg, 'standby.signal'))).toBe(false);

    const auth = join(dir, 'auth.conf');
    writeFileSync(auth, 'authorization: { rules: [ { name: "pe-cluster standby gate", deny: "*" } ] }\n');
    const gated = hostDir({ peers: ['active'], gate: 'pe-cluster standby gate', authConf: auth });
    expect((await guard(gated, 'puppetserver')).code).toBe(0);
    unchanged(gated);

    const taken = hostDir({ peers: ['active'] });
    const a = await guard(taken, 'allow', '600');
    expect(a.code).toBe(0);
    expect(Number(readFileSync(join(taken.state, 'allow-start'), 'utf8'))).toBeGreaterThan(Date.now() / 1000 + 590);
    expect((await guard(taken, 'puppetserver')).stderr).toContain('not probing');
    unchanged(taken);
    expect(hits).toEqual([]);
    // an expired allowance counts for nothing
    writeFileSync(join(taken.state, 'allow-start'), `${Math.floor(Date.now() / 1000) - 1}\n`);
    expect((await guard(taken, 'check')).stdout).toContain('would fence: active.test is the active CA');
    unchanged(taken);
  });

  it('pe3: /production paths, `[master] ca = false` in puppet.conf (the ini editor agrees); PostgreSQL < 12 gets recovery.conf', async () => {
    const h = hostDir({ peers: ['disabled', 'active'], flavour: 'pe3' });
    writeFileSync(join(h.pg, 'PG_VERSION'), '9.2\n');
    expect((await guard(h, 'puppetserver')).code).toBe(0);
    expect(hits).toContain('active /production/certificate_request/pe-cluster-guard-probe');
    expect(readFileSync(h.puppetConf, 'utf8')).toBe(PUPPET_CONF.replace('ca = true', 'ca = false'));
    expect(parseIni(readFileSync(h.puppetConf, 'utf8'), h.puppetConf).get('master', 'ca')).toBe('false');
    expect(readFileSync(join(h.pg, 'recovery.conf'), 'utf8')).toContain("standby_mode = 'on'");
    expect(existsSync(join(h.pg, 'standby.signal'))).toBe(false);
    // a puppet.conf without `ca` (Puppet's default: a CA) gets the key in [master]
    const d = hostDir({ peers: ['active'], flavour: 'pe3' });
    writeFileSync(d.puppetConf, '[main]\n    server = x\n[master]\n    certname = me.test\n');
    await guard(d, 'puppetserver');
    expect(readFileSync(d.puppetConf, 'utf8')).toBe(
      '[main]\n    server = x\n[master]\n    ca = false\n    certname = me.test\n',
    );
  });

  it('never fails a start over a probe or a broken config; refuses only a start it could not fence', async () => {
    const h = hostDir({ peers: ['active'], extra: ['PEER=bad;name 127.0.0.1', 'WHATEVER=1'] });
    writeFileSync(h.conf, readFileSync(h.conf, 'utf8').replace(/^VERIFY_CA=.*$/m, 'VERIFY_CA=/nonexistent/ca.pem'));
    const r = await guard(h, 'puppetserver');
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('cannot verify peers');
    unchanged(h);
    const none = await guard({ ...h, conf: join(dir, 'nonexistent.conf') }, 'postgresql');
    expect(none.code).toBe(0);
    expect((await guard(h, 'frobnicate')).code).toBe(0);
    // the switch cannot be rewritten (its directory is not writable, even for root: a read-only bind mount)
    const ro = hostDir({ peers: ['active'] });
    const script = `mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && exec bash "$2" --config "$3" puppetserver`;
    const res = await run([
      'unshare',
      '--mount',
      '--propagation',
      'private',
      'bash',
      '-c',
      script,
      '_',
      ro.base,
      SCRIPT,
      ro.conf,
    ]);
    expect(res.stderr).toContain('refusing to start puppetserver');
    expect(res.code).toBe(1);
  });
});

/*
 * The guard's writes against the user who owns the directory (postgres, as
 * PostgreSQL's data directory is): a postgres process keeps swapping every
 * temp file and the target for a link to a root-owned file while the guard
 * writes 1000 times. Root must never write, chown or chmod through the link.
 */
describe('pe-cluster-guard write_new against a racing directory owner', () => {
  // 1000 by default (a few processes per write: ~15 s on an idle machine); fewer for a quick run
  const TRIES = Number(process.env.PE_GUARD_RACE_TRIES ?? 1000);
  const uidOf = (u: string) => Number(execFileSync('id', ['-u', u], { encoding: 'utf8' }));

  /** Runs write_new (the script sourced) `times` times; returns how many succeeded. */
  function writeNew(target: string, owner: string, times: number, stateDir: string): Promise<Run> {
    const loop = `source "$1" || exit 9; ok=0; for ((i = 0; i < $4; i++)); do write_new "$2" "$3" "write $i" && ok=$((ok + 1)); done; echo "$ok"`;
    return new Promise((res, rej) => {
      const t0 = performance.now();
      const c = spawn('bash', ['-c', loop, '_', SCRIPT, target, owner, String(times)], {
        env: { PATH: '/usr/bin:/bin:/usr/sbin:/sbin', PE_CLUSTER_GUARD_STATE_DIR: stateDir },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      c.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
      c.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
      c.on('error', rej);
      c.on('close', (code) => res({ code: code ?? -1, stdout, stderr, ms: performance.now() - t0 }));
    });
  }

  it(`${TRIES} writes into a postgres-owned directory while postgres swaps in links: the root-owned file is never touched`, async () => {
    const base = join(dir, 'race');
    const pg = join(base, 'pgdata');
    const victim = join(base, 'victim');
    mkdirSync(pg, { recursive: true });
    execFileSync('chown', ['postgres:postgres', pg]);
    chmodSync(pg, 0o700);
    writeFileSync(victim, 'root only\n', { mode: 0o600 });
    // as fast as it can: every temp file and the target replaced (rename) by a link to the victim
    const attack = `
      const fs = require('node:fs'), path = require('node:path');
      const [pg, victim] = process.argv.slice(1);
      for (let n = 0; ; n++) {
        for (const name of fs.readdirSync(pg)) {
          if (!name.startsWith('.standby.signal.pe-tmp-guard-') && name !== 'standby.signal') continue;
          const link = path.join(pg, '.l' + n);
          try { fs.symlinkSync(victim, link); fs.renameSync(link, path.join(pg, name)); } catch {}
        }
      }`;
    const attacker = spawn(process.execPath, ['-e', attack, pg, victim], {
      uid: uidOf('postgres'),
      gid: Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' })),
      stdio: 'ignore',
    });
    try {
      const r = await writeNew(join(pg, 'standby.signal'), 'postgres', TRIES, join(base, 'state'));
      // the attack landed (the write, as postgres, met the link and was refused by the kernel) and never got further
      const lines = r.stderr.split('\n').filter(Boolean);
      expect(lines.filter((l) => l.includes('Permission denied')).length).toBeGreaterThan(0);
      expect(r.stderr).not.toContain('not writing');
      expect(Number(r.stdout.trim())).toBeGreaterThan(0);
    } finally {
      attacker.kill('SIGKILL');
      await new Promise((r) => attacker.once('exit', r));
    }
    const st = statSync(victim);
    expect([st.uid, st.gid, st.mode & 0o777]).toEqual([0, 0, 0o600]);
    expect(readFileSync(victim, 'utf8')).toBe('root only\n');
  }, 1_200_000);

  it('writes as root only into a directory no other user can change; refuses a directory a third user owns or others can write', async () => {
    const base = join(dir, 'owners');
    const state = join(base, 'state');
    const mine = join(base, 'root-only');
    const nobodys = join(base, 'nobody');
    const open = join(base, 'open');
    for (const d of [mine, nobodys, open]) mkdirSync(d, { recursive: true });
    execFileSync('chown', ['nobody', nobodys]);
    chmodSync(open, 0o777);
    const ok = await writeNew(join(mine, 'f'), 'postgres', 1, state);
    expect(ok.stdout.trim()).toBe('1');
    const st = statSync(join(mine, 'f'));
    expect([st.uid, st.mode & 0o777]).toEqual([uidOf('postgres'), 0o600]);
    for (const d of [nobodys, open]) {
      const r = await writeNew(join(d, 'f'), 'postgres', 1, state);
      expect(r.stdout.trim()).toBe('0');
      expect(r.stderr).toContain(`not writing ${d}/f: ${d} (or a directory above it) can be changed`);
      expect(existsSync(join(d, 'f'))).toBe(false);
    }
  });
});
