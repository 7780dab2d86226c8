import { readFileSync } from 'node:fs';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { PeError, type Redactor } from '@pe-stack/pe-host';
import { createCliContext, type CliContext, type CliIo, type GlobalOpts } from './cli-context.js';
import { FLOWS } from './cluster.js';
import { UsageError } from './errors.js';
import { EXIT, exitCodeForError, type ExitCode } from './exit-codes.js';
import { formatStatus } from './flows/status.js';
import { registerHaCommands } from './ha-cli.js';
import { formatHaStatus } from './flows/ha-status.js';

export type { CliIo } from './cli-context.js';

const EXIT_HELP = `
Exit codes:
  0    ok (status: healthy)
  1    internal error (a bug)
  2    bad input: usage, inventory, unknown host or flow; nothing was contacted or changed
  3    status: degraded
  4    status: broken
  5    a host could not be reached or trusted (unreachable, authentication, unknown/changed host key, sudo)
  6    a command or step failed on a host
  7    a check of the result failed (step verify, certificate, database password/pg_hba/connection, MCollective)
  8    the flow needs an operation that is not available yet; nothing was changed
  130  interrupted (Ctrl-C); rerun with --resume`;

/** pe-cluster's own version, from the package.json beside dist/ (and src/). */
export function cliVersion(): string {
  const manifest = readFileSync(new URL('../package.json', import.meta.url), 'utf8');
  return (JSON.parse(manifest) as { version: string }).version;
}

/** Refuses a flow the cluster does not know before anything (the inventory) is read. */
function assertKnownFlow(flow: string, ctx: CliContext): void {
  const known = [...new Set([...FLOWS, ...Object.keys(ctx.io.cluster?.flows ?? {})])];
  if (!known.includes(flow)) throw new UsageError(`unknown flow "${flow}".`, `Known flows: ${known.join(', ')}.`);
}

function concurrency(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new InvalidArgumentError('expected a whole number from 1 to 64.');
  return n;
}

function errorJson(e: unknown, code: ExitCode, redactor?: Redactor): Record<string, unknown> {
  const base =
    e instanceof PeError
      ? e.toJSON()
      : { name: 'Error', code: 'E_INTERNAL', message: e instanceof Error ? e.message : String(e) };
  return { type: 'error', exitCode: code, error: redactor ? redactor.redactValue(base) : base };
}

/**
 * Ctrl-C once: abort (the running steps finish, no new one starts, the journal
 * records the stop; exit 130). Twice: leave at once with 130. Used by the bin.
 */
export function interruptOnSigint(proc: NodeJS.Process = process): AbortController {
  const ac = new AbortController();
  let interrupts = 0;
  proc.on('SIGINT', () => {
    interrupts++;
    if (interrupts === 1) {
      proc.stderr.write('\ninterrupt: stopping after the running step (Ctrl-C again to quit now)\n');
      ac.abort();
    } else proc.exit(EXIT.INTERRUPTED);
  });
  return ac;
}

/**
 * The CLI as a function: parse argv (without node and the script), run, and
 * return the exit code. The bin (cli.ts) wires it to the process.
 */
export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  const ctx = createCliContext(io);
  const { out, err } = ctx;
  let json = false;
  const program = cliProgram(ctx);
  registerClusterCommands(program, ctx);
  registerHaCommands(program, ctx);

  try {
    json = argv.includes('--json');
    await program.parseAsync([...argv], { from: 'user' });
    return ctx.exit;
  } catch (e) {
    const redactor = ctx.redactor;
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help')
        return EXIT.OK;
      if (json)
        out(
          `${JSON.stringify({ type: 'error', exitCode: EXIT.BAD_INPUT, error: { code: 'E_USAGE', message: e.message } })}\n`,
        );
      return EXIT.BAD_INPUT;
    }
    const code = exitCodeForError(e);
    if (json) out(`${JSON.stringify(errorJson(e, code, redactor))}\n`);
    else {
      const text = e instanceof Error ? (e instanceof PeError ? e.message : `${e.stack ?? e.message}`) : String(e);
      err(`error: ${redactor ? redactor.redact(text) : text}\n`);
    }
    return code;
  }
}

/** The program with its global options, help and output wired to the context. */
function cliProgram(ctx: CliContext): Command {
  return new Command()
    .name('pe-cluster')
    .version(cliVersion(), '-V, --version', "print pe-cluster's version")
    .description(
      'Scale a Puppet master into a highly available cluster: status, join, standby, failover, rejoin, backup, restore.',
    )
    .addOption(
      new Option('-i, --inventory <file>', 'inventory file (ours or a Bolt inventory.yaml v2)')
        .env('PE_CLUSTER_INVENTORY')
        .default('inventory.yaml'),
    )
    .option('--json', 'machine output: NDJSON events, then one result object')
    .option('--dry-run', 'print the plan (steps per host, masked commands, diffs); change nothing')
    .option('--resume', 'continue the last unfinished run of this flow from its journal')
    .option('--concurrency <n>', 'hosts handled at once in parallel groups', concurrency, 4)
    .configureHelp({ showGlobalOptions: true })
    .addHelpText('afterAll', EXIT_HELP)
    .showHelpAfterError('(run pe-cluster --help for usage)')
    .exitOverride()
    .configureOutput({ writeOut: ctx.out, writeErr: ctx.err });
}

/** The scale-out side: status, join, and plan (the dry run of any flow). */
function registerClusterCommands(program: Command, ctx: CliContext): void {
  program
    .command('status')
    .description(
      'health of every master: reachability, services, the CA holder, certificates, CRL, PuppetDB database, MCollective',
    )
    .addHelpText('after', '\nExit: 0 healthy, 3 degraded, 4 broken (and 2 for a bad inventory).')
    .action(async (_o: unknown, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOpts>();
      const cluster = await ctx.open(g);
      try {
        const report = await cluster.status({ concurrency: g.concurrency });
        ctx.exit = report.health === 'healthy' ? EXIT.OK : report.health === 'degraded' ? EXIT.DEGRADED : EXIT.BROKEN;
        ctx.out(
          g.json
            ? `${JSON.stringify({ type: 'status', ...report, exitCode: ctx.exit })}\n`
            : formatStatus(report) + formatHaStatus(report),
        );
      } finally {
        await cluster.close();
      }
    });

  program
    .command('join')
    .description(
      "join secondaries to the primary: the primary prepared, the secondary's CA off, certificates, database, PuppetDB, MCollective, restarts, validation",
    )
    .argument('[hosts...]', 'secondaries to join (default: every secondary in the inventory)')
    .action(async (hosts: string[], _o: unknown, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOpts>();
      await ctx.runAndReport(g, 'join', hosts, { dryRun: Boolean(g.dryRun) });
    });

  program
    .command('plan')
    .description('the dry run of a flow: steps per host, masked commands, unified diffs; nothing is changed')
    .argument('<flow>', `flow to plan (${FLOWS.join(', ')})`)
    .argument('[hosts...]', 'hosts the flow acts on')
    .action(async (flow: string, hosts: string[], _o: unknown, cmd: Command) => {
      assertKnownFlow(flow, ctx);
      const g = cmd.optsWithGlobals<GlobalOpts>();
      await ctx.runAndReport(g, flow, hosts, { dryRun: true });
    });
}
