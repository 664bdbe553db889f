/**
 * What makes a chaos run fail: the ground-truth check of every key
 * (test/support/verify.ts: duplicates, lost, stuck, misattributed, ...) and
 * what the run itself saw: enqueue answers that break the contract, a
 * paused account, stray items on X, crashed workers, failed events, workers
 * that did not drain on SIGTERM. Pure: facts in, violations out.
 */
import type { PostRecord } from '../../src/ledger/record.js';
import type { EnqueueResult } from '../../src/queue/producer.js';
import { type TruthViolationKind, type Verdict, verify, type Violation as TruthViolation } from '../../test/support/verify.js';
import { BEFORE_START, type WorkerCrash } from './processes.js';
import type { KeySpec } from './schedule.js';

export { type Verdict, verify };

export type ViolationKind = TruthViolationKind | 'enqueue' | 'account-paused' | 'events';
export type Violation = TruthViolation<ViolationKind>;

/**
 * What is wrong with one enqueue answer, if anything: the same payload must
 * never be refused, and a re-enqueue of a key the ledger holds as final
 * (`expectFinal`) must answer with that outcome.
 */
export function answerViolation(k: KeySpec, r: EnqueueResult, expectFinal: false | PostRecord | undefined): Violation | undefined {
  if (r.status !== 'queued' && r.status !== 'duplicate' && r.status !== 'sent' && r.status !== 'failed' && r.status !== 'cancelled') {
    return {
      keyId: k.keyId,
      kind: 'enqueue',
      detail: `same payload answered ${r.status}: ${r.status === 'conflict' ? r.error.message : 'errors' in r ? JSON.stringify(r.errors) : '-'}`,
    };
  }
  if (!expectFinal) return undefined;
  const want =
    expectFinal.state === 'sent' ? `sent ${expectFinal.tweetId}` : expectFinal.state === 'failed' ? `failed ${expectFinal.reason}` : expectFinal.state;
  const got = r.status === 'sent' ? `sent ${r.tweetId}` : r.status === 'failed' ? `failed ${r.reason}` : r.status;
  return want === got ? undefined : { keyId: k.keyId, kind: 'enqueue', detail: `re-enqueue of a ${expectFinal.state} key answered ${got}, expected ${want}` };
}

/** Every key answered `queued` exactly once, over every enqueue of the run (both producers, every replay). */
export function queuedOnceViolations(keys: readonly KeySpec[], queuedAnswers: ReadonlyMap<string, number>): Violation[] {
  return keys.flatMap((k) => {
    const n = queuedAnswers.get(k.keyId) ?? 0;
    return n === 1 ? [] : [{ keyId: k.keyId, kind: 'enqueue' as const, detail: `answered "queued" ${n} times (must be exactly once per key)` }];
  });
}

export interface RunFacts {
  readonly verdict: Verdict;
  /** Every account's status at the end (a refusal of one post must never pause its account). */
  readonly accountStatus: ReadonlyMap<string, { paused?: string }>;
  readonly crashes: readonly WorkerCrash[];
  readonly allowWorkerCrashes: boolean;
  readonly events: readonly { name: string; error?: string }[];
  /** How each SIGTERMed worker ended. */
  readonly graceful: readonly { how: string; code: number | null; ms: number }[];
}

/** The ground truth's violations, then the run's own; and the SIGTERM outcomes counted by kind. */
export function runViolations(f: RunFacts): { violations: Violation[]; graceful: Record<string, number> } {
  const violations: Violation[] = [...f.verdict.violations];
  for (const [id, s] of f.accountStatus) {
    if (s.paused) violations.push({ keyId: '-', kind: 'account-paused', detail: `account ${id} paused: ${s.paused}` });
  }
  if (f.verdict.strays > 0)
    violations.push({ keyId: '-', kind: 'misattributed', detail: `${f.verdict.strays} item(s) on X carry this run's id but match no key's text` });
  if (!f.allowWorkerCrashes)
    for (const c of f.crashes)
      violations.push({
        keyId: '-',
        kind: 'stuck',
        detail: `worker ${c.worker} exited on its own (code ${c.code}, signal ${c.signal}): ${c.tail.split('\n').at(-1)}`,
      });
  for (const e of f.events) if (e.error) violations.push({ keyId: '-', kind: 'stuck', detail: `event "${e.name}" failed: ${e.error}` });
  const graceful: Record<string, number> = {};
  for (const g of f.graceful) {
    const k = g.code === 0 ? g.how : `${g.how} exit ${g.code}`;
    graceful[k] = (graceful[k] ?? 0) + 1;
    if (g.code !== 0 && g.how !== BEFORE_START) violations.push({ keyId: '-', kind: 'stuck', detail: `SIGTERMed worker: ${k} after ${g.ms} ms` });
  }
  return { violations, graceful };
}
