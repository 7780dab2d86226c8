import type { Host } from '@pe-stack/pe-host';
import { InvalidInputError, validateRemotePath } from '@pe-stack/pe-host';
import { DbError } from './errors.js';
import { asDbUser, isRunning, type PgInstance } from './instance.js';

export interface InitClusterOptions {
  /** An empty or absent directory; it gets data/, conf/, sock/ and server.log. */
  dir: string;
  port: number;
  /** Default: /usr/lib/postgresql/15/bin */
  binDir?: string;
  osUser?: string;
  /** Addresses to listen on; default 127.0.0.1 (loopback only). */
  listen?: string;
  /** Extra postgresql.conf lines. */
  settings?: Record<string, string | number>;
  /** Page checksums (they let pg_rewind work without wal_log_hints). Default true. */
  checksums?: boolean;
  /** initdb --no-sync: faster, fine for a throwaway cluster (default true). */
  noSync?: boolean;
  /** postgresql.conf and pg_hba.conf inside the data directory, as PE 3's pe-postgresql keeps them. Default false (Debian-like). */
  configInDataDir?: boolean;
}

/** Where initCluster puts things, and as whom. */
interface ClusterLayout {
  dir: string;
  data: string;
  conf: string;
  sock: string;
  /** The directory of postgresql.conf and pg_hba.conf: conf/, or data/ when configInDataDir. */
  cfgDir: string;
  binDir: string;
  osUser: string;
}

function clusterLayout(o: InitClusterOptions): ClusterLayout {
  const dir = validateRemotePath(o.dir.replace(/\/+$/, ''));
  const data = `${dir}/data`;
  const conf = `${dir}/conf`;
  return {
    dir,
    data,
    conf,
    sock: `${dir}/sock`,
    cfgDir: o.configInDataDir === true ? data : conf,
    binDir: o.binDir ?? '/usr/lib/postgresql/15/bin',
    osUser: o.osUser ?? 'postgres',
  };
}

/** dir, conf/ and sock/ owned by the OS user (sock/ closed to others), and proof that the OS user reaches them. */
async function makeClusterDirs(host: Host, l: ClusterLayout): Promise<void> {
  for (const d of [l.dir, l.conf, l.sock]) {
    await host.mkdir(d, { mode: 0o755, sudo: true });
  }
  await host.exec(['chown', '-R', `${l.osUser}:`, l.dir], { sudo: true });
  await host.exec(['chmod', '0700', l.sock], { sudo: true });
  const reach = await host.exec(asDbUser({ osUser: l.osUser } as PgInstance, ['test', '-w', l.conf]), {
    sudo: true,
    cwd: '/',
    allowFailure: true,
    readOnly: true,
  });
  if (reach.code !== 0) {
    throw new DbError('E_PERMISSION', `${l.osUser} cannot reach ${l.dir}: a parent directory is closed to it.`, {
      host: host.name,
      hint: `Make every parent of ${l.dir} searchable by ${l.osUser} (chmod o+x).`,
    });
  }
}

async function runInitdb(host: Host, l: ClusterLayout, o: InitClusterOptions): Promise<void> {
  await host.exec(
    asDbUser({ osUser: l.osUser } as PgInstance, [
      `${l.binDir}/initdb`,
      '-D',
      l.data,
      '-U',
      'postgres',
      '--auth-local=peer',
      '--auth-host=reject',
      '-E',
      'UTF8',
      '--locale=C.UTF-8',
      ...(o.checksums === false ? [] : ['--data-checksums']),
      ...(o.noSync === false ? [] : ['--no-sync']),
    ]),
    { sudo: true, cwd: '/', timeoutMs: 120_000 },
  );
}

/** postgresql.conf's text: the paths (unless the configuration is in the data directory), port, listen, ours, then o.settings. */
function clusterConfText(l: ClusterLayout, o: InitClusterOptions): string {
  const settings: Record<string, string | number> = {
    ...(l.cfgDir === l.data
      ? {}
      : {
          data_directory: `'${l.data}'`,
          hba_file: `'${l.conf}/pg_hba.conf'`,
          ident_file: `'${l.data}/pg_ident.conf'`,
        }),
    port: o.port,
    listen_addresses: `'${o.listen ?? '127.0.0.1'}'`,
    unix_socket_directories: `'${l.sock}'`,
    max_connections: 100,
    shared_buffers: `'32MB'`,
    dynamic_shared_memory_type: 'posix',
    password_encryption: `'scram-sha-256'`,
    log_line_prefix: `'%m [%p] %q%u@%d '`,
    ...(o.settings ?? {}),
  };
  return Object.entries(settings)
    .map(([k, v]) => `${k} = ${v}\n`)
    .join('');
}

/** postgresql.conf, and a pg_hba.conf that allows only the OS user through the Unix socket. */
async function writeClusterConfig(host: Host, l: ClusterLayout, o: InitClusterOptions): Promise<void> {
  await host.writeFile(`${l.cfgDir}/postgresql.conf`, clusterConfText(l, o), {
    owner: l.osUser,
    mode: 0o644,
    backup: false,
  });
  await host.writeFile(
    `${l.cfgDir}/pg_hba.conf`,
    `# TYPE  DATABASE  USER  ADDRESS  METHOD\nlocal   all       ${l.osUser}    peer\n`,
    { owner: l.osUser, mode: 0o640, backup: false },
  );
}

/** The PgInstance of a cluster laid out as `l`, controlled through pg_ctl as the OS user. */
function clusterInstance(host: Host, l: ClusterLayout, port: number): PgInstance {
  const ctl = `${l.binDir}/pg_ctl`;
  const asUser = (argv: string[]) => asDbUser({ osUser: l.osUser } as PgInstance, argv);
  return {
    host,
    binDir: l.binDir,
    dataDir: l.data,
    confFile: `${l.cfgDir}/postgresql.conf`,
    hbaFile: `${l.cfgDir}/pg_hba.conf`,
    osUser: l.osUser,
    port,
    socketDir: l.sock,
    control: {
      start: asUser([ctl, '-D', l.cfgDir, '-l', `${l.dir}/server.log`, '-w', '-t', '60', 'start']),
      stop: asUser([ctl, '-D', l.cfgDir, '-m', 'fast', '-w', '-t', '60', 'stop']),
      promote: asUser([ctl, '-D', l.cfgDir, '-w', '-t', '60', 'promote']),
    },
  };
}

/**
 * A new PostgreSQL cluster in a directory, laid out like Debian's (data
 * directory apart from the configuration): initdb as the OS user, a
 * postgresql.conf that names the data directory, a pg_hba.conf that allows
 * only the OS user through the Unix socket (every TCP rule is ours to add).
 * Used by the tests, the benchmark and the lab; nothing is started.
 */
export async function initCluster(host: Host, o: InitClusterOptions): Promise<PgInstance> {
  const layout = clusterLayout(o);
  await makeClusterDirs(host, layout);
  await runInitdb(host, layout, o);
  await writeClusterConfig(host, layout, o);
  return clusterInstance(host, layout, o.port);
}

/**
 * Stops a cluster made by initCluster (fast shutdown, then SIGKILL of its own
 * postmaster PID if it does not go) and removes its directory.
 */
export async function destroyCluster(inst: PgInstance): Promise<void> {
  const host = inst.host;
  const dir = inst.dataDir.replace(/\/data$/, '');
  if (dir === inst.dataDir)
    throw new InvalidInputError(`${inst.dataDir} was not made by initCluster; refusing to remove it.`, {
      host: host.name,
    });
  if (await isRunning(inst))
    await host.exec(inst.control.stop, { sudo: true, cwd: '/', allowFailure: true, timeoutMs: 90_000 });
  const pid = await postmasterPid(inst);
  if (pid !== undefined) {
    await host.exec(['kill', '-KILL', String(pid)], { sudo: true, allowFailure: true });
  }
  await host.remove(dir, { recursive: true, sudo: true });
}

/** The postmaster's PID from postmaster.pid, if that process is alive. */
export async function postmasterPid(inst: PgInstance): Promise<number | undefined> {
  const f = `${inst.dataDir}/postmaster.pid`;
  if (!(await inst.host.exists(f, { sudo: true }))) return undefined;
  const pid = Number((await inst.host.readFile(f, { sudo: true })).toString('utf8').split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 1) return undefined;
  const r = await inst.host.exec(['kill', '-0', String(pid)], { sudo: true, allowFailure: true, readOnly: true });
  return r.code === 0 ? pid : undefined;
}
