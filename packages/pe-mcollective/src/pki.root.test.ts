// The pe3 PKI copy over real SSH (a throwaway OpenSSH on 127.0.0.1, as root,
// SFTP writes): owners other than the writer, modes, and a secondary whose
// parent directories do not exist yet. Two SshHosts on one machine, each with
// a layout rooted in its own temp dir.
import { chownSync, readFileSync, statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DryRunHost, Redactor, SshHost } from '@pe-stack/pe-host';
import { startTestSshd, type TestSshd } from '@pe-stack/testkit/sshd';
import { compareSharedFiles, copySharedFiles, sharedFiles } from './pki.js';
import { pe3JoinSteps } from './pe3.js';
import { pe3LayoutUnder, runMcoFlow, seedPe3Primary, tempRoot } from '@pe-stack/testkit/mcollective';
import type { Master } from './cluster.js';

const isRoot = process.getuid?.() === 0;

describe.skipIf(!isRoot)('pe3 PKI copy over SSH (root, loopback sshd)', () => {
  let sshd: TestSshd;
  let primary: Master;
  let secondary: Master;
  let seeded: ReturnType<typeof seedPe3Primary>;
  const redactor = new Redactor();

  beforeAll(async () => {
    sshd = await startTestSshd();
    const ssh = (name: string) =>
      new SshHost({
        name,
        address: '127.0.0.1',
        port: sshd.port,
        user: 'root',
        privateKey: sshd.clientKeyPath,
        knownHosts: sshd.knownHostsPath,
        redactor,
      });
    const la = pe3LayoutUnder(tempRoot('pe-mco-ssh-a-'));
    const lb = pe3LayoutUnder(tempRoot('pe-mco-ssh-b-'));
    seeded = seedPe3Primary(la);
    // PE 3 owns the ssldir files as pe-puppet; here: nobody/nogroup, so the owner must be carried, not defaulted to root
    for (const f of sharedFiles(la)) if (f.kind !== 'credentials') chownSync(f.path, 65534, 65534);
    for (const d of ['certs', 'private_keys', 'public_keys'])
      chownSync(`${la.mcollective.pki['pe-internal-broker']!.cert.replace(/\/certs\/.*$/, '')}/${d}`, 65534, 65534);
    primary = { fqdn: 'master1.example.com', host: ssh('master1.example.com'), layout: la };
    secondary = { fqdn: 'master2.example.com', host: ssh('master2.example.com'), layout: lb };
  }, 60_000);

  afterAll(async () => {
    await primary?.host.close();
    await secondary?.host.close();
    await sshd?.stop();
  });

  it('a dry run over SSH plans 13 writes plus the missing directories, with no key material', async () => {
    const dry = new DryRunHost(secondary.host);
    await copySharedFiles(primary, { ...secondary, host: dry });
    expect(dry.mutations.filter((m) => m.kind === 'write')).toHaveLength(13);
    expect(dry.mutations.filter((m) => m.kind === 'mkdir').length).toBeGreaterThanOrEqual(3);
    const plan = JSON.stringify(dry.mutations);
    for (const k of seeded.keys) for (const line of k.split('\n').slice(1, -2)) expect(plan).not.toContain(line);
    expect(plan).not.toContain(seeded.credentials.trim());
  });

  it('copies with owners, groups and modes of the primary, creating the directories like the primary', async () => {
    const t0 = performance.now();
    const out = (
      await runMcoFlow(
        pe3JoinSteps({ primary, secondaries: [secondary] }).filter((s) => s.id.startsWith('mco-pki:')),
        [primary, secondary],
      )
    ).steps;
    const ms = performance.now() - t0;
    expect(out.map((o) => o.status)).toEqual(['done']);
    for (const f of sharedFiles(secondary.layout)) {
      const st = statSync(f.path);
      const src = statSync(sharedFiles(primary.layout).find((x) => x.id === f.id)!.path);
      expect([st.uid, st.gid, st.mode & 0o7777], f.id).toEqual([src.uid, src.gid, src.mode & 0o7777]);
    }
    const keyDir = statSync(secondary.layout.mcollective.pki['pe-internal-broker']!.privateKey.replace(/\/[^/]+$/, ''));
    expect(keyDir.uid).toBe(65534);
    expect(readFileSync(secondary.layout.mcollective.credentials!, 'utf8')).toBe(seeded.credentials);
    expect((await compareSharedFiles(primary, secondary)).every((c) => c.status === 'same')).toBe(true);
    expect(
      (
        await runMcoFlow(
          pe3JoinSteps({ primary, secondaries: [secondary] }).filter((s) => s.id.startsWith('mco-pki:')),
          [primary, secondary],
        )
      ).steps.map((o) => o.status),
    ).toEqual(['skipped']);
    process.stderr.write(`pe-mcollective: pe3 PKI copy over SSH, 13 files: ${ms.toFixed(0)} ms\n`);
  });
});
