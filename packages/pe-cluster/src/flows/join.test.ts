import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalHost, PeError, type Host } from '@pe-stack/pe-host';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { jailedHost, testInventory } from '@pe-stack/testkit/jail';
import { flowSteps, isGroup, runFlow, stepKey, type Flow, type Inventory } from '../index.js';
import { ensureStep, probe } from '@pe-stack/pe-steps';
import { joinFlow } from './join.js';

let root: string;
beforeEach(async () => {
  root = await fs.mkdtemp(join(tmpdir(), 'pe-join-'));
});
afterEach(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

function inventory(layout: 'pe3' | 'debian'): Inventory {
  return testInventory(root, layout, [
    '{name: primary.test, role: primary, address: 10.9.0.1}',
    '{name: s1.test, role: secondary, address: 10.9.0.2}',
    '{name: s2.test, role: secondary, address: 10.9.0.3}',
    '{name: s3.test, role: secondary, address: 10.9.0.4}',
  ]);
}

const jailed = (name: string): Host => jailedHost(root, name);

/** A Debian secondary's files the settings step edits, as packaged (webserver.conf: Debian 12's); site.pp as given. */
async function seedDebian(
  inv: Inventory,
  name: string,
  o: { webserver?: string; sitePp?: string } = {},
): Promise<void> {
  const put = async (path: string, text: string) => {
    await fs.mkdir(join(root, name, path, '..'), { recursive: true });
    await fs.writeFile(join(root, name, path), text);
  };
  await put(
    inv.layout.files.caCfg!.path,
    'puppetlabs.services.ca.certificate-authority-service/certificate-authority-service\n#puppetlabs.services.ca.certificate-authority-disabled-service/certificate-authority-disabled-service\n',
  );
  await put(inv.layout.files.puppetConf!.path, `[main]\nserver = ${name}\n`);
  await put(inv.layout.files.webServerConf!.path, o.webserver ?? 'webserver: {\n    ssl-port: 8140\n}\n');
  if (o.sitePp !== undefined) await put(inv.layout.files.sitePp!.path, o.sitePp);
}

async function build(layout: 'pe3' | 'debian', hosts: string[]): Promise<Flow> {
  const inv = inventory(layout);
  await fs.mkdir(join(root, 'primary.test', inv.layout.dirs.mcollectiveConfdir), { recursive: true });
  await fs.writeFile(
    join(root, 'primary.test', inv.layout.files.mcollectiveServerCfg!.path),
    'plugin.psk = a-real-shared-psk-value\n',
  );
  const cache = new Map<string, Host>();
  const ctx = { inventory: inv, host: (n: string) => cache.get(n) ?? cache.set(n, jailed(n)).get(n)! };
  return joinFlow(
    ctx,
    inv.masters.filter((m) => hosts.includes(m.name)),
  );
}

describe('join flow', () => {
  it('debian: the primary prepared, secondaries in parallel, MCollective on every master, then restart and validation', async () => {
    const flow = await build('debian', ['s1.test', 's2.test']);
    const heads = flow.items.map((i) => (isGroup(i) ? `group:${i.group}` : stepKey(i)));
    // preflight first: every master (also those not joining now) reachable and trusted, the primary's database credentials working
    expect(heads.slice(0, 5)).toEqual([
      'group:preflight',
      'preflight.database@primary.test',
      'primary.ca-alt-names@primary.test',
      'primary.db-access:s1.test@primary.test',
      'primary.db-access:s2.test@primary.test',
    ]);
    const pre = flow.items[0]!;
    expect(isGroup(pre) && pre.lanes.map((l) => stepKey(l[0]!))).toEqual([
      'preflight.ssh@primary.test',
      'preflight.ssh@s1.test',
      'preflight.ssh@s2.test',
      'preflight.ssh@s3.test',
    ]);
    const groups = flow.items.filter(isGroup).slice(1);
    expect(groups.map((g) => g.group)).toEqual(['secondaries', 'restart-validate', 'crl-refresh']);
    const afterGroup = flow.items[flow.items.indexOf(groups[0]!) + 1]!;
    expect(isGroup(afterGroup) ? '' : stepKey(afterGroup)).toBe('primary.connection-budget@primary.test');
    expect(groups[0]!.lanes.map((l) => l.map((s) => stepKey(s)))).toEqual(
      ['s1.test', 's2.test'].map((h) =>
        ['settings', 'certificate', 'database-settings', 'puppetdb-ssl'].map((id) => `${id}@${h}`),
      ),
    );
    expect(groups[1]!.lanes[0]!.map((s) => s.id)).toEqual(['restart', 'validate-self', 'validate-general']);
    // MCollective steps touch every master, including a secondary that is not joining now (its broker list changes)
    const mcoHosts = new Set(
      flow.items.filter((i) => !isGroup(i) && /mco/.test(i.id)).map((i) => (isGroup(i) ? '' : i.host)),
    );
    expect([...mcoHosts].sort()).toEqual(['primary.test', 's1.test', 's2.test', 's3.test']);
    expect(new Set(flowSteps(flow).map(stepKey)).size).toBe(flowSteps(flow).length);
  });

  it('pe3: autosign for the console certificate, the CA off in puppet.conf, a console certificate, the allowlist file', async () => {
    const flow = await build('pe3', ['s1.test']);
    const keys = flowSteps(flow).map(stepKey);
    expect(keys).toEqual(
      expect.arrayContaining(['primary.allowlists@primary.test', 'settings@s1.test', 'console-certificate@s1.test']),
    );
    const titles = new Map(flowSteps(flow).map((st) => [stepKey(st), st.title]));
    expect(titles.get('primary.allowlists@primary.test')).toMatch(/autosign\.conf.*PuppetDB certificate allowlist/);
    expect(titles.get('settings@s1.test')).toMatch(/CA disabled.*filebucket.*event inspector.*PuppetDB allowlist/);
    expect(keys).not.toContain('primary.ca-alt-names@primary.test');
    expect(keys.indexOf('certificate@s1.test')).toBeLessThan(keys.indexOf('database-settings@s1.test'));
    expect(keys.indexOf('database-settings@s1.test')).toBeLessThan(keys.indexOf('restart@s1.test'));
  });

  it('plan (dry run) of the first file steps on jailed hosts: the CA disabled and ca_server set, as diffs; nothing written', async () => {
    const inv = inventory('debian');
    const s1 = inv.masters.find((m) => m.name === 's1.test')!;
    const caCfg = inv.layout.files.caCfg!.path;
    await seedDebian(inv, 's1.test');
    const services = await fs.readFile(join(root, 's1.test', caCfg), 'utf8');
    const flow = await build('debian', ['s1.test']);
    const lane = flow.items.filter(isGroup)[1]!.lanes[0]!.slice(0, 1);
    expect(lane[0]!.id).toBe('settings');
    const host = jailed('s1.test');
    const r = await runFlow({ name: 'join', items: lane }, { host: () => host, dryRun: true });
    expect(r.status).toBe('ok');
    const diffs = r.steps[0]!.mutations.map((m) => (m.kind === 'write' ? m.diff : '')).join('\n');
    expect(diffs).toContain('+ca_server = ca.test');
    expect(diffs).toMatch(/^-puppetlabs\.services\.ca\.certificate-authority-service/m);
    expect(diffs).toMatch(/^\+puppetlabs\.services\.ca\.certificate-authority-disabled-service/m);
    expect(await fs.readFile(join(root, 's1.test', caCfg), 'utf8')).toBe(services);
    // for real: applied, then the same step is done
    const real = await runFlow({ name: 'join', items: lane }, { host: () => host });
    expect(real.status).toBe('ok');
    const again = await runFlow({ name: 'join', items: lane }, { host: () => host });
    expect(again.steps[0]!.status).toBe('skipped');
    expect(s1.sudo).toBe(false);
  });

  it("debian: the web server's TLS files are named in webserver.conf with the CRL copy (puppetserver's disabled CA service no longer fills them in)", async () => {
    const inv = inventory('debian');
    const web = inv.layout.files.webServerConf!.path;
    // Debian 12's webserver.conf as packaged
    const packaged =
      'webserver: {\n    access-log-config: /etc/puppet/puppetserver/request-logging.xml\n    client-auth: want\n    ssl-host: 0.0.0.0\n    ssl-port: 8140\n}\n';
    await seedDebian(inv, 's1.test', { webserver: packaged });
    const flow = await build('debian', ['s1.test']);
    const steps = flow.items.filter(isGroup)[1]!.lanes[0]!.filter((s) => s.id === 'settings');
    const host = jailed('s1.test');
    const r = await runFlow({ name: 'join', items: steps }, { host: () => host });
    expect(r.steps.map((s) => s.status)).toEqual(['done']);
    const text = await fs.readFile(join(root, 's1.test', web), 'utf8');
    const added = text.split('\n').filter((l) => !packaged.split('\n').includes(l));
    expect(added.map((l) => l.trim()).sort()).toEqual([
      'ssl-ca-cert: "/var/lib/puppet/ssl/certs/ca.pem"',
      'ssl-cert: "/var/lib/puppet/ssl/certs/s1.test.pem"',
      'ssl-crl-path: "/var/lib/puppet/ssl/crl.pem"',
      'ssl-key: "/var/lib/puppet/ssl/private_keys/s1.test.pem"',
    ]);
    expect((await runFlow({ name: 'join', items: steps }, { host: () => host })).steps.map((s) => s.status)).toEqual([
      'skipped',
    ]);
    expect(flowSteps(await build('pe3', ['s1.test'])).find((s) => s.id === 'settings')!.title).not.toMatch(/TLS/);
  });

  it('filebucket: a site.pp without a filebucket resource (Debian, Puppet 7) is left alone and the step is done; one with a bucket is pointed at primary_cname', async () => {
    const inv = inventory('debian');
    const site = inv.layout.files.sitePp!.path;
    const plain = "node default {\n  file { '/tmp/x': ensure => file }\n}\n";
    await seedDebian(inv, 's1.test', { sitePp: plain });
    const flow = await build('debian', ['s1.test']);
    const step = flow.items.filter(isGroup)[1]!.lanes[0]!.find((s) => s.id === 'settings')!;
    const host = jailed('s1.test');
    expect((await runFlow({ name: 'join', items: [step] }, { host: () => host })).steps[0]!.status).toBe('done');
    // the other settings written; a site.pp without a bucket untouched, and nothing left to do for it
    const r = await runFlow({ name: 'join', items: [step] }, { host: () => host });
    expect(r.status).toBe('ok');
    expect(r.steps[0]!.status).toBe('skipped');
    expect(await fs.readFile(join(root, 's1.test', site), 'utf8')).toBe(plain);
    await fs.writeFile(join(root, 's1.test', site), "filebucket { 'main':\n  server => 's1.test',\n}\n");
    const changed = await runFlow({ name: 'join', items: [step] }, { host: () => host });
    expect(changed.steps[0]!.status).toBe('done');
    expect(await fs.readFile(join(root, 's1.test', site), 'utf8')).toBe(
      "filebucket { 'main':\n  server => 'ca.test',\n}\n",
    );
  });
});

describe('probe and ensureStep', () => {
  const ctxFor = (host: Host) =>
    ({
      host,
      hostFor: () => host,
      runId: 'r',
      flow: 'f',
      dryRun: false,
      redactor: host.redactor,
      signal: new AbortController().signal,
      completedEarlier: false,
      changedInRun: () => false,
      state: new Map(),
    }) as const;

  it('done when the function would change nothing; to do (with the reason) otherwise; the host is untouched', async () => {
    const host = new LocalHost({ name: 'h' });
    const p = join(root, 'f.txt');
    const ensure = async (h: { host: Host }) => h.host.writeFile(p, 'x\n');
    expect(await probe(ctxFor(host), ensure)).toEqual({ done: false, why: `would create ${p}` });
    expect(await fs.stat(p).catch(() => undefined)).toBeUndefined();
    await fs.writeFile(p, 'x\n');
    expect(await probe(ctxFor(host), ensure)).toEqual({ done: true, why: 'already so' });
  });

  it('an error before any change is a real problem (thrown); after a planned change it means "to do"', async () => {
    const host = new LocalHost({ name: 'h' });
    await expect(probe(ctxFor(host), async () => Promise.reject(new PeError('E_X', 'broken')))).rejects.toThrow(
      'broken',
    );
    const r = await probe(ctxFor(host), async (h) => {
      await h.host.exec(['touch', join(root, 'never')]);
      throw new PeError('E_X', 'depends on the planned change');
    });
    expect(r.done).toBe(false);
    expect(await fs.stat(join(root, 'never')).catch(() => undefined)).toBeUndefined();
  });

  it('ensureStep runs the function for real in apply', async () => {
    const host = new LocalHost({ name: 'h' });
    const p = join(root, 'g.txt');
    const step = ensureStep('g', 'h', 'write g', (h) => h.host.writeFile(p, 'g\n'));
    const r = await runFlow({ name: 'f', items: [step] }, { host: () => host });
    expect(r.steps[0]!.status).toBe('done');
    expect(await fs.readFile(p, 'utf8')).toBe('g\n');
  });
});
