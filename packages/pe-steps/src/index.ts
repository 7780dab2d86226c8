export * from './errors.js';
export * from './types.js';
export { runFlow, type RunOptions } from './engine.js';
export { probe, ensureStep, type EnsureHosts, type ProbeOptions } from './ensure.js';
export { FileCache, CachingHost, type FileHint } from './file-cache.js';
export { Journal, readJournal, findResumable, newRunId, type JournalRecord, type JournalSummary } from './journal.js';
export { RecordingHost, type Recorded } from './recording-host.js';
export { formatPlan } from './plan.js';
