import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import { ASSETS_DIR, bridge, ctlNs, hostNs, vethName, type LabConfig } from './config.js';
import { LabError } from './errors.js';
import { writeInPlace } from './hosts-files.js';
import { assetsDir, hostDir, keyFile, templateDir } from './paths.js';
import type { ProfileSpec } from './profiles.js';
import { namespaceInit, pidsInNetns, rootPrefix, run, runRoot, sleep } from './sys.js';
import type { HostRecord } from './types.js';

/**
 * A host: a disk made from the profile's template, a network namespace with a
 * veth on the controller's bridge, and an init running as PID 1 of fresh
 * mount, UTS and PID namespaces.
 */

/** PATH of the clean root environment commands run with inside a host. */
export const ENV_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Host-side PID of the host's init, or undefined when the host is off. */
export function initPid(c: LabConfig, name: string): number | undefined {
  return namespaceInit(pidsInNetns(hostNs(c, name)));
}

/** The host's disk from the template, its /etc/netns files, its namespace and its link to the bridge. */
export async function createHost(c: LabConfig, h: HostRecord, spec: ProfileSpec): Promise<void> {
  const ns = hostNs(c, h.name);
  await run(`${ASSETS_DIR}/make-host.sh`, [
    templateDir(c, spec.name),
    hostDir(c, h.name),
    h.fqdn,
    `${keyFile(c)}.pub`,
    ...spec.paths,
  ]);
  mkdirSync(`/etc/netns/${ns}`, { recursive: true });
  writeInPlace(`/etc/netns/${ns}/hostname`, `${h.fqdn}\n`);
  writeInPlace(`/etc/netns/${ns}/resolv.conf`, `search ${c.domain}\n`);
  await runRoot('ip', ['netns', 'add', ns]);
  const veth = vethName(c, h.index);
  await runRoot('ip', ['-n', ctlNs(c), 'link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
  await runRoot('ip', ['-n', ctlNs(c), 'link', 'set', veth, 'master', bridge(c), 'up']);
  await runRoot('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  await runRoot('ip', ['-n', ns, 'addr', 'add', `${h.ip}/24`, 'dev', 'eth0']);
  await runRoot('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
}

/** Starts the host's init as PID 1 of fresh mount, UTS and PID namespaces, and waits for its sshd. */
export async function bootHost(c: LabConfig, h: HostRecord): Promise<void> {
  const dir = hostDir(c, h.name);
  const ready = `${dir}/ready`;
  rmSync(ready, { force: true });
  const argv = [
    ...rootPrefix(),
    'ip',
    'netns',
    'exec',
    hostNs(c, h.name),
    'unshare',
    '--mount',
    '--uts',
    '--pid',
    '--fork',
    '--mount-proc',
    '--propagation',
    'private',
    `${assetsDir(c)}/init.sh`,
    h.fqdn,
    dir,
    assetsDir(c),
  ];
  const init = startDetached(argv, `${dir}/console.log`);
  const deadline = Date.now() + 30_000;
  while (!existsSync(ready)) {
    if (init.exited !== undefined || Date.now() > deadline) {
      const tail = readFileSync(`${dir}/console.log`, 'utf8').split('\n').slice(-10).join('\n');
      throw new LabError(
        'E_LAB_BOOT',
        `the host did not boot (${init.exited !== undefined ? `init exited ${init.exited}` : 'timeout'}): ${tail}`,
        { host: h.name },
      );
    }
    await sleep(25);
  }
}

/** Spawns argv detached with its output appended to a log; `exited` is set when it exits. */
function startDetached(argv: readonly string[], logFile: string): { exited: number | null | undefined } {
  const state: { exited: number | null | undefined } = { exited: undefined };
  const out = openSync(logFile, 'a');
  try {
    const child = spawn(argv[0]!, argv.slice(1), {
      detached: true,
      stdio: ['ignore', out, out],
      cwd: '/',
      env: { PATH: ENV_PATH, LANG: 'C.UTF-8', HOME: '/root' },
    });
    child.on('exit', (code) => {
      state.exited = code;
    });
    child.unref();
  } finally {
    closeSync(out);
  }
  return state;
}
