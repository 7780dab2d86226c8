import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestSshd, type TestSshd } from '@pe-stack/testkit/sshd';
import { UnsafePathError } from './errors.js';
import { LocalHost } from './local.js';
import { SshHost, SUDO_COMMIT_SCRIPT, type SshHostConfig } from './ssh.js';
import type { WriteOptions } from './host.js';

// Root writes into a directory another user owns (postgres's, puppet's), while
// that user races every write: a process running as `nobody` loops swapping
// any temp file it sees for a symlink to a root-owned 0600 victim, replacing
// private temp directories with a symlink to a directory of its own, and now
// and then (20 times) the target itself for a symlink to the victim. It must win no race:
// the victim keeps owner, group, mode and content. Needs root.
const suffix = String(process.pid % 100000);
const NOPW = `pehrace${suffix}`; // NOPASSWD sudo: the sudo commit path
const sudoers = `/etc/sudoers.d/pe-host-race-${suffix}`;
const NOBODY = 65534;
const TRIES = 1000;
// writers at once, each on its own targets (the machine has 2 cores; round trips, not CPU, bound a write)
const LANES = 4;
const PER_LANE = TRIES / LANES;
const top = `/dev/shm/pe-race-${suffix}`;
const victim = `${top}/victim`;
const victimBytes = 'VICTIM: root only\n';
const w = `${top}/w`; // nobody's directory, where the writes go
const trap = `${top}/trap`; // nobody's own directory, where redirected writes would land
const stopFile = `${top}/stop`;

let sshd: TestSshd;
const hosts: SshHost[] = [];
const racers: ChildProcess[] = [];

function host(extra: Partial<SshHostConfig> = {}): SshHost {
  const h = new SshHost({
    name: 'race.test',
    address: '127.0.0.1',
    port: sshd.port,
    user: 'root',
    privateKey: sshd.clientKeyPath,
    knownHosts: sshd.knownHostsPath,
    connectTimeoutMs: 10_000,
    ...extra,
  });
  hosts.push(h);
  return h;
}

function sh(argv: string[]): string {
  return execFileSync(argv[0]!, argv.slice(1)).toString();
}

// The racer, run as nobody: plain synchronous fs calls in a tight loop.
const RACER = `
const fs = require('fs');
const [w, trap, victim, stop] = process.argv.slice(1);
const c = { loops: 0, tempSwaps: 0, dirSwaps: 0, targetSwaps: 0 };
const side = trap + '/.side';
let lastTarget = 0;
const swapForLink = (p) => {
  try { fs.unlinkSync(side); } catch {}
  fs.symlinkSync(victim, side);
  fs.renameSync(side, p);
};
for (;;) {
  c.loops++;
  if ((c.loops & 63) === 0 && fs.existsSync(stop)) break;
  for (const dir of [w, trap]) {
    let names = [];
    try { names = fs.readdirSync(dir); } catch { continue; }
    for (const name of names) {
      const p = dir + '/' + name;
      try {
        const st = fs.lstatSync(p);
        if (name.includes('.pe-tmp-') || name === 'new') {
          if (st.isFile()) { swapForLink(p); c.tempSwaps++; }
          else if (st.isDirectory()) { fs.rmdirSync(p); fs.symlinkSync(trap, p); c.dirSwaps++; }
        } else if (dir === w && /^f\\d+$/.test(name) && st.isFile() && c.targetSwaps < 20 && Date.now() - lastTarget > 250) {
          swapForLink(p); c.targetSwaps++; lastTarget = Date.now();
        }
      } catch {}
    }
  }
}
process.stdout.write(JSON.stringify(c));
`;

interface RacerCounts {
  loops: number;
  tempSwaps: number;
  dirSwaps: number;
  targetSwaps: number;
}

function startRacer(): { child: ChildProcess; stop: () => Promise<RacerCounts> } {
  const child = spawn(process.execPath, ['-e', RACER, w, trap, victim, stopFile], {
    uid: NOBODY,
    gid: NOBODY,
    cwd: '/',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  racers.push(child);
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    child,
    stop: async () => {
      await fs.writeFile(stopFile, '');
      await exited;
      await fs.rm(stopFile, { force: true });
      return JSON.parse(out) as RacerCounts;
    },
  };
}

/** After a refusal or a racer's swap of the target, root puts things right (unlink never follows). */
async function dropTargetLinks(): Promise<void> {
  for (const name of await fs.readdir(w)) {
    const p = `${w}/${name}`;
    if (/^f\d+$/.test(name) && (await fs.lstat(p).catch(() => undefined))?.isSymbolicLink())
      await fs.unlink(p).catch(() => undefined);
  }
}

interface Outcome {
  ok: number;
  refused: number;
  failed: number;
}

/** Runs `tries` writes against the racer; every outcome but a changed victim is allowed. */
async function underAttack(
  label: string,
  tries: (o: Outcome) => Promise<void>,
): Promise<Outcome & RacerCounts & { ms: number }> {
  const outcome: Outcome = { ok: 0, refused: 0, failed: 0 };
  const racer = startRacer();
  const t0 = performance.now();
  const done = await tries(outcome).then(
    () => undefined,
    (e: unknown) => e,
  );
  const counts = await racer.stop();
  if (done !== undefined) throw done;
  const ms = Math.round(performance.now() - t0);
  const st = await fs.lstat(victim);
  expect({ uid: st.uid, gid: st.gid, mode: st.mode & 0o7777 }).toEqual({ uid: 0, gid: 0, mode: 0o600 });
  expect(await fs.readFile(victim, 'utf8')).toBe(victimBytes);
  const result = { ...outcome, ...counts, ms };
  console.log(`${label}: ${JSON.stringify(result)}`);
  return result;
}

async function count<T>(o: Outcome, write: () => Promise<T>): Promise<void> {
  try {
    await write();
    o.ok++;
  } catch (e) {
    if (e instanceof UnsafePathError) o.refused++;
    else o.failed++;
    await dropTargetLinks();
  }
}

/** Lane `lane`'s i-th target: five files per lane, in nobody's directory. */
function target(lane: number, i: number): string {
  return `${w}/f${lane}${i % 5}`;
}

function inLanes(fn: (lane: number) => Promise<void>): Promise<void> {
  return Promise.all(Array.from({ length: LANES }, (_, lane) => fn(lane))).then(() => undefined);
}

/** One batch: the files before a failed one were written, the failed one is one try. Returns the files tried. */
async function batchTry(o: Outcome, write: () => Promise<unknown[]>): Promise<number> {
  try {
    const n = (await write()).length;
    o.ok += n;
    return n;
  } catch (e) {
    const written = Number(/file (\d+) of/.exec((e as Error).message)?.[1] ?? 1) - 1;
    o.ok += written;
    if (e instanceof UnsafePathError) o.refused++;
    else o.failed++;
    await dropTargetLinks();
    return written + 1;
  }
}

function opts(i: number): WriteOptions {
  return { owner: NOBODY, group: NOBODY, mode: 0o640, backup: i % 50 === 0 };
}

beforeAll(async () => {
  sh(['useradd', '-m', '-s', '/bin/bash', NOPW]);
  sh(['usermod', '-p', '*', NOPW]);
  await fs.writeFile(sudoers, `${NOPW} ALL=(ALL) NOPASSWD: ALL\n`, { mode: 0o440 });
  sh(['visudo', '-cf', sudoers]);
  sshd = await startTestSshd({ users: [NOPW] });
  await fs.mkdir(top, { mode: 0o755 });
  await fs.writeFile(victim, victimBytes, { mode: 0o600 });
  for (const d of [w, trap]) {
    await fs.mkdir(d, { mode: 0o755 });
    await fs.chown(d, NOBODY, NOBODY);
  }
});

afterAll(async () => {
  for (const r of racers) if (r.exitCode === null) r.kill('SIGKILL');
  await Promise.all(hosts.map((h) => h.close().catch(() => undefined)));
  await sshd?.stop();
  await fs.rm(sudoers, { force: true });
  await fs.rm(top, { recursive: true, force: true });
  try {
    sh(['pkill', '-KILL', '-u', NOPW]);
  } catch {
    /* no processes */
  }
  try {
    sh(['userdel', '-r', NOPW]);
  } catch {
    /* already gone */
  }
});

describe('atomic writes into a directory another user owns, against a racing unprivileged process', () => {
  it(`LocalHost.writeFile: ${TRIES} tries, no race won`, async () => {
    const h = new LocalHost();
    const r = await underAttack('LocalHost.writeFile', (o) =>
      inLanes(async (lane) => {
        for (let i = 0; i < PER_LANE; i++) await count(o, () => h.writeFile(target(lane, i), `try ${i}\n`, opts(i)));
      }),
    );
    expect(r.ok + r.refused + r.failed).toBe(TRIES);
    expect(r.ok).toBeGreaterThan(TRIES / 2);
    expect(r.tempSwaps).toBeGreaterThan(0);
  }, 60_000);

  it(`SshHost.writeFile over SFTP as root: ${TRIES} tries, no race won`, async () => {
    const r = await underAttack('SshHost.writeFile (SFTP)', (o) =>
      inLanes(async (lane) => {
        const h = host(); // a connection per lane: one SFTP session commits one file at a time
        for (let i = 0; i < PER_LANE; i++) await count(o, () => h.writeFile(target(lane, i), `try ${i}\n`, opts(i)));
      }),
    );
    expect(r.ok + r.refused + r.failed).toBe(TRIES);
    expect(r.ok).toBeGreaterThan(TRIES / 2);
    expect(r.tempSwaps).toBeGreaterThan(0);
  }, 120_000);

  it(`SshHost.writeFiles (one command per batch): ${TRIES} files, no race won`, async () => {
    const r = await underAttack('SshHost.writeFiles (batch)', (o) =>
      inLanes(async (lane) => {
        const h = host();
        for (let done = 0; done < PER_LANE;) {
          const files = Array.from({ length: Math.min(50, PER_LANE - done) }, (_, k) => ({
            path: target(lane, k),
            data: `try ${done + k}\n`,
            opts: { ...opts(done + k), backup: k < 5 }, // one backup stamp per batch: one backup per target
          }));
          done += await batchTry(o, () => h.writeFiles(files));
        }
      }),
    );
    expect(r.ok + r.refused + r.failed).toBe(TRIES);
    expect(r.ok).toBeGreaterThan(TRIES / 2);
  }, 600_000);

  it(`the sudo commit (SshHost.writeFile through sudo): ${TRIES} runs of its program and 20 writeFile calls, no race won`, async () => {
    const h = host({ user: NOPW });
    // the very program commitWithSudo runs, in a loop inside one sudo command per lane (a writeFile through sudo
    // costs 4 round trips; the race is inside the program)
    const loop = [
      'script=$1; prefix=$2; n=$3; i=0; ok=0; refused=0; failed=0',
      'while [ "$i" -lt "$n" ]; do',
      '  f=$prefix$((i % 5))',
      '  if [ -L "$f" ]; then refused=$((refused + 1)); rm -f -- "$f"; i=$((i + 1)); continue; fi',
      '  rc=0; printf "try %s\\n" "$i" | sh -c "$script" sh "$f" 640 65534:65534 "" 2>/dev/null || rc=$?',
      '  case $rc in 0) ok=$((ok + 1)) ;; 97) refused=$((refused + 1)) ;; *) failed=$((failed + 1)) ;; esac',
      '  i=$((i + 1))',
      'done',
      'echo "$ok $refused $failed"',
    ].join('\n');
    const r = await underAttack('sudo commit', async (o) => {
      await inLanes(async (lane) => {
        const out = await h.exec(['sh', '-c', loop, 'sh', SUDO_COMMIT_SCRIPT, `${w}/f${lane}`, String(PER_LANE)], {
          sudo: true,
          timeoutMs: 290_000,
        });
        const [ok, refused, failed] = out.stdout.trim().split(' ').map(Number);
        o.ok += ok!;
        o.refused += refused!;
        o.failed += failed!;
      });
      for (let i = 0; i < 20; i++) await count(o, () => h.writeFile(target(0, i), `sudo ${i}\n`, opts(i)));
    });
    expect(r.ok + r.refused + r.failed).toBe(TRIES + 20);
    expect(r.ok).toBeGreaterThan(TRIES / 2);
  }, 300_000);

  it('refuses a symlink another user could have made, on every path, and follows one root made in its own directory', async () => {
    const local = new LocalHost();
    const sftp = host();
    const sudo = host({ user: NOPW });
    const link = `${w}/link`;
    await fs.symlink(victim, link);
    await fs.lchown(link, NOBODY, NOBODY);
    for (const write of [
      () => local.writeFile(link, 'x\n'),
      () => sftp.writeFile(link, 'x\n'),
      () => sftp.writeFiles([{ path: link, data: 'x\n' }]),
      () => sudo.writeFile(link, 'x\n'),
      () => sudo.writeFiles([{ path: link, data: 'x\n' }]),
    ]) {
      const e = await write().catch((err: unknown) => err);
      expect(e).toBeInstanceOf(UnsafePathError);
      expect(e).toMatchObject({ code: 'E_PERMISSION', path: link });
    }
    // root's own link in root's own directory, to a file in nobody's: followed, as before
    const own = `${top}/own-link`;
    await fs.symlink(`${w}/followed`, own);
    await fs.writeFile(`${w}/followed`, 'old\n');
    for (const [i, write] of [
      () => local.writeFile(own, 'a\n'),
      () => sftp.writeFile(own, 'b\n'),
      () => sudo.writeFile(own, 'c\n'),
      () => sftp.writeFiles([{ path: own, data: 'd\n' }]),
    ].entries()) {
      expect([await write()].flat()[0]).toMatchObject({ path: `${w}/followed`, changed: true });
      expect(await fs.readFile(`${w}/followed`, 'utf8')).toBe(`${'abcd'[i]}\n`);
    }
    expect((await fs.lstat(own)).isSymbolicLink()).toBe(true);
    const st = await fs.lstat(victim);
    expect(st.mode & 0o7777).toBe(0o600);
    expect(await fs.readFile(victim, 'utf8')).toBe(victimBytes);
  }, 60_000);
});
