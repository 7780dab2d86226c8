// Revocation reaches every master, for real, on the lab's debian profile (the
// same shape as join.lab.test.ts: primary, secondary1, secondary2, one agent).
//
// The proof: join the secondaries with a short crl_refresh_interval; join
// installs pe-crl-refresh on each and it runs. agent1's certificate is
// accepted by every master (a TLS handshake with it to /puppet/v3/environments
// answers 200). Revoke agent1 on the primary (`puppetserver ca revoke`):
// within the interval (+ slack) every master, each secondary through its
// refreshed CRL copy, refuses agent1's handshake with a TLS alert, and
// `status` shows each master's CRL with the CA's number. A rerun of join
// leaves the refresh as it is. Then agent1 gets a new certificate, every
// master accepts it again, and the lab goes on as a joined cluster.
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { FRESH_STAGE, LAB_SHAPES, leaveLab, useLab, type Lab } from '@pe-stack/lab';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lastJson, reportFailure, runCli } from '@pe-stack/testkit/cli';

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const MASTERS = ['primary', 'secondary1', 'secondary2'] as const;
const SECONDARIES = ['secondary1', 'secondary2'] as const;
const AGENT = 'agent1';
const AGENT_CERTNAME = 'agent1.lab.test';
/** The lab's refresh interval (seconds), and what a refused handshake may take beyond it (fetch, puppetserver's reload on change). */
const INTERVAL_S = 20;
const SLACK_S = 30;

const cli = (args: string[], timeoutMs?: number) => runCli(CLI, args, timeoutMs);

interface StepOut {
  id: string;
  host: string;
  status: string;
}

interface StatusOut {
  health: string;
  crl?: { host: string; number?: string; refreshIntervalS?: number };
  masters: {
    name: string;
    crl?: {
      number?: string;
      matchesPrimary?: boolean;
      refresh?: { lastOk?: string; lastChange?: string; lastError?: string; server?: string; crlNumber?: string };
      error?: string;
    };
  }[];
  problems: { host?: string; message: string }[];
}

const figure = (name: string, value: number | string) => process.stderr.write(`crl.lab: ${name} = ${value}\n`);

describe('CRL refresh on the debian lab: a certificate revoked on the primary is refused by every master', () => {
  let lab: Lab;
  let dir: string;
  let inventory: string;

  /** agent1's TLS handshake (its own certificate and key) with a master's puppetserver: the HTTP status, or the TLS error. */
  const handshake = async (m: string): Promise<{ accepted: boolean; http: string; error: string }> => {
    const h = lab.host(m);
    const r = await lab.exec(
      AGENT,
      [
        'curl',
        '-sS',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        '--max-time',
        '10',
        '--resolve',
        `${h.fqdn}:8140:${h.ip}`,
        '--cacert',
        '/var/lib/puppet/ssl/certs/ca.pem',
        '--cert',
        `/var/lib/puppet/ssl/certs/${AGENT_CERTNAME}.pem`,
        '--key',
        `/var/lib/puppet/ssl/private_keys/${AGENT_CERTNAME}.pem`,
        `https://${h.fqdn}:8140/puppet/v3/environments`,
      ],
      { allowFailure: true, timeoutMs: 30_000 },
    );
    return { accepted: r.code === 0 && r.stdout.trim() === '200', http: r.stdout.trim(), error: r.stderr.trim() };
  };

  beforeAll(async () => {
    // a joined cluster (join.lab) or a fresh one: the join below installs the refresh either way
    ({ lab } = await useLab(LAB_SHAPES.debianTrio, { accepts: [FRESH_STAGE, 'joined'] }));
    const files = await lab.writeInventory();
    dir = await mkdtemp(join(tmpdir(), 'pe-cluster-crl-lab-'));
    const inv = parse(readFileSync(files.inventory, 'utf8')) as { vars: Record<string, unknown> };
    expect(inv.vars).toMatchObject({ cluster: 'lab', layout: 'debian' });
    inv.vars.journals = join(dir, 'journal');
    inv.vars.audit_log = join(dir, 'audit.log');
    inv.vars.crl_refresh_interval = INTERVAL_S;
    inventory = join(dir, 'inventory.yaml');
    writeFileSync(inventory, stringify(inv));
  });

  afterAll(async ({}, suite) => {
    // joined, agent1 certified again (the last test): handed on as a joined cluster only when every test passed
    if (lab) leaveLab(lab, 'joined', suite);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('join installs pe-crl-refresh on every secondary, and it runs against primary_cname', async () => {
    const r = await cli(['-i', inventory, '--json', 'join']);
    reportFailure(r);
    expect(r.code).toBe(0);
    const res = lastJson<{ status: string; steps: StepOut[] }>(r);
    const refresh = res.steps.filter((s) => s.id === 'crl-refresh');
    expect(refresh.map((s) => `${s.host}:${s.status}`)).toEqual(SECONDARIES.map((s) => `${lab.host(s).fqdn}:done`));
    for (const s of SECONDARIES) {
      expect(
        (await lab.exec(s, ['systemctl', 'is-active', 'pe-crl-refresh'], { allowFailure: true })).stdout.trim(),
      ).toBe('active');
      const conf = (await lab.exec(s, ['cat', '/etc/puppet/pe-crl-refresh.conf'])).stdout;
      expect(conf).toMatch(/^SERVER=master\.lab\.test$/m);
      expect(conf).toContain(`\nINTERVAL=${INTERVAL_S}\n`);
    }
    figure('join wall s', (r.ms / 1000).toFixed(1));
  });

  it("every master accepts agent1's certificate before the revocation", async () => {
    for (const m of MASTERS) {
      const h = await handshake(m);
      expect(h, m).toMatchObject({ accepted: true, http: '200' });
    }
  });

  it(`revoked on the primary: every master refuses agent1's TLS handshake within ${INTERVAL_S} s + ${SLACK_S} s`, async () => {
    const revoke = await lab.exec('primary', ['puppetserver', 'ca', 'revoke', '--certname', AGENT_CERTNAME], {
      allowFailure: true,
      timeoutMs: 120_000,
    });
    expect(revoke.code, `${revoke.stdout}${revoke.stderr}`).toBe(0);
    const t0 = performance.now();
    const refusedAfter = new Map<string, number>();
    const errors = new Map<string, string>();
    const deadline = t0 + (INTERVAL_S + SLACK_S) * 1000;
    while (refusedAfter.size < MASTERS.length && performance.now() < deadline) {
      for (const m of MASTERS) {
        if (refusedAfter.has(m)) continue;
        const h = await handshake(m);
        if (!h.accepted) {
          refusedAfter.set(m, (performance.now() - t0) / 1000);
          errors.set(m, h.error);
        }
      }
      if (refusedAfter.size < MASTERS.length) await new Promise((r) => setTimeout(r, 1000));
    }
    for (const m of MASTERS) {
      expect(refusedAfter.has(m), `${m} still accepts the revoked certificate`).toBe(true);
      // refused in the TLS handshake (an alert: certificate revoked / unknown), not by an HTTP status
      expect(errors.get(m), m).toMatch(/alert|SSL|certificate/i);
    }
    for (const m of MASTERS) figure(`${m} refuses after s`, refusedAfter.get(m)!.toFixed(1));
  });

  it("status shows every master's CRL with the CA's number, refreshed from primary_cname", async () => {
    const r = await cli(['-i', inventory, '--json', 'status']);
    const s = lastJson<StatusOut>(r);
    expect(s.crl).toMatchObject({ host: lab.host('primary').fqdn, refreshIntervalS: INTERVAL_S });
    const number = s.crl!.number!;
    // a new CA's CRL is number 0; the one revocation above made it 1 at least
    expect(Number(number)).toBeGreaterThan(0);
    for (const m of s.masters) {
      expect(m.crl, m.name).toMatchObject({ number, matchesPrimary: true });
      if (m.name !== lab.host('primary').fqdn)
        expect(m.crl!.refresh, m.name).toMatchObject({ server: 'master.lab.test', crlNumber: number });
      if (m.name !== lab.host('primary').fqdn) expect(m.crl!.refresh!.lastError, m.name).toBeUndefined();
    }
    expect(s.problems.filter((p) => /CRL/.test(p.message))).toEqual([]);
    const text = await cli(['-i', inventory, 'status']);
    for (const m of MASTERS) expect(text.stdout).toMatch(new RegExp(`\\n${lab.host(m).fqdn} .* #${number} \\S+ = CA`));
    expect(text.stdout).toContain(`refresh every ${INTERVAL_S} s`);
    figure('status health', s.health);
    figure('CRL number after the revocation', number);
  });

  it('a rerun of join leaves the refresh as it is (every crl-refresh step done already)', async () => {
    const r = await cli(['-i', inventory, '--json', 'join']);
    expect(r.code).toBe(0);
    const res = lastJson<{ steps: StepOut[] }>(r);
    expect(res.steps.filter((s) => s.id === 'crl-refresh').map((s) => s.status)).toEqual(['skipped', 'skipped']);
  });

  it('agent1 certified again: a new certificate from the primary, accepted by every master', async () => {
    const run = async (host: string, argv: string[], ok: number[] = [0]) => {
      const r = await lab.exec(host, argv, { allowFailure: true, timeoutMs: 180_000 });
      expect(ok, `${host}: ${argv.join(' ')}: ${r.stdout.slice(-300)}${r.stderr.slice(-300)}`).toContain(r.code);
    };
    await run('primary', ['puppetserver', 'ca', 'clean', '--certname', AGENT_CERTNAME]);
    await run(AGENT, ['puppet', 'ssl', 'clean']);
    // the request (not signed yet: exit 1), signed on the primary, then fetched
    await run(AGENT, ['puppet', 'ssl', 'bootstrap', '--waitforcert', '0', '--http_keepalive_timeout', '0'], [0, 1]);
    await run('primary', ['puppetserver', 'ca', 'sign', '--certname', AGENT_CERTNAME]);
    await run(AGENT, ['puppet', 'ssl', 'bootstrap', '--waitforcert', '0', '--http_keepalive_timeout', '0']);
    for (const m of MASTERS) expect(await handshake(m), m).toMatchObject({ accepted: true, http: '200' });
  });
});
