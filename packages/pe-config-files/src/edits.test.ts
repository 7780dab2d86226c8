import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync, rmSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  LocalHost,
  Redactor,
  writeFilesOneByOne,
  type BatchWrite,
  type Host,
  type WriteFilesOptions,
  type WriteOptions,
  type WriteResult,
} from '@pe-stack/pe-host';
import { applyEdits, editText, type Edit } from './edits.js';
import { ConfigEditError, ConfigParseError } from './errors.js';
import { pe3Fixture } from '@pe-stack/testkit/config-samples';

/** In-memory Host: just the file calls applyEdits uses; writes are recorded. */
class MemHost implements Partial<Host> {
  readonly name = 'mem';
  readonly redactor = new Redactor();
  readonly writes: { path: string; data: string; opts: WriteOptions | undefined }[] = [];
  constructor(readonly files: Map<string, string>) {}
  async exists(path: string): Promise<boolean> {
    return this.files.has(path);
  }
  async readFile(path: string): Promise<Buffer> {
    const t = this.files.get(path);
    if (t === undefined) throw new Error(`ENOENT ${path}`);
    return Buffer.from(t, 'utf8');
  }
  async writeFile(path: string, data: string | Buffer, opts?: WriteOptions): Promise<WriteResult> {
    const text = data.toString();
    this.writes.push({ path, data: text, opts });
    const changed = this.files.get(path) !== text;
    this.files.set(path, text);
    return { path, changed, ...(changed ? { backup: `${path}.bak` } : {}) };
  }
  writeFiles(files: readonly BatchWrite[], opts?: WriteFilesOptions): Promise<WriteResult[]> {
    return writeFilesOneByOne(this, files, opts);
  }
}
const asHost = (h: MemHost): Host => h as unknown as Host;

const PUPPET = '/etc/puppetlabs/puppet/puppet.conf';
const DBINI = '/etc/puppetlabs/puppetdb/conf.d/database.ini';
const PDB_PASSWORD = 'Qm4xT8vLp2Ns6Rz1';

describe('applyEdits', () => {
  it('reads through the Host, writes only what changed, reports per-file results with a diff', async () => {
    const host = new MemHost(
      new Map([
        [PUPPET, pe3Fixture('puppet.conf')],
        [DBINI, pe3Fixture('database.ini')],
      ]),
    );
    const edits: Edit[] = [
      {
        path: PUPPET,
        kind: 'ini',
        ops: [
          { op: 'set', section: 'master', key: 'ca', value: 'false' },
          { op: 'set', section: 'main', key: 'ca_server', value: 'master1.example.com' },
        ],
      },
      { path: DBINI, kind: 'ini', ops: [{ op: 'set', section: 'database', key: 'username', value: 'pe-puppetdb' }] },
      {
        path: '/etc/puppetlabs/puppetdb/certificate-whitelist',
        kind: 'lines',
        create: true,
        write: { mode: 0o644, owner: 'pe-puppetdb' },
        ops: [{ op: 'add', entry: 'master2.example.com' }],
      },
    ];
    const res = await applyEdits(asHost(host), edits);
    expect(res.map((r) => [r.path, r.changed])).toEqual([
      [PUPPET, true],
      [DBINI, false],
      ['/etc/puppetlabs/puppetdb/certificate-whitelist', true],
    ]);
    expect(host.writes.map((w) => w.path)).toEqual([PUPPET, '/etc/puppetlabs/puppetdb/certificate-whitelist']);
    expect(host.writes[1]!.opts).toMatchObject({ mode: 0o644, owner: 'pe-puppetdb' });
    expect(res[0]!.diff).toContain('+    ca = false');
    expect(res[0]!.diff).toContain('+    ca_server = master1.example.com');
    expect(res[1]!.diff).toBe('');
    expect(res[2]!.diff).toContain('+master2.example.com');
    // a second run changes nothing and writes nothing
    const again = await applyEdits(asHost(host), edits);
    expect(again.every((r) => !r.changed)).toBe(true);
    expect(host.writes).toHaveLength(2);
  });

  it('writes nothing when any edit fails, and the error names the file and line', async () => {
    const files = new Map([
      [PUPPET, pe3Fixture('puppet.conf')],
      ['/etc/puppetlabs/puppet-dashboard/database.yml', "production:\n  password: 'Sup3rS3cret!'\n  host: [oops\n"],
    ]);
    const host = new MemHost(files);
    const err = await applyEdits(asHost(host), [
      { path: PUPPET, kind: 'ini', ops: [{ op: 'set', section: 'master', key: 'ca', value: 'false' }] },
      {
        path: '/etc/puppetlabs/puppet-dashboard/database.yml',
        kind: 'yaml',
        ops: [{ op: 'set', path: ['production', 'host'], value: 'db' }],
      },
    ]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigParseError);
    expect((err as Error).message).toMatch(/database\.yml line \d/);
    expect((err as Error).message).not.toContain('Sup3rS3cret!');
    expect(host.writes).toHaveLength(0);
  });

  it('a missing file is an error unless the edit may create it', async () => {
    const host = new MemHost(new Map());
    await expect(applyEdits(asHost(host), [{ path: '/nope', kind: 'ini', ops: [] }])).rejects.toBeInstanceOf(
      ConfigEditError,
    );
    expect(host.writes).toHaveLength(0);
  });

  it('masks secrets in diffs: key = value lines, XML attributes, and values the host redactor knows', () => {
    const ini = editText(
      { path: DBINI, kind: 'ini', ops: [{ op: 'set', section: 'database', key: 'password', value: 'N3wPassw0rd' }] },
      pe3Fixture('database.ini'),
    );
    expect(ini.changed).toBe(true);
    expect(ini.diff).not.toContain(PDB_PASSWORD);
    expect(ini.diff).not.toContain('N3wPassw0rd');
    expect(ini.diff).toContain('only a masked secret value changed');

    const xml = editText(
      {
        path: '/etc/puppetlabs/activemq/activemq.xml',
        kind: 'activemq',
        ops: [
          {
            op: 'set-connector',
            kind: 'network',
            attrs: {
              name: 'to-master3',
              uri: 'static:(ssl://master3.example.com:61616)',
              userName: 'mcollective',
              password: 'Br4ndN3wPw',
            },
          },
        ],
      },
      pe3Fixture('activemq.xml'),
    );
    expect(xml.diff).toContain('password="********"');
    expect(xml.diff).not.toMatch(/Kd83nVzQ7pWmR2xT|Br4ndN3wPw/);

    const kv = editText(
      {
        path: '/etc/puppetlabs/mcollective/server.cfg',
        kind: 'kv',
        ops: [{ op: 'set', key: 'identity', value: 'Kd83nVzQ7pWmR2xT-host' }],
      },
      pe3Fixture('server.cfg'),
    );
    expect(kv.diff).not.toContain('Kd83nVzQ7pWmR2xT');

    const known = new Redactor(['master1.example.com']);
    const yml = editText(
      { path: '/s.yml', kind: 'yaml', ops: [{ op: 'set', path: ['ca_server'], value: 'master2.example.com' }] },
      pe3Fixture('settings.yml'),
      known,
    );
    expect(yml.diff).not.toContain('master1.example.com');
  });

  it('errors about a change do not echo secret values', () => {
    let err: unknown;
    try {
      editText(
        { path: '/s.pp', kind: 'site-pp', ops: [{ op: 'filebucket-server', server: 'x' }] },
        "node default { $password = 'Hunter2Hunter2' }\n",
      );
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigEditError);
    expect((err as Error).message).not.toContain('Hunter2Hunter2');
    expect(() =>
      editText(
        { path: '/h', kind: 'hosts', ops: [{ op: 'set', name: 'n', addresses: ['p4ssw0rd-not-ip'] }] },
        'password = p4ssw0rd-not-ip\n',
      ),
    ).toThrow(/"\*{8}" is not an IP address/);
  });
});

describe('applyEdits against LocalHost in a temp dir', () => {
  it('edits real files atomically with a backup, and leaves them alone on a second run', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pe-config-files-'));
    try {
      const conf = join(dir, 'webserver.conf');
      const hba = join(dir, 'pg_hba.conf');
      writeFileSync(conf, 'webserver: {\r\n    ssl-port: 8140\r\n}\r\n');
      writeFileSync(hba, pe3Fixture('pg_hba.conf'));
      const host = new LocalHost();
      const edits: Edit[] = [
        {
          path: conf,
          kind: 'hocon',
          ops: [{ op: 'set', path: ['webserver', 'ssl-crl-path'], value: '/var/lib/puppet/ssl/crl.pem' }],
        },
        {
          path: hba,
          kind: 'pg-hba',
          ops: [
            {
              op: 'add',
              record: {
                type: 'host',
                database: 'pe-puppetdb',
                user: 'pe-puppetdb',
                address: '10.77.0.12/32',
                method: 'md5',
              },
            },
          ],
        },
      ];
      const res = await applyEdits(host, edits, { sudo: false });
      expect(res.map((r) => r.changed)).toEqual([true, true]);
      expect(readFileSync(conf, 'utf8')).toBe(
        'webserver: {\r\n    ssl-port: 8140\r\n    ssl-crl-path: "/var/lib/puppet/ssl/crl.pem"\r\n}\r\n',
      );
      expect(readFileSync(hba, 'utf8')).toContain(
        'host    pe-puppetdb     pe-puppetdb     10.77.0.12/32           md5\n',
      );
      const entries = readdirSync(dir).length;
      expect(entries).toBeGreaterThan(2); // backups beside the files
      const again = await applyEdits(host, edits, { sudo: false });
      expect(again.map((r) => r.changed)).toEqual([false, false]);
      expect(readdirSync(dir).length).toBe(entries);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
