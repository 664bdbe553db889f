import type { ThreadPart } from './request.js';
import type { FailReason } from './state.js';

/** A thread's part went out: the key moves on to the next part, which replies to it. */
export interface NextPart {
  /** The part just sent, now live under this id. */
  readonly sentId: string;
  readonly partIndex: number;
  readonly text: string;
  readonly inReplyToTweetId: string;
  readonly parts: readonly ThreadPart[];
}
import type { XOutcome } from './outcome.js';

/** Where an attempt (or a reconciliation) leaves a key. */
export type Transition =
  /** `partId`: for a thread, the last part's id (`tweetId` is the thread's first post). */
  | { readonly to: 'sent'; readonly tweetId: string; readonly partId?: string; readonly parts?: readonly ThreadPart[] }
  | { readonly to: 'ambiguous'; readonly cause: string; readonly recheckAt: number }
  | { readonly to: 'queued'; readonly cause: string; readonly retryAt: number; readonly jobId?: string; readonly next?: NextPart }
  | { readonly to: 'failed'; readonly reason: FailReason; readonly detail: string; readonly parts?: readonly ThreadPart[] }
  /** Only for a cancelling key: its attempt in doubt did not go out. */
  | { readonly to: 'cancelled'; readonly detail: string };

export interface RetryPolicy {
  /** First backoff after a not-sent attempt; doubles each attempt. */
  readonly baseMs: number;
  readonly maxMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = Object.freeze({ baseMs: 1_000, maxMs: 60_000 });

export interface AttemptContext {
  readonly now: number;
  readonly attempt: number;
  readonly deadline: number;
  readonly settleWindowMs: number;
  readonly retry: RetryPolicy;
}

export function backoffMs(attempt: number, retry: RetryPolicy): number {
  return Math.min(retry.maxMs, retry.baseMs * 2 ** Math.max(0, attempt - 1));
}

/**
 * Where an attempt leaves its key, given what X did. A key gives up before
 * its deadline only on a definitive rejection; a not-sent attempt retries
 * while the deadline allows one more, an ambiguous one waits for
 * reconciliation (the settle window counts from the end of the attempt).
 */
export function decideAfterAttempt(outcome: XOutcome, ctx: AttemptContext): Transition {
  switch (outcome.kind) {
    case 'sent':
      return { to: 'sent', tweetId: outcome.xId };
    case 'ambiguous':
      return { to: 'ambiguous', cause: outcome.cause, recheckAt: ctx.now + ctx.settleWindowMs };
    case 'rejected':
      // X refused the app, not this post: nothing was executed. The key waits
      // (the claim holds it while the app is paused) and goes out once an
      // operator resumes the app, or fails as app-paused at its deadline.
      if (outcome.scope === 'app') {
        const retryAt = Math.min(ctx.now + ctx.retry.maxMs, ctx.deadline - 1);
        if (retryAt > ctx.now) return { to: 'queued', cause: outcome.cause, retryAt };
        return { to: 'failed', reason: 'app-paused', detail: outcome.cause };
      }
      return {
        to: 'failed',
        reason: outcome.cause.startsWith('invalid-account')
          ? 'invalid-account'
          : outcome.cause.startsWith('media-unavailable')
            ? 'media-unavailable'
            : 'rejected',
        detail: outcome.cause,
      };
    case 'not-sent': {
      // A rate-limit reset is a hard floor; a plain backoff is squeezed so
      // that one more attempt still fits before the deadline.
      const retryAt = outcome.retryAt ?? Math.min(ctx.now + backoffMs(ctx.attempt, ctx.retry), ctx.deadline - 1);
      if (retryAt >= ctx.deadline || retryAt < ctx.now) {
        return {
          to: 'failed',
          reason: 'expired',
          detail: `attempt ${ctx.attempt} was not sent (${outcome.cause}) and no retry fits before the deadline`,
        };
      }
      return { to: 'queued', cause: outcome.cause, retryAt };
    }
  }
}
