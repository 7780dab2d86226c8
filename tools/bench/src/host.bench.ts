import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { SshHost } from '@pe-stack/pe-host';
import { startTestSshd } from '@pe-stack/testkit/sshd';
import { percentile, round, timed } from './stats.js';

const run = promisify(execFile);

/**
 * pe-host: exec round trip over one SshHost connection against the OpenSSH
 * client multiplexed over a ControlMaster socket, on the same throwaway sshd;
 * and the wall time of 100 commands at the channel cap.
 */
export async function benchHost(rounds = 40): Promise<Record<string, number>> {
  // A user whose login shell is plain sh: root's bash here sources a .bashrc
  // (Debian's bash does so for ssh sessions) that costs ~90 ms a command and
  // would measure the shell, not the transport.
  const user = 'pebench';
  await run('useradd', ['-m', '-s', '/bin/sh', user]).catch(() => undefined);
  await run('usermod', ['-p', '*', user]);
  const sshd = await startTestSshd({ users: [user] });
  const host = new SshHost({
    name: 'bench.test',
    address: '127.0.0.1',
    port: sshd.port,
    user,
    privateKey: sshd.clientKeyPath,
    knownHosts: sshd.knownHostsPath,
  });
  const sock = `${sshd.dir}/cm.sock`;
  const base = [
    '-p',
    String(sshd.port),
    '-i',
    sshd.clientKeyPath,
    '-o',
    `UserKnownHostsFile=${sshd.knownHostsPath}`,
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    'BatchMode=yes',
    '-o',
    `ControlPath=${sock}`,
  ];
  const master = spawn('ssh', [...base, '-o', 'ControlMaster=yes', '-N', `${user}@127.0.0.1`], { stdio: 'ignore' });
  try {
    const connect = await timed(() => host.exec(['true']));
    const ours: number[] = [];
    for (let i = 0; i < rounds; i++) ours.push((await host.exec(['true'])).ms);
    // wait for the master socket
    for (let i = 0; i < 50; i++) {
      const r = await run('ssh', [...base, '-O', 'check', `${user}@127.0.0.1`]).then(
        () => true,
        () => false,
      );
      if (r) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const openssh: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const t = await timed(() => run('ssh', [...base, '-o', 'ControlMaster=no', `${user}@127.0.0.1`, 'true']));
      openssh.push(t.ms);
    }
    const hundred = await timed(() => Promise.all(Array.from({ length: 100 }, () => host.exec(['true']))));
    const p50 = percentile(ours, 50);
    const cm50 = percentile(openssh, 50);
    return {
      'host.connect_first_exec_ms': round(connect.ms),
      'host.exec_p50_ms': round(p50),
      'host.exec_p95_ms': round(percentile(ours, 95)),
      'host.openssh_controlmaster_p50_ms': round(cm50),
      'host.openssh_controlmaster_p95_ms': round(percentile(openssh, 95)),
      'host.ratio_ours_to_controlmaster_p50': round(p50 / cm50, 2),
      'host.100_commands_at_cap_ms': round(hundred.ms),
      'host.peak_channels': host.stats.peakChannels,
    };
  } finally {
    master.kill();
    await host.close();
    await sshd.stop();
    await run('userdel', ['-r', user]).catch(() => undefined);
  }
}
