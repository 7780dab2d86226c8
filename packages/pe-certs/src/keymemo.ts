import type { FileStat } from '@pe-stack/pe-host';

/**
 * The public half of private keys already asked of openssl, so that a
 * check, its apply and its re-check do not run `openssl pkey` on the host
 * again for a key that cannot have changed. Only public keys are held here;
 * the private key never leaves its host.
 *
 * An entry is keyed by host name, path and sudo, and is valid only while the
 * key file's attributes (type, size, mode, owner, group, mtime: Host.stat,
 * which pe-cluster's file cache answers without a round trip) are the ones
 * seen when openssl read it. A key whose mtime is less than `minAgeMs` old
 * (controller clock) is not remembered: a replacement within the same second
 * of the same size would otherwise look unchanged. Symlinks are never
 * remembered (their own attributes say nothing of the target). Whoever
 * replaces a key on purpose (regenerateNodeCert) forgets its directory.
 */
export class PublicKeyMemo {
  private readonly entries = new Map<string, { id: string; pub: string }>();

  constructor(readonly minAgeMs = 2_000) {}

  private static key(host: string, path: string, sudo: boolean): string {
    return `${host}\0${path}\0${sudo ? 1 : 0}`;
  }

  private static identity(st: FileStat): string | undefined {
    if (!st.isFile || st.isSymlink) return undefined;
    return [st.size, st.mode, st.uid, st.gid, st.mtimeMs].join(':');
  }

  /** The remembered public key of `path` on `host`, when its attributes are still those seen then. */
  get(host: string, path: string, sudo: boolean, st: FileStat): string | undefined {
    const id = PublicKeyMemo.identity(st);
    const e = this.entries.get(PublicKeyMemo.key(host, path, sudo));
    return id !== undefined && e?.id === id ? e.pub : undefined;
  }

  /** Remembers the public key openssl printed for the key file with these attributes (`now`: for tests). */
  set(host: string, path: string, sudo: boolean, st: FileStat, pub: string, now = Date.now()): void {
    const k = PublicKeyMemo.key(host, path, sudo);
    const id = PublicKeyMemo.identity(st);
    if (id === undefined || now - st.mtimeMs < this.minAgeMs) {
      this.entries.delete(k);
      return;
    }
    this.entries.set(k, { id, pub });
  }

  /** Forgets every key at or below `dir` on `host` (its keys are being replaced). */
  forgetUnder(host: string, dir: string): void {
    const root = dir.replace(/\/+$/, '');
    for (const k of [...this.entries.keys()]) {
      const [h, p] = k.split('\0');
      if (h === host && (p === root || p!.startsWith(`${root}/`))) this.entries.delete(k);
    }
  }

  clear(): void {
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }
}

/** The process-wide memo verifyNode and regenerateNodeCert use unless given their own (or `false`). */
export const publicKeyMemo = new PublicKeyMemo();
