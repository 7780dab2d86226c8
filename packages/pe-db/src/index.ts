export * from './errors.js';
export {
  type PgInstance,
  type SqlOptions,
  instanceFromLayout,
  instanceFromHost,
  debianInstance,
  pe3Instance,
  asDbUser,
  psql,
  query,
  queryOne,
  quoteIdent,
  quoteLiteral,
  serverVersionNum,
  requireVersion,
  isRunning,
  isInRecovery,
  waitFor,
} from './instance.js';
export { initCluster, destroyCluster, postmasterPid, type InitClusterOptions } from './cluster.js';
export { scramVerifier, randomPassword } from './scram.js';
export {
  type ServiceDbFile,
  type DbCredentials,
  type WriteCredentialsOptions,
  PE3_DB_FILES,
  DEBIAN_DB_FILES,
  dbFilesFromLayout,
  parseSubname,
  readServiceCredentials,
  readCredentials,
  renderServiceFile,
  writeCredentials,
  pointServicesAt,
} from './credentials.js';
export {
  type AccessGrant,
  type AccessResult,
  type GrantAccessOptions,
  type HbaFileRule,
  type SetParametersResult,
  grantAccess,
  grantAccessMany,
  revokeAccess,
  hbaFileRules,
  hbaRecord,
  hbaMethods,
  hbaRulesAndMethods,
  type HbaMethod,
  hostCidr,
  setParameters,
} from './access.js';
export { type ConnectivityResult, checkFromHost, checkManyFromHost, checkFromController, classifyFailure } from './connectivity.js';
export {
  type PoolUse,
  type NodePools,
  type PrimaryLimits,
  type BudgetReport,
  PUPPETDB_DEFAULT_POOL,
  RAILS_DEFAULT_POOL,
  readPools,
  primaryLimits,
  fitPoolSize,
  checkBudget,
} from './budget.js';
export {
  type ReplicaOptions,
  type ReplicaResult,
  type ReplicationLag,
  type ReplicationSource,
  buildReplica,
  prepareReplicationSource,
  replicaIdent,
  waitForStreaming,
  setSynchronous,
  replicationLag,
  standbyDelaySeconds,
  waitCaughtUp,
  removeReplica,
} from './replica.js';
export { FENCE_MARKER, type FenceRecord, type StartOptions, fenceMarkerPath, readFenceMarker, startInstance, stopInstance, restartInstance, clearStaleLock } from './lifecycle.js';
export {
  type PromoteResult,
  type FenceResult,
  type FailoverOptions,
  type FailoverResult,
  type RejoinResult,
  FenceRegistry,
  promote,
  fence,
  fencedBy,
  guardedStart,
  failover,
  rejoin,
} from './failover.js';
export { type RewindResult, rewindAsStandby, rewindBlocker } from './rewind.js';
export { accessGranted, credentialsCurrent, replicaStreaming } from './checks.js';
