// pe-cluster join on the lab's pe3 profile (a PE 3.x simulator: PE 3's file
// tree, a real OpenSSL CA and PostgreSQL, recording stand-ins for puppet, rake,
// puppetdb-ssl-setup and the pe-* services). Two secondaries join one primary.
//
// The proof: after `join`, each file the seed's classes (trlinkin/pe_secondary:
// pe_secondary, ::console, ::console::database, ::console::event_inspector,
// ::console::puppetdb_authorization, ::puppetdb, ::mcollective) and the guide's
// manual steps change holds exactly the expected content, computed here from
// the file as it was before, line by line; every other line is untouched. The
// commands the simulator recorded follow the guide's steps in order.
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { useLab, type Lab } from '@pe-stack/lab';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
// a host set of its own: tools/lab's pe3 suite joins secondary1 by hand on the two-master pe3 lab
const HOSTS = ['primary', 'secondary1', 'secondary2'];
const SECONDARIES = ['secondary1.lab.test', 'secondary2.lab.test'];
const MASTERS = ['primary.lab.test', ...SECONDARIES];
const CNAME = 'master.lab.test';
const DASH = '/opt/puppet/share/puppet-dashboard/certs';
const RAKE = ['-f', '/opt/puppet/share/puppet-dashboard/Rakefile', 'RAILS_ENV=production'];

const F = {
  puppetConf: '/etc/puppetlabs/puppet/puppet.conf',
  puppetmaster: '/etc/puppetlabs/httpd/conf.d/puppetmaster.conf',
  sitePp: '/etc/puppetlabs/puppet/manifests/site.pp',
  settings: '/etc/puppetlabs/puppet-dashboard/settings.yml',
  vhost: '/etc/puppetlabs/httpd/conf.d/puppetdashboard.conf',
  inspector: '/opt/puppet/share/event-inspector/config/config.yml',
  consoleDb: '/etc/puppetlabs/puppet-dashboard/database.yml',
  authDb: '/etc/puppetlabs/console-auth/database.yml',
  pdbIni: '/etc/puppetlabs/puppetdb/conf.d/database.ini',
  whitelist: '/etc/puppetlabs/puppetdb/certificate-whitelist',
  autosign: '/etc/puppetlabs/puppet/autosign.conf',
  pgHba: '/opt/puppet/var/lib/pgsql/9.2/data/pg_hba.conf',
  pgConf: '/opt/puppet/var/lib/pgsql/9.2/data/postgresql.conf',
  credentials: '/etc/puppetlabs/mcollective/credentials',
} as const;
const PKI = [
  'pe-internal-broker',
  'pe-internal-mcollective-servers',
  'pe-internal-peadmin-mcollective-client',
  'pe-internal-puppet-console-mcollective-client',
].flatMap((n) => ['certs', 'private_keys', 'public_keys'].map((d) => `/etc/puppetlabs/puppet/ssl/${d}/${n}.pem`));

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { timeout: 10 * 60_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        resolve({
          code: err ? (typeof err.code === 'number' ? err.code : 1) : 0,
          stdout,
          stderr,
          ms: performance.now() - t0,
        });
      },
    );
  });
}

/** Replace the value part of the one line that matches `re` (group 1 = everything before the value). */
function setLine(text: string, re: RegExp, value: string): string {
  const lines = text.split('\n');
  const hits = lines.map((l, i) => (re.test(l) ? i : -1)).filter((i) => i >= 0);
  expect(hits, `${re}`).toHaveLength(1);
  const i = hits[0]!;
  lines[i] = lines[i]!.replace(re, (_m, pre: string) => `${pre}${value}`);
  return lines.join('\n');
}
/** A new `key = value` line after the last key of an INI section, with that key's indentation. */
function addIniKey(text: string, section: string, key: string, value: string): string {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => l.trim() === `[${section}]`);
  expect(start, `[${section}]`).toBeGreaterThanOrEqual(0);
  let end = lines.findIndex((l, i) => i > start && /^\s*\[/.test(l));
  if (end < 0) end = lines.length;
  let last = start;
  for (let i = start + 1; i < end; i++) if (/^\s*[^#;\s][^=]*=/.test(lines[i]!)) last = i;
  const indent = /^(\s*)/.exec(lines[last]!)![1]!;
  lines.splice(last + 1, 0, `${indent}${key} = ${value}`);
  return lines.join('\n');
}
/** Entries appended to a one-entry-per-line file, skipping those present. */
function addLines(text: string, entries: string[]): string {
  const have = new Set(text.split('\n').map((l) => l.trim()));
  const add = entries.filter((e) => !have.has(e));
  return add.length === 0 ? text : `${text.replace(/\n?$/, '\n')}${add.join('\n')}\n`;
}
const valueOf = (text: string, re: RegExp) => re.exec(text)?.[1] ?? '';

describe('pe-cluster join on the pe3 simulator (PE 3.x file tree)', () => {
  let lab: Lab;
  let dir: string;
  let inventory: string;
  const before = new Map<string, string>();
  const path = (host: string, p: string) => `${lab.hostDir(host)}/fs${p}`;
  const read = (host: string, p: string) => readFileSync(path(host, p), 'utf8');
  const was = (host: string, p: string) => before.get(`${host}:${p}`)!;

  beforeAll(async () => {
    ({ lab } = await useLab({ profile: 'pe3', hosts: HOSTS, agents: 1 }));
    const files = await lab.writeInventory();
    dir = await mkdtemp(join(tmpdir(), 'pe-cluster-join-pe3-'));
    const inv = parse(readFileSync(files.inventory, 'utf8')) as { vars: Record<string, unknown> };
    expect(inv.vars).toMatchObject({ cluster: 'lab', layout: 'pe3' });
    inv.vars.journals = join(dir, 'journal');
    inv.vars.audit_log = join(dir, 'audit.log');
    inventory = join(dir, 'inventory.yaml');
    writeFileSync(inventory, stringify(inv));
    // the operator's part: three PE 3 masters' pools (PuppetDB 2 x 25, console and console-auth 4 x 5 each, per master)
    // cannot fit PostgreSQL's default max_connections 100 at any pool size (the join refuses with E_DB_BUDGET, as it
    // did here first); with 200 the join lowers maximum-pool-size to fit
    await lab.exec('primary', ['sed', '-i', 's/^max_connections = [0-9]*/max_connections = 200/', F.pgConf]);
    expect(read('primary', F.pgConf)).toMatch(/^max_connections = 200\b/m);
    await lab.exec('primary', ['service', 'pe-postgresql', 'restart'], { timeoutMs: 120_000 });
    for (const h of HOSTS) for (const p of [...Object.values(F), ...PKI]) before.set(`${h}:${p}`, read(h, p));
  });

  afterAll(async () => {
    if (lab)
      writeFileSync(`${lab.config.stateDir}/fixture.key`, 'joined by packages/pe-cluster/src/join-pe3.lab.test.ts');
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('joins secondary1 and secondary2 (exit 0); a second run changes nothing', async () => {
    const r = await cli(['-i', inventory, '--json', 'join']);
    if (r.code !== 0)
      process.stderr.write(
        r.stdout
          .split('\n')
          .filter((l) => l.includes('step-fail'))
          .join('\n'),
      );
    expect(r.code).toBe(0);
    const again = await cli(['-i', inventory, '--json', 'join']);
    expect(again.code).toBe(0);
    const res = JSON.parse(again.stdout.trim().split('\n').at(-1)!) as {
      steps: { status: string; mutations: unknown[] }[];
    };
    expect(res.steps.filter((s) => s.status !== 'skipped')).toEqual([]);
    process.stderr.write(`join-pe3.lab: join ${Math.round(r.ms)} ms, rerun ${Math.round(again.ms)} ms\n`);
  });

  it("pe_secondary: puppet.conf (ca = false, ca_server), pe-httpd's CRL, the filebucket, exactly", () => {
    for (const s of ['secondary1', 'secondary2']) {
      let conf = setLine(was(s, F.puppetConf), /^(\s*ca\s*=\s*)true$/, 'false');
      conf = addIniKey(conf, 'main', 'ca_server', CNAME);
      expect(read(s, F.puppetConf)).toBe(conf);
      expect(read(s, F.puppetmaster)).toBe(
        setLine(was(s, F.puppetmaster), /^(\s*SSLCARevocationFile\s+)\S+$/, '/etc/puppetlabs/puppet/ssl/crl.pem'),
      );
      expect(read(s, F.sitePp)).toBe(setLine(was(s, F.sitePp), /^(\s*server\s*=>\s*)'[^']*',$/, `'${CNAME}',`));
    }
  });

  it('pe_secondary::console and ::event_inspector: settings.yml, the console vhost and the event inspector name pe-internal-dashboard-<fqdn>, exactly', () => {
    for (const s of SECONDARIES) {
      const h = s.split('.')[0]!;
      const cn = `pe-internal-dashboard-${s}`;
      let settings = was(h, F.settings);
      settings = setLine(settings, /^(ca_server:\s*)\S+$/, `'${CNAME}'`);
      settings = setLine(settings, /^(cn_name:\s*)\S+$/, `'${cn}'`);
      for (const [k, suffix] of [
        ['ca_certificate_path', 'ca_cert'],
        ['ca_crl_path', 'ca_crl'],
        ['certificate_path', 'cert'],
        ['private_key_path', 'private_key'],
        ['public_key_path', 'public_key'],
      ] as const) {
        settings = setLine(settings, new RegExp(`^(${k}:\\s*)\\S+$`), `'certs/${cn}.${suffix}.pem'`);
      }
      expect(read(h, F.settings)).toBe(settings);
      let vhost = was(h, F.vhost);
      for (const [d, suffix] of [
        ['SSLCertificateFile', 'cert'],
        ['SSLCertificateKeyFile', 'private_key'],
        ['SSLCACertificateFile', 'ca_cert'],
        ['SSLCertificateChainFile', 'ca_cert'],
        ['SSLCARevocationFile', 'ca_crl'],
      ] as const) {
        vhost = setLine(vhost, new RegExp(`^(\\s*${d}\\s+)\\S+$`), `${DASH}/${cn}.${suffix}.pem`);
      }
      expect(read(h, F.vhost)).toBe(vhost);
      let inspector = was(h, F.inspector);
      for (const [k, suffix] of [
        ['certificate', 'cert'],
        ['private_key', 'private_key'],
        ['ca_certificate', 'ca_cert'],
      ] as const) {
        inspector = setLine(inspector, new RegExp(`^(\\s+${k}:\\s*)\\S+$`), `${DASH}/${cn}.${suffix}.pem`);
      }
      expect(read(h, F.inspector)).toBe(inspector);
      // the certificate files the settings name exist (rake cert:create_key_pair / request / retrieve)
      for (const suffix of ['ca_cert', 'ca_crl', 'cert', 'private_key', 'public_key'])
        expect(read(h, `${DASH}/${cn}.${suffix}.pem`)).toMatch(/^-----BEGIN /);
    }
  });

  it("pe_secondary::console::database and the PuppetDB database: the primary's host name and passwords, exactly", () => {
    const pw = (text: string, re: RegExp) => valueOf(text, re);
    const consolePw = pw(was('primary', F.consoleDb), /^\s*password:\s*(.+)$/m);
    const authPw = pw(was('primary', F.authDb), /^\s*password:\s*(.+)$/m);
    const pdbPw = pw(was('primary', F.pdbIni), /^password\s*=\s*(.+)$/m);
    expect([consolePw, authPw, pdbPw].every((p) => p.length > 4)).toBe(true);
    for (const h of ['secondary1', 'secondary2']) {
      let c = setLine(was(h, F.consoleDb), /^(\s*host:\s*)\S+$/, CNAME);
      c = setLine(c, /^(\s*password:\s*).+$/, consolePw);
      expect(read(h, F.consoleDb)).toBe(c);
      let a = setLine(was(h, F.authDb), /^(\s*host:\s*)\S+$/, CNAME);
      a = setLine(a, /^(\s*password:\s*).+$/, authPw);
      expect(read(h, F.authDb)).toBe(a);
      // the connection budget lowered maximum-pool-size to what the primary's max_connections holds (same value everywhere)
      const pool = valueOf(read(h, F.pdbIni), /^maximum-pool-size = (\d+)$/m);
      expect(Number(pool)).toBeGreaterThan(0);
      let d = setLine(was(h, F.pdbIni), /^(subname\s*=\s*)\S+$/, `//${CNAME}:5432/pe-puppetdb`);
      d = setLine(d, /^(password\s*=\s*).+$/, pdbPw);
      expect(read(h, F.pdbIni)).toBe(addIniKey(d, 'database', 'maximum-pool-size', pool));
      expect(valueOf(read('primary', F.pdbIni), /^maximum-pool-size = (\d+)$/m)).toBe(pool);
    }
  });

  it("pe_secondary::puppetdb and ::mcollective: every whitelist holds every master and every secondary console; the MCollective PKI and credentials are the primary's", () => {
    const entries = [...MASTERS, ...SECONDARIES.map((s) => `pe-internal-dashboard-${s}`)];
    for (const h of HOSTS) expect(read(h, F.whitelist)).toBe(addLines(was(h, F.whitelist), entries));
    for (const h of ['secondary1', 'secondary2']) {
      for (const p of [F.credentials, ...PKI]) {
        expect(read(h, p), p).toBe(was('primary', p));
        expect(read(h, p), p).not.toBe(was(h, p)); // each master had its own before
      }
    }
  });

  it("the primary: autosign for the consoles (guide step 2), listen_addresses = '*', one pg_hba record per secondary, database and user", () => {
    expect(read('primary', F.autosign)).toBe(
      addLines(
        was('primary', F.autosign),
        SECONDARIES.map((s) => `pe-internal-dashboard-${s}`),
      ),
    );
    expect(read('primary', F.pgConf)).toBe(
      setLine(was('primary', F.pgConf), /^(listen_addresses = )'localhost'$/, "'*'"),
    );
    const fields = (t: string) =>
      t
        .split('\n')
        .filter((l) => l.trim() && !l.trim().startsWith('#'))
        .map((l) => l.trim().split(/\s+/).join(' '));
    const old = fields(was('primary', F.pgHba));
    const now = fields(read('primary', F.pgHba));
    const ip = (h: string) => lab.host(h).ip;
    // PE 3's pe-postgresql stores md5 passwords: md5 records (a scram-sha-256 record would refuse them)
    const added = ['secondary2', 'secondary1'].flatMap((h) =>
      ['pe-puppetdb', 'console', 'console_auth'].map((db) => `host ${db} ${db} ${ip(h)}/32 md5`),
    );
    expect(now).toEqual([...added, ...old]);
  });

  it("records the guide's commands in the guide's order (steps 3, 4, 7, 9, 10, 11)", async () => {
    interface Call {
      time: string;
      tool: string;
      argv: string[];
    }
    const calls = async (h: string) =>
      (await lab.exec(h, ['cat', '/var/log/pe3-sim/calls.log'])).stdout
        .split('\n')
        .filter(Boolean)
        .map((l) => ({ ...(JSON.parse(l) as Call), host: h }));
    const restarts = async (h: string) =>
      (await lab.exec(h, ['cat', '/var/log/lab-systemctl.log'])).stdout
        .split('\n')
        .map((l) => /^(\S+) systemctl (stop|restart) (\S+)$/.exec(l))
        .filter((m): m is RegExpExecArray => m !== null)
        .map((m) => ({ time: m[1]!, tool: 'systemctl', argv: [m[2]!, m[3]!], host: h }));
    const primary = await calls('primary');
    const e = (x: string) => x.replace(/[.[\]]/g, '\\$&');
    const line = (c: { host: string; tool: string; argv: string[] }) =>
      `${c.host} ${c.tool} ${c.argv.filter((a) => !RAKE.includes(a)).join(' ')}`;
    /** The first entry of a log (in the log's own order, which is the host's order) that matches, by index. */
    const find = <T extends { host: string; tool: string; argv: string[] }>(log: T[], re: RegExp, from = 0): number => {
      const i = log.findIndex((c, k) => k >= from && re.test(line(c)));
      expect(i, `${re} in\n${log.map(line).join('\n')}`).toBeGreaterThanOrEqual(0);
      return i;
    };
    // the logs' clocks are the same machine's; the systemctl log has whole seconds
    const sec = (t: string) => t.slice(0, 19);
    for (const s of SECONDARIES) {
      const h = s.split('.')[0]!;
      const own = await calls(h);
      const svc = await restarts(h);
      // on the secondary, in order: step 3 request and fetch, step 4 console certificate, step 7, step 11
      const request = find(
        own,
        new RegExp(
          `^${h} puppet agent --test --certname ${e(s)} --server ${e(CNAME)} .*--dns_alt_names=${e(s)},puppet\\.lab\\.test,master\\.lab\\.test$`,
        ),
      );
      const fetch = find(
        own,
        new RegExp(`^${h} puppet agent --test --certname ${e(s)} --server ${e(CNAME)} .*--dns_alt_names=$`),
        request + 1,
      );
      // step 4: the console's three tasks, in the guide's order, in one rake process (one Rails start)
      const consoleCert = find(
        own,
        new RegExp(`^${h} rake cert:create_key_pair cert:request cert:retrieve$`),
        fetch + 1,
      );
      const pdbSsl = find(own, new RegExp(`^${h} puppetdb-ssl-setup`), consoleCert + 1);
      const self = find(own, new RegExp(`^${h} puppet agent --test --server ${e(s)}$`), pdbSsl + 1);
      // its services: step 3 stops the agent, step 10 restarts every PE service, the agent too
      const stop = find(svc, new RegExp(`^${h} systemctl stop pe-puppet$`));
      const httpd = find(svc, new RegExp(`^${h} systemctl restart pe-httpd$`), stop + 1);
      for (const x of ['pe-puppetdb', 'pe-memcached', 'pe-puppet-dashboard-workers'])
        find(svc, new RegExp(`^${h} systemctl restart ${x}$`), httpd);
      const agentBack = find(svc, new RegExp(`^${h} systemctl restart pe-puppet$`), httpd + 1);
      // on the primary: the signature (step 3) between request and fetch; the console groups (step 9) before the restarts
      const sign = primary[find(primary, new RegExp(`^primary puppet cert sign --allow-dns-alt-names ${e(s)}$`))]!;
      // each group the node lacks added (node:addgroup; never the same task twice in one rake process)
      const groups = primary[find(primary, new RegExp(`^primary rake .*node:addgroup\\[${e(s)},puppet_master\\]`))]!;
      const console = primary[find(primary, new RegExp(`^primary rake .*node:addgroup\\[${e(s)},puppet_console\\]`))]!;
      expect(sec(console.time) <= sec(svc[httpd]!.time)).toBe(true);
      expect(sec(svc[stop]!.time) <= sec(own[request]!.time)).toBe(true);
      expect(own[request]!.time < sign.time && sign.time < own[fetch]!.time).toBe(true);
      // puppetdb-ssl-setup logs whole seconds ("...:00Z" sorts after "...:00.822Z"): compared by the second
      expect(sec(own[pdbSsl]!.time) <= sec(groups.time) && sec(groups.time) <= sec(svc[httpd]!.time)).toBe(true);
      expect(sec(svc[agentBack]!.time) <= sec(own[self]!.time)).toBe(true);
    }
    // step 9's variables: every master, comma-separated, in the console's groups
    const vars = primary.flatMap((c) => c.argv).filter((a) => a.startsWith('nodegroup:variables[') && a.includes('='));
    expect(vars).toEqual(
      expect.arrayContaining([
        `nodegroup:variables[puppet_master,activemq_brokers=${MASTERS.join('\\\\\\,')}]`,
        `nodegroup:variables[mcollective,fact_stomp_server=${MASTERS.join('\\\\\\,')}]`,
      ]),
    );
    const listed = await lab.exec('primary', ['/opt/puppet/bin/rake', ...RAKE, 'nodegroup:variables[puppet_master]']);
    expect(listed.stdout).toContain(`activemq_brokers = ${MASTERS.join(',')}`);
  });
});
