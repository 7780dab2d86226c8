import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalHost, Redactor } from '@pe-stack/pe-host';
import { freePort } from '@pe-stack/testkit/sshd';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NsupdateDns } from './index.js';

// Root only (bind9 and bind9-dnsutils installed): a real BIND named on 127.0.0.1 at a free port,
// a zone lab.test that accepts updates signed with one TSIG key. Loopback only.

const SECRET = 'cGUtY2x1c3Rlci1yZmMyMTM2LXRlc3Qta2V5LTAwMDE=';
let dir: string;
let port: number;
let named: ChildProcess | undefined;
let log = '';

beforeAll(async () => {
  dir = await fs.mkdtemp(join(tmpdir(), 'pe-named-'));
  port = await freePort();
  const key = `key "pe-cluster" {\n\talgorithm hmac-sha256;\n\tsecret "${SECRET}";\n};\n`;
  await fs.writeFile(join(dir, 'pe-cluster.key'), key, { mode: 0o600 });
  await fs.writeFile(join(dir, 'wrong.key'), key.replace(SECRET, 'd3Jvbmcta2V5LWQzSnZibWN0YTJWNUxXd3Jvbmc9PT0='), {
    mode: 0o600,
  });
  await fs.writeFile(
    join(dir, 'lab.test.zone'),
    `$TTL 30\n@ IN SOA ns.lab.test. root.lab.test. (1 60 60 600 30)\n@ IN NS ns.lab.test.\nns IN A 127.0.0.1\nmaster IN A 10.77.0.11\n`,
  );
  await fs.writeFile(
    join(dir, 'named.conf'),
    `${key}options { directory "${dir}"; listen-on port ${port} { 127.0.0.1; }; listen-on-v6 { none; }; recursion no; pid-file "${dir}/named.pid"; dnssec-validation no; };\n` +
      `zone "lab.test" { type primary; file "${dir}/lab.test.zone"; update-policy { grant pe-cluster zonesub ANY; }; };\n`,
  );
  named = spawn('/usr/sbin/named', ['-g', '-c', join(dir, 'named.conf'), '-n', '1'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  named.stderr!.on('data', (b: Buffer) => (log += b.toString()));
  const t0 = Date.now();
  while (!/running/.test(log)) {
    if (Date.now() - t0 > 20_000 || named.exitCode !== null) throw new Error(`named did not start:\n${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
});

afterAll(async () => {
  if (named && named.exitCode === null) {
    named.kill('SIGTERM');
    await new Promise((r) => named!.once('exit', r));
  }
  await fs.rm(dir, { recursive: true, force: true });
});

describe('nsupdate against a real BIND', () => {
  it('moves the name with a signed update, verified by dig; a rerun changes nothing; the key never reaches argv, errors or the server log', async () => {
    const redactor = new Redactor();
    const argvs: string[] = [];
    const local = new LocalHost({ name: 'controller', redactor });
    const host = new Proxy(local, {
      get(t, p, r) {
        const v = Reflect.get(t, p, r) as unknown;
        if (p === 'exec')
          return (argv: string[], o: unknown) => (
            argvs.push(argv.join(' ')),
            (v as (...a: unknown[]) => unknown).call(t, argv, o)
          );
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
      },
    });
    const dns = new NsupdateDns(host, {
      server: '127.0.0.1',
      port,
      zone: 'lab.test',
      keyFile: join(dir, 'pe-cluster.key'),
      ttl: 5,
    });
    expect(await dns.current('master.lab.test', 'A')).toEqual(['10.77.0.11']);
    const r = await dns.set('master.lab.test', '10.77.0.12');
    expect(r.changed).toBe(true);
    expect(await dns.current('master.lab.test', 'A')).toEqual(['10.77.0.12']);
    const again = await dns.set('master.lab.test', '10.77.0.12');
    expect(again.changed).toBe(false);
    // IPv6 replaces the A record too (the name has exactly one address afterwards)
    await dns.set('master.lab.test', 'fd00::12');
    expect(await dns.current('master.lab.test', 'A')).toEqual([]);
    expect(await dns.current('master.lab.test', 'AAAA')).toEqual(['fd00::12']);
    await dns.set('master.lab.test', '10.77.0.12');
    expect(argvs.join('\n')).not.toContain(SECRET);
    expect(log).not.toContain(SECRET);
  });

  it('a wrong key is refused by the server: E_DNS, the record unchanged, no secret in the message', async () => {
    const local = new LocalHost({ name: 'controller' });
    const dns = new NsupdateDns(local, {
      server: '127.0.0.1',
      port,
      zone: 'lab.test',
      keyFile: join(dir, 'wrong.key'),
    });
    const before = await dns.current('master.lab.test', 'A');
    const e = (await dns.set('master.lab.test', '10.77.0.13').then(
      () => undefined,
      (x: unknown) => x,
    )) as Error & { code?: string };
    expect(e).toMatchObject({ code: 'E_DNS' });
    expect(e.message).toMatch(/nsupdate of master\.lab\.test/);
    expect(e.message).not.toContain('d3Jvbmct');
    expect(await dns.current('master.lab.test', 'A')).toEqual(before);
  });
});
