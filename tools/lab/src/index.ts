export { Lab } from './lab.js';
export type { HostRecord, LabState, UpOptions, HostStatus, LabStatus, DownReport, InventoryFiles } from './types.js';
export { LabError, type LabErrorCode } from './errors.js';
export { defaultConfig, PROFILES, type LabConfig, type ProfileName, type Role } from './config.js';
export { missingPackages, checkPrerequisites } from './prereq.js';
export { PROFILE_SPECS, type ProfileSpec } from './profiles.js';
export { useLab, leaveLab, FRESH_STAGE, LAB_SHAPES, type UseLabOptions, type FinishedSuite } from './fixture.js';
