// A consumer of the `./testing` subpath: the pe-cluster README's plan on memory hosts, then a MemoryHost of its own.
import { Cluster, parseInventory, formatPlan, type RunResult } from '@pe-stack/pe-cluster';
import { MemoryHost, memoryCluster, type CommandCall } from '@pe-stack/pe-cluster/testing';
import { applyEdits } from '@pe-stack/pe-config-files';

const inventory = parseInventory(
  `
cluster: demo
layout: debian
primary_cname: puppet-ca.example.com
general_cname: puppet.example.com
masters:
  - {name: primary.example.com, role: primary, address: 10.0.0.10}
  - {name: secondary1.example.com, role: secondary, address: 10.0.0.11}
`,
  'inventory.yaml',
);
const world = memoryCluster(inventory, { databasePassword: 'example-password' });
const cluster = new Cluster(inventory, { hostFactory: world.hostFactory });
let plan: RunResult;
try {
  plan = await cluster.plan('join', ['secondary1.example.com']);
} finally {
  await cluster.close();
}
const text = formatPlan(plan);
const preflight = ['preflight.ssh', 'preflight.database'].every((id) => text.includes(`[done ] ${id}`));

const host = new MemoryHost({
  name: 'm1',
  files: { '/etc/app.conf': { content: '[main]\n', mode: 0o640, owner: 'root' } },
});
host.onCommand(['systemctl', 'is-active'], (c: CommandCall) => ({ stdout: `${c.argv[2]}: active\n` }));
const active = (await host.exec(['systemctl', 'is-active', 'puppetserver'])).stdout.trim();
const edited = await applyEdits(host, [
  { kind: 'ini', path: '/etc/app.conf', ops: [{ op: 'set', section: 'main', key: 'server', value: 'a' }] },
]);

console.log(
  JSON.stringify({ module: 'esm', subpath: './testing', plan: plan.status, preflight, active, edited: edited.length }),
);
if (plan.status !== 'ok' || !preflight || host.file('/etc/app.conf')?.text !== '[main]\nserver = a\n') process.exit(1);
