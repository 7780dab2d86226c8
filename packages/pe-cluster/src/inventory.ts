import { constants as fsConstants, promises as fs } from 'node:fs';
import { isIP } from 'node:net';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { LayoutError, resolveLayout, type Layout } from '@pe-stack/pe-config-files';
import { Redactor, type SshHostConfig } from '@pe-stack/pe-host';
import type { z } from 'zod';
import { InventoryError, type InventoryIssue } from './errors.js';
import { resolveBolt, type BoltLayer, type BoltTarget } from './bolt-inventory.js';
import { pluginRefsInBolt, pluginRefsInOwn } from './inventory-plugins.js';
import {
  BOLT_REFUSED_SSH,
  boltInventory,
  clusterSettings,
  isHostOrIp,
  ownInventory,
  quote,
  sshConfig,
  targetVars,
  USER_NAME,
  type BoltGroupInput,
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
  /** Seconds between two CRL refreshes on each secondary (`crl_refresh_interval`; default 300). */
  crlRefreshIntervalS?: number | undefined;
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

/** Larger than any inventory; a bigger file is refused before it is parsed. */
const MAX_INVENTORY_BYTES = 1024 * 1024;

/** Read and validate an inventory file (ours or a Bolt inventory.yaml v2). Throws InventoryError. */
export async function loadInventory(file: string, opts: LoadOptions = {}): Promise<Inventory> {
  const text = await readInventoryFile(file);
  return parseInventory(text, resolve(file), opts);
}

function fileIssue(file: string, message: string): InventoryError {
  return new InventoryError(file, [{ file, line: undefined, column: undefined, key: '', message }]);
}

/**
 * The file's text, through one open handle (what is checked is what is read):
 * a regular file, not writable by group or others (it decides what runs as
 * root on every master), at most MAX_INVENTORY_BYTES.
 */
async function readInventoryFile(file: string): Promise<string> {
  let fh: fs.FileHandle;
  try {
    // O_NONBLOCK: a FIFO in place of the file must not hang the open
    fh = await fs.open(file, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? String(e);
    throw fileIssue(file, `cannot read the file (${code}); expected a readable YAML inventory`);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw fileIssue(file, 'is not a regular file; expected a YAML inventory file');
    if (st.mode & 0o022) {
      const who = st.mode & 0o002 ? 'every user' : 'its group';
      const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
      throw fileIssue(
        file,
        `is writable by ${who} (mode ${mode}); the inventory decides what runs as root on every master: expected it writable by its owner only (chmod go-w)`,
      );
    }
    if (st.size > MAX_INVENTORY_BYTES)
      throw fileIssue(file, `is ${st.size} bytes; expected an inventory of at most ${MAX_INVENTORY_BYTES} bytes`);
    const text = await fh.readFile('utf8');
    if (text.length > MAX_INVENTORY_BYTES)
      throw fileIssue(file, `grew past ${MAX_INVENTORY_BYTES} bytes while read; expected an inventory file`);
    return text;
  } finally {
    await fh.close();
  }
}

/** The YAML of an inventory as plain data; anything the YAML library refuses or cannot do safely is an InventoryError. */
function readYaml(text: string, file: string): { src: YamlSource; js: unknown } {
  let src: YamlSource;
  try {
    src = new YamlSource(file, text);
  } catch (e) {
    const why = e instanceof Error ? e.name : 'error';
    throw new InventoryError(file, [
      { file, line: 1, column: 1, key: '', message: `YAML cannot be read (${why}); expected a plain YAML inventory` },
    ]);
  }
  const syntax = src.syntaxIssues();
  if (syntax.length) throw new InventoryError(file, syntax);
  const data = src.toData();
  if ('issue' in data) throw new InventoryError(file, [data.issue]);
  return { src, js: data.value };
}

/** Validate inventory text; `file` is used for messages and to resolve relative paths. */
export function parseInventory(text: string, file: string, opts: LoadOptions = {}): Inventory {
  const { src, js } = readYaml(text, file);
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
  const refs = bolt ? pluginRefsInBolt(top) : pluginRefsInOwn(top);
  if (refs.length)
    throw new InventoryError(
      file,
      refs.map((r) => src.issue(r.path, r.message)),
    );
  const inv = bolt ? ctx.fromBolt(top) : ctx.fromOwn(top);
  if (ctx.issues.length) throw new InventoryError(file, ctx.issues);
  return inv!;
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

  /** An issue at `path`; the same one found again (a group's vars seen by each of its targets) is kept once. */
  private add(path: KeyPath, message: string): void {
    const issue = this.src.issue(path, message);
    if (!this.issues.some((i) => i.key === issue.key && i.message === issue.message)) this.issues.push(issue);
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
    this.groupSettings(settings, data.groups, []);
    const resolved = resolveBolt(data);
    for (const w of resolved.warnings) this.warnings.push(this.src.issue(w.path, w.message));
    for (const i of resolved.issues) this.add(i.path, i.message);
    if (resolved.issues.length) return undefined;
    const nodes: InventoryNode[] = [];
    const origins = new Map<InventoryNode, KeyPath>();
    for (const t of resolved.targets) {
      const n = this.boltNode(t);
      if (n) {
        nodes.push(n);
        origins.set(n, t.path);
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

  /** Cluster settings in the vars of every group, in file order. */
  private groupSettings(
    settings: Record<string, Located<unknown>>,
    groups: BoltGroupInput[] | undefined,
    at: KeyPath,
  ): void {
    (groups ?? []).forEach((g, i) => {
      const gp = [...at, 'groups', i];
      this.collectSettings(settings, g.vars, [...gp, 'vars']);
      this.groupSettings(settings, g.groups, gp);
    });
  }

  /** The node of one Bolt target, from its layers of config and vars; undefined for a target outside the cluster. */
  private boltNode(t: BoltTarget): InventoryNode | undefined {
    const vars = this.targetVarsOf(t.layers);
    const role = vars.role?.value as NodeRole | undefined;
    if (!role) {
      this.warnings.push(
        this.src.issue(
          t.path,
          `target ${t.name} has no vars.role (primary, secondary or agent); it is not part of the cluster`,
        ),
      );
      return undefined;
    }
    const uriText = t.uri ?? t.name;
    const uriAt = t.uriPath ?? t.path;
    const uri = parseTargetUri(uriText);
    if ('problem' in uri) return void this.add(uriAt, uri.problem);
    const transport = uri.transport ? { value: uri.transport, path: uriAt } : this.configTransport(t.layers);
    if (transport && transport.value !== 'ssh') {
      this.add(
        transport.path,
        `transport ${transport.value} is not supported for ${t.name}, a cluster target (role ${role}); expected ssh (pe-cluster reaches the cluster's nodes over SSH only; other targets may use any transport)`,
      );
      return undefined;
    }
    const ssh = t.layers
      .filter((l) => l.config?.ssh)
      .map((l) => ({ value: l.config!.ssh as SshInput, path: [...l.path, 'config', 'ssh'] as KeyPath }));
    const certname =
      (vars.certname?.value as string | undefined) ?? (t.uri !== undefined && isHost(t.name) ? t.name : uri.host);
    return this.node({
      name: certname,
      role,
      address: (vars.address?.value as string | undefined) ?? uri.host,
      layers: ssh,
      fromUri: { user: uri.user, port: uri.port },
      at: t.path,
    });
  }

  /** `config.transport` as the layers set it (the last one wins), with where. */
  private configTransport(layers: BoltLayer[]): Located<string> | undefined {
    let found: Located<string> | undefined;
    for (const l of layers) {
      const v = l.config?.transport;
      if (typeof v === 'string') found = { value: v, path: [...l.path, 'config', 'transport'] };
    }
    return found;
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
      this.add([...at, 'name'], `${quote(name)} is not a valid host name; expected letters, digits, hyphens and dots`);
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
    this.warnCommandOverrides(settings);
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
      crlRefreshIntervalS: settings.crl_refresh_interval?.value as number | undefined,
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

  /**
   * Each `layout_overrides.commands.*` is a command pe-cluster runs as root on
   * every master: said loudly, once per command, so that an inventory nobody
   * reviewed cannot change it silently.
   */
  private warnCommandOverrides(settings: Record<string, Located<unknown>>): void {
    const overrides = settings.layout_overrides as Located<Record<string, unknown>> | undefined;
    const commands = overrides?.value.commands;
    if (!commands || typeof commands !== 'object') return;
    for (const [key, argv] of Object.entries(commands as Record<string, unknown>)) {
      const shown = Array.isArray(argv) ? argv.map((a) => quote(a)).join(' ') : quote(argv);
      this.warnings.push(
        this.src.issue(
          [...overrides!.path, 'commands', key],
          `SECURITY: replaces the ${key} command: pe-cluster will run [${shown}] as root on every master; make sure this inventory comes from someone you trust and only its owner can write it`,
        ),
      );
    }
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
  return isHostOrIp(name);
}

export interface TargetUri {
  transport?: string;
  user?: string;
  host: string;
  port?: number;
}

const URI_SHAPE = 'expected [ssh://][user@]host[:port]';

/**
 * `[transport://][user@]host[:port]`, or what is wrong with it. A password in
 * the uri is refused without repeating it; the user must be a user name.
 */
export function parseTargetUri(uri: string): TargetUri | { problem: string } {
  const m = /^(?:([a-z][a-z0-9+.-]*):\/\/)?(?:([^@/\s]*)@)?(\[[^\]\s]*\]|[^:/@\s[\]]+)(?::(\d{1,5}))?\/?$/.exec(uri);
  if (/^(?:[a-z][a-z0-9+.-]*:\/\/)?[^@/]*:[^@/]*@/.test(uri))
    return {
      problem: `contains a password (user:password@); SSH password authentication is not supported: expected a private key or ssh-agent, and ${URI_SHAPE}`,
    };
  if (!m) return { problem: `${quote(uri)} is not a target uri; ${URI_SHAPE}` };
  const out: TargetUri = { host: m[3]!.replace(/^\[(.*)\]$/, '$1') };
  if (m[2] !== undefined && !USER_NAME.test(m[2]))
    return {
      problem: `the user ${quote(m[2])} in the uri is not a user name; expected letters, digits, "_", "-" and ".", as in ssh://admin@host`,
    };
  if (m[2] !== undefined) out.user = m[2];
  if (!isHost(out.host) || (m[3]!.startsWith('[') && isIP(out.host) !== 6))
    return {
      problem: `${quote(uri)} is not a target uri: ${quote(out.host)} is not a host name or IP address; ${URI_SHAPE}`,
    };
  if (m[1]) out.transport = m[1];
  if (m[4]) {
    const p = Number(m[4]);
    if (p < 1 || p > 65535)
      return { problem: `${quote(uri)} is not a target uri: port ${p} is out of range; ${URI_SHAPE}` };
    out.port = p;
  }
  return out;
}

/** `[transport://][user@]host[:port]`; undefined when it is not one. */
export function parseUri(uri: string): TargetUri | undefined {
  const r = parseTargetUri(uri);
  return 'problem' in r ? undefined : r;
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
