import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The repository root (tools/release/src -> ../../..). */
export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

export interface PublicPackage {
  /** the npm name, e.g. `@pe-stack/pe-host` */
  name: string;
  /** the workspace directory relative to the root, e.g. `packages/pe-host` */
  dir: string;
}

/** Every workspace package under packages/ that is not private: what a release publishes. */
export function publicPackages(): PublicPackage[] {
  const found: PublicPackage[] = [];
  for (const entry of readdirSync(`${repoRoot}packages`).sort()) {
    const manifest = `${repoRoot}packages/${entry}/package.json`;
    if (!existsSync(manifest)) continue;
    const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as { name: string; private?: boolean };
    if (!pkg.private) found.push({ name: pkg.name, dir: `packages/${entry}` });
  }
  return found;
}
