import { ClusterError } from './errors.js';

/** Variables a child process inherits from the CLI: search path, locale, time zone, home. Nothing else. */
const INHERITED = /^(PATH|LANG|LANGUAGE|LC_[A-Z_]+|TZ|HOME)$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface ChildEnvOptions {
  /** Variables the child needs, set on top of the inherited ones (names checked). */
  pass?: Readonly<Record<string, string>>;
  /** The environment to pick from; default process.env. */
  from?: NodeJS.ProcessEnv;
}

/**
 * The environment for a program the CLI starts on the controller (a DNS
 * hook, nsupdate, dig, tar): PATH, LANG, LANGUAGE, LC_*, TZ and HOME from the
 * CLI's own environment, plus `pass`. Everything else (a sudo password,
 * PE_CLUSTER_* key data, cloud tokens) stays in the CLI. PATH falls back to
 * the system's directories when the CLI has none.
 */
export function childEnv(opts: ChildEnvOptions = {}): Record<string, string> {
  const from = opts.from ?? process.env;
  const env: Record<string, string> = { PATH: DEFAULT_PATH };
  for (const [k, v] of Object.entries(from)) if (v !== undefined && INHERITED.test(k)) env[k] = v;
  for (const [k, v] of Object.entries(opts.pass ?? {})) {
    if (!ENV_NAME.test(k) || k.length > 128)
      throw new ClusterError('E_INVALID_INPUT', `"${k}" is not an environment variable name.`, {
        hint: 'Use letters, digits and underscores, not starting with a digit.',
      });
    env[k] = v;
  }
  return env;
}
