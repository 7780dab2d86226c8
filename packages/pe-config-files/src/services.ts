import { ConfigEditError } from './errors.js';
import { type Line, splitLines, joinLines, insertLines } from './text.js';

/**
 * puppetserver's services.d/*.cfg and bootstrap.cfg: one trapperkeeper service
 * per line, `#` comments. A service is enabled by an uncommented line and
 * disabled by commenting it out, so the packaged hint comments stay intact.
 */
export const CA_SERVICE = 'puppetlabs.services.ca.certificate-authority-service/certificate-authority-service';
export const CA_DISABLED_SERVICE =
  'puppetlabs.services.ca.certificate-authority-disabled-service/certificate-authority-disabled-service';

export type ServicesOp =
  { op: 'enable'; service: string } | { op: 'disable'; service: string } | { op: 'ca'; enabled: boolean };

const COMMENTED = /^(\s*)#+\s*(\S+)\s*$/;

export class ServicesDocument {
  readonly path: string;
  private readonly lines: Line[];

  constructor(text: string, path: string) {
    this.path = path;
    this.lines = splitLines(text);
  }

  /** Services enabled (uncommented), in file order. */
  enabled(): string[] {
    return this.lines.map((l) => l.text.trim()).filter((t) => t !== '' && !t.startsWith('#'));
  }

  isEnabled(service: string): boolean {
    return this.enabled().includes(service);
  }

  /** Uncomment the service's line, or append it when no line names it. */
  enable(service: string): boolean {
    check(this.path, service);
    if (this.isEnabled(service)) return false;
    const i = this.lines.findIndex((l) => COMMENTED.exec(l.text)?.[2] === service);
    if (i >= 0) {
      const line = this.lines[i]!;
      line.text = `${COMMENTED.exec(line.text)![1]}${service}`;
    } else insertLines(this.lines, this.lines.length, [service]);
    return true;
  }

  /** Comment out every line that enables the service. */
  disable(service: string): boolean {
    check(this.path, service);
    let changed = false;
    for (const l of this.lines) {
      if (l.text.trim() === service) {
        l.text = l.text.replace(service, `#${service}`);
        changed = true;
      }
    }
    return changed;
  }

  /** ca.cfg: the real CA service (true) or the disabled CA service (false); exactly one of them enabled. */
  setCa(enabled: boolean): boolean {
    const [on, off] = enabled ? [CA_SERVICE, CA_DISABLED_SERVICE] : [CA_DISABLED_SERVICE, CA_SERVICE];
    const a = this.disable(off);
    const b = this.enable(on);
    return a || b;
  }

  caEnabled(): boolean | undefined {
    if (this.isEnabled(CA_SERVICE)) return true;
    if (this.isEnabled(CA_DISABLED_SERVICE)) return false;
    return undefined;
  }

  apply(op: ServicesOp): boolean {
    if (op.op === 'ca') return this.setCa(op.enabled);
    return op.op === 'enable' ? this.enable(op.service) : this.disable(op.service);
  }

  toString(): string {
    return joinLines(this.lines);
  }
}

function check(path: string, service: string): void {
  if (!/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/.test(service))
    throw new ConfigEditError(path, `"${service}" is not a trapperkeeper service (namespace/service-name).`);
}

export function parseServices(text: string, path: string): ServicesDocument {
  return new ServicesDocument(text, path);
}
