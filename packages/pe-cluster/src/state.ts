import { randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  fchmodSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  realpathSync,
  renameSync,
  statSync,
  type Stats,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { FenceRegistry, type FenceRecord } from '@pe-stack/pe-db';
import { UnsafeStateError } from './errors.js';
import type { Inventory, InventoryNode } from './inventory.js';

/**
 * What failover changes about the cluster that the inventory file does not
 * say: who is primary now, which master is the warm standby (and the CA copy
 * it holds), which former primaries are fenced until `rejoin`. Kept on the
 * controller beside the journals (`<state>/<cluster>.state.json`, 0600),
 * written atomically. The inventory file stays the operator's.
 */
export interface ClusterState {
  version: 1;
  /** The master that is primary now, when it is not the inventory's. */
  primary?: string | undefined;
  standby?: StandbyState | undefined;
  fenced: FencedHost[];
  /** The failover in progress or last done (its decision survives a crash of the CLI: --resume reads it). */
  failover?: FailoverDecision | undefined;
}

export interface StandbyState {
  host: string;
  synchronous: boolean;
  since: string;
  /** The last verified CA copy pushed to the standby. */
  caSync?: { at: string; archive: string; archiveSha256: string; files: Record<string, string> } | undefined;
}

export interface FencedHost {
  host: string;
  at: string;
  how: 'stopped' | 'unreachable';
  newPrimary: string;
}

export interface FailoverDecision {
  from: string;
  to: string;
  mode: 'planned' | 'emergency';
  decidedAt: string;
  acceptDataLoss: boolean;
  /** Why the data is safe (or that the loss was accepted), in words. */
  why: string;
  /** A named CA backup to take over from (emergency). */
  caBackup?: string | undefined;
  completedAt?: string | undefined;
}

export function stateDir(inv: Pick<Inventory, 'journalDir'>): string {
  return dirname(inv.journalDir);
}

/** A file of this cluster's in the state directory: `<cluster><suffix>`, the name made safe for a path. */
function clusterFile(inv: Pick<Inventory, 'journalDir' | 'cluster'>, suffix: string): string {
  return join(stateDir(inv), `${inv.cluster.replace(/[^A-Za-z0-9._-]/g, '_')}${suffix}`);
}

export function statePath(inv: Pick<Inventory, 'journalDir' | 'cluster'>): string {
  return clusterFile(inv, '.state.json');
}

/** pe-db's registry of fences set while a host was unreachable, written as the state file is (writePrivateFile). */
export function fenceRegistry(inv: Pick<Inventory, 'journalDir' | 'cluster'>): FenceRegistry {
  return new PrivateFenceRegistry(clusterFile(inv, '.fences.json'));
}

const sameFence = (a: FenceRecord, host: string, dataDir: string) => a.host === host && a.dataDir === dataDir;

/** FenceRegistry whose writes go through writePrivateFile (pe-db's own save uses a predictable temp name). */
class PrivateFenceRegistry extends FenceRegistry {
  override async record(rec: FenceRecord): Promise<void> {
    const all = (await this.list()).filter((r) => !sameFence(r, rec.host, rec.dataDir));
    all.push(rec);
    writePrivateFile(this.path, `${JSON.stringify(all, null, 2)}\n`);
  }

  override async clear(host: string, dataDir: string): Promise<boolean> {
    const all = await this.list();
    const rest = all.filter((r) => !sameFence(r, host, dataDir));
    if (rest.length === all.length) return false;
    writePrivateFile(this.path, `${JSON.stringify(rest, null, 2)}\n`);
    return true;
  }
}

const GROUP_OR_OTHER_WRITE = 0o022;
const STICKY = 0o1000;

function octal(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0');
}

function statDir(dir: string): Stats {
  const st = statSync(dir);
  if (!st.isDirectory()) throw new UnsafeStateError(dir, `${dir} is not a directory.`, 'Point state: at a directory.');
  return st;
}

/** The directory pe-cluster writes in: the user's own, writable by no one else. */
function checkOwnDir(dir: string, uid: number): void {
  const st = statDir(dir);
  if (st.uid !== uid)
    throw new UnsafeStateError(
      dir,
      `the state directory ${dir} is owned by uid ${st.uid}, not by the user running pe-cluster (uid ${uid}).`,
      `Run pe-cluster as that user, or make the directory yours: chown ${uid} ${dir}`,
    );
  if ((st.mode & GROUP_OR_OTHER_WRITE) !== 0)
    throw new UnsafeStateError(
      dir,
      `the state directory ${dir} (mode ${octal(st.mode)}) can be written by its group or by others, who could swap the files pe-cluster writes there.`,
      `Restrict it: chmod go-w ${dir} (pe-cluster makes its own directories 0700).`,
    );
}

/** A directory above it: owned by root or the user, writable by no one else unless sticky (as /tmp). */
function checkAncestor(dir: string, below: string, uid: number): void {
  const st = statDir(dir);
  const loose = (st.mode & GROUP_OR_OTHER_WRITE) !== 0 && (st.mode & STICKY) === 0;
  if ((st.uid === uid || st.uid === 0) && !loose) return;
  const who = st.uid === uid || st.uid === 0 ? `mode ${octal(st.mode)}: its group or others` : `uid ${st.uid}`;
  throw new UnsafeStateError(
    dir,
    `${dir}, above the state directory ${below}, can be changed by another user (${who}), who could swap the state directory.`,
    'Keep the state directory (state:, journals:, audit_log: in the inventory) below directories only root and you can write, e.g. the default ~/.local/state/pe-cluster.',
  );
}

/**
 * Makes `dir` (0700) when missing and refuses it unless it is the user's own,
 * writable by no one else, below directories no other user can rename or
 * replace (each owned by root or the user, not writable by others unless
 * sticky, as /tmp). Throws UnsafeStateError (E_STATE_UNSAFE) with the command
 * that fixes it.
 */
export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const uid = process.getuid?.();
  if (uid === undefined) return; // no owners to compare (Windows)
  const real = realpathSync(dir);
  checkOwnDir(real, uid);
  for (let d = real; dirname(d) !== d;) {
    d = dirname(d);
    checkAncestor(d, real, uid);
  }
}

/**
 * The directories a run appends to (journals, the audit log: pe-steps opens
 * them by path), checked as the state directory is, before anything runs.
 */
export function ensureRunDirs(inv: Pick<Inventory, 'journalDir' | 'auditLog'>): void {
  ensurePrivateDir(inv.journalDir);
  ensurePrivateDir(dirname(inv.auditLog));
}

/**
 * Writes a controller file (state, fences) atomically and without following
 * a link: the directory is checked (ensurePrivateDir); the data goes to a new
 * file with an unpredictable name, created with O_CREAT|O_EXCL|O_NOFOLLOW and
 * mode 0600, fsynced, then renamed over `path` (rename replaces a link itself,
 * never its target); the directory is fsynced so the rename survives a crash.
 */
export function writePrivateFile(path: string, data: string): void {
  const dir = dirname(path);
  ensurePrivateDir(dir);
  const tmp = join(dir, `.${basename(path)}.${randomBytes(12).toString('hex')}.tmp`);
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    try {
      fchmodSync(fd, 0o600); // the umask only removes bits; this states them
      writeSync(fd, data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      // already renamed or gone
    }
    throw e;
  }
  syncDir(dir);
}

function syncDir(dir: string): void {
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export function readState(inv: Pick<Inventory, 'journalDir' | 'cluster'>): ClusterState {
  try {
    const s = JSON.parse(readFileSync(statePath(inv), 'utf8')) as ClusterState;
    return { ...s, fenced: s.fenced ?? [] };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, fenced: [] };
    throw e;
  }
}

export function writeState(inv: Pick<Inventory, 'journalDir' | 'cluster'>, s: ClusterState): void {
  writePrivateFile(statePath(inv), `${JSON.stringify(s, null, 2)}\n`);
}

export function updateState(
  inv: Pick<Inventory, 'journalDir' | 'cluster'>,
  fn: (s: ClusterState) => void,
): ClusterState {
  const s = readState(inv);
  fn(s);
  writeState(inv, s);
  return s;
}

/**
 * The inventory as the cluster is now: when a failover made another master
 * primary, that master has the role `primary` (and comes first) and the
 * former primary is a secondary (fenced until rejoin: see `fencedHosts`).
 * Without a state file the inventory is returned unchanged.
 */
export function applyClusterState(inv: Inventory): Inventory {
  let s: ClusterState;
  try {
    s = readState(inv);
  } catch {
    return inv;
  }
  if (!s.primary || s.primary === inv.primary.name) return inv;
  const next = inv.masters.find((m) => m.name === s.primary);
  if (!next) return inv;
  const masters: InventoryNode[] = inv.masters.map((m) =>
    m === next ? { ...m, role: 'primary' } : m.role === 'primary' ? { ...m, role: 'secondary' } : m,
  );
  const primary = masters.find((m) => m.name === s.primary)!;
  return { ...inv, primary, masters: [primary, ...masters.filter((m) => m !== primary)] };
}

export function fencedHosts(inv: Inventory): FencedHost[] {
  try {
    return readState(inv).fenced;
  } catch {
    return [];
  }
}
