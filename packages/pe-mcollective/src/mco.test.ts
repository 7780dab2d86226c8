import { describe, expect, it } from 'vitest';
import { Redactor, type ExecOptions, type ExecResult, type Host } from '@pe-stack/pe-host';
import { resolveLayout } from '@pe-stack/pe-config-files';
import { mcoPing, parsePing } from './mco.js';

const OUT = `master1.example.com                       time=43.12 ms
master2.example.com                       time=44.03 ms


---- ping statistics ----
2 replies max: 44.03 min: 43.12 avg: 43.58
`;

/** A host whose exec returns a canned result (and records the argv). */
function canned(result: Omit<ExecResult, 'ms'>, seen: string[][]): Host {
  const redactor = new Redactor(['S3cret-Psk-Value']);
  return {
    name: 'master1.example.com',
    redactor,
    exec: async (argv: readonly string[], opts?: ExecOptions) => {
      seen.push([...argv]);
      if (result.code !== 0 && !opts?.allowFailure) throw new Error('unexpected');
      return { ...result, ms: 1 };
    },
  } as unknown as Host;
}

describe('mco ping', () => {
  it('parses the answering identities', () => {
    expect(parsePing(OUT)).toEqual(['master1.example.com', 'master2.example.com']);
    expect(parsePing('---- ping statistics ----\nNo responses received\n')).toEqual([]);
  });

  it('runs with the layout client.cfg, bounded discovery and connection; no answer is an empty result', async () => {
    const seen: string[][] = [];
    const layout = resolveLayout('debian');
    const r = await mcoPing({
      fqdn: 'master1.example.com',
      layout,
      host: canned({ code: 4, stdout: '\n---- ping statistics ----\nNo responses received\n', stderr: '' }, seen),
    });
    expect(r.responders).toEqual([]);
    expect(seen[0]).toEqual([
      'mco',
      'ping',
      '--config',
      '/etc/mcollective/client.cfg',
      '--dt',
      '3',
      '--connection-timeout',
      '10',
    ]);
  });

  it('a broker that cannot be reached is an error, with secrets masked', async () => {
    const layout = resolveLayout('debian');
    const host = canned(
      {
        code: 1,
        stdout: '',
        stderr: 'client.rb:39: Timeout occured while trying to connect to middleware (psk S3cret-Psk-Value)\n',
      },
      [],
    );
    const err = (await mcoPing({ fqdn: 'master1.example.com', layout, host }).catch((e: unknown) => e)) as Error;
    expect(err.message).toContain('Timeout occured while trying to connect to middleware');
    expect(err.message).not.toContain('S3cret-Psk-Value');
  });
});
