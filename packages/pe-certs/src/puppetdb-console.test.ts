import { copyFile, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { LocalHost } from '@pe-stack/pe-host';
import { parseIni, resolveLayout } from '@pe-stack/pe-config-files';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OpensslCa } from './ca-openssl.js';
import { consoleCertPaths, ensureConsoleCert, oneRakeRun } from './console.js';
import { puppetdbSslDir, reinitPuppetdbSsl } from './puppetdb.js';
import { enrolNode, failure, tempDir, testCa } from '@pe-stack/testkit/certs';

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
const host = new LocalHost({ name: 'secondary1.example.com' });
let t: Awaited<ReturnType<typeof tempDir>>;
let ca: OpensslCa;
beforeAll(async () => {
  t = await tempDir('pdb');
  ca = await testCa(t.dir);
});
afterAll(() => t.cleanup());

describe('reinitPuppetdbSsl (debian)', () => {
  it("installs the agent's CA copy, certificate and key as PuppetDB's own (on the node) and points jetty.ini at them, only when they differ", async () => {
    const ssldir = join(t.dir, 'agent-ssl');
    const confd = join(t.dir, 'puppetdb', 'conf.d');
    await mkdir(confd, { recursive: true });
    const jetty = join(confd, 'jetty.ini');
    await copyFile(fixture('debian-jetty.ini'), jetty);
    const packaged = await readFile(jetty, 'utf8');
    await enrolNode(ca, host, ssldir, 'secondary1.example.com', ['secondary1.example.com', 'puppet.example.com']);
    const dbssl = join(t.dir, 'puppetdb', 'ssl');
    const me = userInfo();
    const group = (await host.exec(['id', '-gn'])).stdout.trim();
    // Debian's real `puppetdb ssl-setup` refuses once jetty.ini has ssl-port: it must never be what runs here
    const refuse = [
      'sh',
      '-c',
      'echo "Error: config key \'ssl-port\' already exists in PuppetDB configuration."; exit 1',
    ];
    const layout = resolveLayout('debian', {
      dirs: { ssldir, puppetdbConfdir: confd },
      files: { puppetdbJettyIni: { path: jetty } },
      commands: { puppetdbSslSetup: refuse },
      users: { puppetdb: { user: me.username, group } },
    });
    expect(puppetdbSslDir(layout)).toBe(dbssl);
    const r1 = await reinitPuppetdbSsl(host, layout, 'secondary1.example.com', { sudo: false });
    expect(r1).toMatchObject({ changed: true, reason: 'PuppetDB has no certificates' });
    const ini = parseIni(await readFile(jetty, 'utf8'), jetty);
    expect(['ssl-host', 'ssl-port', 'ssl-key', 'ssl-cert', 'ssl-ca-cert'].map((k) => ini.get('jetty', k))).toEqual([
      '0.0.0.0',
      '8081',
      join(dbssl, 'private.pem'),
      join(dbssl, 'public.pem'),
      join(dbssl, 'ca.pem'),
    ]);
    // only the five ssl lines were added; the packaged lines are untouched
    expect((await readFile(jetty, 'utf8')).startsWith(packaged.replace(/\n$/, ''))).toBe(true);
    expect(await readFile(join(dbssl, 'public.pem'), 'utf8')).toBe(
      await readFile(join(ssldir, 'certs', 'secondary1.example.com.pem'), 'utf8'),
    );
    expect(await readFile(join(dbssl, 'ca.pem'), 'utf8')).toBe(await readFile(join(ssldir, 'certs', 'ca.pem'), 'utf8'));
    expect(await readFile(join(dbssl, 'private.pem'), 'utf8')).toBe(
      await readFile(join(ssldir, 'private_keys', 'secondary1.example.com.pem'), 'utf8'),
    );
    expect((await stat(join(dbssl, 'private.pem'))).mode & 0o777).toBe(0o600);
    const r2 = await reinitPuppetdbSsl(host, layout, 'secondary1.example.com', { sudo: false });
    expect(r2.changed).toBe(false);
    // a new agent certificate (regenerated) is installed again; an operator's ssl-port is kept
    await writeFile(jetty, (await readFile(jetty, 'utf8')).replace('ssl-port = 8081', 'ssl-port = 8443'));
    await ca.clean('secondary1.example.com');
    await rm(ssldir, { recursive: true });
    await enrolNode(ca, host, ssldir, 'secondary1.example.com', []);
    const r3 = await reinitPuppetdbSsl(host, layout, 'secondary1.example.com', { sudo: false });
    expect(r3).toMatchObject({ changed: true, reason: "PuppetDB's certificate differs from the agent's" });
    expect(await readFile(join(dbssl, 'public.pem'), 'utf8')).toBe(
      await readFile(join(ssldir, 'certs', 'secondary1.example.com.pem'), 'utf8'),
    );
    expect(parseIni(await readFile(jetty, 'utf8'), jetty).get('jetty', 'ssl-port')).toBe('8443');
  });

  it("names the failing command with the script's message when it prints on stdout (pe3 ssl-setup)", async () => {
    const ssldir = join(t.dir, 'agent-ssl-pe3');
    await enrolNode(ca, host, ssldir, 'secondary2.example.com', []);
    const layout = resolveLayout('pe3', {
      dirs: { ssldir, puppetdbConfdir: join(t.dir, 'pe3db', 'conf.d') },
      commands: { puppetdbSslSetup: ['sh', '-c', 'echo "Error: cannot set up"; exit 1'] },
    });
    await expect(reinitPuppetdbSsl(host, layout, 'secondary2.example.com', { sudo: false })).rejects.toMatchObject({
      code: 'E_CA_COMMAND',
      message: expect.stringContaining('Error: cannot set up'),
    });
  });

  it('refuses when the agent has no certificate yet', async () => {
    const layout = resolveLayout('debian', { dirs: { ssldir: join(t.dir, 'nothing') } });
    await expect(reinitPuppetdbSsl(host, layout, 'x.example.com', { sudo: false })).rejects.toMatchObject({
      code: 'E_CERT_NOT_FOUND',
    });
  });
});

describe('ensureConsoleCert (pe3)', () => {
  async function setup(failRetrieve = false) {
    const d = join(t.dir, `console${failRetrieve ? '-fail' : ''}`);
    const certs = join(d, 'certs');
    await mkdir(certs, { recursive: true });
    for (const [f, to] of [
      ['pe3-settings.yml', 'settings.yml'],
      ['pe3-puppetdashboard.conf', 'puppetdashboard.conf'],
      ['pe3-autosign.conf', 'autosign.conf'],
    ] as const)
      await copyFile(fixture(f), join(d, to));
    const base = resolveLayout('pe3', { dirs: { consoleCertsDir: certs } });
    const p = consoleCertPaths(base, 's1.example.com');
    // stand-ins for the console's rake tasks: each creates the file the real one creates, and logs
    const task = (name: string, ...files: string[]) => [
      'sh',
      '-c',
      `for f in "$@"; do printf ${name} > "$f"; done; echo ${name} >> "${d}/rake.log"`,
      'sh',
      ...files,
    ];
    const layout = resolveLayout(base, {
      files: {
        autosignConf: { path: join(d, 'autosign.conf') },
        consoleSettingsYml: { path: join(d, 'settings.yml') },
        consoleVhostConf: { path: join(d, 'puppetdashboard.conf') },
      },
      commands: {
        consoleCreateKeyPair: task('cert:create_key_pair', p.privateKey, p.publicKey),
        consoleCertRequest: task('cert:request', p.caCert),
        consoleCertRetrieve: failRetrieve ? ['false'] : task('cert:retrieve', p.cert, p.crl),
      },
    });
    return { d, p, layout, opts: { layout, fqdn: 's1.example.com', caServer: 'master.example.com', sudo: false } };
  }

  it('autosign entry, settings.yml, vhost and the three rake steps, each only when needed', async () => {
    const { d, p, opts } = await setup();
    const primary = new LocalHost({ name: 'master1' });
    const r = await ensureConsoleCert(primary, host, opts);
    expect(r.certname).toBe('pe-internal-dashboard-s1.example.com');
    expect(r.ran).toEqual(['cert:create_key_pair', 'cert:request', 'cert:retrieve']);
    expect([r.autosign.changed, r.settings.changed, r.vhost.changed]).toEqual([true, true, true]);
    expect((await readFile(join(d, 'autosign.conf'), 'utf8')).split('\n')).toContain(
      'pe-internal-dashboard-s1.example.com',
    );
    const settings = await readFile(join(d, 'settings.yml'), 'utf8');
    expect(settings).toMatch(/^cn_name: 'pe-internal-dashboard-s1\.example\.com'$/m);
    expect(settings).toMatch(/^ca_server: 'master\.example\.com'$/m);
    expect(settings).toMatch(/^certificate_path: 'certs\/pe-internal-dashboard-s1\.example\.com\.cert\.pem'$/m);
    expect(settings).toContain('# Hostname of the certificate authority.');
    const vhost = await readFile(join(d, 'puppetdashboard.conf'), 'utf8');
    expect(vhost).toContain(`  SSLCARevocationFile ${p.crl}\n`);
    expect(vhost).toContain(`  SSLCertificateKeyFile ${p.privateKey}\n`);
    const again = await ensureConsoleCert(primary, host, opts);
    expect(again.ran).toEqual([]);
    expect([again.autosign.changed, again.settings.changed, again.vhost.changed]).toEqual([false, false, false]);
    await rm(p.cert);
    expect((await ensureConsoleCert(primary, host, opts)).ran).toEqual(['cert:retrieve']);
    expect(await readFile(join(d, 'rake.log'), 'utf8')).toBe(
      'cert:create_key_pair\ncert:request\ncert:retrieve\ncert:retrieve\n',
    );
  });

  it("the PE 3 layout's rake tasks run in one rake process (one Rails start), in order; a missing file still names its task", async () => {
    const { d, p, layout: base } = await setup();
    const failRetrieveMarker = join(d, 'retrieve-ran');
    for (const f of [p.privateKey, p.publicKey, p.caCert, p.cert, p.crl, failRetrieveMarker, join(d, 'processes.log')])
      await rm(f, { force: true });
    // a rake that logs each process (its tasks) and, per task, creates what the console's task creates
    const rake = join(d, 'bin', 'rake');
    await mkdir(join(d, 'bin'), { recursive: true });
    const files: Record<string, string[]> = {
      'cert:create_key_pair': [p.privateKey, p.publicKey],
      'cert:request': [p.caCert],
      'cert:retrieve': [failRetrieveMarker],
    };
    const script = [
      '#!/bin/sh',
      `echo "run: $*" >> "${d}/processes.log"`,
      'for t do case "$t" in',
      ...Object.entries(files).map(([t, fs]) => `  ${t}) ${fs.map((f) => `echo x > "${f}"`).join('; ')} ;;`),
      'esac; done',
      '',
    ].join('\n');
    await writeFile(rake, script, { mode: 0o755 });
    const cmd = (task: string) => [
      rake,
      '-f',
      '/opt/puppet/share/puppet-dashboard/Rakefile',
      'RAILS_ENV=production',
      task,
    ];
    const layout = resolveLayout(base, {
      commands: {
        consoleCreateKeyPair: cmd('cert:create_key_pair'),
        consoleCertRequest: cmd('cert:request'),
        consoleCertRetrieve: cmd('cert:retrieve'),
      },
    });
    const opts = { layout, fqdn: 's1.example.com', caServer: 'master.example.com', sudo: false };
    // cert:retrieve "fails" (creates a marker, not the certificate): the error names it, after one process
    const err = await failure<{ code: string; message: string }>(
      ensureConsoleCert(new LocalHost({ name: 'master1' }), host, opts),
    );
    expect(err.code).toBe('E_CA_COMMAND');
    expect(err.message).toMatch(/cert:retrieve. did not create .*\.cert\.pem/);
    expect(await readFile(join(d, 'processes.log'), 'utf8')).toBe(
      'run: -f /opt/puppet/share/puppet-dashboard/Rakefile RAILS_ENV=production cert:create_key_pair cert:request cert:retrieve\n',
    );
    expect(oneRakeRun([cmd('a:b'), cmd('a:b')])).toBeUndefined(); // a task twice: separate runs
    expect(
      oneRakeRun([
        ['sh', '-c', 'x'],
        ['sh', '-c', 'y'],
      ]),
    ).toBeUndefined();
  });

  it('a failing rake step is a typed error naming the console cert', async () => {
    const { opts } = await setup(true);
    const err = await failure<{ code: string; certname: string; message: string }>(
      ensureConsoleCert(new LocalHost({ name: 'master1' }), host, opts),
    );
    expect(err).toMatchObject({ code: 'E_CA_COMMAND', certname: 'pe-internal-dashboard-s1.example.com' });
    expect(err.message).toMatch(/autosign/);
  });
});
