export * from './errors.js';
export {
  loadInventory,
  parseInventory,
  parseUri,
  describeInventory,
  type Inventory,
  type InventoryNode,
  type NodeRole,
  type NodeSsh,
  type LoadOptions,
} from './inventory.js';
export { formatKey, type KeyPath } from './yaml-source.js';
export * from '@pe-stack/pe-steps';
export { plainRenderer, ndjsonRenderer, TtyProgress, type Output } from './render.js';
export { resolveAddress } from './address.js';
export { joinFlow, type JoinContext } from './flows/join.js';
export {
  collectStatus,
  formatStatus,
  type StatusReport,
  type MasterStatus,
  type Health,
  type StatusContext,
} from './flows/status.js';
export { Cluster, FLOWS, type FlowName, type ClusterOptions, type RunFlowOptions } from './cluster.js';
export {
  EXIT,
  EXIT_BY_CODE,
  exitCodeForCode,
  exitCodeForError,
  exitCodeForRun,
  type ErrorCode,
  type ExitCode,
} from './exit-codes.js';
export { main, interruptOnSigint, type CliIo } from './main.js';
export { standbyFlow, watchCaCopy, caCopyStep, type StandbyOptions } from './flows/standby.js';
export { failoverFlow, type FailoverOptions } from './flows/failover.js';
export { rejoinFlow, type RejoinOptions } from './flows/rejoin.js';
export {
  syncCaCopy,
  caCopyVerified,
  caServing,
  gateCaEdits,
  liftCaGateEdits,
  CA_GATE,
  type CaSyncResult,
  type CaServing,
} from './flows/ca-switch.js';
export type { HaContext, Remote } from './flows/cluster-access.js';
export {
  guardInstallGroup,
  guardInstallSteps,
  guardClearStep,
  allowCaStart,
  readGuardFence,
  guardCheck,
  type AllowCaStartOptions,
  type GuardOptions,
} from './flows/guard.js';
export { addHaStatus, formatHaStatus, type HaStatus, type HaStatusReport } from './flows/ha-status.js';
export {
  backupCluster,
  restoreCluster,
  openClusterBackup,
  verifyClusterBackup,
  restorePlan,
  isPlainDbName,
  type BackupContext,
  type BackupManifest,
  type BackupOptions,
  type BackupResult,
  type OpenBackupOptions,
  type RestoreOptions,
  type RestorePlan,
  type RestoreReport,
  type VerifiedBackup,
} from './flows/backup.js';
export { BACKUP_KEY_ENV, backupKeyPath, loadBackupKey, type BackupKey } from './flows/backup-key.js';
export {
  caCopyRetention,
  DEFAULT_CA_COPY_RETENTION,
  pruneCaArchives,
  pruneKeptAsideCas,
  type CaCopyRetention,
} from './flows/ca-retention.js';
export {
  applyClusterState,
  readState,
  writeState,
  updateState,
  statePath,
  fenceRegistry,
  type ClusterState,
  type StandbyState,
  type FencedHost,
  type FailoverDecision,
} from './state.js';
export * from './dns/index.js';
