import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Host } from '@pe-stack/pe-host';
import { applyEdits, fileOf, layouts } from '@pe-stack/pe-config-files';
import { LAB_SHAPES, labHost, leaveLab, ownLab, type Lab } from '@pe-stack/testkit/lab';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allowSubjectAltNames, backupCa, grantCaAdmin, restoreCa } from './backup.js';
import { PuppetserverCa } from './ca-puppet.js';
import { syncCrl } from './crl-sync.js';
import { PuppetSslAgent } from './enroll.js';
import { regenerateNodeCert } from './regenerate.js';
import { checkCertificate, loadTrust } from './verify.js';
import { inspectCert } from './x509.js';

/**
 * Against the real puppetserver 7 of the lab's debian profile: two standalone
 * masters, each with its own CA (step 1 of the runbook), on the first lab of
 * the two-master chain (vitest.config.ts, labOrder).
 */
const L = layouts.debian;
describe('pe-certs against puppetserver (lab, debian)', () => {
  let lab: Lab;
  let primary: Host;
  let secondary: Host;
  let ca: PuppetserverCa;
  let controller: string;
  beforeAll(async () => {
    lab = await ownLab(LAB_SHAPES.debianPairWithMcollective);
    primary = labHost(lab, 'primary');
    secondary = labHost(lab, 'secondary1');
    ca = PuppetserverCa.fromLayout(primary, L, { sudo: false });
    controller = await mkdtemp(join(tmpdir(), 'pe-certs-lab-'));
  });
  afterAll(async ({}, suite) => {
    // the secondary now has a certificate from the primary's CA and a copy of that CA: MCollective and
    // the database's tests don't mind
    if (lab) leaveLab(lab, 'secondary-certified', suite);
    await primary?.close();
    await secondary?.close();
    if (controller) await rm(controller, { recursive: true, force: true });
  });

  it("regenerates the secondary's certificate against the primary CA, with the shared alt names; a second run changes nothing", async () => {
    expect((await allowSubjectAltNames(primary, fileOf(L, 'caConf').path, { sudo: false })).changed).toBe(false); // the lab's primary has it already
    const agent = new PuppetSslAgent({ ssldir: L.dirs.ssldir, caServer: 'primary.lab.test', sudo: false });
    const opts = {
      node: secondary,
      ca,
      agent,
      certname: 'secondary1.lab.test',
      ownNames: ['secondary1'],
      generalCname: 'puppet.lab.test',
      primaryCname: 'master.lab.test',
      sudo: false,
    };
    const r = await regenerateNodeCert(opts);
    expect(r.changed).toBe(true);
    expect(r.reason).toMatch(/chain/);
    expect(r.backup).toMatch(/^\/var\/lib\/puppet\/ssl\.pe-backup-/);
    const cert = inspectCert(
      (await secondary.readFile('/var/lib/puppet/ssl/certs/secondary1.lab.test.pem')).toString(),
    );
    expect(cert.issuer).toBe('CN=Puppet CA: primary.lab.test');
    expect(cert.altNames).toEqual(
      expect.arrayContaining([
        'DNS:secondary1.lab.test',
        'DNS:secondary1',
        'DNS:puppet.lab.test',
        'DNS:master.lab.test',
      ]),
    );
    expect((await ca.list()).find((e) => e.name === 'secondary1.lab.test')?.state).toBe('signed');
    expect((await regenerateNodeCert(opts)).changed).toBe(false);
    // the join: the secondary gives up its own CA, and its web server presents the new certificate
    const off = await applyEdits(
      secondary,
      [{ kind: 'services', path: fileOf(L, 'caCfg').path, ops: [{ op: 'ca', enabled: false }] }],
      { sudo: false },
    );
    expect(off[0]!.changed).toBe(true);
    await secondary.exec(['systemctl', 'restart', 'puppetserver'], { timeoutMs: 300_000 });
    const served = await primary.exec([
      'sh',
      '-c',
      'openssl s_client -connect secondary1.lab.test:8140 -servername secondary1.lab.test </dev/null 2>/dev/null | openssl x509 -noout -issuer',
    ]);
    expect(served.stdout).toMatch(/Puppet CA: primary\.lab\.test/);
  });

  it('refuses a CSR that asks for an unexpected alt name, listing it', async () => {
    const rogue = new PuppetSslAgent({ ssldir: '/tmp/rogue-ssl', caServer: 'primary.lab.test', sudo: false });
    await rogue.submit(secondary, 'rogue.lab.test', ['rogue.lab.test', 'puppet.lab.test', 'www.evil.example']);
    await expect(ca.sign('rogue.lab.test', { allowed: ['puppet.lab.test', 'master.lab.test'] })).rejects.toMatchObject({
      code: 'E_CSR_REFUSED',
      unexpected: ['DNS:www.evil.example'],
    });
    expect((await ca.list()).find((e) => e.name === 'rogue.lab.test')?.state).toBe('requested');
    await ca.clean('rogue.lab.test');
  });

  it('a revoked certificate is refused by the secondary once the CRL is synced (reload only when it changed)', async () => {
    await primary.exec(['puppetserver', 'ca', 'generate', '--certname', 'extra1.lab.test'], { timeoutMs: 120_000 });
    const curl = [
      'curl',
      '-s',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '--cacert',
      '/var/lib/puppet/ssl/certs/ca.pem',
      '--cert',
      '/var/lib/puppet/ssl/certs/extra1.lab.test.pem',
      '--key',
      '/var/lib/puppet/ssl/private_keys/extra1.lab.test.pem',
      'https://secondary1.lab.test:8140/status/v1/simple',
    ];
    expect((await primary.exec(curl, { allowFailure: true })).stdout).toBe('200');
    await ca.revoke('extra1.lab.test');
    const target = {
      host: secondary,
      path: L.crl.nonCaValue,
      reload: ['systemctl', 'reload', 'puppetserver'],
      sudo: false,
    };
    const [r] = await syncCrl(ca, [target]);
    expect(r).toMatchObject({ changed: true, reloaded: true });
    const extra = (await ca.certificate('extra1.lab.test'))!;
    const synced = (await secondary.readFile(L.crl.nonCaValue)).toString();
    expect(
      checkCertificate(extra, loadTrust(await ca.caCertificate(), synced)).checks.find((c) => c.id === 'revoked')
        ?.level,
    ).toBe('fail');
    const refused = await primary.exec(curl, { allowFailure: true });
    expect(refused.stdout).not.toBe('200');
    const [again] = await syncCrl(ca, [target]);
    expect(again).toMatchObject({ changed: false, reloaded: false });
  });

  it("restores the primary's CA onto the secondary (refused without force), which then signs a new agent's CSR", async () => {
    const b = await backupCa(primary, L.dirs.cadir, controller, { sudo: false });
    expect(Object.keys(b.manifest.files)).toEqual(expect.arrayContaining(['ca_crt.pem', 'ca_key.pem', 'ca_crl.pem']));
    await expect(restoreCa(b.archive, secondary, L.dirs.cadir, { sudo: false })).rejects.toMatchObject({
      code: 'E_CA_EXISTS',
    });
    const r = await restoreCa(b.archive, secondary, L.dirs.cadir, { sudo: false, force: true });
    expect(r.previous).toMatch(/\.pe-backup-/);
    // promotion: the CA service back on, with the restored CA
    const on = await applyEdits(
      secondary,
      [{ kind: 'services', path: fileOf(L, 'caCfg').path, ops: [{ op: 'ca', enabled: true }] }],
      { sudo: false },
    );
    expect(on[0]!.changed).toBe(true);
    expect(
      (await grantCaAdmin(secondary, fileOf(L, 'authConf').path, 'secondary1.lab.test', { sudo: false })).changed,
    ).toBe(true);
    await secondary.exec(['systemctl', 'restart', 'puppetserver'], { timeoutMs: 300_000 });
    const promoted = PuppetserverCa.fromLayout(secondary, L, { sudo: false });
    const agent = new PuppetSslAgent({ ssldir: '/tmp/newagent-ssl', caServer: 'secondary1.lab.test', sudo: false });
    await agent.submit(primary, 'newagent.lab.test', []);
    await promoted.sign('newagent.lab.test', { allowed: [] });
    await agent.fetch(primary, 'newagent.lab.test');
    const cert = inspectCert((await primary.readFile('/tmp/newagent-ssl/certs/newagent.lab.test.pem')).toString());
    expect(cert.x509.verify(inspectCert(await ca.caCertificate()).x509.publicKey)).toBe(true);
  });
});
