import { isIpLiteral, type Host } from '@pe-stack/pe-host';
import { resolveOn } from './dns/provider.js';
import { ClusterError } from './errors.js';

/** The IPv4/IPv6 address of `name` as `on` resolves it (pg_hba records are per address). */
export async function resolveAddress(on: Host, name: string, given?: string): Promise<string> {
  if (given && isIpLiteral(given)) return given;
  const [first] = await resolveOn(on, given ?? name);
  if (!first)
    throw new ClusterError('E_RESOLVE', `cannot resolve ${given ?? name} to an address.`, {
      host: on.name,
      hint: 'Add the address to the inventory (address: ...) or fix DNS on the primary.',
    });
  return first;
}
