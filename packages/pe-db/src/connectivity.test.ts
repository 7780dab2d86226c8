import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalHost, type ExecOptions } from '@pe-stack/pe-host';
import { describe, expect, it } from 'vitest';
import { checkManyFromHost } from './connectivity.js';

/** A psql stand-in: accepts the password "right-<user>", answers as psql -A -t does, else fails as libpq does. */
function fakePsql(dir: string): string {
  const p = join(dir, 'psql');
  writeFileSync(
    p,
    [
      '#!/bin/sh',
      'user=; while [ $# -gt 0 ]; do [ "$1" = "-U" ] && user=$2; shift; done',
      'if [ "$PGPASSWORD" = "right-$user" ]; then echo "9.2.24|90224|10.0.0.5"; echo "Timing is on."; echo 1; echo "Time: 0.25 ms"; exit 0; fi',
      'echo "psql: FATAL:  password authentication failed for user \\"$user\\"" >&2; exit 2',
    ].join('\n'),
  );
  chmodSync(p, 0o755);
  return p;
}

describe('checkManyFromHost', () => {
  it("proves several services' credentials in one command, passwords only in the environment; the first failure is typed", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pe-db-many-'));
    try {
      const psql = fakePsql(dir);
      const base = new LocalHost({ name: 'secondary' });
      const calls: { argv: readonly string[]; opts?: ExecOptions }[] = [];
      const host = new Proxy(base, {
        get(t, p, r) {
          if (p === 'exec')
            return (argv: readonly string[], opts?: ExecOptions) => (
              calls.push({ argv, ...(opts ? { opts } : {}) }),
              t.exec(argv, opts)
            );
          return Reflect.get(t, p, r) as unknown;
        },
      });
      const target = (user: string) => ({ server: 'puppetdb.example.com', port: 5432, database: user, user });
      const ok = await checkManyFromHost(
        host,
        [
          { target: target('pe-puppetdb'), password: 'right-pe-puppetdb' },
          { target: target('console'), password: 'right-console' },
        ],
        { psql },
      );
      expect(calls).toHaveLength(1);
      expect(calls[0]!.argv.join(' ')).not.toContain('right-');
      expect(ok.map((r) => [r.target.user, r.serverVersionNum, r.clientAddress, r.queryMs])).toEqual([
        ['pe-puppetdb', 90224, '10.0.0.5', 0.25],
        ['console', 90224, '10.0.0.5', 0.25],
      ]);
      const err = await checkManyFromHost(
        host,
        [
          { target: target('pe-puppetdb'), password: 'right-pe-puppetdb' },
          { target: target('console'), password: 'wrong-secret' },
        ],
        { psql },
      ).catch((e: unknown) => e as Error);
      expect(err).toMatchObject({ code: 'E_DB_AUTH' });
      expect(String((err as Error).message)).toContain('console');
      expect(String((err as Error).message)).not.toContain('wrong-secret');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
