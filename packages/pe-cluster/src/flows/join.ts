import {
  applyEdits,
  buildCommand,
  fileOf,
  openDocument,
  type Edit,
  type Layout,
  type YamlDocument,
} from '@pe-stack/pe-config-files';
import {
  allowSubjectAltNames,
  consoleCertPaths,
  ensureConsoleCert,
  Pe3PuppetAgent,
  PuppetCertCa,
  PuppetserverCa,
  PuppetSslAgent,
  puppetdbSslDir,
  puppetSslPaths,
  regenerateNodeCert,
  reinitPuppetdbSsl,
} from '@pe-stack/pe-certs';
import {
  accessGranted,
  checkBudget,
  checkManyFromHost,
  credentialsCurrent,
  dbFilesFromLayout,
  grantAccessMany,
  instanceFromHost,
  instanceFromLayout,
  writeCredentials,
  type DbCredentials,
} from '@pe-stack/pe-db';
import { debianSyncSteps, pe3JoinSteps, readSecrets, sharedFiles, type McoCluster } from '@pe-stack/pe-mcollective';
import { CommandFailedError, isIpLiteral, sequenceArgv, type Host } from '@pe-stack/pe-host';
import type { FileHint, Flow, FlowItem, Step, StepContext } from '@pe-stack/pe-steps';
import type { Inventory, InventoryNode } from '../inventory.js';
import { ensureStep as baseEnsureStep, type EnsureHosts } from '@pe-stack/pe-steps';
import { resolveAddress } from '../address.js';
import { caServerEdit, caServiceEdit } from './ca-switch.js';
import { credentialsOf, type Remote } from './cluster-access.js';
import { crlCopyEdit, filebucketEdits } from './secondary-settings.js';
import { crlRefreshInstallStep, crlRefreshSupported } from './crl-refresh.js';
import { afterChanges, group } from './step-kinds.js';

/** What the join flow needs of a Cluster (kept narrow to avoid an import cycle). */
export interface JoinContext {
  readonly inventory: Inventory;
  host(name: string): Host;
}

/** What every join step knows: the inventory, the secondaries joining now, and what follows from both. */
interface Join {
  readonly inv: Inventory;
  readonly layout: Layout;
  readonly primary: InventoryNode;
  readonly pe3: boolean;
  readonly joining: readonly InventoryNode[];
  /** The PuppetDB allowlist's entries on every master. */
  readonly allowEntries: readonly string[];
}

/**
 * The seed's steps 2-11 as named steps, for both layouts. The primary is
 * prepared first (one step at a time: its pg_hba.conf and autosign.conf are
 * shared), then the secondaries in parallel, then MCollective across every
 * master, then restarts and validation per secondary in parallel. A new step
 * is a factory in this file and a line in this list.
 */
export async function joinFlow(cluster: JoinContext, secondaries: readonly InventoryNode[]): Promise<Flow> {
  const j = joinOf(cluster.inventory, secondaries);
  const items: FlowItem[] = [
    // preflight: nothing changes unless every master is reachable and trusted and the primary's database credentials work
    group(
      'preflight',
      j.inv.masters.map((m) => [masterReachable(j, m)]),
    ),
    primaryCredentialsWork(j),
    // the primary prepared
    ...(j.pe3 ? [] : [caAllowsAltNames(j)]),
    ...secondaries.map((s) => primaryDbAccess(j, s)),
    ...primaryAllowlists(j),
    group(
      'secondaries',
      secondaries.map((s) => secondaryLane(j, s)),
    ),
    primaryConnectionBudget(j),
    ...(await mcollectiveSteps(cluster, j)),
    group(
      'restart-validate',
      secondaries.map((s) => restartAndValidate(j, s)),
    ),
    ...crlRefresh(j, secondaries),
  ];
  const joiningNames = secondaries.map((x) => x.name);
  return {
    name: 'join',
    items,
    fileCache: { hints: (host) => joinFileHints(j.layout, host, host === j.primary.name ? joiningNames : []) },
  };
}

function joinOf(inv: Inventory, joining: readonly InventoryNode[]): Join {
  const layout = inv.layout;
  const pe3 = layout.flavour === 'pe3';
  const allMasters = [...new Set([...inv.masters.map((m) => m.name)])];
  // pe3: every master, and every secondary's console certificate (the seed's pe_secondary::console::puppetdb_authorization
  // exports pe-internal-dashboard-<fqdn> into every PuppetDB's whitelist: the secondary's console queries PuppetDB with it)
  const allowEntries = pe3
    ? [
        ...allMasters,
        ...inv.masters.filter((m) => m.role === 'secondary').map((m) => consoleCertPaths(layout, m.name).certname),
      ]
    : allMasters;
  return { inv, layout, primary: inv.primary, pe3, joining, allowEntries };
}

const CREDS = 'join:primary-db-credentials';

/** ensure.ts's ensureStep whose check stops at the first planned change (join's certificate check no longer reads manifests of a copy it will make anyway). */
const ensureStep = (
  id: string,
  host: string,
  title: string,
  fn: (h: EnsureHosts, ctx: StepContext) => Promise<unknown>,
): Step => baseEnsureStep(id, host, title, fn, { stopAtFirstChange: true });

/** The primary's database credentials, read once per run (kept in memory; never journaled). */
function primaryCredentials(ctx: StepContext, inv: Inventory) {
  return credentialsOf(ctx, inv, ctx.hostFor(inv.primary.name), CREDS);
}

// ---- preflight ----

function masterReachable(j: Join, m: InventoryNode): Step {
  return {
    id: 'preflight.ssh',
    host: m.name,
    title: 'reachable over SSH with a verified host key (and sudo)',
    check: async (ctx: StepContext) => {
      // a look at puppet.conf (through sudo when the master's access is): on the first look the file cache fetches
      // every file join reads on the master in the same command, so this round trip is not an extra one
      // (the connection budget later finds a master's PuppetDB settings already read)
      await ctx.host.exists(fileOf(j.layout, 'puppetConf').path, { sudo: m.sudo });
      return { done: true, why: 'reachable, host key verified' };
    },
    apply: async () => {},
  };
}

function primaryCredentialsWork(j: Join): Step {
  return {
    id: 'preflight.database',
    host: j.primary.name,
    title: "the primary's database credentials work (PuppetDB's own settings)",
    check: async (ctx: StepContext) => {
      const creds = await primaryCredentials(ctx, j.inv);
      // every service's credentials in one command
      await proveCredentialsFrom(ctx.host, j.layout, creds);
      return { done: true, why: `${creds.map((c) => c.service).join(', ')} connect as configured` };
    },
    apply: async () => {},
  };
}

// ---- the primary prepared ----

function caAllowsAltNames(j: Join): Step {
  const { layout, primary } = j;
  return ensureStep(
    'primary.ca-alt-names',
    primary.name,
    'allow alt names in CSRs on the CA (ca.conf), reload puppetserver when changed',
    async (h) => {
      const r = await allowSubjectAltNames(h.host, fileOf(layout, 'caConf').path, { sudo: primary.sudo });
      if (r.changed)
        await h.host.exec(buildCommand(layout, 'serviceReload', { service: layout.services.puppetserver }), {
          sudo: primary.sudo,
          timeoutMs: 120_000,
          changesFiles: [],
        });
    },
  );
}

/** The primary's instance, its address for `node`, and the database/user pairs every secondary's services use. */
async function dbAccessFor(ctx: StepContext, j: Join, node: InventoryNode) {
  const creds = await primaryCredentials(ctx, j.inv);
  const address = await resolveAddress(ctx.host, node.name, node.ssh.address);
  const grants = [
    ...new Map(creds.map((c) => [`${c.database}/${c.user}`, { database: c.database, user: c.user }])).values(),
  ];
  return { inst: await instanceFromHost(ctx.host, j.layout), address, grants };
}

function primaryDbAccess(j: Join, s: InventoryNode): Step {
  const primaryAddress = j.primary.ssh.address;
  const primaryListen = primaryAddress && isIpLiteral(primaryAddress) ? primaryAddress : '*';
  return {
    id: `primary.db-access:${s.name}`,
    host: j.primary.name,
    title: `PostgreSQL access for ${s.name} (pg_hba.conf, listen_addresses; every secondary joining now in the same change)`,
    // pe-db's read-only check: every record grantAccess would add is in effect (pg_hba_file_rules)
    check: async (ctx) => {
      const a = await dbAccessFor(ctx, j, s);
      // listen_addresses too, in effect (no restart pending): the primary's address from the inventory ('*' when it gives
      // a name) is covered; a run stopped after pg_hba.conf was written but before the restart resumes here as to do
      return (await accessGranted(a.inst, a.address, a.grants, { listen: primaryListen }))
        ? {
            done: true,
            why: `pg_hba admits ${a.address} for ${a.grants.map((g) => `${g.database}/${g.user}`).join(', ')}`,
          }
        : {
            done: false,
            why: `no pg_hba record in effect for ${a.address}, or PostgreSQL does not listen on ${primaryListen === '*' ? 'every address' : primaryListen} yet`,
          };
    },
    // one pg_hba change, one reload and one confirmation for every secondary joining now (records already in
    // effect are kept): the primary's steps run one after another, so N secondaries cost one edit, not N;
    // the following secondaries' steps then find their access in effect
    apply: async (ctx) => {
      const a = await dbAccessFor(ctx, j, s);
      const others = await Promise.all(
        j.joining
          .filter((o) => o !== s)
          .map(async (o) => ({ address: (await dbAccessFor(ctx, j, o)).address, grants: a.grants })),
      );
      try {
        // the last secondary's records first, as one step after another would leave pg_hba.conf (each prepends)
        await grantAccessMany(a.inst, [{ address: a.address, grants: a.grants }, ...others].reverse(), {
          restart: true,
        });
      } catch (e) {
        // in a plan the reload and pg_hba_file_rules cannot see the recorded (not written) file
        if (!ctx.dryRun) throw e;
      }
    },
  };
}

/**
 * The primary's own files, written together (one round trip): pe3's autosign entries for the joining secondaries'
 * console certificates (pe-certs consoleAutosign's entry, as ensureConsoleCert later finds it) and the PuppetDB
 * allowlist (PuppetDB restarted when it changed). None when the layout has neither.
 */
function primaryAllowlists(j: Join): Step[] {
  const { layout, pe3, primary } = j;
  const edits: Edit[] = [];
  if (pe3)
    edits.push({
      kind: 'lines',
      path: fileOf(layout, 'autosignConf').path,
      create: true,
      write: { mode: 0o644 },
      ops: j.joining.map((s) => ({ op: 'add' as const, entry: consoleCertPaths(layout, s.name).certname })),
    });
  const allowlist = layout.puppetdbAllowlist.kind === 'file' ? fileOf(layout, 'puppetdbAllowlist').path : undefined;
  if (allowlist)
    edits.push({
      kind: 'lines',
      path: allowlist,
      create: true,
      ops: j.allowEntries.map((m) => ({ op: 'add' as const, entry: m })),
    });
  if (!edits.length) return [];
  const what = [
    pe3 ? 'the console certificates of the joining secondaries in autosign.conf' : '',
    allowlist ? 'every master in the PuppetDB certificate allowlist (restart PuppetDB when changed)' : '',
  ]
    .filter(Boolean)
    .join('; ');
  return [
    ensureStep('primary.allowlists', primary.name, what, async (h) => {
      const rs = await applyEdits(h.host, edits, { sudo: primary.sudo });
      // a restart changes none of the files join reads: the re-check is answered from what the run knows
      if (rs.find((r) => r.path === allowlist)?.changed)
        await restartService(h.host, layout, layout.services.puppetdb, primary.sudo);
    }),
  ];
}

/** A restart that declares it changes none of the files join reads. */
async function restartService(host: Host, layout: Layout, service: string, sudo: boolean): Promise<void> {
  await host.exec(buildCommand(layout, 'serviceRestart', { service }), {
    sudo,
    timeoutMs: 10 * 60_000,
    changesFiles: [],
  });
}

// ---- each secondary ----

function secondaryLane(j: Join, s: InventoryNode): Step[] {
  return [
    secondarySettings(j, s),
    certificate(j, s),
    ...(j.pe3 ? [consoleCertificate(j, s)] : []),
    databaseSettings(j, s),
    puppetdbSsl(j, s),
  ];
}

/**
 * One step for the secondary's own settings, written together (one round trip): CA off, ca_server, the CRL copy,
 * (puppetserver) the web server's TLS files, the main filebucket (site.pp), (pe3) the event inspector's certificate
 * files, the PuppetDB allowlist.
 */
function secondarySettings(j: Join, s: InventoryNode): Step {
  const { inv, layout } = j;
  const parts = ['CA disabled', `ca_server = ${inv.primaryCname}`, `CRL copy ${layout.crl.nonCaValue}`];
  // puppetserver: with the CA service disabled nothing fills in the web server's TLS files from puppet's settings
  // any more ("Missing some SSL configuration" at start): name the agent's own
  if (layout.crl.kind !== 'apache') parts.push("the web server's TLS files are the agent's");
  const settings: Edit[] = [
    caServiceEdit(layout, { enabled: false }),
    caServerEdit(inv),
    crlCopyEdit(layout, { webTlsOf: s.name }),
  ];
  if (layout.files.sitePp) parts.push(`filebucket ${inv.primaryCname}`);
  const inspector = j.pe3 ? layout.files.eventInspectorConfig : undefined;
  if (inspector) parts.push('event inspector uses the console certificate');
  const allow = layout.puppetdbAllowlist.kind === 'file' ? fileOf(layout, 'puppetdbAllowlist') : undefined;
  if (allow) {
    settings.push({
      kind: 'lines',
      path: allow.path,
      create: true,
      write: { mode: allow.mode },
      ops: j.allowEntries.map((m) => ({ op: 'add' as const, entry: m })),
    });
    parts.push('every master in the PuppetDB allowlist');
  }
  return ensureStep('settings', s.name, parts.join('; '), async (h) => {
    const at: Remote = { host: h.host, sudo: s.sudo };
    const edits = [...settings, ...(await filebucketEdits(at, inv))];
    if (inspector) edits.push(...(await eventInspectorEdits(j, s, at, inspector.path)));
    await applyEdits(h.host, edits, { sudo: s.sudo });
  });
}

/** The seed's pe_secondary::console::event_inspector: the event inspector names the console's new certificate files. */
async function eventInspectorEdits(j: Join, s: InventoryNode, at: Remote, path: string): Promise<Edit[]> {
  if (!(await at.host.exists(path, { sudo: at.sudo }))) return [];
  const text = (await at.host.readFile(path, { sudo: at.sudo })).toString('utf8');
  const doc = openDocument('yaml', text, path) as YamlDocument;
  const c = consoleCertPaths(j.layout, s.name);
  // PE 3's config.yml names them under production.ssl (certificate / private_key / ca_certificate; older: cert / key / ca_file)
  const want: [string, string][] = [
    ['certificate', c.cert],
    ['cert', c.cert],
    ['private_key', c.privateKey],
    ['key', c.privateKey],
    ['ca_certificate', c.caCert],
    ['ca_file', c.caCert],
  ];
  const ops = want
    .filter(([k]) => doc.get(['production', 'ssl', k]) !== undefined)
    .map(([k, v]) => ({ op: 'set' as const, path: ['production', 'ssl', k], value: v }));
  return ops.length ? [{ kind: 'yaml', path, ops }] : [];
}

function caFor(layout: Layout, primary: Host, sudo: boolean) {
  return layout.flavour === 'pe3'
    ? PuppetCertCa.fromLayout(primary, layout, { sudo })
    : PuppetserverCa.fromLayout(primary, layout, { sudo });
}

function agentFor(inv: Inventory, sudo: boolean) {
  const o = { ssldir: inv.layout.dirs.ssldir, caServer: inv.primaryCname, sudo };
  return inv.layout.flavour === 'pe3' ? new Pe3PuppetAgent(o) : new PuppetSslAgent(o);
}

function certificate(j: Join, s: InventoryNode): Step {
  const { inv, layout, primary } = j;
  const sudo = s.sudo;
  const step = ensureStep(
    'certificate',
    s.name,
    `certificate regenerated and signed by ${primary.name} (alt names ${inv.generalCname}, ${inv.primaryCname})`,
    (h) =>
      regenerateNodeCert({
        node: h.host,
        ca: caFor(layout, h.hostFor(primary.name), primary.sudo),
        agent: agentFor(inv, sudo),
        certname: s.name,
        ownNames: inv.dnsAltNames,
        generalCname: inv.generalCname,
        primaryCname: inv.primaryCname,
        sudo,
        // the request the secondary just submitted is read and checked on the CA; no second listing of the whole
        // CA (all secondaries' listings and signings queue on the one CA: the bulk of many joins at once)
        signFromRequestFile: true,
        // and the CA is listed for an old entry of the name only when it holds a file for it (a new secondary: never)
        listOnlyWithFiles: true,
      }),
  );
  return {
    ...step,
    // regenerateNodeCert's apply ends with the full verification (verifyNode with the key check, signed by the
    // primary's CA, exactly the alt names) and fails the step otherwise: the engine's re-check would repeat it
    verify: false,
    apply: async (ctx) => {
      // pe3, the guide's step 3: the agent service stays stopped while the secondary is prepared (step 10 restarts it)
      if (j.pe3)
        await ctx.host.exec(buildCommand(layout, 'serviceStop', { service: layout.services.agent }), {
          sudo,
          timeoutMs: 120_000,
          changesFiles: [],
        });
      await step.apply(ctx);
      if (ctx.dryRun) ctx.state.set(`join:certificate-planned:${s.name}`, true);
    },
  };
}

function consoleCertificate(j: Join, s: InventoryNode): Step {
  return ensureStep(
    'console-certificate',
    s.name,
    'console certificate (pe-internal-dashboard) signed by the primary',
    (h) =>
      ensureConsoleCert(h.hostFor(j.primary.name), h.host, {
        layout: j.layout,
        fqdn: s.name,
        caServer: j.inv.primaryCname,
        sudo: s.sudo,
      }),
  );
}

function databaseSettings(j: Join, s: InventoryNode): Step {
  const { inv, layout } = j;
  const files = dbFilesFromLayout(layout);
  return {
    id: 'database-settings',
    host: s.name,
    title: `PuppetDB${j.pe3 ? ' and the console' : ''} use ${inv.primaryCname}'s database with its credentials`,
    check: async (ctx) => {
      const creds = await primaryCredentials(ctx, inv);
      // prove the credentials from this secondary first (a wrong password or a missing pg_hba record is a typed
      // pe-db error, and nothing is written); a plan cannot: the access step only recorded its change
      // (once per run: the re-check after writing the files need not prove the unchanged credentials again)
      const proven = `join:db-proven:${s.name}`;
      if (!ctx.dryRun && !ctx.state.get(proven)) {
        await proveCredentialsFrom(ctx.host, layout, creds, { server: inv.primaryCname });
        ctx.state.set(proven, true);
      }
      return (await credentialsCurrent(ctx.host, files, creds, { server: inv.primaryCname }))
        ? {
            done: true,
            why: `${files.map((f) => f.service).join(', ')} point at ${inv.primaryCname} with the primary's credentials`,
          }
        : { done: false, why: `${files.map((f) => f.path).join(', ')} to point at ${inv.primaryCname}` };
    },
    apply: async (ctx) => {
      const creds = await primaryCredentials(ctx, inv);
      await writeCredentials(ctx.host, files, creds, { server: inv.primaryCname });
    },
  };
}

function puppetdbSsl(j: Join, s: InventoryNode): Step {
  const step = ensureStep(
    'puppetdb-ssl',
    s.name,
    "PuppetDB's certificates re-initialised from the new agent certificate",
    (h) => reinitPuppetdbSsl(h.host, j.layout, s.name, { sudo: s.sudo }),
  );
  return {
    ...step,
    // a plan cannot see the certificate it only planned: PuppetDB's copies compare equal to the old one
    check: async (ctx) =>
      ctx.dryRun && ctx.state.get(`join:certificate-planned:${s.name}`)
        ? { done: false, why: 'after the planned new certificate' }
        : step.check(ctx),
  };
}

// ---- the primary's connection budget: every master's PuppetDB pools must fit max_connections ----

function primaryConnectionBudget(j: Join): Step {
  const { inv, layout, primary } = j;
  return ensureStep(
    'primary.connection-budget',
    primary.name,
    "PuppetDB pools of every master fit the primary's max_connections (maximum-pool-size lowered when needed)",
    async (h) => {
      const files = dbFilesFromLayout(layout);
      const report = await checkBudget(
        await instanceFromHost(h.host, layout),
        inv.masters.map((m) => ({ host: h.hostFor(m.name), files })),
        { mode: 'fit' },
      );
      // the primary's own pool may have been lowered: its PuppetDB reads it at start (the secondaries restart later)
      if (report.writes.some((w) => w.changed))
        await restartService(h.host, layout, layout.services.puppetdb, primary.sudo);
    },
  );
}

// ---- MCollective across every master (broker lists on every master) ----

async function mcollectiveSteps(cluster: JoinContext, j: Join): Promise<FlowItem[]> {
  const { inv, layout, primary, joining: secondaries } = j;
  const joining = new Set(secondaries.map((s) => s.name));
  const others = inv.masters.filter((m) => m.role === 'secondary' && !joining.has(m.name));
  const master = (n: InventoryNode) => ({ fqdn: n.name, host: cluster.host(n.name), layout });
  const mco: McoCluster = {
    primary: master(primary),
    secondaries: [...secondaries, ...others].map(master),
    sudo: primary.sudo || secondaries.some((s) => s.sudo),
  };
  const items: FlowItem[] = [];
  if (j.pe3) {
    // each master's PKI copy only reads the primary and writes that master: they run in parallel (lanes), the console steps after them
    const steps = pe3JoinSteps(mco);
    const pki = steps.filter((st) => st.id.startsWith('mco-pki:'));
    if (pki.length) items.push({ group: 'mcollective-pki', lanes: pki.map((st) => [st]) });
    items.push(...steps.filter((st) => !pki.includes(st)));
  } else {
    const { secrets } = await readSecrets(mco);
    for (const v of [secrets.psk, secrets.password]) inv.redactor.add(v);
    items.push(...debianSyncSteps(mco, secrets));
  }
  return items;
}

// ---- the CRL kept current ----

/**
 * Per secondary in parallel, after the restarts (installing it never restarts puppetserver): pe-crl-refresh
 * installed and running (flows/crl-refresh.ts). None where the layout's services are not systemd units (pe3).
 */
function crlRefresh(j: Join, secondaries: readonly InventoryNode[]): FlowItem[] {
  if (!crlRefreshSupported(j.layout)) return [];
  return [
    group(
      'crl-refresh',
      secondaries.map((s) => [crlRefreshInstallStep(j.inv, s)]),
    ),
  ];
}

// ---- restarts and validation ----

function restartAndValidate(j: Join, s: InventoryNode): Step[] {
  const { inv, layout } = j;
  const services = [
    layout.services.puppetserver,
    layout.services.puppetdb,
    ...layout.services.extra,
    ...(j.pe3 ? [layout.services.agent] : []),
  ];
  return [
    afterChanges('restart', s.name, `restart ${services.join(', ')}`, async (ctx) => {
      // one command (one round trip): each restart in turn, the first failure stops the rest
      await ctx.host.exec(
        sequenceArgv(services.map((service) => buildCommand(layout, 'serviceRestart', { service }))),
        { sudo: s.sudo, timeoutMs: services.length * 10 * 60_000 },
      );
    }),
    afterChanges('validate-self', s.name, `puppet agent --test against ${s.name} itself`, (ctx) =>
      agentRun(ctx, inv, s, s.name),
    ),
    afterChanges('validate-general', s.name, `puppet agent --test through ${inv.generalCname}`, (ctx) =>
      agentRun(ctx, inv, s, inv.generalCname),
    ),
  ];
}

/** `puppet agent --test --server X`: exit 0 (no changes) and 2 (changes applied) are success. */
async function agentRun(ctx: StepContext, inv: Inventory, node: InventoryNode, server: string): Promise<void> {
  const argv = [...buildCommand(inv.layout, 'agentTest'), '--server', server];
  const r = await ctx.host.exec(argv, { sudo: node.sudo, allowFailure: true, timeoutMs: 15 * 60_000 });
  if (r.code !== 0 && r.code !== 2) throw new CommandFailedError(node.name, argv, r.code, r.stderr, r.stdout);
}
/**
 * The files join's steps read on a master, fetched together on the first miss
 * (engine FileCache): the layout's configuration files, the agent's
 * certificate material, PuppetDB's copies, the shared MCollective files and
 * (pe3) the console certificate; on the CA (`signing`: the secondaries
 * joining now) each one's request and signed certificate. Private keys and
 * credentials only by their existence and attributes: their content is never read for a cache.
 */
export function joinFileHints(layout: Layout, host: string, signing: readonly string[] = []): FileHint[] {
  const secret = new Set([layout.files.caKey?.path, layout.files.mcollectiveCredentials?.path]);
  const out: FileHint[] = Object.values(layout.files).map((f) =>
    secret.has(f.path) ? { path: f.path, content: false } : { path: f.path },
  );
  const ssl = puppetSslPaths(layout.dirs.ssldir, host);
  out.push({ path: ssl.cert }, { path: ssl.caCert }, { path: ssl.publicKey }, { path: ssl.key, content: false });
  const pdb = puppetdbSslDir(layout);
  out.push({ path: `${pdb}/ca.pem` }, { path: `${pdb}/public.pem` }, { path: `${pdb}/private.pem`, content: false });
  // the MCollective files shared with the primary: certificates and public keys; keys and credentials only as attributes
  for (const f of sharedFiles(layout)) out.push(f.secret ? { path: f.path, content: false } : { path: f.path });
  // and their directories (whether they exist: the copy creates a missing one)
  for (const f of sharedFiles(layout))
    out.push({ path: f.path.slice(0, f.path.lastIndexOf('/')) || '/', content: false });
  if (layout.console && layout.dirs.consoleCertsDir) {
    const c = consoleCertPaths(layout, host);
    out.push({ path: c.cert }, { path: c.caCert }, { path: c.publicKey }, { path: c.privateKey, content: false });
  }
  // on the CA: the request and the certificate of each secondary it signs now (a CSR and a certificate: public)
  for (const n of signing)
    out.push({ path: `${layout.dirs.cadir}/requests/${n}.pem` }, { path: `${layout.dirs.cadir}/signed/${n}.pem` });
  return [...new Map(out.map((h) => [h.path, h])).values()];
}

/**
 * Every service's credentials tried from `host` in one command (a typed pe-db error names the first that fails):
 * against each credential's own server, or against `server` when given (the name a secondary will use).
 */
async function proveCredentialsFrom(
  host: Host,
  layout: Layout,
  creds: readonly DbCredentials[],
  opts: { server?: string } = {},
): Promise<void> {
  const psql = `${instanceFromLayout(host, layout).binDir}/psql`;
  const targets = creds.map((c) => ({
    target: { server: opts.server ?? c.server, port: c.port, database: c.database, user: c.user },
    password: c.password,
  }));
  await checkManyFromHost(host, targets, { psql });
}
