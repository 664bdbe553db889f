/**
 * What a chaos run is told: the sizes, the kill and fault schedule, X's
 * behaviour, the timing windows, and timed events (a Redis restart, ...).
 * The defaults are the CI run's (bench/chaos.ts parses the flags).
 */
import type { Redis } from 'ioredis';
import type { FaultKind } from '../../src/fake-x/index.js';

export interface ChaosEventContext {
  /** The run's Redis connection (reconnects on its own) and its prefix. */
  readonly redis: Redis;
  readonly prefix: string;
  /** Signal every live worker at once and start as many replacements. */
  hitAllWorkers(signal: 'SIGKILL' | 'SIGTERM'): number;
}

export interface ChaosEvent {
  /** Seconds after the first enqueue. */
  readonly atS: number;
  readonly name: string;
  readonly run: (ctx: ChaosEventContext) => Promise<void>;
}

export interface ChaosOptions {
  readonly keys: number;
  readonly accounts: number;
  readonly workers: number;
  /** Seconds between two kills; 0 = no kills. */
  readonly killEveryS: number;
  /** Share of the kills that are a graceful SIGTERM (the rest are SIGKILL). */
  readonly termShare: number;
  /** Keep killing for this long after the first enqueue (undefined: until every key is final). */
  readonly chaosS?: number;
  readonly faultRate: number;
  readonly faultKinds?: readonly FaultKind[];
  /** The fake X's timeline lag moves at random within [0, lagMaxMs]. */
  readonly lagMaxMs: number;
  readonly seed: number;
  readonly timeoutS: number;
  readonly xTimeoutMs: number;
  /** Must exceed lagMaxMs + xTimeoutMs (default: lagMaxMs + xTimeoutMs + 3 s). */
  readonly settleMs: number;
  readonly reconcileMs: number;
  readonly concurrency: number;
  /** scheduledAt is spread over this many seconds after the run starts. */
  readonly spreadS: number;
  /** deadline = scheduledAt + this. */
  readonly deadlineS: number;
  /** Share of keys cancelled, edited or rescheduled around their due time while the run goes on (0 = none). */
  readonly calendarShare?: number;
  /** Share of keys each producer re-enqueues as a duplicate while publishing goes on. */
  readonly dupShare: number;
  /** Keep X's duplicate-content 403 on (off: a double publish shows up on the fake instead of being refused). */
  readonly xDuplicateCheck: boolean;
  /**
   * X as it behaves in 2026 (default on): reads fail too (cut gzip bodies,
   * hangs, at a third of the fault rate), replies to a post that did not
   * mention the account and DMs to a user who refuses them are refused for
   * good, texts carry x.com status links and replies lead with @handles.
   */
  readonly realX?: boolean;
  readonly redisUrl: string;
  /** More environment for the worker processes (e.g. XACTLY_CLAIM_DURABILITY), over the run's own. */
  readonly workerEnv?: Readonly<Record<string, string>>;
  /** A worker that exits on its own is restarted (as PM2 would) and counted; with this, not a violation. */
  readonly allowWorkerCrashes: boolean;
  /** Timed things to do during the run (a Redis restart, ...). */
  readonly events?: readonly ChaosEvent[];
  /** Keep the temp dir (accounts file, worker logs) even on success. */
  readonly keepTemp: boolean;
  readonly log: (line: string) => void;
}

export const DEFAULTS = {
  keys: 300,
  accounts: 20,
  workers: 3,
  killEveryS: 3,
  termShare: 0.25,
  faultRate: 0.3,
  lagMaxMs: 20_000,
  timeoutS: 600,
  xTimeoutMs: 2_000,
  reconcileMs: 1_000,
  concurrency: 20,
  spreadS: 10,
  deadlineS: 600,
  dupShare: 0.2,
  calendarShare: 0.15,
} as const;

/** The settle window must outlast the lag plus the request timeout. */
export const settleFor = (lagMaxMs: number, xTimeoutMs: number): number => lagMaxMs + xTimeoutMs + 3_000;
