/**
 * X as it really behaves, not as a kind fake would: gzip answers cut
 * mid-stream, hung lookups, reconciliation passes that must end on time.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { keyId } from '../src/domain/key.js';
import { classifyXError, XDeadlineError } from '../src/domain/outcome.js';
import { post, type Stack, startStack, waitUntil } from './harness.js';

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

function testClock() {
  let offset = 0;
  return { now: () => Date.now() + offset, advance: (ms: number) => { offset += ms; } };
}

const SETTLE = 5_000;
const TIMEOUT = 400;
/** The adapter's hard deadline for TIMEOUT (see deadlineFor). */
const DEADLINE = 500;
const id = (slotId: string) => keyId({ slotId, postId: 'p1' });

async function ambiguousKey(s: Stack, slotId: string, text: string, clock: ReturnType<typeof testClock>) {
  s.fake.injectNext('commit-then-reset', { text });
  await s.producer.enqueue(post(slotId, text));
  await waitUntil(async () => (await s.ledger.get(id(slotId)))?.state === 'ambiguous', `${slotId} ambiguous`);
  clock.advance(SETTLE + 1);
}

describe('a cut gzip body never holds a worker, a lookup or a pass', () => {
  it('a compressed 201 cut mid-body: the create ends at its deadline as ambiguous and frees its slot', async () => {
    stack = await startStack({ timeoutMs: TIMEOUT, concurrency: 1 });
    const s = stack;
    s.fake.injectNext('truncated-201', { text: 'cut' });
    const err = await s.x.createPost('acme', { text: 'cut' }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(XDeadlineError);
    expect(classifyXError(err, Date.now())).toEqual({ kind: 'ambiguous', cause: `deadline-${DEADLINE}ms` });
    // The worker (concurrency 1) gets past a cut 201 and publishes the next post.
    s.fake.injectNext('truncated-201', { text: 'first' });
    await s.producer.enqueue(post('a', 'first'));
    await s.producer.enqueue(post('b', 'second'));
    await waitUntil(async () => (await s.ledger.get(id('b')))?.state === 'sent', 'b sent after a cut');
    const first = await s.ledger.get(id('a'));
    expect(first).toMatchObject({ state: 'ambiguous', detail: `deadline-${DEADLINE}ms` });
    const answer = (await s.ledger.auditTrail(id('a'))).find((e) => e.event === 'x-answer');
    expect(answer!.latencyMs as number).toBeLessThan(DEADLINE + 400);
    expect(s.fake.created().map((c) => c.text).sort()).toEqual(['cut', 'first', 'second']);
  });

  it.each(['hang', 'cut-body'] as const)('a %s timeline lookup fails within the deadline; the next pass resolves the key', async (fault) => {
    const clock = testClock();
    stack = await startStack({ clock: clock.now, timeoutMs: TIMEOUT, settleWindowMs: SETTLE });
    const s = stack;
    await ambiguousKey(s, 'amb', `lookup ${fault}`, clock);
    s.fake.injectNextLookup(fault);
    const t0 = performance.now();
    const first = await s.reconcile();
    expect(performance.now() - t0).toBeLessThan(DEADLINE + 1_000);
    expect(first.outcomes).toMatchObject({ sent: 0, released: 0, deferred: 1 });
    const trail = await s.ledger.auditTrail(id('amb'));
    expect(trail.filter((e) => e.event === 'reconciled')).toHaveLength(0);
    expect(await s.ledger.get(id('amb'))).toMatchObject({ state: 'ambiguous', attempt: 1 });

    const second = await s.reconcile();
    expect(second.outcomes).toMatchObject({ sent: 1 });
    const live = s.fake.created().filter((c) => c.text === `lookup ${fault}`);
    expect(live).toHaveLength(1);
    expect(await s.ledger.get(id('amb'))).toMatchObject({ state: 'sent', tweetId: live[0]!.id });
  });

  it('a pass that runs out of its budget stops, keeps what it decided, and leaves the rest due for the next pass', async () => {
    const clock = testClock();
    stack = await startStack({ clock: clock.now, timeoutMs: TIMEOUT, settleWindowMs: SETTLE, extraAccounts: 2 });
    const s = stack;
    for (const [slot, account] of [['x0', 'acc-0'], ['x1', 'acc-1']] as const) {
      s.fake.injectNext('commit-then-reset', { text: `budget ${slot}` });
      await s.producer.enqueue(post(slot, `budget ${slot}`, { accountId: account }));
    }
    await waitUntil(async () => (await s.ledger.getMany([id('x0'), id('x1')])).every((r) => r?.state === 'ambiguous'), 'both ambiguous');
    clock.advance(SETTLE + 1);
    // One lookup at a time; the first one hangs until its deadline, past the budget.
    s.fake.injectNextLookup('hang');
    const first = await s.reconcile({ lookupConcurrency: 1, passBudgetMs: 200 });
    expect(first).toMatchObject({ ran: true, examined: 2, left: 1, lookups: 1 });
    expect(first.outcomes).toMatchObject({ deferred: 1, sent: 0 });
    // The key never looked at is still due now; the next pass takes both.
    const second = await s.reconcile({ lookupConcurrency: 1 });
    expect(second).toMatchObject({ examined: 2, left: 0 });
    expect(second.outcomes).toMatchObject({ sent: 2 });
    expect(s.fake.created()).toHaveLength(2);
  });
});
