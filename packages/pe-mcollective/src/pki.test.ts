import { readFileSync, statSync, writeFileSync, rmSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  DryRunHost,
  LocalHost,
  writeFilesOneByOne,
  type BatchWrite,
  type Host,
  type WriteFilesOptions,
} from '@pe-stack/pe-host';
import { resolveLayout } from '@pe-stack/pe-config-files';
import { compareSharedFiles, copySharedFiles, fileFacts, sharedFiles } from './pki.js';
import type { Master } from './cluster.js';
import { localMaster, pe3LayoutUnder, seedPe3Primary, tempRoot } from '@pe-stack/testkit/mcollective';

const mode = (p: string) => statSync(p).mode & 0o777;

function pair() {
  const a = tempRoot('pe-mco-primary-');
  const b = tempRoot('pe-mco-secondary-');
  const la = pe3LayoutUnder(a);
  const lb = pe3LayoutUnder(b);
  const seeded = seedPe3Primary(la);
  return {
    primary: localMaster('master1.example.com', la),
    secondary: localMaster('master2.example.com', lb),
    seeded,
    la,
    lb,
  };
}

/** Records every call a host gets (to prove what is read and written where). */
function spy(host: Host, log: string[]): Host {
  return new Proxy(host, {
    get(t, p, r) {
      const v = Reflect.get(t, p, r) as unknown;
      if (typeof v !== 'function') return v;
      // a batch file by file through this spy, so that every write is seen
      if (p === 'writeFiles')
        return (files: BatchWrite[], o?: WriteFilesOptions) => writeFilesOneByOne(r as Host, files, o);
      return (...args: unknown[]) => {
        log.push(`${String(p)} ${typeof args[0] === 'string' ? args[0] : JSON.stringify(args[0])}`);
        return (v as (...a: unknown[]) => unknown).apply(t, args);
      };
    },
  });
}

describe('the pe3 shared MCollective files', () => {
  it('are the four pe-internal names x cert/private/public plus the credentials file, as pe_secondary copies them', () => {
    const files = sharedFiles(resolveLayout('pe3'));
    expect(files).toHaveLength(13);
    expect(files.filter((f) => f.secret).map((f) => f.path)).toEqual([
      '/etc/puppetlabs/puppet/ssl/private_keys/pe-internal-broker.pem',
      '/etc/puppetlabs/puppet/ssl/private_keys/pe-internal-mcollective-servers.pem',
      '/etc/puppetlabs/puppet/ssl/private_keys/pe-internal-peadmin-mcollective-client.pem',
      '/etc/puppetlabs/puppet/ssl/private_keys/pe-internal-puppet-console-mcollective-client.pem',
      '/etc/puppetlabs/mcollective/credentials',
    ]);
    expect(files.map((f) => f.path)).toContain('/etc/puppetlabs/puppet/ssl/certs/pe-internal-broker.pem');
    expect(files.map((f) => f.path)).toContain(
      '/etc/puppetlabs/puppet/ssl/public_keys/pe-internal-peadmin-mcollective-client.pem',
    );
    expect(sharedFiles(resolveLayout('debian'))).toEqual([]);
  });

  it('fileFacts: hashes and attributes computed on the host; missing files reported', async () => {
    const { la } = pair();
    const path = la.mcollective.credentials!;
    const f = await fileFacts(new LocalHost(), [path, `${path}.absent`], { sudo: false });
    expect(f.get(path)).toMatchObject({ exists: true, mode: 0o600, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(f.get(`${path}.absent`)).toEqual({ path: `${path}.absent`, exists: false });
  });

  it('copies host to host with the primary modes, then reports every file the same; a rerun copies nothing', async () => {
    const { primary, secondary, seeded, la, lb } = pair();
    const before = await compareSharedFiles(primary, secondary, { sudo: false });
    expect(before.every((c) => c.status === 'missing')).toBe(true);
    const r = await copySharedFiles(primary, secondary, { sudo: false });
    expect(r.copied).toHaveLength(13);
    for (const f of sharedFiles(lb))
      expect(readFileSync(f.path, 'utf8')).toBe(readFileSync(sharedFiles(la).find((x) => x.id === f.id)!.path, 'utf8'));
    expect(mode(lb.mcollective.pki['pe-internal-broker']!.privateKey)).toBe(0o640);
    expect(mode(lb.mcollective.pki['pe-internal-broker']!.cert)).toBe(0o644);
    expect(mode(lb.mcollective.credentials!)).toBe(0o600);
    expect(readFileSync(lb.mcollective.credentials!, 'utf8')).toBe(seeded.credentials);
    expect((await compareSharedFiles(primary, secondary, { sudo: false })).every((c) => c.status === 'same')).toBe(
      true,
    );
    expect(await copySharedFiles(primary, secondary, { sudo: false })).toEqual({
      copied: [],
      unchanged: expect.any(Array),
    });
  });

  it('detects a different key and a changed mode without showing hashes or content, and repairs both', async () => {
    const { primary, secondary, la, lb } = pair();
    await copySharedFiles(primary, secondary, { sudo: false });
    const key = lb.mcollective.pki['pe-internal-mcollective-servers']!.privateKey;
    writeFileSync(key, 'another key\n');
    const cred = lb.mcollective.credentials!;
    (await import('node:fs')).chmodSync(cred, 0o644);
    const cmp = await compareSharedFiles(primary, secondary, { sudo: false });
    const bad = cmp.filter((c) => c.status !== 'same');
    expect(bad.map((c) => [c.id, c.status])).toEqual([
      ['pe-internal-mcollective-servers/privateKey', 'content-differs'],
      ['credentials', 'attributes-differ'],
    ]);
    expect(bad[1]!.detail).toMatch(/0644, the primary has .* 0600/);
    const facts = await fileFacts(
      new LocalHost(),
      [la.mcollective.pki['pe-internal-mcollective-servers']!.privateKey],
      { sudo: false },
    );
    const sha = [...facts.values()][0]!.sha256!;
    expect(JSON.stringify(cmp)).not.toContain(sha);
    const r = await copySharedFiles(primary, secondary, { sudo: false });
    expect(r.copied.sort()).toEqual([cred, key].sort());
    expect(mode(cred)).toBe(0o600);
  });

  it('moves keys only through memory: reads on the primary, writes on the secondary, nothing else', async () => {
    const { primary, secondary, la, lb } = pair();
    const logA: string[] = [];
    const logB: string[] = [];
    const a: Master = { ...primary, host: spy(primary.host, logA) };
    const b: Master = { ...secondary, host: spy(secondary.host, logB) };
    await copySharedFiles(a, b, { sudo: false });
    expect(logA.filter((l) => /^(writeFile|remove|mkdir|spawn)/.test(l))).toEqual([]);
    const writes = logB.filter((l) => l.startsWith('writeFile'));
    expect(writes.sort()).toEqual(
      sharedFiles(lb)
        .map((f) => `writeFile ${f.path}`)
        .sort(),
    );
    // the primary's bytes in one read-only command naming every file (pe-host readFiles)
    expect(
      logA.filter(
        (l) => l.startsWith('exec') && l.includes('base64') && sharedFiles(la).every((f) => l.includes(f.path)),
      ),
    ).toHaveLength(1);
    expect(logA.filter((l) => l.startsWith('readFile'))).toEqual([]);
  });

  it('a dry run plans every write with private keys and credentials masked (old and new content)', async () => {
    const { primary, secondary, seeded, lb } = pair();
    // the secondary already has its own (different) keys from its install
    const own = seedPe3Primary(lb, 'secondary-own');
    const dry = new DryRunHost(secondary.host);
    await copySharedFiles(primary, { ...secondary, host: dry }, { sudo: false });
    expect(dry.mutations.filter((m) => m.kind === 'write')).toHaveLength(13);
    const plan = JSON.stringify(dry.mutations);
    for (const secret of [...seeded.keys, seeded.credentials, ...own.keys, own.credentials]) {
      for (const line of secret.split('\n').filter((l) => l.length > 8 && !l.startsWith('-----')))
        expect(plan).not.toContain(line);
    }
    expect(plan).toContain('CERTIFICATE');
    // nothing was written for real
    expect(readFileSync(lb.mcollective.credentials!, 'utf8')).toBe(own.credentials);
  });

  it('a primary without the files is an error that names paths, not contents', async () => {
    const { primary, secondary, seeded, la } = pair();
    rmSync(la.mcollective.pki['pe-internal-broker']!.privateKey);
    const err = await copySharedFiles(primary, secondary, { sudo: false }).catch((e: unknown) => e as Error);
    expect(err).toMatchObject({ code: 'E_MCO_COPY', message: expect.stringContaining('pe-internal-broker.pem') });
    expect(String((err as Error).message)).not.toContain(seeded.credentials.trim());
  });
});
