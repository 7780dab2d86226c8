// A consumer of the packed tarballs, compiled under module nodenext with skipLibCheck false and run as ESM.
import { LocalHost, PeError } from '@pe-stack/pe-host';
import { runFlow } from '@pe-stack/pe-steps';
import { applyEdits, parseIni } from '@pe-stack/pe-config-files';
import * as certs from '@pe-stack/pe-certs';
import * as db from '@pe-stack/pe-db';
import * as mco from '@pe-stack/pe-mcollective';
import { UsageError, FLOWS } from '@pe-stack/pe-cluster';

const host = new LocalHost({ name: 'local' });
const applied = await applyEdits(host, []);
const doc = parseIni('[main]\nserver = a\n', 'puppet.conf');
const plan = await runFlow({ name: 'empty', items: [] }, { host: () => host, dryRun: true });
const oneCopy = new UsageError('x') instanceof PeError;
await host.close();
console.log(
  JSON.stringify({
    module: 'esm',
    applied: applied.length,
    ini: doc.toString().length,
    plan: plan.status,
    oneCopy,
    flows: FLOWS.length,
    exports: [certs, db, mco].map((m) => Object.keys(m).length > 0),
  }),
);
if (!oneCopy || plan.status !== 'ok') process.exit(1);
