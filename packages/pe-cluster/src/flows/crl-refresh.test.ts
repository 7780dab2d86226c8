import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OpensslAgent, OpensslCa } from '@pe-stack/pe-certs';
import { LocalHost, type ExecOptions, type Host } from '@pe-stack/pe-host';
import { runFlow } from '@pe-stack/pe-steps';
import { jailedHost } from '@pe-stack/testkit/jail';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InventoryError, parseInventory, type Inventory } from '../index.js';
import {
  crlRefreshConfig,
  crlRefreshInstallStep,
  crlRefreshPaths,
  crlRefreshSupported,
  crlRefreshUnit,
  parseCrlRefreshStatus,
} from './crl-refresh.js';
import { joinFlow } from './join.js';
import { collectStatus, formatStatus, type MasterCrl } from './status.js';

// The refresh as join installs it (config, unit, the install step on jailed hosts), the script itself against
// real CRLs from an openssl CA (verification, downgrade refusal, atomic swap, reload only when needed), and what
// `status` makes of every master's CRL copy.

const SCRIPT = fileURLToPath(new URL('../../assets/pe-crl-refresh.sh', import.meta.url));
let root: string;

const inventoryText = (layout: 'debian' | 'pe3', extra = '') => `cluster: cr
layout: ${layout}
layout_overrides:
  commands:
    serviceStatus: ['true']
primary_cname: ca.test
general_cname: puppet.test
${extra}masters:
  - {name: primary.test, role: primary, address: 10.9.0.1}
  - {name: s1.test, role: secondary, address: 10.9.0.2}
  - {name: s2.test, role: secondary, address: 10.9.0.3}
`;
const inventory = (layout: 'debian' | 'pe3' = 'debian', extra = ''): Inventory =>
  parseInventory(inventoryText(layout, extra), join(root, 'inventory.yaml'), { env: {}, home: root });

async function put(path: string, content: string): Promise<void> {
  await fs.mkdir(dirname(path), { recursive: true });
  await fs.writeFile(path, content);
}

// ---- a CA, a host certificate, an agent to revoke ----
let ca: OpensslCa;
let crl1: string;
let crl2: string;
let otherCrl: string;
const ssl = () => join(root, 'ssl');

beforeAll(async () => {
  root = await fs.mkdtemp(join(tmpdir(), 'pe-crl-refresh-'));
  const local = new LocalHost();
  ca = await OpensslCa.init(local, join(root, 'ca'), { key: { type: 'ec' } });
  for (const name of ['s1.test', 'agent1.test']) {
    const agent = new OpensslAgent(ca, ssl(), { key: { type: 'ec' } });
    await agent.submit(local, name, [name]);
    await ca.sign(name, { allowed: [name] });
    await agent.fetch(local, name);
  }
  crl1 = await ca.crl();
  await ca.revoke('agent1.test');
  crl2 = await ca.crl();
  const other = await OpensslCa.init(local, join(root, 'other-ca'), { key: { type: 'ec' } });
  otherCrl = await other.crl();
}, 60_000);
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

describe('pe-crl-refresh as join installs it', () => {
  it('config: the primary behind primary_cname, the host certificate, the CRL path, the interval, the reload', () => {
    const inv = inventory('debian', 'crl_refresh_interval: 20\n');
    const conf = crlRefreshConfig(inv, inv.masters[1]!);
    expect(conf.split('\n').filter((l) => !l.startsWith('#'))).toEqual([
      'SERVER=ca.test',
      'PORT=8140',
      'URL_PATH=/puppet-ca/v1/certificate_revocation_list/ca',
      'CA_CERT=/var/lib/puppet/ssl/certs/ca.pem',
      'HOST_CERT=/var/lib/puppet/ssl/certs/s1.test.pem',
      'HOST_KEY=/var/lib/puppet/ssl/private_keys/s1.test.pem',
      'CRL=/var/lib/puppet/ssl/crl.pem',
      'INTERVAL=20',
      'STATE_DIR=/var/local/pe-cluster',
      'SERVICES_D=/etc/puppet/puppetserver/services.d',
      'RELOAD_ARG=systemctl',
      'RELOAD_ARG=reload',
      'RELOAD_ARG=puppetserver',
      'CONNECT_TIMEOUT=5',
      'MAX_TIME=30',
      '',
    ]);
    // the default interval: 300 s
    expect(crlRefreshConfig(inventory(), inventory().masters[2]!)).toContain('\nINTERVAL=300\n');
  });

  it('the inventory takes crl_refresh_interval as whole seconds, 5 to 86400', () => {
    expect(inventory('debian', 'crl_refresh_interval: 45\n').crlRefreshIntervalS).toBe(45);
    expect(inventory().crlRefreshIntervalS).toBeUndefined();
    for (const bad of ['2', '1.5', 'soon', '100000']) {
      let err: unknown;
      try {
        inventory('debian', `crl_refresh_interval: ${bad}\n`);
      } catch (e) {
        err = e;
      }
      expect(err, bad).toBeInstanceOf(InventoryError);
      expect((err as InventoryError).issues[0]).toMatchObject({ key: 'crl_refresh_interval', line: 8 });
    }
  });

  it('unit: the loop, restarted when it dies, after puppetserver', () => {
    const unit = crlRefreshUnit(inventory());
    expect(unit).toContain(
      '\nExecStart=/usr/local/sbin/pe-crl-refresh --config /etc/puppet/pe-crl-refresh.conf loop\n',
    );
    expect(unit).toMatch(/\nRestart=always\n/);
    expect(unit).toMatch(/\nAfter=network-online\.target puppetserver\.service\n/);
    expect(unit).toMatch(/\nWantedBy=multi-user\.target\n/);
  });

  it('is installed on systemd layouts only: join has a crl-refresh group on debian, none on pe3', async () => {
    expect(crlRefreshSupported(inventory().layout)).toBe(true);
    expect(crlRefreshSupported(inventory('pe3').layout)).toBe(false);
    for (const layout of ['debian', 'pe3'] as const) {
      const inv = inventory(layout);
      await put(
        join(root, 'jail-join', 'primary.test', inv.layout.files.mcollectiveServerCfg!.path),
        'plugin.psk = x\n',
      );
      const hosts = new Map<string, Host>();
      const host = (n: string) => hosts.get(n) ?? hosts.set(n, jailedHost(join(root, 'jail-join'), n)).get(n)!;
      const flow = await joinFlow({ inventory: inv, host }, inv.masters.slice(1));
      const groups = flow.items.flatMap((i) => ('group' in i ? [i] : []));
      const refresh = groups.find((g) => g.group === 'crl-refresh');
      if (layout === 'pe3') expect(refresh).toBeUndefined();
      else {
        expect(groups.at(-1)).toBe(refresh);
        expect(refresh!.lanes.map((l) => l.map((s) => `${s.id}@${s.host}`))).toEqual([
          ['crl-refresh@s1.test'],
          ['crl-refresh@s2.test'],
        ]);
      }
    }
  });

  it('the install step writes script, config and unit, starts the unit; a rerun is done; a new interval restarts it', async () => {
    const calls: string[][] = [];
    let active = true;
    const jail = jailedHost(join(root, 'jail-install'), 's1.test', { calls });
    // `systemctl is-active` answers as `active` says; every other command is recorded and succeeds
    const host = new Proxy(jail, {
      get(t, prop, recv) {
        if (prop !== 'exec') return Reflect.get(t, prop, recv) as unknown;
        return (argv: string[], o?: ExecOptions) =>
          !active && argv.join(' ').includes('is-active')
            ? Promise.resolve({ code: 3, stdout: '', stderr: '', ms: 0 })
            : t.exec(argv, o);
      },
    });
    const run = (inv: Inventory) =>
      runFlow({ name: 'join', items: [crlRefreshInstallStep(inv, inv.masters[1]!)] }, { host: () => host });
    const inv = inventory('debian', 'crl_refresh_interval: 20\n');
    const first = await run(inv);
    expect(first.steps.map((s) => s.status)).toEqual(['done']);
    const p = crlRefreshPaths(inv.layout);
    const inJail = (path: string) => join(root, 'jail-install', 's1.test', path);
    expect(await fs.readFile(inJail(p.script), 'utf8')).toBe(await fs.readFile(SCRIPT, 'utf8'));
    expect((await fs.stat(inJail(p.script))).mode & 0o777).toBe(0o755);
    expect(await fs.readFile(inJail(p.config), 'utf8')).toContain('\nINTERVAL=20\n');
    expect(await fs.readFile(inJail(p.unit), 'utf8')).toContain('ExecStart=');
    const systemctl = () => calls.map((c) => c.slice(1).join(' ')).filter((c) => !c.includes('is-active'));
    expect(systemctl()).toEqual([
      'sh -c systemctl daemon-reload && systemctl enable pe-crl-refresh.service && systemctl restart pe-crl-refresh.service',
    ]);
    calls.length = 0;
    expect((await run(inv)).steps.map((s) => s.status)).toEqual(['skipped']);
    expect(systemctl()).toEqual([]);
    // stopped: started again, nothing rewritten
    active = false;
    const again = await run(inv).finally(() => (active = true));
    expect(again.steps[0]).toMatchObject({ status: 'failed' }); // the re-check still sees it stopped
    expect(systemctl()).toEqual(['systemctl enable --now pe-crl-refresh.service']);
    calls.length = 0;
    // a new interval: the config rewritten and the unit restarted
    const changed = await run(inventory('debian', 'crl_refresh_interval: 60\n'));
    expect(changed.steps.map((s) => s.status)).toEqual(['done']);
    expect(await fs.readFile(inJail(p.config), 'utf8')).toContain('\nINTERVAL=60\n');
    expect(systemctl()).toHaveLength(1);
    expect(systemctl()[0]).toContain('systemctl restart pe-crl-refresh.service');
  });
});

// ---- the script against real CRLs ----

interface Run {
  code: number;
  stderr: string;
}
function script(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile('bash', [SCRIPT, ...args], { timeout: 30_000 }, (err, _stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stderr }),
    );
  });
}

describe('pe-crl-refresh (the script): verify, refuse a downgrade, swap atomically, reload only when needed', () => {
  let dir: string;
  let conf: string;
  const crlPath = () => join(dir, 'web', 'crl.pem');
  const reloaded = () => join(dir, 'reloaded');
  const install = async (pem: string) => {
    const f = join(dir, 'incoming.pem');
    await fs.writeFile(f, pem);
    return script(['--config', conf, 'install', f]);
  };
  const status = async () => parseCrlRefreshStatus(await fs.readFile(join(dir, 'state', 'crl-refresh.status'), 'utf8'));

  beforeAll(async () => {
    dir = join(root, 'script');
    await put(crlPath(), crl1);
    await fs.chmod(crlPath(), 0o640);
    await fs.mkdir(join(dir, 'services.d'), { recursive: true });
    conf = join(dir, 'refresh.conf');
    await fs.writeFile(
      conf,
      [
        '# test',
        'SERVER=ca.test',
        `CA_CERT=${ssl()}/certs/ca.pem`,
        `HOST_CERT=${ssl()}/certs/s1.test.pem`,
        `HOST_KEY=${ssl()}/private_keys/s1.test.pem`,
        `CRL=${crlPath()}`,
        `STATE_DIR=${join(dir, 'state')}`,
        `SERVICES_D=${join(dir, 'services.d')}`,
        'RELOAD_ARG=touch',
        `RELOAD_ARG=${reloaded()}`,
        '',
      ].join('\n'),
    );
  });

  it('a newer CRL of the CA replaces the copy (mode kept), then the web server is reloaded', async () => {
    const r = await install(crl2);
    expect(r.stderr).toMatch(/replaced by CRL number 2 from ca\.test \(was 1\)/);
    expect(r.code).toBe(0);
    expect(await fs.readFile(crlPath(), 'utf8')).toBe(crl2);
    expect((await fs.stat(crlPath())).mode & 0o777).toBe(0o640);
    await fs.access(reloaded());
    expect(await status()).toMatchObject({ crlNumber: '2', server: 'ca.test' });
    expect((await status()).lastError).toBeUndefined();
    // no temporary file is left beside it
    expect(await fs.readdir(join(dir, 'web'))).toEqual(['crl.pem']);
  });

  it('the same CRL again: nothing written, no reload', async () => {
    await fs.rm(reloaded(), { force: true });
    const before = (await fs.stat(crlPath())).ino;
    expect((await install(crl2)).code).toBe(0);
    expect((await fs.stat(crlPath())).ino).toBe(before);
    await expect(fs.access(reloaded())).rejects.toThrow();
  });

  it('refuses an older CRL (a lower CRL number) and a CRL of another CA; the copy stays', async () => {
    const older = await install(crl1);
    expect(older.code).toBe(1);
    expect(older.stderr).toMatch(/number 1\) is older than the one in place \(number 2\): kept/);
    const foreign = await install(otherCrl);
    expect(foreign.code).toBe(1);
    expect(foreign.stderr).toMatch(/does not verify against/);
    expect((await install('not a CRL\n')).stderr).toMatch(/is not a PEM CRL/);
    expect(await fs.readFile(crlPath(), 'utf8')).toBe(crl2);
    expect((await status()).lastError).toMatch(/is not a PEM CRL/);
  });

  it('no reload when puppetserver watches the file itself (filesystem-watch-service in services.d)', async () => {
    await put(crlPath(), crl1);
    await fs.rm(reloaded(), { force: true });
    await fs.writeFile(
      join(dir, 'services.d', 'ca.cfg'),
      '#puppetlabs.services.ca.certificate-authority-service/certificate-authority-service\npuppetlabs.trapperkeeper.services.watcher.filesystem-watch-service/filesystem-watch-service\n',
    );
    const r = await install(crl2);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/reloads the CRL itself/);
    await expect(fs.access(reloaded())).rejects.toThrow();
    expect(await fs.readFile(crlPath(), 'utf8')).toBe(crl2);
  });

  it('a fetch that fails is recorded, and `status` prints the results', async () => {
    await fs.appendFile(conf, 'PORT=1\nCONNECT_TIMEOUT=1\nMAX_TIME=2\nSERVER=127.0.0.1\n');
    const r = await script(['--config', conf, 'once']);
    expect(r.code).toBe(1);
    expect((await status()).lastError).toMatch(/^fetching the CRL from https:\/\/127\.0\.0\.1:1\/puppet-ca\/v1\//);
    expect((await script(['--config', conf, 'status'])).code).toBe(0);
  });
});

// ---- status: every master's copy against the CA's ----

describe('status: CRL number, age and agreement with the CA per master', () => {
  it('says which copy is the CA current one, which is behind, and whose refresh fails', async () => {
    const inv = inventory('debian', 'crl_refresh_interval: 30\n');
    const jailRoot = join(root, 'jail-status');
    const at = (h: string, p: string) => join(jailRoot, h, p);
    const CA_ON =
      'puppetlabs.services.ca.certificate-authority-service/certificate-authority-service\n#puppetlabs.services.ca.certificate-authority-disabled-service/certificate-authority-disabled-service\n';
    const CA_OFF =
      '#puppetlabs.services.ca.certificate-authority-service/certificate-authority-service\npuppetlabs.services.ca.certificate-authority-disabled-service/certificate-authority-disabled-service\n';
    const hostCrl = inv.layout.files.hostCrl!.path;
    await put(at('primary.test', inv.layout.files.caCrl!.path), crl2);
    await put(at('primary.test', hostCrl), crl2);
    await put(at('primary.test', inv.layout.files.caCfg!.path), CA_ON);
    await put(at('s1.test', hostCrl), crl2);
    await put(at('s2.test', hostCrl), crl1);
    for (const s of ['s1.test', 's2.test']) await put(at(s, inv.layout.files.caCfg!.path), CA_OFF);
    const now = new Date(Date.now() + 3600_000);
    const recent = new Date(now.getTime() - 10_000).toISOString();
    const old = new Date(now.getTime() - 1800_000).toISOString();
    await put(
      at('s1.test', '/var/local/pe-cluster/crl-refresh.status'),
      `STARTED=${old}\nLAST_CHECK=${recent}\nLAST_OK=${recent}\nLAST_CHANGE=${old}\nCRL_NUMBER=02\nSERVER=ca.test\nLAST_ERROR=\n`,
    );
    await put(
      at('s2.test', '/var/local/pe-cluster/crl-refresh.status'),
      `STARTED=${old}\nLAST_CHECK=${recent}\nLAST_OK=${old}\nLAST_CHANGE=\nCRL_NUMBER=01\nSERVER=ca.test\nLAST_ERROR=fetching the CRL from https://ca.test:8140/puppet-ca/v1/certificate_revocation_list/ca failed: curl: (35) alert\n`,
    );
    const hosts = new Map<string, Host>();
    const host = (n: string) => hosts.get(n) ?? hosts.set(n, jailedHost(jailRoot, n, { calls: [] })).get(n)!;
    const r = await collectStatus({ inventory: inv, host }, { now });
    expect(r.crl).toMatchObject({ host: 'primary.test', number: '2', refreshIntervalS: 30 });
    const crl = (name: string) => r.masters.find((m) => m.name === name)!.crl as MasterCrl;
    expect(crl('primary.test')).toMatchObject({ number: '2', matchesPrimary: true });
    expect(crl('s1.test')).toMatchObject({
      number: '2',
      matchesPrimary: true,
      refresh: { lastOk: recent, crlNumber: '2', server: 'ca.test' },
    });
    expect(crl('s1.test').ageSeconds).toBeGreaterThan(3500);
    expect(crl('s2.test')).toMatchObject({ number: '1', matchesPrimary: false, refresh: { crlNumber: '1' } });
    const crlProblems = r.problems.filter((p) => /CRL/.test(p.message));
    expect(crlProblems.map((p) => `${p.host}: ${p.message}`)).toEqual([
      expect.stringMatching(
        /^s2\.test: its CRL \(number 1\) is behind the CA's \(number 2, issued .*\): certificates revoked since are still accepted here$/,
      ),
      expect.stringMatching(/^s2\.test: its CRL refresh has not succeeded since .* \(every 30 s\): fetching the CRL /),
    ]);
    const text = formatStatus(r);
    expect(text).toMatch(/\ns1\.test +secondary .* #2 60m = CA /);
    expect(text).toMatch(/\ns2\.test +secondary .* #1 60m BEHIND CA /);
    expect(text).toContain('CRL: #2 issued ');
    expect(text).toContain('refresh every 30 s');
    expect(text).toMatch(/refresh on s1\.test from ca\.test: ok, last check /);
    expect(text).toMatch(/refresh on s2\.test from ca\.test: FAILING \(last success /);
    // JSON: the same facts
    const json = JSON.parse(JSON.stringify(r)) as typeof r;
    expect(json.masters.map((m) => [(m.crl as MasterCrl).number, (m.crl as MasterCrl).matchesPrimary])).toEqual([
      ['2', true],
      ['2', true],
      ['1', false],
    ]);
  });

  it('a copy behind a CRL the CA issued moments ago is not yet a problem (the refresh has its interval)', async () => {
    const inv = inventory('debian', 'crl_refresh_interval: 30\n');
    const jailRoot = join(root, 'jail-status');
    const hosts = new Map<string, Host>();
    const host = (n: string) => hosts.get(n) ?? hosts.set(n, jailedHost(jailRoot, n, { calls: [] })).get(n)!;
    const r = await collectStatus({ inventory: inv, host }, { now: new Date() });
    expect((r.masters[2]!.crl as MasterCrl).matchesPrimary).toBe(false);
    expect(r.problems.filter((p) => /is behind the CA's/.test(p.message))).toEqual([]);
  });
});
