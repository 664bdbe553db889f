/**
 * Webhook decisions, as plain functions: which event types exist (for the
 * config's filter), how long to wait before the next try, when an event is
 * given up on (dead-lettered), and what counts as delivered.
 */

/** Every outcome event type the ledger's scripts write (src/ledger/scripts.ts, ledger.ts outcomeEventOf). */
export const EVENT_TYPES = [
  'queued',
  'sent',
  'part-sent',
  'failed',
  'unresolved',
  'ambiguous',
  'released',
  'cancelling',
  'cancelled',
  'edited',
  'rescheduled',
  'account-paused',
  'account-resumed',
  'rate-limited',
  'app-paused',
  'app-resumed',
  'app-rate-limited',
] as const;

export type EventType = (typeof EVENT_TYPES)[number];

export interface RetryPolicy {
  /** Tries in all (the first included); past them the event is dead-lettered. */
  readonly maxTries: number;
  /** Wait after the first failed try; doubled after each further one. */
  readonly baseMs: number;
  /** Longest wait between two tries. */
  readonly maxMs: number;
}

/**
 * The wait after the `tries`-th failed try: base × 2^(tries−1), capped, then
 * jittered down to between half and all of it, so events that failed
 * together (a receiver back from an outage) do not all come back together.
 */
export function backoffMs(tries: number, policy: Pick<RetryPolicy, 'baseMs' | 'maxMs'>, random: () => number = Math.random): number {
  const full = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, Math.min(tries - 1, 52)));
  return Math.round(full / 2 + (random() * full) / 2);
}

export type AfterFailure = { readonly verdict: 'retry'; readonly at: number } | { readonly verdict: 'dead' };

/** After a failed try (the `tries`-th): try again later, or give up into the dead-letter list. */
export function afterFailure(tries: number, policy: RetryPolicy, now: number, random: () => number = Math.random): AfterFailure {
  if (tries >= policy.maxTries) return { verdict: 'dead' };
  return { verdict: 'retry', at: now + backoffMs(tries, policy, random) };
}

/** A receiver took the event when it answered 2xx; anything else (a redirect too: it is not followed) is a failed try. */
export const isDelivered = (status: number): boolean => status >= 200 && status < 300;
