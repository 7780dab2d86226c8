import { clusterSettings } from './inventory-schema.js';
import type { KeyPath } from './yaml-source.js';

/**
 * Bolt `_plugin` references. pe-cluster runs no Bolt plugin: the one it
 * resolves is `env_var` (and `env_plugin`) in a secret (`sudo-password`,
 * `key-data`). Any other reference in a value pe-cluster reads (a target's
 * uri, name or alias, `config.transport`, `config.ssh`, our vars) is refused,
 * naming the key and the plugin; references in data it never reads (facts,
 * features, plugin_hooks, other transports' config, other vars) are left alone.
 */

export interface PluginRef {
  path: KeyPath;
  message: string;
}

const ENV_PLUGINS = new Set(['env_var', 'env_plugin']);
const SECRET_KEYS = new Set(['sudo-password', 'key-data']);
/** Vars pe-cluster reads from a target or group (the rest belong to the operator's Bolt plans). */
const OUR_VARS = new Set(['role', 'certname', 'address', ...Object.keys(clusterSettings)]);

function isRef(v: unknown): v is { _plugin: unknown } {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && '_plugin' in v;
}

function refMessage(plugin: unknown, atSecret: boolean): string {
  const name = JSON.stringify(typeof plugin === 'string' ? plugin : String(plugin));
  return atSecret
    ? `is a Bolt plugin reference (_plugin: ${name}); pe-cluster resolves only _plugin: env_var in secrets: expected {_plugin: env_var, var: NAME} or {env: NAME}`
    : `is a Bolt plugin reference (_plugin: ${name}); pe-cluster does not run Bolt plugins: expected a literal value here`;
}

/** Every reference under `v` (itself included), except env_var ones in a secret. */
function scan(v: unknown, path: KeyPath, out: PluginRef[]): void {
  const atSecret = SECRET_KEYS.has(String(path[path.length - 1]));
  if (isRef(v)) {
    if (!(atSecret && typeof v._plugin === 'string' && ENV_PLUGINS.has(v._plugin)))
      out.push({ path, message: refMessage(v._plugin, atSecret) });
    return;
  }
  if (Array.isArray(v)) v.forEach((x, i) => scan(x, [...path, i], out));
  else if (v !== null && typeof v === 'object')
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) scan(x, [...path, k], out);
}

/** References in our own format: every value is read, so every reference but env_var secrets counts. */
export function pluginRefsInOwn(top: Record<string, unknown>): PluginRef[] {
  const out: PluginRef[] = [];
  scan(top, [], out);
  return out;
}

/** References in a Bolt inventory, where pe-cluster reads the value. */
export function pluginRefsInBolt(top: Record<string, unknown>): PluginRef[] {
  const out: PluginRef[] = [];
  holder(top, [], out);
  return out;
}

/** The top level, a group or a target: the keys pe-cluster reads. */
function holder(h: Record<string, unknown>, path: KeyPath, out: PluginRef[]): void {
  for (const [k, v] of Object.entries(h)) {
    const at = [...path, k];
    if (isRef(v) && !['facts', 'features', 'plugin_hooks'].includes(k)) {
      out.push({ path: at, message: refMessage(v._plugin, false) });
      continue;
    }
    if (k === 'name' || k === 'uri' || k === 'alias' || k === 'version') scan(v, at, out);
    else if ((k === 'targets' || k === 'groups') && Array.isArray(v)) members(v, at, out);
    else if (k === 'config' && v && typeof v === 'object') config(v as Record<string, unknown>, at, out);
    else if (k === 'vars' && v && typeof v === 'object')
      for (const [name, x] of Object.entries(v as Record<string, unknown>))
        if (OUR_VARS.has(name)) scan(x, [...at, name], out);
  }
}

function members(list: unknown[], path: KeyPath, out: PluginRef[]): void {
  list.forEach((m, i) => {
    if (isRef(m)) out.push({ path: [...path, i], message: refMessage(m._plugin, false) });
    else if (m && typeof m === 'object' && !Array.isArray(m)) holder(m as Record<string, unknown>, [...path, i], out);
  });
}

function config(c: Record<string, unknown>, path: KeyPath, out: PluginRef[]): void {
  if ('transport' in c) scan(c.transport, [...path, 'transport'], out);
  if ('ssh' in c) scan(c.ssh, [...path, 'ssh'], out);
}
