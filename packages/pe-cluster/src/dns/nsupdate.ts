import { promises as fs } from 'node:fs';
import { isIP } from 'node:net';
import { CommandFailedError, type Host } from '@pe-stack/pe-host';
import { DnsError } from '../errors.js';
import { requireAddress, withChildEnv, type DnsChange, type DnsProvider } from './provider.js';

export interface TsigKey {
  name: string;
  algorithm: string;
  /** base64; registered with the host's redactor as soon as it is read. */
  secret: string;
}

/** A BIND key file (`key "name" { algorithm hmac-sha256; secret "..."; };`, as tsig-keygen/ddns-confgen write it). */
export function parseTsigKey(text: string, file: string): TsigKey {
  const m = /key\s+"?([A-Za-z0-9._-]+)"?\s*\{([^}]*)\}/s.exec(text);
  const body = m?.[2] ?? '';
  const algorithm = /algorithm\s+"?([A-Za-z0-9-]+)"?\s*;/.exec(body)?.[1];
  const secret = /secret\s+"([A-Za-z0-9+/=]+)"\s*;/.exec(body)?.[1];
  if (!m || !algorithm || !secret)
    throw new DnsError(
      `${file} is not a TSIG key file (expected: key "name" { algorithm hmac-sha256; secret "..."; };).`,
    );
  return { name: m[1]!, algorithm: algorithm.toLowerCase(), secret };
}

export interface NsupdateOptions {
  server: string;
  port?: number;
  zone: string;
  ttl?: number;
  /** On the host that runs nsupdate (the controller, usually). */
  keyFile: string;
}

const LABEL = '[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?';
/** A DNS name: dot-separated labels of letters, digits, `_` and inner `-`, an optional final dot; nothing else. */
const DNS_NAME = new RegExp(`^(?=.{1,254}$)${LABEL}(?:\\.${LABEL})*\\.?$`);

function refuse(what: string, value: string, expected: string): never {
  throw new DnsError(`the nsupdate ${what} ${JSON.stringify(value)} is not ${expected}.`, {
    hint: 'Fix dns: in the inventory; nothing was sent to the DNS server.',
  });
}

/**
 * The server, zone, name, port and TTL end up in nsupdate's standard input,
 * one command per line: a newline or a space there would add commands of the
 * caller's choosing to a signed update. The inventory loader checks them too;
 * this is the last check before the script is written.
 */
export function checkNsupdateInput(o: { server: string; zone: string; port?: number; ttl?: number }): void {
  if (isIP(o.server) === 0 && !DNS_NAME.test(o.server)) refuse('server', o.server, 'a host name or an IP address');
  if (!DNS_NAME.test(o.zone)) refuse('zone', o.zone, 'a DNS name');
  if (o.port !== undefined && !(Number.isInteger(o.port) && o.port >= 1 && o.port <= 65535))
    refuse('port', String(o.port), 'a port number (1-65535)');
  if (o.ttl !== undefined && !(Number.isInteger(o.ttl) && o.ttl >= 0 && o.ttl <= 2147483647))
    refuse('ttl', String(o.ttl), 'a TTL in seconds');
}

function checkRecordName(name: string): void {
  if (!DNS_NAME.test(name)) refuse('record name', name, 'a DNS name');
}

/**
 * RFC 2136 dynamic update with `nsupdate`, run on `runner` (the controller).
 * The TSIG key is read from the key file and travels in nsupdate's standard
 * input (`key alg:name secret`), never in argv; the secret is masked in every
 * error and record. The record set of the name is replaced (delete, add) in
 * one signed update; a name that already has exactly the address is left alone.
 * Every value that reaches the script is checked first (checkNsupdateInput);
 * nsupdate and dig run with childEnv's variables only.
 */
export class NsupdateDns implements DnsProvider {
  readonly kind = 'nsupdate' as const;
  constructor(
    private readonly runner: Host,
    private readonly o: NsupdateOptions,
  ) {
    checkNsupdateInput(o);
  }

  private async key(): Promise<TsigKey> {
    let text: string;
    try {
      text = (await this.runner.readFile(this.o.keyFile)).toString('utf8');
    } catch (e) {
      throw new DnsError(
        `cannot read the TSIG key file ${this.o.keyFile}: ${e instanceof Error ? e.message : String(e)}`,
        { host: this.runner.name, cause: e },
      );
    }
    const k = parseTsigKey(text, this.o.keyFile);
    this.runner.redactor.add(k.secret);
    return k;
  }

  /** The name's current addresses on the server itself (dig, no cache in between). */
  async current(name: string, type: 'A' | 'AAAA'): Promise<string[]> {
    checkNsupdateInput(this.o);
    checkRecordName(name);
    const r = await this.runner.exec(
      withChildEnv([
        'dig',
        '+short',
        '+norecurse',
        '+time=3',
        '+tries=2',
        '-p',
        String(this.o.port ?? 53),
        `@${this.o.server}`,
        name,
        type,
      ]),
      { readOnly: true, allowFailure: true, timeoutMs: 20_000 },
    );
    if (r.code !== 0) return [];
    return r.stdout
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => isIP(l) !== 0);
  }

  async set(name: string, address: string): Promise<DnsChange> {
    requireAddress(address);
    checkNsupdateInput(this.o);
    checkRecordName(name);
    const type = isIP(address) === 6 ? 'AAAA' : 'A';
    const other = type === 'A' ? 'AAAA' : 'A';
    const now = await this.current(name, type);
    if (now.length === 1 && now[0] === address && (await this.current(name, other)).length === 0) {
      return { changed: false, detail: `${name} already ${type} ${address} on ${this.o.server}`, skipped: [] };
    }
    const k = await this.key();
    const fqdn = name.endsWith('.') ? name : `${name}.`;
    const script = [
      `key ${k.algorithm}:${k.name} ${k.secret}`,
      `server ${this.o.server} ${this.o.port ?? 53}`,
      `zone ${this.o.zone}`,
      `update delete ${fqdn} A`,
      `update delete ${fqdn} AAAA`,
      `update add ${fqdn} ${this.o.ttl ?? 30} ${type} ${address}`,
      'send',
      '',
    ].join('\n');
    const argv = withChildEnv(['nsupdate', '-v', '-t', '10']);
    const r = await this.runner.exec(argv, {
      stdin: script,
      allowFailure: true,
      timeoutMs: 30_000,
      secrets: [k.secret],
    });
    if (r.code !== 0) {
      const err = new CommandFailedError(this.runner.name, argv, r.code, this.runner.redactor.redact(r.stderr), '');
      throw new DnsError(
        `nsupdate of ${name} on ${this.o.server} failed (exit ${r.code}): ${this.runner.redactor.redact(r.stderr.trim().split('\n').slice(-2).join(' '))}`,
        {
          host: this.runner.name,
          hint: "Check the zone, the key and the server's update-policy/allow-update.",
          cause: err,
        },
      );
    }
    return {
      changed: true,
      detail: `${name} ${type} ${address} on ${this.o.server} (zone ${this.o.zone}, TSIG ${k.name})`,
      skipped: [],
    };
  }
}

export async function keyFileReadable(path: string): Promise<boolean> {
  try {
    await fs.access(path);
    return true;
  } catch {
    return false;
  }
}
