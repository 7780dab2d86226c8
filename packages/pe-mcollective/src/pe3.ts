import { checkMasters, commaList, type MasterRef } from './brokers.js';
import { McoError } from './errors.js';
import { compareSharedFiles, compareWithFacts, copySharedFiles, type SharedFilesComparison } from './pki.js';
import { Pe3Console } from './rake.js';
import { allMasters, bindMaster, type McoCluster, type McoStep, type StepHosts } from './steps.js';
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
  if (cluster.primary.layout.flavour !== 'pe3') throw new McoError('E_MCO_INPUT', `the pe3 MCollective steps need the pe3 layout, not ${cluster.primary.layout.name}.`);
  checkMasters(allMasters(cluster));
  const names = { ...PE3_CONSOLE_NAMES, ...opts.names };
  const sudo = cluster.sudo ?? true;
  /** The console on the primary, through the host the step context gives (audited / dry-run), else the primary's own. */
  const console = (ctx?: StepHosts): Pe3Console =>
    new Pe3Console(bindMaster(cluster.primary, ctx).host, cluster.primary.layout, { sudo, ...(opts.rakeTimeoutMs ? { timeoutMs: opts.rakeTimeoutMs } : {}) });
  return { names, sudo, console, consoleHost: cluster.primary.host.name };
}

function variableStep(console: (ctx?: StepHosts) => Pe3Console, consoleHost: string, group: string, variable: string, value: string): McoStep {
  return {
    id: `console-var:${group}:${variable}`,
    host: consoleHost,
    title: `set ${variable} of the console group ${group} to every master`,
    check: async (ctx) => {
      const cur = (await console(ctx).groupVariables(group)).get(variable);
      return cur === value ? { done: true, why: `${variable} names every master` } : { done: false, why: cur === undefined ? `${variable} is not set` : `${variable} is "${cur}"` };
    },
    apply: (ctx) => console(ctx).setGroupVariables(group, { [variable]: value }),
  };
}

/**
 * Steps that make every secondary speak to the primary's MCollective (pe3):
 * the pe_secondary::mcollective files copied primary -> secondary with their
 * owners and modes; `activemq_brokers` (group puppet_master) and
 * `fact_stomp_server` (group mcollective) set to all masters' FQDNs through
 * the console's rake tasks; each secondary added to puppet_master and
 * puppet_console. Puppet applies the broker lists on the masters' next run.
 */
export function pe3JoinSteps(cluster: McoCluster, opts: Pe3Options = {}): McoStep[] {
  const { names, sudo, console, consoleHost } = setup(cluster, opts);
  const list = commaList(allMasters(cluster));
  const steps: McoStep[] = [];
  for (const s of cluster.secondaries) {
    // what the check just compared, for the copy that follows it (two commands less)
    let compared: SharedFilesComparison | undefined;
    steps.push({
      id: `mco-pki:${s.fqdn}`,
      host: s.host.name,
      title: `copy the MCollective PKI files and credentials from ${cluster.primary.fqdn}`,
      check: async (ctx) => {
        const c = await compareWithFacts(bindMaster(cluster.primary, ctx), bindMaster(s, ctx), { sudo });
        compared = c;
        const bad = c.cmp.filter((x) => x.status !== 'same');
        return bad.length === 0 ? { done: true, why: 'identical to the primary' } : { done: false, why: bad.map((x) => `${x.path}: ${x.status}`).join(', ') };
      },
      apply: async (ctx) => {
        const known = compared;
        compared = undefined;
        await copySharedFiles(bindMaster(cluster.primary, ctx), bindMaster(s, ctx), { sudo, ...(known ? { compared: known } : {}) });
      },
    });
  }
  steps.push(variableStep(console, consoleHost, names.masterGroup, names.brokersVariable, list));
  steps.push(variableStep(console, consoleHost, names.mcollectiveGroup, names.stompServerVariable, list));
  for (const s of cluster.secondaries) {
    const want = [names.masterGroup, names.consoleGroup];
    // the groups the check just listed, for the apply that follows it (one rake run less: Rails boots for each)
    let listed: string[] | undefined;
    steps.push({
      id: `console-groups:${s.fqdn}`,
      host: consoleHost,
      title: `add ${s.fqdn} to the console groups ${want.join(', ')}`,
      check: async (ctx) => {
        const have = await console(ctx).nodeGroups(s.fqdn);
        listed = have;
        const missing = want.filter((g) => !have.includes(g));
        return missing.length === 0 ? { done: true, why: `in ${want.join(', ')}` } : { done: false, why: `not in ${missing.join(', ')}` };
      },
      apply: async (ctx) => {
        const c = console(ctx);
        const have = listed ?? (await c.nodeGroups(s.fqdn));
        listed = undefined;
        const missing = want.filter((g) => !have.includes(g));
        // one rake run (Rails boots for each): rake runs node:addgroup once per process, so several groups go in as
        // the node's whole list (node:groups), its other groups kept
        if (missing.length > 1) await c.setNodeGroups(s.fqdn, [...have, ...missing]);
        else await c.addNodeToGroups(s.fqdn, missing);
      },
    });
  }
  return steps;
}

/**
 * Steps after a master left (cluster = the masters that remain): the two
 * broker variables name the remaining masters only, and the removed master
 * is taken out of puppet_master and puppet_console (its other groups stay).
 * The remaining masters' files are not touched.
 */
export function pe3RemoveSteps(cluster: McoCluster, removed: MasterRef, opts: Pe3Options = {}): McoStep[] {
  const { names, console, consoleHost } = setup(cluster, opts);
  if (allMasters(cluster).some((m) => m.fqdn.toLowerCase() === removed.fqdn.toLowerCase())) {
    throw new McoError('E_MCO_INPUT', `${removed.fqdn} is still listed among the masters; pass the cluster without it.`);
  }
  const list = commaList(allMasters(cluster));
  const drop = [names.masterGroup, names.consoleGroup];
  return [
    variableStep(console, consoleHost, names.masterGroup, names.brokersVariable, list),
    variableStep(console, consoleHost, names.mcollectiveGroup, names.stompServerVariable, list),
    {
      id: `console-ungroup:${removed.fqdn}`,
      host: consoleHost,
      title: `take ${removed.fqdn} out of the console groups ${drop.join(', ')}`,
      check: async (ctx) => {
        const still = (await console(ctx).nodeGroups(removed.fqdn)).filter((g) => drop.includes(g));
        return still.length === 0 ? { done: true, why: `in none of ${drop.join(', ')}` } : { done: false, why: `still in ${still.join(', ')}` };
      },
      apply: async (ctx) => {
        const c = console(ctx);
        const have = await c.nodeGroups(removed.fqdn);
        await c.setNodeGroups(removed.fqdn, have.filter((g) => !drop.includes(g)));
      },
    },
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
      checks.push({ name: `${s.fqdn}: ${c.id}`, ok: c.status === 'same', detail: c.status === 'same' ? 'identical to the primary' : `${c.path}: ${c.status}${c.detail ? ` (${c.detail})` : ''}` });
    }
  }
  const list = commaList(allMasters(cluster));
  for (const [group, variable] of [
    [names.masterGroup, names.brokersVariable],
    [names.mcollectiveGroup, names.stompServerVariable],
  ] as const) {
    const cur = (await console.groupVariables(group)).get(variable);
    const have = new Set((cur ?? '').split(',').filter(Boolean));
    const missing = allMasters(cluster).filter((m) => !have.has(m.fqdn));
    const extra = [...have].filter((h) => !allMasters(cluster).some((m) => m.fqdn === h));
    checks.push({
      name: `console ${group}.${variable}`,
      ok: cur === list,
      detail: cur === list ? `names all ${allMasters(cluster).length} masters` : `is ${cur === undefined ? 'unset' : `"${cur}"`}${missing.length ? `; missing ${missing.map((m) => m.fqdn).join(', ')}` : ''}${extra.length ? `; names non-masters ${extra.join(', ')}` : ''}`,
    });
  }
  for (const s of cluster.secondaries) {
    const have = await console.nodeGroups(s.fqdn);
    const missing = [names.masterGroup, names.consoleGroup].filter((g) => !have.includes(g));
    checks.push({ name: `console groups of ${s.fqdn}`, ok: missing.length === 0, detail: missing.length === 0 ? 'in the master groups' : `not in ${missing.join(', ')}` });
  }
  return report(checks);
}
