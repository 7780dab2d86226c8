export * from './errors.js';
export { shellQuote, quoteArg } from './quote.js';
export { validateHostname, validateRemotePath, validateEnvName, isIpLiteral } from './validate.js';
export { Redactor, MASK, isSecretKey } from './redact.js';
export type * from './host.js';
