import { execFileSync } from 'node:child_process';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidInputError } from './errors.js';
import { quoteArg, sequenceArgv, shellQuote } from './quote.js';

/** Runs the quoted line through a real POSIX shell and returns the argv it saw. */
function throughShell(argv: string[]): string[] {
  const out = execFileSync('sh', ['-c', `printf '%s\\0' ${shellQuote(argv)}`]);
  return out.toString('utf8').split('\0').slice(0, -1);
}

describe('shellQuote', () => {
  it('passes awkward arguments through a real shell unchanged', () => {
    const awkward = [
      'a b',
      "it's",
      '"dq"',
      '$(touch /tmp/pwned)',
      '`id`',
      'a;b',
      'x\ny',
      '*',
      '~',
      '$HOME',
      '',
      '\\',
      '-n',
      "'",
      "''",
      '!',
      '&&',
      '|',
      '>',
      '%s',
      '\t',
    ];
    expect(throughShell(awkward)).toEqual(awkward);
  });

  it('round-trips arbitrary strings (property)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.string({ unit: 'binary' }).filter((s) => !s.includes('\0')),
          { minLength: 1, maxLength: 6 },
        ),
        (args) => {
          expect(throughShell(args)).toEqual(args);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('leaves plain words bare and quotes the rest', () => {
    expect(quoteArg('puppetserver')).toBe('puppetserver');
    expect(quoteArg('/etc/puppet/puppet.conf')).toBe('/etc/puppet/puppet.conf');
    expect(quoteArg('a b')).toBe("'a b'");
  });

  it('refuses NUL bytes and empty commands', () => {
    expect(() => shellQuote(['a\0b'])).toThrow(InvalidInputError);
    expect(() => shellQuote([])).toThrow(InvalidInputError);
  });
});

describe('sequenceArgv', () => {
  it('runs each argv unchanged, in order, and stops at the first failure with its status', () => {
    const awkward = ['a b', '$(touch /tmp/pwned)', "it's", ';', '&&'];
    const [sh, c, script] = sequenceArgv([
      ['printf', '%s\\0', ...awkward],
      ['printf', 'second\\0'],
    ]);
    expect([sh, c]).toEqual(['sh', '-c']);
    expect(execFileSync('sh', ['-c', script!]).toString('utf8').split('\0').slice(0, -1)).toEqual([
      ...awkward,
      'second',
    ]);
    const failing = sequenceArgv([
      ['sh', '-c', 'exit 3'],
      ['touch', '/nonexistent-dir/never'],
    ]);
    let status: number | undefined;
    try {
      execFileSync(failing[0]!, failing.slice(1), { stdio: 'pipe' });
    } catch (e) {
      status = (e as { status?: number }).status;
    }
    expect(status).toBe(3);
    expect(() => sequenceArgv([])).toThrow(InvalidInputError);
  });
});
