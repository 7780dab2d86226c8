/**
 * `@pe-stack/pe-cluster/testing`: hosts in memory for programmatic plans and
 * tests. `MemoryHost` implements pe-host's `Host` (files with owner and mode,
 * commands answered by `onCommand`); `memoryCluster` makes one per inventory
 * node, seeded as fresh masters with PostgreSQL's answers, for `Cluster`'s
 * `hostFactory`.
 */
export {
  MemoryHost,
  UNANSWERED_EXIT,
  type CommandAnswer,
  type CommandCall,
  type CommandMatcher,
  type CommandRecord,
  type CommandReply,
  type MemoryFile,
  type MemoryHostOptions,
} from './host.js';
export { answerDatabase, type DatabaseAnswers, type QueryAnswer } from './database.js';
export { seedMaster, type SeedOptions } from './seed.js';
export { memoryCluster, type MemoryCluster, type MemoryClusterOptions } from './cluster.js';
