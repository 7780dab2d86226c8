export * from './errors.js';
export { loadInventory, parseInventory, parseUri, describeInventory, type Inventory, type InventoryNode, type NodeRole, type NodeSsh, type LoadOptions } from './inventory.js';
export { formatKey, type KeyPath } from './yaml-source.js';
