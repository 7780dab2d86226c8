import { PeError } from '@pe-stack/pe-host';

/** The codes pe-config-files raises. */
export type ConfigErrorCode = 'E_CONFIG_PARSE' | 'E_CONFIG_EDIT' | 'E_LAYOUT_INVALID';

/** Base of pe-config-files' errors. */
export class ConfigError extends PeError<ConfigErrorCode> {}

/** A file could not be parsed: names the file and the 1-based line. Nothing is written. */
export class ConfigParseError extends ConfigError {
  readonly path: string;
  readonly line: number | undefined;
  constructor(path: string, line: number | undefined, detail: string, cause?: unknown) {
    super('E_CONFIG_PARSE', `cannot parse ${path}${line === undefined ? '' : ` line ${line}`}: ${detail}`, {
      cause,
      hint: 'Fix the file by hand (it was left unchanged), then rerun.',
    });
    this.path = path;
    this.line = line;
  }
}

/** An edit cannot be applied to a file as it is (e.g. no block to add a key to). Nothing is written. */
export class ConfigEditError extends ConfigError {
  readonly path: string;
  constructor(path: string, detail: string, hint?: string) {
    super('E_CONFIG_EDIT', `cannot edit ${path}: ${detail}`, { hint: hint ?? 'The file was left unchanged.' });
    this.path = path;
  }
}

/** A layout (or an inventory override of one) is invalid. */
export class LayoutError extends ConfigError {
  readonly field: string;
  constructor(field: string, detail: string) {
    super('E_LAYOUT_INVALID', `layout field ${field}: ${detail}`, {
      hint: 'Fix the layout overrides in the inventory.',
    });
    this.field = field;
  }
}
