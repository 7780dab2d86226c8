import { join } from 'node:path';
import { LocalHost } from '@pe-stack/pe-host';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkAltNames, validateCertname } from './backend.js';
import { OpensslError } from './errors.js';
import { Openssl, altNameEntry, validateCommonName } from './openssl.js';
import { failure, tempDir } from '@pe-stack/testkit/certs';

const host = new LocalHost({ name: 'box' });
let t: Awaited<ReturnType<typeof tempDir>>;
beforeAll(async () => {
  t = await tempDir('openssl');
});
afterAll(() => t.cleanup());

describe('Openssl wrapper', () => {
  it('reports the version (OpenSSL 3 here)', async () => {
    expect(await new Openssl(host).version()).toMatch(/^OpenSSL 3\./);
  });

  it('treats a zero exit as success even with chatter on stderr', async () => {
    // genpkey for RSA prints progress dots on stderr under some builds; req -verify prints "verify OK" on stderr
    const o = new Openssl(host);
    const key = join(t.dir, 'k.pem');
    await o.genKey(key, { type: 'rsa', bits: 1024 });
    await o.newCsr(key, join(t.dir, 'r.pem'), 'n.example.com', ['n.example.com']);
    const r = await o.run(['req', '-in', join(t.dir, 'r.pem'), '-verify', '-noout']);
    expect(r.code).toBe(0);
    expect(r.stderr + r.stdout).toMatch(/verify OK/i);
  });

  it('throws OpensslError with exit code, argv and the stderr tail on failure', async () => {
    const err = await failure<OpensslError>(
      new Openssl(host).run(['x509', '-in', join(t.dir, 'missing.pem'), '-noout']),
    );
    expect(err).toBeInstanceOf(OpensslError);
    expect(err.code).toBe('E_OPENSSL');
    expect(err.exitCode).not.toBe(0);
    expect(err.host).toBe('box');
    expect(err.message).toContain('missing.pem');
  });

  it('explains a missing binary instead of crashing', async () => {
    const err = await failure<OpensslError>(new Openssl(host, { bin: '/nonexistent/openssl' }).version());
    expect(err).toBeInstanceOf(OpensslError);
    expect(err.message).toMatch(/could not be run/);
  });

  it('kills a command that outlives its timeout', async () => {
    const t0 = Date.now();
    // generating an 8192-bit prime takes far longer than 300 ms
    const err = await failure<{ code: string }>(
      new Openssl(host, { timeoutMs: 300 }).run(['prime', '-generate', '-bits', '8192']),
    );
    expect(err.code).toBe('E_TIMEOUT');
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('refuses a secret value in argv, and passes it through the environment', async () => {
    const o = new Openssl(host);
    await expect(
      o.run(['pkey', '-passin', 'pass:hunter22'], { secretEnv: { PE_OPENSSL_PASS: 'hunter22' } }),
    ).rejects.toThrow(/secret in its arguments/);
    const key = join(t.dir, 'enc.pem');
    await o.genKey(key, { type: 'ec' }, 'hunter22');
    expect(await o.publicKeyOf(key, 'hunter22')).toContain('BEGIN PUBLIC KEY');
    const err = await failure<Error>(o.publicKeyOf(key, 'wrong-pass'));
    expect(err).toBeInstanceOf(OpensslError);
    expect(err.message).not.toContain('wrong-pass');
  });
});

describe('names', () => {
  it('normalises alt names and refuses junk', () => {
    expect(altNameEntry('Puppet.Example.com')).toBe('DNS:puppet.example.com');
    expect(altNameEntry('DNS:x.example')).toBe('DNS:x.example');
    expect(altNameEntry('10.0.0.1')).toBe('IP:10.0.0.1');
    expect(altNameEntry('IP Address:10.0.0.1')).toBe('IP:10.0.0.1');
    for (const bad of ['a b', 'x,DNS:evil', '-x.example', 'a/b', '']) expect(() => altNameEntry(bad)).toThrow();
    expect(() => validateCommonName('x/CN=evil')).toThrow();
    expect(() => validateCertname('../etc/passwd')).toThrow();
    expect(() => validateCertname('a/b')).toThrow();
    expect(validateCertname('pe-internal-dashboard-m1.example.com')).toBe('pe-internal-dashboard-m1.example.com');
  });

  it('alt-name policy: anything outside the allowed set is reported, order and case do not matter', () => {
    const label = fc.stringMatching(/^[a-z][a-z0-9]{0,8}$/);
    const dns = fc.tuple(label, label).map(([a, b]) => `${a}.${b}.example`);
    fc.assert(
      fc.property(
        fc.uniqueArray(dns, { maxLength: 6 }),
        fc.uniqueArray(dns, { maxLength: 6 }),
        (allowed, requested) => {
          const v = checkAltNames(
            'node.example',
            requested.map((n) => n.toUpperCase()),
            { allowed },
          );
          const expectedBad = requested
            .filter((n) => !allowed.includes(n) && n !== 'node.example')
            .map((n) => `DNS:${n}`);
          expect(v.unexpected.sort()).toEqual(expectedBad.sort());
          expect(v.ok).toBe(expectedBad.length === 0);
        },
      ),
    );
  });
});
