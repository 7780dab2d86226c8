import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Server, utils } from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HostKeyChangedError, HostKeyRevokedError } from './errors.js';
import { fingerprint } from './knownhosts.js';
import { SshHost } from './ssh.js';

/**
 * An in-process ssh2 server: enough for the host key exchange, which is all
 * these tests reach (the client refuses the key before authenticating).
 */
describe('SshHost host key refusal', () => {
  const hostKey = utils.generateKeyPairSync('ed25519');
  const clientKey = utils.generateKeyPairSync('ed25519');
  const keyLine = hostKey.public.trim().split(/\s+/).slice(0, 2).join(' ');
  const keyBlob = Buffer.from(keyLine.split(' ')[1]!, 'base64');
  const dir = mkdtempSync(join(tmpdir(), 'pe-hostkey-'));
  const server = new Server({ hostKeys: [hostKey.private] }, (c) => {
    c.on('error', () => undefined);
    c.on('authentication', (ctx) => ctx.reject());
  });
  let port = 0;

  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function host(knownHosts: string, hostKeys?: string[]): SshHost {
    return new SshHost({
      name: 'master.lab.test',
      address: '127.0.0.1',
      port,
      user: 'root',
      privateKey: clientKey.private,
      knownHosts,
      ...(hostKeys ? { hostKeys } : {}),
      connectTimeoutMs: 5000,
    });
  }

  function knownHostsFile(name: string, text: string): string {
    const path = join(dir, name);
    writeFileSync(path, text, { mode: 0o600 });
    return path;
  }

  it('a key marked @revoked is E_HOSTKEY_REVOKED naming the file and line, not a "changed" key', async () => {
    const file = knownHostsFile('revoked', `# first line\n@revoked * ${keyLine}\n`);
    const err = await host(file)
      .exec(['true'])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HostKeyRevokedError);
    expect(err).not.toBeInstanceOf(HostKeyChangedError);
    const e = err as HostKeyRevokedError;
    expect(e.code).toBe('E_HOSTKEY_REVOKED');
    expect(e.fingerprint).toBe(fingerprint(keyBlob));
    expect(e.shortMessage).toBe(
      `master.lab.test: the host presented ${fingerprint(keyBlob)}, a key marked @revoked in ${file} (line 2); nothing was sent.`,
    );
    expect(e.message).not.toContain('expected');
    expect(e.hint).toMatch(/new host key/);
  });

  it('revocation wins over a plain entry for the same key and over a pinned fingerprint', async () => {
    const file = knownHostsFile('both', `[127.0.0.1]:${port} ${keyLine}\n@revoked [127.0.0.1]:${port} ${keyLine}\n`);
    await expect(host(file).exec(['true'])).rejects.toBeInstanceOf(HostKeyRevokedError);
    await expect(host(file, [fingerprint(keyBlob)]).exec(['true'])).rejects.toBeInstanceOf(HostKeyRevokedError);
  });
});
