import { readdirSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

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
const sources = ['packages/*/src/**/', 'tools/*/src/**/'];

// Three tagged suites, by file name:
//   *.test.ts       unit: fast, no root, no lab
//   *.root.test.ts  root: needs root and installed Debian packages (sshd, sudo, PostgreSQL), loopback only
//   *.lab.test.ts   lab:  needs the namespace lab (tools/lab); brings its profiles up once per run
export default defineConfig({
  test: {
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
