/**
 * The state machine lives in domain/state.ts; the settle script's allowed
 * moves are generated from it. Every (from, to) pair is tried against the
 * real script, so the table and the Lua cannot drift apart. A cancelling
 * key takes the move whileCancelling gives (the script picks that variant).
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { Transition } from '../src/domain/decide.js';
import { canSettle, dueAt, FINAL_STATES, isFinal, POST_STATES, type PostState, SETTLE_MOVES, whileCancelling } from '../src/domain/state.js';
import { openLedger } from '../src/app.js';
import { dropPrefix, newRedis, uniquePrefix } from './harness.js';

const redis = newRedis();
const prefix = uniquePrefix('state');
const ledger = openLedger(redis, { prefix, retentionMs: 60_000 });
afterAll(async () => {
  await dropPrefix(redis, prefix);
  await redis.quit();
});

const now = 1_900_000_000_000;
const transitionTo = (to: PostState): Transition | undefined => {
  switch (to) {
    case 'sent':
      return { to, tweetId: '1234' };
    case 'failed':
      return { to, reason: 'rejected', detail: 'x' };
    case 'ambiguous':
      return { to, cause: 'timeout', recheckAt: now + 1 };
    case 'queued':
      return { to, cause: 'econnrefused', retryAt: now + 1 };
    case 'cancelled':
      return { to, detail: 'not on X' };
    default:
      return undefined;
  }
};

describe('the state table', () => {
  it('final states have no way out, and every listed move is between known states', () => {
    for (const s of FINAL_STATES) expect(SETTLE_MOVES[s]).toEqual([]);
    for (const s of POST_STATES) for (const to of SETTLE_MOVES[s]) expect(POST_STATES).toContain(to);
    expect(POST_STATES.filter(isFinal)).toEqual(['sent', 'failed', 'cancelled']);
  });

  it('dueAt: the schedule, or a later backoff', () => {
    expect(dueAt({ scheduledAt: 10 })).toBe(10);
    expect(dueAt({ scheduledAt: 10, notBefore: 25 })).toBe(25);
    expect(dueAt({ scheduledAt: 10, notBefore: 5 })).toBe(10);
  });

  const pairs = POST_STATES.flatMap((from) => POST_STATES.filter((to) => transitionTo(to)).map((to) => [from, to] as const));
  it.each(pairs)('settle %s → %s is accepted by the script exactly when the table allows it', async (from, to) => {
    const keyId = `k.${from}.${to}`;
    await redis.set(
      ledger.keys.record(keyId),
      JSON.stringify({
        slotId: from,
        postId: to,
        accountId: 'a',
        kind: 'post',
        text: 't',
        scheduledAt: now - 1_000,
        deadline: now + 60_000,
        fingerprint: 'f',
        state: from,
        attempt: 3,
        jobId: keyId,
        createdAt: now - 1_000,
        updatedAt: now - 1_000,
        trail: [],
      }),
    );
    const t = transitionTo(to)!;
    const target = from === 'cancelling' && to !== 'cancelled' ? whileCancelling(t.to, t.to === 'failed' ? t.reason : undefined) : to;
    const result = await ledger.settle(keyId, 3, t, now);
    expect(result.verdict).toBe(canSettle(from, target) ? 'ok' : 'stale');
    expect((await ledger.get(keyId))?.state).toBe(canSettle(from, target) ? target : from);
    // Fencing: another attempt's result is refused whatever the move.
    if (canSettle(from, target)) {
      await redis.set(ledger.keys.record(keyId), JSON.stringify({ ...(JSON.parse((await redis.get(ledger.keys.record(keyId)))!) as object), state: from }));
      expect((await ledger.settle(keyId, 2, transitionTo(to)!, now)).verdict).toBe('stale');
    }
  });

  it('whileCancelling: what went out is sent, what did not is cancelled, what is in doubt stays cancelling', () => {
    expect(whileCancelling('sent')).toBe('sent');
    expect(whileCancelling('ambiguous')).toBe('cancelling');
    expect(whileCancelling('queued')).toBe('cancelled');
    expect(whileCancelling('failed', 'rejected')).toBe('cancelled');
    expect(whileCancelling('failed', 'unresolved')).toBe('failed');
  });
});
