import { parseIni, parsePgHba, parsePostgresqlConf } from '@pe-stack/pe-config-files';
import { percentile, round } from './stats.js';

/**
 * pe-config-files: parse + one edit + serialise of large generated files
 * (a 20,000-line postgresql.conf, a 5,000-record pg_hba.conf, a 2,000-line
 * puppet.conf). Median of `rounds` runs after a warm-up; target < 50 ms each.
 */
export async function benchConfigFiles(rounds = 21): Promise<Record<string, number>> {
  const conf = postgresqlConf(20_000);
  const hba = pgHba(5_000);
  const puppet = puppetConf(2_000);
  const cases: Record<string, () => number> = {
    'config-files postgresql.conf 20k lines: parse+set+serialise ms': () => {
      const doc = parsePostgresqlConf(conf, '/bench/postgresql.conf');
      doc.set('listen_addresses', '*');
      return doc.toString().length;
    },
    'config-files pg_hba.conf 5k records: parse+add+serialise ms': () => {
      const doc = parsePgHba(hba, '/bench/pg_hba.conf');
      doc.add({
        type: 'host',
        database: 'puppetdb',
        user: 'puppetdb',
        address: '10.77.0.200/32',
        method: 'scram-sha-256',
      });
      return doc.toString().length;
    },
    'config-files puppet.conf 2k lines: parse+set+serialise ms': () => {
      const doc = parseIni(puppet, '/bench/puppet.conf');
      doc.set('main', 'ca_server', 'primary.example.com');
      return doc.toString().length;
    },
  };
  const out: Record<string, number> = {};
  for (const [name, fn] of Object.entries(cases)) {
    for (let i = 0; i < 3; i++) fn(); // warm-up (JIT)
    const times: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const t0 = performance.now();
      if (fn() <= 0) throw new Error(`${name}: empty output`);
      times.push(performance.now() - t0);
    }
    out[name] = round(percentile(times, 50), 2);
  }
  return out;
}

function postgresqlConf(lines: number): string {
  const out: string[] = [
    '# generated postgresql.conf',
    "#listen_addresses = 'localhost'\t\t# what IP address(es) to listen on;",
  ];
  for (let i = 0; out.length < lines; i++) {
    switch (i % 5) {
      case 0:
        out.push(`setting_${i} = ${i}\t\t\t# numeric value`);
        break;
      case 1:
        out.push(`quoted_${i} = 'value ${i}, with ''quotes'''\t# comment`);
        break;
      case 2:
        out.push(`#commented_${i} = off`);
        break;
      case 3:
        out.push('');
        break;
      default:
        out.push(`# ---- section ${i} ----`);
    }
  }
  return `${out.join('\n')}\n`;
}

function pgHba(records: number): string {
  const out = [
    '# TYPE  DATABASE        USER            ADDRESS                 METHOD',
    'local   all             postgres                                peer',
  ];
  for (let i = 0; i < records - 1; i++) {
    out.push(
      `host    db${i % 50}            user${i}          10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}/32           scram-sha-256`,
    );
  }
  return `${out.join('\n')}\n`;
}

function puppetConf(lines: number): string {
  const out: string[] = [];
  const sections = ['main', 'master', 'agent', 'user'];
  for (let i = 0; out.length < lines; i++) {
    if (i % 100 === 0) out.push(`[${sections[(i / 100) % sections.length]}]`);
    else if (i % 7 === 0) out.push(`    # comment ${i}`);
    else out.push(`    setting_${i} = /some/path/${i}`);
  }
  return `${out.join('\n')}\n`;
}
