import { randomBytes } from 'node:crypto';
import { shellQuote } from './quote.js';
import { validateEnvName, validateRemotePath } from './validate.js';

/**
 * The remote side of a command, as a POSIX sh program. It is a constant:
 * everything variable travels as positional arguments (quoted by shellQuote)
 * or on stdin, never spliced into the program text.
 *   $1 ready marker (pty mode: switch the tty to raw, then announce readiness)
 *   $2 working directory ('' = unchanged)
 *   $3 stdin length in bytes, or '-' to pass stdin straight through
 *   $4 number of environment variables, then their names; their values
 *      arrive base64-encoded, one per line, first on stdin
 *   then the command's argv.
 */
export const WRAPPER = [
  'r=$1; c=$2; l=$3; n=$4; shift 4',
  'if [ -n "$r" ]; then stty raw -echo 2>/dev/null; printf "%s\\n" "$r"; fi',
  'while [ "$n" -gt 0 ]; do IFS= read -r v || exit 125; v=$(printf %s "$v" | base64 -d) || exit 125; export "$1=$v"; shift; n=$((n-1)); done',
  'if [ -n "$c" ]; then cd -- "$c" || exit 126; fi',
  'if [ "$l" = "-" ]; then exec "$@"; fi',
  'if [ "$l" -gt 0 ]; then head -c "$l" | "$@"; else "$@" </dev/null; fi',
].join('\n');

export interface RemoteCommand {
  /** The command line sent to sshd. */
  line: string;
  /** Bytes to send first on stdin (env values), before the caller's stdin. */
  prelude: Buffer;
  /** pty mode: output before this marker line is sudo's, after it the command's. */
  ready: string | undefined;
  /** pty mode: the sudo prompt to answer with the password. */
  prompt: string | undefined;
  /** Remote timeout in seconds, applied by coreutils `timeout` on the host. */
  timeoutSec: number;
}

export interface BuildOptions {
  sudo: boolean;
  /** Use a pty (sudo with a password, or requiretty). */
  pty: boolean;
  timeoutMs: number;
  env?: Record<string, string> | undefined;
  cwd?: string | undefined;
  stdinLength: number;
}

/** Turns argv + options into the one command line sshd receives. */
export function buildRemoteCommand(argv: readonly string[], o: BuildOptions): RemoteCommand {
  const env = Object.entries(o.env ?? {});
  env.forEach(([k]) => validateEnvName(k));
  if (o.cwd !== undefined) validateRemotePath(o.cwd);
  const timeoutSec = Math.max(0.1, o.timeoutMs / 1000);
  const ready = o.pty ? `PE-READY-${randomBytes(6).toString('hex')}` : undefined;
  const prompt = o.pty ? `PE-SUDO-PROMPT-${randomBytes(6).toString('hex')}:` : undefined;
  const wrapped = env.length > 0 || o.cwd !== undefined || o.pty;
  const inner = wrapped
    ? [
        'sh',
        '-c',
        WRAPPER,
        'sh',
        ready ?? '',
        o.cwd ?? '',
        o.pty ? String(o.stdinLength) : '-',
        String(env.length),
        ...env.map(([k]) => k),
        ...argv,
      ]
    : [...argv];
  // in pty mode the command must stay in the tty's foreground process group (else SIGTTIN)
  const timed = ['timeout', ...(o.pty ? ['--foreground'] : []), '-k', '2', `${timeoutSec}s`, ...inner];
  const full = o.sudo ? (o.pty ? ['sudo', '-p', prompt!, '--', ...timed] : ['sudo', '-n', '--', ...timed]) : timed;
  const prelude = Buffer.from(env.map(([, v]) => `${Buffer.from(v, 'utf8').toString('base64')}\n`).join(''), 'utf8');
  return { line: shellQuote(full), prelude, ready, prompt, timeoutSec };
}
