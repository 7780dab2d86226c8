import type { BatchWrite, Host, Redactor, WriteResult } from '@pe-stack/pe-host';
import { PeError, validateHostname, writeFiles } from '@pe-stack/pe-host';
import { layouts, type Layout } from '@pe-stack/pe-config-files';
import { editors, readText } from './editors.js';
import { DbConfigError } from './errors.js';

/** Where one service keeps its database settings. */
export interface ServiceDbFile {
  /** puppetdb | console | console-auth */
  service: string;
  path: string;
  format: 'ini' | 'yaml';
  /** INI section (`database`) or YAML environment (`production`). */
  section: string;
  /** For a file we have to create. */
  owner?: string;
  group?: string;
}

/**
 * The services whose database settings a layout names: PuppetDB's
 * database.ini ([database]); in pe3 also the console's and console-auth's
 * database.yml (production).
 */
export function dbFilesFromLayout(layout: Layout): ServiceDbFile[] {
  const out: ServiceDbFile[] = [];
  const spec = (
    service: string,
    key: 'puppetdbDatabaseIni' | 'consoleDatabaseYml' | 'consoleAuthDatabaseYml',
    format: 'ini' | 'yaml',
    section: string,
  ) => {
    const f = layout.files[key];
    if (f) out.push({ service, path: f.path, format, section, owner: f.owner, group: f.group });
  };
  spec('puppetdb', 'puppetdbDatabaseIni', 'ini', 'database');
  spec('console', 'consoleDatabaseYml', 'yaml', 'production');
  spec('console-auth', 'consoleAuthDatabaseYml', 'yaml', 'production');
  return out;
}

export const PE3_DB_FILES: readonly ServiceDbFile[] = dbFilesFromLayout(layouts.pe3);
export const DEBIAN_DB_FILES: readonly ServiceDbFile[] = dbFilesFromLayout(layouts.debian);

/** One service's database settings. `password` is a secret: it lives in memory only. */
export interface DbCredentials {
  service: string;
  file: string;
  server: string;
  port: number;
  database: string;
  user: string;
  password: string;
}

const SUBNAME = /^\/\/(\[[^\]]+\]|[^/:?]+)(?::(\d+))?\/([^?]+)(\?.*)?$/;

/** PuppetDB's JDBC subname `//host:port/db?params`. */
export function parseSubname(
  subname: string,
): { server: string; port: number; database: string; params: string } | undefined {
  const m = SUBNAME.exec(subname.trim());
  if (!m) return undefined;
  return {
    server: m[1]!.replace(/^\[|\]$/g, ''),
    port: m[2] ? Number(m[2]) : 5432,
    database: m[3]!,
    params: m[4] ?? '',
  };
}

function formatServer(server: string): string {
  return server.includes(':') ? `[${server}]` : server;
}

/** Rethrow with every known secret masked: errors travel to logs and journals. */
function scrub(e: unknown, red: Redactor, host: string, what: string): never {
  const msg = red.redact(e instanceof Error ? e.message : String(e));
  const causeSafe =
    e instanceof Error &&
    red.redact(e.message) === e.message &&
    red.redact(String(e.stack ?? '')) === String(e.stack ?? '');
  if (e instanceof PeError && causeSafe) throw e;
  throw new DbConfigError(host, `${what}: ${msg}`, undefined, causeSafe ? e : undefined);
}

function str(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  return undefined;
}

/** Reads one service's settings; undefined when the file does not exist. */
export async function readServiceCredentials(host: Host, f: ServiceDbFile): Promise<DbCredentials | undefined> {
  if (!(await host.exists(f.path, { sudo: true }))) return undefined;
  const text = await readText(host, f.path);
  const missing = (what: string): never => {
    throw new DbConfigError(
      host.name,
      `${f.path} has no ${what} for ${f.service}.`,
      `Complete ${f.path} on ${host.name} (the service cannot run without it).`,
    );
  };
  try {
    if (f.format === 'ini') {
      const doc = editors.ini(text, f.path);
      const password = doc.get(f.section, 'password') ?? missing(`[${f.section}] password`);
      host.redactor.add(password);
      const subname = doc.get(f.section, 'subname') ?? missing(`[${f.section}] subname`);
      const sn = parseSubname(subname) ?? missing(`PostgreSQL subname (//host:port/database) in [${f.section}]`);
      const user = doc.get(f.section, 'username') ?? missing(`[${f.section}] username`);
      return {
        service: f.service,
        file: f.path,
        server: sn.server,
        port: sn.port,
        database: sn.database,
        user,
        password,
      };
    }
    const doc = editors.yaml(text, f.path);
    const password = str(doc.get([f.section, 'password'])) ?? missing(`${f.section}.password`);
    host.redactor.add(password);
    return {
      service: f.service,
      file: f.path,
      server: str(doc.get([f.section, 'host'])) ?? 'localhost',
      port: Number(str(doc.get([f.section, 'port'])) ?? 5432),
      database: str(doc.get([f.section, 'database'])) ?? missing(`${f.section}.database`),
      user: str(doc.get([f.section, 'username'])) ?? missing(`${f.section}.username`),
      password,
    };
  } catch (e) {
    scrub(e, host.redactor, host.name, `cannot read the database settings of ${f.service} from ${f.path}`);
  }
}

/**
 * Reads every service's database name, user and password from the primary.
 * Passwords are registered with the host's redactor at once, so no later
 * message, plan or journal line shows them.
 */
export async function readCredentials(primary: Host, files: readonly ServiceDbFile[]): Promise<DbCredentials[]> {
  const out: DbCredentials[] = [];
  for (const f of files) {
    const c = await readServiceCredentials(primary, f);
    if (!c)
      throw new DbConfigError(
        primary.name,
        `${f.path} does not exist, so the ${f.service} database settings cannot be read.`,
        `Is ${primary.name} the primary, and is ${f.service} installed there?`,
      );
    out.push(c);
  }
  return out;
}

export interface WriteCredentialsOptions {
  /** The name every secondary uses for the primary's PostgreSQL (primary_cname). */
  server: string;
  /** Default: each credential's own port. */
  port?: number;
}

/** The new file content for one service, pointing at server:port with the given credentials. */
export function renderServiceFile(
  f: ServiceDbFile,
  current: string | undefined,
  c: DbCredentials,
  server: string,
  port: number,
): string {
  if (f.format === 'ini') {
    const doc = editors.ini(current ?? '', f.path);
    const old = parseSubname(doc.get(f.section, 'subname') ?? '');
    // keep this host's own JDBC parameters (its ssl key and cert paths are its own)
    const subname = `//${formatServer(server)}:${port}/${c.database}${old?.params ?? ''}`;
    if (current === undefined || current.trim() === '') {
      doc.set(f.section, 'classname', 'org.postgresql.Driver');
      doc.set(f.section, 'subprotocol', 'postgresql');
    }
    doc.set(f.section, 'subname', subname);
    doc.set(f.section, 'username', c.user);
    doc.set(f.section, 'password', c.password);
    // a read pool, when configured, reads from the same database
    const read = doc.get('read-database', 'subname');
    const rsn = read === undefined ? undefined : parseSubname(read);
    if (rsn) doc.set('read-database', 'subname', `//${formatServer(server)}:${port}/${c.database}${rsn.params}`);
    return doc.toString();
  }
  const doc = editors.yaml(current ?? `${f.section}:\n  adapter: postgresql\n`, f.path);
  doc.set([f.section, 'adapter'], 'postgresql');
  doc.set([f.section, 'database'], c.database);
  doc.set([f.section, 'username'], c.user);
  doc.set([f.section, 'password'], c.password);
  doc.set([f.section, 'host'], server);
  doc.set([f.section, 'port'], port);
  return doc.toString();
}

/**
 * Writes each service's database settings into a secondary's files, pointing
 * at the primary's name. Lossless edits, atomic writes with a backup, no-op
 * when already so; the password is masked in any plan (DryRunHost) and error.
 */
export async function writeCredentials(
  secondary: Host,
  files: readonly ServiceDbFile[],
  creds: readonly DbCredentials[],
  opts: WriteCredentialsOptions,
): Promise<WriteResult[]> {
  validateHostname(opts.server);
  const writes: BatchWrite[] = [];
  for (const c of creds) secondary.redactor.add(c.password);
  for (const f of files) {
    const c = creds.find((x) => x.service === f.service);
    if (!c)
      throw new DbConfigError(
        secondary.name,
        `no credentials were read for ${f.service}.`,
        'Read them from the primary first (readCredentials).',
      );
    try {
      const exists = await secondary.exists(f.path, { sudo: true });
      const current = exists ? await readText(secondary, f.path) : undefined;
      if (!exists) await secondary.mkdir(f.path.slice(0, f.path.lastIndexOf('/')) || '/', { sudo: true });
      const next = renderServiceFile(f, current, c, opts.server, opts.port ?? c.port);
      writes.push({
        path: f.path,
        data: next,
        opts: {
          backup: true,
          secrets: [c.password],
          ...(exists
            ? {}
            : { mode: 0o640, ...(f.owner ? { owner: f.owner } : {}), ...(f.group ? { group: f.group } : {}) }),
        },
      });
    } catch (e) {
      scrub(
        e,
        secondary.redactor.with([c.password]),
        secondary.name,
        `cannot write the database settings of ${f.service} to ${f.path}`,
      );
    }
  }
  // every file in one round trip where the host can (pe-host writeFiles), each atomic with its backup
  try {
    return await writeFiles(secondary, writes);
  } catch (e) {
    scrub(
      e,
      secondary.redactor.with(creds.map((c) => c.password)),
      secondary.name,
      `cannot write the database settings to ${files.map((f) => f.path).join(', ')}`,
    );
  }
}

/** After a promotion: the services on `host` keep their credentials but use `server` (usually the host itself). */
export async function pointServicesAt(
  host: Host,
  files: readonly ServiceDbFile[],
  server: string,
  port?: number,
): Promise<WriteResult[]> {
  const present: ServiceDbFile[] = [];
  const creds: DbCredentials[] = [];
  for (const f of files) {
    const c = await readServiceCredentials(host, f);
    if (c) {
      present.push(f);
      creds.push(c);
    }
  }
  return writeCredentials(host, present, creds, { server, ...(port ? { port } : {}) });
}
