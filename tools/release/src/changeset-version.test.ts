import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publicPackages, repoRoot } from './public-packages.js';

const run = promisify(execFile);

interface Manifest {
  name: string;
  version: string;
  private?: boolean;
  dependencies?: Record<string, string>;
}

// `changeset version` on a throwaway copy of the manifests and changesets: the release the pending changesets
// would make, without touching the tree.
let copy: string;
const manifests: string[] = [];

beforeAll(async () => {
  copy = mkdtempSync(join(tmpdir(), 'pe-changeset-dry-'));
  cpSync(join(repoRoot, '.changeset'), join(copy, '.changeset'), { recursive: true });
  cpSync(join(repoRoot, 'package.json'), join(copy, 'package.json'));
  for (const area of ['packages', 'tools']) {
    for (const dir of readdirSync(join(repoRoot, area))) {
      const manifest = join(area, dir, 'package.json');
      if (!existsSync(join(repoRoot, manifest))) continue;
      cpSync(join(repoRoot, manifest), join(copy, manifest));
      manifests.push(manifest);
    }
  }
  symlinkSync(join(repoRoot, 'node_modules'), join(copy, 'node_modules'));
  await run(join(repoRoot, 'node_modules/.bin/changeset'), ['version'], { cwd: copy });
}, 120_000);

afterAll(() => {
  if (copy) rmSync(copy, { recursive: true, force: true });
});

const read = (manifest: string) => JSON.parse(readFileSync(join(copy, manifest), 'utf8')) as Manifest;

/** The pending changesets: each file's package -> bump lines from its front matter. */
function pendingChangesets(): { file: string; bumps: [string, string][] }[] {
  const dir = join(repoRoot, '.changeset');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.md') && f !== 'README.md')
    .map((file) => {
      const front = /^---\n([\s\S]*?)\n---/.exec(readFileSync(join(dir, file), 'utf8'))?.[1] ?? '';
      const bumps = [...front.matchAll(/^["']?([^"':]+)["']?:\s*(\w+)\s*$/gm)].map(
        (m) => [m[1]!, m[2]!] as [string, string],
      );
      return { file, bumps };
    });
}

describe('the pending changesets', () => {
  it('name only public packages, each with a minor or patch bump (a major would release 1.0.0)', () => {
    const publicNames = new Set(publicPackages().map((p) => p.name));
    const wrong = pendingChangesets().flatMap(({ file, bumps }) =>
      bumps.length === 0
        ? [`${file}: no package`]
        : bumps
            .filter(([name, bump]) => !publicNames.has(name) || !['minor', 'patch'].includes(bump))
            .map(([name, bump]) => `${file}: ${name} ${bump}`),
    );
    expect(wrong).toEqual([]);
  });
});

describe('the release the pending changesets make', () => {
  it('releases every public package together at 0.1.0, with internal dependencies on 0.1.0', () => {
    const publicNames = new Set(publicPackages().map((p) => p.name));
    for (const { dir } of publicPackages()) {
      const pkg = read(join(dir, 'package.json'));
      expect(pkg.version, pkg.name).toBe('0.1.0');
      const internal = Object.entries(pkg.dependencies ?? {}).filter(([name]) => publicNames.has(name));
      for (const [name, range] of internal) expect(range, `${pkg.name} -> ${name}`).toBe('0.1.0');
    }
  });

  it('writes a CHANGELOG with a 0.1.0 section for every public package and none for a private one', () => {
    for (const manifest of manifests) {
      const pkg = read(manifest);
      const changelog = join(copy, dirname(manifest), 'CHANGELOG.md');
      if (pkg.private) {
        expect(existsSync(changelog), pkg.name).toBe(false);
        expect(pkg.version, pkg.name).toBe(JSON.parse(readFileSync(join(repoRoot, manifest), 'utf8')).version);
      } else {
        expect(readFileSync(changelog, 'utf8'), pkg.name).toMatch(new RegExp(`^# ${pkg.name}\\n\\n## 0\\.1\\.0\\n`));
      }
    }
  });
});
