import { fileOf, parseSitePp, type Edit, type Layout } from '@pe-stack/pe-config-files';
import type { Inventory } from '../inventory.js';
import { webTlsOps } from './ca-switch.js';
import type { Remote } from './cluster-access.js';

/**
 * The web server's CRL is the local copy (not the CA's own file): pe3's pe-httpd SSLCARevocationFile,
 * puppetserver's webserver.conf ssl-crl-path. With `webTlsOf`, the same webserver.conf edit also names that
 * certname's TLS files (puppetserver layouts).
 */
export function crlCopyEdit(layout: Layout, opts: { webTlsOf?: string } = {}): Edit {
  if (layout.crl.kind === 'apache')
    return {
      kind: 'apache',
      path: fileOf(layout, 'webServerConf').path,
      ops: [{ op: 'set', directive: layout.crl.directive, value: layout.crl.nonCaValue }],
    };
  return {
    kind: 'hocon',
    path: fileOf(layout, 'webServerConf').path,
    ops: [
      { op: 'set', path: layout.crl.path, value: layout.crl.nonCaValue },
      ...(opts.webTlsOf === undefined ? [] : webTlsOps(layout, opts.webTlsOf)),
    ],
  };
}

/**
 * site.pp's main filebucket pointed at primary_cname; no edit when there is no site.pp or it declares no
 * filebucket resource (Puppet 4+ and the Debian packages declare none).
 */
export async function filebucketEdits(at: Remote, inv: Inventory): Promise<Edit[]> {
  const sitePp = inv.layout.files.sitePp;
  if (!sitePp || !(await at.host.exists(sitePp.path, { sudo: at.sudo }))) return [];
  const text = (await at.host.readFile(sitePp.path, { sudo: at.sudo })).toString('utf8');
  if (!parseSitePp(text, sitePp.path).hasFilebucket()) return [];
  return [{ kind: 'site-pp', path: sitePp.path, ops: [{ op: 'filebucket-server', server: inv.primaryCname }] }];
}
