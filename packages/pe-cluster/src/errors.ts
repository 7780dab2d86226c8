import { PeError, type PeErrorOptions } from '@pe-stack/pe-host';

/** The codes the HA flows (standby, failover, rejoin, guard, CA switching) raise through FailoverError. */
export type FailoverErrorCode =
  | 'E_TWO_CAS'
  | 'E_CA_MISSING'
  | 'E_CA_SERVICE'
  | 'E_CA_COPY'
  | 'E_CERT_VERIFY'
  | 'E_DATA_LOSS_RISK'
  | 'E_DB_QUERY'
  | 'E_DB_REPLICATION'
  | 'E_COMMAND_FAILED'
  | 'E_INVALID_INPUT';

/** The codes pe-cluster raises (E_INTERNAL: an error that is not a PeError, as the CLI and status report it). */
export type ClusterErrorCode =
  | FailoverErrorCode
  | 'E_INVENTORY'
  | 'E_USAGE'
  | 'E_NOT_AVAILABLE'
  | 'E_RESOLVE'
  | 'E_BACKUP'
  | 'E_DNS'
  | 'E_STATE_UNSAFE'
  | 'E_INTERNAL';

/** Base of pe-cluster's errors; used as is for a failure without a class of its own (a name that does not resolve). */
export class ClusterError extends PeError<ClusterErrorCode> {}

/** One problem found in an inventory file: where it is and what was expected there. */
export interface InventoryIssue {
  file: string;
  /** 1-based line and column of the key (or value) concerned; undefined when the file has no such position. */
  line: number | undefined;
  column: number | undefined;
  /** Dotted key path, e.g. `masters[1].ssh.port` or `groups[0].targets[2].uri`. */
  key: string;
  /** What is wrong and what is expected instead. */
  message: string;
}

function where(i: InventoryIssue): string {
  const pos = i.line === undefined ? '' : `:${i.line}${i.column === undefined ? '' : `:${i.column}`}`;
  return `${i.file}${pos}: ${i.key ? `${i.key}: ` : ''}${i.message}`;
}

/**
 * The inventory cannot be used. Lists every issue found (file, line, key,
 * what is expected); nothing was contacted or changed.
 */
export class InventoryError extends ClusterError {
  readonly issues: readonly InventoryIssue[];
  readonly file: string;
  constructor(file: string, issues: InventoryIssue[]) {
    const shown = issues.slice(0, 8).map(where);
    const more = issues.length > 8 ? `\n  (${issues.length - 8} more)` : '';
    super('E_INVENTORY', `invalid inventory ${file}:\n  ${shown.join('\n  ')}${more}`, {
      hint: '\nFix the inventory file; no host was contacted.',
    });
    this.issues = issues;
    this.file = file;
  }

  /** The first issue (every InventoryError has at least one). */
  get first(): InventoryIssue {
    return this.issues[0]!;
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), issues: this.issues };
  }
}

/** A flow or check needs an operation a concern package does not offer yet. Nothing was changed. */
export class NotAvailableError extends ClusterError {
  readonly missing: readonly string[];
  constructor(what: string, missing: string[]) {
    super('E_NOT_AVAILABLE', `${what} is not available yet: ${missing.join('; ')}.`, {
      hint: 'Nothing was changed on any host.',
    });
    this.missing = missing;
  }
}

/** Usage errors of the CLI or API (unknown host name, unknown flow, bad option value). */
export class UsageError extends ClusterError {
  constructor(message: string, hint?: string) {
    super('E_USAGE', message, { hint });
  }
}

/** A step of an HA flow (standby, failover, rejoin, guard) found the cluster in a state it must not act on. */
export class FailoverError extends PeError<FailoverErrorCode> {}

/** A failover would risk losing committed data (or the zero-data-loss proof failed); nothing further was changed. */
export class DataLossRiskError extends FailoverError {
  constructor(host: string, message: string) {
    super('E_DATA_LOSS_RISK', message, {
      host,
      hint: 'Wait for the standby to catch up, or rerun with --accept-data-loss to accept the loss.',
    });
  }
}

/** A backup or restore of the cluster failed, or an archive is not one to restore from. */
export class BackupError extends ClusterError {
  constructor(message: string, opts: Omit<PeErrorOptions, 'step'> = {}) {
    super('E_BACKUP', message, opts);
  }
}

/** A DNS provider could not move the primary's name, or the name does not resolve as it should. */
export class DnsError extends ClusterError {
  constructor(message: string, opts: Omit<PeErrorOptions, 'step'> = {}) {
    super('E_DNS', message, opts);
  }
}

/**
 * The controller's state directory (state, fences, journals) is not private to
 * the user running the CLI: another user could swap its files. Nothing was
 * written or contacted.
 */
export class UnsafeStateError extends ClusterError {
  readonly path: string;
  constructor(path: string, message: string, hint: string) {
    super('E_STATE_UNSAFE', message, { hint });
    this.path = path;
  }
}
