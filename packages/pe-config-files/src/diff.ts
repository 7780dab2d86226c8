import { Redactor, maskedDiff as hostMaskedDiff } from '@pe-stack/pe-host';

/** What every edit reports. `diff` is a unified diff with secret values masked. */
export interface EditResult {
  path: string;
  changed: boolean;
  diff: string;
}

// A secret-looking key followed by = : or => and a value, anywhere in a line:
// INI/kv `password = x`, YAML `password: 'x'`, HOCON `password: "x"`, XML
// `password="x"`, JVM `-Dfoo.keyStorePassword=x`, Puppet `password => 'x'`.
// pe-host's Redactor.redactConfig masks whole `key = value` lines; this also
// finds values inside lines (XML attributes, JVM flags) so that they are
// masked wherever they appear, in diffs and in error messages.
const SECRET_ASSIGN =
  /([A-Za-z0-9_.-]*(?:password|passwd|passphrase|secret|psk|token|private[_-]?key|credentials?)[A-Za-z0-9_.-]*)["']?[ \t]*(?:=>|=|:)[ \t]*(?:"([^"\r\n]*)"|'([^'\r\n]*)'|([^\s"',;}\]<>]+))/gi;

/** Values assigned to secret-looking keys anywhere in the text. */
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
  return (redactor ?? new Redactor()).with(texts.flatMap(findSecretValues));
}

/**
 * The diff an edit reports: pe-host's maskedDiff, with every secret value found in either version masked too
 * (values inside lines, such as XML attributes and JVM flags). '' when equal.
 */
export function maskedEditDiff(path: string, before: string, after: string, redactor?: Redactor): string {
  if (before === after) return '';
  return hostMaskedDiff(path, before, after, redactorFor([before, after], redactor));
}
