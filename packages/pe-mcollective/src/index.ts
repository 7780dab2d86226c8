export { McoError, McoVerifyError, type McoErrorCode } from './errors.js';
export {
  type MasterRef,
  type BrokerEndpoint,
  type PoolEntry,
  type PoolView,
  type StompCredentials,
  DEFAULT_STOMP_PORT,
  DEFAULT_OPENWIRE_PORT,
  stompEndpoint,
  openwireEndpoint,
  checkMasters,
  commaList,
  poolFor,
  readPool,
  poolBrokers,
  poolOps,
} from './brokers.js';
export { ActiveMqAuthEditor, type AuthUser } from './activemq-auth.js';
export {
  rakeArg,
  rakeTask,
  variablesArg,
  splitEscaped,
  parseRakeTask,
  parseVariablesArg,
  parseVariableListing,
  parseNameListing,
  rakePrefix,
  packRakeRuns,
  RAKE_RUN_MARKER,
  Pe3Console,
  type RakeCall,
  type ConsoleQuery,
  type ConsoleListing,
  type ConsoleChanges,
} from './rake.js';
export {
  type SharedFile,
  type FileFacts,
  type HostFacts,
  type FileComparison,
  type CopyReport,
  type SharedFilesComparison,
  sharedFiles,
  fileFacts,
  hostFacts,
  compareSharedFiles,
  compareWithFacts,
  copySharedFiles,
} from './pki.js';
export { type Master, type McoCluster, allMasters } from './cluster.js';
export {
  type Pe3ConsoleNames,
  type Pe3Options,
  PE3_CONSOLE_NAMES,
  PE3_CONSOLE_STEP,
  pe3JoinSteps,
  pe3RemoveSteps,
  verifyPe3,
} from './pe3.js';
export {
  type McoSecrets,
  type DebianOptions,
  type FilePlan,
  MESH_PREFIX,
  readSecrets,
  meshConnector,
  planMasterFiles,
  debianSyncSteps,
  debianRemoveSteps,
  verifyDebian,
} from './debian.js';
export { type PingResult, parsePing, mcoPing } from './mco.js';
export { type VerifyReport, report, assertMcoVerified } from './verify.js';
