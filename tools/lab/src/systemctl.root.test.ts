import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ASSETS_DIR } from './config.js';

/*
 * The systemctl stand-in's drop-in support, with the real script: a private
 * mount namespace puts a temporary /var/local (assets-dir, enabled units),
 * /etc/systemd/system (drop-ins) and /var/log over the machine's, so nothing
 * of the machine is read or changed. The units are small stand-ins whose
 * start and ExecStartPre lines append to a trace file.
 */
let root: string;
let trace: string;

function unit(name: string, extra = ''): string {
  return `DESCRIPTION="test unit ${name}"
ORDER=40
${extra}
start() { echo "start ${name}" >> ${trace}; : > ${root}/run/${name}; }
stop() { echo "stop ${name}" >> ${trace}; rm -f ${root}/run/${name}; }
active() { [ -e ${root}/run/${name} ]; }
`;
}

function dropIn(dir: string, file: string, text: string): void {
  mkdirSync(join(root, 'systemd', dir), { recursive: true });
  writeFileSync(join(root, 'systemd', dir, file), text);
}

function systemctl(...args: string[]): { code: number; stderr: string } {
  const script = `mount --bind "$1/varlocal" /var/local && mount --bind "$1/systemd" /etc/systemd/system && mount --bind "$1/log" /var/log && shift && exec bash "$0" "$@"`;
  const r = spawnSync(
    'unshare',
    ['--mount', '--propagation', 'private', 'bash', '-c', script, join(root, 'assets', 'systemctl.sh'), root, ...args],
    { encoding: 'utf8', timeout: 30_000 },
  );
  return { code: r.status ?? -1, stderr: r.stderr };
}

const traced = (): string[] => readFileSync(trace, 'utf8').trim().split('\n').filter(Boolean);

beforeAll(() => {
  if (process.getuid?.() !== 0) throw new Error('run as root (vitest --project root)');
});

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'lab-systemctl-'));
  trace = join(root, 'trace');
  writeFileSync(trace, '');
  for (const d of ['assets/services', 'varlocal/lab/enabled', 'systemd', 'log', 'run'])
    mkdirSync(join(root, d), { recursive: true });
  copyFileSync(join(ASSETS_DIR, 'systemctl.sh'), join(root, 'assets/systemctl.sh'));
  copyFileSync(join(ASSETS_DIR, 'lib.sh'), join(root, 'assets/lib.sh'));
  writeFileSync(join(root, 'varlocal/lab/assets-dir'), `${join(root, 'assets')}\n`);
  writeFileSync(join(root, 'assets/services/plain.sh'), unit('plain'));
  writeFileSync(join(root, 'assets/services/demo.sh'), unit('demo'));
  // stands for a template instance, as the lab's postgresql stands for postgresql@15-main
  writeFileSync(join(root, 'assets/services/tpl.sh'), unit('tpl', 'UNIT_NAMES="tpl@15-main.service"'));
  writeFileSync(join(root, 'assets/services/other.sh'), unit('other'));
});

afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

const pre = (tag: string, prefix = '') =>
  `ExecStartPre=${prefix}/bin/sh -c 'echo "pre ${tag} $0" >> ${'$TRACE'}' arg\n`;

describe('systemctl stand-in: systemd drop-ins', () => {
  it('a unit without drop-ins starts and stops as before', () => {
    expect(systemctl('start', 'plain').code).toBe(0);
    expect(systemctl('is-active', 'plain').code).toBe(0);
    expect(systemctl('stop', 'plain.service').code).toBe(0);
    expect(traced()).toEqual(['start plain', 'stop plain']);
  });

  it('runs every ExecStartPre of <unit>.service.d/*.conf in lexical order before start, restart and enable --now; not before stop or when already active', () => {
    const p = (tag: string, prefix = '') => pre(tag, prefix).replace('$TRACE', trace);
    dropIn(
      'demo.service.d',
      'b.conf',
      `[Unit]\nDescription=x\nExecStartPre=/bin/false\n[Service]\n${p('b1')}# a comment\n${p('b2', '+')}`,
    );
    dropIn('demo.service.d', 'a.conf', `[Service]\n${p('a')}`);
    dropIn('demo.service.d', 'ignored.txt', `[Service]\n${p('not-a-conf')}`);
    dropIn('other.service.d', 'a.conf', `[Service]\n${p('other')}`);
    expect(systemctl('start', 'demo.service').code).toBe(0);
    expect(traced()).toEqual(['pre a arg', 'pre b1 arg', 'pre b2 arg', 'start demo']);
    expect(systemctl('start', 'demo').code).toBe(0); // already active: nothing runs
    expect(systemctl('stop', 'demo').code).toBe(0);
    expect(systemctl('restart', 'demo').code).toBe(0);
    expect(traced().slice(4)).toEqual(['stop demo', 'pre a arg', 'pre b1 arg', 'pre b2 arg', 'start demo']);
    writeFileSync(trace, '');
    expect(systemctl('stop', 'demo').code).toBe(0);
    expect(systemctl('enable', '--now', 'demo').code).toBe(0);
    expect(traced()).toEqual(['stop demo', 'pre a arg', 'pre b1 arg', 'pre b2 arg', 'start demo']);
  });

  it('a failing ExecStartPre stops the start (the unit stays inactive); with the `-` prefix the failure is ignored', () => {
    const p = (tag: string) => pre(tag).replace('$TRACE', trace);
    dropIn('demo.service.d', 'a.conf', `[Service]\n${p('a')}ExecStartPre=/bin/sh -c 'exit 3'\n${p('after')}`);
    const r = systemctl('start', 'demo');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("demo.service: ExecStartPre=/bin/sh -c 'exit 3' exited 3");
    expect(systemctl('is-active', 'demo').code).toBe(3);
    expect(traced()).toEqual(['pre a arg']);
    dropIn(
      'demo.service.d',
      'a.conf',
      `[Service]\n${p('a')}ExecStartPre=-/bin/sh -c 'exit 3'\nExecStartPre=-/nonexistent/command\n${p('after')}`,
    );
    writeFileSync(trace, '');
    const ok = systemctl('start', 'demo');
    expect(ok.code).toBe(0);
    expect(ok.stderr).toContain('exited 3 (ignored)');
    expect(traced()).toEqual(['pre a arg', 'pre after arg', 'start demo']);
  });

  it('an empty ExecStartPre= resets the list, as systemd does', () => {
    const p = (tag: string) => pre(tag).replace('$TRACE', trace);
    dropIn('demo.service.d', '10-a.conf', `[Service]\n${p('dropped')}`);
    dropIn('demo.service.d', '20-b.conf', `[Service]\nExecStartPre=\n${p('kept')}`);
    expect(systemctl('start', 'demo').code).toBe(0);
    expect(traced()).toEqual(['pre kept arg', 'start demo']);
  });

  it('a stand-in for a template instance honours <template>@.service.d, <instance>.service.d and its own; merged by file name, the most specific file of a name wins', () => {
    const p = (tag: string) => pre(tag).replace('$TRACE', trace);
    dropIn('tpl@.service.d', '10-guard.conf', `[Service]\n${p('template')}`);
    dropIn('tpl@.service.d', '30-shared.conf', `[Service]\n${p('template-30')}`);
    dropIn('tpl@15-main.service.d', '05-instance.conf', `[Service]\n${p('instance')}`);
    dropIn('tpl@15-main.service.d', '30-shared.conf', `[Service]\n${p('instance-30')}`);
    dropIn('tpl.service.d', '20-own.conf', `[Service]\n${p('own')}`);
    dropIn('tpl@16-main.service.d', '01-other-instance.conf', `[Service]\n${p('other-instance')}`);
    expect(systemctl('start', 'tpl').code).toBe(0);
    expect(traced()).toEqual([
      'pre instance arg',
      'pre template arg',
      'pre own arg',
      'pre instance-30 arg',
      'start tpl',
    ]);
  });

  it("the lab postgresql stand-in names Debian's per-cluster unit", () => {
    const names = execFileSync(
      'bash',
      ['-c', '. "$0"; printf %s "$UNIT_NAMES"', join(ASSETS_DIR, 'services/postgresql.sh')],
      { encoding: 'utf8' },
    );
    expect(names).toMatch(/^postgresql@\d+-main\.service$/);
  });
});
