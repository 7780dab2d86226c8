import { writeFiles, type BatchWrite, type Host, type Redactor, type WriteOptions } from '@pe-stack/pe-host';
import { ActiveMqDocument, type ActiveMqOp } from './activemq.js';
import { ApacheDocument, type ApacheOp } from './apache.js';
import { type EditResult, findSecretValues, maskedEditDiff, redactorFor } from './diff.js';
import { ConfigEditError, ConfigParseError } from './errors.js';
import { HoconDocument, type HoconOp } from './hocon.js';
import { HostsDocument, type HostsOp } from './hosts.js';
import { IniDocument, type IniOp } from './ini.js';
import { KeyValueDocument, type KvOp } from './kv.js';
import { LineListDocument, type LineListOp } from './lines.js';
import { PgHbaDocument, type PgHbaOp } from './pghba.js';
import { PostgresqlConfDocument, type PostgresqlConfOp } from './postgresql.js';
import { ServicesDocument, type ServicesOp } from './services.js';
import { SitePpDocument, type SitePpOp } from './sitepp.js';
import { YamlDocument, type YamlOp } from './yaml.js';

interface EditBase {
  path: string;
  /** When the file does not exist: start from an empty file (true) or fail (default). */
  create?: boolean;
  /** Passed to host.writeFile (mode/owner/group for a new file, backup, sudo). */
  write?: Omit<WriteOptions, 'secrets'>;
}

/** One file and the operations to apply to it, in order. */
export type Edit = EditBase &
  (
    | { kind: 'ini'; ops: IniOp[] }
    | { kind: 'yaml'; ops: YamlOp[] }
    | { kind: 'lines'; ops: LineListOp[] }
    | { kind: 'apache'; ops: ApacheOp[] }
    | { kind: 'hocon'; ops: HoconOp[] }
    | { kind: 'services'; ops: ServicesOp[] }
    | { kind: 'postgresql-conf'; ops: PostgresqlConfOp[] }
    | { kind: 'pg-hba'; ops: PgHbaOp[] }
    | { kind: 'kv'; ops: KvOp[] }
    | { kind: 'shell-vars'; ops: KvOp[] }
    | { kind: 'site-pp'; ops: SitePpOp[] }
    | { kind: 'activemq'; ops: ActiveMqOp[] }
    | { kind: 'hosts'; ops: HostsOp[] }
  );

export type EditKindName = Edit['kind'];

/** What every document offers: apply one operation (returns whether it changed anything) and give the bytes back. */
export interface ConfigDocument<Op = never> {
  readonly path: string;
  apply(op: Op): boolean;
  toString(): string;
}

/** Parse a file with the editor of the given kind. */
export function openDocument(kind: EditKindName, text: string, path: string): ConfigDocument {
  return open({ kind, path, ops: [] } as Edit, text);
}

function open(edit: Edit, text: string): ConfigDocument {
  const p = edit.path;
  switch (edit.kind) {
    case 'ini':
      return new IniDocument(text, p);
    case 'yaml':
      return new YamlDocument(text, p);
    case 'lines':
      return new LineListDocument(text, p);
    case 'apache':
      return new ApacheDocument(text, p);
    case 'hocon':
      return new HoconDocument(text, p);
    case 'services':
      return new ServicesDocument(text, p);
    case 'postgresql-conf':
      return new PostgresqlConfDocument(text, p);
    case 'pg-hba':
      return new PgHbaDocument(text, p);
    case 'kv':
      return new KeyValueDocument(text, p, 'spaced');
    case 'shell-vars':
      return new KeyValueDocument(text, p, 'shell');
    case 'site-pp':
      return new SitePpDocument(text, p);
    case 'activemq':
      return new ActiveMqDocument(text, p);
    case 'hosts':
      return new HostsDocument(text, p);
    default:
      throw new ConfigEditError(
        (edit as Edit).path,
        `unknown edit kind "${String((edit as { kind: unknown }).kind)}".`,
      );
  }
}

/** Apply an edit to a file's text (pure). Typed errors carry no secret: messages are passed through the redactor. */
export function editText(edit: Edit, text: string, redactor?: Redactor): EditResult & { text: string } {
  try {
    const doc = open(edit, text);
    for (const op of edit.ops) doc.apply(op as never);
    const after = doc.toString();
    return {
      path: edit.path,
      changed: after !== text,
      diff: maskedEditDiff(edit.path, text, after, redactor),
      text: after,
    };
  } catch (err) {
    throw scrub(err, [text, JSON.stringify(edit.ops)], redactor);
  }
}

/** Secrets of the file or of the requested values must not reach an error message. */
function scrub(err: unknown, texts: string[], redactor?: Redactor): unknown {
  if (!(err instanceof ConfigEditError || err instanceof ConfigParseError)) return err;
  const r = redactorFor(texts, redactor);
  const clean = r.redact(err.message);
  if (clean !== err.message) Object.defineProperty(err, 'message', { value: clean });
  return err;
}

export interface ApplyResult extends EditResult {
  /** Backup of the previous content, when the host made one. */
  backup?: string;
}

/**
 * Read each file through the Host, apply its edits in memory, then write the
 * changed ones with host.writeFile (atomic, with backup, no-op when equal).
 * All files are parsed and edited before anything is written: when any edit
 * fails (a parse error, an impossible change) the error is thrown and no
 * file is written. Edits naming the same path apply one after the other.
 */
export async function applyEdits(
  host: Host,
  edits: readonly Edit[],
  opts: { sudo?: boolean } = {},
): Promise<ApplyResult[]> {
  const originals = new Map<string, string>();
  const current = new Map<string, string>();
  const writeOpts = new Map<string, Omit<WriteOptions, 'secrets'> | undefined>();
  for (const edit of edits) {
    if (!current.has(edit.path)) {
      let text: string;
      if (await host.exists(edit.path, { sudo: opts.sudo ?? true }))
        text = (await host.readFile(edit.path, { sudo: opts.sudo ?? true })).toString('utf8');
      else if (edit.create) text = '';
      else
        throw new ConfigEditError(
          edit.path,
          'the file does not exist.',
          'Check the layout path for this host (inventory overrides), or create the file first.',
        );
      originals.set(edit.path, text);
      current.set(edit.path, text);
    }
    const res = editText(edit, current.get(edit.path)!, host.redactor);
    current.set(edit.path, res.text);
    if (edit.write) writeOpts.set(edit.path, { ...writeOpts.get(edit.path), ...edit.write });
  }
  // every changed file written together: one round trip on a host that can (pe-host writeFiles), each atomic with its backup
  const out: ApplyResult[] = [];
  const writes: { i: number; w: BatchWrite }[] = [];
  for (const [path, before] of originals) {
    const after = current.get(path)!;
    const diff = maskedEditDiff(path, before, after, host.redactor);
    out.push({ path, changed: false, diff });
    if (before === after) continue;
    writes.push({
      i: out.length - 1,
      w: {
        path,
        data: after,
        opts: {
          ...writeOpts.get(path),
          secrets: [...new Set([...findSecretValues(before), ...findSecretValues(after)])],
        },
      },
    });
  }
  const results = await writeFiles(
    host,
    writes.map((x) => x.w),
    opts.sudo === undefined ? {} : { sudo: opts.sudo },
  );
  writes.forEach((x, k) => {
    const w = results[k]!;
    out[x.i] = { ...out[x.i]!, changed: w.changed, ...(w.backup ? { backup: w.backup } : {}) };
  });
  return out;
}
