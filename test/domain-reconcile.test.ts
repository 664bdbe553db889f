/**
 * The reconciliation decisions and the due-key partition, as pure functions
 * (domain/reconcile.ts): no Redis, no X.
 */
import { describe, expect, it } from 'vitest';
import { attemptEnd, decideReconcile, dueAction, type Evidence, inDoubt } from '../src/domain/reconcile.js';
import type { PostRecord, PostState } from '../src/domain/state.js';

const now = 1_900_000_000_000;
const settings = { settleWindowMs: 5_000, unresolvedGraceMs: 60_000 };
const record = (state: PostState, extra: Partial<PostRecord> = {}): PostRecord => ({
  keyId: 'k.a.b',
  slotId: 'a',
  postId: 'b',
  accountId: 'acme',
  kind: 'post',
  text: 't',
  scheduledAt: now - 60_000,
  deadline: now + 600_000,
  fingerprint: 'f',
  state,
  attempt: 1,
  jobId: 'k.a.b',
  createdAt: now - 60_000,
  updatedAt: now - 10_000,
  attemptEndedAt: now - 10_000,
  ...extra,
});
const notFound: Evidence = { kind: 'not-found', scanned: 3, from: now - 20_000, to: now };

describe('dueAction: what a pass does with a due key', () => {
  it.each([
    ['sent', { kind: 'drop' }],
    ['failed', { kind: 'drop' }],
    ['cancelled', { kind: 'drop' }],
    ['queued', { kind: 'check-job' }],
    ['ambiguous', { kind: 'look-up' }],
  ] as const)('%s → %j', (state, action) => {
    expect(dueAction(record(state), now)).toEqual(action);
  });

  it('a missing record is dropped', () => expect(dueAction(undefined, now)).toEqual({ kind: 'drop' }));

  it('a claimed key (or one cancelled while claimed) waits for its lease, then is looked up', () => {
    for (const state of ['claimed', 'cancelling'] as const) {
      expect(dueAction(record(state, { leaseUntil: now + 1_000 }), now)).toEqual({ kind: 'later', at: now + 1_000 });
      expect(dueAction(record(state, { leaseUntil: now - 1 }), now)).toEqual({ kind: 'look-up' });
    }
    // Cancelled after its ambiguous result: no lease, always in doubt.
    expect(dueAction(record('cancelling'), now)).toEqual({ kind: 'look-up' });
  });

  it('attemptEnd: the lease expiry while leased, else the recorded end', () => {
    expect(attemptEnd(record('claimed', { leaseUntil: now - 5 }))).toBe(now - 5);
    expect(attemptEnd(record('cancelling', { leaseUntil: now - 5 }))).toBe(now - 5);
    expect(attemptEnd(record('cancelling'))).toBe(now - 10_000);
    expect(inDoubt(record('queued'), now)).toBe(false);
  });
});

describe('decideReconcile', () => {
  it('found → sent, whatever the state in doubt', () => {
    for (const state of ['ambiguous', 'cancelling'] as const) {
      expect(decideReconcile(record(state), { kind: 'found', id: '42' }, now, settings)).toEqual({ to: 'sent', tweetId: '42' });
    }
  });

  it('not found inside the settle window → defer; after it → released, or expired past the deadline', () => {
    const fresh = record('ambiguous', { attemptEndedAt: now - 1_000 });
    expect(decideReconcile(fresh, notFound, now, settings)).toMatchObject({ to: 'defer', at: now + 4_000 });
    expect(decideReconcile(record('ambiguous'), notFound, now, settings)).toMatchObject({ to: 'queued', retryAt: now });
    expect(decideReconcile(record('ambiguous', { deadline: now - 1 }), notFound, now, settings)).toMatchObject({ to: 'failed', reason: 'expired' });
  });

  it('a cancelling key not found after the window ends cancelled, never released', () => {
    expect(decideReconcile(record('cancelling'), notFound, now, settings)).toMatchObject({ to: 'cancelled' });
    expect(decideReconcile(record('cancelling', { attemptEndedAt: now - 1_000 }), notFound, now, settings)).toMatchObject({ to: 'defer' });
  });

  it('failing lookups defer until the deadline plus grace, then fail as unresolved', () => {
    const failed: Evidence = { kind: 'lookup-failed', cause: 'http-503' };
    expect(decideReconcile(record('ambiguous'), failed, now, settings)).toMatchObject({ to: 'defer' });
    expect(decideReconcile(record('ambiguous', { deadline: now - 60_000 }), failed, now, settings)).toMatchObject({ to: 'failed', reason: 'unresolved' });
  });

  it('an uncertain candidate is never re-attempted', () => {
    const uncertain: Evidence = { kind: 'uncertain', id: '7', why: 'text differs' };
    expect(decideReconcile(record('ambiguous'), uncertain, now, settings)).toMatchObject({ to: 'defer' });
    expect(decideReconcile(record('ambiguous', { deadline: now - 1, attemptEndedAt: now - 10_000 }), uncertain, now, settings)).toMatchObject({
      to: 'failed',
      reason: 'unresolved',
    });
  });
});
