import { isIP } from 'node:net';
import { InvalidInputError } from './errors.js';

const LABEL = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/;
const INET_ATON_PART = /^(0x[0-9a-f]*|[0-9]+)$/i;

/** A DNS name or an IPv4/IPv6 literal; anything else is refused at the edge. */
export function validateHostname(name: string): string {
  if (typeof name !== 'string' || name.length === 0 || name.length > 253) {
    throw new InvalidInputError(`"${String(name)}" is not a valid host name.`);
  }
  if (isIpLiteral(name)) return name;
  if (name.startsWith('[') || name.includes(':')) {
    throw new InvalidInputError(
      `"${name}" is not a valid IP address${name.startsWith('[') ? ': write an IPv6 address without brackets' : ''}.`,
    );
  }
  const labels = name.replace(/\.$/, '').split('.');
  // `010.0.0.1`, `1.2.3.256`, `0x7f.1`, `123`: not addresses by net.isIP, yet
  // the resolver's inet_aton would read them as one (octal, hex, short forms)
  if (labels.every((l) => INET_ATON_PART.test(l))) {
    throw new InvalidInputError(`"${name}" is not a valid IP address: use four decimal parts without leading zeros.`);
  }
  if (!labels.every((l) => LABEL.test(l))) {
    throw new InvalidInputError(`"${name}" is not a valid host name: use letters, digits, hyphens and dots.`);
  }
  return name;
}

/**
 * A bare IPv4 or IPv6 address as node's `net.isIP` reads it (IPv6 may carry
 * a zone, `fe80::1%eth0`). Brackets are refused: `[::1]` belongs in a uri
 * (`ssh://[::1]:22`, from which the inventory strips them); callers put the
 * value into listen_addresses, pg_hba, DNS records and socket addresses,
 * where brackets are wrong. IPv4 with leading zeros (`010.0.0.1`) is refused
 * too, as `net.isIP` does: some readers take it as octal.
 */
export function isIpLiteral(name: string): boolean {
  return typeof name === 'string' && isIP(name) !== 0 && /^[0-9A-Fa-f:.]+(%[A-Za-z0-9_.-]+)?$/.test(name);
}

/** An absolute path without NUL, newlines or `..` components. */
export function validateRemotePath(path: string): string {
  if (typeof path !== 'string' || !path.startsWith('/')) {
    throw new InvalidInputError(`"${String(path)}" is not an absolute path.`);
  }
  if (/[\0\n\r]/.test(path)) throw new InvalidInputError('a path contains a NUL or newline character.');
  if (path.split('/').includes('..')) throw new InvalidInputError(`"${path}" contains "..".`);
  return path;
}

/** Environment variable names are passed to a remote shell: keep them plain. */
export function validateEnvName(name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name))
    throw new InvalidInputError(`"${name}" is not a valid environment variable name.`);
  return name;
}
