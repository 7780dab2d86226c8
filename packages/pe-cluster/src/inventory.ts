import { promises as fs } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { LayoutError, resolveLayout, type Layout } from '@pe-stack/pe-config-files';
import { Redactor, validateHostname, type SshHostConfig } from '@pe-stack/pe-host';
import type { z } from 'zod';
import { InventoryError, type InventoryIssue } from './errors.js';
import {
  BOLT_REFUSED_SSH,
  boltInventory,
  clusterSettings,
  ownInventory,
  sshConfig,
  targetVars,
  type BoltGroupInput,
  type BoltTargetInput,
  type DnsSettings,
  type SecretValue,
  type SshInput,
} from './inventory-schema.js';
import { formatKey, YamlSource, type KeyPath } from './yaml-source.js';

export type NodeRole = 'primary' | 'secondary' | 'agent';

/** How to reach one node: an SshHostConfig (without the run's redactor) and whether commands need sudo. */
export interface NodeSsh extends Omit<SshHostConfig, 'redactor' | 'jump'> {
  jump?: Omit<SshHostConfig, 'redactor' | 'jump'>;
}

export interface InventoryNode {
  /** FQDN, also the Puppet certname. */
  name: string;
  role: NodeRole;
  ssh: NodeSsh;
  /** The login user is not root: run commands and writes through sudo (run-as: root). */
  sudo: boolean;
}

export interface Inventory {
  file: string;
  format: 'pe-cluster' | 'bolt';
  cluster: string;
  layoutName: 'pe3' | 'debian';
  /** The layout with the site's overrides merged in (pe-config-files resolveLayout). */
  layout: Layout;
  layoutOverrides: Record<string, unknown> | undefined;
  primaryCname: string;
  generalCname: string;
  dnsAltNames: string[];
  primary: InventoryNode;
  /** Every master, the primary first, then the secondaries in file order. */
  masters: InventoryNode[];
  agents: InventoryNode[];
  backupDir: string;
  journalDir: string;
  auditLog: string;
  /** How failover moves primary_cname (relative paths in it are relative to the inventory file). */
  dns: DnsSettings;
  /** Knows every secret value the inventory resolved (sudo passwords, inline keys); share it with every host of a run. */
  redactor: Redactor;
  /** Not errors, but worth saying (a plain-text secret in the file, targets without a role). */
  warnings: InventoryIssue[];
}

export interface LoadOptions {
  /** Environment for `{env: NAME}` references (default process.env). */
  env?: Record<string, string | undefined>;
  /** Home directory for `~` (default os.homedir()). */
  home?: string;
}

interface Located<T> {
  value: T;
  path: KeyPath;
}

/** Read and validate an inventory file (ours or a Bolt inventory.yaml v2). Throws InventoryError. */
export async function loadInventory(file: string, opts: LoadOptions = {}): Promise<Inventory> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? String(e);
    throw new InventoryError(file, [
      {
        file,
        line: undefined,
        column: undefined,
        key: '',
        message: `cannot read the file (${code}); expected a readable YAML inventory`,
      },
    ]);
  }
  return parseInventory(text, resolve(file), opts);
}

/** Validate inventory text; `file` is used for messages and to resolve relative paths. */
export function parseInventory(text: string, file: string, opts: LoadOptions = {}): Inventory {
  const src = new YamlSource(file, text);
  const syntax = src.syntaxIssues();
  if (syntax.length) throw new InventoryError(file, syntax);
  const js = src.toJS();
  const ctx = new Builder(src, opts);
  if (js === null || typeof js !== 'object' || Array.isArray(js)) {
    throw new InventoryError(file, [
      src.issue([], 'expected a mapping (our inventory with cluster/masters, or a Bolt inventory with targets/groups)'),
    ]);
  }
  const top = js as Record<string, unknown>;
  const bolt = ['targets', 'groups', 'version', 'config'].some((k) => k in top);
  const ours = ['masters', 'cluster', 'primary_cname'].some((k) => k in top);
  if (bolt && ours) {
    throw new InventoryError(file, [
      src.issue(
        [],
        'mixes our keys (cluster, masters, primary_cname) with Bolt keys (targets, groups, config); expected one shape: in a Bolt inventory our keys go under vars',
      ),
    ]);
  }
  const inv = bolt ? ctx.fromBolt(top) : ctx.fromOwn(top);
  if (ctx.issues.length) throw new InventoryError(file, ctx.issues);
  return inv!;
}

/** One layer of Bolt config and vars: the top level, a group, or a target's own entry. */
interface BoltLayer {
  config?: Record<string, unknown> | undefined;
  vars?: Record<string, unknown> | undefined;
  path: KeyPath;
}

/** One mention of a target in a Bolt inventory, with the chain of groups it sits in (outer first). */
interface BoltEntry {
  path: KeyPath;
  own?: {
    uri?: string | undefined;
    name?: string | undefined;
    config?: Record<string, unknown> | undefined;
    vars?: Record<string, unknown> | undefined;
  };
  ref: string;
  groups: BoltLayer[];
}

/** What Builder.node needs to make one node: its names, the ssh layers (lowest priority first), where it is. */
interface NodeSpec {
  name: string;
  role: NodeRole;
  address: string | undefined;
  layers: Located<SshInput>[];
  fromUri: { user?: string | undefined; port?: number | undefined };
  at: KeyPath;
}

interface FinishInput {
  format: Inventory['format'];
  settings: Record<string, Located<unknown>>;
  nodes: InventoryNode[];
  origins: Map<InventoryNode, KeyPath>;
  /** Where a missing primary is reported: the list of masters, groups or targets. */
  listPath: KeyPath;
}

/** Entries grouped by target: an object entry defines it; string entries refer to it by name (or are uris). */
function entriesByTarget(entries: BoltEntry[]): Map<string, BoltEntry[]> {
  const byName = new Map<string, BoltEntry[]>();
  const definedBy = new Map<string, string>();
  for (const e of entries) if (e.own?.name && e.own.uri) definedBy.set(e.own.uri, e.own.name);
  for (const e of entries) {
    const key = e.own ? e.ref : (definedBy.get(e.ref) ?? e.ref);
    byName.set(key, [...(byName.get(key) ?? []), e]);
  }
  return byName;
}

/** One target's layers, lowest priority first: top config, later groups, earlier groups (each chain outer -> inner), the target's own. */
function boltLayers(list: BoltEntry[], topCfg: { config: Record<string, unknown>; path: KeyPath }[]): BoltLayer[] {
  const groupLayers = [...list].reverse().flatMap((e) => e.groups);
  const ownLayers = list.filter((e) => e.own).map((e) => ({ config: e.own!.config, vars: e.own!.vars, path: e.path }));
  return [...topCfg.map((c) => ({ ...c, vars: undefined })), ...groupLayers, ...ownLayers];
}

function getIn(root: unknown, path: KeyPath): unknown {
  let cur: unknown = root;
  for (const seg of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string | number, unknown>)[seg];
  }
  return cur;
}

class Builder {
  readonly issues: InventoryIssue[] = [];
  readonly warnings: InventoryIssue[] = [];
  readonly redactor = new Redactor();
  private readonly env: Record<string, string | undefined>;
  private readonly home: string;
  private readonly base: string;

  constructor(
    private readonly src: YamlSource,
    opts: LoadOptions,
  ) {
    this.env = opts.env ?? process.env;
    this.home = opts.home ?? homedir();
    this.base = dirname(src.file);
  }

  private add(path: KeyPath, message: string): void {
    this.issues.push(this.src.issue(path, message));
  }

  /** zod issues, re-rooted at `at`, with "is missing" for absent required keys. */
  private zodIssues(err: z.ZodError, at: KeyPath, value: unknown): void {
    for (const i of err.issues) {
      const path = [...at, ...(i.path as (string | number)[])];
      if (i.code === 'unrecognized_keys') {
        for (const k of i.keys)
          this.add(
            [...path, k],
            'unknown key; expected one of the documented keys (see the pe-cluster README, "Inventory")',
          );
        continue;
      }
      const missing = getIn(value, i.path as KeyPath) === undefined;
      const msg = i.message.replace(/^Invalid input: /, '');
      this.add(path, missing ? `is missing; ${msg}` : msg);
    }
  }

  private check<S extends z.ZodType>(schema: S, value: unknown, at: KeyPath): z.infer<S> | undefined {
    const r = schema.safeParse(value);
    if (r.success) return r.data;
    this.zodIssues(r.error, at, value);
    return undefined;
  }

  private path(p: string): string {
    const expanded = p === '~' ? this.home : p.startsWith('~/') ? join(this.home, p.slice(2)) : p;
    return isAbsolute(expanded) ? expanded : resolve(this.base, expanded);
  }

  // ---------- our format ----------

  fromOwn(top: Record<string, unknown>): Inventory | undefined {
    const data = this.check(ownInventory, top, []);
    if (!data) return undefined;
    const settings: Record<string, Located<unknown>> = {};
    for (const [k, v] of Object.entries(data))
      if (k in clusterSettings && v !== undefined) settings[k] = { value: v, path: [k] };
    const topSsh = data.ssh ? [{ value: data.ssh, path: ['ssh'] as KeyPath }] : [];
    const nodes: InventoryNode[] = [];
    const origins = new Map<InventoryNode, KeyPath>();
    data.masters.forEach((m, i) => {
      const layers = [...topSsh, ...(m.ssh ? [{ value: m.ssh, path: ['masters', i, 'ssh'] as KeyPath }] : [])];
      const n = this.node({ name: m.name, role: m.role, address: m.address, layers, fromUri: {}, at: ['masters', i] });
      if (n) {
        nodes.push(n);
        origins.set(n, ['masters', i]);
      }
    });
    (data.agents ?? []).forEach((a, i) => {
      const spec = typeof a === 'string' ? { name: a } : a;
      const layers = [
        ...topSsh,
        ...('ssh' in spec && spec.ssh ? [{ value: spec.ssh, path: ['agents', i, 'ssh'] as KeyPath }] : []),
      ];
      const address = 'address' in spec ? spec.address : undefined;
      const n = this.node({ name: spec.name, role: 'agent', address, layers, fromUri: {}, at: ['agents', i] });
      if (n) {
        nodes.push(n);
        origins.set(n, ['agents', i]);
      }
    });
    return this.finish({ format: 'pe-cluster', settings, nodes, origins, listPath: ['masters'] });
  }

  // ---------- Bolt inventory v2 ----------

  fromBolt(top: Record<string, unknown>): Inventory | undefined {
    const data = this.check(boltInventory, top, []);
    if (!data) return undefined;
    // cluster settings: our keys under vars, at the top level or in any group (each defined once)
    const settings: Record<string, Located<unknown>> = {};
    this.collectSettings(settings, data.vars, ['vars']);
    const entries: BoltEntry[] = [];
    this.addTargets(entries, { targets: data.targets, chain: [], at: [] });
    this.walkGroups(entries, settings, { groups: data.groups, chain: [], at: [] });
    const nodes: InventoryNode[] = [];
    const origins = new Map<InventoryNode, KeyPath>();
    const topCfg = data.config ? [{ config: data.config as Record<string, unknown>, path: [] as KeyPath }] : [];
    for (const [name, list] of entriesByTarget(entries)) {
      const def = list.find((e) => e.own) ?? list[0]!;
      const n = this.boltNode(name, def, boltLayers(list, topCfg));
      if (n) {
        nodes.push(n);
        origins.set(n, def.path);
      }
    }
    const listPath: KeyPath = data.groups ? ['groups'] : data.targets ? ['targets'] : [];
    return this.finish({ format: 'bolt', settings, nodes, origins, listPath });
  }

  /** Our keys in one vars mapping into `settings`; a key set twice must have one value. */
  private collectSettings(
    settings: Record<string, Located<unknown>>,
    vars: Record<string, unknown> | undefined,
    at: KeyPath,
  ): void {
    if (!vars) return;
    for (const [k, v] of Object.entries(vars)) {
      if (!(k in clusterSettings)) continue;
      const prev = settings[k];
      if (prev && JSON.stringify(prev.value) !== JSON.stringify(v)) {
        this.add(
          [...at, k],
          `is already set to a different value at ${formatKey(prev.path)} (line ${this.src.locate(prev.path).line}); expected one value per cluster`,
        );
        continue;
      }
      const schema = clusterSettings[k as keyof typeof clusterSettings] as z.ZodType;
      const ok = this.check(schema, v, [...at, k]);
      if (ok !== undefined) settings[k] = { value: ok, path: [...at, k] };
    }
  }

  private addTargets(
    entries: BoltEntry[],
    { targets, chain, at }: { targets: BoltTargetInput[] | undefined; chain: BoltLayer[]; at: KeyPath },
  ): void {
    (targets ?? []).forEach((t, i) => {
      const path = [...at, 'targets', i];
      if (typeof t === 'string') entries.push({ path, ref: t, groups: chain });
      else {
        const ref = t.name ?? t.uri;
        if (!ref) return this.add(path, 'has neither uri nor name; expected at least one');
        entries.push({ path, ref, own: t, groups: chain });
      }
    });
  }

  /** Each group in file order: its vars, its targets (with the chain of groups above), then its subgroups. */
  private walkGroups(
    entries: BoltEntry[],
    settings: Record<string, Located<unknown>>,
    { groups, chain, at }: { groups: BoltGroupInput[] | undefined; chain: BoltLayer[]; at: KeyPath },
  ): void {
    (groups ?? []).forEach((g, i) => {
      const gp = [...at, 'groups', i];
      this.collectSettings(settings, g.vars, [...gp, 'vars']);
      const next = [...chain, { config: g.config, vars: g.vars, path: gp }];
      this.addTargets(entries, { targets: g.targets, chain: next, at: gp });
      this.walkGroups(entries, settings, { groups: g.groups, chain: next, at: gp });
    });
  }

  /** The node of one Bolt target, from its defining entry and its layers of config and vars. */
  private boltNode(name: string, def: BoltEntry, layers: BoltLayer[]): InventoryNode | undefined {
    const ssh = layers
      .filter((l) => l.config?.ssh)
      .map((l) => ({ value: l.config!.ssh as SshInput, path: [...l.path, 'config', 'ssh'] as KeyPath }));
    const vars = this.targetVarsOf(layers);
    const role = vars.role?.value as NodeRole | undefined;
    if (!role) {
      this.warnings.push(
        this.src.issue(
          def.path,
          `target ${name} has no vars.role (primary, secondary or agent); it is not part of the cluster`,
        ),
      );
      return undefined;
    }
    const uri = parseUri(def.own?.uri ?? def.ref);
    if (!uri) {
      this.add(
        def.own?.uri ? [...def.path, 'uri'] : def.path,
        `"${def.own?.uri ?? def.ref}" is not a target uri; expected [ssh://][user@]host[:port]`,
      );
      return undefined;
    }
    if (uri.transport && uri.transport !== 'ssh') {
      this.add([...def.path, 'uri'], `transport ${uri.transport} is not supported; expected ssh://`);
      return undefined;
    }
    const certname =
      (vars.certname?.value as string | undefined) ?? (def.own?.name && isHost(def.own.name) ? def.own.name : uri.host);
    return this.node({
      name: certname,
      role,
      address: (vars.address?.value as string | undefined) ?? uri.host,
      layers: ssh,
      fromUri: { user: uri.user, port: uri.port },
      at: def.path,
    });
  }

  /** role, certname and address from the layers' vars, the last layer that sets one winning. */
  private targetVarsOf(layers: BoltLayer[]): Record<string, Located<unknown>> {
    const vars: Record<string, Located<unknown>> = {};
    for (const l of layers) {
      if (!l.vars) continue;
      const parsed = this.check(targetVars, l.vars, [...l.path, 'vars']);
      if (!parsed) continue;
      for (const k of ['role', 'certname', 'address'] as const)
        if (parsed[k] !== undefined) vars[k] = { value: parsed[k], path: [...l.path, 'vars', k] };
    }
    return vars;
  }

  // ---------- shared ----------

  private secret(v: Located<SecretValue>): string | undefined {
    const val = v.value;
    if (typeof val === 'string') {
      this.warnings.push(
        this.src.issue(
          v.path,
          'a secret in plain text in the inventory; it is masked everywhere, but prefer {env: NAME}',
        ),
      );
      this.redactor.add(val);
      return val;
    }
    const name = 'env' in val ? val.env : val.var;
    const got = this.env[name];
    if (got === undefined || got === '') {
      if ('var' in val && (val.optional || val.default !== undefined)) {
        if (val.default !== undefined) this.redactor.add(val.default);
        return val.default;
      }
      this.add(v.path, `refers to the environment variable ${name}, which is not set; expected it to hold the value`);
      return undefined;
    }
    this.redactor.add(got);
    return got;
  }

  /** Map merged ssh settings (Bolt names) to an SshHostConfig. */
  private node({ name, role, address, layers, fromUri, at }: NodeSpec): InventoryNode | undefined {
    if (!isHost(name)) {
      this.add([...at, 'name'], `"${name}" is not a valid host name; expected letters, digits, hyphens and dots`);
      return undefined;
    }
    const s = this.mergeSsh(layers);
    const before = this.issues.length;
    const user = fromUri.user ?? (s.user?.value as string | undefined) ?? 'root';
    this.checkEscalation(s, { user, at });
    const cfg: NodeSsh = { name, user };
    if (address && address !== name) cfg.address = address;
    const port = fromUri.port ?? (s.port?.value as number | undefined);
    if (port !== undefined) cfg.port = port;
    const pk = s['private-key'];
    if (pk) this.setPrivateKey(cfg, pk as Located<string | { 'key-data': SecretValue }>);
    const knownHosts = s['known-hosts']
      ? this.path(s['known-hosts'].value as string)
      : join(this.home, '.ssh', 'known_hosts');
    cfg.knownHosts = knownHosts;
    if (s['host-keys']) cfg.hostKeys = s['host-keys'].value as string[];
    const tofu = s['trust-on-first-use']?.value === true;
    const hkc = s['host-key-check'];
    if (hkc && hkc.value === false && !tofu) {
      this.add(
        hkc.path,
        'host-key-check: false would accept any host key, so pe-cluster refuses it; expected pinned keys (known-hosts or host-keys), or the explicit opt-in trust-on-first-use: true (accepts an unknown key once, records it, and still refuses a changed key)',
      );
    }
    if (tofu) cfg.trustOnFirstUse = true;
    const sp = s['sudo-password'];
    if (sp) {
      const pw = this.secret(sp as Located<SecretValue>);
      if (pw !== undefined) cfg.sudoPassword = pw;
    }
    if (s['connect-timeout']) cfg.connectTimeoutMs = Math.round((s['connect-timeout'].value as number) * 1000);
    if (s['max-channels']) cfg.maxChannels = s['max-channels'].value as number;
    if (s.proxyjump) this.setJump(cfg, s.proxyjump);
    if (this.issues.length > before) return undefined;
    return { name, role, ssh: cfg, sudo: user !== 'root' };
  }

  /** The ssh layers merged key by key, later layers winning; each value keeps where it was set. */
  private mergeSsh(layers: Located<SshInput>[]): Record<string, Located<unknown>> {
    const s: Record<string, Located<unknown>> = {};
    for (const l of layers) {
      const parsed = this.check(sshConfig, l.value, l.path);
      if (!parsed) continue;
      for (const [k, v] of Object.entries(parsed)) if (v !== undefined) s[k] = { value: v, path: [...l.path, k] };
    }
    return s;
  }

  /** Refused Bolt keys, and escalation: root, or sudo to root, nothing else. */
  private checkEscalation(s: Record<string, Located<unknown>>, { user, at }: { user: string; at: KeyPath }): void {
    for (const [k, why] of Object.entries(BOLT_REFUSED_SSH)) if (s[k]) this.add(s[k].path, `${why}`);
    const runAs = s['run-as'];
    if (runAs && runAs.value !== 'root')
      this.add(
        runAs.path,
        `"${String(runAs.value)}" is not supported; expected root (pe-cluster changes Puppet's files and services as root)`,
      );
    const runAsCmd = s['run-as-command'];
    if (runAsCmd && (runAsCmd.value as string[])[0]?.replace(/^.*\//, '') !== 'sudo')
      this.add(runAsCmd.path, 'expected a sudo command (pe-cluster escalates with sudo only)');
    const sudoExe = s['sudo-executable'];
    if (sudoExe && String(sudoExe.value).replace(/^.*\//, '') !== 'sudo') this.add(sudoExe.path, 'expected sudo');
    if (user !== 'root' && !runAs) {
      this.add(
        s.user?.path ?? at,
        `user "${user}" is not root and no run-as is set; expected run-as: root (pe-cluster changes Puppet's files and services as root, through sudo)`,
      );
    }
  }

  /** private-key: a path (relative to the inventory file) or inline key-data (a secret). */
  private setPrivateKey(cfg: NodeSsh, pk: Located<string | { 'key-data': SecretValue }>): void {
    const v = pk.value;
    if (typeof v === 'string') cfg.privateKey = this.path(v);
    else {
      const key = this.secret({ value: v['key-data'], path: [...pk.path, 'key-data'] });
      if (key !== undefined) cfg.privateKey = key;
    }
  }

  /** proxyjump: the jump host shares the node's key, known hosts, trust-on-first-use and timeout. */
  private setJump(cfg: NodeSsh, pj: Located<unknown>): void {
    const j = parseUri(String(pj.value));
    if (!j || (j.transport && j.transport !== 'ssh')) {
      this.add(pj.path, `"${String(pj.value)}" is not a jump host; expected [user@]host[:port]`);
      return;
    }
    const jump: NodeSsh['jump'] = { name: j.host, user: j.user ?? cfg.user, knownHosts: cfg.knownHosts };
    if (j.port !== undefined) jump.port = j.port;
    if (cfg.privateKey !== undefined) jump.privateKey = cfg.privateKey;
    if (cfg.trustOnFirstUse) jump.trustOnFirstUse = true;
    if (cfg.connectTimeoutMs !== undefined) jump.connectTimeoutMs = cfg.connectTimeoutMs;
    cfg.jump = jump;
  }

  private finish({ format, settings, nodes, origins, listPath }: FinishInput): Inventory | undefined {
    this.checkRequiredSettings(format, settings);
    this.checkListedOnce(nodes, origins);
    const primaries = this.checkOnePrimary({ format, nodes, origins, listPath });
    const pc = settings.primary_cname;
    const gc = settings.general_cname;
    if (pc && gc && pc.value === gc.value)
      this.add(
        gc.path,
        'equals primary_cname; expected a different name (general_cname balances across all masters, primary_cname points at the CA)',
      );
    const layout = this.layoutOf(settings);
    if (this.issues.length || !layout || !pc || !gc || primaries.length !== 1) return undefined;
    const cluster = settings.cluster!.value as string;
    const state = join(this.env.XDG_STATE_HOME || join(this.home, '.local', 'state'), 'pe-cluster', cluster);
    const dir = (k: string, dflt: string) => (settings[k] ? this.path(settings[k].value as string) : dflt);
    const primary = primaries[0]!;
    const masters = nodes.filter((n) => n.role !== 'agent');
    return {
      file: this.src.file,
      format,
      cluster,
      layoutName: settings.layout!.value as 'pe3' | 'debian',
      layout,
      layoutOverrides: (settings.layout_overrides as Located<Record<string, unknown>> | undefined)?.value,
      primaryCname: pc.value as string,
      generalCname: gc.value as string,
      dnsAltNames: (settings.dns_alt_names?.value as string[] | undefined) ?? [],
      primary,
      masters: [primary, ...masters.filter((m) => m !== primary)],
      agents: nodes.filter((n) => n.role === 'agent'),
      backupDir: dir('backups', join(state, 'backups')),
      journalDir: dir('journals', join(state, 'journal')),
      auditLog: dir('audit_log', join(state, 'audit.log')),
      dns: (settings.dns?.value as Inventory['dns'] | undefined) ?? { provider: 'manual' },
      redactor: this.redactor,
      warnings: this.warnings,
    };
  }

  private checkRequiredSettings(format: Inventory['format'], settings: Record<string, Located<unknown>>): void {
    const varsAt: KeyPath = format === 'bolt' ? ['vars'] : [];
    for (const k of ['cluster', 'layout', 'primary_cname', 'general_cname'] as const) {
      if (!settings[k])
        this.add(
          varsAt,
          `the key ${k} is missing; expected ${format === 'bolt' ? 'it under vars (top level or a group)' : 'it at the top level'}`,
        );
    }
  }

  private checkListedOnce(nodes: InventoryNode[], origins: Map<InventoryNode, KeyPath>): void {
    const seen = new Map<string, InventoryNode>();
    for (const n of nodes) {
      const prev = seen.get(n.name);
      if (prev)
        this.add(
          origins.get(n)!,
          `${n.name} is listed twice (also at line ${this.src.locate(origins.get(prev)!).line}); expected each host once`,
        );
      seen.set(n.name, n);
    }
  }

  /** The nodes with role primary; none or several is an issue. */
  private checkOnePrimary({ format, nodes, origins, listPath }: Omit<FinishInput, 'settings'>): InventoryNode[] {
    const primaries = nodes.filter((n) => n.role === 'primary');
    // a node that failed validation may be the primary: do not add a consequential error
    if (primaries.length === 0 && this.issues.length === 0)
      this.add(listPath, 'no master has role primary; expected exactly one primary (it holds the CA and PostgreSQL)');
    for (const extra of primaries.slice(1)) {
      const at = origins.get(extra)!;
      this.add(
        format === 'bolt' ? at : [...at, 'role'],
        `${extra.name} is a second primary (the first is ${primaries[0]!.name}); expected exactly one`,
      );
    }
    return primaries;
  }

  /** The layout with the site's overrides; an override pe-config-files refuses is an issue at its key. */
  private layoutOf(settings: Record<string, Located<unknown>>): Layout | undefined {
    const overrides = settings.layout_overrides as Located<Record<string, unknown>> | undefined;
    if (!settings.layout) return undefined;
    try {
      return resolveLayout(settings.layout.value as 'pe3' | 'debian', overrides?.value);
    } catch (e) {
      if (!(e instanceof LayoutError)) throw e;
      const at = overrides ? [...overrides.path, ...e.field.split('.')] : settings.layout.path;
      const detail = e.message
        .replace(/^layout field \S+: /, '')
        .replace(/ Fix the layout overrides in the inventory\.$/, '');
      // the deepest existing key is located; name the full field in the message
      this.add(at, `${detail} (layout field ${e.field})`);
      return undefined;
    }
  }
}

function isHost(name: string): boolean {
  try {
    validateHostname(name);
    return true;
  } catch {
    return false;
  }
}

/** `[transport://][user@]host[:port]`; undefined when it is not one. */
export function parseUri(uri: string): { transport?: string; user?: string; host: string; port?: number } | undefined {
  const m = /^(?:([a-z][a-z0-9+.-]*):\/\/)?(?:([^@/:\s]+)@)?(\[[0-9A-Fa-f:.]+\]|[^:/@\s[\]]+)(?::(\d{1,5}))?\/?$/.exec(
    uri,
  );
  if (!m) return undefined;
  const host = m[3]!.replace(/^\[|\]$/g, '');
  if (!isHost(host)) return undefined;
  const out: { transport?: string; user?: string; host: string; port?: number } = { host };
  if (m[1]) out.transport = m[1];
  if (m[2]) out.user = m[2];
  if (m[4]) {
    const p = Number(m[4]);
    if (p < 1 || p > 65535) return undefined;
    out.port = p;
  }
  return out;
}

/** The inventory as plain data with secrets masked: for `--json` output and logs. */
export function describeInventory(inv: Inventory): Record<string, unknown> {
  const node = (n: InventoryNode) => ({
    name: n.name,
    role: n.role,
    address: n.ssh.address ?? n.name,
    port: n.ssh.port ?? 22,
    user: n.ssh.user,
    sudo: n.sudo,
    jump: n.ssh.jump?.name,
  });
  return {
    file: inv.file,
    format: inv.format,
    cluster: inv.cluster,
    layout: inv.layoutName,
    primaryCname: inv.primaryCname,
    generalCname: inv.generalCname,
    dnsAltNames: inv.dnsAltNames,
    masters: inv.masters.map(node),
    agents: inv.agents.map(node),
    journalDir: inv.journalDir,
    auditLog: inv.auditLog,
    backupDir: inv.backupDir,
  };
}
