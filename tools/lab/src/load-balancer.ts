import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { ctlIp, ctlNs, type LabConfig } from './config.js';
import { LabError } from './errors.js';
import { haproxyConfig, haproxyPidFile, haproxySocket, lbCaFile } from './paths.js';
import { killPid } from './processes.js';
import type { ProfileSpec } from './profiles.js';
import { runRoot, sleep } from './sys.js';
import type { HostRecord, LabState } from './types.js';

/** haproxy in the controller: puppet.<domain>:8140 spread over every master that is up. */

export interface Backend {
  name: string;
  status: string;
}

/** Writes haproxy's configuration for the lab's masters and (re)starts it; no masters, no load balancer. */
export async function startLoadBalancer(c: LabConfig, s: LabState, spec: ProfileSpec): Promise<void> {
  const masters = s.hosts.filter((h) => h.role !== 'agent');
  if (masters.length === 0) return;
  mkdirSync(`${c.stateDir}/haproxy`, { recursive: true });
  const verify = spec.lbVerifiesCa && existsSync(lbCaFile(c));
  writeFileSync(haproxyConfig(c), haproxyCfg(c, masters, verify));
  await stopLoadBalancer(c);
  await runRoot('ip', ['netns', 'exec', ctlNs(c), 'haproxy', '-D', '-f', haproxyConfig(c)]);
}

/** The configuration text; with `verify`, health checks are TLS handshakes verified against the primary's CA. */
function haproxyCfg(c: LabConfig, masters: readonly HostRecord[], verify: boolean): string {
  const check = verify ? `check check-ssl verify required ca-file ${lbCaFile(c)}` : 'check';
  return [
    '# Written by tools/lab: puppet.<domain>:8140 spread over every master that is up.',
    'global',
    `  pidfile ${haproxyPidFile(c)}`,
    `  stats socket ${haproxySocket(c)} mode 600 level admin`,
    '  maxconn 4096',
    'defaults',
    '  mode tcp',
    '  timeout connect 3s',
    '  timeout client 15m',
    '  timeout server 15m',
    'frontend puppet',
    `  bind ${ctlIp(c)}:8140`,
    '  default_backend masters',
    'backend masters',
    '  balance roundrobin',
    '  option redispatch',
    '  retries 2',
    '  default-server inter 1s fall 2 rise 2',
    ...masters.map((m) => `  server ${m.name} ${m.ip}:8140 ${check}`),
    '',
  ].join('\n');
}

export async function stopLoadBalancer(c: LabConfig): Promise<void> {
  try {
    const pid = Number(readFileSync(haproxyPidFile(c), 'utf8').trim());
    if (pid > 0 && readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'haproxy') {
      killPid(pid);
      for (let i = 0; i < 100 && existsSync(`/proc/${pid}`); i++) await sleep(20);
    }
  } catch {
    // not running
  }
  rmSync(haproxyPidFile(c), { force: true });
}

/** haproxy's view of the masters: `show stat` over its admin socket. */
export async function loadBalancerBackends(c: LabConfig): Promise<Backend[]> {
  const text = await new Promise<string>((resolve, reject) => {
    const sock = connect(haproxySocket(c));
    let buf = '';
    sock.on('connect', () => sock.end('show stat\n'));
    sock.on('data', (d) => (buf += d.toString()));
    sock.on('end', () => resolve(buf));
    sock.on('error', reject);
  });
  const rows = text.split('\n').filter((l) => l.startsWith('masters,'));
  return rows
    .map((r) => r.split(','))
    .filter((f) => f[1] !== 'BACKEND')
    .map((f) => ({ name: f[1] ?? '', status: f[17] ?? '' }));
}

/** Waits until the load balancer reports a master in a state (UP, DOWN). */
export async function waitForBackend(c: LabConfig, name: string, status: string, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (true) {
    const b = await loadBalancerBackends(c).catch(() => []);
    if (b.find((x) => x.name === name)?.status === status) return;
    if (Date.now() > end) {
      const seen = b.map((x) => `${x.name}=${x.status}`).join(' ') || 'nothing';
      throw new LabError(
        'E_LAB_BOOT',
        `the load balancer did not see ${name} ${status} within ${timeoutMs / 1000} s (it sees: ${seen}).`,
      );
    }
    await sleep(250);
  }
}
