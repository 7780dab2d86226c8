import { rmSync } from 'node:fs';
import { validateHostname } from '@pe-stack/pe-host';
import { HOST_NAME_RE, MAX_HOSTS, ctlNs, fqdn, hostIp, type LabConfig } from './config.js';
import { LabError } from './errors.js';
import { bootHost, createHost } from './hosts.js';
import { writeAllHostsFiles } from './hosts-files.js';
import { writeInventoryFiles } from './inventory.js';
import { startLoadBalancer } from './load-balancer.js';
import { ensureController } from './network.js';
import { clusterStateDir, fixtureKeyFile } from './paths.js';
import { checkPrerequisites } from './prereq.js';
import { PROFILE_SPECS, type ProfileSpec } from './profiles.js';
import { assertMaySession } from './session.js';
import { readState, saveState } from './state.js';
import { pool } from './sys.js';
import { leftoverNamespaces } from './teardown.js';
import { ensureKey, ensureMountPoints, ensureTemplate, syncAssets } from './templates.js';
import type { HostRecord, LabHandle, LabState, UpOptions } from './types.js';

/**
 * Brings a lab up: checks the request and this machine, makes the controller,
 * the scripts, the key and the template ready, creates and boots every host,
 * runs the profile's setup, starts the load balancer and writes the inventory.
 */
export async function up(lab: LabHandle, opts: UpOptions): Promise<LabState> {
  const c = lab.config;
  const log = opts.log ?? (() => {});
  const { spec, masters, names } = checkRequest(c, opts);
  await checkPrerequisites(opts.profile, { withMcollective: !!opts.withMcollective });
  assertMaySession(c);
  if (readState(c) || (await leftoverNamespaces(c)).some((n) => n !== ctlNs(c))) {
    throw new LabError('E_LAB_ALREADY_UP', 'a lab is already up (or a crashed one left pieces behind).', {
      hint: 'Take it down first with `npm run lab -- down`.',
    });
  }

  const t0 = Date.now();
  await ensureController(c);
  await syncAssets(c);
  rmSync(clusterStateDir(c), { recursive: true, force: true });
  // a lab brought up by hand or by another test is not the one a shared fixture recorded (fixture.ts)
  rmSync(fixtureKeyFile(c), { force: true });
  await ensureKey(c);
  await ensureTemplate(c, opts.profile, spec, log);

  const state = initialState(c, opts, masters, names);
  saveState(c, state);
  writeAllHostsFiles(c, state);
  await bootAll(c, state, spec, log, t0);

  await spec.setup(lab, state, log);
  await startLoadBalancer(c, state, spec);
  state.phase = 'up';
  saveState(c, state);
  writeInventoryFiles(c);
  log(`lab up in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return state;
}

/** The profile and the host names asked for, checked: usage errors before anything is touched. */
function checkRequest(c: LabConfig, opts: UpOptions): { spec: ProfileSpec; masters: string[]; names: string[] } {
  const spec = PROFILE_SPECS[opts.profile];
  if (!spec)
    throw new LabError(
      'E_LAB_USAGE',
      `profile "${String(opts.profile)}" is not available; built profiles: ${Object.keys(PROFILE_SPECS).join(', ')}.`,
    );
  const masters = [...(opts.hosts ?? spec.defaultHosts)];
  const agents = opts.agents ?? spec.defaultAgents;
  if (!Number.isInteger(agents) || agents < 0)
    throw new LabError('E_LAB_USAGE', `--agents must be a whole number, got ${agents}.`);
  const names = [...masters, ...Array.from({ length: agents }, (_, i) => `agent${i + 1}`)];
  if (names.length === 0) throw new LabError('E_LAB_USAGE', 'the lab needs at least one host.');
  if (names.length > MAX_HOSTS)
    throw new LabError('E_LAB_USAGE', `at most ${MAX_HOSTS} hosts, asked for ${names.length}.`);
  for (const n of names) {
    if (!HOST_NAME_RE.test(n) || n === 'ctl') {
      throw new LabError(
        'E_LAB_USAGE',
        `bad host name "${n}": use 1-12 lowercase letters and digits, starting with a letter (not "ctl").`,
      );
    }
    validateHostname(fqdn(c, n));
  }
  if (new Set(names).size !== names.length)
    throw new LabError('E_LAB_USAGE', `host names repeat: ${names.join(', ')}.`);
  return { spec, masters, names };
}

/** The state of a lab being booted: masters first (the first is the primary), then agents. */
function initialState(c: LabConfig, opts: UpOptions, masters: readonly string[], names: readonly string[]): LabState {
  const hosts: HostRecord[] = names.map((name, index) => ({
    name,
    fqdn: fqdn(c, name),
    ip: hostIp(c, index),
    role: index === 0 && masters.length > 0 ? 'primary' : index < masters.length ? 'secondary' : 'agent',
    index,
  }));
  return {
    profile: opts.profile,
    phase: 'booting',
    createdAt: new Date().toISOString(),
    withMcollective: !!opts.withMcollective,
    cnameHost: masters[0],
    hosts,
  };
}

/** Creates and boots every host, eight at a time. */
async function bootAll(
  c: LabConfig,
  state: LabState,
  spec: ProfileSpec,
  log: (l: string) => void,
  t0: number,
): Promise<void> {
  ensureMountPoints(c, spec);
  log(`booting ${state.hosts.length} ${state.profile} hosts`);
  await pool(state.hosts, 8, async (h) => {
    await createHost(c, h, spec);
    await bootHost(c, h);
  });
  log(`hosts booted in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}
