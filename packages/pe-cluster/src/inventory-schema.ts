import { isIP } from 'node:net';
import { validateHostname } from '@pe-stack/pe-host';
import { z } from 'zod';

/**
 * zod schemas for the two inventory shapes: ours (`cluster`, `masters`, ...)
 * and Puppet Bolt's inventory.yaml v2 (`targets`, `groups`, `config`, with
 * our keys under `vars`). The schemas check shape; cross-field rules (one
 * primary, unique names, host-key policy, env references) are checked after,
 * with the same file/line/key reporting.
 */

/** A value quoted for a message: JSON escapes, so a newline or escape sequence in it cannot forge output. */
export function quote(v: unknown): string {
  const s = JSON.stringify(String(v));
  return s.length > 80 ? `${s.slice(0, 77)}..."` : s;
}

/** A DNS host name, or an IPv4/IPv6 address as node:net reads it (no brackets, no `::::`). */
export function isHostOrIp(v: string): boolean {
  if (v.includes(':')) return isIP(v) === 6;
  if (/^[0-9.]+$/.test(v)) return isIP(v) === 4;
  try {
    validateHostname(v);
    return true;
  } catch {
    return false;
  }
}

export const hostname = z.string({ error: 'expected a host name' }).superRefine((v, ctx) => {
  if (!isHostOrIp(v))
    ctx.addIssue({
      code: 'custom',
      message: `${quote(v)} is not a valid host name: expected letters, digits, hyphens and dots`,
    });
});

/** A DNS zone: a host name, optionally with the trailing root dot. */
const zoneName = z.string({ error: 'expected the zone to update' }).superRefine((v, ctx) => {
  const bare = v.endsWith('.') ? v.slice(0, -1) : v;
  if (bare.includes(':') || /^[0-9.]+$/.test(bare) || !isHostOrIp(bare))
    ctx.addIssue({
      code: 'custom',
      message: `${quote(v)} is not a DNS zone name: expected labels of letters, digits and hyphens`,
    });
});

/** A DNS server: a host name or an IP address. */
const serverName = z.string({ error: 'expected the DNS server (address or name)' }).superRefine((v, ctx) => {
  if (!isHostOrIp(v))
    ctx.addIssue({ code: 'custom', message: `${quote(v)} is not a DNS server: expected a host name or an IP address` });
});

/** A string without control characters (a newline in a path or argument would reach a program's input). */
const plainText = (what: string) =>
  z
    .string({ error: `expected ${what}` })
    .min(1, { error: `expected ${what}` })
    .refine((v) => !hasControl(v), { error: `expected ${what} without control characters (newline, tab, escape)` });

/** Whether `v` holds a C0 control character or DEL. */
export function hasControl(v: string): boolean {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

/** dns_alt_names entries: host names, optionally a leading `*.` wildcard. */
export const altName = z.string({ error: 'expected a DNS name' }).superRefine((v, ctx) => {
  try {
    validateHostname(v.startsWith('*.') ? v.slice(2) : v);
  } catch {
    ctx.addIssue({ code: 'custom', message: `${quote(v)} is not a valid DNS name` });
  }
});

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const USER_NAME = /^[a-z_][a-z0-9_.-]*\$?$/i;

/** `{env: NAME}`: ours. */
export const envRef = z.strictObject({
  env: z.string().regex(ENV_NAME, { error: 'expected an environment variable name' }),
});
/** `{_plugin: env_var, var: NAME}`: Bolt's reference plugin (also `env_plugin`, the module of the same purpose). */
export const boltEnvRef = z.strictObject({
  _plugin: z.enum(['env_var', 'env_plugin'], {
    error: 'expected _plugin: env_var (the only reference plugin pe-cluster resolves)',
  }),
  var: z.string().regex(ENV_NAME, { error: 'expected an environment variable name' }),
  optional: z.boolean().optional(),
  default: z.string().optional(),
});
/** A secret: a reference to an environment variable (preferred) or a literal (accepted, masked everywhere, warned about). */
export const secretValue = z.union([z.string(), envRef, boltEnvRef], {
  error: 'expected {env: NAME}, {_plugin: env_var, var: NAME} or a string',
});
export type SecretValue = z.infer<typeof secretValue>;

const fingerprint = z.string().regex(/^SHA256:[A-Za-z0-9+/]{43}=?$/, {
  error: 'expected an OpenSSH fingerprint such as SHA256:AbC...(43 characters)',
});

/** Bolt ssh options that change nothing for pe-cluster's own SSH client: accepted and ignored. */
export const BOLT_IGNORED_SSH = [
  'batch-mode',
  'cleanup',
  'copy-command',
  'disconnect-timeout',
  'encryption-algorithms',
  'extensions',
  'host-key-algorithms',
  'interpreters',
  'kex-algorithms',
  'load-config',
  'login-shell',
  'mac-algorithms',
  'script-dir',
  'tmpdir',
  'tty',
] as const;

/** Bolt ssh options whose meaning pe-cluster cannot honour: refused with a reason rather than silently ignored. */
export const BOLT_REFUSED_SSH: Record<string, string> = {
  password: 'SSH password authentication is not supported: use a private key or ssh-agent',
  'native-ssh': 'pe-cluster has its own SSH client; remove native-ssh',
  'ssh-command': 'pe-cluster has its own SSH client; remove ssh-command',
  host: 'set the address with the target uri instead of config.ssh.host',
};

export const sshConfig = z
  .object({
    user: z.string().regex(USER_NAME, { error: 'expected a user name' }).optional(),
    port: z.number({ error: 'expected a port number' }).int().min(1).max(65535).optional(),
    'private-key': z
      .union([z.string(), z.strictObject({ 'key-data': secretValue })], {
        error: 'expected a key file path or {key-data: ...}',
      })
      .optional(),
    'host-key-check': z.boolean({ error: 'expected true or false' }).optional(),
    /** ours: a known_hosts file (default ~/.ssh/known_hosts) */
    'known-hosts': z.string().min(1).optional(),
    /** ours: pinned host key fingerprints */
    'host-keys': z.array(fingerprint).optional(),
    /** ours: explicit opt-in to accept an unknown key once (a changed key is always refused) */
    'trust-on-first-use': z.boolean().optional(),
    proxyjump: z.string().min(1).optional(),
    'run-as': z.string().optional(),
    'run-as-command': z.array(z.string()).optional(),
    'sudo-executable': z.string().optional(),
    'sudo-password': secretValue.optional(),
    'connect-timeout': z.number({ error: 'expected seconds' }).positive().max(600).optional(),
    /** ours: commands at once on one connection (sshd MaxSessions is 10) */
    'max-channels': z.number().int().min(1).max(9).optional(),
    ...Object.fromEntries(BOLT_IGNORED_SSH.map((k) => [k, z.unknown().optional()])),
    ...Object.fromEntries(Object.keys(BOLT_REFUSED_SSH).map((k) => [k, z.unknown().optional()])),
  })
  .strict();
export type SshInput = z.infer<typeof sshConfig>;

export const LAYOUT_NAMES = ['pe3', 'debian'] as const;
export const DNS_PROVIDERS = ['manual', 'hosts-file', 'nsupdate', 'command'] as const;

/**
 * How `primary_cname` is moved on failover: `manual` (the operator), `hosts-file`
 * (/etc/hosts on every node), `nsupdate` (RFC 2136 with a TSIG key read from a
 * file, never on a command line), `command` (the operator's hook, given the name
 * and the address as its last two arguments).
 */
export const dnsSettings = z.discriminatedUnion(
  'provider',
  [
    z.strictObject({ provider: z.literal('manual') }),
    z.strictObject({ provider: z.literal('hosts-file') }),
    z.strictObject({
      provider: z.literal('nsupdate'),
      server: serverName,
      port: z.number().int().min(1).max(65535).optional(),
      zone: zoneName,
      ttl: z.number().int().min(0).max(86400).optional(),
      key_file: plainText('a TSIG key file (BIND key syntax, as tsig-keygen writes it)'),
    }),
    z.strictObject({
      provider: z.literal('command'),
      command: z
        .array(plainText('an argument'), { error: 'expected argv: [program, args...]' })
        .min(1, { error: 'expected at least the program' }),
      timeout: z.number().positive().max(600).optional(),
    }),
  ],
  { error: 'expected {provider: manual|hosts-file|nsupdate|command, ...}' },
);
export type DnsSettings = z.infer<typeof dnsSettings>;

/** Cluster-wide settings: top level in our format, under `vars` in a Bolt inventory. */
export const clusterSettings = {
  cluster: z
    .string({ error: 'expected a cluster name' })
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, { error: 'expected letters, digits, dots, hyphens, underscores' }),
  layout: z.enum(LAYOUT_NAMES, { error: 'expected pe3 or debian' }),
  /** Per-site overrides deep-merged into the layout (pe-config-files resolveLayout). */
  layout_overrides: z.record(z.string(), z.unknown(), { error: 'expected a mapping of layout fields' }).optional(),
  primary_cname: hostname,
  general_cname: hostname,
  dns_alt_names: z.array(altName, { error: 'expected a list of DNS names' }).optional(),
  backups: plainText('a directory path').optional(),
  journals: plainText('a directory path').optional(),
  audit_log: plainText('a file path').optional(),
  dns: dnsSettings.optional(),
  /** Seconds between two CRL refreshes on each secondary (pe-crl-refresh, installed by join). */
  crl_refresh_interval: z
    .number({ error: 'expected a number of seconds' })
    .int({ error: 'expected a whole number of seconds' })
    .min(5, { error: 'expected at least 5 seconds' })
    .max(86_400, { error: 'expected at most 86400 seconds (a day)' })
    .optional(),
};

export const MASTER_ROLES = ['primary', 'secondary'] as const;

const master = z.strictObject(
  {
    name: hostname,
    role: z.enum(MASTER_ROLES, { error: 'expected primary or secondary' }),
    address: hostname.optional(),
    ssh: sshConfig.optional(),
  },
  { error: 'expected a mapping with name and role' },
);

const agent = z.union(
  [hostname, z.strictObject({ name: hostname, address: hostname.optional(), ssh: sshConfig.optional() })],
  {
    error: 'expected a host name or {name, address, ssh}',
  },
);

export const ownInventory = z.strictObject({
  ...clusterSettings,
  masters: z.array(master, { error: 'expected a list of masters' }).min(1, { error: 'expected at least one master' }),
  agents: z.array(agent, { error: 'expected a list of agents' }).optional(),
  ssh: sshConfig.optional(),
});
export type OwnInventoryInput = z.infer<typeof ownInventory>;

// ---- Bolt inventory.yaml v2 ----

export const NODE_ROLES = ['primary', 'secondary', 'agent'] as const;

/** Our keys in a target's (or group's) vars. */
export const targetVars = z
  .object({
    role: z.enum(NODE_ROLES, { error: 'expected primary, secondary or agent' }).optional(),
    certname: hostname.optional(),
    /** ours: the address to connect to, when the uri is a name that does not resolve from the controller */
    address: hostname.optional(),
  })
  .loose();

/** Any Bolt transport is accepted in the file; only the cluster's targets must use ssh (checked per target). */
const boltConfig = z
  .object({
    transport: z
      .string({ error: 'expected a transport name such as ssh' })
      .regex(/^[a-z][a-z0-9_-]*$/, { error: 'expected a transport name such as ssh' })
      .optional(),
    ssh: sshConfig.optional(),
  })
  .loose();

const boltTarget = z.union(
  [
    z.string().min(1),
    z
      .object({
        uri: z.string().min(1).optional(),
        name: z.string().min(1).optional(),
        alias: z.union([z.string(), z.array(z.string())]).optional(),
        config: boltConfig.optional(),
        vars: targetVars.optional(),
        facts: z.record(z.string(), z.unknown()).optional(),
        features: z.array(z.string()).optional(),
      })
      .strict(),
  ],
  { error: 'expected a target uri or {uri, name, config, vars}' },
);

export interface BoltGroupInput {
  name: string;
  targets?: z.infer<typeof boltTarget>[] | undefined;
  groups?: BoltGroupInput[] | undefined;
  config?: z.infer<typeof boltConfig> | undefined;
  vars?: Record<string, unknown> | undefined;
  facts?: Record<string, unknown> | undefined;
  features?: string[] | undefined;
}

const boltGroup: z.ZodType<BoltGroupInput> = z.lazy(() =>
  z
    .object({
      name: z.string({ error: 'expected a group name' }).regex(/^[a-z0-9_][a-z0-9_-]*$/, {
        error:
          'expected lower-case letters, digits, underscores and hyphens, not starting with a hyphen (Bolt group names)',
      }),
      targets: z.array(boltTarget).optional(),
      groups: z.array(boltGroup).optional(),
      config: boltConfig.optional(),
      vars: z.record(z.string(), z.unknown()).optional(),
      facts: z.record(z.string(), z.unknown()).optional(),
      features: z.array(z.string()).optional(),
      plugin_hooks: z.unknown().optional(),
    })
    .strict(),
);

export const boltInventory = z
  .object({
    version: z.literal(2, { error: 'expected version 2 (Bolt inventory v2)' }).optional(),
    targets: z.array(boltTarget).optional(),
    groups: z.array(boltGroup).optional(),
    config: boltConfig.optional(),
    vars: z.record(z.string(), z.unknown()).optional(),
    facts: z.record(z.string(), z.unknown()).optional(),
    features: z.array(z.string()).optional(),
    plugin_hooks: z.unknown().optional(),
  })
  .strict();
export type BoltInventoryInput = z.infer<typeof boltInventory>;
export type BoltTargetInput = z.infer<typeof boltTarget>;
