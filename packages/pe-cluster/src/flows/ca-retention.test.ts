import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalHost } from '@pe-stack/pe-host';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  caCopyRetention,
  DEFAULT_CA_COPY_RETENTION,
  expiredCopies,
  pruneCaArchives,
  pruneKeptAsideCas,
  stampTime,
} from './ca-retention.js';

let root: string;
beforeEach(async () => {
  root = await fs.mkdtemp(join(tmpdir(), 'pe-ca-retention-'));
});
afterEach(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

const NOW = new Date('2026-12-07T12:00:00.000Z');
const DAY = 86_400_000;
/** The stamp pe-certs puts in a name, `days` before NOW. */
const stamp = (days: number) => new Date(NOW.getTime() - days * DAY).toISOString().replace(/[-:.]/g, '');

describe('the policy', () => {
  it('defaults to 5 copies and 30 days, and refuses a count below 1 or a non-positive age', () => {
    expect(caCopyRetention()).toEqual({ keep: 5, maxAgeDays: 30 });
    expect(DEFAULT_CA_COPY_RETENTION).toEqual({ keep: 5, maxAgeDays: 30 });
    expect(caCopyRetention({ keep: 2 })).toEqual({ keep: 2, maxAgeDays: 30 });
    for (const bad of [{ keep: 0 }, { keep: 1.5 }, { maxAgeDays: 0 }, { maxAgeDays: Number.NaN }])
      expect(() => caCopyRetention(bad)).toThrow(expect.objectContaining({ code: 'E_INVALID_INPUT' }));
  });

  it('reads the stamps pe-certs and pe-host write, and nothing else', () => {
    expect(stampTime('20261207T215447123Z')?.toISOString()).toBe('2026-12-07T21:54:47.123Z');
    for (const bad of ['2026-12-07', '20261207T215447Z', 'x20261207T215447123Z'])
      expect(stampTime(bad)).toBeUndefined();
  });

  it('removes beyond the count and beyond the age, never a protected copy nor the newest', () => {
    const copies = [0, 1, 2, 3, 4, 5, 6, 40].map((d) => ({ path: `c${d}`, at: new Date(NOW.getTime() - d * DAY) }));
    const policy = { keep: 5, maxAgeDays: 30 };
    expect(expiredCopies(copies, policy, { now: NOW }).map((c) => c.path)).toEqual(['c5', 'c6', 'c40']);
    expect(expiredCopies(copies, policy, { now: NOW, protect: ['c40'] }).map((c) => c.path)).toEqual(['c5', 'c6']);
    // every copy too old: the newest stays unless something else is the verified copy
    const old = [50, 60].map((d) => ({ path: `o${d}`, at: new Date(NOW.getTime() - d * DAY) }));
    expect(expiredCopies(old, policy, { now: NOW }).map((c) => c.path)).toEqual(['o60']);
    expect(expiredCopies(old, policy, { now: NOW, protectNewest: false }).map((c) => c.path)).toEqual(['o50', 'o60']);
  });
});

describe('pruneCaArchives (<backups>/ca-sync)', () => {
  it('removes old archives with their manifests and leaves the verified one and foreign files alone', async () => {
    const dir = join(root, 'ca-sync');
    await fs.mkdir(dir);
    const names = [0, 1, 2, 3, 4, 5, 6, 45].map((d) => `ca-p.test-${stamp(d)}.tar`);
    for (const n of names) {
      await fs.writeFile(join(dir, n), 'key');
      await fs.writeFile(join(dir, `${n}.manifest.json`), '{}');
    }
    await fs.writeFile(join(dir, 'notes.txt'), 'mine');
    const verified = join(dir, names[6]!);
    const removed = await pruneCaArchives(dir, { keep: 3, maxAgeDays: 30 }, { now: NOW, protect: [verified] });
    expect(removed.map((p) => p.slice(dir.length + 1))).toEqual([names[3], names[4], names[5], names[7]]);
    expect((await fs.readdir(dir)).sort()).toEqual(
      [names[0], names[1], names[2], names[6]]
        .flatMap((n) => [n!, `${n!}.manifest.json`])
        .concat('notes.txt')
        .sort(),
    );
  });

  it('a missing directory is nothing to prune', async () => {
    expect(await pruneCaArchives(join(root, 'none'), caCopyRetention(), { now: NOW })).toEqual([]);
  });
});

describe('pruneKeptAsideCas (<cadir>.pe-backup-*)', () => {
  it('removes kept-aside copies of the same CA by count and age; another CA, the live CA and other names stay', async () => {
    const cadir = join(root, 'puppetserver', 'ca');
    await fs.mkdir(cadir, { recursive: true });
    await fs.writeFile(join(cadir, 'ca_crt.pem'), 'the CA');
    const aside = [1, 2, 3, 40].map((d) => `${cadir}.pe-backup-${stamp(d)}`);
    for (const d of aside) {
      await fs.mkdir(join(d, 'private'), { recursive: true });
      await fs.writeFile(join(d, 'ca_crt.pem'), 'the CA');
      await fs.writeFile(join(d, 'private', 'ca_key.pem'), 'key');
    }
    const otherCa = `${cadir}.pe-backup-${stamp(45)}`;
    await fs.mkdir(otherCa);
    await fs.writeFile(join(otherCa, 'ca_crt.pem'), 'its own CA from before the join');
    const noCa = `${cadir}.pe-backup-${stamp(46)}`;
    await fs.mkdir(noCa);
    await fs.mkdir(`${cadir}.pe-backup-notastamp`);
    await fs.mkdir(`${join(root, 'puppetserver', 'other')}.pe-backup-${stamp(50)}`);
    const removed = await pruneKeptAsideCas(
      new LocalHost(),
      cadir,
      { keep: 2, maxAgeDays: 30 },
      { sudo: false, now: NOW },
    );
    expect(removed.sort()).toEqual([aside[2], aside[3]].sort());
    const base = (p: string) => p.slice(join(root, 'puppetserver').length + 1);
    expect((await fs.readdir(join(root, 'puppetserver'))).sort()).toEqual(
      [
        'ca',
        base(aside[0]!),
        base(aside[1]!),
        base(otherCa),
        base(noCa),
        'ca.pe-backup-notastamp',
        `other.pe-backup-${stamp(50)}`,
      ].sort(),
    );
  });

  it('without a live CA nothing is removed', async () => {
    const cadir = join(root, 'ca');
    await fs.mkdir(`${cadir}.pe-backup-${stamp(90)}`, { recursive: true });
    await fs.writeFile(join(`${cadir}.pe-backup-${stamp(90)}`, 'ca_crt.pem'), 'x');
    expect(await pruneKeptAsideCas(new LocalHost(), cadir, caCopyRetention(), { sudo: false, now: NOW })).toEqual([]);
  });
});
