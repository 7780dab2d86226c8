export * from './errors.js';
export { loadInventory, parseInventory, parseUri, describeInventory, type Inventory, type InventoryNode, type NodeRole, type NodeSsh, type LoadOptions } from './inventory.js';
export { formatKey, type KeyPath } from './yaml-source.js';
export { runFlow, type RunOptions } from './engine/engine.js';
export { Journal, readJournal, findResumable, newRunId, type JournalRecord, type JournalSummary } from './engine/journal.js';
export { RecordingHost, type Recorded } from './engine/recording-host.js';
export { plainRenderer, ndjsonRenderer, TtyProgress, formatPlan, type Output } from './engine/render.js';
export * from './engine/types.js';
