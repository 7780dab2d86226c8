import { join } from 'node:path';
import {
  LocalHost,
  readFilesOneByOne,
  writeFilesOneByOne,
  type BatchWrite,
  type ExecOptions,
  type Host,
  type ReadFilesOptions,
  type WriteFilesOptions,
} from '@pe-stack/pe-host';
import { parseInventory, type Inventory } from '@pe-stack/pe-cluster';

/** A stand-in for a separate machine on this one. */
export interface JailOptions {
  /** Commands are recorded here ([host, ...argv]) and not run (they answer code 0, no output). */
  calls?: string[][];
  /** An unreachable host: every command fails as a connection timeout would. */
  down?: boolean;
}

const FILE_OPS = new Set(['readFile', 'writeFile', 'stat', 'exists', 'remove', 'mkdir']);

/**
 * A LocalHost named `name` whose files live under `root/<name>`; commands
 * run here unchanged unless `calls` records them or `down` fails them.
 */
export function jailedHost(root: string, name: string, opts: JailOptions = {}): Host {
  const base = new LocalHost({ name });
  const p = (path: string) => join(root, name, path);
  return new Proxy(base, {
    get(target, prop, recv) {
      const v = Reflect.get(target, prop, recv) as unknown;
      if (typeof v !== 'function') return v;
      if (prop === 'exec' && opts.down) return () => Promise.reject(new Error('connect ETIMEDOUT'));
      if (prop === 'exec' && opts.calls) {
        const calls = opts.calls;
        return (argv: string[], _o?: ExecOptions) => {
          calls.push([name, ...argv]);
          return Promise.resolve({ code: 0, stdout: '', stderr: '', ms: 0 });
        };
      }
      if (FILE_OPS.has(String(prop)))
        return (path: string, ...rest: unknown[]) => (v as (...a: unknown[]) => unknown).call(target, p(path), ...rest);
      // the batches file by file through this proxy, so that their paths are jailed too
      if (prop === 'readFiles')
        return (paths: string[], o?: ReadFilesOptions) => readFilesOneByOne(recv as Host, paths, o);
      if (prop === 'writeFiles')
        return (files: BatchWrite[], o?: WriteFilesOptions) => writeFilesOneByOne(recv as Host, files, o);
      return (v as (...a: unknown[]) => unknown).bind(target);
    },
  });
}

/**
 * The test cluster's inventory (layout given; primary_cname ca.test, general_cname puppet.test), parsed as if read
 * from `root/inventory.yaml`: `masters` as YAML flow mappings, the primary first.
 */
export function testInventory(root: string, layout: 'pe3' | 'debian', masters: readonly string[]): Inventory {
  const yaml = [
    'cluster: t',
    `layout: ${layout}`,
    'primary_cname: ca.test',
    'general_cname: puppet.test',
    'masters:',
    ...masters.map((m) => `  - ${m}`),
    '',
  ].join('\n');
  return parseInventory(yaml, join(root, 'inventory.yaml'), { env: {}, home: root });
}
