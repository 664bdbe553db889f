import type { PostPayload } from './request.js';

/**
 * The state machine of a key, in one place: its states, why a key fails,
 * the moves the settle script allows (the Lua is generated from
 * SETTLE_MOVES), and when a queued key is due. Metrics, the CLI and the
 * board take their lists from here.
 *
 * queued ──claim──▶ claimed ──▶ sent | failed | ambiguous | queued (released)
 * ambiguous ──reconcile──▶ sent | failed | queued (released for a new attempt)
 */
export const POST_STATES = ['queued', 'claimed', 'ambiguous', 'sent', 'failed'] as const;
/** States as stored and printed. */
export type PostState = (typeof POST_STATES)[number];

/** No move leaves these. */
export const FINAL_STATES: readonly PostState[] = ['sent', 'failed'];

export const FAIL_REASONS = ['rejected', 'expired', 'invalid-account', 'account-paused', 'app-paused', 'unresolved'] as const;
/** Why a key failed, as printed; `detail` says more. */
export type FailReason = (typeof FAIL_REASONS)[number];

/**
 * The moves an attempt's result or a reconciliation decision may make, each
 * fenced by the attempt number. (The claim, queued → claimed, and the
 * claim's own failures are the claim script's.)
 */
export const SETTLE_MOVES: Readonly<Record<PostState, readonly PostState[]>> = Object.freeze({
  queued: [],
  claimed: ['sent', 'failed', 'ambiguous', 'queued'],
  ambiguous: ['sent', 'failed', 'queued'],
  sent: [],
  failed: [],
});

export function canSettle(from: PostState, to: PostState): boolean {
  return SETTLE_MOVES[from].includes(to);
}

export function isFinal(state: PostState): boolean {
  return FINAL_STATES.includes(state);
}

/** When a queued key may be attempted: its schedule, or later when a not-sent attempt was released with a backoff. */
export function dueAt(r: { readonly scheduledAt: number; readonly notBefore?: number }): number {
  return Math.max(r.scheduledAt, r.notBefore ?? 0);
}

/** One key's ledger record. */
export interface PostRecord extends PostPayload {
  readonly keyId: string;
  readonly scheduledAt: number;
  readonly deadline: number;
  /** Set when a not-sent attempt was released: no new attempt before it. */
  readonly notBefore?: number;
  readonly fingerprint: string;
  readonly state: PostState;
  /** Number of the latest attempt (0 before the first); the fencing token. */
  readonly attempt: number;
  /** BullMQ job that currently carries the key. */
  readonly jobId: string;
  readonly leaseUntil?: number;
  readonly attemptStartedAt?: number;
  readonly attemptEndedAt?: number;
  /** Id of what X created: the post id, or the DM event id for a dm. */
  readonly tweetId?: string;
  readonly reason?: FailReason;
  readonly detail?: string;
  readonly createdAt: number;
  readonly updatedAt: number;
}

export interface AuditEvent {
  readonly at: number;
  readonly event: string;
  readonly attempt?: number;
  readonly [field: string]: unknown;
}
