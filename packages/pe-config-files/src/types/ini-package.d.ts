// Minimal types for the `ini` package (no @types/ini in the workspace); only
// the reader the tests compare against is declared.
declare module 'ini' {
  export function parse(text: string): Record<string, unknown>;
}
