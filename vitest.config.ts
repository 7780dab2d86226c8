import { readdirSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { relative } from 'node:path';
import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

// Tests import sibling packages by name; resolve those names to their
// TypeScript sources so that the suites run without a prior build. The
// private testkit has no index: its modules are imported by subpath.
const root = fileURLToPath(new URL('.', import.meta.url));
const alias: { find: string | RegExp; replacement: string }[] = [
  { find: /^@pe-stack\/testkit\/(.+)$/, replacement: `${root}packages/testkit/src/$1.ts` },
];
for (const dir of readdirSync(`${root}packages`)) {
  const entry = `${root}packages/${dir}/src/index.ts`;
  if (existsSync(entry)) alias.push({ find: `@pe-stack/${dir}`, replacement: entry });
}

const common = { resolve: { alias } };

// The lab suite's files in the order that lets each profile's lab be brought
// up once and handed on (tools/lab/src/fixture.ts): within a chain every file
// accepts the stage the one before it leaves. Files not listed run last.
const labOrder = [
  // light: the lab itself; teardown takes it down
  'tools/lab/src/light.lab.test.ts',
  'tools/lab/src/teardown.lab.test.ts',
  // pe3 (the simulator, up in ~15 s): each file on a fresh lab
  'tools/lab/src/pe3.lab.test.ts',
  'packages/pe-certs/src/pe3.lab.test.ts',
  'packages/pe-mcollective/src/mcollective-pe3.lab.test.ts',
  'packages/pe-cluster/src/join-pe3.lab.test.ts',
  // debian, 2 masters with MCollective: certificates, then the broker mesh, then the database's failover
  'packages/pe-certs/src/puppetserver.lab.test.ts',
  'packages/pe-mcollective/src/mcollective.lab.test.ts',
  'packages/pe-db/src/failover.lab.test.ts',
  // debian, 3 masters: the fresh installs, the join, what needs a joined cluster, the failover last
  'tools/lab/src/debian.lab.test.ts',
  'packages/pe-cluster/src/join.lab.test.ts',
  'packages/pe-cluster/src/crl.lab.test.ts',
  'packages/pe-cluster/src/failover.lab.test.ts',
];

class LabChainSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const rank = (f: TestSpecification) => {
      if (f.project.name !== 'lab') return -1;
      const i = labOrder.indexOf(relative(root, f.moduleId));
      return i < 0 ? labOrder.length : i;
    };
    return sorted
      .map((f, i) => ({ f, i }))
      .sort((a, b) => rank(a.f) - rank(b.f) || a.i - b.i)
      .map(({ f }) => f);
  }
}
const sources = ['packages/*/src/**/', 'tools/*/src/**/'];

// Three tagged suites, by file name:
//   *.test.ts       unit: fast, no root, no lab
//   *.root.test.ts  root: needs root and installed Debian packages (sshd, sudo, PostgreSQL), loopback only
//   *.lab.test.ts   lab:  needs the namespace lab (tools/lab); brings its profiles up once per run
export default defineConfig({
  test: {
    sequence: { sequencer: LabChainSequencer },
    projects: [
      {
        ...common,
        test: {
          name: 'unit',
          include: sources.map((s) => `${s}*.test.ts`),
          exclude: ['**/*.root.test.ts', '**/*.lab.test.ts', '**/node_modules/**', '**/dist/**'],
          testTimeout: 20_000,
        },
      },
      {
        ...common,
        test: {
          name: 'root',
          include: sources.map((s) => `${s}*.root.test.ts`),
          exclude: ['**/node_modules/**', '**/dist/**'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
      {
        ...common,
        test: {
          name: 'lab',
          include: sources.map((s) => `${s}*.lab.test.ts`),
          // refuses to run outside the controller namespace; takes the lab down at the end
          globalSetup: ['tools/lab/src/global-setup.ts'],
          exclude: ['**/node_modules/**', '**/dist/**'],
          testTimeout: 600_000,
          hookTimeout: 900_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
