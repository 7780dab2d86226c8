/**
 * The file formats pe-db edits (database.ini, database.yml, pg_hba.conf,
 * postgresql.conf) come from @pe-stack/pe-config-files, the project's
 * lossless editors. This module is the one place that names them, so the
 * rest of the package sees small structural interfaces.
 */
import { parseIni, parsePgHba, parsePostgresqlConf, parseYaml } from '@pe-stack/pe-config-files';
import type { Host } from '@pe-stack/pe-host';

export interface IniDoc {
  get(section: string, key: string): string | undefined;
  set(section: string, key: string, value: string): boolean;
  toString(): string;
}

export interface YamlDoc {
  get(path: readonly (string | number)[]): unknown;
  set(path: readonly (string | number)[], value: string | number | boolean | null): boolean;
  toString(): string;
}

export type HbaType = 'local' | 'host' | 'hostssl' | 'hostnossl' | 'hostgssenc' | 'hostnogssenc';

export interface HbaRecordSpec {
  type: HbaType;
  database: string;
  user: string;
  address?: string;
  method: string;
  options?: string;
}

export interface HbaDoc {
  records(): (HbaRecordSpec & { line: number })[];
  add(record: HbaRecordSpec, position?: 'end' | 'start'): boolean;
  remove(match: Partial<Omit<HbaRecordSpec, 'options'>>): boolean;
  toString(): string;
}

export interface ConfDoc {
  get(name: string): string | undefined;
  set(name: string, value: string | number | boolean): boolean;
  unset(name: string): boolean;
  toString(): string;
}

export const editors = {
  ini: (text: string, path: string): IniDoc => parseIni(text, path),
  yaml: (text: string, path: string): YamlDoc => parseYaml(text, path),
  hba: (text: string, path: string): HbaDoc => parsePgHba(text, path),
  conf: (text: string, path: string): ConfDoc => parsePostgresqlConf(text, path),
};

export async function readText(host: Host, path: string): Promise<string> {
  return (await host.readFile(path, { sudo: true })).toString('utf8');
}
