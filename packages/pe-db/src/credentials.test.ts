import { rmSync, statSync, mkdtempSync, mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { DryRunHost, LocalHost, MASK, Redactor } from '@pe-stack/pe-host';
import {
  DEBIAN_DB_FILES,
  credentialsCurrent,
  PE3_DB_FILES,
  parseSubname,
  pointServicesAt,
  readCredentials,
  readServiceCredentials,
  writeCredentials,
  type ServiceDbFile,
} from './index.js';

const root = mkdtempSync(join(tmpdir(), 'pe-db-cred-'));
const CORPUS = join(process.cwd(), '..', 'shared', 'corpus');
const PRIMARY_INI_PW = 'Pr1mary-PuppetDB-pw_9xQ';
const CONSOLE_PW = 'C0nsole-Secret-zz8';
const AUTH_PW = 'AuthS3cret-Ab12';

const primaryIni = `[database]
# For PostgreSQL: //host:port/databaseName
classname = org.postgresql.Driver
subprotocol = postgresql
subname = //localhost:5432/pe-puppetdb

# Connect as a specific user
username = pe-puppetdb
password = ${PRIMARY_INI_PW}
gc-interval = 60
`;
const primaryConsole = `common: &common
    database: console
    username: console
    password: '${CONSOLE_PW}'
    host: localhost
    port: 5432
    adapter: postgresql

development:
    <<: *common

production:
    <<: *common
`;
const primaryAuth = `production:
  adapter: postgresql
  database: console_auth
  timeout: 5000
  username: console_auth
  password: '${AUTH_PW}'
  host: localhost
  port: 5432
`;
// the secondary's own files, from its own installation: its own local database and its ssl parameters
const secondaryIni = `[database]
classname = org.postgresql.Driver
subprotocol = postgresql
# keep my JDBC ssl parameters
subname = //secondary1.example.com:5432/pe-puppetdb?ssl=true&sslrootcert=/etc/puppetlabs/puppet/ssl/certs/ca.pem
username = pe-puppetdb
password = secondary-local-pw-1
gc-interval = 60

[read-database]
subname = //secondary1.example.com:5432/pe-puppetdb?ssl=true
maximum-pool-size = 10
`;

function filesUnder(dir: string, base: readonly ServiceDbFile[]): ServiceDbFile[] {
  return base.map(
    (f) => ({ ...f, path: join(dir, f.path.replace(/^\//, '')), owner: undefined, group: undefined }) as ServiceDbFile,
  );
}

function put(path: string, text: string): void {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, text);
}

let primaryDir: string;
let secondaryDir: string;
let n = 0;

beforeEach(() => {
  n++;
  primaryDir = join(root, `p${n}`);
  secondaryDir = join(root, `s${n}`);
  const pf = filesUnder(primaryDir, PE3_DB_FILES);
  put(pf[0]!.path, primaryIni);
  put(pf[1]!.path, primaryConsole);
  put(pf[2]!.path, primaryAuth);
  const sf = filesUnder(secondaryDir, PE3_DB_FILES);
  put(sf[0]!.path, secondaryIni);
});

afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

describe('credentials', () => {
  it('the pe3 and debian layouts name the files of the runbook', () => {
    expect(PE3_DB_FILES.map((f) => f.path)).toEqual([
      '/etc/puppetlabs/puppetdb/conf.d/database.ini',
      '/etc/puppetlabs/puppet-dashboard/database.yml',
      '/etc/puppetlabs/console-auth/database.yml',
    ]);
    expect(DEBIAN_DB_FILES.map((f) => f.path)).toEqual(['/etc/puppetdb/conf.d/database.ini']);
  });

  it('parses JDBC subnames with and without port and parameters', () => {
    expect(parseSubname('//db.example.com:5433/pe-puppetdb?ssl=true')).toEqual({
      server: 'db.example.com',
      port: 5433,
      database: 'pe-puppetdb',
      params: '?ssl=true',
    });
    expect(parseSubname('//localhost/puppetdb')).toEqual({
      server: 'localhost',
      port: 5432,
      database: 'puppetdb',
      params: '',
    });
    expect(parseSubname('//[fd00::1]:5432/puppetdb')?.server).toBe('fd00::1');
    expect(parseSubname('file:/var/lib/puppetdb/db')).toBeUndefined();
  });

  it('reads database, user and password of every pe3 service and registers the passwords as secrets', async () => {
    const primary = new LocalHost({ name: 'primary', redactor: new Redactor() });
    const creds = await readCredentials(primary, filesUnder(primaryDir, PE3_DB_FILES));
    expect(
      creds.map(({ service, database, user, password, server, port }) => ({
        service,
        database,
        user,
        password,
        server,
        port,
      })),
    ).toEqual([
      {
        service: 'puppetdb',
        database: 'pe-puppetdb',
        user: 'pe-puppetdb',
        password: PRIMARY_INI_PW,
        server: 'localhost',
        port: 5432,
      },
      {
        service: 'console',
        database: 'console',
        user: 'console',
        password: CONSOLE_PW,
        server: 'localhost',
        port: 5432,
      },
      {
        service: 'console-auth',
        database: 'console_auth',
        user: 'console_auth',
        password: AUTH_PW,
        server: 'localhost',
        port: 5432,
      },
    ]);
    expect(primary.redactor.redact(`x ${PRIMARY_INI_PW} ${CONSOLE_PW} ${AUTH_PW}`)).toBe(`x ${MASK} ${MASK} ${MASK}`);
  });

  it('writes them into a secondary pointing at primary_cname, keeping its own JDBC parameters and every other byte', async () => {
    const primary = new LocalHost({ name: 'primary' });
    const secondary = new LocalHost({ name: 'secondary1' });
    const creds = await readCredentials(primary, filesUnder(primaryDir, PE3_DB_FILES));
    const files = filesUnder(secondaryDir, PE3_DB_FILES);
    expect(await credentialsCurrent(secondary, files, creds, { server: 'puppetdb-primary.example.com' })).toBe(false);
    const res = await writeCredentials(secondary, files, creds, { server: 'puppetdb-primary.example.com' });
    expect(res.map((r) => r.changed)).toEqual([true, true, true]);
    const ini = readFileSync(files[0]!.path, 'utf8');
    expect(ini).toBe(
      secondaryIni
        .replace(
          'subname = //secondary1.example.com:5432/pe-puppetdb?ssl=true&',
          'subname = //puppetdb-primary.example.com:5432/pe-puppetdb?ssl=true&',
        )
        .replace('password = secondary-local-pw-1', `password = ${PRIMARY_INI_PW}`)
        .replace(
          'subname = //secondary1.example.com:5432/pe-puppetdb?ssl=true\n',
          'subname = //puppetdb-primary.example.com:5432/pe-puppetdb?ssl=true\n',
        ),
    );
    // the console files did not exist on the secondary: created, mode 0640
    const yml = readFileSync(files[1]!.path, 'utf8');
    expect(yml).toContain('host: puppetdb-primary.example.com');
    expect(yml).toContain(CONSOLE_PW);
    const back = await readServiceCredentials(secondary, files[2]!);
    expect(back).toMatchObject({
      server: 'puppetdb-primary.example.com',
      port: 5432,
      database: 'console_auth',
      user: 'console_auth',
      password: AUTH_PW,
    });
    expect(await credentialsCurrent(secondary, files, creds, { server: 'puppetdb-primary.example.com' })).toBe(true);
    expect(await credentialsCurrent(secondary, files, creds, { server: 'elsewhere.example.com' })).toBe(false);
    // a second run changes nothing
    const again = await writeCredentials(secondary, files, creds, { server: 'puppetdb-primary.example.com' });
    expect(again.map((r) => r.changed)).toEqual([false, false, false]);
  });

  it('creates a missing database.ini with a [database] section (mode 0640)', async () => {
    const primary = new LocalHost({ name: 'primary' });
    const creds = await readCredentials(primary, filesUnder(primaryDir, PE3_DB_FILES));
    const f: ServiceDbFile = {
      service: 'puppetdb',
      path: join(secondaryDir, 'new', 'conf.d', 'database.ini'),
      format: 'ini',
      section: 'database',
    };
    const [r] = await writeCredentials(new LocalHost({ name: 'secondary1' }), [f], creds, {
      server: 'primary.example.com',
    });
    expect(r!.changed).toBe(true);
    expect(readFileSync(f.path, 'utf8')).toMatch(
      /^\[database\]\r?\n(.*\r?\n)*subname = \/\/primary\.example\.com:5432\/pe-puppetdb\r?\n/m,
    );
    expect(statSync(f.path).mode & 0o777).toBe(0o640);
    expect(await readServiceCredentials(new LocalHost(), f)).toMatchObject({
      server: 'primary.example.com',
      user: 'pe-puppetdb',
      password: PRIMARY_INI_PW,
    });
  });

  it('a console database.yml that merges a common block gets the primary values for production', async () => {
    const secondary = new LocalHost({ name: 'secondary1' });
    const files = filesUnder(secondaryDir, PE3_DB_FILES);
    put(
      files[1]!.path,
      primaryConsole.replace(CONSOLE_PW, 'old-local-pw').replace(/host: localhost/, 'host: secondary1'),
    );
    const primary = new LocalHost({ name: 'primary' });
    const creds = await readCredentials(primary, filesUnder(primaryDir, PE3_DB_FILES));
    await writeCredentials(secondary, files, creds, { server: 'primary.example.com', port: 6432 });
    const c = await readServiceCredentials(secondary, files[1]!);
    expect(c).toMatchObject({
      server: 'primary.example.com',
      port: 6432,
      password: CONSOLE_PW,
      database: 'console',
      user: 'console',
    });
    expect(readFileSync(files[1]!.path, 'utf8')).toContain('common: &common');
  });

  it('a dry run records the change with the password masked', async () => {
    const primary = new LocalHost({ name: 'primary' });
    const creds = await readCredentials(primary, filesUnder(primaryDir, PE3_DB_FILES));
    const dry = new DryRunHost(new LocalHost({ name: 'secondary1' }));
    const files = filesUnder(secondaryDir, PE3_DB_FILES);
    const before = readFileSync(files[0]!.path, 'utf8');
    await writeCredentials(dry, files, creds, { server: 'primary.example.com' });
    expect(readFileSync(files[0]!.path, 'utf8')).toBe(before);
    expect(existsSync(files[1]!.path)).toBe(false);
    const plan = JSON.stringify(dry.mutations);
    expect(dry.mutations.filter((m) => m.kind === 'write').map((m) => (m as { path: string }).path)).toEqual(
      files.map((f) => f.path),
    );
    expect(plan).toContain('primary.example.com');
    for (const pw of [PRIMARY_INI_PW, CONSOLE_PW, AUTH_PW]) expect(plan).not.toContain(pw);
  });

  it('an error while writing database.ini does not contain the password', async () => {
    const primary = new LocalHost({ name: 'primary' });
    const creds = await readCredentials(primary, filesUnder(primaryDir, PE3_DB_FILES));
    const secondary = new LocalHost({ name: 'secondary1' });
    // the target is a directory: the atomic write must fail
    const bad: ServiceDbFile = {
      service: 'puppetdb',
      path: join(secondaryDir, 'is-a-dir'),
      format: 'ini',
      section: 'database',
    };
    mkdirSync(bad.path, { recursive: true });
    const err = await writeCredentials(secondary, [bad], creds, { server: 'primary.example.com' }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(Error);
    const everything = `${err!.message} ${JSON.stringify(err)} ${String(err!.stack)} ${String((err as { cause?: unknown }).cause ?? '')}`;
    expect(everything).not.toContain(PRIMARY_INI_PW);
  });

  it('a broken secondary file yields an error without the password', async () => {
    const primary = new LocalHost({ name: 'primary' });
    const creds = await readCredentials(primary, filesUnder(primaryDir, PE3_DB_FILES));
    const files = filesUnder(secondaryDir, PE3_DB_FILES);
    put(files[2]!.path, `production:\n  password: '${AUTH_PW}\n  host: [unclosed\n`);
    const err = await writeCredentials(new LocalHost({ name: 'secondary1' }), files, creds, {
      server: 'primary.example.com',
    }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(Error);
    const everything = `${err!.message} ${JSON.stringify(err)} ${String(err!.stack)} ${String((err as { cause?: { message?: string } }).cause?.message ?? '')}`;
    for (const pw of [PRIMARY_INI_PW, AUTH_PW]) expect(everything).not.toContain(pw);
  });

  it('a missing password is a typed error naming the file', async () => {
    const primary = new LocalHost({ name: 'primary' });
    const f = filesUnder(primaryDir, DEBIAN_DB_FILES)[0]!;
    put(f.path, '[database]\nsubname = //localhost:5432/puppetdb\nusername = puppetdb\n');
    await expect(readCredentials(primary, [f])).rejects.toMatchObject({
      code: 'E_DB_CONFIG',
      message: expect.stringContaining(f.path),
    });
  });

  it('after a promotion, services point at the promoted host and keep their credentials', async () => {
    const host = new LocalHost({ name: 'secondary1' });
    const files = filesUnder(secondaryDir, PE3_DB_FILES);
    const res = await pointServicesAt(host, files, 'localhost');
    expect(res).toHaveLength(1); // only database.ini exists there
    const c = await readServiceCredentials(host, files[0]!);
    expect(c).toMatchObject({ server: 'localhost', password: 'secondary-local-pw-1', database: 'pe-puppetdb' });
  });

  it.skipIf(!existsSync(CORPUS))(
    'reads every corpus database.ini and PostgreSQL database.yml the way PuppetDB and Rails would',
    async () => {
      const host = new LocalHost();
      const ini = join(CORPUS, 'puppetdb_ini', 'DineshSingh94__dineshsingh5.labserver__puppetdb__conf.d__database.ini');
      const c = await readServiceCredentials(host, {
        service: 'puppetdb',
        path: ini,
        format: 'ini',
        section: 'database',
      });
      expect(c).toMatchObject({
        server: 'dineshsingh5.mylabsever.com',
        port: 5432,
        database: 'pe-puppetdb',
        user: 'pe-puppetdb',
        password: 'p2rmlmh3_bTLsJ3zvR0aOw',
      });
      const yml = join(CORPUS, 'database_yml', 'DineshSingh94__dineshsingh5.labserver__puppet-dashboard__database.yml');
      const y = await readServiceCredentials(host, {
        service: 'console',
        path: yml,
        format: 'yaml',
        section: 'production',
      });
      expect(y).toMatchObject({
        server: 'dineshsingh5.mylabsever.com',
        database: 'console',
        user: 'console',
        password: 'EBjnsW7S_Gj5OS5QZXY-Ug',
      });
    },
  );
});
