import { sequenceArgv, type Host } from '@pe-stack/pe-host';
import type { Layout } from '@pe-stack/pe-config-files';
import { McoError } from './errors.js';

/**
 * The PE 3.x console's rake API (puppet-dashboard), parameter style
 * `task[arg,arg]` (PE 3.0.1+), run as argv without a shell:
 *
 *   /opt/puppet/bin/rake -f /opt/puppet/share/puppet-dashboard/Rakefile RAILS_ENV=production \
 *     nodegroup:variables[puppet_master,activemq_brokers=m1.example.com\\\,m2.example.com]
 *
 * Rake splits a task's arguments on unescaped commas and drops one level of
 * backslashes; `node:variables` and `nodegroup:variables` then split their
 * `k=v,k=v` list on unescaped commas again. So a comma inside an argument is
 * `\,` and a comma inside a variable's value is `\\\,` (the PE 3 rake API
 * documentation, "Escaping", with the shell quoting taken away).
 */

/** One rake argument: backslashes and commas escaped; leading/trailing blanks (which rake strips) refused. */
export function rakeArg(value: string): string {
  if (value !== value.trim())
    throw new McoError('E_MCO_INPUT', `a console rake argument cannot start or end with a blank ("${value}").`);
  if (/[\0\r\n]/.test(value)) throw new McoError('E_MCO_INPUT', 'a console rake argument cannot contain a line break.');
  return value.replace(/[\\,]/g, (c) => `\\${c}`);
}

/** `task[a,b]` with each argument escaped. */
export function rakeTask(task: string, args: readonly string[] = []): string {
  if (!/^[a-z_]+(:[a-z_]+)+$/.test(task))
    throw new McoError('E_MCO_INPUT', `"${task}" is not a console rake task name.`);
  return args.length === 0 ? task : `${task}[${args.map(rakeArg).join(',')}]`;
}

const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The `variables` argument of `nodegroup:variables`: `k=v,k=v` with commas inside values escaped for the task's own split. */
export function variablesArg(vars: Readonly<Record<string, string>>): string {
  const pairs = Object.entries(vars);
  if (pairs.length === 0) throw new McoError('E_MCO_INPUT', 'no variables to set.');
  return pairs
    .map(([k, v]) => {
      if (!VAR_NAME.test(k)) throw new McoError('E_MCO_INPUT', `"${k}" is not a console variable name.`);
      if (/[\\\0\r\n]/.test(v))
        throw new McoError('E_MCO_INPUT', `the value of ${k} contains a backslash or a line break.`);
      return `${k}=${v.replace(/,/g, '\\,')}`;
    })
    .join(',');
}

/** Split on commas not escaped by a backslash, dropping one level of escapes (what rake does to `task[...]`). */
export function splitEscaped(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '\\' && i + 1 < s.length) cur += s[++i];
    else if (c === ',') {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out.map((a) => a.trim());
}

/** Inverse of rakeTask: the task name and its arguments as the task receives them. */
export function parseRakeTask(word: string): { task: string; args: string[] } {
  const m = /^([^[\]]+)(?:\[(.*)\])?$/s.exec(word);
  if (!m) throw new McoError('E_MCO_INPUT', `"${word}" is not a rake task invocation.`);
  return { task: m[1]!, args: m[2] === undefined || m[2] === '' ? [] : splitEscaped(m[2]) };
}

/** Inverse of variablesArg (after rake's own unescaping). */
export function parseVariablesArg(arg: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of splitEscaped(arg)) {
    const i = pair.indexOf('=');
    if (i <= 0) throw new McoError('E_MCO_INPUT', `"${pair}" is not variable=value.`);
    out[pair.slice(0, i)] = pair.slice(i + 1);
  }
  return out;
}

/** `key = value`, `key=value` or `key: value` lines of a listing (`nodegroup:variables[group]`). */
export function parseVariableListing(stdout: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of stdout.split(/\r?\n/)) {
    const r = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:=>|=|:)\s*(.*?)\s*$/.exec(line);
    if (r) m.set(r[1]!, r[2]!.replace(/^(["'])(.*)\1$/, '$2'));
  }
  return m;
}

/** One name per line (`node:listgroups[node]`). */
export function parseNameListing(stdout: string): string[] {
  return stdout
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !/^(DEPRECATION|WARNING|\(in )/i.test(l));
}

/**
 * The rake command prefix of a layout: its console commands are
 * `[...prefix, 'cert:create_key_pair']` (pe-config-files has no separate
 * entry for the prefix; a site that moves rake overrides that command).
 */
export function rakePrefix(layout: Layout): string[] {
  const argv = layout.commands.consoleCreateKeyPair;
  if (!argv || argv.length < 2 || argv.at(-1) !== 'cert:create_key_pair') {
    throw new McoError(
      'E_MCO_CONFIG',
      `the ${layout.name} layout has no PE console rake command (commands.consoleCreateKeyPair).`,
      {
        hint: 'The console rake tasks exist only in the pe3 layout.',
      },
    );
  }
  return argv.slice(0, -1);
}

const NAME = /^[A-Za-z0-9_.-][A-Za-z0-9_. -]*$/;
function checkName(what: string, n: string): string {
  if (!NAME.test(n) || n !== n.trim()) throw new McoError('E_MCO_INPUT', `"${n}" is not a console ${what} name.`);
  return n;
}

export interface RakeCall {
  argv: string[];
  readOnly: boolean;
}

/** What one command's listing asks: the variables of these node groups, the groups of these nodes. */
export interface ConsoleQuery {
  groups?: readonly string[];
  nodes?: readonly string[];
  /**
   * Nodes whose whole group list must be exact (it is to be given back to
   * `node:groups`): listed in a rake run of their own, never beside a
   * variables listing whose lines could be mistaken for group names.
   */
  exactNodes?: readonly string[];
}

export interface ConsoleListing {
  /** Each group asked about: its variables. */
  variables: Map<string, Map<string, string>>;
  /** Each node asked about: its groups. */
  nodeGroups: Map<string, string[]>;
  /** The nodes whose list was read alone in its rake run (exact). */
  exact: Set<string>;
}

/** Changes made in one command: variables added or edited per group, groups added to a node, or a node's whole list replaced. */
export interface ConsoleChanges {
  variables?: ReadonlyMap<string, Readonly<Record<string, string>>>;
  addGroups?: ReadonlyMap<string, readonly string[]>;
  setGroups?: ReadonlyMap<string, readonly string[]>;
}

/** Printed between two rake runs of one command, to split its output. */
export const RAKE_RUN_MARKER = '--pe-mcollective-next-rake-run--';

/**
 * Task words packed into as few rake runs as rake allows: a task runs once
 * per process, so no run names a task twice (first fit, order kept).
 */
export function packRakeRuns(words: readonly string[]): string[][] {
  const runs: { names: Set<string>; words: string[] }[] = [];
  for (const w of words) {
    const name = parseRakeTask(w).task;
    let run = runs.find((r) => !r.names.has(name));
    if (!run) runs.push((run = { names: new Set(), words: [] }));
    run.names.add(name);
    run.words.push(w);
  }
  return runs.map((r) => r.words);
}

const VARIABLE_LINE = /^\s*[A-Za-z_][A-Za-z0-9_]*\s*(?:=>|=|:)/;

/**
 * The PE console on the primary, through its rake tasks. Reads run with
 * `readOnly` (a DryRunHost runs them for real); writes are recorded by a
 * DryRunHost as the plan.
 */
export class Pe3Console {
  readonly prefix: readonly string[];
  readonly calls: RakeCall[] = [];

  constructor(
    readonly host: Host,
    layout: Layout,
    private readonly opts: { sudo?: boolean; timeoutMs?: number } = {},
  ) {
    this.prefix = rakePrefix(layout);
  }

  private async run(tasks: string[], readOnly: boolean): Promise<string> {
    return (await this.runs([tasks], readOnly))[0]!;
  }

  /**
   * Several rake runs in ONE command (one round trip): a single run is rake
   * itself; more are chained by `sh -c` (each argv quoted, the first failure
   * stops the rest) with a marker line between them. Returns each run's
   * output. Console tasks change no file (`changesFiles: []`).
   */
  private async runs(runs: readonly string[][], readOnly: boolean): Promise<string[]> {
    const argvs = runs.map((tasks) => [...this.prefix, ...tasks]);
    const argv =
      argvs.length === 1
        ? argvs[0]!
        : sequenceArgv(argvs.flatMap((a, i) => (i === 0 ? [a] : [['echo', RAKE_RUN_MARKER], a])));
    this.calls.push({ argv, readOnly });
    const timeoutMs = (this.opts.timeoutMs ?? 5 * 60_000) * runs.length;
    try {
      const r = await this.host.exec(argv, {
        sudo: this.opts.sudo ?? true,
        timeoutMs,
        ...(readOnly ? { readOnly: true } : { changesFiles: [] }),
      });
      return splitRuns(r.stdout, runs.length);
    } catch (e) {
      // the run that failed: the one after the last marker printed
      const printed =
        typeof (e as { stdout?: unknown }).stdout === 'string'
          ? splitRuns((e as { stdout: string }).stdout, Infinity).length - 1
          : 0;
      const failed = runs[Math.min(printed, runs.length - 1)]!;
      throw new McoError(
        'E_MCO_CONSOLE',
        `the console rake task ${failed.map((t) => parseRakeTask(t).task).join(', ')} failed${runs.length > 1 ? ` (rake run ${Math.min(printed, runs.length - 1) + 1} of ${runs.length}; the runs before it are done)` : ''}.`,
        {
          host: this.host.name,
          cause: e,
          hint: 'Check that the console (puppet-dashboard) and its database are up on the primary; the rake output is in the cause.',
        },
      );
    }
  }

  /**
   * Everything a check needs in ONE command: each group's variables
   * (`nodegroup:variables[group]`) and each node's groups
   * (`node:listgroups[node]`), two different tasks, so one rake run holds a
   * group's listing and a node's; as many runs as the longer list (rake runs
   * a task once per process), chained in one `sh -c`. `exactNodes` get runs of
   * their own. Read-only.
   */
  async list(q: ConsoleQuery): Promise<ConsoleListing> {
    const groups = [...new Set(q.groups ?? [])].map((g) => checkName('group', g));
    const exactNodes = [...new Set(q.exactNodes ?? [])].map((n) => checkName('node', n));
    const nodes = [...new Set(q.nodes ?? [])].filter((n) => !exactNodes.includes(n)).map((n) => checkName('node', n));
    const plan: { group?: string; node?: string }[] = [];
    for (let i = 0; i < Math.max(groups.length, nodes.length); i++)
      plan.push({ ...(groups[i] ? { group: groups[i] } : {}), ...(nodes[i] ? { node: nodes[i] } : {}) });
    for (const n of exactNodes) plan.push({ node: n });
    const out: ConsoleListing = { variables: new Map(), nodeGroups: new Map(), exact: new Set() };
    if (plan.length === 0) return out;
    const texts = await this.runs(
      plan.map((p) => [
        ...(p.node ? [rakeTask('node:listgroups', [p.node])] : []),
        ...(p.group ? [rakeTask('nodegroup:variables', [p.group])] : []),
      ]),
      true,
    );
    plan.forEach((p, i) => {
      const text = texts[i] ?? '';
      if (p.group && p.node) {
        // two listings in one output: `name = value` lines are the group's variables, bare names the node's groups
        // (console group names this package handles hold no `=` or `:`; a node that needs its exact list is read alone)
        const lines = text.split(/\r?\n/);
        out.variables.set(p.group, parseVariableListing(lines.filter((l) => VARIABLE_LINE.test(l)).join('\n')));
        out.nodeGroups.set(p.node, parseNameListing(lines.filter((l) => !VARIABLE_LINE.test(l)).join('\n')));
      } else if (p.group) out.variables.set(p.group, parseVariableListing(text));
      else if (p.node) {
        out.nodeGroups.set(p.node, parseNameListing(text));
        out.exact.add(p.node);
      }
    });
    return out;
  }

  /**
   * Every change in ONE command: `nodegroup:variables[group,k=v,...]` per
   * group (all of a group's variables in one task), `node:addgroup` per group
   * added, `node:groups` per node whose list is replaced; packed into as few
   * rake runs as rake allows (a task once per run), chained in one `sh -c`.
   */
  async change(c: ConsoleChanges): Promise<void> {
    const words: string[] = [];
    for (const [g, vars] of c.variables ?? [])
      words.push(rakeTask('nodegroup:variables', [checkName('group', g), variablesArg(vars)]));
    for (const [n, gs] of c.setGroups ?? [])
      words.push(rakeTask('node:groups', [checkName('node', n), gs.map((g) => checkName('group', g)).join(',')]));
    for (const [n, gs] of c.addGroups ?? [])
      for (const g of gs) words.push(rakeTask('node:addgroup', [checkName('node', n), checkName('group', g)]));
    if (words.length === 0) return;
    await this.runs(packRakeRuns(words), false);
  }

  async groupVariables(group: string): Promise<Map<string, string>> {
    return parseVariableListing(await this.run([rakeTask('nodegroup:variables', [checkName('group', group)])], true));
  }

  async setGroupVariables(group: string, vars: Readonly<Record<string, string>>): Promise<void> {
    await this.run([rakeTask('nodegroup:variables', [checkName('group', group), variablesArg(vars)])], false);
  }

  async nodeGroups(node: string): Promise<string[]> {
    return parseNameListing(await this.run([rakeTask('node:listgroups', [checkName('node', node)])], true));
  }

  /**
   * `node:addgroup` for each group, one rake run each: rake invokes a task
   * once per process, so `node:addgroup[n,a] node:addgroup[n,b]` in one run
   * adds only `a`. To add several groups in one run, give the node's whole
   * list to `setNodeGroups`.
   */
  async addNodeToGroups(node: string, groups: readonly string[]): Promise<void> {
    for (const g of groups)
      await this.run([rakeTask('node:addgroup', [checkName('node', node), checkName('group', g)])], false);
  }

  /** `node:groups`: replace the node's groups (used to take a removed master out of the master groups). */
  async setNodeGroups(node: string, groups: readonly string[]): Promise<void> {
    await this.run(
      [rakeTask('node:groups', [checkName('node', node), groups.map((g) => checkName('group', g)).join(',')])],
      false,
    );
  }
}

/** One command's output split at the markers between its rake runs (`expected` runs; missing ones are empty). */
function splitRuns(stdout: string, expected: number): string[] {
  const out: string[] = [''];
  for (const line of stdout.split('\n')) {
    if (line.replace(/\r$/, '').trim() === RAKE_RUN_MARKER) out.push('');
    else out[out.length - 1] += `${line}\n`;
  }
  if (Number.isFinite(expected)) while (out.length < expected) out.push('');
  return out;
}
