import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { ASSETS_DIR, type LabConfig, type ProfileName } from './config.js';
import { LabError } from './errors.js';
import { assetsDir, keyFile, mountPointsFile, templateDir } from './paths.js';
import { checkPrerequisites } from './prereq.js';
import { PROFILE_SPECS, type ProfileSpec } from './profiles.js';
import { run, runRoot } from './sys.js';

/**
 * What hosts are made from: the host-side scripts, the lab's ssh key, a
 * profile's template (a copy of this machine's package install) and the
 * mount points its private directories need.
 */

/** Copies the host-side scripts under the state directory, where every host can read them. */
export async function syncAssets(c: LabConfig): Promise<void> {
  mkdirSync(c.stateDir, { recursive: true });
  await runRoot('rm', ['-rf', '--', assetsDir(c)]);
  await runRoot('cp', ['-a', '--', ASSETS_DIR, assetsDir(c)]);
  // services inside the hosts run some scripts as their own users (e.g.
  // pe-postgres): they must reach the copy through a private state dir
  // (traverse only; the key stays in the 0700 ssh/ below it)
  await runRoot('chmod', ['o+x,g+x', '--', c.stateDir]);
  await runRoot('chmod', ['-R', 'a+rX', '--', assetsDir(c)]);
}

/** The lab's ssh key pair (root on every host accepts it), made once. */
export async function ensureKey(c: LabConfig): Promise<void> {
  const key = keyFile(c);
  if (existsSync(key) && existsSync(`${key}.pub`)) return;
  mkdirSync(`${c.stateDir}/ssh`, { recursive: true, mode: 0o700 });
  rmSync(key, { force: true });
  rmSync(`${key}.pub`, { force: true });
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `pe-stack-lab@${c.domain}`, '-f', key]);
}

/** Builds (or reuses) a profile's template, so a timed `up` measures only the bring-up. */
export async function prepareTemplate(c: LabConfig, profile: ProfileName): Promise<void> {
  const spec = PROFILE_SPECS[profile];
  if (!spec) throw new LabError('E_LAB_USAGE', `profile "${profile}" is not available.`);
  await checkPrerequisites(profile);
  await ensureTemplate(c, profile, spec, () => {});
}

export async function ensureTemplate(
  c: LabConfig,
  profile: ProfileName,
  spec: ProfileSpec,
  log: (l: string) => void,
): Promise<void> {
  const dir = templateDir(c, profile);
  const marker = `${dir}.complete`;
  // the post step may link into the scripts (pe3 stand-ins): a template made
  // from another scripts directory is rebuilt
  const want = JSON.stringify({
    version: spec.templateVersion,
    paths: spec.paths,
    post: spec.templatePost ?? null,
    assets: assetsDir(c),
  });
  if (existsSync(marker) && readFileSync(marker, 'utf8') === want) return;
  log(`making the ${profile} template from this machine's package install`);
  rmSync(marker, { force: true });
  mkdirSync(`${c.stateDir}/templates`, { recursive: true });
  await runRoot(
    'unshare',
    ['--mount', '--propagation', 'private', `${ASSETS_DIR}/make-template.sh`, dir, ...spec.paths],
    {
      timeoutMs: 300_000,
    },
  );
  // from the hosts' copy of the scripts: links it makes must resolve inside the hosts
  if (spec.templatePost) await run(`${assetsDir(c)}/${spec.templatePost}`, [dir], { timeoutMs: 120_000 });
  writeFileSync(marker, want);
}

/**
 * A host's private directories are bind-mounted over the machine's; a path
 * the machine lacks (/etc/puppetlabs on a Debian box) gets an empty
 * directory as mount point, recorded so that `down` removes it again.
 */
export function ensureMountPoints(c: LabConfig, spec: ProfileSpec): void {
  const made = createdMountPoints(c);
  for (const p of spec.paths) {
    if (existsSync(p)) continue;
    mkdirSync(p, { mode: 0o755 });
    made.push(p);
  }
  writeFileSync(mountPointsFile(c), made.length ? `${made.join('\n')}\n` : '');
}

export function createdMountPoints(c: LabConfig): string[] {
  try {
    return readFileSync(mountPointsFile(c), 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
}
