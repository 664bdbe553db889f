import { isFinal, type PostRecord } from './state.js';
import type { Transition } from './decide.js';

/** What one reconciliation pass learned about a key from X. */
export type Evidence =
  | { readonly kind: 'found'; readonly id: string; readonly createdAt?: string }
  | { readonly kind: 'not-found'; readonly scanned: number; readonly from: number; readonly to: number }
  | { readonly kind: 'lookup-failed'; readonly cause: string; readonly retryAt?: number }
  /** X shows a candidate that may be the post but cannot be proven to be (see domain/match.ts). */
  | { readonly kind: 'uncertain'; readonly id: string; readonly why: string; readonly createdAt?: string };

export interface ReconcileSettings {
  /** Wait after an attempt ended before "not on X" counts as proof. */
  readonly settleWindowMs: number;
  /** How long past the deadline failing lookups may go on before the key fails as unresolved. */
  readonly unresolvedGraceMs: number;
}

export type ReconcileDecision = Transition | { readonly to: 'defer'; readonly at: number; readonly why: string };

/**
 * Whether a worker still holds the key's attempt: claimed, or cancelling
 * while the attempt was claimed (a settle clears the lease).
 */
function leased(r: PostRecord): boolean {
  return r.state === 'claimed' || (r.state === 'cancelling' && r.leaseUntil !== undefined);
}

/** When the attempt in doubt ended: its recorded end, or the lease expiry of a dead worker. */
export function attemptEnd(r: PostRecord): number {
  return leased(r) ? (r.leaseUntil ?? r.updatedAt) : (r.attemptEndedAt ?? r.updatedAt);
}

/** A leased key is in doubt only once its lease ran out; an ambiguous one (or cancelling after its result) always. */
export function inDoubt(r: PostRecord, now: number): boolean {
  if (leased(r)) return (r.leaseUntil ?? 0) <= now;
  return r.state === 'ambiguous' || r.state === 'cancelling';
}

/** What a reconciliation pass does with a key whose due time came. */
export type DueAction =
  /** Settled or gone: drop it from the due index. */
  | { readonly kind: 'drop' }
  /** Queued: check that its BullMQ job still exists. */
  | { readonly kind: 'check-job' }
  /** In doubt: look it up on X. */
  | { readonly kind: 'look-up' }
  /** A worker still holds it: look again when its lease ends. */
  | { readonly kind: 'later'; readonly at: number };

/** The due-key partition of a pass. */
export function dueAction(r: PostRecord | undefined, now: number): DueAction {
  if (!r || isFinal(r.state)) return { kind: 'drop' };
  if (r.state === 'queued') return { kind: 'check-job' };
  if (inDoubt(r, now)) return { kind: 'look-up' };
  return { kind: 'later', at: r.leaseUntil ?? now };
}

const iso = (ms: number) => new Date(ms).toISOString();

export function decideReconcile(r: PostRecord, evidence: Evidence, now: number, s: ReconcileSettings): ReconcileDecision {
  switch (evidence.kind) {
    case 'found':
      return { to: 'sent', tweetId: evidence.id };
    case 'not-found': {
      const trustAt = attemptEnd(r) + s.settleWindowMs;
      if (now < trustAt) return { to: 'defer', at: trustAt, why: 'not on X yet, inside the settle window' };
      const proof = `attempt ${r.attempt} not found in ${evidence.scanned} item(s) between ${iso(evidence.from)} and ${iso(evidence.to)}`;
      // Cancelled while in flight: nothing went out, and no new attempt starts.
      if (r.state === 'cancelling') return { to: 'cancelled', detail: `${proof}; cancelled while it was in flight` };
      if (now < r.deadline) return { to: 'queued', cause: proof, retryAt: now };
      return { to: 'failed', reason: 'expired', detail: `${proof}; the deadline ${iso(r.deadline)} leaves no time for another attempt` };
    }
    case 'lookup-failed': {
      const giveUpAt = r.deadline + s.unresolvedGraceMs;
      if (now >= giveUpAt) {
        return {
          to: 'failed',
          reason: 'unresolved',
          detail:
            `could not check X whether attempt ${r.attempt} went out (last lookup: ${evidence.cause}); ` +
            `check account ${r.accountId}'s timeline by hand, its credentials and X's status`,
        };
      }
      return { to: 'defer', at: Math.min(evidence.retryAt ?? now, giveUpAt), why: `lookup failed: ${evidence.cause}` };
    }
    case 'uncertain': {
      // Never re-attempted: if the candidate is ours, a new attempt is a
      // duplicate. Looked at again (an edit or a late note_tweet may still
      // settle it) until the deadline, or the settle window if that ends
      // later; then the operator decides.
      const giveUpAt = Math.max(r.deadline, attemptEnd(r) + s.settleWindowMs);
      if (now >= giveUpAt) {
        return {
          to: 'failed',
          reason: 'unresolved',
          detail:
            `X shows post ${evidence.id}, which may be attempt ${r.attempt} but cannot be proven to be (${evidence.why}); ` +
            `not re-attempted: check post ${evidence.id} on account ${r.accountId}'s timeline and publish again by hand if it is not this one`,
        };
      }
      return { to: 'defer', at: Math.min(now + s.settleWindowMs, giveUpAt), why: `uncertain candidate ${evidence.id}: ${evidence.why}` };
    }
  }
}
