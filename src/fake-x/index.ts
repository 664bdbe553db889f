export * from './server.js';
export { tokenFromAuthorization } from './auth.js';
export { ALL_FAULT_KINDS, ALL_LOOKUP_FAULT_KINDS, FaultPlan, faultCommits, mulberry32 } from './faults.js';
export type { FaultKind, FaultMatch, FaultPlanOptions, LookupFaultKind, WriteRequestInfo } from './faults.js';
export * from './render.js';
