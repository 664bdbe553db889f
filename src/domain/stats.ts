import type { Transition } from './decide.js';
import type { XOutcome } from './outcome.js';

/**
 * Which cluster-wide counters a transition bumps. They are written by the
 * same Lua script as the transition, so /metrics costs no extra round trip
 * and never counts a refused (stale) result.
 */
export const LATENCY_BUCKETS_MS = [50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000] as const;

export function latencyBucket(ms: number): string {
  const le = LATENCY_BUCKETS_MS.find((b) => ms <= b);
  return `latency_bucket:${le ?? '+Inf'}`;
}

function finalFields(t: Transition): string[] {
  if (t.to === 'sent') return ['final:sent'];
  if (t.to === 'failed') return [`final:failed:${t.reason}`];
  if (t.to === 'cancelled') return ['final:cancelled'];
  return [];
}

/** Counters for a worker's attempt: its X outcome and latency, and the final state if any. */
export function attemptStats(outcome: XOutcome['kind'], latencyMs: number, t: Transition): { fields: string[]; latencyMs: number } {
  return { fields: [`attempts:${outcome}`, latencyBucket(latencyMs), 'latency_count', ...finalFields(t)], latencyMs };
}

/** Counters for a reconciliation decision about a key in doubt. */
export function reconcileStats(t: Transition): { fields: string[] } {
  const resolved = t.to === 'sent' ? 'sent' : t.to === 'queued' ? 'released' : t.to === 'failed' ? t.reason : t.to === 'cancelled' ? 'cancelled' : 'deferred';
  return { fields: [`resolved:${resolved}`, ...finalFields(t)] };
}

/** Counters for a claim given back because it was not durable (no X call, no latency). */
export function undurableStats(t: Transition): { fields: string[]; latencyMs: number } {
  return { fields: ['claims:not-durable', ...finalFields(t)], latencyMs: 0 };
}
