#!/usr/bin/env node
/* global process, console, setTimeout */
// `puppet` of the PE 3.x simulator (/opt/puppet/bin/puppet): `cert` against the
// local OpenSSL CA, `agent -t` against a master's pe-httpd stand-in over real
// TLS, `config print`, `resource service`. Every call is recorded.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { CONFDIR, SSLDIR, ca, fail, fqdn, https, openssl, readIni, record, setting } from './lib.mjs';

const argv = process.argv.slice(2);
record('puppet', argv);
const conf = readIni(`${CONFDIR}/puppet.conf`);
const opt = (name) => {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === `--${name}`) return argv[i + 1];
    if (argv[i].startsWith(`--${name}=`)) return argv[i].slice(name.length + 3);
  }
  return undefined;
};
const flag = (...names) => names.some((n) => argv.includes(n));

async function main() {
  const [face, action, ...rest] = argv;
  if (face === 'cert') return cert(action, rest);
  if (face === 'agent') return agent();
  if (face === 'config' && action === 'print') {
    const mode = opt('section') ?? 'agent';
    for (const key of rest.filter((a) => !a.startsWith('--') && a !== mode)) console.log(setting(conf, key, mode) ?? defaults(key) ?? '');
    return 0;
  }
  if (face === 'resource' && action === 'service') {
    const [name, ...props] = rest;
    const ensure = props.find((p) => p.startsWith('ensure='))?.slice(7);
    if (ensure) execFileSync('systemctl', [ensure === 'running' ? 'start' : 'stop', name], { stdio: 'inherit' });
    const active = (() => {
      try {
        execFileSync('systemctl', ['is-active', '-q', name]);
        return 'running';
      } catch {
        return 'stopped';
      }
    })();
    console.log(`service { '${name}':\n  ensure => '${active}',\n}`);
    return 0;
  }
  fail(`the PE 3.x simulator's puppet does not implement "${argv.join(' ')}"`, 1);
}

function defaults(key) {
  return { confdir: CONFDIR, ssldir: SSLDIR, vardir: '/var/opt/lib/pe-puppet', certname: fqdn(), server: 'puppet', cadir: `${SSLDIR}/ca` }[key];
}

function cert(action, rest) {
  const names = rest.filter((a) => !a.startsWith('--'));
  if (!existsSync(`${SSLDIR}/ca/ca_crt.pem`) && action !== 'list') fail('Could not find CA: this host is not a certificate authority', 1);
  try {
    switch (action) {
      case 'list':
        process.stdout.write(ca(['list', flag('--all', '-a') ? '--all' : '']));
        return 0;
      case 'sign':
        for (const n of names) process.stdout.write(ca(['sign', n, flag('--allow-dns-alt-names') ? '--allow-dns-alt-names' : '']));
        return 0;
      case 'revoke':
        for (const n of names) process.stdout.write(ca(['revoke', n]));
        return 0;
      case 'clean':
        for (const n of names) {
          if (existsSync(`${SSLDIR}/ca/signed/${n}.pem`)) ca(['revoke', n]);
          process.stdout.write(ca(['clean', n]));
        }
        return 0;
      case 'generate': {
        const [n] = names;
        const alt = opt('dns_alt_names');
        const key = `${SSLDIR}/private_keys/${n}.pem`;
        makeKey(n);
        writeFileSync(`${SSLDIR}/ca/requests/${n}.pem`, csr(n, key, alt));
        process.stdout.write(ca(['sign', n, '--allow-dns-alt-names']));
        writeFileSync(`${SSLDIR}/certs/${n}.pem`, readFileSync(`${SSLDIR}/ca/signed/${n}.pem`));
        return 0;
      }
      default:
        fail(`unknown cert action "${action}"`);
    }
  } catch (e) {
    process.stderr.write(String(e.stderr ?? e.message));
    return e.status ?? 1;
  }
  return 0;
}

function makeKey(name) {
  for (const d of ['private_keys', 'public_keys', 'certs', 'certificate_requests']) mkdirSync(`${SSLDIR}/${d}`, { recursive: true });
  const key = `${SSLDIR}/private_keys/${name}.pem`;
  if (!existsSync(key)) {
    openssl(['genrsa', '-out', key, '2048']);
    openssl(['pkey', '-in', key, '-pubout', '-out', `${SSLDIR}/public_keys/${name}.pem`]);
  }
  return key;
}

function csr(name, key, alt) {
  const args = ['req', '-new', '-key', key, '-subj', `/CN=${name}`];
  if (alt) args.push('-addext', `subjectAltName=${alt.split(',').map((a) => `DNS:${a.trim()}`).join(',')}`);
  return openssl(args);
}

async function agent() {
  if (!flag('-t', '--test', '--onetime')) fail('only `puppet agent -t` is simulated', 1);
  // settings on the command line win over puppet.conf, as in Puppet
  const certname = opt('certname') ?? setting(conf, 'certname') ?? fqdn();
  const server = opt('server') ?? setting(conf, 'server') ?? 'puppet';
  const caServer = opt('ca_server') ?? setting(conf, 'ca_server') ?? server;
  const waitforcert = Number(opt('waitforcert') ?? 0);
  const caPath = `${SSLDIR}/certs/ca.pem`;
  const certPath = `${SSLDIR}/certs/${certname}.pem`;
  const key = makeKey(certname);
  if (!existsSync(caPath)) {
    const r = await https({ host: caServer, path: '/production/certificate/ca', insecure: true });
    if (r.status !== 200) fail(`Could not request certificate: Error 404 on SERVER: Not Found: could not find CA certificate on ${caServer}`);
    writeFileSync(caPath, r.body);
  }
  const cacert = readFileSync(caPath);
  if (!existsSync(certPath)) {
    const get = () => https({ host: caServer, path: `/production/certificate/${certname}`, ca: cacert });
    let r = await get();
    if (r.status !== 200) {
      const reqPath = `${SSLDIR}/certificate_requests/${certname}.pem`;
      if (!existsSync(reqPath)) {
        writeFileSync(reqPath, csr(certname, key, opt('dns_alt_names') ?? setting(conf, 'dns_alt_names', 'master')));
        const put = await https({ host: caServer, method: 'PUT', path: `/production/certificate_request/${certname}`, body: readFileSync(reqPath), ca: cacert });
        if (put.status !== 200) fail(`Could not request certificate: ${put.body.trim()}`);
        console.log(`Info: Creating a new SSL certificate request for ${certname}`);
      }
      const end = Date.now() + waitforcert * 1000;
      while ((r = await get()).status !== 200 && Date.now() < end) await new Promise((res) => setTimeout(res, 1000));
      if (r.status !== 200) {
        console.log('Exiting; no certificate found and waitforcert is disabled');
        return 1;
      }
    }
    writeFileSync(certPath, r.body);
  }
  const tls = { ca: cacert, cert: readFileSync(certPath), key: readFileSync(key) };
  const crl = await https({ host: caServer, path: '/production/certificate_revocation_list/ca', ...tls });
  if (crl.status === 200) writeFileSync(`${SSLDIR}/crl.pem`, crl.body);
  const r = await https({ host: server, path: `/production/catalog/${certname}`, ...tls }).catch((e) => fail(`Could not retrieve catalog from remote server: ${e.message}`));
  if (r.status !== 200) fail(`Could not retrieve catalog from remote server: Error ${r.status} on SERVER: ${r.body.trim()}`);
  const catalog = JSON.parse(r.body);
  console.log(`Info: Caching catalog for ${certname}`);
  console.log(`Info: Applying configuration version '${catalog.version}'`);
  let changed = 0;
  for (const res of catalog.resources) {
    if (res.type !== 'File') continue;
    const before = existsSync(res.title) ? readFileSync(res.title, 'utf8') : undefined;
    if (before !== res.content) {
      writeFileSync(res.title, res.content);
      console.log(`Notice: /Stage[main]/Main/File[${res.title}]/content: content changed`);
      changed++;
    }
  }
  mkdirSync('/var/opt/lib/pe-puppet/state', { recursive: true });
  writeFileSync('/var/opt/lib/pe-puppet/state/last_run_summary.yaml', `---\nserver: ${server}\ncompiled_by: ${catalog.compiled_by}\nchanged: ${changed}\n`);
  console.log('Notice: Finished catalog run');
  return flag('--detailed-exitcodes') && changed ? 2 : 0;
}

main().then(
  (code) => process.exit(code ?? 0),
  (e) => fail(e.message),
);
