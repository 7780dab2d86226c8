/**
 * Secrets never reach logs, plans, errors or journals. A Redactor knows
 * secret values (registered when a password is read) and key names whose
 * values are secret (`password = ...`, `psk: ...`, `my_pass`), and replaces
 * both with a mask. Every Host has one; flows share a single instance across
 * hosts.
 *
 * Structured data is redacted before it is serialised (`redactValue`,
 * `redactJson`): each string is masked on its own, so escaping cannot hide a
 * secret. Text is masked in every form a secret takes in it: as is, JSON
 * escaped (once and twice: a message quoted inside a JSON record) and URL
 * encoded.
 */
export const MASK = '********';

/**
 * Secrets of this length and longer are masked wherever they occur; shorter
 * ones (1-3 characters) only as a whole token, that is with no letter, digit
 * or `_` on either side: a password `pe` masks `password=pe` and `"pe"`, not
 * the `pe` in `puppet` (masking every `a` of a text would make it unreadable
 * and would tell which letter the secret is).
 */
export const MIN_SUBSTRING_SECRET = 4;

// words of a key that make its value secret: db_password, MY_PASS, psk, apiKey
const SECRET_WORDS = new Set(['pass', 'passwd', 'pwd', 'pw', 'psk', 'apikey', 'credential', 'credentials']);
// ... and anywhere in the key, separators removed: mypassword, keyStorePassword, authToken
const SECRET_PARTS = /password|passphrase|passwd|secret|token|privatekey|apikey|keydata/;
// a key whose last word names where or how a secret is kept holds no secret: password_file,
// token_ttl, PostgreSQL's password_encryption
const NOT_SECRET_LAST_WORDS = new Set([
  'file',
  'path',
  'dir',
  'ttl',
  'timeout',
  'length',
  'type',
  'policy',
  'mode',
  'encryption',
]);
// shells' working directories, not passwords
const NOT_SECRET_KEYS = new Set(['PWD', 'OLDPWD']);

/** `db_password`, `MY_PASS`, `keyStorePassword`, `plugin.psk` -> their lower-case words. */
function keyWords(key: string): string[] {
  return key
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter(Boolean);
}

/** Does a key name hold a secret value? */
export function isSecretKey(key: string): boolean {
  if (NOT_SECRET_KEYS.has(key)) return false;
  const words = keyWords(key);
  if (words.length === 0 || NOT_SECRET_LAST_WORDS.has(words.at(-1)!)) return false;
  return words.some((w) => SECRET_WORDS.has(w)) || SECRET_PARTS.test(words.join(''));
}

// key = value, key: value, key => value as a whole line (INI, YAML, key=value
// files, HOCON, shell); a commented-out, quoted, `export`ed or listed key too
const ASSIGNMENT = /^(\s*[#;]?\s*(?:export\s+|-\s+)?["']?([A-Za-z0-9_.-]+)["']?\s*(?:=>|=|:)[ \t]*)(.*?)(\s*)$/;
// key=value inside a line: argv (--password=x, -Dx.keyStorePassword=x), conninfo (password=x), URL
// queries (?password=x&...); the value ends at white space, `&`, `;`, a quote
// or a backslash (the start of an escape when the text is JSON)
const INLINE_PAIR = /(?<![\w.-])(-{0,2}[A-Za-z][\w.-]*)=([^\s&;"'\\<>]+)/g;
// a quoted value after a key, with = => or : (XML attributes, JSON, Puppet, YAML flow)
const QUOTED_PAIR = /(?<![\w.-])(["']?)([A-Za-z][\w.-]*)\1(\s*(?:=>|=|:)\s*)(?:"((?:[^"\\\n]|\\.)*)"|'([^'\n]*)')/g;
// scheme://user:password@host
const URL_USERINFO = /(\b[A-Za-z][A-Za-z0-9+.-]*:\/\/[^\s:/@"'\\]*:)([^\s/@"'\\]+)@/g;

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** The forms a secret takes in text: as is, JSON-escaped once and twice, URL-encoded. */
function secretForms(secret: string): string[] {
  const json = (s: string) => JSON.stringify(s).slice(1, -1);
  let url = secret;
  try {
    url = encodeURIComponent(secret);
  } catch {
    // a lone surrogate has no URL form
  }
  return [...new Set([secret, json(secret), json(json(secret)), url])];
}

export class Redactor {
  private readonly values = new Set<string>();
  private pattern: RegExp | null | undefined;

  constructor(secrets: Iterable<string> = []) {
    for (const s of secrets) this.add(s);
  }

  /**
   * Register a secret value. Empty and all-blank values are ignored; values
   * shorter than MIN_SUBSTRING_SECRET are masked as whole tokens only.
   */
  add(secret: string | undefined | null): this {
    if (typeof secret === 'string' && secret.trim() !== '' && !this.values.has(secret)) {
      this.values.add(secret);
      this.pattern = undefined;
    }
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

  /** One pattern for every form of every known secret, longest first, so a secret that contains another is masked whole. */
  private secretPattern(): RegExp | null {
    if (this.pattern !== undefined) return this.pattern;
    const alternatives = [...this.values]
      .flatMap((v) => secretForms(v).map((form) => ({ form, whole: v.length < MIN_SUBSTRING_SECRET })))
      .sort((a, b) => b.form.length - a.form.length)
      .map(({ form, whole }) =>
        whole ? `(?<![\\p{L}\\p{N}_])${escapeRegExp(form)}(?![\\p{L}\\p{N}_])` : escapeRegExp(form),
      );
    this.pattern = alternatives.length ? new RegExp(alternatives.join('|'), 'gu') : null;
    return this.pattern;
  }

  /**
   * Mask known values anywhere in the text (in each form they take), the
   * password of a `scheme://user:password@` URL, and the value of a
   * `key=value` pair whose key is secret-looking (`--password=x`,
   * `?password=x&`, `password=x` in a conninfo).
   */
  redact(text: string): string {
    const pattern = this.secretPattern();
    const known = pattern ? text.replace(pattern, MASK) : text;
    return known
      .replace(URL_USERINFO, (_m, head: string) => `${head}${MASK}@`)
      .replace(INLINE_PAIR, (m, key: string) => (isSecretKey(key) ? `${key}=${MASK}` : m));
  }

  /**
   * Mask as `redact` does, then the value of every line that assigns a
   * secret-looking key, and quoted values of secret-looking keys inside lines
   * (XML attributes, JSON, Puppet `=>`).
   */
  redactConfig(text: string): string {
    return this.redact(text)
      .split('\n')
      .map((line) => {
        const m = ASSIGNMENT.exec(line);
        if (!m || !isSecretKey(m[2] ?? '') || (m[3] ?? '') === '' || m[3] === MASK) return maskQuotedPairs(line);
        return `${m[1]}${MASK}${m[4] ?? ''}`;
      })
      .join('\n');
  }

  redactArgv(argv: readonly string[]): string[] {
    return argv.map((a) => this.redact(a));
  }

  /**
   * A copy of a value, as JSON would see it (`toJSON` honoured, functions and
   * symbols left out by the serialiser), with every string redacted and every
   * string or number under a secret-looking key masked. Serialise the result:
   * masking after serialising misses secrets that JSON escapes.
   */
  redactValue(value: unknown): unknown {
    return this.walk(value, false, new Set());
  }

  /** `JSON.stringify` of `redactValue(value)`. */
  redactJson(value: unknown, space?: number): string {
    return JSON.stringify(this.redactValue(value), null, space);
  }

  private walk(value: unknown, secret: boolean, path: Set<object>): unknown {
    if (typeof value === 'string') return secret && value !== '' ? MASK : this.redact(value);
    if (typeof value === 'number' || typeof value === 'bigint') return secret ? MASK : value;
    if (value === null || typeof value !== 'object') return value;
    const toJSON = (value as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') return this.walk(toJSON.call(value) as unknown, secret, path);
    if (path.has(value)) return '[Circular]';
    path.add(value);
    try {
      if (Array.isArray(value)) return value.map((v: unknown) => this.walk(v, secret, path));
      const entries = Object.entries(value).map(([k, v]) => [this.redact(k), this.walk(v, isSecretKey(k), path)]);
      return Object.fromEntries(entries) as unknown;
    } finally {
      path.delete(value);
    }
  }
}

/** `password="x"` -> `password="********"` for each secret-looking key in the line. */
function maskQuotedPairs(line: string): string {
  return line.replace(QUOTED_PAIR, (m, q: string, key: string, sep: string, dq?: string, sq?: string) => {
    if (!isSecretKey(key) || (dq ?? sq) === '' || (dq ?? sq) === MASK) return m;
    return dq !== undefined ? `${q}${key}${q}${sep}"${MASK}"` : `${q}${key}${q}${sep}'${MASK}'`;
  });
}
