import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { connect as netConnect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fingerprint } from '@pe-stack/pe-host';

const run = promisify(execFile);

/**
 * A throwaway OpenSSH server on 127.0.0.1 for tests and benchmarks: its own
 * host key, key-only authentication, authorized keys in its own directory.
 * Needs root (sshd's privilege separation) and the openssh-server package.
 */
export interface TestSshd {
  port: number;
  dir: string;
  /** Client private key (ed25519, no passphrase) authorized for every user in `users`. */
  clientKeyPath: string;
  /** The host key's `SHA256:` fingerprint and a known_hosts file that pins it. */
  hostKeyFingerprint: string;
  knownHostsPath: string;
  pid: number;
  authorize(user: string): Promise<void>;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

async function keygen(path: string): Promise<void> {
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'pe-stack-test', '-f', path]);
}

async function keyBlob(pubPath: string): Promise<Buffer> {
  const [, b64] = (await fs.readFile(pubPath, 'utf8')).trim().split(/\s+/);
  return Buffer.from(b64 ?? '', 'base64');
}

export async function startTestSshd(
  opts: { users?: string[]; clientKeyPath?: string; extraConfig?: string[] } = {},
): Promise<TestSshd> {
  const dir = await fs.mkdtemp(join(tmpdir(), 'pe-sshd-'));
  await fs.chmod(dir, 0o755);
  const hostKey = join(dir, 'host_ed25519');
  await keygen(hostKey);
  let clientKeyPath = opts.clientKeyPath;
  if (!clientKeyPath) {
    clientKeyPath = join(dir, 'client_ed25519');
    await keygen(clientKeyPath);
  }
  const authDir = join(dir, 'authorized');
  await fs.mkdir(authDir, { mode: 0o755 });
  const pub = await fs.readFile(`${clientKeyPath}.pub`, 'utf8');
  const authorize = async (user: string) => fs.writeFile(join(authDir, user), pub, { mode: 0o644 });
  for (const u of ['root', ...(opts.users ?? [])]) await authorize(u);
  await fs.mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  const port = await freePort();
  const config = [
    `Port ${port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${hostKey}`,
    `AuthorizedKeysFile ${authDir}/%u`,
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'PubkeyAuthentication yes',
    'PermitRootLogin prohibit-password',
    'StrictModes no',
    'UsePAM no',
    'AllowTcpForwarding yes',
    'Subsystem sftp internal-sftp',
    `PidFile ${dir}/sshd.pid`,
    'LogLevel ERROR',
    'MaxStartups 100:30:200',
    ...(opts.extraConfig ?? []),
  ].join('\n');
  const cfgPath = join(dir, 'sshd_config');
  await fs.writeFile(cfgPath, `${config}\n`);
  const child: ChildProcess = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', cfgPath], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
  // ready when the port accepts connections
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`sshd exited: ${stderr}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = netConnect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`sshd did not listen on ${port}: ${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const blob = await keyBlob(`${hostKey}.pub`);
  const knownHostsPath = join(dir, 'known_hosts');
  const [type] = (await fs.readFile(`${hostKey}.pub`, 'utf8')).split(' ');
  await fs.writeFile(knownHostsPath, `[127.0.0.1]:${port} ${type} ${blob.toString('base64')}\n`);
  return {
    port,
    dir,
    clientKeyPath,
    hostKeyFingerprint: fingerprint(blob),
    knownHostsPath,
    pid: child.pid ?? -1,
    authorize,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}
