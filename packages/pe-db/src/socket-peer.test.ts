import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { layouts } from '@pe-stack/pe-config-files';
import { LocalHost } from '@pe-stack/pe-host';
import { asDbUser, instanceFromLayout } from './index.js';

// A local user who can write the socket directory (PE 3's pe-postgresql uses /tmp) can plant
// `.s.PGSQL.<port>` before the server starts and answer our commands. Every local client runs with
// PGREQUIREPEER set to the server's OS user: libpq checks the peer process's user on the socket and
// sends nothing to any other.

const run = promisify(execFile);
const PSQL = ['/usr/lib/postgresql/15/bin/psql', '/usr/bin/psql'].find((p) => existsSync(p));
const PORT = 54329;

describe('local commands talk only to a server run by the instance OS user', () => {
  it('asDbUser sets PGREQUIREPEER to the OS user it runs the command as', () => {
    const pe3 = instanceFromLayout(new LocalHost(), layouts.pe3);
    expect(pe3.socketDir).toBe('/tmp');
    expect(asDbUser(pe3, ['/opt/puppet/bin/psql', '-h', pe3.socketDir])).toEqual([
      'runuser',
      '-u',
      'pe-postgres',
      '--',
      'env',
      'PGREQUIREPEER=pe-postgres',
      '/opt/puppet/bin/psql',
      '-h',
      '/tmp',
    ]);
  });

  describe.skipIf(!PSQL)('a planted socket (a fake server run by this test user)', () => {
    let dir: string;
    let server: Server;
    const received: Buffer[] = [];

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'pe-db-peer-'));
      server = createServer((sock) => {
        sock.on('data', (b) => received.push(b));
        sock.on('error', () => {});
        setTimeout(() => sock.destroy(), 200);
      });
      await new Promise<void>((resolve) => server.listen(join(dir, `.s.PGSQL.${PORT}`), resolve));
    });
    afterAll(async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    });

    const psql = async (requirePeer: string) => {
      received.length = 0;
      const env = { ...process.env, PGREQUIREPEER: requirePeer, PGCONNECT_TIMEOUT: '3' };
      const argv = ['-X', '-h', dir, '-p', String(PORT), '-d', 'postgres', '-U', 'x', '-w', '-c', 'SELECT 1'];
      const r = await run(PSQL!, argv, { env }).then(
        () => ({ ok: true, stderr: '' }),
        (e: { stderr?: string }) => ({ ok: false, stderr: e.stderr ?? '' }),
      );
      await new Promise((resolve) => setTimeout(resolve, 50));
      return { ...r, bytes: received.reduce((n, b) => n + b.length, 0) };
    };

    it('is refused before a byte is sent when it is not the expected user', async () => {
      const other = userInfo().username === 'pe-postgres' ? 'postgres' : 'pe-postgres';
      const r = await psql(other);
      expect(r.ok).toBe(false);
      expect(r.stderr).toMatch(/requirepeer/);
      expect(r.bytes).toBe(0);
    });

    it('gets the startup packet when it is (the check is what stops the planted one)', async () => {
      const r = await psql(userInfo().username);
      expect(r.ok).toBe(false); // a fake server: it never answers
      expect(r.stderr).not.toMatch(/requirepeer/);
      expect(r.bytes).toBeGreaterThan(0);
    });
  });
});
