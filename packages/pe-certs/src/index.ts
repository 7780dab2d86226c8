export * from './errors.js';
export {
  Openssl,
  PASS_ENV,
  altNameEntry,
  validateCommonName,
  type KeySpec,
  type OpensslOptions,
  type OpensslRunOptions,
} from './openssl.js';
export { parseCsr, parseCrl, pemToDer, normaliseSerial, type ParsedCsr, type ParsedCrl } from './der.js';
export { inspectCert, parseAltNameText, canonicalPublicKey, type CertInfo } from './x509.js';
export {
  checkAltNames,
  enforceAltNames,
  validateCertname,
  type AltNamePolicy,
  type SignOptions,
  type PolicyVerdict,
  type CaBackend,
  type CertEntry,
  type CertState,
} from './backend.js';
export {
  OpensslCa,
  CA_FILES,
  opensslCaConfig,
  parseIndex,
  type OpensslCaOptions,
  type OpensslCaInitOptions,
} from './ca-openssl.js';
export {
  loadTrust,
  checkCertificate,
  verifyNode,
  assertVerified,
  puppetSslPaths,
  type Trust,
  type Check,
  type CheckId,
  type CheckLevel,
  type CertExpectations,
  type NodeSslPaths,
  type VerifyNodeOptions,
  type NodeReport,
} from './verify.js';
export {
  OpensslAgent,
  PuppetSslAgent,
  Pe3PuppetAgent,
  runThenLook,
  type NodeAgent,
  type PuppetAgentOptions,
} from './enroll.js';
export {
  PuppetserverCa,
  PuppetCertCa,
  parsePuppetserverListJson,
  parsePuppetserverListText,
  parsePuppetCertList,
  type PuppetCaOptions,
} from './ca-puppet.js';
export { regenerateNodeCert, masterAltNames, type RegenerateOptions, type RegenerateResult } from './regenerate.js';
export {
  backupCa,
  verifyCaArchive,
  restoreCa,
  grantCaAdmin,
  allowSubjectAltNames,
  type CaManifest,
  type CaBackupResult,
  type CaRestoreOptions,
  type CaRestoreResult,
} from './backup.js';
export { syncCrl, type CrlTarget, type CrlSyncResult } from './crl-sync.js';
export { reinitPuppetdbSsl, puppetdbSslDir, type PuppetdbSslResult } from './puppetdb.js';
export {
  ensureConsoleCert,
  consoleAutosign,
  consoleCertPaths,
  type ConsoleCertOptions,
  type ConsoleCertPaths,
  type ConsoleCertResult,
} from './console.js';
export { TarManifest, unsafeEntryName } from './tar.js';
export { verifiedLocalCopy, clearWithVerifiedBackup, type ClearResult } from './regenerate.js';
export { PublicKeyMemo, publicKeyMemo } from './keymemo.js';
