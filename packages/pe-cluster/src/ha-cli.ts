import { Option, type Command } from 'commander';
import type { CliContext, GlobalOpts } from './cli-context.js';
import { EXIT } from './exit-codes.js';
import { BACKUP_KEY_ENV, backupKeyPath } from './flows/backup-key.js';
import { verifyClusterBackup } from './flows/backup.js';
import { DEFAULT_CA_COPY_RETENTION, type CaCopyRetention } from './flows/ca-retention.js';
import { watchCaCopy } from './flows/standby.js';
import { UsageError } from './errors.js';

/** The failover-side commands: standby, failover, rejoin, backup, restore. */
export function registerHaCommands(program: Command, ctx: CliContext): void {
  registerStandby(program, ctx);
  registerFailover(program, ctx);
  registerRejoin(program, ctx);
  registerBackup(program, ctx);
  registerRestore(program, ctx);
}

function registerStandby(program: Command, ctx: CliContext): void {
  program
    .command('standby')
    .description(
      'make a secondary the warm standby: streaming PostgreSQL replica, pg_hba for every master, CA admin rights, a verified copy of the CA',
    )
    .argument('<host>', 'the secondary')
    .option('--sync', 'synchronous replication: every commit waits for the standby (RPO 0)')
    .option(
      '--watch',
      'after the flow, keep the CA copy current: compare and push a verified copy every --interval seconds (until Ctrl-C)',
    )
    .addOption(new Option('--interval <s>', 'seconds between CA comparisons with --watch').default('10'))
    .addOption(
      new Option(
        '--keep-ca-copies <n>',
        'older copies of the CA key kept (controller archives, directories kept aside)',
      ).default(String(DEFAULT_CA_COPY_RETENTION.keep)),
    )
    .addOption(
      new Option('--ca-copy-max-age <days>', 'older copies of the CA key are removed after this many days').default(
        String(DEFAULT_CA_COPY_RETENTION.maxAgeDays),
      ),
    )
    .addHelpText(
      'after',
      '\nThe CA copy must follow every change of the CA (signed certificates, inventory, CRL). Either run with --watch, or\n' +
        'schedule `pe-cluster -i INVENTORY standby HOST` (idempotent: it pushes only when the CA changed), e.g. every minute from cron.\n' +
        'Each push leaves a verified archive in <backups>/ca-sync/; the newest verified one is always kept, older ones (and CA\n' +
        'directories kept aside on the standby) go by --keep-ca-copies and --ca-copy-max-age.',
    )
    .action(async (host: string, o: StandbyCliOptions, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOpts>();
      const caRetention = retentionOf(o);
      await ctx.runAndReport(g, 'standby', [host], {
        dryRun: Boolean(g.dryRun),
        params: { synchronous: Boolean(o.sync), caRetention },
      });
      if (!g.json && !g.dryRun)
        ctx.err(
          `CA copy: keep it current with \`pe-cluster -i ${g.inventory} standby ${host} --watch\`, ` +
            `or run \`pe-cluster -i ${g.inventory} standby ${host}${o.sync ? ' --sync' : ''}\` every minute (cron).\n`,
        );
      if (o.watch && !g.dryRun) {
        const cluster = await ctx.open(g);
        try {
          const n = await watchCaCopy(cluster, host, {
            intervalS: Math.max(1, Number(o.interval) || 10),
            retention: caRetention,
            ...(ctx.io.signal ? { signal: ctx.io.signal } : {}),
            onSync: (r) =>
              ctx.out(
                g.json
                  ? `${JSON.stringify({ type: 'ca-sync', ...r })}\n`
                  : `${r.at} CA copy pushed to ${host} (${r.files} files, ${Math.round(r.ms)} ms)\n`,
              ),
          });
          ctx.err(`watch ended after ${n} pushes\n`);
        } finally {
          await cluster.close();
        }
      }
    });
}

interface StandbyCliOptions {
  sync?: boolean;
  watch?: boolean;
  interval: string;
  keepCaCopies: string;
  caCopyMaxAge: string;
}

function retentionOf(o: StandbyCliOptions): CaCopyRetention {
  const keep = Number(o.keepCaCopies);
  const maxAgeDays = Number(o.caCopyMaxAge);
  if (!Number.isInteger(keep) || keep < 1)
    throw new UsageError(
      `--keep-ca-copies: expected a whole number of at least 1, got ${JSON.stringify(o.keepCaCopies)}.`,
    );
  if (!Number.isFinite(maxAgeDays) || maxAgeDays <= 0)
    throw new UsageError(
      `--ca-copy-max-age: expected a positive number of days, got ${JSON.stringify(o.caCopyMaxAge)}.`,
    );
  return { keep, maxAgeDays };
}

/** The backup key file: --backup-key, else PE_CLUSTER_BACKUP_KEY, else the state directory's (backup-key.ts). */
function keyOption(ctx: CliContext, o: { backupKey?: string }): string | undefined {
  return o.backupKey ?? ctx.io.env?.[BACKUP_KEY_ENV] ?? undefined;
}

const BACKUP_KEY_HELP = `the key file that authenticates archives (env ${BACKUP_KEY_ENV}; default <state>/<cluster>.backup-key, made by the first backup)`;

function registerFailover(program: Command, ctx: CliContext): void {
  program
    .command('failover')
    .description(
      'make a secondary the primary: planned switchover when the primary answers (drain, sync, swap, zero data loss), emergency failover when it does not',
    )
    .requiredOption('--to <host>', 'the secondary (the standby) that becomes primary')
    .option(
      '--accept-data-loss',
      'emergency failover of an asynchronous standby: go ahead although committed transactions may be lost',
    )
    .option(
      '--ca-backup <archive>',
      "take the CA over from this verified pe-certs CA archive instead of the standby's synced copy",
    )
    .addOption(
      new Option(
        '--dead-after <ms>',
        'how long the old primary gets to answer before it counts as dead (emergency mode)',
      ).default('5000'),
    )
    .addHelpText(
      'after',
      '\nThe old primary is fenced first (CA disabled, PostgreSQL stopped and marked; unreachable: recorded, and rejoin is\n' +
        'required before it serves again), then the new CA is enabled: never two CAs. Exit 6 with E_DATA_LOSS_RISK when it refuses.',
    )
    .action(async (o: { to: string; acceptDataLoss?: boolean; caBackup?: string; deadAfter: string }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOpts>();
      const reachTimeoutMs = Math.max(200, Number(o.deadAfter) || 5000);
      await ctx.runAndReport(g, 'failover', [o.to], {
        dryRun: Boolean(g.dryRun),
        params: {
          reachTimeoutMs,
          ...(o.acceptDataLoss ? { acceptDataLoss: true } : {}),
          ...(o.caBackup ? { caBackup: o.caBackup } : {}),
        },
      });
    });
}

function registerRejoin(program: Command, ctx: CliContext): void {
  program
    .command('rejoin')
    .description(
      'bring a former primary back as a secondary: CA off, backed up and removed, database rebuilt as a standby (or a plain client), certificate checked',
    )
    .argument('<host>', 'the former primary')
    .addOption(
      new Option('--database <mode>', 'its PostgreSQL: a standby of the new primary, or stopped (client only)')
        .choices(['standby', 'client'])
        .default('standby'),
    )
    .action(async (host: string, o: { database: 'standby' | 'client' }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOpts>();
      await ctx.runAndReport(g, 'rejoin', [host], { dryRun: Boolean(g.dryRun), params: { database: o.database } });
    });
}

function registerBackup(program: Command, ctx: CliContext): void {
  program
    .command('backup')
    .description(
      "the primary's CA, credentials and database dump into a timestamped archive on this machine, authenticated with the controller's backup key",
    )
    .option('--from <host>', 'the master to back up (default: the primary)')
    .option('--no-database', 'leave out the database dump')
    .option('--dir <dir>', "where the archive goes (default: the inventory's backups)")
    .option('--backup-key <file>', BACKUP_KEY_HELP)
    .action(async (o: { from?: string; database: boolean; dir?: string; backupKey?: string }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOpts>();
      const cluster = await ctx.open(g);
      const keyFile = keyOption(ctx, o);
      try {
        const r = await cluster.backup({
          ...(o.from ? { from: o.from } : {}),
          ...(o.dir ? { dir: o.dir } : {}),
          ...(keyFile ? { keyFile } : {}),
          noDatabase: !o.database,
        });
        const summary = {
          type: 'backup',
          archive: r.archive,
          sha256: r.sha256,
          checksumFile: r.checksumFile,
          hmacFile: r.hmacFile,
          members: Object.keys(r.manifest.members).length,
          ms: Math.round(r.ms),
        };
        ctx.out(
          g.json
            ? `${JSON.stringify({ ...summary, exitCode: EXIT.OK })}\n`
            : `${r.archive}\nsha256 ${r.sha256} (${summary.members} members, verified; HMAC in ${r.hmacFile})\n`,
        );
      } finally {
        await cluster.close();
      }
    });
}

function registerRestore(program: Command, ctx: CliContext): void {
  program
    .command('restore')
    .description(
      'authenticate a backup archive (its HMAC with the backup key, every member, destinations from the layout only), back up the current state, then restore it',
    )
    .argument('<archive>', 'a pe-cluster backup archive (with its .hmac beside it)')
    .option('--to <host>', 'the master to restore onto (default: the primary)')
    .option('--only <parts>', 'comma-separated: ca, credentials, database (default: all)')
    .option('--force', 'replace a CA directory that differs (it is moved aside, never deleted)')
    .option('--verify-only', 'check the archive and stop; nothing is contacted')
    .option('--backup-key <file>', BACKUP_KEY_HELP)
    .action(
      async (
        archive: string,
        o: { to?: string; only?: string; force?: boolean; verifyOnly?: boolean; backupKey?: string },
        cmd: Command,
      ) => {
        const g = cmd.optsWithGlobals<GlobalOpts>();
        const keyFile = keyOption(ctx, o);
        if (o.verifyOnly) {
          const cluster = await ctx.open(g);
          await cluster.close();
          const inv = cluster.inventory;
          const m = await verifyClusterBackup(archive, { keyFile: backupKeyPath(inv, keyFile), layout: inv.layout });
          ctx.out(
            g.json
              ? `${JSON.stringify({ type: 'verify', archive, created: m.created, members: Object.keys(m.members).length, exitCode: EXIT.OK })}\n`
              : `${archive}: verified (${Object.keys(m.members).length} members, taken ${m.created} from ${m.host})\n`,
          );
          return;
        }
        const parts = o.only?.split(',').map((x) => x.trim()) as ('ca' | 'credentials' | 'database')[] | undefined;
        const cluster = await ctx.open(g);
        try {
          const r = await cluster.restore(archive, {
            ...(o.to ? { to: o.to } : {}),
            ...(parts ? { parts } : {}),
            ...(keyFile ? { keyFile } : {}),
            force: Boolean(o.force),
          });
          ctx.out(
            g.json
              ? `${JSON.stringify({ type: 'restore', ...r, exitCode: EXIT.OK })}\n`
              : `restored ${archive} onto ${r.to}${r.safetyBackup ? `; the state before is in ${r.safetyBackup}` : ''}\n`,
          );
        } finally {
          await cluster.close();
        }
      },
    );
}
