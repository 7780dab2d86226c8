import { spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  rmdirSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { connect } from 'node:net';
import { validateHostname } from '@pe-stack/pe-host';
import {
  ASSETS_DIR,
  HOST_NAME_RE,
  MAX_HOSTS,
  bridge,
  ctlIp,
  ctlNs,
  defaultConfig,
  fqdn,
  generalCname,
  hostIp,
  hostNs,
  primaryCname,
  subnet,
  vethName,
  type LabConfig,
  type ProfileName,
  type Role,
} from './config.js';
import { LabError } from './errors.js';
import { checkPrerequisites } from './prereq.js';
import { PROFILE_SPECS, type ProfileSpec } from './profiles.js';
import {
  inNetns,
  homePid,
  namespaceInit,
  netnsInode,
  pidsInNetns,
  pool,
  rootPrefix,
  rssBytes,
  run,
  runRoot,
  sleep,
  type RunResult,
} from './sys.js';

export interface HostRecord {
  name: string;
  fqdn: string;
  ip: string;
  role: Role;
  index: number;
}

export interface LabState {
  profile: ProfileName;
  phase: 'booting' | 'up';
  createdAt: string;
  withMcollective: boolean;
  /** Host that carries the primary_cname (master.<domain>). */
  cnameHost: string | undefined;
  hosts: HostRecord[];
}

export interface UpOptions {
  profile: ProfileName;
  /** Master hosts, primary first. Default: primary, secondary1 (light: primary). */
  hosts?: readonly string[];
  /** Number of agent hosts, named agent1..agentN. */
  agents?: number;
  withMcollective?: boolean;
  /** Progress lines (stderr in the CLI). */
  log?: (line: string) => void;
}

export interface HostStatus {
  name: string;
  fqdn: string;
  ip: string;
  role: Role;
  power: 'on' | 'off';
  link: 'up' | 'down' | 'absent';
  services: { unit: string; active: boolean; enabled: boolean }[];
  memoryBytes: number;
}

export interface LabStatus {
  up: boolean;
  profile: ProfileName | undefined;
  controller: boolean;
  route: boolean;
  hosts: HostStatus[];
  loadBalancer: { running: boolean; backends: { name: string; status: string }[] };
  memoryBytes: number;
}

export interface DownReport {
  namespaces: string[];
  killed: number;
  controllerKept: boolean;
}

export interface InventoryFiles {
  inventory: string;
  privateKey: string;
  knownHosts: string;
}

const ENV_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * The lab: hosts made of network + mount + UTS + PID namespaces behind a
 * bridge in a controller namespace, with a root-namespace unreachable route
 * guarding the subnet. Every method is safe to call again after a crash.
 */
export class Lab {
  readonly config: LabConfig;

  constructor(config: Partial<LabConfig> = {}) {
    this.config = defaultConfig(config);
  }

  // ---- paths -------------------------------------------------------------
  get stateFile(): string {
    return `${this.config.stateDir}/lab.json`;
  }
  hostDir(name: string): string {
    return `${this.config.stateDir}/hosts/${name}`;
  }
  get keyFile(): string {
    return `${this.config.stateDir}/ssh/id_ed25519`;
  }
  get knownHostsFile(): string {
    return `${this.config.stateDir}/ssh/known_hosts`;
  }
  get inventoryFile(): string {
    return `${this.config.stateDir}/inventory.yaml`;
  }
  get haproxyConfig(): string {
    return `${this.config.stateDir}/haproxy/haproxy.cfg`;
  }
  get haproxyPidFile(): string {
    return `${this.config.stateDir}/haproxy/haproxy.pid`;
  }
  get haproxySocket(): string {
    return `${this.config.stateDir}/haproxy/admin.sock`;
  }
  /** CA bundle the load balancer's health check verifies masters against. */
  get lbCaFile(): string {
    return `${this.config.stateDir}/haproxy/ca.pem`;
  }
  templateDir(profile: ProfileName): string {
    return `${this.config.stateDir}/templates/${profile}`;
  }

  // ---- state -------------------------------------------------------------
  state(): LabState | undefined {
    try {
      return JSON.parse(readFileSync(this.stateFile, 'utf8')) as LabState;
    } catch {
      return undefined;
    }
  }

  private saveState(s: LabState): void {
    mkdirSync(this.config.stateDir, { recursive: true });
    writeFileSync(this.stateFile, `${JSON.stringify(s, null, 2)}\n`);
  }

  requireState(): LabState {
    const s = this.state();
    if (!s)
      throw new LabError('E_LAB_NOT_UP', 'the lab is not up.', {
        hint: 'Bring it up with `npm run lab -- up --profile light`.',
      });
    return s;
  }

  host(name: string): HostRecord {
    const s = this.requireState();
    const h = s.hosts.find((x) => x.name === name || x.fqdn === name);
    if (!h) {
      throw new LabError('E_LAB_UNKNOWN_HOST', `no host "${name}" in the lab.`, {
        hint: `The lab's hosts are: ${s.hosts.map((x) => x.name).join(', ')}.`,
      });
    }
    return h;
  }

  // ---- one user at a time -------------------------------------------------
  get sessionLockFile(): string {
    return `${this.config.stateDir}/session.lock`;
  }

  /** PID of the live `lab run` that holds the lab, if any. */
  sessionHolder(): number | undefined {
    try {
      const pid = Number(readFileSync(this.sessionLockFile, 'utf8').trim());
      return pid > 0 && existsSync(`/proc/${pid}`) ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * Takes the lab for one `lab run` session: several test runs on one machine
   * would otherwise take each other's lab down. Waits while another live
   * session holds it; a lock left by a dead process is taken over.
   */
  async acquireSession(opts: { waitMs?: number; log?: (l: string) => void } = {}): Promise<() => void> {
    mkdirSync(this.config.stateDir, { recursive: true });
    const end = Date.now() + (opts.waitMs ?? 60 * 60_000);
    let told = false;
    while (true) {
      try {
        writeFileSync(this.sessionLockFile, `${process.pid}\n`, { flag: 'wx' });
        return () => {
          if (this.sessionHolder() === process.pid) rmSync(this.sessionLockFile, { force: true });
        };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const holder = this.sessionHolder();
      if (holder === undefined) {
        rmSync(this.sessionLockFile, { force: true });
        continue;
      }
      if (Date.now() > end)
        throw new LabError('E_LAB_BUSY', `the lab is in use by \`lab run\` (PID ${holder}).`, {
          hint: 'Wait for it to finish.',
        });
      if (!told) opts.log?.(`the lab is in use by \`lab run\` (PID ${holder}); waiting for it`);
      told = true;
      await sleep(1000);
    }
  }

  /** Refuses to change the lab while another `lab run` session holds it. */
  private assertMaySession(): void {
    const holder = this.sessionHolder();
    if (holder !== undefined && holder !== process.pid && holder !== homePid()) {
      throw new LabError(
        'E_LAB_BUSY',
        `the lab is in use by \`lab run\` (PID ${holder}); it must not be changed under that session.`,
        {
          hint: 'Wait for it to finish, or run your command through `npm run lab -- run -- ...`, which waits its turn.',
        },
      );
    }
  }

  // ---- controller and route ----------------------------------------------
  private async routePresent(): Promise<boolean> {
    const r = await runRoot('ip', ['route', 'show', 'exact', subnet(this.config)], { allowFailure: true });
    return r.stdout.includes('unreachable');
  }

  /** Puts the root-namespace unreachable route in (first), then the controller namespace and its bridge. */
  async ensureController(): Promise<{ createdRoute: boolean; createdController: boolean }> {
    const c = this.config;
    const route = await runRoot('ip', ['route', 'show', 'exact', subnet(c)], { allowFailure: true });
    let createdRoute = false;
    if (!route.stdout.includes('unreachable')) {
      if (route.stdout.trim()) {
        throw new LabError(
          'E_LAB_SUBNET_IN_USE',
          `the machine already routes ${subnet(c)} (${route.stdout.trim()}); the lab will not share it.`,
          {
            hint: 'Choose another subnet with PE_STACK_LAB_NET=10.x.y.',
          },
        );
      }
      await runRoot('ip', ['route', 'add', 'unreachable', subnet(c)]);
      createdRoute = true;
    }
    const ns = ctlNs(c);
    let createdController = false;
    mkdirSync(`/etc/netns/${ns}`, { recursive: true });
    if (!existsSync(`/etc/netns/${ns}/hosts`))
      this.writeInPlace(`/etc/netns/${ns}/hosts`, this.hostsFile(this.state()?.hosts ?? [], this.state()?.cnameHost));
    if (!existsSync(`/etc/netns/${ns}/resolv.conf`))
      this.writeInPlace(`/etc/netns/${ns}/resolv.conf`, `search ${c.domain}\n`);
    if (netnsInode(ns) === undefined) {
      await runRoot('ip', ['netns', 'add', ns]);
      createdController = true;
    }
    const links = await runRoot('ip', ['-n', ns, '-o', 'link', 'show'], { allowFailure: true });
    if (!links.stdout.includes(` ${bridge(c)}:`)) {
      await runRoot('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      await runRoot('ip', ['-n', ns, 'link', 'add', bridge(c), 'type', 'bridge']);
      await runRoot('ip', ['-n', ns, 'addr', 'add', `${ctlIp(c)}/24`, 'dev', bridge(c)]);
      await runRoot('ip', ['-n', ns, 'link', 'set', bridge(c), 'up']);
    }
    return { createdRoute, createdController };
  }

  /** True when this process runs inside the controller namespace (where clients must run). */
  inController(): boolean {
    return inNetns(ctlNs(this.config));
  }

  /** Throws unless this process runs in the controller namespace: a client outside would route out of the machine. */
  assertInController(): void {
    if (!this.inController()) {
      throw new LabError(
        'E_LAB_OUTSIDE_CONTROLLER',
        `this process is not in the controller namespace ${ctlNs(this.config)}, so it must not connect to lab addresses.`,
        {
          hint: 'Run it through `npm run lab -- run -- <command>`.',
        },
      );
    }
  }

  // ---- up ----------------------------------------------------------------
  /**
   * The host-side scripts as the hosts see them: a copy under the state
   * directory. A host's /tmp is its own, so scripts run from a checkout under
   * /tmp (as a CI clone may be) would not exist inside the hosts.
   */
  get assetsDir(): string {
    return `${this.config.stateDir}/assets`;
  }

  /** pe-cluster's journals, cluster state and backups for this lab (see inventory.ts); emptied by every `up`. */
  get clusterStateDir(): string {
    return `${this.config.stateDir}/pe-cluster`;
  }

  private async syncAssets(): Promise<void> {
    mkdirSync(this.config.stateDir, { recursive: true });
    await runRoot('rm', ['-rf', '--', this.assetsDir]);
    await runRoot('cp', ['-a', '--', ASSETS_DIR, this.assetsDir]);
    // services inside the hosts run some scripts as their own users (e.g.
    // pe-postgres): they must reach the copy through a private state dir
    // (traverse only; the key stays in the 0700 ssh/ below it)
    await runRoot('chmod', ['o+x,g+x', '--', this.config.stateDir]);
    await runRoot('chmod', ['-R', 'a+rX', '--', this.assetsDir]);
  }

  async up(opts: UpOptions): Promise<LabState> {
    const log = opts.log ?? (() => {});
    const spec = PROFILE_SPECS[opts.profile];
    if (!spec)
      throw new LabError(
        'E_LAB_USAGE',
        `profile "${String(opts.profile)}" is not available; built profiles: ${Object.keys(PROFILE_SPECS).join(', ')}.`,
      );
    const masters = [...(opts.hosts ?? spec.defaultHosts)];
    const agents = opts.agents ?? spec.defaultAgents;
    if (!Number.isInteger(agents) || agents < 0)
      throw new LabError('E_LAB_USAGE', `--agents must be a whole number, got ${agents}.`);
    const names = [...masters, ...Array.from({ length: agents }, (_, i) => `agent${i + 1}`)];
    if (names.length === 0) throw new LabError('E_LAB_USAGE', 'the lab needs at least one host.');
    if (names.length > MAX_HOSTS)
      throw new LabError('E_LAB_USAGE', `at most ${MAX_HOSTS} hosts, asked for ${names.length}.`);
    for (const n of names) {
      if (!HOST_NAME_RE.test(n) || n === 'ctl') {
        throw new LabError(
          'E_LAB_USAGE',
          `bad host name "${n}": use 1-12 lowercase letters and digits, starting with a letter (not "ctl").`,
        );
      }
      validateHostname(fqdn(this.config, n));
    }
    if (new Set(names).size !== names.length)
      throw new LabError('E_LAB_USAGE', `host names repeat: ${names.join(', ')}.`);
    await checkPrerequisites(opts.profile, { withMcollective: !!opts.withMcollective });
    this.assertMaySession();
    if (this.state() || (await this.leftoverNamespaces()).some((n) => n !== ctlNs(this.config))) {
      throw new LabError('E_LAB_ALREADY_UP', 'a lab is already up (or a crashed one left pieces behind).', {
        hint: 'Take it down first with `npm run lab -- down`.',
      });
    }

    const t0 = Date.now();
    await this.ensureController();
    await this.syncAssets();
    rmSync(this.clusterStateDir, { recursive: true, force: true });
    // a lab brought up by hand or by another test is not the one a shared fixture recorded (fixture.ts)
    rmSync(`${this.config.stateDir}/fixture.key`, { force: true });
    await this.ensureKey();
    await this.ensureTemplate(opts.profile, spec, log);

    const hosts: HostRecord[] = names.map((name, index) => ({
      name,
      fqdn: fqdn(this.config, name),
      ip: hostIp(this.config, index),
      role: index === 0 && masters.length > 0 ? 'primary' : index < masters.length ? 'secondary' : 'agent',
      index,
    }));
    const state: LabState = {
      profile: opts.profile,
      phase: 'booting',
      createdAt: new Date().toISOString(),
      withMcollective: !!opts.withMcollective,
      cnameHost: masters[0],
      hosts,
    };
    this.saveState(state);
    this.writeAllHostsFiles(state);

    this.ensureMountPoints(spec);
    log(`booting ${hosts.length} ${opts.profile} hosts`);
    await pool(hosts, 8, async (h) => {
      await this.createHost(h, spec);
      await this.boot(h);
    });
    log(`hosts booted in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    await spec.setup(this, state, log);
    await this.startLoadBalancer(state, spec);
    state.phase = 'up';
    this.saveState(state);
    await this.writeInventory();
    log(`lab up in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    return state;
  }

  get mountPointsFile(): string {
    return `${this.config.stateDir}/created-mount-points`;
  }

  /**
   * A host's private directories are bind-mounted over the machine's; a path
   * the machine lacks (/etc/puppetlabs on a Debian box) gets an empty
   * directory as mount point, recorded so that `down` removes it again.
   */
  private ensureMountPoints(spec: ProfileSpec): void {
    const made = this.createdMountPoints();
    for (const p of spec.paths) {
      if (existsSync(p)) continue;
      mkdirSync(p, { mode: 0o755 });
      made.push(p);
    }
    writeFileSync(this.mountPointsFile, made.length ? `${made.join('\n')}\n` : '');
  }

  private createdMountPoints(): string[] {
    try {
      return readFileSync(this.mountPointsFile, 'utf8').split('\n').filter(Boolean);
    } catch {
      return [];
    }
  }

  private async ensureKey(): Promise<void> {
    if (existsSync(this.keyFile) && existsSync(`${this.keyFile}.pub`)) return;
    mkdirSync(`${this.config.stateDir}/ssh`, { recursive: true, mode: 0o700 });
    rmSync(this.keyFile, { force: true });
    rmSync(`${this.keyFile}.pub`, { force: true });
    await run('ssh-keygen', [
      '-q',
      '-t',
      'ed25519',
      '-N',
      '',
      '-C',
      `pe-stack-lab@${this.config.domain}`,
      '-f',
      this.keyFile,
    ]);
  }

  /** Builds (or reuses) a profile's template, so a timed `up` measures only the bring-up. */
  async prepare(profile: ProfileName): Promise<void> {
    const spec = PROFILE_SPECS[profile];
    if (!spec) throw new LabError('E_LAB_USAGE', `profile "${profile}" is not available.`);
    await checkPrerequisites(profile);
    await this.ensureTemplate(profile, spec, () => {});
  }

  private async ensureTemplate(profile: ProfileName, spec: ProfileSpec, log: (l: string) => void): Promise<void> {
    const dir = this.templateDir(profile);
    const marker = `${dir}.complete`;
    // the post step may link into the scripts (pe3 stand-ins): a template made
    // from another scripts directory is rebuilt
    const want = JSON.stringify({
      version: spec.templateVersion,
      paths: spec.paths,
      post: spec.templatePost ?? null,
      assets: this.assetsDir,
    });
    if (existsSync(marker) && readFileSync(marker, 'utf8') === want) return;
    log(`making the ${profile} template from this machine's package install`);
    rmSync(marker, { force: true });
    mkdirSync(`${this.config.stateDir}/templates`, { recursive: true });
    await runRoot(
      'unshare',
      ['--mount', '--propagation', 'private', `${ASSETS_DIR}/make-template.sh`, dir, ...spec.paths],
      { timeoutMs: 300_000 },
    );
    // from the hosts' copy of the scripts: links it makes must resolve inside the hosts
    if (spec.templatePost) await run(`${this.assetsDir}/${spec.templatePost}`, [dir], { timeoutMs: 120_000 });
    writeFileSync(marker, want);
  }

  private async createHost(h: HostRecord, spec: ProfileSpec): Promise<void> {
    const c = this.config;
    const ns = hostNs(c, h.name);
    await run(`${ASSETS_DIR}/make-host.sh`, [
      this.templateDir(spec.name),
      this.hostDir(h.name),
      h.fqdn,
      `${this.keyFile}.pub`,
      ...spec.paths,
    ]);
    mkdirSync(`/etc/netns/${ns}`, { recursive: true });
    this.writeInPlace(`/etc/netns/${ns}/hostname`, `${h.fqdn}\n`);
    this.writeInPlace(`/etc/netns/${ns}/resolv.conf`, `search ${c.domain}\n`);
    await runRoot('ip', ['netns', 'add', ns]);
    const veth = vethName(c, h.index);
    await runRoot('ip', ['-n', ctlNs(c), 'link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    await runRoot('ip', ['-n', ctlNs(c), 'link', 'set', veth, 'master', bridge(c), 'up']);
    await runRoot('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    await runRoot('ip', ['-n', ns, 'addr', 'add', `${h.ip}/24`, 'dev', 'eth0']);
    await runRoot('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
  }

  /** Starts the host's init as PID 1 of fresh mount, UTS and PID namespaces, and waits for its sshd. */
  private async boot(h: HostRecord): Promise<void> {
    const dir = this.hostDir(h.name);
    const ready = `${dir}/ready`;
    rmSync(ready, { force: true });
    const argv = [
      ...rootPrefix(),
      'ip',
      'netns',
      'exec',
      hostNs(this.config, h.name),
      'unshare',
      '--mount',
      '--uts',
      '--pid',
      '--fork',
      '--mount-proc',
      '--propagation',
      'private',
      `${this.assetsDir}/init.sh`,
      h.fqdn,
      dir,
      this.assetsDir,
    ];
    const out = openSync(`${dir}/console.log`, 'a');
    let exited: number | null | undefined;
    try {
      const child = spawn(argv[0]!, argv.slice(1), {
        detached: true,
        stdio: ['ignore', out, out],
        cwd: '/',
        env: { PATH: ENV_PATH, LANG: 'C.UTF-8', HOME: '/root' },
      });
      child.on('exit', (code) => {
        exited = code;
      });
      child.unref();
    } finally {
      closeSync(out);
    }
    const deadline = Date.now() + 30_000;
    while (!existsSync(ready)) {
      if (exited !== undefined || Date.now() > deadline) {
        const tail = readFileSync(`${dir}/console.log`, 'utf8').split('\n').slice(-10).join('\n');
        throw new LabError(
          'E_LAB_BOOT',
          `the host did not boot (${exited !== undefined ? `init exited ${exited}` : 'timeout'}): ${tail}`,
          { host: h.name },
        );
      }
      await sleep(25);
    }
  }

  // ---- hosts files -------------------------------------------------------
  /** Writes a file keeping its inode: `ip netns exec` bind-mounts these files, so a rename would not be seen. */
  private writeInPlace(path: string, text: string): void {
    writeFileSync(path, text, { flag: 'w' });
  }

  hostsFile(hosts: readonly HostRecord[], cnameHost: string | undefined): string {
    const c = this.config;
    const lines = [
      '# Written by tools/lab.',
      '127.0.0.1\tlocalhost',
      '::1\tlocalhost ip6-localhost ip6-loopback',
      `${ctlIp(c)}\tctl.${c.domain} ctl ${generalCname(c)}`,
      ...hosts.map((h) => `${h.ip}\t${h.fqdn} ${h.name}`),
    ];
    const cn = hosts.find((h) => h.name === cnameHost);
    if (cn) lines.push(`${cn.ip}\t${primaryCname(c)}`);
    return `${lines.join('\n')}\n`;
  }

  private writeAllHostsFiles(s: LabState): void {
    const text = this.hostsFile(s.hosts, s.cnameHost);
    for (const ns of [ctlNs(this.config), ...s.hosts.map((h) => hostNs(this.config, h.name))]) {
      mkdirSync(`/etc/netns/${ns}`, { recursive: true });
      this.writeInPlace(`/etc/netns/${ns}/hosts`, text);
    }
  }

  /** Moves the primary_cname (master.<domain>) to a host, in every hosts file of the lab: what a failover does to DNS. */
  moveCname(hostName: string): void {
    const s = this.requireState();
    const h = this.host(hostName);
    s.cnameHost = h.name;
    this.saveState(s);
    this.writeAllHostsFiles(s);
  }

  // ---- power, links, exec ------------------------------------------------
  /** Host-side PID of the host's init, or undefined when the host is off. */
  initPid(name: string): number | undefined {
    return namespaceInit(pidsInNetns(hostNs(this.config, name)));
  }

  /** A power cut: kills the host's PID namespace (and anything else in its network namespace). */
  async powerOff(name: string): Promise<void> {
    this.assertMaySession();
    const h = this.host(name);
    const ns = hostNs(this.config, h.name);
    const init = this.initPid(h.name);
    if (init !== undefined) this.kill(init);
    await this.killNetns(ns);
  }

  /** Boots a powered-off host again, from its disk state. */
  async powerOn(name: string): Promise<void> {
    this.assertMaySession();
    const h = this.host(name);
    if (this.initPid(h.name) !== undefined) return;
    await this.killNetns(hostNs(this.config, h.name));
    await this.boot(h);
  }

  /** Link down between the host and the bridge: a network partition. */
  async cut(name: string): Promise<void> {
    this.assertMaySession();
    const h = this.host(name);
    await runRoot('ip', ['-n', ctlNs(this.config), 'link', 'set', vethName(this.config, h.index), 'down']);
  }

  async heal(name: string): Promise<void> {
    this.assertMaySession();
    const h = this.host(name);
    await runRoot('ip', ['-n', ctlNs(this.config), 'link', 'set', vethName(this.config, h.index), 'up']);
  }

  /** argv that runs a command inside a host's namespaces (no ssh), with a clean root environment. */
  execArgv(name: string, argv: readonly string[]): string[] {
    const h = this.host(name);
    const pid = this.initPid(h.name);
    if (pid === undefined)
      throw new LabError('E_LAB_HOST_OFF', 'the host is powered off.', {
        host: h.name,
        hint: `Power it on with \`npm run lab -- power-on ${h.name}\`.`,
      });
    return [
      'nsenter',
      '--target',
      String(pid),
      '--mount',
      '--uts',
      '--net',
      '--pid',
      '--root',
      '--wd',
      '--',
      '/usr/bin/env',
      '-i',
      `PATH=${ENV_PATH}`,
      'HOME=/root',
      'USER=root',
      'LOGNAME=root',
      'LANG=C.UTF-8',
      ...argv,
    ];
  }

  /** Runs a command inside a host without ssh. */
  async exec(
    name: string,
    argv: readonly string[],
    opts: { allowFailure?: boolean; timeoutMs?: number; input?: string } = {},
  ): Promise<RunResult> {
    const a = this.execArgv(name, argv);
    return run(a[0]!, a.slice(1), {
      allowFailure: opts.allowFailure,
      timeoutMs: opts.timeoutMs ?? 600_000,
      input: opts.input,
    });
  }

  /** The ssh client argv for a host (run it inside the controller namespace). */
  sshArgv(name: string, command: readonly string[] = []): string[] {
    const h = this.host(name);
    return [
      'ssh',
      '-i',
      this.keyFile,
      '-o',
      `UserKnownHostsFile=${this.knownHostsFile}`,
      '-o',
      'StrictHostKeyChecking=yes',
      '-o',
      'BatchMode=yes',
      '-o',
      'ConnectTimeout=10',
      '-o',
      'LogLevel=ERROR',
      `root@${h.fqdn}`,
      ...command,
    ];
  }

  /** Runs a command on a host over ssh; only from inside the controller namespace. */
  async ssh(
    name: string,
    command: readonly string[],
    opts: { allowFailure?: boolean; timeoutMs?: number } = {},
  ): Promise<RunResult> {
    this.assertInController();
    const a = this.sshArgv(name, command);
    return run(a[0]!, a.slice(1), { allowFailure: opts.allowFailure, timeoutMs: opts.timeoutMs ?? 120_000 });
  }

  private kill(pid: number): void {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }

  /** Kills every process in a network namespace and waits until none is left. */
  private async killNetns(ns: string): Promise<number> {
    let killed = 0;
    const deadline = Date.now() + 15_000;
    // Namespace inits first, so their parents (unshare) reap them instead of leaving zombies.
    const inits = pidsInNetns(ns).filter((p) => namespaceInit([p]) === p);
    for (const p of inits) this.kill(p);
    for (let i = 0; i < 40 && inits.some((p) => pidsInNetns(ns).includes(p)); i++) await sleep(25);
    while (true) {
      const pids = pidsInNetns(ns).filter((p) => p !== process.pid);
      if (pids.length === 0) return killed;
      if (Date.now() > deadline)
        throw new LabError('E_LAB_COMMAND', `processes ${pids.join(', ')} in ${ns} survive SIGKILL.`);
      for (const p of pids) this.kill(p);
      killed += pids.length;
      await sleep(50);
    }
  }

  // ---- load balancer -----------------------------------------------------
  private async startLoadBalancer(s: LabState, spec: ProfileSpec): Promise<void> {
    const c = this.config;
    const masters = s.hosts.filter((h) => h.role !== 'agent');
    if (masters.length === 0) return;
    mkdirSync(`${c.stateDir}/haproxy`, { recursive: true });
    const verify = spec.lbVerifiesCa && existsSync(this.lbCaFile);
    const check = verify ? `check check-ssl verify required ca-file ${this.lbCaFile}` : 'check';
    const cfg = [
      '# Written by tools/lab: puppet.<domain>:8140 spread over every master that is up.',
      'global',
      `  pidfile ${this.haproxyPidFile}`,
      `  stats socket ${this.haproxySocket} mode 600 level admin`,
      '  maxconn 4096',
      'defaults',
      '  mode tcp',
      '  timeout connect 3s',
      '  timeout client 15m',
      '  timeout server 15m',
      'frontend puppet',
      `  bind ${ctlIp(c)}:8140`,
      '  default_backend masters',
      'backend masters',
      '  balance roundrobin',
      '  option redispatch',
      '  retries 2',
      '  default-server inter 1s fall 2 rise 2',
      ...masters.map((m) => `  server ${m.name} ${m.ip}:8140 ${check}`),
      '',
    ].join('\n');
    writeFileSync(this.haproxyConfig, cfg);
    await this.stopLoadBalancer();
    await runRoot('ip', ['netns', 'exec', ctlNs(c), 'haproxy', '-D', '-f', this.haproxyConfig]);
  }

  /** Rewrites and restarts the load balancer (e.g. after the primary's CA changed). */
  async restartLoadBalancer(): Promise<void> {
    const s = this.requireState();
    const spec = PROFILE_SPECS[s.profile];
    if (spec) await this.startLoadBalancer(s, spec);
  }

  private async stopLoadBalancer(): Promise<void> {
    try {
      const pid = Number(readFileSync(this.haproxyPidFile, 'utf8').trim());
      if (pid > 0 && readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'haproxy') {
        this.kill(pid);
        for (let i = 0; i < 100 && existsSync(`/proc/${pid}`); i++) await sleep(20);
      }
    } catch {
      // not running
    }
    rmSync(this.haproxyPidFile, { force: true });
  }

  /** haproxy's view of the masters: `show stat` over its admin socket. */
  async loadBalancerBackends(): Promise<{ name: string; status: string }[]> {
    const text = await new Promise<string>((resolve, reject) => {
      const sock = connect(this.haproxySocket);
      let buf = '';
      sock.on('connect', () => sock.end('show stat\n'));
      sock.on('data', (d) => (buf += d.toString()));
      sock.on('end', () => resolve(buf));
      sock.on('error', reject);
    });
    const rows = text.split('\n').filter((l) => l.startsWith('masters,'));
    return rows
      .map((r) => r.split(','))
      .filter((f) => f[1] !== 'BACKEND')
      .map((f) => ({ name: f[1] ?? '', status: f[17] ?? '' }));
  }

  /** Waits until the load balancer reports a master in a state (UP, DOWN). */
  async waitForBackend(name: string, status: string, timeoutMs: number): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (true) {
      const b = await this.loadBalancerBackends().catch(() => []);
      if (b.find((x) => x.name === name)?.status === status) return;
      if (Date.now() > end)
        throw new LabError(
          'E_LAB_BOOT',
          `the load balancer did not see ${name} ${status} within ${timeoutMs / 1000} s (it sees: ${b.map((x) => `${x.name}=${x.status}`).join(' ') || 'nothing'}).`,
        );
      await sleep(250);
    }
  }

  // ---- status ------------------------------------------------------------
  async status(): Promise<LabStatus> {
    const s = this.state();
    const c = this.config;
    const hosts: HostStatus[] = [];
    let links = '';
    if (netnsInode(ctlNs(c)) !== undefined)
      links = (await runRoot('ip', ['-n', ctlNs(c), '-o', 'link', 'show'], { allowFailure: true })).stdout;
    for (const h of s?.hosts ?? []) {
      const pids = pidsInNetns(hostNs(c, h.name));
      const on = namespaceInit(pids) !== undefined;
      const m = new RegExp(`: ${vethName(c, h.index)}@[^:]+: <([^>]*)>`).exec(links);
      const services: HostStatus['services'] = [];
      if (on) {
        const r = await this.exec(h.name, ['systemctl', 'list-units'], { allowFailure: true, timeoutMs: 20_000 });
        for (const line of r.stdout.split('\n')) {
          const [unit, act, en] = line.trim().split(/\s+/);
          if (unit && act)
            services.push({
              unit: unit.replace(/\.service$/, ''),
              active: act === 'active',
              enabled: en === 'enabled',
            });
        }
      }
      hosts.push({
        name: h.name,
        fqdn: h.fqdn,
        ip: h.ip,
        role: h.role,
        power: on ? 'on' : 'off',
        link: m ? (m[1]!.split(',').includes('UP') ? 'up' : 'down') : 'absent',
        services,
        memoryBytes: rssBytes(pids),
      });
    }
    let backends: { name: string; status: string }[] = [];
    let running: boolean;
    try {
      backends = await this.loadBalancerBackends();
      running = true;
    } catch {
      running = false;
    }
    const lbPids = running ? [Number(readFileSync(this.haproxyPidFile, 'utf8').trim())] : [];
    return {
      up: s?.phase === 'up',
      profile: s?.profile,
      controller: netnsInode(ctlNs(c)) !== undefined,
      route: await this.routePresent(),
      hosts,
      loadBalancer: { running, backends },
      memoryBytes: hosts.reduce((a, h) => a + h.memoryBytes, 0) + rssBytes(lbPids),
    };
  }

  // ---- down --------------------------------------------------------------
  /** Every namespace of this lab that exists now, whatever state file says. */
  async leftoverNamespaces(): Promise<string[]> {
    const dir = `/proc/${homePid()}/root/run/netns`;
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      names = [];
    }
    return names.filter((n) => n.startsWith(`${this.config.name}-`));
  }

  /**
   * Takes the lab down: kills every process of every host namespace, deletes
   * the namespaces, the per-netns /etc files and the host disks. From the
   * root namespace it also removes the controller and, last, the route; from
   * inside the controller (a test run) it keeps those for `run` to remove.
   */
  async down(opts: { keepController?: boolean } = {}): Promise<DownReport> {
    const c = this.config;
    const ctl = ctlNs(c);
    this.assertMaySession();
    const keepController = opts.keepController ?? this.inController();
    await this.stopLoadBalancer();
    const namespaces = await this.leftoverNamespaces();
    let killed = 0;
    const hostNamespaces = namespaces.filter((n) => n !== ctl);
    for (const ns of hostNamespaces) killed += await this.killNetns(ns);
    for (const ns of hostNamespaces) await runRoot('ip', ['netns', 'del', ns], { allowFailure: true });
    for (const d of this.netnsEtcDirs()) if (d !== ctl) rmSync(`/etc/netns/${d}`, { recursive: true, force: true });
    rmSync(`${c.stateDir}/hosts`, { recursive: true, force: true });
    for (const p of this.createdMountPoints()) {
      try {
        rmdirSync(p);
      } catch {
        // not empty or already gone: leave it
      }
    }
    rmSync(this.mountPointsFile, { force: true });
    rmSync(this.stateFile, { force: true });
    rmSync(`${c.stateDir}/haproxy`, { recursive: true, force: true });
    if (!keepController) {
      await this.removeController();
    } else {
      if (existsSync(`/etc/netns/${ctl}/hosts`))
        this.writeInPlace(`/etc/netns/${ctl}/hosts`, this.hostsFile([], undefined));
      await this.removeControllerVeths();
    }
    return { namespaces: keepController ? hostNamespaces : namespaces, killed, controllerKept: keepController };
  }

  /**
   * The controller's ends of the hosts' veth pairs. A deleted host namespace's
   * pair goes away only when the kernel frees the namespace, which can lag
   * `ip netns del`; an `up` right after a `down` inside a run (the shared
   * fixture switching labs) then failed with "RTNETLINK answers: File exists".
   */
  private async removeControllerVeths(): Promise<void> {
    const ctl = ctlNs(this.config);
    if (netnsInode(ctl) === undefined) return;
    const out = (await runRoot('ip', ['-n', ctl, '-o', 'link', 'show', 'type', 'veth'], { allowFailure: true })).stdout;
    const prefix = `${this.config.name}v`;
    for (const line of out.split('\n')) {
      const name = /^\d+:\s+([^:@\s]+)/.exec(line)?.[1];
      if (name?.startsWith(prefix)) await runRoot('ip', ['-n', ctl, 'link', 'del', name], { allowFailure: true });
    }
  }

  private netnsEtcDirs(): string[] {
    try {
      return readdirSync('/etc/netns').filter((n) => n.startsWith(`${this.config.name}-`));
    } catch {
      return [];
    }
  }

  /** Removes the controller namespace and then the route (the route comes out last). Refuses from inside the controller. */
  async removeController(): Promise<void> {
    const c = this.config;
    const ctl = ctlNs(c);
    if (this.inController())
      throw new LabError('E_LAB_USAGE', 'cannot remove the controller namespace from inside it.');
    await this.killNetns(ctl);
    if (netnsInode(ctl) !== undefined) await runRoot('ip', ['netns', 'del', ctl]);
    rmSync(`/etc/netns/${ctl}`, { recursive: true, force: true });
    try {
      if (readdirSync('/etc/netns').length === 0) rmSync('/etc/netns', { recursive: true, force: true });
    } catch {
      // absent
    }
    await this.unmountNetnsDirIfEmpty();
    if (await this.routePresent()) await runRoot('ip', ['route', 'del', 'unreachable', subnet(c)]);
  }

  /** `ip netns add` bind-mounts /run/netns on itself; once no namespace is left, that mount goes too. */
  private async unmountNetnsDirIfEmpty(): Promise<void> {
    let left: string[];
    try {
      left = readdirSync(`/proc/${homePid()}/root/run/netns`);
    } catch {
      return;
    }
    if (left.length > 0) return;
    const mounts = readFileSync(`/proc/${homePid()}/mountinfo`, 'utf8');
    if (mounts.split('\n').some((l) => l.split(' ')[4] === '/run/netns')) {
      await runRoot('umount', ['/run/netns'], { allowFailure: true });
    }
  }

  // ---- inventory ---------------------------------------------------------
  async writeInventory(): Promise<InventoryFiles> {
    const { writeInventoryFiles } = await import('./inventory.js');
    return writeInventoryFiles(this);
  }

  /** Size of a host's disk directory in bytes (du). */
  async diskBytes(name: string): Promise<number> {
    const r = await run('du', ['-sb', this.hostDir(name)], { allowFailure: true });
    return Number(r.stdout.split('\t')[0]) || 0;
  }

  hostExists(name: string): boolean {
    try {
      return statSync(this.hostDir(name)).isDirectory();
    } catch {
      return false;
    }
  }
}
