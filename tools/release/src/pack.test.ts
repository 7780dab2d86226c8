import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { publicPackages, repoRoot } from './public-packages.js';

const run = promisify(execFile);

interface PackedFile {
  path: string;
  size: number;
}
interface PackResult {
  name: string;
  size: number;
  unpackedSize: number;
  files: PackedFile[];
}

const packages = publicPackages();
const packs = new Map<string, PackResult>();

// What a user needs and nothing else: built modules, their types and maps, the sources the maps point at,
// and the package's documents. pe-cluster also ships the guard script it installs on every master.
const allowed = /^(dist\/.+\.(js|d\.ts)(\.map)?|src\/.+\.ts|README\.md|LICENSE|CHANGELOG\.md|package\.json)$/;
const allowedExtra: Record<string, RegExp> = { '@pe-stack/pe-cluster': /^assets\/[\w.-]+\.sh$/ };
const testOnly = /test|testing|sshd|demo|fixtures|tsbuildinfo/;

beforeAll(async () => {
  // pe-cluster's project references every other public package: one incremental build covers them all.
  await run('npx', ['tsc', '-b', 'packages/pe-cluster'], { cwd: repoRoot });
  const workspaces = packages.flatMap((p) => ['-w', p.dir]);
  const { stdout } = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts', ...workspaces], {
    cwd: repoRoot,
    maxBuffer: 64 * 1024 * 1024,
  });
  for (const result of JSON.parse(stdout) as PackResult[]) packs.set(result.name, result);
}, 180_000);

describe('npm pack of each public package', () => {
  it('finds the seven public packages', () => {
    expect(packages.map((p) => p.name)).toEqual([
      '@pe-stack/pe-certs',
      '@pe-stack/pe-cluster',
      '@pe-stack/pe-config-files',
      '@pe-stack/pe-db',
      '@pe-stack/pe-host',
      '@pe-stack/pe-mcollective',
      '@pe-stack/pe-steps',
    ]);
  });

  for (const { name, dir } of packages) {
    describe(name, () => {
      const paths = () => (packs.get(name)?.files ?? []).map((f) => f.path);

      it('lists only built modules, types, maps, sources and documents', () => {
        const extra = allowedExtra[name];
        const unexpected = paths().filter((p) => !allowed.test(p) && !extra?.test(p));
        expect(unexpected).toEqual([]);
      });

      it('ships nothing test-only and no build state', () => {
        expect(paths().filter((p) => testOnly.test(p))).toEqual([]);
      });

      it('ships its entry point, types, README, LICENSE and package.json', () => {
        expect(paths()).toEqual(
          expect.arrayContaining(['dist/index.js', 'dist/index.d.ts', 'README.md', 'LICENSE', 'package.json']),
        );
      });

      it('ships the source of every built module, so the source maps resolve', () => {
        const built = paths().filter((p) => p.startsWith('dist/') && p.endsWith('.js'));
        const missing = built
          .map((p) => p.replace(/^dist\/(.+)\.js$/, 'src/$1.ts'))
          .filter((s) => !paths().includes(s));
        expect(missing).toEqual([]);
      });

      it('ships every file its exports and bin name', () => {
        const pkg = JSON.parse(readFileSync(`${repoRoot}${dir}/package.json`, 'utf8')) as {
          exports: Record<string, string | Record<string, string>>;
          bin?: Record<string, string>;
        };
        const targets = Object.values(pkg.exports).flatMap((t) => (typeof t === 'string' ? [t] : Object.values(t)));
        const named = [...targets, ...Object.values(pkg.bin ?? {})].map((t) => t.replace(/^\.\//, ''));
        expect(named.filter((t) => !paths().includes(t))).toEqual([]);
      });

      it('carries the root LICENSE unchanged', () => {
        expect(readFileSync(`${repoRoot}${dir}/LICENSE`, 'utf8')).toBe(readFileSync(`${repoRoot}LICENSE`, 'utf8'));
      });
    });
  }
});
