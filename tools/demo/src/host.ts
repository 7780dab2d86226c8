/**
 * The pe-host demo (`npm run demo:host`): the remote-work layer alone. It starts a throwaway OpenSSH server
 * on 127.0.0.1 (root needed), then shows the Host layer doing real work over
 * one SSH connection: commands with awkward arguments, an atomic write with
 * a backup, a no-op rewrite, a dry-run plan with a masked secret, a tree copy
 * with a verified manifest, and a refused host key.
 */
import { promises as fs } from 'node:fs';
import { copyTree, DryRunHost, HostKeyUnknownError, Redactor, SshHost } from '@pe-stack/pe-host';
import { startTestSshd } from '@pe-stack/testkit/sshd';

const say = (s: string) => process.stdout.write(`${s}\n`);

if (process.getuid?.() !== 0) {
  say('The demo starts its own sshd and needs root. Run it as root (CI does).');
  process.exit(2);
}

const sshd = await startTestSshd();
const redactor = new Redactor();
const host = new SshHost({
  name: 'demo.lab.test',
  address: '127.0.0.1',
  port: sshd.port,
  privateKey: sshd.clientKeyPath,
  knownHosts: sshd.knownHostsPath,
  redactor,
});
const base = `${sshd.dir}/demo`;
try {
  say(`sshd on 127.0.0.1:${sshd.port}, host key ${sshd.hostKeyFingerprint} (pinned)`);
  const r = await host.exec(['printf', '%s\\n', 'a b', '$(rm -rf /)', "it's"]);
  say(`exec: ${JSON.stringify(r.stdout)} in ${r.ms.toFixed(1)} ms`);

  await host.mkdir(base);
  const conf = `${base}/puppet.conf`;
  await host.writeFile(conf, '[main]\nserver = old.lab.test\n', { mode: 0o644 });
  const w = await host.writeFile(conf, '[main]\nserver = master.lab.test\nca_server = master.lab.test\n');
  say(`write: changed=${w.changed}, backup ${w.backup}`);
  say(
    `rewrite same content: changed=${(await host.writeFile(conf, '[main]\nserver = master.lab.test\nca_server = master.lab.test\n')).changed}`,
  );

  const dry = new DryRunHost(host);
  redactor.add('s3cret-db-pass');
  await dry.writeFile(
    `${base}/database.ini`,
    '[database]\nsubname = //master.lab.test:5432/puppetdb\npassword = s3cret-db-pass\n',
    { mode: 0o640 },
  );
  await dry.exec(['systemctl', 'restart', 'puppetdb'], { sudo: true });
  say('dry-run plan (nothing done):');
  for (const m of dry.mutations)
    say(m.kind === 'write' ? `  write ${m.path}\n${m.diff.replace(/^/gm, '    ')}` : `  ${JSON.stringify(m)}`);
  say(`database.ini exists after the dry run: ${await host.exists(`${base}/database.ini`)}`);

  await host.exec([
    'sh',
    '-c',
    'mkdir -p "$1/signed" && for i in 1 2 3; do echo "cert $i" > "$1/signed/node$i.pem"; done',
    'sh',
    `${base}/ca`,
  ]);
  const copy = await copyTree(host, `${base}/ca`, host, `${base}/ca-copy`);
  say(`tree copy: ${copy.files} files, ${copy.bytes} bytes streamed, manifests match (${copy.ms.toFixed(0)} ms)`);

  const empty = `${sshd.dir}/empty_known_hosts`;
  await fs.writeFile(empty, '');
  const stranger = new SshHost({
    name: 'demo.lab.test',
    address: '127.0.0.1',
    port: sshd.port,
    privateKey: sshd.clientKeyPath,
    knownHosts: empty,
  });
  const err = await stranger.exec(['true']).catch((e: unknown) => e);
  say(
    `unknown host key: ${err instanceof HostKeyUnknownError ? `refused (${err.code}): ${err.message}` : 'NOT refused'}`,
  );
  await stranger.close();
  say(`connections: ${host.stats.connects}, commands: ${host.stats.commands}`);
} finally {
  await host.close();
  await sshd.stop();
}
