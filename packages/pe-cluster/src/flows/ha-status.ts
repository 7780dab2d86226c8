import { replicationLag } from '@pe-stack/pe-db';
import type { StatusReport } from './status.js';
import { readState, type ClusterState, type FencedHost } from '../state.js';
import { manifestDifferences } from '@pe-stack/pe-host';
import { caCopyVerified, caTree } from './ca-switch.js';
import { pgOf, type HaContext } from './cluster-access.js';

export interface HaStatus {
  primary: string;
  standby?: {
    host: string;
    synchronous: boolean;
    /** From the primary's pg_stat_replication. */
    replication: { state: string; syncState: string; lagBytes: number; lagSeconds: number } | { error: string };
    caCopy: { verified: boolean; why: string; at?: string | undefined };
  };
  /** Former primaries fenced by a failover: not serving until `rejoin`; their own problems do not count against the cluster's health. */
  fenced: FencedHost[];
}

export type HaStatusReport = StatusReport & { ha: HaStatus };

const msg = (e: unknown) => (e instanceof Error ? e.message : String(e));

/**
 * Adds the failover side to a status report: the standby (streaming state and
 * lag from the primary, whether its CA copy is the last verified one) and the
 * fenced former primaries. A fenced host's own problems (unreachable, services
 * down) are listed but do not count toward health; two CAs still do.
 */
export async function addHaStatus(c: HaContext, report: StatusReport): Promise<HaStatusReport> {
  const inv = c.inventory;
  let st;
  try {
    st = readState(inv);
  } catch (e) {
    report.problems.push({ level: 'degraded', message: `the controller's cluster state cannot be read: ${msg(e)}` });
    return { ...report, ha: { primary: inv.primary.name, fenced: [] } };
  }
  const ha: HaStatus = { primary: inv.primary.name, fenced: st.fenced };
  const fenced = new Set(st.fenced.map((f) => f.host));
  const problems = report.problems.filter((p) => !(p.host && fenced.has(p.host)));
  if (st.standby) {
    const s = st.standby;
    const replication = await standbyReplication(c, s, problems);
    const caCopy = await standbyCaCopy(c, s, problems);
    ha.standby = { host: s.host, synchronous: s.synchronous, replication, caCopy };
  }
  const health = problems.some((p) => p.level === 'broken') ? 'broken' : problems.length ? 'degraded' : 'healthy';
  return { ...report, problems, health, ha };
}

type Standby = NonNullable<ClusterState['standby']>;
type Problems = StatusReport['problems'];

/** Streaming state and lag of the standby, from the primary's pg_stat_replication. */
async function standbyReplication(
  c: HaContext,
  s: Standby,
  problems: Problems,
): Promise<NonNullable<HaStatus['standby']>['replication']> {
  const inv = c.inventory;
  try {
    const lag = await replicationLag(pgOf(c, inv.primary.name, c.host(inv.primary.name)), s.host);
    if (lag.state !== 'streaming')
      problems.push({ level: 'degraded', host: s.host, message: `the standby is not streaming (${lag.state})` });
    else if (s.synchronous && lag.syncState !== 'sync')
      problems.push({
        level: 'degraded',
        host: s.host,
        message: `the standby should be synchronous but is ${lag.syncState}`,
      });
    return { state: lag.state, syncState: lag.syncState, lagBytes: lag.bytes, lagSeconds: lag.seconds };
  } catch (e) {
    const replication = { error: inv.redactor.redact(msg(e)) };
    problems.push({
      level: 'degraded',
      host: s.host,
      message: `the standby's replication cannot be read: ${replication.error}`,
    });
    return replication;
  }
}

/** The standby's CA copy is the last verified one, and the primary's CA has not changed since. */
async function standbyCaCopy(
  c: HaContext,
  s: Standby,
  problems: Problems,
): Promise<NonNullable<HaStatus['standby']>['caCopy']> {
  const inv = c.inventory;
  try {
    const standby = { host: c.host(s.host), sudo: inv.masters.find((m) => m.name === s.host)?.sudo ?? false };
    let v = await caCopyVerified(inv, standby);
    if (v.ok) {
      // and the primary's CA has not changed since (a certificate signed, a CRL updated)
      const [a, b] = await Promise.all([
        caTree({ host: c.host(inv.primary.name), sudo: inv.primary.sudo }, inv.layout),
        caTree(standby, inv.layout),
      ]);
      const d = manifestDifferences(a, b);
      if (d.length)
        v = {
          ok: false,
          why: `the CA copy on ${s.host} is behind the primary's CA (${d.slice(0, 3).join(', ')}${d.length > 3 ? ` and ${d.length - 3} more` : ''}): run pe-cluster standby ${s.host}`,
        };
    }
    if (!v.ok) problems.push({ level: 'degraded', host: s.host, message: v.why });
    return { verified: v.ok, why: v.why, at: s.caSync?.at };
  } catch (e) {
    const caCopy = { verified: false, why: inv.redactor.redact(msg(e)) };
    problems.push({
      level: 'degraded',
      host: s.host,
      message: `the standby's CA copy cannot be checked: ${caCopy.why}`,
    });
    return caCopy;
  }
}

/** The failover side of the status, as lines under the table. */
export function formatHaStatus(r: StatusReport & { ha?: HaStatus }): string {
  if (!r.ha) return '';
  const out: string[] = [];
  const s = r.ha.standby;
  if (s) {
    const rep =
      'error' in s.replication
        ? `unknown (${s.replication.error})`
        : `${s.replication.state}/${s.replication.syncState}, lag ${s.replication.lagBytes} bytes ${s.replication.lagSeconds.toFixed(1)} s`;
    out.push(
      `standby: ${s.host} (${s.synchronous ? 'synchronous' : 'asynchronous'}) replication ${rep}; CA copy ${s.caCopy.verified ? 'verified' : 'NOT verified'}${s.caCopy.at ? ` (${s.caCopy.at})` : ''}`,
    );
  } else out.push('standby: none');
  for (const f of r.ha.fenced) out.push(`fenced: ${f.host} since ${f.at} (${f.how}); rejoin required`);
  return `${out.join('\n')}\n`;
}
