import { createTwoFilesPatch } from 'diff';
import type { Redactor } from './redact.js';

/**
 * A unified diff of a file change with secrets masked on both sides. When
 * the only difference is inside a masked value, the diff says so instead of
 * showing nothing.
 */
export function maskedDiff(
  path: string,
  before: string | undefined,
  after: string | undefined,
  redactor: Redactor,
): string {
  const a = before === undefined ? '' : redactor.redactConfig(before);
  const b = after === undefined ? '' : redactor.redactConfig(after);
  if (a === b) {
    return before === after ? '' : `--- ${path}\n+++ ${path}\n(only a masked secret value changed)\n`;
  }
  return createTwoFilesPatch(
    before === undefined ? '/dev/null' : path,
    after === undefined ? '/dev/null' : path,
    a,
    b,
    '',
    '',
    { context: 3 },
  );
}
