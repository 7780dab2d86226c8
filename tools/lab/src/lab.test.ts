import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { defaultConfig, hostIp, vethName, MAX_HOSTS } from './config.js';
import { Lab } from './lab.js';

describe('lab (no root, no namespaces)', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const lab = () => {
    const d = mkdtempSync(`${tmpdir()}/lab-unit-`);
    dirs.push(d);
    return new Lab({ name: 'labu', net: '10.99.0', stateDir: `${d}/state` });
  };

  it('writes hosts files with the controller (puppet.lab.test) and master.lab.test on the primary_cname host', () => {
    const l = lab();
    const hosts = [
      { name: 'primary', fqdn: 'primary.lab.test', ip: '10.99.0.11', role: 'primary' as const, index: 0 },
      { name: 'secondary1', fqdn: 'secondary1.lab.test', ip: '10.99.0.12', role: 'secondary' as const, index: 1 },
    ];
    const text = l.hostsFile(hosts, 'primary');
    expect(text).toContain('10.99.0.1\tctl.lab.test ctl puppet.lab.test\n');
    expect(text).toContain('10.99.0.12\tsecondary1.lab.test secondary1\n');
    expect(text.trimEnd().split('\n').at(-1)).toBe('10.99.0.11\tmaster.lab.test');
    expect(l.hostsFile(hosts, 'secondary1').trimEnd().split('\n').at(-1)).toBe('10.99.0.12\tmaster.lab.test');
    expect(l.hostsFile(hosts, undefined)).not.toContain('master.lab.test');
  });

  it('keeps interface names within the kernel limit and addresses within the /24 for the largest lab', () => {
    const c = defaultConfig({ name: 'lab', net: '10.77.0' });
    expect(vethName(c, MAX_HOSTS - 1).length).toBeLessThanOrEqual(15);
    expect(hostIp(c, MAX_HOSTS - 1)).toBe(`10.77.0.${11 + MAX_HOSTS - 1}`);
    expect(11 + MAX_HOSTS - 1).toBeLessThan(255);
  });

  it.each([
    [{ profile: 'light' as const, hosts: ['Primary'] }, /bad host name "Primary"/],
    [{ profile: 'light' as const, hosts: ['ctl'] }, /bad host name "ctl"/],
    [{ profile: 'light' as const, hosts: ['a', 'a'] }, /host names repeat/],
    [{ profile: 'light' as const, hosts: ['a'], agents: -1 }, /--agents must be a whole number/],
    [{ profile: 'light' as const, hosts: [], agents: 0 }, /at least one host/],
    [{ profile: 'light' as const, hosts: ['a'], agents: MAX_HOSTS }, /at most 200 hosts/],
    [{ profile: 'nosuch' as 'light' }, /profile "nosuch" is not available/],
  ])('refuses bad input %j before touching the machine', async (opts, message) => {
    const l = lab();
    await expect(l.up(opts)).rejects.toMatchObject({ code: 'E_LAB_USAGE', message: expect.stringMatching(message) });
    expect(existsSync(l.config.stateDir)).toBe(false);
  });

  it('says the lab is not up when asked for a host', () => {
    const l = lab();
    expect(() => l.host('x')).toThrow(/lab is not up/);
  });
});
