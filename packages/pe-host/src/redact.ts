/**
 * Secrets never reach logs, plans, errors or journals. A Redactor knows
 * secret values (registered when a password is read) and key names whose
 * values are secret (`password = ...`, `psk: ...`), and replaces both with a
 * mask. Every Host has one; flows share a single instance across hosts.
 */
export const MASK = '********';

const SECRET_KEY = /(password|passwd|passphrase|secret|psk|token|private[_-]?key|credentials?)/i;
// key = value, key: value, key => value (INI, YAML, key=value files, HOCON)
const ASSIGNMENT = /^(\s*[#;]?\s*["']?([A-Za-z0-9_.-]+)["']?\s*(?:=>|=|:)[ \t]*)(.*?)(\s*)$/;

export class Redactor {
  private readonly values = new Set<string>();

  constructor(secrets: Iterable<string> = []) {
    for (const s of secrets) this.add(s);
  }

  /** Register a secret value; values shorter than 4 characters are not masked (too many false hits). */
  add(secret: string | undefined | null): this {
    if (typeof secret === 'string' && secret.length >= 4) this.values.add(secret);
    return this;
  }

  has(secret: string): boolean {
    return this.values.has(secret);
  }

  /** A child with the same known secrets plus more; the parent is unchanged. */
  with(secrets: Iterable<string>): Redactor {
    const r = new Redactor(this.values);
    for (const s of secrets) r.add(s);
    return r;
  }

  /** Mask known values anywhere in the text. */
  redact(text: string): string {
    let out = text;
    // longest first, so a secret that contains another is masked whole
    for (const v of [...this.values].sort((a, b) => b.length - a.length)) out = out.split(v).join(MASK);
    return out;
  }

  /** Mask known values, and the value of every line that assigns a secret-looking key. */
  redactConfig(text: string): string {
    return this.redact(text)
      .split('\n')
      .map((line) => {
        const m = ASSIGNMENT.exec(line);
        if (!m || !SECRET_KEY.test(m[2] ?? '') || (m[3] ?? '') === '' || m[3] === MASK) return line;
        return `${m[1]}${MASK}${m[4] ?? ''}`;
      })
      .join('\n');
  }

  redactArgv(argv: readonly string[]): string[] {
    return argv.map((a) => this.redact(a));
  }
}

export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}
