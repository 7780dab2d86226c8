import type { Host } from '@pe-stack/pe-host';
import { applyEdits, fileOf, type ApplyResult, type Layout } from '@pe-stack/pe-config-files';
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

/**
 * Re-initialises PuppetDB's certificates from the node's agent certificate
 * (after regenerateNodeCert): pe3 and debian both run the layout's
 * `puppetdb ssl-setup -f`. On debian, ssl-setup writes `ssl-ca-cert` = the
 * CA's own ca_crt.pem, which does not exist on a non-CA host (puppetdb then
 * dies, lab-notes.md): it is pointed at the agent's CA copy instead.
 * Only runs when PuppetDB's copies differ from the agent's.
 */
export async function reinitPuppetdbSsl(node: Host, layout: Layout, certname: string, opts: { sudo?: boolean; force?: boolean } = {}): Promise<PuppetdbSslResult> {
  validateCertname(certname);
  const sudo = opts.sudo ?? true;
  const agent = puppetSslPaths(layout.dirs.ssldir, certname);
  const dir = puppetdbSslDir(layout);
  const read = async (p: string) => ((await node.exists(p, { sudo })) ? (await node.readFile(p, { sudo })).toString('utf8') : undefined);
  const [agentCa, agentCert, dbCa, dbCert] = await Promise.all([read(agent.caCert), read(agent.cert), read(`${dir}/ca.pem`), read(`${dir}/public.pem`)]);
  if (agentCa === undefined || agentCert === undefined) {
    throw new CertError('E_CERT_NOT_FOUND', `the agent certificate or CA copy is missing under ${layout.dirs.ssldir}; regenerate the node certificate first.`, { host: node.name, certname });
  }
  const fixJetty = async () =>
    layout.flavour === 'debian'
      ? applyEdits(node, [{ kind: 'ini', path: fileOf(layout, 'puppetdbJettyIni').path, ops: [{ op: 'set', section: 'jetty', key: 'ssl-ca-cert', value: agent.caCert }] }], { sudo }).then((r) => r[0]!)
      : undefined;
  if (!opts.force && dbCa === agentCa && dbCert === agentCert) {
    const jetty = await fixJetty();
    return { host: node.name, changed: jetty?.changed ?? false, reason: 'PuppetDB already uses the agent certificate', ...(jetty ? { jetty } : {}) };
  }
  const reason = dbCa === undefined ? 'PuppetDB has no certificates' : dbCa !== agentCa ? "PuppetDB's CA differs from the agent's" : "PuppetDB's certificate differs from the agent's";
  if (await node.exists(dir, { sudo })) await node.remove(dir, { sudo, recursive: true });
  const argv = layout.commands.puppetdbSslSetup;
  const r = await node.exec(argv, { sudo, allowFailure: true, timeoutMs: 120_000 });
  if (r.code !== 0) throw new CertError('E_CA_COMMAND', `\`${argv.join(' ')}\` exited ${r.code}: ${node.redactor.redact(r.stderr.trim().split('\n').slice(-3).join(' '))}`, { host: node.name, certname });
  const jetty = await fixJetty();
  return { host: node.name, changed: true, reason, ...(jetty ? { jetty } : {}) };
}
