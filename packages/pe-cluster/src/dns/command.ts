import { type Host } from '@pe-stack/pe-host';
import { DnsError } from '../errors.js';
import { requireAddress, withChildEnv, type DnsChange, type DnsProvider } from './provider.js';

/**
 * The operator's own hook: `argv` with the name and the address appended
 * (and in PE_CLUSTER_DNS_NAME / PE_CLUSTER_DNS_ADDRESS), run on the
 * controller. Exit 0 is success; the hook must be idempotent. What it did is
 * verified afterwards by resolving the name from every master. The hook
 * sees only PATH, HOME, the locale, TZ and those two variables (childEnv),
 * never the CLI's secrets.
 */
export class CommandDns implements DnsProvider {
  readonly kind = 'command' as const;
  constructor(
    private readonly runner: Host,
    private readonly argv: readonly string[],
    private readonly timeoutMs = 60_000,
  ) {
    if (argv.length === 0) throw new DnsError('the DNS command hook is empty.');
  }

  async set(name: string, address: string): Promise<DnsChange> {
    requireAddress(address);
    const argv = withChildEnv([...this.argv, name, address], {
      pass: { PE_CLUSTER_DNS_NAME: name, PE_CLUSTER_DNS_ADDRESS: address },
    });
    const r = await this.runner.exec(argv, { allowFailure: true, timeoutMs: this.timeoutMs });
    if (r.code !== 0) {
      const tail = this.runner.redactor.redact(`${r.stderr}\n${r.stdout}`.trim().split('\n').slice(-3).join(' '));
      throw new DnsError(
        `the DNS hook ${this.argv[0]} exited ${r.code} for ${name} -> ${address}${tail ? `: ${tail}` : ''}.`,
        { host: this.runner.name },
      );
    }
    const out = this.runner.redactor.redact(r.stdout.trim().split('\n').slice(-1)[0] ?? '');
    return { changed: true, detail: `hook ${this.argv[0]} ${name} ${address}${out ? `: ${out}` : ''}`, skipped: [] };
  }
}
