import { isIP } from 'node:net';
import { describe, expect, it } from 'vitest';
import {
  DryRunHost,
  Redactor,
  readFilesOneByOne,
  writeFiles,
  type BatchWrite,
  type ReadFilesOptions,
  type ExecOptions,
  type ExecResult,
  type FileStat,
  type Host,
  type WriteOptions,
  type WriteResult,
} from '@pe-stack/pe-host';
import { parsePgHba, parsePostgresqlConf } from '@pe-stack/pe-config-files';
import {
  DbConfigError,
  DbFencedError,
  accessGranted,
  grantAccessMany,
  type HbaFileRule,
  type PgInstance,
} from './index.js';

// Round trips of the primary's access step (issue #8): a fake PE 3 primary answers psql runs from its files as
// PostgreSQL would (pg_hba_file_rules from pg_hba.conf on disk, listen_addresses in effect until a restart), and
// every call that would be one SSH round trip is counted.

const HBA = '/opt/puppet/var/lib/pgsql/9.2/data/pg_hba.conf';
const CONF = '/opt/puppet/var/lib/pgsql/9.2/data/postgresql.conf';
const DATA = '/opt/puppet/var/lib/pgsql/9.2/data';

interface Call {
  op: 'exec' | 'readFile' | 'writeFile' | 'writeFiles' | 'stat' | 'exists' | 'remove' | 'mkdir';
  what: string;
  opts?: ExecOptions;
}

class FakePrimary implements Host {
  readonly name = 'primary.test';
  readonly redactor = new Redactor();
  readonly actsAsRoot = false;
  readonly calls: Call[] = [];
  readonly files = new Map<string, string>();
  listen: string;
  fenced = false;
  /** sudo with requiretty: the command's output arrives with CRLF */
  pty = false;
  restarts = 0;
  reloads = 0;
  /** users whose password is an md5 hash */
  md5 = new Set<string>();

  constructor(hba: string, conf: string) {
    this.files.set(HBA, hba);
    this.files.set(CONF, conf);
    this.listen = parsePostgresqlConf(conf, CONF).get('listen_addresses') ?? 'localhost';
  }

  count(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const c of this.calls) out[c.op] = (out[c.op] ?? 0) + 1;
    return out;
  }

  reset(): void {
    this.calls.length = 0;
  }

  rules(): HbaFileRule[] {
    return parsePgHba(this.files.get(HBA)!, HBA)
      .records()
      .map((r) => {
        const [ip, bits] = (r.address ?? '').split('/');
        const bad = r.address !== undefined && r.address !== 'all' && !(isIP(ip ?? '') && /^\d+$/.test(bits ?? ''));
        return {
          line_number: r.line,
          type: r.type,
          database: [r.database],
          user_name: [r.user],
          address: r.type === 'local' ? null : ip === 'all' ? 'all' : ip!,
          netmask:
            bits === '32'
              ? '255.255.255.255'
              : bits === '128'
                ? 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'
                : bits
                  ? '255.255.255.0'
                  : null,
          auth_method: r.method,
          error: bad ? `invalid IP address "${r.address}"` : null,
        };
      });
  }

  fileListen(): string {
    return parsePostgresqlConf(this.files.get(CONF)!, CONF).get('listen_addresses') ?? 'localhost';
  }

  async exec(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const ok = (stdout: string, code = 0): ExecResult => ({ code, stdout, stderr: '', ms: 1 });
    if (argv[0] === 'sh' && argv[1] === '-c' && String(argv[2]).includes('fenced()')) {
      this.calls.push({ op: 'exec', what: 'restart', opts });
      const check = argv[12];
      if (check && this.rules().some((r) => r.error))
        return ok(`#hba\n${JSON.stringify(this.rules().filter((r) => r.error))}\n`, 12);
      if (this.fenced) return ok(`#fenced\n{"at":"2024-01-01T00:00:00Z","newPrimary":"secondary1.test"}\n`, 13);
      this.restarts++;
      this.listen = this.fileListen();
      const out = `#state\n${JSON.stringify({ rules: this.rules(), listen: this.listen })}\n`;
      return ok(this.pty ? out.replace(/\n/g, '\r\n') : out);
    }
    const psql = argv.find((a) => a.endsWith('/psql'));
    if (!psql) throw new Error(`unexpected command ${argv.join(' ')}`);
    const sql = String(opts.stdin ?? '');
    if (sql.includes('pg_reload_conf') && sql.includes('bool_and')) {
      this.calls.push({ op: 'exec', what: 'check+reload', opts });
      const rules = this.rules();
      const good = rules.every((r) => !r.error);
      if (good) this.reloads++;
      return ok(JSON.stringify([{ rules, reloaded: good }]));
    }
    if (sql.includes('pg_reload_conf')) {
      this.calls.push({ op: 'exec', what: 'reload', opts });
      this.reloads++;
      return ok('');
    }
    if (sql.includes('pg_settings') && sql.includes('pg_hba_file_rules')) {
      this.calls.push({ op: 'exec', what: 'state', opts });
      const users = [...sql.matchAll(/IN \(([^)]*)\)/g)].flatMap((m) =>
        m[1]!.split(',').map((u) => u.trim().replace(/^'|'$/g, '')),
      );
      const pending = this.fileListen() !== this.listen;
      return ok(
        JSON.stringify([
          {
            rules: this.rules(),
            roles: users.map((u) => ({ rolname: u, scram: !this.md5.has(u) })),
            listen: { setting: this.listen, pending_restart: pending, source: 'configuration file', sourcefile: CONF },
          },
        ]),
      );
    }
    throw new Error(`unexpected SQL ${sql}`);
  }

  async spawn(): Promise<never> {
    throw new Error('spawn is not expected');
  }

  async readFile(path: string): Promise<Buffer> {
    this.calls.push({ op: 'readFile', what: path });
    const t = this.files.get(path);
    if (t === undefined) throw new Error(`no ${path}`);
    return Buffer.from(t);
  }

  private put(path: string, data: string | Buffer): WriteResult {
    const s = data.toString();
    const changed = this.files.get(path) !== s;
    this.files.set(path, s);
    return { path, changed };
  }

  async writeFile(path: string, data: string | Buffer, _opts?: WriteOptions): Promise<WriteResult> {
    this.calls.push({ op: 'writeFile', what: path });
    return this.put(path, data);
  }

  /** As SshHost: every file in one command. */
  async writeFiles(files: readonly BatchWrite[]): Promise<WriteResult[]> {
    this.calls.push({ op: 'writeFiles', what: files.map((f) => f.path).join(' ') });
    return files.map((f) => this.put(f.path, f.data));
  }

  readFiles(paths: readonly string[], opts?: ReadFilesOptions) {
    return readFilesOneByOne(this, paths, opts);
  }

  async stat(path: string): Promise<FileStat | undefined> {
    this.calls.push({ op: 'stat', what: path });
    const t = this.files.get(path);
    return t === undefined
      ? undefined
      : { size: t.length, mode: 0o640, uid: 0, gid: 0, isFile: true, isDirectory: false, isSymlink: false, mtimeMs: 0 };
  }

  async exists(path: string): Promise<boolean> {
    this.calls.push({ op: 'exists', what: path });
    return this.files.has(path);
  }

  async remove(path: string): Promise<boolean> {
    this.calls.push({ op: 'remove', what: path });
    return this.files.delete(path);
  }

  async mkdir(path: string): Promise<void> {
    this.calls.push({ op: 'mkdir', what: path });
  }

  forward(): never {
    throw new Error('forward is not expected');
  }

  connect(): never {
    throw new Error('connect is not expected');
  }

  async close(): Promise<void> {}
}

// PE 3's pe-postgresql: local peer rules, localhost only
const hba0 = 'local all pe-postgres ident\nhost all all 127.0.0.1/32 md5\n';
const conf0 = "# pe-postgresql\nlisten_addresses = 'localhost'\nport = 5432\n";

function primary(host: Host): PgInstance {
  return {
    host,
    binDir: '/opt/puppet/bin',
    dataDir: DATA,
    confFile: CONF,
    hbaFile: HBA,
    osUser: 'pe-postgres',
    port: 5432,
    socketDir: '/tmp',
    control: {
      start: ['service', 'pe-postgresql', 'start'],
      stop: ['service', 'pe-postgresql', 'stop'],
      promote: ['runuser', '-u', 'pe-postgres', '--', '/opt/puppet/bin/pg_ctl', 'promote'],
    },
  };
}

const grants = [
  { database: 'pe-puppetdb', user: 'pe-puppetdb' },
  { database: 'console', user: 'console' },
  { database: 'console_auth', user: 'console_auth' },
];
const targets = [{ address: '10.0.0.12', grants }];

/** Every command declares what it changes: readOnly, or the files it may change (a file cache then keeps the rest). */
function declared(h: FakePrimary): void {
  for (const c of h.calls.filter((x) => x.op === 'exec'))
    expect(c.opts?.readOnly === true || Array.isArray(c.opts?.changesFiles), c.what).toBe(true);
}

describe('primary.db-access round trips (check, apply with restart, re-check)', () => {
  it('first join: check 1, apply 5 (2 of them file reads a run cache answers), re-check 1; the restart is one command', async () => {
    const h = new FakePrimary(hba0, conf0);
    h.md5.add('console_auth');
    const P = primary(h);

    expect(await accessGranted(P, '10.0.0.12', grants, { listen: '*' })).toBe(false);
    expect(h.count()).toEqual({ exec: 1 });
    expect(h.calls[0]!.opts?.readOnly).toBe(true);

    h.reset();
    const r = await grantAccessMany(P, targets, { restart: true });
    expect(r).toMatchObject({ hbaChanged: true, listenChanged: true, restartRequired: false, dryRun: false });
    expect(r.confirmedLines).toEqual([1, 2, 3]);
    expect(r.records.map((x) => x.method)).toEqual(['scram-sha-256', 'scram-sha-256', 'md5']);
    // state (1 psql), pg_hba.conf and postgresql.conf (2 reads), both files in one write, check+restart+confirm (1 command)
    expect(h.count()).toEqual({ exec: 2, readFile: 2, writeFiles: 1 });
    expect(h.calls.map((c) => c.what)).toEqual(['state', HBA, CONF, `${HBA} ${CONF}`, 'restart']);
    declared(h);
    const restart = h.calls.find((c) => c.what === 'restart')!;
    expect(restart.opts?.changesFiles).toEqual([`${DATA}/postmaster.pid`, `${DATA}/postmaster.opts`, '/tmp']);
    expect(h.restarts).toBe(1);
    // records before the first existing one; listen_addresses in effect
    expect(h.files.get(HBA)!.split('\n').slice(0, 4)).toEqual([
      'host pe-puppetdb pe-puppetdb 10.0.0.12/32 scram-sha-256',
      'host console console 10.0.0.12/32 scram-sha-256',
      'host console_auth console_auth 10.0.0.12/32 md5',
      'local all pe-postgres ident',
    ]);
    expect(h.listen).toBe('*');

    h.reset();
    expect(await accessGranted(P, '10.0.0.12', grants, { listen: '*' })).toBe(true);
    expect(h.count()).toEqual({ exec: 1 });
  });

  it('nothing to do: the apply is one read-only psql run (its rules are the confirmation)', async () => {
    const h = new FakePrimary(hba0, conf0);
    const P = primary(h);
    await grantAccessMany(P, targets, { restart: true });
    h.reset();
    const r = await grantAccessMany(P, targets, { restart: true });
    expect(r).toMatchObject({ hbaChanged: false, listenChanged: false, restartRequired: false });
    expect(r.confirmedLines).toEqual([1, 2, 3]);
    expect(h.count()).toEqual({ exec: 1 });
    expect(h.calls[0]!.opts?.readOnly).toBe(true);
  });

  it('a second secondary (listening already): state, one read, one write, one psql that checks, reloads and confirms', async () => {
    const h = new FakePrimary(hba0, conf0);
    const P = primary(h);
    await grantAccessMany(P, targets, { restart: true });
    h.reset();
    const r = await grantAccessMany(P, [{ address: '10.0.0.13', grants }], { restart: true });
    expect(r).toMatchObject({ hbaChanged: true, listenChanged: false, restartRequired: false });
    expect(h.count()).toEqual({ exec: 2, readFile: 1, writeFile: 1 });
    expect(h.calls.map((c) => c.what)).toEqual(['state', HBA, HBA, 'check+reload']);
    expect(h.calls[3]!.opts?.changesFiles).toEqual([]);
    expect(h.restarts).toBe(1);
    expect(h.reloads).toBe(1);
  });

  it('without restart: listen_addresses written, reloaded with pg_hba.conf, restartRequired reported', async () => {
    const h = new FakePrimary(hba0, conf0);
    const r = await grantAccessMany(primary(h), targets);
    expect(r).toMatchObject({ hbaChanged: true, listenChanged: true, restartRequired: true });
    expect(h.count()).toEqual({ exec: 2, readFile: 2, writeFiles: 1 });
    expect(h.restarts).toBe(0);
    declared(h);
    // the check sees that a restart is still owed
    expect(await accessGranted(primary(h), '10.0.0.12', grants)).toBe(true);
    expect(await accessGranted(primary(h), '10.0.0.12', grants, { listen: '*' })).toBe(false);
  });

  it('the answer of the restart arrives through a sudo pty (CRLF) and is read all the same', async () => {
    const h = new FakePrimary(hba0, conf0);
    h.pty = true;
    const r = await grantAccessMany(primary(h), targets, { restart: true });
    expect(r.confirmedLines).toEqual([1, 2, 3]);
    expect(h.restarts).toBe(1);
  });

  it('a fenced instance is not restarted (E_DB_FENCED, with when and who)', async () => {
    const h = new FakePrimary(hba0, conf0);
    h.fenced = true;
    const e = (await grantAccessMany(primary(h), targets, { restart: true }).catch((x: unknown) => x)) as DbFencedError;
    expect(e).toBeInstanceOf(DbFencedError);
    expect(e.host).toBe('primary.test');
    expect(e.message).toContain('secondary1.test');
    expect(h.restarts).toBe(0);
  });

  it('a pg_hba.conf PostgreSQL cannot parse: both files put back, nothing restarted, the lines named', async () => {
    const bad = `${hba0}host all all 999.1.2.3/32 md5\n`;
    const h = new FakePrimary(bad, conf0);
    const e = (await grantAccessMany(primary(h), targets, { restart: true }).catch((x: unknown) => x)) as DbConfigError;
    expect(e).toBeInstanceOf(DbConfigError);
    expect(e.message).toMatch(/line \d+: invalid IP address/);
    expect(e.message).toContain('not restarted');
    expect(h.files.get(HBA)).toBe(bad);
    expect(h.files.get(CONF)).toBe(conf0);
    expect(h.restarts).toBe(0);
  });

  it('a dry run plans both writes, the stop and the start, and changes nothing', async () => {
    const h = new FakePrimary(hba0, conf0);
    const dry = new DryRunHost(h);
    const r = await grantAccessMany(primary(dry), targets, { restart: true });
    expect(r).toMatchObject({ dryRun: true, hbaChanged: true, listenChanged: true, confirmedLines: [] });
    expect(
      dry.mutations.map((m) => (m.kind === 'exec' ? m.argv.join(' ') : `${m.kind} ${'path' in m ? m.path : ''}`)),
    ).toEqual([`write ${HBA}`, `write ${CONF}`, 'service pe-postgresql stop', 'service pe-postgresql start']);
    expect(h.files.get(HBA)).toBe(hba0);
    expect(h.files.get(CONF)).toBe(conf0);
    expect(h.restarts + h.reloads).toBe(0);
  });

  it('writeFiles of pe-host takes the batch path of a host that has one', async () => {
    const h = new FakePrimary(hba0, conf0);
    await writeFiles(h, [
      { path: HBA, data: hba0 },
      { path: CONF, data: conf0 },
    ]);
    expect(h.count()).toEqual({ writeFiles: 1 });
  });
});
