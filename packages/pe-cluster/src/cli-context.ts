import type { Redactor } from '@pe-stack/pe-host';
import { formatPlan, type FlowEvent, type RunResult } from '@pe-stack/pe-steps';
import { Cluster, type ClusterOptions, type RunFlowOptions } from './cluster.js';
import { EXIT, exitCodeForRun } from './exit-codes.js';
import { loadInventory } from './inventory.js';
import { ndjsonRenderer, plainRenderer, TtyProgress, type Output } from './render.js';

/**
 * What every command of the CLI shares: the process's streams, the global
 * options, opening the inventory's cluster and running a flow with the
 * renderer the output asks for. main.ts builds one per run; the command
 * modules (main.ts, ha-cli.ts) take it.
 */

export interface CliIo {
  stdout: Output & { isTTY?: boolean; columns?: number };
  stderr: Output;
  env?: Record<string, string | undefined>;
  /** Aborted on SIGINT by the bin; the running steps finish, no new one starts. */
  signal?: AbortSignal;
  /** For tests and embedding: how hosts are reached. */
  cluster?: ClusterOptions;
}

/** The options before the command (`pe-cluster -i inv.yaml --json join`). */
export interface GlobalOpts {
  inventory: string;
  json?: boolean;
  dryRun?: boolean;
  resume?: boolean;
  concurrency: number;
}

export interface RunAndReportOptions {
  /** Plan only: print the steps, commands and diffs; change nothing. */
  dryRun: boolean;
  params?: RunFlowOptions['params'];
}

export interface CliContext {
  io: CliIo;
  out(s: string): void;
  err(s: string): void;
  /** The exit status of this run (the last command's outcome). */
  exit: number;
  /** The inventory's secret masker, once an inventory is open. */
  redactor: Redactor | undefined;
  /** Loads the inventory (warnings to stderr) and opens its cluster. */
  open(g: GlobalOpts): Promise<Cluster>;
  /** Runs a flow, renders its events and result, and sets the exit status from it. */
  runAndReport(g: GlobalOpts, flow: string, hosts: string[], opts: RunAndReportOptions): Promise<void>;
}

export function createCliContext(io: CliIo): CliContext {
  const ctx: CliContext = {
    io,
    out: (s) => io.stdout.write(s),
    err: (s) => io.stderr.write(s),
    exit: EXIT.OK,
    redactor: undefined,
    open: (g) => openCluster(ctx, g),
    runAndReport: (g, flow, hosts, opts) => runAndReport(ctx, g, flow, hosts, opts),
  };
  return ctx;
}

async function openCluster(ctx: CliContext, g: GlobalOpts): Promise<Cluster> {
  const inv = await loadInventory(g.inventory, { env: ctx.io.env ?? process.env });
  ctx.redactor = inv.redactor;
  for (const w of inv.warnings)
    ctx.err(`warning: ${w.file}:${w.line ?? '?'}: ${w.key ? `${w.key}: ` : ''}${w.message}\n`);
  return new Cluster(inv, ctx.io.cluster);
}

async function runAndReport(
  ctx: CliContext,
  g: GlobalOpts,
  flow: string,
  hosts: string[],
  { dryRun, params }: RunAndReportOptions,
): Promise<void> {
  const { io } = ctx;
  const cluster = await ctx.open(g);
  let progress: TtyProgress | undefined;
  let onEvent: (e: FlowEvent) => void;
  if (g.json) onEvent = ndjsonRenderer(io.stdout);
  else if (io.stdout.isTTY) onEvent = (progress = new TtyProgress(io.stdout, io.stdout.columns ?? 100)).onEvent;
  else onEvent = plainRenderer(io.stdout);
  let result: RunResult;
  try {
    result = await cluster.run(flow, hosts, {
      onEvent,
      dryRun,
      resume: Boolean(g.resume),
      concurrency: g.concurrency,
      ...(io.signal ? { signal: io.signal } : {}),
      ...(params ? { params } : {}),
    });
  } finally {
    progress?.stop();
    await cluster.close();
  }
  ctx.exit = exitCodeForRun(result);
  if (g.json) ctx.out(`${JSON.stringify({ ...result, exitCode: ctx.exit })}\n`);
  else {
    if (dryRun) ctx.out(`\n${formatPlan(result)}`);
    if (result.error) ctx.err(`error: ${result.error.message}\n`);
    if (result.status === 'interrupted') ctx.err('interrupted: rerun the same command with --resume to continue.\n');
  }
}
