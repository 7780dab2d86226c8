import { applyEdits, fileOf, HostsDocument, type Layout } from '@pe-stack/pe-config-files';
import { CommandFailedError, PeError, Semaphore, type Host } from '@pe-stack/pe-host';
import { requireAddress, type DnsChange, type DnsProvider } from './provider.js';

export interface HostsFileNode {
  host: Host;
  sudo: boolean;
}

/**
 * The name in /etc/hosts on every node (pe-config-files' lossless hosts
 * editor: the name leaves every other line, the rest of the file is kept
 * byte for byte). A node that cannot be reached is skipped and reported:
 * it must be fixed before it serves again (a fenced old primary is, by
 * rejoin). When /etc/hosts is a mount point (a container, `ip netns`'s
 * bind mount) it cannot be replaced by rename: it is rewritten in place.
 */
export class HostsFileDns implements DnsProvider {
  readonly kind = 'hosts-file' as const;
  constructor(
    private readonly nodes: () => readonly HostsFileNode[],
    private readonly layout: Layout,
    private readonly opts: { reachTimeoutMs?: number; concurrency?: number } = {},
  ) {}

  /** `exclude`: nodes known to be down (a power-cut old primary): skipped without waiting for them. */
  async set(name: string, address: string, opts: { exclude?: readonly string[] } = {}): Promise<DnsChange> {
    requireAddress(address);
    const path = fileOf(this.layout, 'hosts').path;
    const sem = new Semaphore(this.opts.concurrency ?? 8);
    const skipped: DnsChange['skipped'] = [];
    let changed = 0;
    const excluded = new Set(opts.exclude ?? []);
    const nodes = this.nodes().filter((n) => !excluded.has(n.host.name));
    for (const x of excluded) skipped.push({ host: x, why: 'down (excluded)' });
    await Promise.all(
      nodes.map((n) =>
        sem.run(async () => {
          const up = await reachable(n.host, this.opts.reachTimeoutMs ?? 5_000);
          if (!up) {
            skipped.push({ host: n.host.name, why: 'unreachable' });
            return;
          }
          if (await setHostsEntry(n.host, path, name, address, n.sudo)) changed++;
        }),
      ),
    );
    const detail = `${name} -> ${address} in ${path}: changed on ${changed} of ${nodes.length} nodes${skipped.length ? `; skipped ${skipped.map((s) => `${s.host} (${s.why})`).join(', ')}` : ''}`;
    return { changed: changed > 0, detail, skipped };
  }
}

/** One node's hosts file; returns whether it changed. */
export async function setHostsEntry(
  h: Host,
  path: string,
  name: string,
  address: string,
  sudo: boolean,
): Promise<boolean> {
  let first: unknown;
  try {
    // no backup file: /etc/hosts may be a bind mount whose directory is shared (a container, `ip netns`), and the entry is reconstructible
    const [r] = await applyEdits(
      h,
      [{ kind: 'hosts', path, write: { backup: false }, ops: [{ op: 'set', name, addresses: [address] }] }],
      { sudo },
    );
    return Boolean(r?.changed);
  } catch (e) {
    // a parse error is final; a failed atomic replace (EBUSY on a bind mount; over SFTP only "Failure") falls through
    if (e instanceof PeError && /^E_CONFIG/.test(String(e.code))) throw e;
    first = e;
  }
  // /etc/hosts is a mount point: edit the text, then overwrite in place (the rename of an atomic write is refused)
  const before = (await h.readFile(path, { sudo })).toString('utf8');
  const doc = new HostsDocument(before, path);
  if (!doc.set(name, [address])) return false;
  const r = await h.exec(['sh', '-c', 'cat > "$1"', 'sh', path], {
    sudo,
    stdin: doc.toString(),
    allowFailure: true,
    timeoutMs: 30_000,
  });
  if (r.code !== 0)
    throw first instanceof Error
      ? first
      : new CommandFailedError(h.name, ['sh', '-c', 'cat > "$1"', 'sh', path], r.code, r.stderr, r.stdout);
  return true;
}

async function reachable(h: Host, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), timeoutMs + 1000)));
  const probe = h.exec(['true'], { readOnly: true, timeoutMs }).then(
    () => true,
    () => false,
  );
  try {
    return await Promise.race([probe, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
export { reachable as hostReachable };
