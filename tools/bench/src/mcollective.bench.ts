import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { LocalHost, Redactor } from '@pe-stack/pe-host';
import { resolveLayout } from '@pe-stack/pe-config-files';
import { copySharedFiles, planMasterFiles, type Master, type McoCluster } from '@pe-stack/pe-mcollective';
import { percentile, round } from './stats.js';

/**
 * pe-mcollective: (1) the pe3 PKI + credentials copy (13 files, host to host
 * through memory, then hashes compared) between two LocalHosts on temp dirs,
 * every file different each round; (2) computing one master's server.cfg,
 * client.cfg and activemq.xml for clusters of 3 and 10 masters. Medians of
 * `rounds` runs after a warm-up.
 */
export async function benchMcollective(rounds = 11): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const base = mkdtempSync(join(tmpdir(), 'pe-bench-mco-'));
  try {
    const PKI = [
      'pe-internal-broker',
      'pe-internal-mcollective-servers',
      'pe-internal-peadmin-mcollective-client',
      'pe-internal-puppet-console-mcollective-client',
    ];
    const pe3Under = (root: string) =>
      resolveLayout('pe3', {
        mcollective: {
          pki: Object.fromEntries(
            PKI.map((n) => [
              n,
              {
                cert: `${root}/certs/${n}.pem`,
                privateKey: `${root}/private_keys/${n}.pem`,
                publicKey: `${root}/public_keys/${n}.pem`,
              },
            ]),
          ),
          credentials: `${root}/credentials`,
        },
      });
    const la = pe3Under(join(base, 'a'));
    const lb = pe3Under(join(base, 'b'));
    const put = (p: string, mode: number) => {
      mkdirSync(dirname(p), { recursive: true });
      writeFileSync(p, `${randomBytes(1700).toString('base64')}\n`);
      chmodSync(p, mode);
    };
    const reseed = () => {
      for (const e of Object.values(la.mcollective.pki)) {
        put(e.cert, 0o644);
        put(e.privateKey, 0o640);
        put(e.publicKey, 0o644);
      }
      put(la.mcollective.credentials!, 0o600);
    };
    const primary: Master = { fqdn: 'm1.bench', host: new LocalHost({ name: 'm1.bench' }), layout: la };
    const secondary: Master = { fqdn: 'm2.bench', host: new LocalHost({ name: 'm2.bench' }), layout: lb };
    const copies: number[] = [];
    for (let i = 0; i <= rounds; i++) {
      reseed();
      const t0 = performance.now();
      const r = await copySharedFiles(primary, secondary, { sudo: false });
      if (r.copied.length !== 13) throw new Error(`copied ${r.copied.length} files, expected 13`);
      if (i > 0) copies.push(performance.now() - t0);
    }
    out['mcollective pe3 PKI copy, 13 files, LocalHost->LocalHost ms'] = round(percentile(copies, 50));

    const debianXml = readFileSync('/etc/activemq/instances-available/main/activemq.xml', 'utf8');
    const serverCfg =
      'main_collective = mcollective\nconnector = activemq\nplugin.activemq.pool.size = 1\nplugin.activemq.pool.1.host = stomp1\nplugin.activemq.pool.1.port = 61613\nplugin.activemq.pool.1.user = mcollective\nplugin.activemq.pool.1.password = marionette\nplugin.psk = unset\n';
    for (const n of [3, 10]) {
      const root = join(base, `deb${n}`);
      const layout = resolveLayout('debian', {
        files: {
          mcollectiveServerCfg: { path: `${root}/server.cfg` },
          mcollectiveClientCfg: { path: `${root}/client.cfg` },
          activemqXml: { path: `${root}/activemq.xml` },
        },
      });
      mkdirSync(root, { recursive: true });
      writeFileSync(`${root}/server.cfg`, serverCfg);
      writeFileSync(`${root}/client.cfg`, serverCfg);
      writeFileSync(`${root}/activemq.xml`, debianXml);
      const redactor = new Redactor();
      const masters: Master[] = Array.from({ length: n }, (_, i) => ({
        fqdn: `m${i + 1}.bench`,
        host: new LocalHost({ name: `m${i + 1}.bench`, redactor }),
        layout,
      }));
      const c: McoCluster = { primary: masters[0]!, secondaries: masters.slice(1), sudo: false };
      const secrets = {
        psk: randomBytes(24).toString('base64url'),
        user: 'mcollective',
        password: randomBytes(24).toString('base64url'),
      };
      const times: number[] = [];
      for (let i = 0; i <= rounds; i++) {
        const t0 = performance.now();
        const plans = await planMasterFiles(masters[0]!, c, secrets);
        if (!plans.every((p) => p.changed)) throw new Error('expected every file to change');
        if (i > 0) times.push(performance.now() - t0);
      }
      out[`mcollective debian plan of one master's 3 files, ${n} masters ms`] = round(percentile(times, 50));
    }
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
  return out;
}
