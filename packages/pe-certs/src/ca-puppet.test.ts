import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { layouts } from '@pe-stack/pe-config-files';
import { describe, expect, it } from 'vitest';
import {
  PuppetCertCa,
  PuppetserverCa,
  parsePuppetCertList,
  parsePuppetserverListJson,
  parsePuppetserverListText,
} from './ca-puppet.js';
import { CsrRefusedError, type CertError } from './errors.js';
import { ScriptedHost, failure } from '@pe-stack/testkit/certs';

const fixture = (name: string) => readFile(fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url)), 'utf8');
const POLICY = { allowed: ['puppet.example.com', 'master.example.com'] };

describe('puppetserver ca list parsing', () => {
  it('parses the text listing: states, fingerprints, alt names', async () => {
    const e = parsePuppetserverListText(await fixture('puppetserver-ca-list-all.txt'));
    expect(e.map((x) => `${x.state}:${x.name}`)).toEqual([
      'requested:secondary1.example.com',
      'requested:rogue.example.com',
      'requested:agent7.example.com',
      'signed:primary.example.com',
      'signed:agent1.example.com',
      'revoked:old.example.com',
    ]);
    expect(e[0]!.altNames).toEqual(['DNS:secondary1.example.com', 'DNS:puppet.example.com', 'DNS:master.example.com']);
    expect(e[2]!.altNames).toEqual([]);
    expect(e[3]!.altNames).toEqual([
      'DNS:puppet',
      'DNS:primary.example.com',
      'DNS:puppet.example.com',
      'DNS:master.example.com',
    ]);
    expect(e[0]!.fingerprint).toMatch(/^3C:9B:/);
    expect(parsePuppetserverListText('No certificates to list\n')).toEqual([]);
    expect(() => parsePuppetserverListText('Signed Certificates:\n    garbage here\n')).toThrow(/unexpected line/);
  });

  it('parses the JSON listing, preferring subject_alt_names (which include IPs)', async () => {
    const e = parsePuppetserverListJson(await fixture('puppetserver-ca-list-all.json'));
    expect(e.map((x) => `${x.state}:${x.name}`)).toEqual([
      'requested:secondary1.example.com',
      'requested:rogue.example.com',
      'signed:primary.example.com',
      'revoked:old.example.com',
    ]);
    expect(e[1]!.altNames).toContain('IP:10.0.0.66');
    expect(e[2]).toMatchObject({ serial: '2', notAfter: new Date('2031-11-24T16:00:00Z') });
    expect(e[3]!.serial).toBe('11');
    expect(() => parsePuppetserverListJson('{"signed": 3}')).toThrow(/not a list/);
  });
});

describe('puppet cert list parsing (pe3)', () => {
  it('parses glyphs, quoted names, digests, alt names and verification errors', async () => {
    const e = parsePuppetCertList(await fixture('puppet-cert-list-all.txt'));
    expect(e.map((x) => `${x.state}:${x.name}`)).toEqual([
      'requested:agent7.example.com',
      'requested:pe-internal-dashboard-secondary1.example.com',
      'requested:secondary1.example.com',
      'signed:agent1.example.com',
      'signed:pe-internal-broker',
      'signed:primary.example.com',
      'invalid:expired.example.com',
      'revoked:old.example.com',
    ]);
    expect(e[2]!.altNames).toEqual(['DNS:master.example.com', 'DNS:puppet.example.com', 'DNS:secondary1.example.com']);
    expect(e[6]!.problem).toBe('certificate has expired');
    expect(e[5]!.fingerprint).toMatch(/^5E:6F/);
    expect(() => parsePuppetCertList('what is this')).toThrow(/unexpected line/);
  });
});

function debianCa() {
  const host = new ScriptedHost({ name: 'primary' });
  return { host, ca: PuppetserverCa.fromLayout(host, layouts.debian, { sudo: false }) };
}

describe('PuppetserverCa', () => {
  it('signs a request whose alt names are allowed, with the layout argv', async () => {
    const { host, ca } = debianCa();
    const json = await fixture('puppetserver-ca-list-all.json');
    host
      .on('puppetserver ca list --all --format json', { stdout: json })
      .on((a) => a[2] === 'sign', { stdout: 'Successfully signed certificate request for secondary1.example.com\n' });
    await ca.sign('secondary1.example.com', POLICY);
    expect(host.calls.at(-1)).toEqual(['puppetserver', 'ca', 'sign', '--certname', 'secondary1.example.com']);
  });

  it('refuses a request with other alt names, lists them, and never calls sign', async () => {
    const { host, ca } = debianCa();
    host.on('puppetserver ca list --all --format json', { stdout: await fixture('puppetserver-ca-list-all.json') });
    const err = await failure<CsrRefusedError>(ca.sign('rogue.example.com', POLICY));
    expect(err).toBeInstanceOf(CsrRefusedError);
    expect(err.unexpected).toEqual(['DNS:evil.example.org', 'IP:10.0.0.66']);
    expect(err.message).toMatch(/rogue\.example\.com.*DNS:evil\.example\.org, IP:10\.0\.0\.66/);
    expect(err.host).toBe('primary');
    expect(host.calls.some((a) => a[2] === 'sign')).toBe(false);
  });

  it('falls back to the text listing when --format json is not understood', async () => {
    const { host, ca } = debianCa();
    host
      .on('puppetserver ca list --all --format json', { code: 1, stderr: 'Error:\n    invalid option: --format\n' })
      .on('puppetserver ca list --all', { stdout: await fixture('puppetserver-ca-list-all.txt') });
    expect((await ca.list()).length).toBe(6);
  });

  it('revoke is a no-op for a revoked cert; a failing command is a typed error with a hint', async () => {
    const { host, ca } = debianCa();
    host.on('puppetserver ca list --all --format json', { stdout: await fixture('puppetserver-ca-list-all.json') });
    await ca.revoke('old.example.com');
    expect(host.calls.some((a) => a[2] === 'revoke')).toBe(false);
    host.on((a) => a[2] === 'sign', {
      code: 1,
      stderr:
        "Error:\n    When attempting to sign certificate request 'secondary1.example.com', received\n      code: 409\n      body: CSR 'secondary1.example.com' contains subject alternative names (DNS:puppet.example.com), which are disallowed.\n",
    });
    const err = await failure<CertError>(ca.sign('secondary1.example.com', POLICY));
    expect(err.code).toBe('E_CA_COMMAND');
    expect(err.certname).toBe('secondary1.example.com');
    expect(err.message).toMatch(/allow-subject-alt-names/);
    await expect(ca.sign('primary.example.com', POLICY)).rejects.toMatchObject({ code: 'E_CERT_NOT_FOUND' });
    await expect(ca.sign('../../etc/x', POLICY)).rejects.toMatchObject({ code: 'E_INVALID_INPUT' });
  });

  it('clean of a pending request accepts exit 24 (unsigned, so not revoked); for a signed cert 24 is a failure', async () => {
    const { host, ca } = debianCa();
    host
      .on('puppetserver ca list --all --format json', { stdout: await fixture('puppetserver-ca-list-all.json') })
      .on((a) => a[2] === 'clean', { code: 24, stdout: 'Cleaned files related to x\n' });
    await ca.clean('rogue.example.com');
    await expect(ca.clean('primary.example.com')).rejects.toMatchObject({ code: 'E_CA_COMMAND' });
  });

  it('clean skips unknown names and runs clean for known ones', async () => {
    const { host, ca } = debianCa();
    host
      .on('puppetserver ca list --all --format json', { stdout: await fixture('puppetserver-ca-list-all.json') })
      .on((a) => a[2] === 'clean', { stdout: 'Cleaned files related to primary.example.com\n' });
    await ca.clean('nobody.example.com');
    await ca.clean('primary.example.com');
    expect(host.calls.filter((a) => a[2] === 'clean')).toEqual([
      ['puppetserver', 'ca', 'clean', '--certname', 'primary.example.com'],
    ]);
  });
});

describe('the request file on the CA is checked too', () => {
  it('refuses names the listing does not show but the CSR file carries', async () => {
    const { mkdtemp, mkdir, writeFile, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { Openssl } = await import('./openssl.js');
    const dir = await mkdtemp(join(tmpdir(), 'pe-certs-req-'));
    try {
      const host = new ScriptedHost({ name: 'pe-primary' });
      await mkdir(join(dir, 'requests'));
      const o = new Openssl(host);
      await o.genKey(join(dir, 'k.pem'), { type: 'ec' });
      await o.newCsr(join(dir, 'k.pem'), join(dir, 'requests', 'agent7.example.com.pem'), 'agent7.example.com', [
        'agent7.example.com',
        'sneaky.example.org',
      ]);
      // this listing shows agent7 as a request without alt names
      const ca = new PuppetCertCa(host, {
        cadir: dir,
        commands: {
          list: ['puppet', 'cert', 'list', '--all'],
          sign: ['puppet', 'cert', 'sign', '{certname}'],
          revoke: [],
          clean: [],
        },
        sudo: false,
      });
      host.on('puppet cert list --all', { stdout: await fixture('puppet-cert-list-all.txt') });
      const err = await failure<CsrRefusedError>(ca.sign('agent7.example.com', { allowed: [] }));
      expect(err.unexpected).toEqual(['DNS:sneaky.example.org']);
      expect(host.calls.some((a) => a[2] === 'sign')).toBe(false);
      await writeFile(join(dir, 'requests', 'agent7.example.com.pem'), 'garbage');
      await expect(ca.sign('agent7.example.com', { allowed: [] })).rejects.toMatchObject({ code: 'E_CERT_PARSE' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('signing from the request file alone (fromRequestFile)', () => {
  it('does not list the CA, checks the request file as always, and refuses without one', async () => {
    const { mkdtemp, mkdir, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { Openssl } = await import('./openssl.js');
    const dir = await mkdtemp(join(tmpdir(), 'pe-certs-req-'));
    try {
      const host = new ScriptedHost({ name: 'pe-primary' });
      await mkdir(join(dir, 'requests'));
      const o = new Openssl(host);
      await o.genKey(join(dir, 'k.pem'), { type: 'ec' });
      await o.newCsr(join(dir, 'k.pem'), join(dir, 'requests', 'agent7.example.com.pem'), 'agent7.example.com', [
        'agent7.example.com',
        'puppet.example.com',
      ]);
      const ca = new PuppetCertCa(host, {
        cadir: dir,
        commands: {
          list: ['puppet', 'cert', 'list', '--all'],
          sign: ['puppet', 'cert', 'sign', '{certname}'],
          revoke: [],
          clean: [],
        },
        sudo: false,
      });
      host.on((a) => a[2] === 'sign', { stdout: 'Signed\n' });
      const before = host.calls.length;
      await ca.sign(
        'agent7.example.com',
        { allowed: ['puppet.example.com'], requireAll: true },
        { fromRequestFile: true },
      );
      const calls = host.calls.slice(before);
      expect(calls.some((a) => a[2] === 'list')).toBe(false);
      expect(calls.at(-1)).toEqual(['puppet', 'cert', 'sign', 'agent7.example.com']);
      // the request's names are still checked
      const err = await failure<CsrRefusedError>(
        ca.sign('agent7.example.com', { allowed: [] }, { fromRequestFile: true }),
      );
      expect(err.unexpected).toEqual(['DNS:puppet.example.com']);
      // no request file: not pending
      await expect(ca.sign('other.example.com', { allowed: [] }, { fromRequestFile: true })).rejects.toMatchObject({
        code: 'E_CERT_NOT_FOUND',
      });
      expect(host.calls.slice(before).filter((a) => a[2] === 'sign')).toHaveLength(1);
      // hasFiles: what requests/ and signed/ hold
      expect(await ca.hasFiles('agent7.example.com')).toBe(true);
      expect(await ca.hasFiles('other.example.com')).toBe(false);
      await mkdir(join(dir, 'signed'));
      await (await import('node:fs/promises')).writeFile(join(dir, 'signed', 'other.example.com.pem'), 'x');
      expect(await ca.hasFiles('other.example.com')).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('PuppetCertCa (pe3)', () => {
  it('signs with --allow-dns-alt-names after checking the names itself', async () => {
    const host = new ScriptedHost({ name: 'pe-primary' });
    const ca = PuppetCertCa.fromLayout(host, layouts.pe3, { sudo: false });
    host
      .on('/opt/puppet/bin/puppet cert list --all', { stdout: await fixture('puppet-cert-list-all.txt') })
      .on((a) => a[2] === 'sign', { stdout: 'Signed\n' });
    await ca.sign('secondary1.example.com', POLICY);
    expect(host.calls.at(-1)).toEqual([
      '/opt/puppet/bin/puppet',
      'cert',
      'sign',
      '--allow-dns-alt-names',
      'secondary1.example.com',
    ]);
    await ca.sign('pe-internal-dashboard-secondary1.example.com', { allowed: [] });
    expect(ca.cadir).toBe('/etc/puppetlabs/puppet/ssl/ca');
    const err = await failure<CsrRefusedError>(ca.sign('secondary1.example.com', { allowed: ['puppet.example.com'] }));
    expect(err.unexpected).toEqual(['DNS:master.example.com']);
  });
});
