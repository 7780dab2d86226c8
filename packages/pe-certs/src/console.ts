import type { Host } from '@pe-stack/pe-host';
import { sequenceArgv, validateHostname } from '@pe-stack/pe-host';
import { applyEdits, fileOf, type ApplyResult, type Layout } from '@pe-stack/pe-config-files';
import { CertError } from './errors.js';

/**
 * pe3's console certificate, `pe-internal-dashboard-<fqdn>`, obtained from
 * the primary CA the way the pe_secondary module does it: the name in the
 * primary's autosign.conf, the console's settings.yml and httpd vhost
 * pointed at the files under the dashboard's certs directory, then the
 * console's rake tasks `cert:create_key_pair`, `cert:request` and
 * `cert:retrieve`, each only when the file it creates is missing.
 */
export interface ConsoleCertOptions {
  layout: Layout;
  /** The console node's FQDN (the certname suffix). */
  fqdn: string;
  /** The CA server the console asks (primary_cname). */
  caServer: string;
  /** inventory_server in settings.yml (default: the console's own FQDN). */
  inventoryServer?: string;
  sudo?: boolean;
}

export interface ConsoleCertPaths {
  certname: string;
  dir: string;
  caCert: string;
  crl: string;
  cert: string;
  privateKey: string;
  publicKey: string;
}

export function consoleCertPaths(layout: Layout, fqdn: string): ConsoleCertPaths {
  validateHostname(fqdn);
  if (!layout.console || !layout.dirs.consoleCertsDir)
    throw new CertError('E_CA_COMMAND', `the ${layout.name} layout has no console.`);
  const certname = `${layout.console.cnPrefix}-${fqdn}`;
  const dir = layout.dirs.consoleCertsDir;
  return {
    certname,
    dir,
    caCert: `${dir}/${certname}.ca_cert.pem`,
    crl: `${dir}/${certname}.ca_crl.pem`,
    cert: `${dir}/${certname}.cert.pem`,
    privateKey: `${dir}/${certname}.private_key.pem`,
    publicKey: `${dir}/${certname}.public_key.pem`,
  };
}

export interface ConsoleCertResult {
  certname: string;
  autosign: ApplyResult;
  settings: ApplyResult;
  vhost: ApplyResult;
  /** The rake tasks that ran (those whose output file was missing), by task name. */
  ran: string[];
}

/** Autosign entry on the primary (idempotent). */
export function consoleAutosign(primary: Host, o: ConsoleCertOptions): Promise<ApplyResult> {
  const p = consoleCertPaths(o.layout, o.fqdn);
  return applyEdits(
    primary,
    [
      {
        kind: 'lines',
        path: fileOf(o.layout, 'autosignConf').path,
        create: true,
        write: { mode: 0o644 },
        ops: [{ op: 'add', entry: p.certname }],
      },
    ],
    { sudo: o.sudo ?? true },
  ).then((r) => r[0]!);
}

/**
 * The console's tasks as one rake process when every command is the same
 * rake invocation with its task last (the PE 3 layout's): each task runs once,
 * in order, and the first failure stops the rest, as the separate runs did,
 * with one Rails start instead of one per task. Otherwise undefined.
 */
export function oneRakeRun(argvs: readonly (readonly string[])[]): string[] | undefined {
  const [first] = argvs;
  if (!first) return undefined;
  if (argvs.length === 1) return [...first];
  const prefix = first.slice(0, -1);
  const same = argvs.every((a) => a.length === first.length && a.slice(0, -1).every((w, i) => w === prefix[i]));
  const tasks = argvs.map((a) => a.at(-1)!);
  if (
    !same ||
    !/(^|\/)rake$/.test(prefix[0] ?? '') ||
    new Set(tasks).size !== tasks.length ||
    tasks.some((t) => !/^[a-z_]+:[a-z_]+$/.test(t))
  )
    return undefined;
  return [...prefix, ...tasks];
}

type ConsoleTaskKey = 'consoleCreateKeyPair' | 'consoleCertRequest' | 'consoleCertRetrieve';

interface ConsoleTask {
  key: ConsoleTaskKey;
  /** The rake task's name. */
  task: string;
  /** The file the task creates: the task is due while it is missing. */
  creates: string;
}

export async function ensureConsoleCert(
  primary: Host,
  consoleHost: Host,
  o: ConsoleCertOptions,
): Promise<ConsoleCertResult> {
  validateHostname(o.caServer);
  const sudo = o.sudo ?? true;
  const p = consoleCertPaths(o.layout, o.fqdn);
  const autosign = await consoleAutosign(primary, o);
  // which tasks are due, looked at before the files are written (a file cache answers these now; after a write it
  // would ask the host again: what it knew absent may have been created): the writes do not change the answer
  const todo = await dueConsoleTasks(consoleHost, p, sudo);
  const [settings, vhost] = await pointConsoleAtCert(consoleHost, o, p, sudo);
  const ran = todo.length === 0 ? [] : await runConsoleTasks(consoleHost, { layout: o.layout, paths: p, todo, sudo });
  return { certname: p.certname, autosign, settings, vhost, ran };
}

/** The console's rake tasks whose output file is missing, in order. */
async function dueConsoleTasks(consoleHost: Host, p: ConsoleCertPaths, sudo: boolean): Promise<ConsoleTask[]> {
  const tasks: ConsoleTask[] = [
    { key: 'consoleCreateKeyPair', task: 'cert:create_key_pair', creates: p.publicKey },
    { key: 'consoleCertRequest', task: 'cert:request', creates: p.caCert },
    { key: 'consoleCertRetrieve', task: 'cert:retrieve', creates: p.cert },
  ];
  const todo: ConsoleTask[] = [];
  for (const t of tasks) if (!(await consoleHost.exists(t.creates, { sudo }))) todo.push(t);
  return todo;
}

/** The console's settings.yml and httpd vhost pointed at the certificate files. */
async function pointConsoleAtCert(
  consoleHost: Host,
  o: ConsoleCertOptions,
  p: ConsoleCertPaths,
  sudo: boolean,
): Promise<[settings: ApplyResult, vhost: ApplyResult]> {
  const rel = (abs: string) => `certs/${abs.slice(abs.lastIndexOf('/') + 1)}`;
  // both files in one applyEdits (written together: one round trip where the host can)
  const [settings, vhost] = await applyEdits(
    consoleHost,
    [
      {
        kind: 'yaml',
        path: fileOf(o.layout, 'consoleSettingsYml').path,
        ops: [
          { op: 'set', path: ['ca_server'], value: o.caServer },
          { op: 'set', path: ['cn_name'], value: p.certname },
          { op: 'set', path: ['ca_certificate_path'], value: rel(p.caCert) },
          { op: 'set', path: ['ca_crl_path'], value: rel(p.crl) },
          { op: 'set', path: ['certificate_path'], value: rel(p.cert) },
          { op: 'set', path: ['private_key_path'], value: rel(p.privateKey) },
          { op: 'set', path: ['public_key_path'], value: rel(p.publicKey) },
          { op: 'set', path: ['inventory_server'], value: o.inventoryServer ?? o.fqdn },
        ],
      },
      {
        kind: 'apache',
        path: fileOf(o.layout, 'consoleVhostConf').path,
        ops: [
          { op: 'set', directive: 'SSLCACertificateFile', value: p.caCert },
          { op: 'set', directive: 'SSLCertificateChainFile', value: p.caCert },
          { op: 'set', directive: 'SSLCARevocationFile', value: p.crl },
          { op: 'set', directive: 'SSLCertificateFile', value: p.cert },
          { op: 'set', directive: 'SSLCertificateKeyFile', value: p.privateKey },
        ],
      },
    ],
    { sudo },
  );
  return [settings!, vhost!];
}

interface ConsoleTaskRun {
  layout: Layout;
  paths: ConsoleCertPaths;
  /** The due tasks (at least one). */
  todo: readonly ConsoleTask[];
  sudo: boolean;
}

/** Runs the due tasks and checks that each created its file; returns the names of the tasks that ran. */
async function runConsoleTasks(consoleHost: Host, o: ConsoleTaskRun): Promise<string[]> {
  const { paths: p, todo, sudo } = o;
  // the tasks whose file is missing, in one command (one round trip: each task after the other, the first failure
  // stops the rest), then every file they create looked for at once; the first missing one names its task
  const argvs = todo.map(({ key }) => {
    const argv = o.layout.commands[key];
    if (!argv.length)
      throw new CertError('E_CA_COMMAND', `the ${o.layout.name} layout has no ${key} command.`, {
        host: consoleHost.name,
      });
    return argv;
  });
  // cert:create_key_pair alone only makes the key pair in the certs directory; cert:request and cert:retrieve also
  // talk to the CA (the request is stored on the primary): then nothing is declared and every file may have changed
  const localOnly = todo.every(({ key }) => key === 'consoleCreateKeyPair');
  const r = await consoleHost.exec(oneRakeRun(argvs) ?? sequenceArgv(argvs), {
    sudo,
    allowFailure: true,
    timeoutMs: 300_000 * argvs.length,
    ...(localOnly ? { changesFiles: [p.dir] } : {}),
  });
  const created = await Promise.all(todo.map(({ creates }) => consoleHost.exists(creates, { sudo })));
  const stderrTail = () => consoleHost.redactor.redact(r.stderr.trim().split('\n').slice(-3).join(' '));
  const ran: string[] = [];
  for (const [k, { key, task, creates }] of todo.entries()) {
    if (created[k]) {
      ran.push(task);
      continue;
    }
    const argv = argvs[k]!;
    throw new CertError(
      'E_CA_COMMAND',
      `\`${argv.join(' ')}\` ${r.code !== 0 ? `exited ${r.code}` : `did not create ${creates}`}: ${stderrTail()}`,
      {
        host: consoleHost.name,
        certname: p.certname,
        hint:
          key === 'consoleCertRetrieve'
            ? `Check that ${p.certname} is in the primary's autosign.conf and signed (puppet cert list ${p.certname}).`
            : undefined,
      },
    );
  }
  if (r.code !== 0) {
    throw new CertError('E_CA_COMMAND', `\`${argvs.at(-1)!.join(' ')}\` exited ${r.code}: ${stderrTail()}`, {
      host: consoleHost.name,
      certname: p.certname,
    });
  }
  return ran;
}
