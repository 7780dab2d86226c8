import { benchCerts } from './certs.bench.js';
import { benchCluster } from './cluster.bench.js';
import { benchConfigFiles } from './config-files.bench.js';
import { benchDb } from './db.bench.js';
import { benchFailover } from './failover.bench.js';
import { benchHost } from './host.bench.js';
import { benchLab } from './lab.bench.js';
import { benchMcollective } from './mcollective.bench.js';

/**
 * `npm run bench`: every package's benchmarks in one run, figures printed as
 * a table and written to .bench/latest.json. `npm run bench -- host` runs
 * only the named groups. Needs root; runs inside the lab's controller namespace
 * (`lab run --`), where the cluster and failover groups reach their labs.
 */
const groups: Record<string, () => Promise<Record<string, number>>> = {
  host: () => benchHost(),
  'config-files': () => benchConfigFiles(),
  certs: () => benchCerts(),
  db: () => benchDb(),
  mcollective: () => benchMcollective(),
  lab: () => benchLab(),
  failover: () => benchFailover(),
  cluster: () => benchCluster(),
};

const wanted = process.argv.slice(2);
const results: Record<string, number> = {};
for (const [name, fn] of Object.entries(groups)) {
  if (wanted.length && !wanted.includes(name)) continue;
  process.stdout.write(`bench ${name} ...\n`);
  Object.assign(results, await fn());
}
const width = Math.max(...Object.keys(results).map((k) => k.length));
for (const [k, v] of Object.entries(results)) process.stdout.write(`${k.padEnd(width)}  ${v}\n`);
const { mkdir, writeFile } = await import('node:fs/promises');
await mkdir('.bench', { recursive: true });
await writeFile('.bench/latest.json', `${JSON.stringify({ at: new Date().toISOString(), results }, null, 2)}\n`);
