#!/usr/bin/env node
/* global process */
// pe-httpd of the PE 3.x simulator: the puppet master's HTTPS endpoint on 8140
// (PE 3's v1 API under /production) with the TLS settings read from
// /etc/puppetlabs/httpd/conf.d/puppetmaster.conf, as Apache would: a missing
// SSLCARevocationFile stops it from starting. The CA endpoints answer only
// while puppet.conf says `[master] ca = true` (pe_secondary sets false).

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, request } from 'node:https';
import { CONFDIR, SSLDIR, ca, fqdn, readIni, record } from './lib.mjs';

function apacheConf() {
  const text = readFileSync('/etc/puppetlabs/httpd/conf.d/puppetmaster.conf', 'utf8');
  const get = (d) => new RegExp(`^\\s*${d}\\s+(\\S+)`, 'm').exec(text)?.[1];
  return {
    cert: get('SSLCertificateFile'),
    key: get('SSLCertificateKeyFile'),
    ca: get('SSLCACertificateFile'),
    crl: get('SSLCARevocationFile'),
  };
}

function autosigned(name) {
  const path = `${CONFDIR}/autosign.conf`;
  if (!existsSync(path)) return false;
  return readFileSync(path, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .some((p) => p === name || (p.startsWith('*.') && name.endsWith(p.slice(1))));
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

function start() {
  const conf = readIni(`${CONFDIR}/puppet.conf`);
  const isCa = (conf.master?.ca ?? 'true') !== 'false';
  const certname = conf.master?.certname ?? conf.main?.certname ?? fqdn();
  const a = apacheConf();
  for (const [k, v] of Object.entries(a)) {
    if (!v || !existsSync(v)) {
      process.stderr.write(`pe-httpd: ${k} file ${v ?? '(unset)'} does not exist or is empty\n`);
      process.exit(1);
    }
  }
  const server = createServer(
    { cert: readFileSync(a.cert), key: readFileSync(a.key), ca: readFileSync(a.ca), crl: readFileSync(a.crl), requestCert: true, rejectUnauthorized: false },
    (req, res) => handle(req, res, { isCa, certname }),
  );
  server.listen(8140, '0.0.0.0');
  return server;
}

function send(res, status, body, type = 'text/plain') {
  res.writeHead(status, { 'content-type': type });
  res.end(body);
}

function handle(req, res, { isCa, certname }) {
  const peer = req.socket.getPeerCertificate();
  const client = req.socket.authorized ? peer?.subject?.CN : undefined;
  const m = /^\/production\/(certificate|certificate_request|certificate_revocation_list|catalog)\/([^/?]+)/.exec(req.url ?? '');
  record('pe-httpd', [req.method, req.url], { client: client ?? null });
  if (!m || !NAME_RE.test(m[2])) return send(res, 404, 'Not Found');
  const [, kind, name] = m;
  const cadir = `${SSLDIR}/ca`;
  if (kind !== 'catalog' && !isCa) return send(res, 404, `Not Found: this master is not a certificate authority (ca = false)`);
  if (kind === 'certificate' && req.method === 'GET') {
    const path = name === 'ca' ? `${cadir}/ca_crt.pem` : `${cadir}/signed/${name}.pem`;
    return existsSync(path) ? send(res, 200, readFileSync(path)) : send(res, 404, `Not Found: Could not find certificate ${name}`);
  }
  if (kind === 'certificate_revocation_list' && req.method === 'GET') return send(res, 200, readFileSync(`${cadir}/ca_crl.pem`));
  if (kind === 'certificate_request' && req.method === 'PUT') {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      if (existsSync(`${cadir}/signed/${name}.pem`)) return send(res, 400, `${name} already has a signed certificate; ignoring certificate request`);
      writeFileSync(`${cadir}/requests/${name}.pem`, body);
      if (autosigned(name)) {
        try {
          ca(['sign', name]);
        } catch (e) {
          return send(res, 400, String(e.stderr ?? e.message));
        }
      }
      send(res, 200, body);
    });
    return;
  }
  if (kind === 'catalog' && req.method === 'GET') {
    // auth.conf: a node may fetch only its own catalog
    if (client !== name) return send(res, 403, `Forbidden request: access to /catalog/${name} [find] denied`);
    storeInPuppetdb(certname, name).then(
      () =>
        send(
          res,
          200,
          JSON.stringify({
            name,
            version: Math.floor(Date.now() / 1000),
            compiled_by: certname,
            resources: [{ type: 'File', title: '/tmp/lab-catalog', content: `catalog compiled by ${certname} for ${name}\n` }],
          }),
          'application/json',
        ),
      (e) => send(res, 500, `Failed to submit 'replace catalog' command for ${name} to PuppetDB: ${e.message}`),
    );
    return;
  }
  send(res, 405, 'Method Not Allowed');
}

/** storeconfigs: the master submits the node to PuppetDB with its own certificate (the whitelist applies). */
function storeInPuppetdb(certname, node) {
  const conf = readIni(`${CONFDIR}/puppetdb.conf`);
  const server = conf.main?.server;
  const port = Number(conf.main?.port ?? 8081);
  if (!server) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: server,
        port,
        method: 'POST',
        path: `/v3/commands?certname=${encodeURIComponent(node)}`,
        ca: readFileSync(`${SSLDIR}/certs/ca.pem`),
        cert: readFileSync(`${SSLDIR}/certs/${certname}.pem`),
        key: readFileSync(`${SSLDIR}/private_keys/${certname}.pem`),
        timeout: 10000,
      },
      (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`PuppetDB answered ${res.statusCode}`))));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

let server = start();
process.on('SIGHUP', () => {
  server.close();
  server = start();
});
process.on('SIGTERM', () => process.exit(0));
