// Round trips of the three join steps pe-certs serves (issue #8): each operation that reaches a host counts,
// each step run by pe-steps' engine behind its run-wide FileCache, for check, apply and re-check. A regression in
// the counts fails here.
import { chmod, copyFile, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LocalHost, treeManifest, type ExecOptions, type ExecResult, type Host } from '@pe-stack/pe-host';
import { resolveLayout, type Layout } from '@pe-stack/pe-config-files';
import { FileCache, type FileHint } from '@pe-stack/pe-steps';
import { CountingHost, enrolNode, failure, runStep, tempDir, testCa } from '@pe-stack/testkit/certs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PuppetCertCa, PuppetserverCa } from './ca-puppet.js';
import { consoleAutosign, consoleCertPaths, ensureConsoleCert } from './console.js';
import { Pe3PuppetAgent, PuppetSslAgent } from './enroll.js';
import { PublicKeyMemo } from './keymemo.js';
import { puppetdbSslDir, reinitPuppetdbSsl } from './puppetdb.js';
import { clearWithVerifiedBackup, regenerateNodeCert } from './regenerate.js';
import { puppetSslPaths } from './verify.js';

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
const S = 'secondary1.example.com';

// stand-in for `puppet` (agent runs: `agent --test` / `ssl bootstrap`; the CA: `cert sign` / `ca sign`) on one
// machine: the agent makes its key (dated a minute back: a real agent run, the signing and the fetch take longer
// than PublicKeyMemo's minimum age), its request, and hands it to the CA directory; once signed it fetches
function fakePuppet(cadir: string): string {
  return `#!/bin/sh
CADIR='${cadir}'
sign() {
  req="$CADIR/requests/$1.pem"
  [ -f "$req" ] || { echo "Error: no request for $1" >&2; exit 24; }
  openssl x509 -req -in "$req" -CA "$CADIR/ca_crt.pem" -CAkey "$CADIR/ca_key.pem" -set_serial "0x$(openssl rand -hex 8)" -days 30 -copy_extensions copy -out "$CADIR/signed/$1.pem" 2>/dev/null || exit 1
  rm -f "$req"
  echo "Signed $1"
  exit 0
}
case "$1 $2" in
  "cert sign") for a do n=$a; done; sign "$n" ;;
  "ca sign") sign "$4" ;;
esac
cn=; ssldir=; alt=
while [ $# -gt 0 ]; do
  case $1 in
    --certname) cn=$2; shift ;;
    --ssldir) ssldir=$2; shift ;;
    --dns_alt_names=*) alt=\${1#--dns_alt_names=} ;;
  esac
  shift
done
key="$ssldir/private_keys/$cn.pem"; csr="$ssldir/certificate_requests/$cn.pem"
mkdir -p "$ssldir/private_keys" "$ssldir/certificate_requests" "$ssldir/certs" "$ssldir/public_keys"
if [ -f "$CADIR/signed/$cn.pem" ] && [ -f "$key" ]; then
  cp "$CADIR/signed/$cn.pem" "$ssldir/certs/$cn.pem"; cp "$CADIR/ca_crt.pem" "$ssldir/certs/ca.pem"; cp "$CADIR/ca_crl.pem" "$ssldir/crl.pem"; rm -f "$csr"
  echo "Notice: Finished catalog run"; exit 0
fi
if [ ! -f "$key" ]; then
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$key" 2>/dev/null; chmod 600 "$key"; touch -d "@$(( $(date +%s) - 60 ))" "$key"
fi
if [ -n "$alt" ]; then san="subjectAltName=DNS:$(echo "$alt" | sed 's/,/,DNS:/g')"; openssl req -new -key "$key" -subj "/CN=$cn" -addext "$san" -out "$csr"
else openssl req -new -key "$key" -subj "/CN=$cn" -out "$csr"; fi
cp "$csr" "$CADIR/requests/$cn.pem"
echo "Exiting; no certificate found and waitforcert is disabled"; exit 1
`;
}

let t: Awaited<ReturnType<typeof tempDir>>;
beforeAll(async () => {
  t = await tempDir('rt');
});
afterAll(() => t.cleanup());

interface World {
  log: string[];
  node: Host;
  primary: Host;
  layout: Layout;
  ssldir: string;
  cadir: string;
  puppet: string;
}

/** A primary with a Puppet CA (cadir), a secondary enrolled with its own CA, both behind counting hosts and one file cache. */
async function world(flavour: 'pe3' | 'debian', name: string): Promise<World> {
  const d = join(t.dir, name);
  await mkdir(d, { recursive: true });
  const ca = await testCa(d, 'primary.example.com');
  const own = await testCa(d, S);
  const ssldir = join(d, 'ssl');
  const plainNode = new LocalHost({ name: S });
  await enrolNode(own, plainNode, ssldir, S, [S]);
  const puppet = join(d, 'puppet');
  await writeFile(puppet, fakePuppet(ca.cadir));
  await chmod(puppet, 0o755);
  const confd = join(d, 'puppetdb', 'conf.d');
  await mkdir(confd, { recursive: true });
  await copyFile(fixture('debian-jetty.ini'), join(confd, 'jetty.ini'));
  const me = (await plainNode.exec(['id', '-un'])).stdout.trim();
  const group = (await plainNode.exec(['id', '-gn'])).stdout.trim();
  const layout = resolveLayout(flavour, {
    dirs: { ssldir, cadir: ca.cadir, puppetdbConfdir: confd },
    files: { puppetdbJettyIni: { path: join(confd, 'jetty.ini') } },
    users: { puppetdb: { user: me, group } },
    commands:
      flavour === 'pe3'
        ? {
            caSign: [puppet, 'cert', 'sign', '--allow-dns-alt-names', '{certname}'],
            puppetdbSslSetup: [
              'sh',
              '-c',
              'd=$1; mkdir -p "$d"; cp "$2" "$d/ca.pem"; cp "$3" "$d/public.pem"',
              'sh',
              join(d, 'puppetdb', 'ssl'),
              `${ssldir}/certs/ca.pem`,
              `${ssldir}/certs/${S}.pem`,
            ],
          }
        : { caSign: [puppet, 'ca', 'sign', '--certname', '{certname}'] },
  });
  const log: string[] = [];
  const ssl = puppetSslPaths(ssldir, S);
  const pdb = puppetdbSslDir(layout);
  // what join's file hints name (pe-cluster joinFileHints): the agent's material, PuppetDB's copies, jetty.ini; on the CA its files and the secondary's
  const nodeHints: FileHint[] = [
    { path: ssl.cert },
    { path: ssl.caCert },
    { path: ssl.publicKey },
    { path: ssl.key, content: false },
    { path: `${pdb}/ca.pem` },
    { path: `${pdb}/public.pem` },
    { path: `${pdb}/private.pem`, content: false },
    { path: join(confd, 'jetty.ini') },
  ];
  const caHints: FileHint[] = [
    { path: `${ca.cadir}/ca_crt.pem` },
    { path: `${ca.cadir}/ca_crl.pem` },
    { path: `${ca.cadir}/ca_key.pem`, content: false },
    { path: `${ca.cadir}/requests/${S}.pem` },
    { path: `${ca.cadir}/signed/${S}.pem` },
  ];
  const cache = new FileCache((host) => (host === S ? nodeHints : caHints));
  const node = cache.wrap(new CountingHost(plainNode, log));
  const primary = cache.wrap(new CountingHost(new LocalHost({ name: 'primary.example.com' }), log));
  // the steps before this one read their files: the cache is warm (one batched read per host, not counted below)
  await node.stat(ssl.cert, { sudo: false });
  await primary.stat(`${ca.cadir}/ca_crt.pem`, { sudo: false });
  log.length = 0;
  return { log, node, primary, layout, ssldir, cadir: ca.cadir, puppet };
}

function certificateStep(w: World, flavour: 'pe3' | 'debian', publicKeys: PublicKeyMemo) {
  return (h: { node: Host; primary: Host }) =>
    regenerateNodeCert({
      node: h.node,
      ca:
        flavour === 'pe3'
          ? PuppetCertCa.fromLayout(h.primary, w.layout, { sudo: false })
          : PuppetserverCa.fromLayout(h.primary, w.layout, { sudo: false }),
      agent:
        flavour === 'pe3'
          ? new Pe3PuppetAgent({ ssldir: w.ssldir, caServer: 'master.example.com', bin: w.puppet, sudo: false })
          : new PuppetSslAgent({ ssldir: w.ssldir, caServer: 'master.example.com', bin: w.puppet, sudo: false }),
      certname: S,
      ownNames: ['secondary1'],
      generalCname: 'puppet.example.com',
      primaryCname: 'master.example.com',
      signFromRequestFile: true,
      listOnlyWithFiles: true,
      publicKeys,
      sudo: false,
    });
}

describe('round trips of the join steps (pe-cluster file cache rules)', () => {
  for (const flavour of ['pe3', 'debian'] as const) {
    it(`certificate (${flavour}): check 0, apply 7, re-check 0 (was 17 with the agent stop); a second run is done for free`, async () => {
      const w = await world(flavour, `cert-${flavour}`);
      const memo = new PublicKeyMemo();
      const step = certificateStep(w, flavour, memo);
      const rt = await runStep(w.log, { node: w.node, primary: w.primary }, step);
      expect(rt.checkDone).toBe(false);
      expect(rt.recheckDone).toBe(true);
      expect(rt.check).toEqual([]);
      const exec = (s: string) => expect.stringMatching(s);
      expect(rt.apply).toEqual([
        // the verified backup, the removal and the new ssldir: one command
        exec(`^${S}: exec sh -c .*ssl 771 `),
        // the agent run that submits, and the look at the request it leaves: one command
        exec(`^${S}: exec sh -c ${S}.pem puppet `),
        // the request read on the CA (after a command on another host the CA's cache forgot what was absent), then signed
        expect.stringMatching(/^primary\.example\.com: readFiles \d+$/),
        exec(`^primary.example.com: exec .*puppet ${flavour === 'pe3' ? 'cert' : 'ca'} sign`),
        // the agent run that fetches, then the node's files (for the verification) and the key's public half
        exec(`^${S}: exec .*puppet`),
        expect.stringMatching(`^${S}: readFiles \\d+$`),
        exec(`^${S}: exec openssl pkey`),
      ]);
      expect(rt.recheck).toEqual([]);
      // pe-cluster's step adds the agent stop (pe3, changesFiles: []): 8 in all
      expect(rt.check.length + rt.apply.length + rt.recheck.length).toBeLessThanOrEqual(9);
      // nothing to do now: the check answers from the cache and the memo, without a round trip
      const again = await runStep(w.log, { node: w.node, primary: w.primary }, step);
      expect(again).toMatchObject({ checkDone: true, check: [] });
    });
  }

  it('console-certificate (pe3): 3 round trips (was 4), a second run is done for free', async () => {
    const d = join(t.dir, 'console');
    const certs = join(d, 'certs');
    await mkdir(certs, { recursive: true });
    for (const [f, to] of [
      ['pe3-settings.yml', 'settings.yml'],
      ['pe3-puppetdashboard.conf', 'puppetdashboard.conf'],
      ['pe3-autosign.conf', 'autosign.conf'],
    ] as const)
      await copyFile(fixture(f), join(d, to));
    const base = resolveLayout('pe3', { dirs: { consoleCertsDir: certs } });
    const p = consoleCertPaths(base, S);
    const task = (name: string, ...files: string[]) => [
      'sh',
      '-c',
      `for f in "$@"; do printf ${name} > "$f"; done`,
      'sh',
      ...files,
    ];
    const layout = resolveLayout(base, {
      files: {
        autosignConf: { path: join(d, 'autosign.conf') },
        consoleSettingsYml: { path: join(d, 'settings.yml') },
        consoleVhostConf: { path: join(d, 'puppetdashboard.conf') },
      },
      commands: {
        consoleCreateKeyPair: task('kp', p.privateKey, p.publicKey),
        consoleCertRequest: task('req', p.caCert),
        consoleCertRetrieve: task('cert', p.cert, p.crl),
      },
    });
    const log: string[] = [];
    const hints = new Map<string, FileHint[]>([
      [
        S,
        [
          { path: p.cert },
          { path: p.caCert },
          { path: p.publicKey },
          { path: p.privateKey, content: false },
          { path: join(d, 'settings.yml') },
          { path: join(d, 'puppetdashboard.conf') },
        ],
      ],
      ['primary.example.com', [{ path: join(d, 'autosign.conf') }]],
    ]);
    const cache = new FileCache((host) => hints.get(host) ?? []);
    const node = cache.wrap(new CountingHost(new LocalHost({ name: S }), log));
    const primary = cache.wrap(new CountingHost(new LocalHost({ name: 'primary.example.com' }), log));
    const o = { layout, fqdn: S, caServer: 'master.example.com', sudo: false };
    // join writes the autosign entry with the primary's other files, before this step
    await consoleAutosign(primary, o);
    await node.stat(p.cert, { sudo: false });
    log.length = 0;
    const step = (h: { node: Host; primary: Host }) => ensureConsoleCert(h.primary, h.node, o);
    const rt = await runStep(log, { node, primary }, step);
    expect(rt).toMatchObject({ checkDone: false, recheckDone: true, check: [], recheck: [] });
    expect(rt.apply).toEqual([
      `${S}: writeFiles 2`,
      expect.stringMatching(`^${S}: exec sh -c `),
      expect.stringMatching(`^${S}: readFiles \\d+$`),
    ]);
    const again = await runStep(log, { node, primary }, step);
    expect(again).toMatchObject({ checkDone: true, check: [] });
  });

  for (const flavour of ['pe3', 'debian'] as const) {
    it(`puppetdb-ssl (${flavour}): 2 round trips with a warm cache (3 after a step that made the cache forget; was 4)`, async () => {
      const w = await world(flavour, `pdb-${flavour}`);
      await certificateStep(w, flavour, new PublicKeyMemo())({ node: w.node, primary: w.primary });
      // the steps between (database settings...) wrote files: the cache read them again
      await w.node.stat(puppetSslPaths(w.ssldir, S).cert, { sudo: false });
      w.log.length = 0;
      const step = (h: { node: Host }) => reinitPuppetdbSsl(h.node, w.layout, S, { sudo: false });
      const rt = await runStep(w.log, { node: w.node }, step);
      expect(rt).toMatchObject({ checkDone: false, recheckDone: true, check: [] });
      // one command: (pe3) PuppetDB's old directory removed and the setup run; (debian) the four installs
      if (flavour === 'pe3') {
        expect(rt.apply).toEqual([expect.stringMatching(`^${S}: exec sh -c`)]);
        expect(rt.recheck).toEqual([expect.stringMatching(`^${S}: readFiles \\d+$`)]);
      } else {
        // and the jetty.ini edit; PuppetDB's new files read once, by the re-check... or here
        expect(rt.apply).toEqual([
          expect.stringMatching(`^${S}: exec sh -c`),
          `${S}: writeFile ${join(w.layout.dirs.puppetdbConfdir, 'jetty.ini')}`,
        ]);
        expect(rt.recheck).toEqual([expect.stringMatching(`^${S}: readFiles \\d+$`)]);
      }
      expect(rt.apply.length + rt.recheck.length).toBeLessThanOrEqual(3);
      const again = await runStep(w.log, { node: w.node }, step);
      expect(again).toMatchObject({ checkDone: true, check: [] });
    });
  }
});

/** LocalHost whose `cp` (in the clearing script only) corrupts one copied file: the copy never matches. */
class CorruptingCopyHost extends LocalHost {
  constructor(
    name: string,
    private readonly bin: string,
  ) {
    super({ name });
  }
  override exec(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    return super.exec(argv, { ...opts, env: { ...opts.env, PATH: `${this.bin}:${process.env['PATH'] ?? ''}` } });
  }
}

describe('the verified backup before the ssldir is cleared (one command)', () => {
  it('a copy whose manifest differs removes nothing, and says so', async () => {
    const d = join(t.dir, 'corrupt');
    const bin = join(d, 'bin');
    await mkdir(bin, { recursive: true });
    await writeFile(
      join(bin, 'cp'),
      '#!/bin/sh\n/bin/cp "$@" || exit $?\nfor a do last=$a; done\nf=$(find "$last" -type f | head -n 1)\necho tampered >> "$f"\n',
    );
    await chmod(join(bin, 'cp'), 0o755);
    const host = new CorruptingCopyHost(S, bin);
    const ca = await testCa(d);
    const ssldir = join(d, 'ssl');
    await enrolNode(ca, new LocalHost({ name: S }), ssldir, S, [S]);
    const before = await treeManifest(host, ssldir);
    const err = await failure<{ code: string; message: string }>(
      clearWithVerifiedBackup(host, ssldir, join(d, 'ssl.pe-backup-x'), { sudo: false }),
    );
    expect(err).toMatchObject({
      code: 'E_CA_BACKUP',
      message: expect.stringMatching(/does not match: .* differs; nothing was removed/),
    });
    expect(await treeManifest(host, ssldir)).toEqual(before);
    // and regenerateNodeCert stops there: the node keeps its ssldir, nothing reached the CA
    const w = await world('pe3', 'corrupt-regen');
    const plain = new CorruptingCopyHost(S, bin);
    const manifest = await treeManifest(plain, w.ssldir);
    const e2 = await failure<{ code: string }>(
      regenerateNodeCert({
        node: plain,
        ca: PuppetCertCa.fromLayout(new LocalHost({ name: 'primary.example.com' }), w.layout, { sudo: false }),
        agent: new Pe3PuppetAgent({ ssldir: w.ssldir, caServer: 'm.example.com', bin: w.puppet, sudo: false }),
        certname: S,
        generalCname: 'puppet.example.com',
        primaryCname: 'master.example.com',
        sudo: false,
      }),
    );
    expect(e2.code).toBe('E_CA_BACKUP');
    expect(await treeManifest(plain, w.ssldir)).toEqual(manifest);
    expect(await readdir(join(w.cadir, 'requests'))).toEqual([]);
  });

  it('a copy that fails (an unreadable file) removes nothing', async () => {
    if (process.getuid?.() === 0) return; // root reads everything
    const d = join(t.dir, 'unreadable');
    const ssldir = join(d, 'ssl');
    await mkdir(join(ssldir, 'private_keys'), { recursive: true });
    await writeFile(join(ssldir, 'private_keys', 'k.pem'), 'secret');
    await chmod(join(ssldir, 'private_keys', 'k.pem'), 0o000);
    const host = new LocalHost({ name: S });
    const err = await failure<{ code: string; message: string }>(
      clearWithVerifiedBackup(host, ssldir, join(d, 'ssl.bak'), { sudo: false }),
    );
    expect(err).toMatchObject({ code: 'E_CA_BACKUP', message: expect.stringMatching(/nothing was removed/) });
    await chmod(join(ssldir, 'private_keys', 'k.pem'), 0o600);
    expect(await readFile(join(ssldir, 'private_keys', 'k.pem'), 'utf8')).toBe('secret');
  });

  it('clears after a verified copy, under the first free name; an absent directory is just created; refuses paths near the root', async () => {
    const d = join(t.dir, 'clear');
    const ssldir = join(d, 'ssl');
    await mkdir(join(ssldir, 'certs'), { recursive: true });
    await writeFile(join(ssldir, 'certs', 'a.pem'), 'a');
    await mkdir(join(d, 'ssl.bak'));
    const host = new LocalHost({ name: S });
    const r = await clearWithVerifiedBackup(host, ssldir, join(d, 'ssl.bak'), { sudo: false });
    expect(r).toEqual({ backup: join(d, 'ssl.bak-1'), files: 1, cleared: true });
    expect(await readdir(ssldir)).toEqual([]);
    expect(await readFile(join(d, 'ssl.bak-1', 'certs', 'a.pem'), 'utf8')).toBe('a');
    await rm(ssldir, { recursive: true });
    expect(await clearWithVerifiedBackup(host, ssldir, join(d, 'ssl.bak'), { sudo: false })).toEqual({
      files: 0,
      cleared: true,
    });
    expect(await readdir(ssldir)).toEqual([]);
    await expect(clearWithVerifiedBackup(host, '/etc/puppetlabs', '/tmp/x', { sudo: false })).rejects.toMatchObject({
      code: 'E_CA_BACKUP',
    });
  });
});
