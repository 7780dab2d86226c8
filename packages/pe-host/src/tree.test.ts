import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CommandFailedError } from './errors.js';
import type { ExecOptions, Host } from './host.js';
import { LocalHost } from './local.js';
import { treeManifest, vanishedOnly } from './tree.js';

let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(join(tmpdir(), 'pe-tree-'));
  await fs.mkdir(join(dir, 'requests'));
  await fs.writeFile(join(dir, 'ca_crt.pem'), 'CA\n');
  await fs.writeFile(join(dir, 'requests', 'agent.pem'), 'CSR\n');
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

/** A local host whose hashing removes `gone` after the listing and before the hash (a CA signing meanwhile). */
function racing(gone: string): Host {
  const local = new LocalHost();
  return new Proxy(local, {
    get(target, prop, recv) {
      if (prop !== 'exec') return Reflect.get(target, prop, recv) as unknown;
      return (argv: readonly string[], opts?: ExecOptions) => {
        const script = String(argv[2]).replace(
          'xargs -0 -r sha256sum --',
          `xargs -0 -r sh -c 'rm -f -- "$0"; exec sha256sum -- "$@"' ${JSON.stringify(gone)}`,
        );
        return target.exec([argv[0]!, argv[1]!, script, ...argv.slice(3)], opts);
      };
    },
  });
}

describe('treeManifest', () => {
  it('hashes every regular file, keyed by relative path', async () => {
    const m = await treeManifest(new LocalHost(), dir);
    expect([...m.keys()].sort()).toEqual(['ca_crt.pem', 'requests/agent.pem']);
    expect(m.get('ca_crt.pem')).toMatch(/^[0-9a-f]{64}$/);
  });

  it('a file removed between the listing and its hash is left out (a live CA), not an error', async () => {
    const m = await treeManifest(racing('./requests/agent.pem'), dir);
    expect([...m.keys()]).toEqual(['ca_crt.pem']);
  });

  it('any other failure is a CommandFailedError (a directory that does not exist)', async () => {
    await expect(treeManifest(new LocalHost(), join(dir, 'absent'))).rejects.toBeInstanceOf(CommandFailedError);
    expect(vanishedOnly('sha256sum: ./a: Permission denied\n')).toBe(false);
    expect(vanishedOnly('')).toBe(false);
    expect(vanishedOnly('sha256sum: ./requests/x.pem: No such file or directory\n')).toBe(true);
  });
});
