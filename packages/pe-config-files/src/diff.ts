import { createTwoFilesPatch } from 'diff';
import { Redactor } from '@pe-stack/pe-host';

/** What every edit reports. `diff` is a unified diff with secret values masked. */
export interface EditResult {
  path: string;
  changed: boolean;
  diff: string;
}

// A secret-looking key followed by = : or => and a value, anywhere in a line:
// INI/kv `password = x`, YAML `password: 'x'`, HOCON `password: "x"`, XML
// `password="x"`, JVM `-Dfoo.keyStorePassword=x`, Puppet `password => 'x'`.
const SECRET_ASSIGN =
  /([A-Za-z0-9_.-]*(?:password|passwd|passphrase|secret|psk|token|private[_-]?key|credentials?)[A-Za-z0-9_.-]*)["']?[ \t]*(?:=>|=|:)[ \t]*(?:"([^"\r\n]*)"|'([^'\r\n]*)'|([^\s"',;}\]<>]+))/gi;

/** Values assigned to secret-looking keys anywhere in the text (so they can be masked wherever they appear). */
export function findSecretValues(text: string): string[] {
  const out = new Set<string>();
  for (const m of text.matchAll(SECRET_ASSIGN)) {
    const v = m[2] ?? m[3] ?? m[4];
    if (v && v.length >= 4) out.add(v);
  }
  return [...out];
}

/** A redactor that knows the given one's secrets plus every secret value found in the texts. */
export function redactorFor(texts: readonly string[], redactor?: Redactor): Redactor {
  const base = redactor ?? new Redactor();
  return base.with(texts.flatMap(findSecretValues));
}

/** Unified diff of two versions of a file, secrets masked in both. Empty string when equal. */
export function maskedDiff(path: string, before: string, after: string, redactor?: Redactor): string {
  if (before === after) return '';
  const r = redactorFor([before, after], redactor);
  const a = r.redactConfig(before);
  const b = r.redactConfig(after);
  if (a === b) return `--- ${path}\n+++ ${path}\n(only secret values changed; they are masked)\n`;
  return createTwoFilesPatch(path, path, a, b, undefined, undefined, { context: 3 });
}

export function result(path: string, before: string, after: string, redactor?: Redactor): EditResult {
  return { path, changed: before !== after, diff: maskedDiff(path, before, after, redactor) };
}
