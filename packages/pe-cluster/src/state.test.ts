import {
  chmodSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FenceRecord } from '@pe-stack/pe-db';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ensurePrivateDir,
  ensureRunDirs,
  fenceRegistry,
  readState,
  statePath,
  writePrivateFile,
  writeState,
} from './state.js';

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'pe-state-'));
});
afterEach(() => {
  chmodSync(root, 0o700);
  rmSync(root, { recursive: true, force: true });
});

const inv = (dir = join(root, 'state')) => ({ cluster: 'lab', journalDir: join(dir, 'journal') });
const unsafe = (what: RegExp) =>
  expect.objectContaining({ code: 'E_STATE_UNSAFE', message: expect.stringMatching(what) as string });

describe('controller state files', () => {
  it('are written 0600 in a 0700 directory, with no temp file left and no predictable temp name', () => {
    writeState(inv(), { version: 1, fenced: [], primary: 'b.test' });
    writeState(inv(), { version: 1, fenced: [], primary: 'c.test' });
    expect(readState(inv()).primary).toBe('c.test');
    expect(lstatSync(statePath(inv())).mode & 0o777).toBe(0o600);
    expect(lstatSync(join(root, 'state')).mode & 0o777).toBe(0o700);
    expect(readdirSync(join(root, 'state'))).toEqual(['lab.state.json']);
  });

  it('replace a link at the state path instead of writing through it', () => {
    const victim = join(root, 'victim');
    writeFileSync(victim, 'precious\n', { mode: 0o600 });
    mkdirSync(join(root, 'state'), { mode: 0o700 });
    symlinkSync(victim, statePath(inv()));
    writeState(inv(), { version: 1, fenced: [] });
    expect(readFileSync(victim, 'utf8')).toBe('precious\n');
    expect(lstatSync(statePath(inv())).isSymbolicLink()).toBe(false);
  });

  it.each([0o777, 0o770, 0o720, 0o702])(
    'refuse a state directory of mode %o (E_STATE_UNSAFE, with the fix)',
    (mode) => {
      const dir = join(root, 'state');
      mkdirSync(dir);
      chmodSync(dir, mode);
      expect(() => writeState(inv(), { version: 1, fenced: [] })).toThrow(
        unsafe(/can be written by its group or by others/),
      );
      expect(() => writeState(inv(), { version: 1, fenced: [] })).toThrow(
        expect.objectContaining({ hint: expect.stringContaining(`chmod go-w ${dir}`) as string }) as Error,
      );
      expect(readdirSync(dir)).toEqual([]);
    },
  );

  it('refuse a directory below one that others can write without the sticky bit; a sticky one (as /tmp) is fine', () => {
    const shared = join(root, 'shared');
    mkdirSync(shared);
    chmodSync(shared, 0o777);
    expect(() => writeState(inv(join(shared, 'state')), { version: 1, fenced: [] })).toThrow(
      unsafe(new RegExp(shared)),
    );
    chmodSync(shared, 0o1777);
    expect(() => writeState(inv(join(shared, 'state')), { version: 1, fenced: [] })).not.toThrow();
  });

  it('ensurePrivateDir makes missing directories 0700', () => {
    const dir = join(root, 'a', 'b');
    ensurePrivateDir(dir);
    expect(lstatSync(dir).mode & 0o777).toBe(0o700);
  });

  it('writePrivateFile leaves no temp file when the rename fails', () => {
    mkdirSync(join(root, 'state', 'x.json'), { recursive: true, mode: 0o700 });
    expect(() => writePrivateFile(join(root, 'state', 'x.json'), '{}')).toThrow();
    expect(readdirSync(join(root, 'state'))).toEqual(['x.json']);
  });
});

describe('a run', () => {
  it('makes its journal and audit-log directories 0700 and refuses them when others can write them', () => {
    const dirs = { journalDir: join(root, 'state', 'journal'), auditLog: join(root, 'logs', 'audit.log') };
    ensureRunDirs(dirs);
    expect(lstatSync(dirs.journalDir).mode & 0o777).toBe(0o700);
    expect(lstatSync(join(root, 'logs')).mode & 0o777).toBe(0o700);
    chmodSync(join(root, 'logs'), 0o777);
    expect(() => ensureRunDirs(dirs)).toThrow(unsafe(/logs \(mode 0777\) can be written/));
    chmodSync(join(root, 'logs'), 0o700);
    chmodSync(join(root, 'state'), 0o775);
    expect(() => ensureRunDirs(dirs)).toThrow(
      unsafe(/above the state directory .*journal, can be changed by another user/),
    );
  });
});

describe('the fence registry', () => {
  it('writes through the same helper: 0600, no temp file, a loose directory refused', async () => {
    const reg = fenceRegistry(inv());
    const rec: FenceRecord = {
      host: 'a.test',
      dataDir: '/var/lib/pg',
      at: '2026-01-01T00:00:00Z',
      newPrimary: 'b.test',
      how: 'unreachable',
      reason: 'unreachable during a test failover',
    };
    await reg.record(rec);
    expect(await reg.list()).toHaveLength(1);
    const file = join(root, 'state', 'lab.fences.json');
    expect(lstatSync(file).mode & 0o777).toBe(0o600);
    expect(readdirSync(join(root, 'state'))).toEqual(['lab.fences.json']);
    expect(await reg.clear('a.test', '/var/lib/pg')).toBe(true);
    expect(await reg.clear('a.test', '/var/lib/pg')).toBe(false);
    expect(await reg.list()).toEqual([]);
    chmodSync(join(root, 'state'), 0o777);
    await expect(reg.record(rec)).rejects.toMatchObject({ code: 'E_STATE_UNSAFE' });
  });
});
