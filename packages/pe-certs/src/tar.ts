import { createHash, type Hash } from 'node:crypto';
import { Writable } from 'node:stream';

/** Entry types an archive of a directory of plain files may hold: files, directories and their metadata records. */
const FILE_TYPES = new Set(['0', '7']);
const DIR_TYPE = '5';
const META_TYPES = new Set(['L', 'K', 'x', 'g']);
const TYPE_NAMES: Record<string, string> = {
  '1': 'a hard link',
  '2': 'a symbolic link',
  '3': 'a character device',
  '4': 'a block device',
  '6': 'a FIFO',
};

/** Why an entry name cannot be extracted safely (absolute, `..`), or undefined when it can. */
export function unsafeEntryName(name: string): string | undefined {
  if (name.startsWith('/')) return 'an absolute path';
  if (name.split('/').includes('..')) return 'a ".." component';
  return undefined;
}

/**
 * A streaming reader of tar archives (ustar, GNU long names, pax path
 * records) that computes the sha256 of every regular file as the bytes go
 * by: the manifest of what is *in* an archive, without extracting it.
 * Entries that extraction could turn into a write outside the target
 * directory (links, devices, FIFOs, absolute or `..` names) are listed in
 * `unsafe`: a caller refuses such an archive.
 */
export class TarManifest extends Writable {
  readonly files = new Map<string, string>();
  /** `name: why` for every entry that is not a plain file or directory under the archive's root. */
  readonly unsafe: string[] = [];
  private buf = Buffer.alloc(0);
  private remaining = 0;
  private padding = 0;
  private hash: Hash | undefined;
  private name = '';
  private meta: 'longname' | 'pax' | undefined;
  private metaBuf: Buffer[] = [];
  private nextName: string | undefined;
  private ended = false;

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    try {
      this.feed(chunk);
      cb();
    } catch (e) {
      cb(e as Error);
    }
  }

  private feed(chunk: Buffer): void {
    let data = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    this.buf = Buffer.alloc(0);
    while (data.length) {
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, data.length);
        const part = data.subarray(0, n);
        if (this.hash) this.hash.update(part);
        if (this.meta) this.metaBuf.push(part);
        this.remaining -= n;
        data = data.subarray(n);
        if (this.remaining === 0) this.finishEntry();
        continue;
      }
      if (this.padding > 0) {
        const n = Math.min(this.padding, data.length);
        this.padding -= n;
        data = data.subarray(n);
        continue;
      }
      if (this.ended) return;
      if (data.length < 512) {
        this.buf = Buffer.from(data);
        return;
      }
      this.header(data.subarray(0, 512));
      data = data.subarray(512);
    }
  }

  private header(h: Buffer): void {
    if (h.every((b) => b === 0)) {
      this.ended = true;
      return;
    }
    const str = (a: number, b: number) => h.subarray(a, b).toString('utf8').replace(/\0.*$/s, '');
    const sum = h.reduce((s, b, i) => s + (i >= 148 && i < 156 ? 32 : b), 0);
    if (sum !== parseInt(str(148, 156).trim() || '0', 8)) throw new Error('tar header checksum mismatch');
    const size = h[124]! & 0x80 ? Number(h.readBigUInt64BE(128)) : parseInt(str(124, 136).trim() || '0', 8);
    const type = String.fromCharCode(h[156] || 48);
    const prefix = str(257, 263).startsWith('ustar') ? str(345, 500) : '';
    const name = this.nextName ?? (prefix ? `${prefix}/${str(0, 100)}` : str(0, 100));
    this.nextName = undefined;
    this.remaining = size;
    this.padding = (512 - (size % 512)) % 512;
    this.hash = undefined;
    this.meta = undefined;
    if (type === 'L') this.meta = 'longname';
    else if (type === 'x') this.meta = 'pax';
    else if (!META_TYPES.has(type)) this.judge(name, type);
    if (FILE_TYPES.has(type)) {
      this.name = name.replace(/^\.\//, '');
      this.hash = createHash('sha256');
    }
    if (size === 0) this.finishEntry();
  }

  /** Records an entry that is not a plain file or directory, or whose name leaves the root. */
  private judge(name: string, type: string): void {
    const bad = unsafeEntryName(name);
    if (bad) this.unsafe.push(`${name}: ${bad}`);
    else if (!FILE_TYPES.has(type) && type !== DIR_TYPE)
      this.unsafe.push(`${name}: ${TYPE_NAMES[type] ?? `entry type ${JSON.stringify(type)}`}`);
  }

  private finishEntry(): void {
    if (this.hash) {
      this.files.set(this.name, this.hash.digest('hex'));
      this.hash = undefined;
    } else if (this.meta === 'longname') {
      this.nextName = Buffer.concat(this.metaBuf).toString('utf8').replace(/\0.*$/s, '');
    } else if (this.meta === 'pax') {
      const m = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(Buffer.concat(this.metaBuf).toString('utf8'));
      if (m) this.nextName = m[1];
    }
    this.meta = undefined;
    this.metaBuf = [];
  }
}
