import type { CertErrorCode } from '@pe-stack/pe-certs';
import type { ConfigErrorCode } from '@pe-stack/pe-config-files';
import type { DbErrorCode } from '@pe-stack/pe-db';
import { PeError, type HostErrorCode } from '@pe-stack/pe-host';
import type { McoErrorCode } from '@pe-stack/pe-mcollective';
import type { RunResult, StepsErrorCode } from '@pe-stack/pe-steps';
import type { ClusterErrorCode } from './errors.js';

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
  /** A host could not be reached or trusted: unreachable, authentication refused, unknown, changed or revoked host key, sudo refused. */
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

/** Every code any package of the stack raises. */
export type ErrorCode =
  HostErrorCode | StepsErrorCode | ConfigErrorCode | CertErrorCode | DbErrorCode | McoErrorCode | ClusterErrorCode;

/** The exit status of every code: total, so a new code does not compile until it has one (README table too). */
export const EXIT_BY_CODE: Readonly<Record<ErrorCode, ExitCode>> = {
  // bad input
  E_INVENTORY: EXIT.BAD_INPUT,
  E_USAGE: EXIT.BAD_INPUT,
  E_INVALID_INPUT: EXIT.BAD_INPUT,
  E_LAYOUT_INVALID: EXIT.BAD_INPUT,
  E_STATE_UNSAFE: EXIT.BAD_INPUT,
  // a host could not be reached or trusted
  E_UNREACHABLE: EXIT.CONNECTION,
  E_AUTH: EXIT.CONNECTION,
  E_HOSTKEY_UNKNOWN: EXIT.CONNECTION,
  E_HOSTKEY_CHANGED: EXIT.CONNECTION,
  E_HOSTKEY_REVOKED: EXIT.CONNECTION,
  E_SUDO_PASSWORD: EXIT.CONNECTION,
  E_SUDO_TTY: EXIT.CONNECTION,
  E_CLOSED: EXIT.CONNECTION,
  // a command or step failed on a host
  E_CHANNEL: EXIT.COMMAND_FAILED,
  E_COMMAND_FAILED: EXIT.COMMAND_FAILED,
  E_TIMEOUT: EXIT.COMMAND_FAILED,
  E_PERMISSION: EXIT.COMMAND_FAILED,
  E_NOT_FOUND: EXIT.COMMAND_FAILED,
  E_IO: EXIT.COMMAND_FAILED,
  E_CONFIG_PARSE: EXIT.COMMAND_FAILED,
  E_CONFIG_EDIT: EXIT.COMMAND_FAILED,
  E_CSR_REFUSED: EXIT.COMMAND_FAILED,
  E_CA_EXISTS: EXIT.COMMAND_FAILED,
  E_OPENSSL: EXIT.COMMAND_FAILED,
  E_CERT_NOT_FOUND: EXIT.COMMAND_FAILED,
  E_CA_BACKUP: EXIT.COMMAND_FAILED,
  E_CERT_PARSE: EXIT.COMMAND_FAILED,
  E_CA_COMMAND: EXIT.COMMAND_FAILED,
  E_DB_QUERY: EXIT.COMMAND_FAILED,
  E_DB_CONFIG: EXIT.COMMAND_FAILED,
  E_DB_BUDGET: EXIT.COMMAND_FAILED,
  E_DB_FENCED: EXIT.COMMAND_FAILED,
  E_DB_REPLICATION: EXIT.COMMAND_FAILED,
  E_MCO_CONFIG: EXIT.COMMAND_FAILED,
  E_MCO_INPUT: EXIT.COMMAND_FAILED,
  E_MCO_CONSOLE: EXIT.COMMAND_FAILED,
  E_MCO_COPY: EXIT.COMMAND_FAILED,
  E_TWO_CAS: EXIT.COMMAND_FAILED,
  E_CA_MISSING: EXIT.COMMAND_FAILED,
  E_CA_SERVICE: EXIT.COMMAND_FAILED,
  E_CA_COPY: EXIT.COMMAND_FAILED,
  E_DATA_LOSS_RISK: EXIT.COMMAND_FAILED,
  E_RESOLVE: EXIT.COMMAND_FAILED,
  E_BACKUP: EXIT.COMMAND_FAILED,
  E_DNS: EXIT.COMMAND_FAILED,
  // a check of the result failed
  E_VERIFY: EXIT.VERIFY_FAILED,
  E_CERT_VERIFY: EXIT.VERIFY_FAILED,
  E_DB_AUTH: EXIT.VERIFY_FAILED,
  E_DB_HBA: EXIT.VERIFY_FAILED,
  E_DB_CONNECT: EXIT.VERIFY_FAILED,
  // the rest
  E_NOT_AVAILABLE: EXIT.NOT_AVAILABLE,
  E_INTERRUPTED: EXIT.INTERRUPTED,
  E_INTERNAL: EXIT.INTERNAL,
};

function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(EXIT_BY_CODE, code);
}

/**
 * The exit status for an error code (a PeError's `code`). A code no package
 * declares (from an extension, or an older journal) counts as a failure on a host.
 */
export function exitCodeForCode(code: string): ExitCode {
  return isErrorCode(code) ? EXIT_BY_CODE[code] : EXIT.COMMAND_FAILED;
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
