import { PeError } from '@pe-stack/pe-host';

/** Where a client tried to go: enough for an operator to find the right file. */
export interface DbTarget {
  /** Host name or address the client connected to (as the client sees it). */
  server: string;
  port: number;
  database: string;
  user: string;
}

function describe(t: DbTarget): string {
  return `PostgreSQL at ${t.server}:${t.port} (database "${t.database}", user "${t.user}")`;
}

/** The codes pe-db raises. */
export type DbErrorCode =
  | 'E_DB_CONNECT'
  | 'E_DB_AUTH'
  | 'E_DB_HBA'
  | 'E_DB_QUERY'
  | 'E_DB_CONFIG'
  | 'E_DB_BUDGET'
  | 'E_DB_FENCED'
  | 'E_DB_REPLICATION'
  | 'E_PERMISSION';

/** Base of every pe-db error: carries the target so callers can act on it. */
export class DbError extends PeError<DbErrorCode> {
  readonly target: DbTarget | undefined;
  constructor(
    code: DbErrorCode,
    message: string,
    opts: { host?: string | undefined; target?: DbTarget; hint?: string; cause?: unknown; step?: string } = {},
  ) {
    super(code, message, opts);
    this.target = opts.target;
  }
  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), target: this.target };
  }
}

/** The TCP connection failed: nothing listens, a firewall drops it, the name does not resolve. */
export class DbConnectError extends DbError {
  constructor(host: string, target: DbTarget, detail: string, cause?: unknown) {
    super('E_DB_CONNECT', `cannot connect to ${describe(target)}: ${detail}.`, {
      host,
      target,
      cause,
      hint: `Check that PostgreSQL runs on ${target.server}, that listen_addresses includes the address this host reaches (then restart PostgreSQL), that port ${target.port} is open between the hosts, and that the name resolves.`,
    });
  }
}

/** The server answered, but refused the password (SQLSTATE 28P01). */
export class DbAuthError extends DbError {
  constructor(host: string, target: DbTarget, cause?: unknown) {
    super('E_DB_AUTH', `${describe(target)} refused the password.`, {
      host,
      target,
      cause,
      hint: `Copy the password of "${target.user}" from the primary's configuration again (pe-db credentials), or reset it on the primary with ALTER ROLE, then restart the service.`,
    });
  }
}

/** The server answered, but pg_hba.conf has no record that lets this client in (SQLSTATE 28000). */
export class DbHbaRejectedError extends DbError {
  readonly clientAddress: string | undefined;
  constructor(host: string, target: DbTarget, clientAddress: string | undefined, cause?: unknown) {
    super(
      'E_DB_HBA',
      `${describe(target)} has no pg_hba.conf record for this client${clientAddress ? ` (${clientAddress})` : ''}.`,
      {
        host,
        target,
        cause,
        hint: `Grant access on the primary (pe-db grantAccess) for ${clientAddress ?? "this host's address"}, database "${target.database}" and user "${target.user}"; it adds a host record with scram-sha-256 and reloads PostgreSQL.`,
      },
    );
    this.clientAddress = clientAddress;
  }
}

/** Any other failure of a statement or a PostgreSQL command. */
export class DbQueryError extends DbError {
  constructor(host: string, message: string, opts: { target?: DbTarget; cause?: unknown; hint?: string } = {}) {
    super('E_DB_QUERY', message, { host, ...opts });
  }
}

/** A configuration file did not say what we need, or PostgreSQL refused our change to one. */
export class DbConfigError extends DbError {
  constructor(host: string, message: string, hint?: string, cause?: unknown) {
    super('E_DB_CONFIG', message, { host, hint, cause });
  }
}

/** The pools of every node together would exceed the primary's max_connections. */
export class DbBudgetError extends DbError {
  constructor(host: string, message: string, hint: string) {
    super('E_DB_BUDGET', message, { host, hint });
  }
}

/** The instance was fenced after a failover: it must not run as a primary again. */
export class DbFencedError extends DbError {
  constructor(host: string, message: string) {
    super('E_DB_FENCED', message, {
      host,
      hint: 'Rebuild it as a standby of the current primary (pe-db rejoin); that removes the fence.',
    });
  }
}

/** A replica did not reach the state we wait for (streaming, caught up, promoted). */
export class DbReplicationError extends DbError {
  constructor(host: string, message: string, hint?: string, cause?: unknown) {
    super('E_DB_REPLICATION', message, { host, hint, cause });
  }
}
