import type { Host } from '@pe-stack/pe-host';
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
  if (value !== value.trim()) throw new McoError('E_MCO_INPUT', `a console rake argument cannot start or end with a blank ("${value}").`);
  if (/[\0\r\n]/.test(value)) throw new McoError('E_MCO_INPUT', 'a console rake argument cannot contain a line break.');
  return value.replace(/[\\,]/g, (c) => `\\${c}`);
}

/** `task[a,b]` with each argument escaped. */
export function rakeTask(task: string, args: readonly string[] = []): string {
  if (!/^[a-z_]+(:[a-z_]+)+$/.test(task)) throw new McoError('E_MCO_INPUT', `"${task}" is not a console rake task name.`);
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
      if (/[\\\0\r\n]/.test(v)) throw new McoError('E_MCO_INPUT', `the value of ${k} contains a backslash or a line break.`);
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
    throw new McoError('E_MCO_CONFIG', `the ${layout.name} layout has no PE console rake command (commands.consoleCreateKeyPair).`, {
      hint: 'The console rake tasks exist only in the pe3 layout.',
    });
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
    const argv = [...this.prefix, ...tasks];
    this.calls.push({ argv, readOnly });
    try {
      const r = await this.host.exec(argv, { sudo: this.opts.sudo ?? true, readOnly, timeoutMs: this.opts.timeoutMs ?? 5 * 60_000 });
      return r.stdout;
    } catch (e) {
      throw new McoError('E_MCO_CONSOLE', `the console rake task ${tasks.map((t) => parseRakeTask(t).task).join(', ')} failed.`, {
        host: this.host.name,
        cause: e,
        hint: 'Check that the console (puppet-dashboard) and its database are up on the primary; the rake output is in the cause.',
      });
    }
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
    for (const g of groups) await this.run([rakeTask('node:addgroup', [checkName('node', node), checkName('group', g)])], false);
  }

  /** `node:groups`: replace the node's groups (used to take a removed master out of the master groups). */
  async setNodeGroups(node: string, groups: readonly string[]): Promise<void> {
    await this.run([rakeTask('node:groups', [checkName('node', node), groups.map((g) => checkName('group', g)).join(',')])], false);
  }
}
