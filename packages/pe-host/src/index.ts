export * from './errors.js';
export { shellQuote, quoteArg, sequenceArgv } from './quote.js';
export { validateHostname, validateRemotePath, validateEnvName, isIpLiteral } from './validate.js';
export { Redactor, MASK, isSecretKey } from './redact.js';
export { maskedDiff } from './diff.js';
export type * from './host.js';
export { LocalHost, type LocalHostOptions } from './local.js';
export { SshHost, type SshHostConfig, type SshStats } from './ssh.js';
export { DryRunHost } from './dryrun.js';
export { readFiles, readFilesOneByOne, type BatchedFile, type ReadFilesOptions } from './batch.js';
export {
  writeFiles,
  writeFilesOneByOne,
  execWriteFiles,
  type BatchWrite,
  type WriteFilesOptions,
} from './batch-write.js';
export { copyTree, treeManifest, manifestDifferences, type CopyTreeResult } from './tree.js';
export {
  fingerprint,
  knownHostsName,
  parseKnownHosts,
  patternsMatch,
  verifyAgainstKnownHosts,
  type KnownHostEntry,
} from './knownhosts.js';
export { Semaphore } from './semaphore.js';
export { pollUntil, type PollOptions, type PollResult } from './poll.js';
export { backupPath, isProtectedPath, PROTECTED_PATHS } from './common.js';
