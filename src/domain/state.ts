import type { GivenTimes, PostPayload } from './request.js';

export type { GivenTimes };

/**
 * The state machine of a key, in one place: its states, why a key fails,
 * the moves the settle script allows (the Lua is generated from
 * SETTLE_MOVES), and when a queued key is due. Metrics, the CLI and the
 * board take their lists from here.
 *
 * queued ──claim──▶ claimed ──▶ sent | failed | ambiguous | queued (released)
 * ambiguous ──reconcile──▶ sent | failed | queued (released for a new attempt)
 * queued ──cancel──▶ cancelled
 * claimed | ambiguous ──cancel──▶ cancelling ──▶ sent (it had gone out) | cancelled
 *   (no new attempt ever starts; the attempt in doubt resolves as usual)
 */
export const POST_STATES = ['queued', 'claimed', 'ambiguous', 'cancelling', 'sent', 'failed', 'cancelled'] as const;
/** States as stored and printed. */
export type PostState = (typeof POST_STATES)[number];

/** No move leaves these. */
export const FINAL_STATES: readonly PostState[] = ['sent', 'failed', 'cancelled'];

/** An attempt may be on its way to X, or its outcome is unknown: a cancel must wait for it, an edit is refused. */
export const IN_FLIGHT_STATES: readonly PostState[] = ['claimed', 'ambiguous', 'cancelling'];

export const FAIL_REASONS = [
  'rejected',
  'expired',
  'invalid-account',
  'account-paused',
  'app-paused',
  'unresolved',
  'thread-broken',
  'media-unavailable',
] as const;
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
  // Where an attempt's result leads once a cancel came in (whileCancelling),
  // and reconciliation's decisions about a cancelling key. Staying
  // 'cancelling' is the move of an ambiguous result: still in doubt.
  cancelling: ['sent', 'failed', 'cancelling', 'cancelled'],
  sent: [],
  failed: [],
  cancelled: [],
});

/**
 * Where a result leads instead when the key was cancelled while its attempt
 * was in flight: what went out is reported as sent; what did not ends
 * cancelled (never retried); what is in doubt stays cancelling for
 * reconciliation. Only "could not find out" stays a failure.
 */
export function whileCancelling(to: 'sent' | 'failed' | 'ambiguous' | 'queued' | 'cancelled', reason?: FailReason): PostState {
  switch (to) {
    case 'sent':
      return 'sent';
    case 'ambiguous':
      return 'cancelling';
    case 'failed':
      return reason === 'unresolved' ? 'failed' : 'cancelled';
    case 'queued':
    case 'cancelled':
      return 'cancelled';
  }
}

export function canSettle(from: PostState, to: PostState): boolean {
  return SETTLE_MOVES[from].includes(to);
}

export function isFinal(state: PostState): boolean {
  return FINAL_STATES.includes(state);
}

export function isInFlight(state: PostState): boolean {
  return IN_FLIGHT_STATES.includes(state);
}

/**
 * What a re-enqueue of a known key (same payload) answers: its outcome when
 * it has one, else that it is already on its way. It never starts again.
 */
export type KnownKeyAnswer =
  | { readonly status: 'sent'; readonly tweetId: string }
  | { readonly status: 'failed'; readonly reason: string; readonly detail?: string }
  | { readonly status: 'cancelled' }
  | { readonly status: 'duplicate'; readonly state: PostState };

export function answerForKnown(r: Pick<PostRecord, 'state' | 'tweetId' | 'reason' | 'detail'>): KnownKeyAnswer {
  switch (r.state) {
    case 'sent':
      return { status: 'sent', tweetId: r.tweetId ?? '' };
    case 'failed':
      return { status: 'failed', reason: r.reason ?? 'unknown', ...(r.detail && { detail: r.detail }) };
    case 'cancelled':
      return { status: 'cancelled' };
    default:
      return { status: 'duplicate', state: r.state };
  }
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
  /** Set by a cancel: who asked, when and why (the state says whether it is done). */
  readonly cancel?: CancelRequest;
  /** The times as the producer gave them (null: defaulted), part of the fingerprint. */
  readonly given?: GivenTimes;
  readonly createdAt: number;
  readonly updatedAt: number;
}

export interface CancelRequest {
  readonly at: number;
  readonly by?: string;
  readonly reason?: string;
}

export interface AuditEvent {
  readonly at: number;
  readonly event: string;
  readonly attempt?: number;
  readonly [field: string]: unknown;
}
