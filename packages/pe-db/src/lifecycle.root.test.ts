import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalHost } from '@pe-stack/pe-host';
import { freePort } from '@pe-stack/testkit/sshd';
import {
  clearStaleLock,
  destroyCluster,
  initCluster,
  isRunning,
  postmasterPid,
  startInstance,
  stopInstance,
  type PgInstance,
} from './index.js';

// A postmaster killed by a power cut leaves postmaster.pid in the data directory and .s.PGSQL.<port>.lock in the
// socket directory; while nobody reaps it, its PID is a zombie's, and PostgreSQL refuses to start over either file.
const host = new LocalHost({ name: 'lock.test' });
let P: PgInstance;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pe-db-lock-'));
  chmodSync(dir, 0o755);
  P = await initCluster(host, { dir: `${dir}/pg`, port: await freePort() });
}, 120_000);
afterAll(async () => {
  if (P) await destroyCluster(P);
  rmSync(dir, { recursive: true, force: true });
});

/** A zombie's PID: a child that exited and that this process does not reap until `reap` is called. */
function zombie(): { pid: number; reap: () => void } {
  // the shell forks `sleep 0` and then stops itself: the exited sleep stays a zombie until the stopped shell is killed
  const sh = spawn('sh', ['-c', 'sleep 0 & echo $!; kill -STOP $$'], { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  sh.stdout.on('data', (d: Buffer) => (out += d.toString()));
  return {
    get pid() {
      return Number(out.trim());
    },
    reap: () => sh.kill('SIGKILL'),
  };
}

describe('clearStaleLock', () => {
  it("removes a socket lock and a postmaster.pid naming a zombie, then the server starts; a running postgres's are kept", async () => {
    await startInstance(P);
    const livePid = (await postmasterPid(P))!;
    const pidFile = `${P.dataDir}/postmaster.pid`;
    const sockLock = `${P.socketDir}/.s.PGSQL.${P.port}.lock`;
    // running: nothing is touched
    expect(await clearStaleLock(P)).toBe(false);
    expect(existsSync(pidFile) && existsSync(sockLock)).toBe(true);
    await stopInstance(P);
    const z = zombie();
    await new Promise((r) => setTimeout(r, 300));
    expect(z.pid).toBeGreaterThan(1);
    expect(z.pid).not.toBe(livePid);
    // what a killed, unreaped postmaster leaves behind
    writeFileSync(pidFile, `${z.pid}\n${P.dataDir}\n`);
    writeFileSync(sockLock, `${z.pid}\n${P.dataDir}\n`);
    try {
      expect(await clearStaleLock(P)).toBe(true);
      expect(existsSync(pidFile) || existsSync(sockLock)).toBe(false);
      await startInstance(P);
      expect(await isRunning(P)).toBe(true);
    } finally {
      z.reap();
    }
  });
});
