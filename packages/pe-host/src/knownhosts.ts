import { createHash, createHmac, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';

/** `SHA256:` + unpadded base64 of the key blob, as `ssh-keygen -l` prints it. */
export function fingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

/** The name OpenSSH looks up in known_hosts: `host` on port 22, `[host]:port` otherwise. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

export interface KnownHostEntry {
  marker: '' | '@revoked' | '@cert-authority';
  patterns: string;
  keyType: string;
  key: Buffer;
  line: number;
}

export function parseKnownHosts(text: string): KnownHostEntry[] {
  const out: KnownHostEntry[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const fields = line.split(/\s+/);
    let marker: KnownHostEntry['marker'] = '';
    if (fields[0] === '@revoked' || fields[0] === '@cert-authority')
      marker = fields.shift() as KnownHostEntry['marker'];
    const [patterns, keyType, b64] = fields;
    if (!patterns || !keyType || !b64) return;
    out.push({ marker, patterns, keyType, key: Buffer.from(b64, 'base64'), line: i + 1 });
  });
  return out;
}

function globToRegExp(glob: string): RegExp {
  const esc = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${esc}$`, 'i');
}

/** Does a known_hosts host field (hashed `|1|salt|hash`, or patterns with `*`, `?`, `!`) name this host? */
export function patternsMatch(patterns: string, name: string): boolean {
  if (patterns.startsWith('|1|')) {
    const [, , salt, hash] = patterns.split('|');
    if (!salt || !hash) return false;
    const h = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64');
    return h === hash;
  }
  let matched = false;
  for (const p of patterns.split(',')) {
    const negated = p.startsWith('!');
    if (globToRegExp(negated ? p.slice(1) : p).test(name)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

export type HostKeyVerdict =
  | { ok: true }
  | { ok: false; reason: 'unknown' | 'changed'; expected: string[] }
  /** `line`: the known_hosts line of the `@revoked` entry that matched. */
  | { ok: false; reason: 'revoked'; expected: string[]; line: number };

/**
 * Checks a presented key against known_hosts entries for any of `names`
 * (e.g. the inventory name and the address). A key on any `@revoked` line
 * is refused whatever that line's host patterns say, even when another entry
 * accepts it (a revoked key is not to be trusted for any host).
 */
export function verifyAgainstKnownHosts(entries: KnownHostEntry[], names: string[], keyBlob: Buffer): HostKeyVerdict {
  const forHost = entries.filter(
    (e) => e.marker !== '@cert-authority' && names.some((n) => patternsMatch(e.patterns, n)),
  );
  const revoked = entries.find((e) => e.marker === '@revoked' && e.key.equals(keyBlob));
  if (revoked) return { ok: false, reason: 'revoked', expected: [], line: revoked.line };
  const plain = forHost.filter((e) => e.marker === '');
  if (plain.some((e) => e.key.equals(keyBlob))) return { ok: true };
  if (plain.length === 0) return { ok: false, reason: 'unknown', expected: [] };
  return { ok: false, reason: 'changed', expected: plain.map((e) => fingerprint(e.key)) };
}

export async function readKnownHosts(path: string): Promise<KnownHostEntry[]> {
  try {
    return parseKnownHosts(await fs.readFile(path, 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}

/** Trust on first use: append a hashed entry (only ever called on an explicit opt-in). */
export async function appendKnownHost(path: string, name: string, keyBlob: Buffer): Promise<void> {
  const keyType =
    keyBlob.readUInt32BE(0) > 0 ? keyBlob.subarray(4, 4 + keyBlob.readUInt32BE(0)).toString('latin1') : 'unknown';
  const salt = randomBytes(20);
  const hash = createHmac('sha1', salt).update(name).digest('base64');
  await fs.appendFile(path, `|1|${salt.toString('base64')}|${hash} ${keyType} ${keyBlob.toString('base64')}\n`, {
    mode: 0o600,
  });
}
