import { PeError } from '@pe-stack/pe-host';
import type { RunResult } from '@pe-stack/pe-steps';

/**
 * Documented exit statuses of `pe-cluster` (README, "Exit codes").
 * Stable: scripts may depend on them.
 */
export const EXIT = {
  /** Success; for `status`: healthy. */
  OK: 0,
  /** A bug: an unexpected error (not a PeError). */
  INTERNAL: 1,
  /** Bad input: usage, inventory, unknown host or flow, invalid value. Nothing was contacted or changed. */
  BAD_INPUT: 2,
  /** `status`: degraded (the cluster serves, something needs attention). */
  DEGRADED: 3,
  /** `status`: broken (no CA or two CAs, the primary down, a master without a usable certificate or database). */
  BROKEN: 4,
  /** A host could not be reached or trusted: unreachable, authentication refused, unknown or changed host key, sudo refused. */
  CONNECTION: 5,
  /** A command or step failed on a host (including timeouts and files that cannot be parsed or edited). */
  COMMAND_FAILED: 6,
  /** A check of the result failed: a step's verify (E_VERIFY, also MCollective), a certificate, the database from a secondary (password, pg_hba, connection). */
  VERIFY_FAILED: 7,
  /** The flow needs an operation that is not available yet; nothing was changed. */
  NOT_AVAILABLE: 8,
  /** Interrupted (SIGINT / Ctrl-C): rerun with --resume. */
  INTERRUPTED: 130,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

const BY_CODE: Record<string, ExitCode> = {
  E_INVENTORY: EXIT.BAD_INPUT,
  E_USAGE: EXIT.BAD_INPUT,
  E_INVALID_INPUT: EXIT.BAD_INPUT,
  E_LAYOUT_INVALID: EXIT.BAD_INPUT,
  E_UNREACHABLE: EXIT.CONNECTION,
  E_AUTH: EXIT.CONNECTION,
  E_HOSTKEY_UNKNOWN: EXIT.CONNECTION,
  E_HOSTKEY_CHANGED: EXIT.CONNECTION,
  E_SUDO_PASSWORD: EXIT.CONNECTION,
  E_SUDO_TTY: EXIT.CONNECTION,
  E_CLOSED: EXIT.CONNECTION,
  E_VERIFY: EXIT.VERIFY_FAILED,
  E_CERT_VERIFY: EXIT.VERIFY_FAILED,
  E_DB_AUTH: EXIT.VERIFY_FAILED,
  E_DB_HBA: EXIT.VERIFY_FAILED,
  E_DB_CONNECT: EXIT.VERIFY_FAILED,
  E_NOT_AVAILABLE: EXIT.NOT_AVAILABLE,
  E_INTERRUPTED: EXIT.INTERRUPTED,
  E_INTERNAL: EXIT.INTERNAL,
};

/** The exit status for an error code (a PeError's `code`). */
export function exitCodeForCode(code: string): ExitCode {
  return BY_CODE[code] ?? EXIT.COMMAND_FAILED;
}

export function exitCodeForError(e: unknown): ExitCode {
  if (e instanceof PeError) return exitCodeForCode(String(e.code));
  return EXIT.INTERNAL;
}

export function exitCodeForRun(r: RunResult): ExitCode {
  if (r.status === 'ok') return EXIT.OK;
  if (r.status === 'interrupted') return EXIT.INTERRUPTED;
  return r.error ? exitCodeForCode(r.error.code) : EXIT.INTERNAL;
}
