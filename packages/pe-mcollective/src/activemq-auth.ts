/**
 * ADAPTER — belongs in @pe-stack/pe-config-files (its ActiveMqDocument edits
 * only <networkConnectors> and <transportConnectors>). MCollective on Debian
 * also needs the broker's `brokerName` (unique in a network of brokers) and a
 * STOMP user in `<plugins><simpleAuthenticationPlugin><users>`. This module
 * does exactly those edits, losslessly: it scans the file for tags (comments
 * and CDATA skipped), splices attribute values and whole elements, and leaves
 * every other byte alone. Remove it once pe-config-files offers the same.
 */
import { ConfigEditError, ConfigParseError } from '@pe-stack/pe-config-files';

interface Attr {
  name: string;
  value: string;
  valueStart: number;
  valueEnd: number;
  end: number;
}

interface El {
  local: string;
  start: number;
  tagEnd: number;
  /** Offset of the '>' (or '/') that ends the start tag. */
  tagClose: number;
  closeStart: number;
  end: number;
  selfClosing: boolean;
  attrs: Attr[];
  children: El[];
}

export interface AuthUser {
  username: string;
  password: string;
  groups: string;
}

function lineOf(s: string, at: number): number {
  let n = 1;
  for (let i = 0; i < at; i++) if (s.charCodeAt(i) === 10) n++;
  return n;
}

function unescapeXml(s: string): string {
  return s.replace(/&(lt|gt|amp|quot|apos|#\d+|#x[0-9a-fA-F]+);/g, (_m, e: string) =>
    e === 'lt'
      ? '<'
      : e === 'gt'
        ? '>'
        : e === 'amp'
          ? '&'
          : e === 'quot'
            ? '"'
            : e === 'apos'
              ? "'"
              : String.fromCodePoint(e.startsWith('#x') ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10)),
  );
}

function escapeAttr(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/"/g, '&quot;');
}

function parse(s: string, path: string): El[] {
  const roots: El[] = [];
  const stack: El[] = [];
  const fail = (msg: string, at: number): never => {
    throw new ConfigParseError(path, lineOf(s, at), msg);
  };
  const skip = (open: string, close: string, i: number): number => {
    if (!s.startsWith(open, i)) return -1;
    const e = s.indexOf(close, i + open.length);
    return e === -1 ? fail(`unterminated ${open}`, i) : e + close.length;
  };
  let i = 0;
  while ((i = s.indexOf('<', i)) !== -1) {
    const skipped = Math.max(skip('<!--', '-->', i), skip('<![CDATA[', ']]>', i), skip('<?', '?>', i));
    if (skipped !== -1) {
      i = skipped;
      continue;
    }
    if (s.startsWith('<!', i)) {
      let depth = 0;
      let j = i + 2;
      for (; j < s.length && !(s[j] === '>' && depth <= 0); j++) depth += s[j] === '[' ? 1 : s[j] === ']' ? -1 : 0;
      i = j + 1;
      continue;
    }
    if (s[i + 1] === '/') {
      const m = /^<\/(?:[\w.-]+:)?([\w.-]+)\s*>/.exec(s.slice(i, i + 200)) ?? fail('malformed end tag', i);
      const open = stack.pop() ?? fail(`end tag without a start tag`, i);
      if (open.local !== m[1]) fail(`end tag </${m[1]}> does not match <${open.local}>`, i);
      open.closeStart = i;
      open.end = i + m[0].length;
      i = open.end;
      continue;
    }
    const nm = /^<(?:[\w.-]+:)?([A-Za-z_][\w.-]*)/.exec(s.slice(i, i + 200)) ?? fail('malformed start tag', i);
    let j = i + nm[0].length;
    const attrs: Attr[] = [];
    for (;;) {
      while (j < s.length && /\s/.test(s[j]!)) j++;
      if (j >= s.length) fail(`unterminated <${nm[1]}> tag`, i);
      if (s[j] === '>' || (s[j] === '/' && s[j + 1] === '>')) break;
      const am =
        /^([A-Za-z_][\w.:-]*)\s*=\s*(["'])/.exec(s.slice(j, j + 300)) ?? fail(`malformed attribute in <${nm[1]}>`, j);
      const valueStart = j + am[0].length;
      const close = s.indexOf(am[2]!, valueStart);
      if (close === -1) fail(`unterminated attribute value in <${nm[1]}>`, j);
      attrs.push({
        name: am[1]!,
        value: unescapeXml(s.slice(valueStart, close)),
        valueStart,
        valueEnd: close,
        end: close + 1,
      });
      j = close + 1;
    }
    const selfClosing = s[j] === '/';
    const tagEnd = j + (selfClosing ? 2 : 1);
    const el: El = {
      local: nm[1]!,
      start: i,
      tagEnd,
      tagClose: j,
      closeStart: tagEnd,
      end: tagEnd,
      selfClosing,
      attrs,
      children: [],
    };
    (stack.at(-1)?.children ?? roots).push(el);
    if (!selfClosing) stack.push(el);
    i = tagEnd;
  }
  if (stack.length) fail(`<${stack.at(-1)!.local}> is never closed`, stack.at(-1)!.start);
  return roots;
}

function find(els: readonly El[], local: string): El | undefined {
  for (const e of els) {
    if (e.local === local) return e;
    const f = find(e.children, local);
    if (f) return f;
  }
  return undefined;
}

const attr = (e: El, name: string): Attr | undefined => e.attrs.find((a) => a.name === name);
const lineStart = (s: string, at: number): number => s.lastIndexOf('\n', at - 1) + 1;
const indentAt = (s: string, at: number): string => /^[ \t]*/.exec(s.slice(lineStart(s, at)))![0];
const splice = (s: string, a: number, b: number, t: string): string => s.slice(0, a) + t + s.slice(b);

/** Edits on one activemq.xml text; each returns whether it changed anything. */
export class ActiveMqAuthEditor {
  private roots: El[];

  constructor(
    private text: string,
    readonly path: string,
  ) {
    this.roots = parse(text, path);
  }

  toString(): string {
    return this.text;
  }

  private set(text: string): void {
    this.text = text;
    this.roots = parse(text, this.path);
  }

  private broker(): El {
    const b = find(this.roots, 'broker');
    if (!b || b.selfClosing) throw new ConfigEditError(this.path, 'no <broker> element.');
    return b;
  }

  private get eol(): string {
    return this.text.includes('\r\n') ? '\r\n' : '\n';
  }

  /** One indentation step, from the broker's children (default four spaces). */
  private unit(): string {
    const b = this.broker();
    const child = b.children[0];
    const outer = indentAt(this.text, b.start);
    const inner = child ? indentAt(this.text, child.start) : '';
    return inner.length > outer.length && inner.startsWith(outer) ? inner.slice(outer.length) : '    ';
  }

  brokerName(): string | undefined {
    return attr(this.broker(), 'brokerName')?.value;
  }

  /** Set an attribute of <broker> (e.g. brokerName), in place or added after the last attribute. */
  setBrokerAttribute(name: string, value: string): boolean {
    if (!/^[A-Za-z_][\w.-]*$/.test(name)) throw new ConfigEditError(this.path, `"${name}" is not an attribute name.`);
    if (/[\r\n]/.test(value)) throw new ConfigEditError(this.path, `the value for ${name} contains a line break.`);
    return this.setAttr(this.broker(), name, value);
  }

  private setAttr(el: El, name: string, value: string): boolean {
    const a = attr(el, name);
    if (a) {
      if (a.value === value) return false;
      this.set(splice(this.text, a.valueStart, a.valueEnd, escapeAttr(value)));
      return true;
    }
    const last = el.attrs.at(-1);
    const at = last ? last.end : el.start + /^<[\w.:-]+/.exec(this.text.slice(el.start))![0].length;
    const multiLine = last !== undefined && lineOf(this.text, last.end) !== lineOf(this.text, el.start);
    const sep = multiLine ? `${this.eol}${indentAt(this.text, last.end - 1)}` : ' ';
    this.set(splice(this.text, at, at, `${sep}${name}="${escapeAttr(value)}"`));
    return true;
  }

  private usersElement(): El | undefined {
    const plugins = this.broker().children.find((c) => c.local === 'plugins');
    const sap = plugins?.children.find((c) => c.local === 'simpleAuthenticationPlugin');
    return sap?.children.find((c) => c.local === 'users');
  }

  /** The users of the simple authentication plugin (passwords are not returned). */
  users(): { username: string; groups: string | undefined; hasPassword: boolean }[] {
    return (this.usersElement()?.children ?? [])
      .filter((c) => c.local === 'authenticationUser')
      .map((c) => ({
        username: attr(c, 'username')?.value ?? '',
        groups: attr(c, 'groups')?.value,
        hasPassword: (attr(c, 'password')?.value ?? '') !== '',
      }));
  }

  /** The password of a user, for comparisons in memory (never print it). */
  passwordOf(username: string): string | undefined {
    const u = (this.usersElement()?.children ?? []).find(
      (c) => c.local === 'authenticationUser' && attr(c, 'username')?.value === username,
    );
    return u ? attr(u, 'password')?.value : undefined;
  }

  /**
   * Create or update `<authenticationUser username=... password=... groups=.../>`,
   * adding `<users>`, `<simpleAuthenticationPlugin>` and `<plugins>` where missing
   * (`<plugins>` in alphabetical position among the broker's children).
   */
  setUser(u: AuthUser): boolean {
    if (!/^[A-Za-z0-9_.@-]+$/.test(u.username))
      throw new ConfigEditError(this.path, 'the user name must be letters, digits, "_", ".", "@" or "-".');
    if (u.password === '' || /[\r\n]/.test(u.password))
      throw new ConfigEditError(this.path, `the password for ${u.username} is empty or contains a line break.`);
    const broker = this.broker();
    const plugins = broker.children.find((c) => c.local === 'plugins');
    const jaas = plugins?.children.find((c) => /^jaas/i.test(c.local));
    if (jaas)
      throw new ConfigEditError(
        this.path,
        `the broker authenticates through <${jaas.local}>; add the user "${u.username}" there by hand.`,
      );
    const el = `<authenticationUser username="${escapeAttr(u.username)}" password="${escapeAttr(u.password)}" groups="${escapeAttr(u.groups)}"/>`;
    const users = this.usersElement();
    const existing = users?.children.find(
      (c) => c.local === 'authenticationUser' && attr(c, 'username')?.value === u.username,
    );
    if (existing) {
      const a = this.setAttr(existing, 'password', u.password);
      const current = this.usersElement()!.children.find(
        (c) => c.local === 'authenticationUser' && attr(c, 'username')?.value === u.username,
      )!;
      const b = this.setAttr(current, 'groups', u.groups);
      return a || b;
    }
    const unit = this.unit();
    if (users) return this.insertChild(users, [el], unit);
    const sap = plugins?.children.find((c) => c.local === 'simpleAuthenticationPlugin');
    if (sap) return this.insertChild(sap, ['<users>', `${unit}${el}`, '</users>'], unit);
    if (plugins)
      return this.insertChild(
        plugins,
        [
          '<simpleAuthenticationPlugin>',
          `${unit}<users>`,
          `${unit}${unit}${el}`,
          `${unit}</users>`,
          '</simpleAuthenticationPlugin>',
        ],
        unit,
      );
    const block = [
      '<plugins>',
      `${unit}<simpleAuthenticationPlugin>`,
      `${unit}${unit}<users>`,
      `${unit}${unit}${unit}${el}`,
      `${unit}${unit}</users>`,
      `${unit}</simpleAuthenticationPlugin>`,
      '</plugins>',
    ];
    const next = broker.children.find((c) => c.local.localeCompare('plugins') > 0);
    if (next) {
      const indent = indentAt(this.text, next.start);
      const at = this.leadingCommentStart(next);
      this.set(splice(this.text, at, at, block.map((l) => indent + l).join(this.eol) + this.eol + this.eol));
      return true;
    }
    return this.insertChild(broker, block, unit);
  }

  removeUser(username: string): boolean {
    const u = this.usersElement()?.children.find(
      (c) => c.local === 'authenticationUser' && attr(c, 'username')?.value === username,
    );
    if (!u) return false;
    let a = u.start;
    let b = u.end;
    const ls = lineStart(this.text, a);
    const nl = this.text.indexOf('\n', b);
    const le = nl === -1 ? this.text.length : nl + 1;
    if (this.text.slice(ls, a).trim() === '' && this.text.slice(b, le).trim() === '') [a, b] = [ls, le];
    this.set(splice(this.text, a, b, ''));
    return true;
  }

  /** Start of the line where el begins, or of the comment right above it (a comment describes what follows). */
  private leadingCommentStart(el: El): number {
    const ls = lineStart(this.text, el.start);
    const before = this.text.slice(0, ls);
    const trimmed = before.trimEnd();
    if (!trimmed.endsWith('-->')) return ls;
    const open = trimmed.lastIndexOf('<!--');
    if (
      open === -1 ||
      this.text.slice(lineStart(this.text, open), open).trim() !== '' ||
      /\n[ \t]*\n/.test(before.slice(trimmed.length))
    )
      return ls;
    return lineStart(this.text, open);
  }

  /** Insert lines as the last children of el, aligned with its last child (else one step deeper than el). */
  private insertChild(el: El, lines: string[], unit: string): boolean {
    if (el.selfClosing)
      throw new ConfigEditError(this.path, `<${el.local}/> is empty and self-closing; edit it by hand.`);
    const last = el.children.at(-1);
    const indent = last ? indentAt(this.text, last.start) : indentAt(this.text, el.start) + unit;
    const text = lines.map((l) => indent + l).join(this.eol);
    const cs = lineStart(this.text, el.closeStart);
    if (this.text.slice(cs, el.closeStart).trim() === '') this.set(splice(this.text, cs, cs, text + this.eol));
    else
      this.set(
        splice(this.text, el.closeStart, el.closeStart, this.eol + text + this.eol + indentAt(this.text, el.start)),
      );
    return true;
  }
}
