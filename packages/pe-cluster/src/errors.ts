import { PeError } from '@pe-stack/pe-host';

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
export class InventoryError extends PeError {
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
export class NotAvailableError extends PeError {
  readonly missing: readonly string[];
  constructor(what: string, missing: string[]) {
    super('E_NOT_AVAILABLE', `${what} is not available yet: ${missing.join('; ')}.`, {
      hint: 'Nothing was changed on any host.',
    });
    this.missing = missing;
  }
}

/** Usage errors of the CLI or API (unknown host name, unknown flow, bad option value). */
export class UsageError extends PeError {
  constructor(message: string, hint?: string) {
    super('E_USAGE', message, { hint });
  }
}
