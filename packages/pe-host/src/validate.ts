import { InvalidInputError } from './errors.js';

const LABEL = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/;

/** A DNS name or an IPv4/IPv6 literal; anything else is refused at the edge. */
export function validateHostname(name: string): string {
  if (typeof name !== 'string' || name.length === 0 || name.length > 253) {
    throw new InvalidInputError(`"${String(name)}" is not a valid host name.`);
  }
  if (isIpLiteral(name)) return name;
  const labels = name.replace(/\.$/, '').split('.');
  if (!labels.every((l) => LABEL.test(l))) {
    throw new InvalidInputError(`"${name}" is not a valid host name: use letters, digits, hyphens and dots.`);
  }
  return name;
}

export function isIpLiteral(name: string): boolean {
  if (/^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.test(name)) {
    return name.split('.').every((o) => Number(o) <= 255);
  }
  return /^\[?[0-9A-Fa-f:]+(%[A-Za-z0-9]+)?\]?$/.test(name) && name.includes(':');
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
