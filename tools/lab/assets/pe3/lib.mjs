/* global process */
// Shared helpers of the PE 3.x simulator's stand-ins (run with the machine's node inside lab hosts).
import { execFileSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { request } from 'node:https';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const HERE = dirname(fileURLToPath(import.meta.url));
export const CONFDIR = '/etc/puppetlabs/puppet';
export const SSLDIR = `${CONFDIR}/ssl`;
export const CALLS = '/var/log/pe3-sim/calls.log';

/** Records a call of a stand-in so tests can assert what the product ran. */
export function record(tool, argv, extra = {}) {
  mkdirSync(dirname(CALLS), { recursive: true });
  appendFileSync(CALLS, `${JSON.stringify({ time: new Date().toISOString(), tool, argv, ...extra })}\n`);
}

/** A small INI reader (puppet.conf, database.ini, jetty.ini): sections of key = value. */
export function readIni(path) {
  const out = {};
  let section = 'main';
  if (!existsSync(path)) return out;
  for (const raw of readFileSync(path, 'utf8').split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const m = /^\[([^\]]+)\]$/.exec(line);
    if (m) {
      section = m[1];
      continue;
    }
    const kv = /^([^=]+?)\s*=\s*(.*)$/.exec(line);
    if (kv) (out[section] ??= {})[kv[1]] = kv[2].replace(/^'(.*)'$/, '$1').replace(/^"(.*)"$/, '$1');
  }
  return out;
}

/** A puppet.conf setting as puppet 3 resolves it for a run mode: [runmode] then [main]. */
export function setting(conf, key, mode = 'agent') {
  return conf[mode]?.[key] ?? conf.main?.[key];
}

/** Flat `key: 'value'` YAML (settings.yml, database.yml sections). */
export function readFlatYaml(path, section) {
  const out = {};
  let cur = '';
  for (const raw of readFileSync(path, 'utf8').split('\n')) {
    if (/^\s*#/.test(raw) || !raw.trim()) continue;
    const top = /^([A-Za-z_][\w-]*):\s*(.*)$/.exec(raw);
    if (top) {
      cur = top[1];
      if (!section && top[2] !== '') out[top[1]] = unquote(top[2]);
      continue;
    }
    const nested = /^\s+([A-Za-z_][\w-]*):\s*(.*)$/.exec(raw);
    if (nested && section && cur === section) out[nested[1]] = unquote(nested[2]);
  }
  return out;
}
const unquote = (v) => v.trim().replace(/^'(.*)'$/, '$1').replace(/^"(.*)"$/, '$1');

export function fqdn() {
  return hostname();
}

export function openssl(args, input) {
  return execFileSync('openssl', args, { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
}

export function ca(args) {
  return execFileSync(`${HERE}/ca.sh`, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** One HTTPS request to a PE 3 master (v1 API under /production). */
export function https({ host, port = 8140, method = 'GET', path, body, ca, cert, key, insecure = false }) {
  return new Promise((resolve, reject) => {
    const req = request(
      { host, port, method, path, ca, cert, key, rejectUnauthorized: !insecure, servername: host, timeout: 20000, headers: body ? { 'content-type': 'text/plain' } : {} },
      (res) => {
        let data = '';
        res.on('data', (d) => (data += d));
        res.on('end', () => resolve({ status: res.statusCode, body: data }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`timeout talking to ${host}:${port}`)));
    req.on('error', reject);
    req.end(body);
  });
}

export function fail(message, code = 1) {
  process.stderr.write(`Error: ${message}\n`);
  process.exit(code);
}
