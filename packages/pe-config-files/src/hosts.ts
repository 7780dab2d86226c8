import { isIP } from 'node:net';
import { ConfigEditError } from './errors.js';
import { type Line, splitLines, joinLines, insertLines, removeLines } from './text.js';

/**
 * /etc/hosts (the lab's DNS for `primary_cname`): `address name [aliases...]
 * [# comment]`. `setHost` makes a name resolve to exactly the given
 * addresses: the name is dropped from other addresses' lines (a line left
 * with no name goes) and added where missing. Idempotent.
 */
export type HostsOp = { op: 'set'; name: string; addresses: readonly string[] } | { op: 'remove'; name: string };

interface Entry {
  index: number;
  address: string;
  names: string[];
}

const LINE = /^(\s*)(\S+)(\s+)([^#]*?)(\s*(?:#.*)?)$/;

export class HostsDocument {
  readonly path: string;
  private readonly lines: Line[];

  constructor(text: string, path: string) {
    this.path = path;
    this.lines = splitLines(text);
  }

  private entries(): Entry[] {
    const out: Entry[] = [];
    this.lines.forEach((l, index) => {
      if (/^\s*(#|$)/.test(l.text)) return;
      const m = LINE.exec(l.text);
      if (!m) return;
      out.push({ index, address: m[2]!, names: m[4]!.split(/\s+/).filter(Boolean) });
    });
    return out;
  }

  /** Addresses the name resolves to, in file order. */
  addresses(name: string): string[] {
    const n = name.toLowerCase();
    return this.entries()
      .filter((e) => e.names.some((x) => x.toLowerCase() === n))
      .map((e) => e.address);
  }

  set(name: string, addresses: readonly string[]): boolean {
    this.checkName(name);
    if (addresses.length === 0) throw new ConfigEditError(this.path, `no address given for ${name}; use remove.`);
    for (const a of addresses) if (isIP(a) === 0) throw new ConfigEditError(this.path, `"${a}" is not an IP address.`);
    let changed = this.dropName(name, (addr) => !addresses.includes(addr));
    const have = new Set(this.addresses(name));
    for (const a of addresses) {
      if (have.has(a)) continue;
      const line = this.entries().find((e) => e.address === a);
      if (line) {
        const l = this.lines[line.index]!;
        const m = LINE.exec(l.text)!;
        l.text = `${m[1]}${m[2]}${m[3]}${m[4]} ${name}${m[5]}`;
      } else insertLines(this.lines, this.lines.length, [`${a}\t${name}`]);
      changed = true;
    }
    return changed;
  }

  remove(name: string): boolean {
    this.checkName(name);
    return this.dropName(name, () => true);
  }

  apply(op: HostsOp): boolean {
    return op.op === 'set' ? this.set(op.name, op.addresses) : this.remove(op.name);
  }

  toString(): string {
    return joinLines(this.lines);
  }

  private dropName(name: string, which: (address: string) => boolean): boolean {
    const n = name.toLowerCase();
    let changed = false;
    for (const e of this.entries().reverse()) {
      if (!which(e.address) || !e.names.some((x) => x.toLowerCase() === n)) continue;
      const rest = e.names.filter((x) => x.toLowerCase() !== n);
      if (rest.length === 0) removeLines(this.lines, e.index);
      else {
        const l = this.lines[e.index]!;
        const m = LINE.exec(l.text)!;
        const sep = /\s+/.exec(m[4]!)?.[0] ?? ' ';
        l.text = `${m[1]}${m[2]}${m[3]}${rest.join(sep)}${m[5]}`;
      }
      changed = true;
    }
    return changed;
  }

  private checkName(name: string): void {
    if (!/^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/.test(name))
      throw new ConfigEditError(this.path, `"${name}" is not a host name.`);
  }
}

export function parseHosts(text: string, path: string): HostsDocument {
  return new HostsDocument(text, path);
}
