import { readFileSync } from 'node:fs';
import { Lab } from '@pe-stack/lab';

/** Memory the machine has in use (MemTotal - MemAvailable), in bytes. */
function usedBytes(): number {
  const info = readFileSync('/proc/meminfo', 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB$`, 'm').exec(info)?.[1] ?? 0);
  return (kb('MemTotal') - kb('MemAvailable')) * 1024;
}

/** Brings a lab up, sampling the machine's memory; returns seconds and the peak above the baseline in MB. */
async function timeUp(lab: Lab, up: Parameters<Lab['up']>[0]): Promise<{ seconds: number; peakMb: number }> {
  await lab.prepare(up.profile);
  const base = usedBytes();
  let peak = base;
  const timer = setInterval(() => {
    peak = Math.max(peak, usedBytes());
  }, 250);
  const t0 = process.hrtime.bigint();
  try {
    await lab.up(up);
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    peak = Math.max(peak, usedBytes());
    return { seconds, peakMb: (peak - base) / 1048576 };
  } finally {
    clearInterval(timer);
    await lab.down();
  }
}

/**
 * Lab bring-up figures. Uses its own lab (namespaces `labb-*`, subnet
 * 10.80.0.0/24, state in /var/lib/pe-stack-lab-bench) so it never touches a
 * lab someone has up. Targets: 50 light hosts < 60 s; debian 3 masters + 1
 * agent < 300 s and < 6 GB.
 */
export async function benchLab(): Promise<Record<string, number>> {
  const lab = new Lab({ name: 'labb', net: '10.80.0', stateDir: '/var/lib/pe-stack-lab-bench' });
  await lab.down();
  const out: Record<string, number> = {};
  const light = await timeUp(lab, { profile: 'light', hosts: ['primary'], agents: 49 });
  out['lab_up_light_50_hosts_s'] = light.seconds;
  const d2 = await timeUp(lab, { profile: 'debian', hosts: ['primary', 'secondary1'], agents: 1 });
  out['lab_up_debian_2m1a_s'] = d2.seconds;
  out['lab_up_debian_2m1a_peak_mem_mb'] = d2.peakMb;
  const d3 = await timeUp(lab, { profile: 'debian', hosts: ['primary', 'secondary1', 'secondary2'], agents: 1 });
  out['lab_up_debian_3m1a_s'] = d3.seconds;
  out['lab_up_debian_3m1a_peak_mem_mb'] = d3.peakMb;
  return out;
}
