import { checkMasters, commaList, type MasterRef } from './brokers.js';
import { McoError } from './errors.js';
import {
  compareSharedFiles,
  compareWithFacts,
  copySharedFiles,
  type FileFacts,
  type SharedFilesComparison,
} from './pki.js';
import { Pe3Console, type ConsoleChanges, type ConsoleListing } from './rake.js';
import type { Step } from '@pe-stack/pe-steps';
import { allMasters, bindMaster, type McoCluster, type StepHosts } from './cluster.js';
import type { VerifyReport } from './verify.js';
import { report } from './verify.js';

/** Console groups and variables the pe3 join sets (pe_secondary README, step 9). */
export interface Pe3ConsoleNames {
  /** Group every master joins; carries `activemq_brokers`. */
  masterGroup: string;
  /** Group every master joins (the console role). */
  consoleGroup: string;
  /** Group that carries `fact_stomp_server`. */
  mcollectiveGroup: string;
  brokersVariable: string;
  stompServerVariable: string;
}

export const PE3_CONSOLE_NAMES: Pe3ConsoleNames = {
  masterGroup: 'puppet_master',
  consoleGroup: 'puppet_console',
  mcollectiveGroup: 'mcollective',
  brokersVariable: 'activemq_brokers',
  stompServerVariable: 'fact_stomp_server',
};

export interface Pe3Options {
  names?: Partial<Pe3ConsoleNames>;
  /** Timeout of one rake run (Rails boots each time): default 5 minutes. */
  rakeTimeoutMs?: number;
}

function setup(cluster: McoCluster, opts: Pe3Options) {
  if (cluster.primary.layout.flavour !== 'pe3')
    throw new McoError(
      'E_MCO_INPUT',
      `the pe3 MCollective steps need the pe3 layout, not ${cluster.primary.layout.name}.`,
    );
  checkMasters(allMasters(cluster));
  const names = { ...PE3_CONSOLE_NAMES, ...opts.names };
  const sudo = cluster.sudo ?? true;
  /** The console on the primary, through the host the step context gives (audited / dry-run), else the primary's own. */
  const console = (ctx?: StepHosts): Pe3Console =>
    new Pe3Console((ctx ? bindMaster(cluster.primary, ctx) : cluster.primary).host, cluster.primary.layout, {
      sudo,
      ...(opts.rakeTimeoutMs ? { timeoutMs: opts.rakeTimeoutMs } : {}),
    });
  return { names, sudo, console, consoleHost: cluster.primary.host.name };
}

/** What the console must hold: variables per group, groups each node must be in, groups a node must leave. */
interface ConsoleWant {
  variables: { group: string; variable: string; value: string }[];
  members: { node: string; groups: string[] }[];
  leave?: { node: string; groups: string[] };
}

/** The changes that bring a listing to what is wanted (empty maps: nothing to do), and why. */
function consoleDiff(want: ConsoleWant, have: ConsoleListing): { changes: ConsoleChanges; why: string[] } {
  const why: string[] = [];
  const variables = new Map<string, Record<string, string>>();
  for (const v of want.variables) {
    const cur = have.variables.get(v.group)?.get(v.variable);
    if (cur === v.value) continue;
    (variables.get(v.group) ?? variables.set(v.group, {}).get(v.group)!)[v.variable] = v.value;
    why.push(
      cur === undefined
        ? `${v.variable} (group ${v.group}) is not set`
        : `${v.variable} (group ${v.group}) is "${cur}"`,
    );
  }
  const addGroups = new Map<string, string[]>();
  const setGroups = new Map<string, string[]>();
  for (const m of want.members) {
    const cur = have.nodeGroups.get(m.node) ?? [];
    const missing = m.groups.filter((g) => !cur.includes(g));
    if (missing.length === 0) continue;
    why.push(`${m.node} is not in ${missing.join(', ')}`);
    // several groups: as the node's whole list (one node:groups task) when the listing of its groups was exact, else one
    // node:addgroup per group (rake runs a task once per process: they go into separate runs of the same command)
    if (missing.length > 1 && have.exact.has(m.node)) setGroups.set(m.node, [...cur, ...missing]);
    else addGroups.set(m.node, missing);
  }
  if (want.leave) {
    const cur = have.nodeGroups.get(want.leave.node) ?? [];
    const still = cur.filter((g) => want.leave!.groups.includes(g));
    if (still.length > 0) {
      why.push(`${want.leave.node} is still in ${still.join(', ')}`);
      setGroups.set(
        want.leave.node,
        cur.filter((g) => !want.leave!.groups.includes(g)),
      );
    }
  }
  return { changes: { variables, addGroups, setGroups }, why };
}

/**
 * One step for everything the console holds about MCollective (pe_secondary
 * step 9): its check lists the variables of both groups and the groups of
 * every node in ONE command, its apply sets all that differs in ONE more
 * (rake runs chained where rake needs more than one), the re-check lists
 * again: 3 round trips when something changes, 1 when nothing is to do.
 */
function consoleStep(
  console: (ctx?: StepHosts) => Pe3Console,
  consoleHost: string,
  id: string,
  title: string,
  want: ConsoleWant,
): Step {
  const query = {
    groups: [...new Set(want.variables.map((v) => v.group))],
    nodes: want.members.map((m) => m.node),
    ...(want.leave ? { exactNodes: [want.leave.node] } : {}),
  };
  // what the check just listed, for the apply that follows it (one command less)
  let listed: ConsoleListing | undefined;
  return {
    id,
    host: consoleHost,
    title,
    check: async (ctx) => {
      const have = await console(ctx).list(query);
      listed = have;
      const { why } = consoleDiff(want, have);
      return why.length === 0
        ? { done: true, why: 'the console names every master' }
        : { done: false, why: why.join('; ') };
    },
    apply: async (ctx) => {
      const c = console(ctx);
      const have = listed ?? (await c.list(query));
      listed = undefined;
      await c.change(consoleDiff(want, have).changes);
    },
  };
}

/** The id of the console step of pe3JoinSteps and pe3RemoveSteps. */
export const PE3_CONSOLE_STEP = 'console-mcollective';

/**
 * Steps that make every secondary speak to the primary's MCollective (pe3):
 * `mco-pki:<secondary>`, the pe_secondary::mcollective files copied primary
 * -> secondary with their owners and modes; then one `console-mcollective`
 * step: `activemq_brokers` (group puppet_master) and `fact_stomp_server`
 * (group mcollective) set to all masters' FQDNs through the console's rake
 * tasks, each secondary added to puppet_master and puppet_console. Puppet
 * applies the broker lists on the masters' next run.
 */
export function pe3JoinSteps(cluster: McoCluster, opts: Pe3Options = {}): Step[] {
  const { names, sudo, console, consoleHost } = setup(cluster, opts);
  const list = commaList(allMasters(cluster));
  const steps: Step[] = [];
  for (const s of cluster.secondaries) {
    // what the check just compared, for the copy that follows it; the primary's facts, for the re-check after the copy
    let compared: SharedFilesComparison | undefined;
    let copiedFrom: Map<string, FileFacts> | undefined;
    steps.push({
      id: `mco-pki:${s.fqdn}`,
      host: s.host.name,
      title: `copy the MCollective PKI files and credentials from ${cluster.primary.fqdn}`,
      check: async (ctx) => {
        // right after a copy only the secondary is asked again: the primary's files were read moments ago, and not changed
        const srcFacts = copiedFrom;
        copiedFrom = undefined;
        const c = await compareWithFacts(bindMaster(cluster.primary, ctx), bindMaster(s, ctx), {
          sudo,
          ...(srcFacts ? { srcFacts } : {}),
        });
        compared = c;
        const bad = c.cmp.filter((x) => x.status !== 'same');
        return bad.length === 0
          ? { done: true, why: 'identical to the primary' }
          : { done: false, why: bad.map((x) => `${x.path}: ${x.status}`).join(', ') };
      },
      apply: async (ctx) => {
        const known = compared;
        compared = undefined;
        await copySharedFiles(bindMaster(cluster.primary, ctx), bindMaster(s, ctx), {
          sudo,
          ...(known ? { compared: known } : {}),
          dryRun: ctx.dryRun,
        });
        if (known && !ctx.dryRun) copiedFrom = known.srcFacts;
      },
    });
  }
  const want = [names.masterGroup, names.consoleGroup];
  steps.push(
    consoleStep(
      console,
      consoleHost,
      PE3_CONSOLE_STEP,
      `console: ${names.brokersVariable} (group ${names.masterGroup}) and ${names.stompServerVariable} (group ${names.mcollectiveGroup}) name every master${cluster.secondaries.length ? `; ${cluster.secondaries.map((s) => s.fqdn).join(', ')} in ${want.join(', ')}` : ''}`,
      {
        variables: [
          { group: names.masterGroup, variable: names.brokersVariable, value: list },
          { group: names.mcollectiveGroup, variable: names.stompServerVariable, value: list },
        ],
        members: cluster.secondaries.map((s) => ({ node: s.fqdn, groups: want })),
      },
    ),
  );
  return steps;
}

/**
 * Steps after a master left (cluster = the masters that remain): one
 * `console-mcollective` step: the two broker variables name the remaining
 * masters only, and the removed master is taken out of puppet_master and
 * puppet_console (its other groups stay). The remaining masters' files are
 * not touched.
 */
export function pe3RemoveSteps(cluster: McoCluster, removed: MasterRef, opts: Pe3Options = {}): Step[] {
  const { names, console, consoleHost } = setup(cluster, opts);
  if (allMasters(cluster).some((m) => m.fqdn.toLowerCase() === removed.fqdn.toLowerCase())) {
    throw new McoError(
      'E_MCO_INPUT',
      `${removed.fqdn} is still listed among the masters; pass the cluster without it.`,
    );
  }
  const list = commaList(allMasters(cluster));
  const drop = [names.masterGroup, names.consoleGroup];
  return [
    consoleStep(
      console,
      consoleHost,
      PE3_CONSOLE_STEP,
      `console: ${names.brokersVariable} and ${names.stompServerVariable} name the remaining masters; ${removed.fqdn} out of ${drop.join(', ')}`,
      {
        variables: [
          { group: names.masterGroup, variable: names.brokersVariable, value: list },
          { group: names.mcollectiveGroup, variable: names.stompServerVariable, value: list },
        ],
        members: [],
        leave: { node: removed.fqdn, groups: drop },
      },
    ),
  ];
}

/**
 * pe3 verification: every shared file identical on every master (sha256
 * compared, never shown) with the primary's owner and mode; both console
 * variables name every master; every secondary in the master groups.
 */
export async function verifyPe3(cluster: McoCluster, opts: Pe3Options = {}): Promise<VerifyReport> {
  const { names, sudo, console: consoleFor } = setup(cluster, opts);
  const console = consoleFor();
  const checks: VerifyReport['checks'] = [];
  for (const s of cluster.secondaries) {
    const cmp = await compareSharedFiles(cluster.primary, s, { sudo });
    for (const c of cmp) {
      checks.push({
        name: `${s.fqdn}: ${c.id}`,
        ok: c.status === 'same',
        detail:
          c.status === 'same'
            ? 'identical to the primary'
            : `${c.path}: ${c.status}${c.detail ? ` (${c.detail})` : ''}`,
      });
    }
  }
  const list = commaList(allMasters(cluster));
  // every console fact in one command
  const listing = await console.list({
    groups: [names.masterGroup, names.mcollectiveGroup],
    nodes: cluster.secondaries.map((s) => s.fqdn),
  });
  for (const [group, variable] of [
    [names.masterGroup, names.brokersVariable],
    [names.mcollectiveGroup, names.stompServerVariable],
  ] as const) {
    const cur = listing.variables.get(group)?.get(variable);
    const have = new Set((cur ?? '').split(',').filter(Boolean));
    const missing = allMasters(cluster).filter((m) => !have.has(m.fqdn));
    const extra = [...have].filter((h) => !allMasters(cluster).some((m) => m.fqdn === h));
    checks.push({
      name: `console ${group}.${variable}`,
      ok: cur === list,
      detail:
        cur === list
          ? `names all ${allMasters(cluster).length} masters`
          : `is ${cur === undefined ? 'unset' : `"${cur}"`}${missing.length ? `; missing ${missing.map((m) => m.fqdn).join(', ')}` : ''}${extra.length ? `; names non-masters ${extra.join(', ')}` : ''}`,
    });
  }
  for (const s of cluster.secondaries) {
    const have = listing.nodeGroups.get(s.fqdn) ?? [];
    const missing = [names.masterGroup, names.consoleGroup].filter((g) => !have.includes(g));
    checks.push({
      name: `console groups of ${s.fqdn}`,
      ok: missing.length === 0,
      detail: missing.length === 0 ? 'in the master groups' : `not in ${missing.join(', ')}`,
    });
  }
  return report(checks);
}
