import type { Host } from '@pe-stack/pe-host';
import { sequenceArgv, validateRemotePath } from '@pe-stack/pe-host';
import { applyEdits, fileOf, parseIni, type ApplyResult, type Layout } from '@pe-stack/pe-config-files';
import { validateCertname } from './backend.js';
import { CertError } from './errors.js';
import { puppetSslPaths } from './verify.js';

export interface PuppetdbSslResult {
  host: string;
  changed: boolean;
  reason: string;
  /** The jetty.ini edit (debian: ssl-ca-cert pointed at the agent's CA copy). */
  jetty?: ApplyResult;
}

/** PuppetDB's own copy of the node's certificate material (`<puppetdb confdir>/ssl`). */
export function puppetdbSslDir(layout: Layout): string {
  return layout.dirs.puppetdbConfdir.replace(/\/conf\.d$/, '') + '/ssl';
}

/** PuppetDB's ssl directory is removed before its setup: never a path near the root. */
function assertPuppetdbSslDir(host: string, dir: string): void {
  validateRemotePath(dir);
  const norm = dir.replace(/\/+$/, '');
  if (!norm.endsWith('/ssl') || norm.split('/').length < 4)
    throw new CertError(
      'E_CA_COMMAND',
      `refusing to remove ${dir} before the PuppetDB ssl setup: not a PuppetDB ssl directory.`,
      { host },
    );
}

/**
 * Re-initialises PuppetDB's certificates from the node's agent certificate
 * (after regenerateNodeCert), only when PuppetDB's copies differ from the
 * agent's.
 *
 * - pe3: the runbook's step 7, the layout's `puppetdb-ssl-setup` (after
 *   removing PuppetDB's old ssl directory).
 * - debian: Debian 12's `puppetdb ssl-setup` cannot do it: it refuses once
 *   jetty.ini has `ssl-port` ("setup may already have been done", exit 1, on
 *   stdout), adds the puppetdb user to the puppet group, and names the CA's
 *   own ca_crt.pem, absent on a non-CA host (lab-notes.md). So the agent's
 *   CA copy, certificate and key are installed on the node (`install`, the
 *   key never leaves the host) into `<puppetdb confdir>/ssl/{ca,public,private}.pem`
 *   owned by the PuppetDB user, and jetty.ini's `ssl-key`, `ssl-cert`,
 *   `ssl-ca-cert` name those files (`ssl-host`/`ssl-port` added only when
 *   jetty.ini has no TLS port yet). Found by the first real join in the lab.
 */
export async function reinitPuppetdbSsl(
  node: Host,
  layout: Layout,
  certname: string,
  opts: { sudo?: boolean; force?: boolean } = {},
): Promise<PuppetdbSslResult> {
  validateCertname(certname);
  const ctx: PuppetdbSslContext = {
    node,
    layout,
    certname,
    sudo: opts.sudo ?? true,
    agent: puppetSslPaths(layout.dirs.ssldir, certname),
    dir: puppetdbSslDir(layout),
  };
  const copies = await readSslCopies(ctx);
  const jettyPath = layout.flavour === 'debian' ? fileOf(layout, 'puppetdbJettyIni').path : undefined;
  if (!opts.force && copies.dbCa === copies.agentCa && copies.dbCert === copies.agentCert) {
    const jetty = await pointJettyAtSslDir(ctx, jettyPath);
    return {
      host: node.name,
      changed: jetty?.changed ?? false,
      reason: 'PuppetDB already uses the agent certificate',
      ...(jetty ? { jetty } : {}),
    };
  }
  const reason =
    copies.dbCa === undefined
      ? 'PuppetDB has no certificates'
      : copies.dbCa !== copies.agentCa
        ? "PuppetDB's CA differs from the agent's"
        : "PuppetDB's certificate differs from the agent's";
  if (layout.flavour === 'debian') await installAgentSsl(ctx);
  else await rerunPuppetdbSslSetup(ctx);
  const jetty = await pointJettyAtSslDir(ctx, jettyPath);
  return { host: node.name, changed: true, reason, ...(jetty ? { jetty } : {}) };
}

interface PuppetdbSslContext {
  node: Host;
  layout: Layout;
  certname: string;
  sudo: boolean;
  /** The agent's certificate material. */
  agent: ReturnType<typeof puppetSslPaths>;
  /** PuppetDB's ssl directory. */
  dir: string;
}

/** The agent's CA copy and certificate and PuppetDB's, read at once; the agent's must exist. */
async function readSslCopies(ctx: PuppetdbSslContext) {
  const { node, sudo, agent, dir } = ctx;
  const read = async (p: string) =>
    (await node.exists(p, { sudo })) ? (await node.readFile(p, { sudo })).toString('utf8') : undefined;
  const [agentCa, agentCert, dbCa, dbCert] = await Promise.all([
    read(agent.caCert),
    read(agent.cert),
    read(`${dir}/ca.pem`),
    read(`${dir}/public.pem`),
  ]);
  if (agentCa === undefined || agentCert === undefined) {
    throw new CertError(
      'E_CERT_NOT_FOUND',
      `the agent certificate or CA copy is missing under ${ctx.layout.dirs.ssldir}; regenerate the node certificate first.`,
      { host: node.name, certname: ctx.certname },
    );
  }
  return { agentCa, agentCert, dbCa, dbCert };
}

/** debian: jetty.ini's ssl-key, ssl-cert, ssl-ca-cert name PuppetDB's ssl files (TLS port added when missing). */
async function pointJettyAtSslDir(
  ctx: PuppetdbSslContext,
  jettyPath: string | undefined,
): Promise<ApplyResult | undefined> {
  const { node, sudo, dir } = ctx;
  if (!jettyPath) return undefined;
  const text = (await node.exists(jettyPath, { sudo }))
    ? (await node.readFile(jettyPath, { sudo })).toString('utf8')
    : '';
  const hasTls = parseIni(text, jettyPath).get('jetty', 'ssl-port') !== undefined;
  const set = (key: string, value: string) => ({ op: 'set' as const, section: 'jetty', key, value });
  const ops = [
    ...(hasTls ? [] : [set('ssl-host', '0.0.0.0'), set('ssl-port', '8081')]),
    set('ssl-key', `${dir}/private.pem`),
    set('ssl-cert', `${dir}/public.pem`),
    set('ssl-ca-cert', `${dir}/ca.pem`),
  ];
  return (await applyEdits(node, [{ kind: 'ini', path: jettyPath, ops }], { sudo }))[0]!;
}

/** debian: the agent's CA copy, certificate and key installed into PuppetDB's ssl directory. */
async function installAgentSsl(ctx: PuppetdbSslContext): Promise<void> {
  const { agent, dir } = ctx;
  const { user, group } = ctx.layout.users.puppetdb;
  // the directory and the three files in one command (the first failure stops the rest); the key is copied on the node
  const installs = [
    ['install', '-d', '-o', user, '-g', group, '-m', '0750', dir],
    ['install', '-o', user, '-g', group, '-m', '0640', agent.caCert, `${dir}/ca.pem`],
    ['install', '-o', user, '-g', group, '-m', '0640', agent.cert, `${dir}/public.pem`],
    ['install', '-o', user, '-g', group, '-m', '0600', agent.key, `${dir}/private.pem`],
  ];
  // `install` changes only PuppetDB's ssl directory (jetty.ini is edited below, as a file)
  await runSslCommand(ctx, sequenceArgv(installs), {
    what: `installing the agent's CA copy, certificate and key into ${dir} (\`install\`)`,
    changesFiles: [dir],
  });
}

/** pe3: PuppetDB's old ssl directory removed and the layout's puppetdb-ssl-setup run. */
async function rerunPuppetdbSslSetup(ctx: PuppetdbSslContext): Promise<void> {
  const { node, layout, dir } = ctx;
  // PuppetDB's old directory removed and the setup run, in one command: the setup runs only once the removal succeeded
  assertPuppetdbSslDir(node.name, dir);
  const setup = layout.commands.puppetdbSslSetup;
  if (!setup.length)
    throw new CertError('E_CA_COMMAND', `the ${layout.name} layout has no puppetdbSslSetup command.`, {
      host: node.name,
      certname: ctx.certname,
    });
  // the setup writes under PuppetDB's own directory (its confdir's parent: the ssl files, jetty.ini), nothing elsewhere
  const pdbRoot = layout.dirs.puppetdbConfdir.replace(/\/conf\.d$/, '');
  const jetty = layout.files.puppetdbJettyIni?.path;
  await runSslCommand(ctx, sequenceArgv([['rm', '-rf', '--', dir], setup]), {
    what: `\`${setup.join(' ')}\` (after removing ${dir})`,
    changesFiles: [...new Set([dir, pdbRoot, ...(jetty ? [jetty] : [])])],
  });
}

async function runSslCommand(
  ctx: PuppetdbSslContext,
  argv: readonly string[],
  o: { what: string; changesFiles: readonly string[] },
): Promise<void> {
  const { node } = ctx;
  const r = await node.exec(argv, {
    sudo: ctx.sudo,
    allowFailure: true,
    timeoutMs: 120_000,
    changesFiles: o.changesFiles,
  });
  // Debian's and PE's scripts print their errors on stdout
  const tail = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-3).join(' ');
  if (r.code !== 0)
    throw new CertError('E_CA_COMMAND', `${o.what} exited ${r.code}: ${node.redactor.redact(tail)}`, {
      host: node.name,
      certname: ctx.certname,
    });
}
