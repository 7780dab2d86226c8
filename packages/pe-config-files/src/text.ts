/**
 * Shared line model for the lossless editors. A file is a list of lines, each
 * with its own terminator ('' for a last line without one), so joining them
 * gives the input back byte for byte (CRLF, CR, mixed endings and all).
 */
export type Eol = '\n' | '\r\n' | '';

export interface Line {
  /** The line without its terminator. A lone '\r' (old Mac) stays in the text. */
  text: string;
  eol: Eol;
}

export function splitLines(text: string): Line[] {
  const out: Line[] = [];
  let start = 0;
  while (start < text.length) {
    const nl = text.indexOf('\n', start);
    if (nl === -1) {
      out.push({ text: text.slice(start), eol: '' });
      break;
    }
    if (nl > start && text.charCodeAt(nl - 1) === 13) out.push({ text: text.slice(start, nl - 1), eol: '\r\n' });
    else out.push({ text: text.slice(start, nl), eol: '\n' });
    start = nl + 1;
  }
  return out;
}

export function joinLines(lines: readonly Line[]): string {
  let s = '';
  for (const l of lines) s += l.text + l.eol;
  return s;
}

/** The file's own line ending: the most frequent one, '\n' when there is none. */
export function detectEol(lines: readonly Line[]): '\n' | '\r\n' {
  let crlf = 0;
  let lf = 0;
  for (const l of lines) {
    if (l.eol === '\r\n') crlf++;
    else if (l.eol === '\n') lf++;
  }
  return crlf > lf ? '\r\n' : '\n';
}

export function detectEolText(text: string): '\n' | '\r\n' {
  const lf = (text.match(/\n/g) ?? []).length;
  const crlf = (text.match(/\r\n/g) ?? []).length;
  return crlf > lf - crlf ? '\r\n' : '\n';
}

/**
 * Insert new line texts at index `at`, terminated with the file's EOL. When
 * inserting after a last line that has no terminator, that line gets one and
 * the last inserted line goes without, so "no final newline" survives.
 */
export function insertLines(
  lines: Line[],
  at: number,
  texts: readonly string[],
  eol: '\n' | '\r\n' = detectEol(lines),
): void {
  if (texts.length === 0) return;
  const added: Line[] = texts.map((t) => ({ text: t, eol }));
  if (at >= lines.length && lines.length > 0) {
    const last = lines[lines.length - 1]!;
    if (last.eol === '') {
      last.eol = eol;
      added[added.length - 1]!.eol = '';
    }
  }
  lines.splice(Math.min(at, lines.length), 0, ...added);
}

/** Remove lines [from, to); if the removed block held the final unterminated line, the new last line loses its terminator. */
export function removeLines(lines: Line[], from: number, to: number = from + 1): void {
  const hadUnterminatedEnd = to >= lines.length && lines.length > 0 && lines[lines.length - 1]!.eol === '';
  lines.splice(from, to - from);
  if (hadUnterminatedEnd && lines.length > 0 && from >= lines.length) lines[lines.length - 1]!.eol = '';
}

/** Leading whitespace of a line. */
export function indentOf(text: string): string {
  return /^[ \t]*/.exec(text)![0];
}

/** 1-based line number of a character offset. */
export function lineOfOffset(text: string, offset: number): number {
  let n = 1;
  for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

/** Replace [start, end) of a string. */
export function splice(text: string, start: number, end: number, insert: string): string {
  return text.slice(0, start) + insert + text.slice(end);
}

/** Offset of the start of the line containing `offset`. */
export function lineStart(text: string, offset: number): number {
  return text.lastIndexOf('\n', offset - 1) + 1;
}

/** Offset just past the terminator of the line containing `offset` (or the end of text). */
export function lineEnd(text: string, offset: number): number {
  const nl = text.indexOf('\n', offset);
  return nl === -1 ? text.length : nl + 1;
}
