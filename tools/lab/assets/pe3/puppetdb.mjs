#!/usr/bin/env node
/* global process, URL */
// pe-puppetdb of the PE 3.x simulator: HTTPS on 8081 with the TLS files named
// in /etc/puppetlabs/puppetdb/conf.d/jetty.ini, PE 3's certificate-whitelist
// enforced per request, and a real PostgreSQL behind it through the
// credentials in database.ini (a wrong password or pg_hba rule stops it).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { readIni, record } from './lib.mjs';

const CONFD = '/etc/puppetlabs/puppetdb/conf.d';
const WHITELIST = '/etc/puppetlabs/puppetdb/certificate-whitelist';

function db() {
  const d = readIni(`${CONFD}/database.ini`).database ?? {};
  const m = /^\/\/([^:/]+)(?::(\d+))?\/(.+)$/.exec(d.subname ?? '');
  if (!m) throw new Error(`database.ini: cannot read subname "${d.subname}"`);
  return { host: m[1], port: m[2] ?? '5432', name: m[3], user: d.username, password: d.password };
}

/** Runs SQL through psql with the configured credentials; values travel as psql variables. */
function sql(text, vars = {}) {
  const c = db();
  const args = ['-h', c.host, '-p', c.port, '-U', c.user, '-d', c.name, '-X', '-q', '-tA', '-v', 'ON_ERROR_STOP=1'];
  for (const [k, v] of Object.entries(vars)) args.push('-v', `${k}=${v}`);
  return execFileSync('/opt/puppet/bin/psql', args, { input: text, encoding: 'utf8', env: { PGPASSWORD: c.password ?? '', PGCONNECT_TIMEOUT: '5', PATH: process.env.PATH } });
}

function allowed(cn) {
  if (!existsSync(WHITELIST)) return true;
  return readFileSync(WHITELIST, 'utf8').split('\n').map((l) => l.trim()).includes(cn);
}

try {
  sql('CREATE TABLE IF NOT EXISTS certnames (name text PRIMARY KEY, updated_at timestamptz NOT NULL DEFAULT now());\n');
} catch (e) {
  process.stderr.write(`pe-puppetdb: cannot use the database: ${String(e.stderr ?? e.message).trim()}\n`);
  process.exit(1);
}

const jetty = readIni(`${CONFD}/jetty.ini`).jetty ?? {};
const server = createServer(
  { cert: readFileSync(jetty['ssl-cert']), key: readFileSync(jetty['ssl-key']), ca: readFileSync(jetty['ssl-ca-cert']), requestCert: true, rejectUnauthorized: true },
  (req, res) => {
    const cn = req.socket.getPeerCertificate()?.subject?.CN;
    record('pe-puppetdb', [req.method, req.url], { client: cn ?? null });
    if (!allowed(cn)) {
      res.writeHead(403);
      return res.end(`The client certificate name (${cn}) doesn't appear in the certificate whitelist.`);
    }
    const url = new URL(req.url ?? '/', 'https://x');
    try {
      if (req.method === 'POST' && url.pathname === '/v3/commands') {
        const node = url.searchParams.get('certname') ?? '';
        sql("INSERT INTO certnames (name) VALUES (:'node') ON CONFLICT (name) DO UPDATE SET updated_at = now();\n", { node });
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end('{"uuid":"stored"}');
      }
      if (req.method === 'GET' && url.pathname === '/v3/nodes') {
        const names = sql('SELECT name FROM certnames ORDER BY name;\n').split('\n').filter(Boolean);
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end(JSON.stringify(names.map((name) => ({ name }))));
      }
      if (req.method === 'GET' && url.pathname === '/v3/version') {
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end('{"version":"1.6.3 (PE 3.x simulator)"}');
      }
      res.writeHead(404);
      res.end('Not Found');
    } catch (e) {
      res.writeHead(500);
      res.end(String(e.stderr ?? e.message));
    }
  },
);
server.listen(Number(jetty['ssl-port'] ?? 8081), jetty['ssl-host'] ?? '0.0.0.0');
process.on('SIGTERM', () => process.exit(0));
