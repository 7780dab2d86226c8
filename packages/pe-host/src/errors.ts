/**
 * Typed errors. Every error the project raises is a PeError: a stable `code`
 * (each package declares its codes as a closed union; the CLI maps every code
 * to an exit status), the `host` it concerns, optionally the `step`, the
 * underlying `cause`, the sentence that says what went wrong (`shortMessage`)
 * and, apart from it, what the operator should do next (`hint`). `message` is
 * both, for display. Messages never contain secrets: callers pass text through
 * a Redactor first.
 */
export interface PeErrorOptions {
  host?: string | undefined;
  step?: string | undefined;
  cause?: unknown;
  /**
   * What the operator should do next; shown after the sentence in `message`
   * (a leading newline puts it on a line of its own).
   */
  hint?: string | undefined;
}

export class PeError<C extends string = string> extends Error {
  readonly code: C;
  readonly host: string | undefined;
  readonly step: string | undefined;
  /** What went wrong, prefixed with the host: the message without the hint. */
  readonly shortMessage: string;
  /** What the operator should do next, if anything. */
  readonly hint: string | undefined;

  constructor(code: C, message: string, opts: PeErrorOptions = {}) {
    const shortMessage = `${opts.host ? `${opts.host}: ` : ''}${message}`;
    super(
      `${shortMessage}${opts.hint ? ` ${opts.hint}` : ''}`,
      opts.cause === undefined ? undefined : { cause: opts.cause },
    );
    this.name = new.target.name;
    this.code = code;
    this.host = opts.host;
    this.step = opts.step;
    this.shortMessage = shortMessage;
    this.hint = opts.hint?.trim() || undefined;
  }

  toJSON(): Record<string, unknown> {
    return { name: this.name, code: this.code, host: this.host, step: this.step, message: this.message };
  }
}

/** The codes pe-host raises. */
export type HostErrorCode =
  | 'E_UNREACHABLE'
  | 'E_AUTH'
  | 'E_HOSTKEY_UNKNOWN'
  | 'E_HOSTKEY_CHANGED'
  | 'E_HOSTKEY_REVOKED'
  | 'E_CHANNEL'
  | 'E_CLOSED'
  | 'E_COMMAND_FAILED'
  | 'E_TIMEOUT'
  | 'E_SUDO_PASSWORD'
  | 'E_SUDO_TTY'
  | 'E_PERMISSION'
  | 'E_NOT_FOUND'
  | 'E_IO'
  | 'E_INVALID_INPUT'
  | 'E_VERIFY';

/** Base of pe-host's errors; used as is for a failure without a class of its own (I/O, channel, closed connection). */
export class HostError extends PeError<HostErrorCode> {}

export class HostUnreachableError extends HostError {
  constructor(host: string, detail: string, cause?: unknown) {
    super('E_UNREACHABLE', `cannot reach the host over SSH (${detail}).`, {
      host,
      cause,
      hint: 'Check that the host is up, that the address and port in the inventory are right, and that no firewall is in the way.',
    });
  }
}

export class AuthFailedError extends HostError {
  constructor(host: string, user: string, cause?: unknown) {
    super('E_AUTH', `SSH authentication as "${user}" was refused.`, {
      host,
      cause,
      hint: "Check the user and private key in the inventory, and that the key is in that user's authorized_keys.",
    });
  }
}

export class HostKeyUnknownError extends HostError {
  readonly fingerprint: string;
  constructor(host: string, fingerprint: string) {
    super('E_HOSTKEY_UNKNOWN', `the host key ${fingerprint} is not known, so the host cannot be trusted.`, {
      host,
      hint: 'Verify the fingerprint out of band, then add it to known_hosts or to the inventory (host-key: SHA256:...), or opt in to trust-on-first-use.',
    });
    this.fingerprint = fingerprint;
  }
}

export class HostKeyChangedError extends HostError {
  readonly fingerprint: string;
  constructor(host: string, fingerprint: string, expected: string[]) {
    super(
      'E_HOSTKEY_CHANGED',
      `the host key changed: it is now ${fingerprint}, expected ${expected.join(' or ')}. This may be an attack; nothing was sent.`,
      {
        host,
        hint: 'If the host was rebuilt on purpose, remove its old entry from known_hosts and verify the new key out of band.',
      },
    );
    this.fingerprint = fingerprint;
  }
}

/** Where a host key was revoked: the known_hosts file and the line of its `@revoked` entry. */
export interface RevokedAt {
  file?: string | undefined;
  line?: number | undefined;
}

export class HostKeyRevokedError extends HostError {
  readonly fingerprint: string;
  constructor(host: string, fingerprint: string, at: RevokedAt = {}) {
    const where = at.file ? ` in ${at.file}${at.line ? ` (line ${at.line})` : ''}` : '';
    super('E_HOSTKEY_REVOKED', `the host presented ${fingerprint}, a key marked @revoked${where}; nothing was sent.`, {
      host,
      hint: 'That key must not be trusted again: give the host a new host key, verify its fingerprint out of band and add it to known_hosts or to the inventory (host-key: SHA256:...). Keep the @revoked line.',
    });
    this.fingerprint = fingerprint;
  }
}

export class CommandFailedError extends HostError {
  readonly argv: readonly string[];
  readonly exitCode: number | null;
  readonly signal: string | undefined;
  readonly stderrTail: string;
  readonly stdout: string;
  readonly stderr: string;
  constructor(
    host: string,
    argv: readonly string[],
    exitCode: number | null,
    stderr: string,
    stdout: string,
    signal?: string,
  ) {
    const tail = tailLines(stderr.trim() || stdout.trim(), 6);
    const status = exitCode === null ? `was killed by ${signal ?? 'a signal'}` : `exited ${exitCode}`;
    super('E_COMMAND_FAILED', `\`${argv.join(' ')}\` ${status}${tail ? `: ${tail}` : '.'}`, { host });
    this.argv = argv;
    this.exitCode = exitCode;
    this.signal = signal;
    this.stderrTail = tail;
    this.stdout = stdout;
    this.stderr = stderr;
  }
}

export class CommandTimeoutError extends HostError {
  readonly argv: readonly string[];
  readonly timeoutMs: number;
  constructor(host: string, argv: readonly string[], timeoutMs: number) {
    super('E_TIMEOUT', `\`${argv.join(' ')}\` did not finish within ${timeoutMs} ms and was killed on the host.`, {
      host,
      hint: 'Look at the service on the host; rerun with a longer timeout if it is merely slow.',
    });
    this.argv = argv;
    this.timeoutMs = timeoutMs;
  }
}

export class SudoPasswordError extends HostError {
  constructor(host: string, detail: 'missing' | 'wrong') {
    super(
      'E_SUDO_PASSWORD',
      detail === 'missing'
        ? 'sudo asks for a password and none is configured.'
        : 'sudo refused the configured password.',
      {
        host,
        hint: 'Set the sudo password for this host (run-as password in the inventory) or allow the user NOPASSWD sudo.',
      },
    );
  }
}

export class SudoTtyError extends HostError {
  constructor(host: string) {
    super('E_SUDO_TTY', 'sudo requires a terminal (requiretty) and could not be given one.', {
      host,
      hint: 'Allow a pty for this user in sshd, or remove "Defaults requiretty" for it.',
    });
  }
}

export class PermissionDeniedError extends HostError {
  readonly path: string;
  constructor(host: string, path: string, cause?: unknown) {
    super('E_PERMISSION', `permission denied on ${path}.`, {
      host,
      cause,
      hint: 'Run with sudo (run-as: root) or fix the permissions.',
    });
    this.path = path;
  }
}

export class FileNotFoundError extends HostError {
  readonly path: string;
  constructor(host: string, path: string, cause?: unknown) {
    super('E_NOT_FOUND', `${path} does not exist.`, { host, cause });
    this.path = path;
  }
}

export class InvalidInputError extends HostError {
  constructor(message: string, opts: PeErrorOptions = {}) {
    super('E_INVALID_INPUT', message, opts);
  }
}

/**
 * A write refused because another user could redirect it: the path is a
 * symlink that user could have made or swapped (the link, or the directory
 * holding it, belongs to someone other than root and the writer, or the
 * directory is writable by others without the sticky bit), or the temp area
 * of the write was tampered with. Code E_PERMISSION: nothing was written.
 */
export class UnsafePathError extends HostError {
  readonly path: string;
  constructor(host: string, path: string, why: string) {
    super('E_PERMISSION', `refusing to write ${path}: ${why}; another user could redirect the write.`, {
      host,
      hint: 'Replace the symlink with the file itself (or point the tool at the real path), and make sure only root owns the directories on the way.',
    });
    this.path = path;
  }
}

export function tailLines(text: string, n: number): string {
  const lines = text.split('\n');
  return lines.slice(-n).join('\n');
}
