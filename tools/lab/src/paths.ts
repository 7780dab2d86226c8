import type { LabConfig, ProfileName } from './config.js';

/** Where the lab keeps its files, all under the state directory. */

export const stateFile = (c: LabConfig): string => `${c.stateDir}/lab.json`;
export const hostDir = (c: LabConfig, name: string): string => `${c.stateDir}/hosts/${name}`;
export const keyFile = (c: LabConfig): string => `${c.stateDir}/ssh/id_ed25519`;
export const knownHostsFile = (c: LabConfig): string => `${c.stateDir}/ssh/known_hosts`;
export const inventoryFile = (c: LabConfig): string => `${c.stateDir}/inventory.yaml`;
export const haproxyConfig = (c: LabConfig): string => `${c.stateDir}/haproxy/haproxy.cfg`;
export const haproxyPidFile = (c: LabConfig): string => `${c.stateDir}/haproxy/haproxy.pid`;
export const haproxySocket = (c: LabConfig): string => `${c.stateDir}/haproxy/admin.sock`;
/** CA bundle the load balancer's health check verifies masters against. */
export const lbCaFile = (c: LabConfig): string => `${c.stateDir}/haproxy/ca.pem`;
export const templateDir = (c: LabConfig, profile: ProfileName): string => `${c.stateDir}/templates/${profile}`;
export const sessionLockFile = (c: LabConfig): string => `${c.stateDir}/session.lock`;
/**
 * The host-side scripts as the hosts see them: a copy under the state
 * directory. A host's /tmp is its own, so scripts run from a checkout under
 * /tmp (as a CI clone may be) would not exist inside the hosts.
 */
export const assetsDir = (c: LabConfig): string => `${c.stateDir}/assets`;
/** pe-cluster's journals, cluster state and backups for this lab (see inventory.ts); emptied by every `up`. */
export const clusterStateDir = (c: LabConfig): string => `${c.stateDir}/pe-cluster`;
/** Mount points `up` had to create on this machine, for `down` to remove. */
export const mountPointsFile = (c: LabConfig): string => `${c.stateDir}/created-mount-points`;
/** The shared test fixture's record of which lab it brought up (fixture.ts). */
export const fixtureKeyFile = (c: LabConfig): string => `${c.stateDir}/fixture.key`;
