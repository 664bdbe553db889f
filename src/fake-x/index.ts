export * from './server.js';
export { FaultPlan, faultCommits, mulberry32 } from './faults.js';
export type { FaultPlanOptions, WriteRequestInfo } from './faults.js';
export * from './render.js';
