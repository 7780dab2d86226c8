#!/usr/bin/env node
/* global process, console */
// /opt/puppet/bin/rake of the PE 3.x simulator: the console's certificate tasks
// (cert:create_key_pair, cert:request, cert:retrieve, driven by
// /etc/puppetlabs/puppet-dashboard/settings.yml against the CA over TLS) and
// the node classifier tasks (nodegroup:*, node:*) stored in the console's real
// PostgreSQL database through database.yml. Every call is recorded.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fail, https, openssl, readFlatYaml, record } from './lib.mjs';

const argv = process.argv.slice(2);
record('rake', argv);
const DASH = '/opt/puppet/share/puppet-dashboard';
const SETTINGS = '/etc/puppetlabs/puppet-dashboard/settings.yml';
const DBYML = '/etc/puppetlabs/puppet-dashboard/database.yml';

const params = {};
const tasks = [];
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '-f') i++;
  else if (/^[A-Za-z_]+=/.test(a)) params[a.slice(0, a.indexOf('='))] = a.slice(a.indexOf('=') + 1);
  else if (!a.startsWith('-')) tasks.push(a);
}
if (argv.includes('-f') && argv[argv.indexOf('-f') + 1] !== `${DASH}/Rakefile`) fail(`No Rakefile found (looking for: ${argv[argv.indexOf('-f') + 1]})`);

const s = () => readFlatYaml(SETTINGS);
const rel = (p) => (p.startsWith('/') ? p : `${DASH}/${p}`);

function sql(text, vars = {}) {
  const d = readFlatYaml(DBYML, 'production');
  const args = ['-h', d.host ?? 'localhost', '-p', String(d.port ?? 5432), '-U', d.username, '-d', d.database, '-X', '-q', '-tA', '-v', 'ON_ERROR_STOP=1'];
  for (const [k, v] of Object.entries(vars)) args.push('-v', `${k}=${v}`);
  return execFileSync('/opt/puppet/bin/psql', args, { input: text, encoding: 'utf8', env: { PGPASSWORD: d.password ?? '', PGCONNECT_TIMEOUT: '5', PATH: process.env.PATH } });
}

// PE 3.0.1+ passes the classifier tasks' arguments in brackets, `task[a,b]`
// (rake splits on commas not escaped by a backslash, trims, then drops one
// level of backslashes); the older `name=... group=...` parameters still work.
// Positional names per task, as in PE 3's console rake API:
const POSITIONAL = {
  'nodegroup:add': ['name', 'classes'],
  'nodegroup:addclass': ['name', 'class'],
  'nodegroup:variables': ['name', 'variables'],
  'node:add': ['name', 'groups', 'classes'],
  'node:addgroup': ['name', 'group'],
  'node:parameters': ['name', 'parameters'],
  'node:groups': ['name', 'groups'],
  'node:listgroups': ['name'],
};
function rakeArgs(str) {
  const out = [];
  const re = /\s*((?:[^\\,]|\\.)*?)\s*(?:,\s*|$)/gy;
  let m;
  while (re.lastIndex < str.length && (m = re.exec(str)) && m[0] !== '') out.push(m[1].replace(/\\(.)/g, '$1'));
  if (/,\s*$/.test(str) && !/\\,\s*$/.test(str)) out.push('');
  return out;
}
/** `k=v,k=v`, commas inside values escaped (split like rake, again). */
const pairs = (list) => rakeArgs(list).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]);
let P = params;
let bracketed = false;
const need = (k) => P[k] ?? fail(`parameter ${k}= is required`);

const TASKS = {
  'cert:create_key_pair': async () => {
    const st = s();
    const key = rel(st.private_key_path);
    mkdirSync(dirname(key), { recursive: true });
    if (!existsSync(key)) openssl(['genrsa', '-out', key, '2048']);
    openssl(['pkey', '-in', key, '-pubout', '-out', rel(st.public_key_path)]);
  },
  'cert:request': async () => {
    const st = s();
    const port = Number(st.ca_port ?? 8140);
    const cacert = await https({ host: st.ca_server, port, path: '/production/certificate/ca', insecure: true });
    if (cacert.status !== 200) fail(`could not get the CA certificate from ${st.ca_server}: ${cacert.status}`);
    writeFileSync(rel(st.ca_certificate_path), cacert.body);
    const csr = openssl(['req', '-new', '-key', rel(st.private_key_path), '-subj', `/CN=${st.cn_name}`]);
    const r = await https({ host: st.ca_server, port, method: 'PUT', path: `/production/certificate_request/${st.cn_name}`, body: csr, ca: cacert.body });
    if (r.status !== 200) fail(`certificate request refused: ${r.body}`);
  },
  'cert:retrieve': async () => {
    const st = s();
    const port = Number(st.ca_port ?? 8140);
    const cacert = readFileSync(rel(st.ca_certificate_path));
    const r = await https({ host: st.ca_server, port, path: `/production/certificate/${st.cn_name}`, ca: cacert });
    if (r.status !== 200) fail(`no signed certificate for ${st.cn_name} on ${st.ca_server} yet (sign it there, or autosign it)`);
    writeFileSync(rel(st.certificate_path), r.body);
    const crl = await https({ host: st.ca_server, port, path: '/production/certificate_revocation_list/ca', ca: cacert });
    if (crl.status === 200) writeFileSync(rel(st.ca_crl_path), crl.body);
  },
  'nodegroup:add': async () => {
    sql("INSERT INTO node_groups (name) VALUES (:'g') ON CONFLICT DO NOTHING;\n", { g: need('name') });
    for (const c of (P.classes ?? '').split(',').filter(Boolean)) sql("INSERT INTO node_group_classes (node_group, class) VALUES (:'g', :'c') ON CONFLICT DO NOTHING;\n", { g: need('name'), c });
  },
  'nodegroup:addclass': async () => {
    sql("INSERT INTO node_group_classes (node_group, class) VALUES (:'g', :'c') ON CONFLICT DO NOTHING;\n", { g: need('name'), c: need('class') });
  },
  'nodegroup:variables': async () => {
    if (P.variables === undefined && bracketed) {
      // `nodegroup:variables[group]`: the group's variables, one `key = value` per line
      console.log(sql("SELECT key || ' = ' || value FROM parameters WHERE owner_type = 'group' AND owner = :'g' ORDER BY 1;\n", { g: need('name') }).trim());
      return;
    }
    for (const [k, v] of pairs(need('variables'))) {
      sql("INSERT INTO parameters (owner_type, owner, key, value) VALUES ('group', :'g', :'k', :'v') ON CONFLICT (owner_type, owner, key) DO UPDATE SET value = EXCLUDED.value;\n", { g: need('name'), k, v });
    }
  },
  'node:add': async () => {
    sql("INSERT INTO nodes (name) VALUES (:'n') ON CONFLICT DO NOTHING;\n", { n: need('name') });
    for (const g of (P.groups ?? '').split(',').filter(Boolean)) sql("INSERT INTO node_group_memberships (node, node_group) VALUES (:'n', :'g') ON CONFLICT DO NOTHING;\n", { n: need('name'), g });
  },
  'node:addgroup': async () => {
    sql("INSERT INTO nodes (name) VALUES (:'n') ON CONFLICT DO NOTHING;\nINSERT INTO node_group_memberships (node, node_group) VALUES (:'n', :'g') ON CONFLICT DO NOTHING;\n", { n: need('name'), g: need('group') });
  },
  'node:parameters': async () => {
    for (const kv of need('parameters').split(',')) {
      const [k, ...v] = kv.split('=');
      sql("INSERT INTO nodes (name) VALUES (:'n') ON CONFLICT DO NOTHING;\nINSERT INTO parameters (owner_type, owner, key, value) VALUES ('node', :'n', :'k', :'v') ON CONFLICT (owner_type, owner, key) DO UPDATE SET value = EXCLUDED.value;\n", { n: need('name'), k, v: v.join('=') });
    }
  },
  'node:groups': async () => {
    if (P.groups !== undefined) {
      // `node:groups[node,g1\,g2]`: the node's groups become exactly these
      sql("DELETE FROM node_group_memberships WHERE node = :'n';\n", { n: need('name') });
      for (const g of P.groups.split(',').map((x) => x.trim()).filter(Boolean)) sql("INSERT INTO node_group_memberships (node, node_group) VALUES (:'n', :'g') ON CONFLICT DO NOTHING;\n", { n: need('name'), g });
      return;
    }
    console.log(sql("SELECT node_group FROM node_group_memberships WHERE node = :'n' ORDER BY 1;\n", { n: need('name') }).trim());
  },
  'node:listgroups': async () => {
    console.log(sql("SELECT node_group FROM node_group_memberships WHERE node = :'n' ORDER BY 1;\n", { n: need('name') }).trim());
  },
  'nodegroup:list': async () => {
    console.log(sql('SELECT name FROM node_groups ORDER BY 1;\n').trim());
  },
};

if (tasks.length === 0) fail('no task given');
// rake invokes a task once per process: a task named again (even with other arguments) does nothing
const invoked = new Set();
for (const word of tasks) {
  const m = /^([^[]+)(?:\[(.*)\])?$/s.exec(word);
  const t = m[1];
  const fn = TASKS[t];
  if (!fn) fail(`Don't know how to build task '${t}' (PE 3.x simulator: ${Object.keys(TASKS).join(', ')})`);
  if (invoked.has(t)) continue;
  invoked.add(t);
  bracketed = m[2] !== undefined;
  P = { ...params };
  if (bracketed) {
    const names = POSITIONAL[t] ?? [];
    rakeArgs(m[2]).forEach((v, i) => {
      if (names[i] && v !== '') P[names[i]] = v;
    });
  }
  await fn().catch((e) => fail(String(e.stderr ?? e.message).trim()));
}
