import { InvalidInputError } from './errors.js';

const SAFE = /^[A-Za-z0-9_\-+=.,/:@%^]+$/;

/**
 * The one function that turns an argv array into a POSIX shell command line.
 * Every remote command goes through it; nothing else builds shell strings.
 * Each argument is single-quoted unless it is made only of characters a shell
 * never interprets, so spaces, quotes, `$()`, `;`, globs and newlines arrive
 * unchanged. NUL cannot be carried in an argument and is refused.
 */
export function shellQuote(argv: readonly string[]): string {
  if (argv.length === 0) throw new InvalidInputError('an empty command was given.');
  return argv.map(quoteArg).join(' ');
}

export function quoteArg(arg: string): string {
  if (typeof arg !== 'string') throw new InvalidInputError(`a command argument is not a string: ${String(arg)}`);
  if (arg.includes('\0')) throw new InvalidInputError('a command argument contains a NUL byte.');
  if (arg === '') return "''";
  if (SAFE.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/**
 * Several commands as ONE command (one round trip): `sh -c` running each
 * argv, quoted by shellQuote, one after another; the first that fails stops
 * the rest and its exit status is the command's.
 */
export function sequenceArgv(argvs: readonly (readonly string[])[]): string[] {
  if (argvs.length === 0) throw new InvalidInputError('an empty list of commands was given.');
  return ['sh', '-c', argvs.map((a) => shellQuote(a)).join(' && ')];
}
