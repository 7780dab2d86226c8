import { describe, expect, it } from 'vitest';
import { childEnv } from './child-env.js';

describe('childEnv', () => {
  const from = {
    PATH: '/opt/bin:/usr/bin',
    HOME: '/home/op',
    LANG: 'C.UTF-8',
    LC_ALL: 'C',
    TZ: 'UTC',
    PE_CLUSTER_SUDO_PASSWORD: 'hunter2-secret',
    PE_CLUSTER_KEY_DATA: '-----BEGIN KEY-----',
    AWS_SECRET_ACCESS_KEY: 'aws',
    SSH_AUTH_SOCK: '/tmp/agent',
    LD_PRELOAD: '/tmp/evil.so',
  };
  it('keeps PATH, HOME, the locale and TZ, and nothing else', () => {
    expect(childEnv({ from })).toEqual({
      PATH: '/opt/bin:/usr/bin',
      HOME: '/home/op',
      LANG: 'C.UTF-8',
      LC_ALL: 'C',
      TZ: 'UTC',
    });
  });
  it('adds the variables passed explicitly; a default PATH when the CLI has none', () => {
    expect(childEnv({ from: {}, pass: { PE_CLUSTER_DNS_NAME: 'ca.lab.test' } })).toEqual({
      PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      PE_CLUSTER_DNS_NAME: 'ca.lab.test',
    });
  });
  it('refuses a name that is not a variable name (typed)', () => {
    expect(() => childEnv({ from: {}, pass: { 'A=B': 'x' } })).toThrow(
      expect.objectContaining({ code: 'E_INVALID_INPUT' }) as Error,
    );
    expect(() => childEnv({ from: {}, pass: { '1X': 'x' } })).toThrow(/not an environment variable name/);
  });
  it('defaults to process.env', () => {
    process.env.PE_CLUSTER_TEST_CHILD_ENV_SECRET = 'nope';
    try {
      expect(childEnv()).not.toHaveProperty('PE_CLUSTER_TEST_CHILD_ENV_SECRET');
    } finally {
      delete process.env.PE_CLUSTER_TEST_CHILD_ENV_SECRET;
    }
  });
});
