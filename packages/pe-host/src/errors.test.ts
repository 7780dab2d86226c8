import { describe, expect, it } from 'vitest';
import { CommandTimeoutError, FileNotFoundError, HostError, PeError } from './errors.js';

describe('PeError', () => {
  it('keeps the sentence (shortMessage) apart from the hint; message shows both', () => {
    const e = new CommandTimeoutError('m1', ['sleep', '9'], 500);
    expect(e.shortMessage).toBe('m1: `sleep 9` did not finish within 500 ms and was killed on the host.');
    expect(e.hint).toBe('Look at the service on the host; rerun with a longer timeout if it is merely slow.');
    expect(e.message).toBe(`${e.shortMessage} ${e.hint}`);
  });

  it('without a hint, message is the sentence', () => {
    const e = new FileNotFoundError('m1', '/etc/x');
    expect(e.hint).toBeUndefined();
    expect(e.message).toBe(e.shortMessage);
  });

  it('a hint on a line of its own is kept in message, trimmed in hint', () => {
    const e = new PeError('E_X', 'two issues:\n  a\n  b', { hint: '\nFix the file.' });
    expect(e.message).toBe('two issues:\n  a\n  b \nFix the file.');
    expect(e.hint).toBe('Fix the file.');
  });

  it('names the class and carries a code of its package', () => {
    const e = new HostError('E_IO', '/x: gone', { host: 'm1' });
    expect(e).toBeInstanceOf(PeError);
    expect(e.name).toBe('HostError');
    expect(e.toJSON()).toEqual({
      name: 'HostError',
      code: 'E_IO',
      host: 'm1',
      step: undefined,
      message: 'm1: /x: gone',
    });
  });
});
