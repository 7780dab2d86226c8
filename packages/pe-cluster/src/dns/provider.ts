import { isIpLiteral, Semaphore, type Host } from '@pe-stack/pe-host';
import { childEnv, type ChildEnvOptions } from '../child-env.js';
import { DnsError } from '../errors.js';

/** Moves a DNS name (primary_cname) to an address. Idempotent: a second call with the same address changes nothing. */
export interface DnsProvider {
  readonly kind: 'manual' | 'hosts-file' | 'nsupdate' | 'command';
  /** Make `name` resolve to `address` (an IP literal). */
  set(name: string, address: string, opts?: { signal?: AbortSignal; exclude?: readonly string[] }): Promise<DnsChange>;
}

export interface DnsChange {
  changed: boolean;
  /** What was done, secrets masked (e.g. "updated /etc/hosts on 3 of 4 nodes; agent2 unreachable"). */
  detail: string;
  /** Nodes that could not be changed (hosts-file: unreachable nodes), with why. */
  skipped: { host: string; why: string }[];
}

export interface Resolution {
  host: string;
  /** Addresses the host's resolver gives for the name (getent ahosts); empty when it does not resolve. */
  addresses: string[];
  ok: boolean;
  error?: string;
}

/**
 * `argv` run under `env -i` with childEnv's variables only. A Host starts a
 * program with the CLI's whole environment (sudo password, key data); `env -i`
 * drops it, whatever the Host. The values travel in argv, so `pass` must hold
 * no secret (DNS names and addresses; secrets go on stdin).
 */
export function withChildEnv(argv: readonly string[], opts: ChildEnvOptions = {}): string[] {
  const program = argv[0] ?? '';
  if (program === '' || program.includes('='))
    throw new DnsError(`cannot run "${program}": a program name must be non-empty and hold no "=".`, {
      hint: 'Rename the DNS hook (or link it) to a path without "=".',
    });
  const assignments = Object.entries(childEnv(opts)).map(([k, v]) => `${k}=${v}`);
  return ['env', '-i', '--', ...assignments, ...argv];
}

/** What `name` resolves to on one host, through its own resolver (nsswitch: files, then DNS), as a service there would see it. */
export async function resolveOn(h: Host, name: string): Promise<string[]> {
  // from: {}: the host's own resolver needs no variable of the CLI (only a default PATH)
  const argv = withChildEnv(['getent', 'ahosts', name], { from: {} });
  const r = await h.exec(argv, { readOnly: true, allowFailure: true, timeoutMs: 15_000 });
  if (r.code !== 0) return [];
  return [
    ...new Set(
      r.stdout
        .split('\n')
        .map((l) => l.trim().split(/\s+/)[0] ?? '')
        .filter((a) => isIpLiteral(a)),
    ),
  ];
}

/**
 * Resolves `name` on every host (in parallel) until each gives exactly
 * `address`, or the time is up. Returns one row per host; `ok` false where
 * the name still resolves elsewhere (a DNS cache, a resolver that was not
 * updated) or the host could not be asked.
 */
export async function verifyResolution(
  hosts: readonly Host[],
  name: string,
  address: string,
  opts: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<Resolution[]> {
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  const sem = new Semaphore(8);
  return Promise.all(
    hosts.map((h) =>
      sem.run(async (): Promise<Resolution> => {
        for (;;) {
          let addresses: string[] = [];
          let error: string | undefined;
          try {
            addresses = await resolveOn(h, name);
          } catch (e) {
            error = h.redactor.redact(e instanceof Error ? e.message : String(e));
          }
          const ok = addresses.length > 0 && addresses.every((a) => a === address);
          if (ok || Date.now() >= deadline) return { host: h.name, addresses, ok, ...(error ? { error } : {}) };
          await new Promise((r) => setTimeout(r, opts.intervalMs ?? 250));
        }
      }),
    ),
  );
}

/** Throws DnsError naming every host where the name does not resolve to the address. */
export function assertResolved(rows: readonly Resolution[], name: string, address: string): void {
  const bad = rows.filter((r) => !r.ok);
  if (bad.length === 0) return;
  const what = bad
    .map((r) => `${r.host}: ${r.error ?? (r.addresses.length ? r.addresses.join(', ') : 'does not resolve')}`)
    .join('; ');
  throw new DnsError(`${name} does not resolve to ${address} everywhere (${what}).`, {
    hint: 'Check the DNS provider settings (inventory dns:) and resolver caches on those hosts.',
  });
}

export function requireAddress(address: string): string {
  if (!isIpLiteral(address)) throw new DnsError(`"${address}" is not an IP address.`);
  return address;
}

/** The operator moves the name; we only verify. */
export class ManualDns implements DnsProvider {
  readonly kind = 'manual' as const;
  set(name: string, address: string): Promise<DnsChange> {
    requireAddress(address);
    return Promise.resolve({
      changed: false,
      detail: `manual: point ${name} at ${address} yourself; it is verified from every master`,
      skipped: [],
    });
  }
}
