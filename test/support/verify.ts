/**
 * The ground-truth check (ledger records against the items the fake X really
 * holds), for tests and benchmarks. It lives in src/ops/ground-truth.ts,
 * because `xactly demo` uses it too and src/ never imports test/.
 */
export { type ExpectedKey, TRUTH_VIOLATIONS, type TruthViolationKind, type Verdict, verify, type Violation } from '../../src/ops/ground-truth.js';
