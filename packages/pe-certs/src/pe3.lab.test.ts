import type { Host } from '@pe-stack/pe-host';
import { layouts } from '@pe-stack/pe-config-files';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PuppetCertCa } from './ca-puppet.js';
import { ensureConsoleCert } from './console.js';
import { Pe3PuppetAgent } from './enroll.js';
import { labHost, ownLab } from '@pe-stack/testkit/lab';
import { Openssl } from './openssl.js';
import { reinitPuppetdbSsl } from './puppetdb.js';
import { regenerateNodeCert } from './regenerate.js';
import { inspectCert } from './x509.js';

/** Against the lab's PE 3.x simulator (its own OpenSSL CA behind `puppet cert`, pe-httpd, rake stand-ins). */
const L = layouts.pe3;

describe('pe-certs against the PE 3.x simulator (lab, pe3)', () => {
  let primary: Host;
  let secondary: Host;
  let ca: PuppetCertCa;

  beforeAll(async () => {
    const lab = await ownLab({ profile: 'pe3', hosts: ['primary', 'secondary1'], agents: 0 });
    primary = labHost(lab, 'primary');
    secondary = labHost(lab, 'secondary1');
    ca = PuppetCertCa.fromLayout(primary, L, { sudo: false });
  });
  afterAll(async () => {
    await primary?.close();
    await secondary?.close();
  });

  it('refuses a request with an unexpected alt name (puppet cert list + the request file)', async () => {
    const o = new Openssl(primary);
    await o.genKey('/tmp/rogue.key', { type: 'ec' });
    await o.newCsr('/tmp/rogue.key', `${L.dirs.cadir}/requests/rogue.lab.test.pem`, 'rogue.lab.test', [
      'rogue.lab.test',
      'www.evil.example',
    ]);
    expect((await ca.list()).find((e) => e.name === 'rogue.lab.test')?.state).toBe('requested');
    await expect(ca.sign('rogue.lab.test', { allowed: ['puppet.lab.test'] })).rejects.toMatchObject({
      code: 'E_CSR_REFUSED',
      unexpected: ['DNS:www.evil.example'],
    });
    await primary.remove(`${L.dirs.cadir}/requests/rogue.lab.test.pem`);
  });

  it("regenerates the secondary's certificate against the primary CA with puppet cert and puppet agent -t", async () => {
    const agent = new Pe3PuppetAgent({ ssldir: L.dirs.ssldir, caServer: 'primary.lab.test', sudo: false });
    const opts = {
      node: secondary,
      ca,
      agent,
      certname: 'secondary1.lab.test',
      ownNames: ['secondary1', 'puppet'],
      generalCname: 'puppet.lab.test',
      primaryCname: 'master.lab.test',
      sudo: false,
    };
    const r = await regenerateNodeCert(opts);
    expect(r.changed).toBe(true);
    const cert = inspectCert((await secondary.readFile(`${L.dirs.ssldir}/certs/secondary1.lab.test.pem`)).toString());
    expect(cert.issuer).toBe(`CN=${inspectCert(await ca.caCertificate()).cn ?? ''}`);
    expect(cert.altNames).toEqual(expect.arrayContaining(['DNS:puppet.lab.test', 'DNS:master.lab.test']));
    expect((await regenerateNodeCert(opts)).changed).toBe(false);
  });

  it('gets the console certificate pe-internal-dashboard-<fqdn> from the primary CA, each rake step once', async () => {
    const o = { layout: L, fqdn: 'secondary1.lab.test', caServer: 'primary.lab.test', sudo: false };
    const r = await ensureConsoleCert(primary, secondary, o);
    expect(r.certname).toBe('pe-internal-dashboard-secondary1.lab.test');
    expect(r.ran).toEqual(['cert:create_key_pair', 'cert:request', 'cert:retrieve']);
    const cert = inspectCert(
      (
        await secondary.readFile(`${L.dirs.consoleCertsDir}/pe-internal-dashboard-secondary1.lab.test.cert.pem`)
      ).toString(),
    );
    expect(cert.x509.verify(inspectCert(await ca.caCertificate()).x509.publicKey)).toBe(true);
    expect((await ensureConsoleCert(primary, secondary, o)).ran).toEqual([]);
  });

  it("re-initialises PuppetDB's certificates from the new agent certificate", async () => {
    const r = await reinitPuppetdbSsl(secondary, L, 'secondary1.lab.test', { sudo: false });
    expect(r.changed).toBe(true);
    expect((await secondary.readFile('/etc/puppetlabs/puppetdb/ssl/public.pem')).toString()).toBe(
      (await secondary.readFile(`${L.dirs.ssldir}/certs/secondary1.lab.test.pem`)).toString(),
    );
    expect((await reinitPuppetdbSsl(secondary, L, 'secondary1.lab.test', { sudo: false })).changed).toBe(false);
  });
});
