import { CommandFailedError } from '@pe-stack/pe-host';
import { fileOf } from '@pe-stack/pe-config-files';
import type { Master } from './cluster.js';

export interface PingResult {
  /** Identities that answered, in answer order (duplicates kept: a duplicate means a message was delivered twice). */
  responders: string[];
  ms: number;
  stdout: string;
}

/** `identity   time=12.34 ms` lines of `mco ping`. */
export function parsePing(stdout: string): string[] {
  const out: string[] = [];
  for (const line of stdout.split(/\r?\n/)) {
    const m = /^(\S+)\s+time=[\d.]+ ?ms\s*$/.exec(line.trim());
    if (m) out.push(m[1]!);
  }
  return out;
}

/**
 * Run `mco ping` on a master with its client configuration. A broker that
 * cannot be reached fails after `connectTimeoutS` (mco would otherwise retry
 * forever); nobody answering is an empty result.
 */
export async function mcoPing(
  m: Master,
  opts: { sudo?: boolean; timeoutMs?: number; discoveryTimeoutS?: number; connectTimeoutS?: number } = {},
): Promise<PingResult> {
  const cfg = fileOf(m.layout, 'mcollectiveClientCfg').path;
  const argv = [
    'mco',
    'ping',
    '--config',
    cfg,
    '--dt',
    String(opts.discoveryTimeoutS ?? 3),
    '--connection-timeout',
    String(opts.connectTimeoutS ?? 10),
  ];
  // mco ping exits 4 when nobody answered: a result (no responders), not a failure of the command
  const r = await m.host.exec(argv, {
    sudo: opts.sudo ?? true,
    readOnly: true,
    timeoutMs: opts.timeoutMs ?? 60_000,
    allowFailure: true,
  });
  if (r.code !== 0 && !(r.code === 4 && /No responses received/.test(r.stdout + r.stderr))) {
    throw new CommandFailedError(
      m.host.name,
      m.host.redactor.redactArgv(argv),
      r.code,
      m.host.redactor.redact(r.stderr),
      m.host.redactor.redact(r.stdout),
    );
  }
  return { responders: parsePing(r.stdout), ms: r.ms, stdout: m.host.redactor.redact(r.stdout) };
}
