/**
 * X as it really behaves, not as a kind fake would: gzip answers cut
 * mid-stream, hung lookups, reconciliation passes that must end on time.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { keyId } from '../src/domain/key.js';
import { XDeadlineError } from '../src/domain/outcome.js';
import { classifyXError } from '../src/x/classify.js';
import { post, type Stack, startStack, testClock, waitUntil } from './harness.js';

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

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
    const err = await s.x.createPost('acme', { text: 'cut' }).then(
      () => undefined,
      (e: unknown) => e,
    );
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
    expect(
      s.fake
        .created()
        .map((c) => c.text)
        .sort(),
    ).toEqual(['cut', 'first', 'second']);
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
    for (const [slot, account] of [
      ['x0', 'acc-0'],
      ['x1', 'acc-1'],
    ] as const) {
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

const creates = (s: Stack) => s.fake.requests().filter((r) => r.method === 'POST' && r.path !== '/2/oauth2/token');
const stateOf = async (s: Stack, slotId: string) => (await s.ledger.get(id(slotId)))?.state;
const allFinal = (s: Stack, slots: string[]) =>
  waitUntil(
    async () => {
      const rs = await s.ledger.getMany(slots.map(id));
      return rs.every((r) => r?.state === 'sent' || r?.state === 'failed') ? rs : undefined;
    },
    `${slots.join(',')} final`,
  );

describe('a 403 about one post fails that post only; about the account or the app, it holds them', () => {
  it("a restricted reply, a reply to a deleted post and a refused DM fail with X's reason; every other key of the account is sent; nothing is paused", async () => {
    stack = await startStack({ fake: { replyRestriction: true, refusesDms: ['2001'] } });
    const s = stack;
    const theirs = await s.x.createPost('globex', { text: 'globex says hello' });
    const mentioned = await s.x.createPost('globex', { text: 'hey @acme, what do you think?' });
    const gone = await s.x.createPost('globex', { text: 'soon deleted' });
    s.fake.deletePost(gone.id);
    await s.producer.enqueueMany([
      post('restricted', 'nice post!', { kind: 'reply', inReplyToTweetId: theirs.id }),
      post('allowed', 'thanks for the mention', { kind: 'reply', inReplyToTweetId: mentioned.id }),
      post('deleted', 'reply to nothing', { kind: 'reply', inReplyToTweetId: gone.id }),
      post('dm', 'hello fan', { kind: 'dm', recipientId: '2001' }),
      post('p1', 'a post'),
      post('p2', 'another post'),
    ]);
    const slots = ['restricted', 'allowed', 'deleted', 'dm', 'p1', 'p2'];
    const rs = await allFinal(s, slots);
    const by = Object.fromEntries(rs.map((r) => [r!.slotId, r!]));
    expect(by.restricted).toMatchObject({ state: 'failed', reason: 'rejected', detail: expect.stringContaining('not been mentioned or otherwise engaged') });
    expect(by.deleted).toMatchObject({ state: 'failed', reason: 'rejected', detail: expect.stringContaining('deleted or not visible') });
    expect(by.dm).toMatchObject({ state: 'failed', reason: 'rejected', detail: expect.stringContaining('cannot send messages') });
    for (const ok of ['allowed', 'p1', 'p2']) expect(by[ok]).toMatchObject({ state: 'sent' });
    expect((await s.ledger.accountStatus(['acme'])).size).toBe(0);
    expect(await s.ledger.appStatus()).toEqual({});
  });

  it('a suspended account is paused; the other accounts keep publishing', async () => {
    stack = await startStack();
    const s = stack;
    s.fake.suspend('1001');
    await s.producer.enqueueMany([post('a1', 'acme one'), post('g1', 'globex one', { accountId: 'globex' })]);
    await allFinal(s, ['a1', 'g1']);
    expect(await s.ledger.get(id('a1'))).toMatchObject({ state: 'failed', detail: expect.stringContaining('suspended') });
    expect(await stateOf(s, 'g1')).toBe('sent');
    expect((await s.ledger.accountStatus(['acme', 'globex'])).get('acme')?.paused).toContain('suspended');
    expect((await s.ledger.accountStatus(['globex'])).size).toBe(0);
  });

  it('X refusing the app pauses every account without failing their posts; after resume they go out, once', async () => {
    stack = await startStack({ retry: { baseMs: 100, maxMs: 200 } });
    const s = stack;
    s.fake.forbidApp();
    await s.producer.enqueue(post('first', 'the first post'));
    await waitUntil(async () => (await s.ledger.appStatus()).paused, 'app paused');
    expect((await s.ledger.appStatus()).paused).toContain('client-forbidden');
    await s.producer.enqueueMany([post('second', 'the second post'), post('third', 'globex post', { accountId: 'globex' })]);
    const callsWhilePaused = creates(s).length;
    expect(callsWhilePaused).toBe(1);
    // The held keys are still queued, claimed by nobody, and X is not called again.
    await waitUntil(async () => (await s.ledger.stats())['throttled']! >= 2, 'held while paused');
    expect(await Promise.all(['first', 'second', 'third'].map((k) => stateOf(s, k)))).toEqual(['queued', 'queued', 'queued']);
    expect(creates(s)).toHaveLength(1);
    expect((await s.ledger.accountStatus(['acme', 'globex'])).size).toBe(0);

    s.fake.allowApp();
    expect(await s.ledger.resumeApp()).toBe(true);
    // Held jobs look again once their wait is over; make that now.
    for (const slot of ['first', 'second', 'third']) await s.producer.queue.getJob(id(slot)).then((j) => j?.promote().catch(() => undefined));
    await allFinal(s, ['first', 'second', 'third']);
    expect(
      s.fake
        .created()
        .map((c) => c.text)
        .sort(),
    ).toEqual(['globex post', 'the first post', 'the second post']);
  });
});

describe("caps: no create call before the cap's reset", () => {
  it('a 24-hour user cap holds that account until the next day, not for 15 minutes; other accounts go on', async () => {
    const clock = testClock();
    stack = await startStack({ clock: clock.now, fake: { userDailyCap: 2 } });
    const s = stack;
    const far = { deadline: new Date(clock.now() + 3 * 86_400_000).toISOString() };
    await s.producer.enqueueMany([post('c1', 'cap one', far), post('c2', 'cap two', far)]);
    await allFinal(s, ['c1', 'c2']);
    // The second create answered 0 left in the 24-hour cap: the third waits without calling X.
    const hold = (await s.ledger.accountStatus(['acme'])).get('acme')?.blockedUntil;
    const nextDay = (Math.floor(clock.now() / 86_400_000) + 1) * 86_400_000;
    expect(hold).toBe(nextDay);
    await s.producer.enqueueMany([post('c3', 'cap three', far), post('g1', 'globex goes on', { accountId: 'globex' })]);
    await waitUntil(async () => (await stateOf(s, 'g1')) === 'sent', 'globex sent');
    await waitUntil(async () => (await s.ledger.stats())['throttled']! >= 1, 'c3 held');
    expect(creates(s).filter((r) => r.userId === '1001')).toHaveLength(2);
    expect(await stateOf(s, 'c3')).toBe('queued');
    // At the reset it goes out.
    clock.advance(nextDay - clock.now() + 1_000);
    await s.producer.queue.getJob(id('c3')).then((j) => j?.promote().catch(() => undefined));
    await waitUntil(async () => (await stateOf(s, 'c3')) === 'sent', 'c3 sent after the reset');
    expect(creates(s).filter((r) => r.userId === '1001')).toHaveLength(3);
  });

  it('a monthly usage cap holds every account until the month ends; a key whose deadline comes first expires without a call', async () => {
    stack = await startStack({ fake: { monthlyCap: 1 } });
    const s = stack;
    await s.producer.enqueue(post('m1', 'month one'));
    await waitUntil(async () => (await stateOf(s, 'm1')) === 'sent', 'm1 sent');
    await s.producer.enqueue(post('m2', 'month two'));
    const m2 = await waitUntil(async () => {
      const r = await s.ledger.get(id('m2'));
      return r?.state === 'failed' ? r : undefined;
    }, 'm2 expired');
    expect(m2).toMatchObject({ reason: 'expired', detail: expect.stringContaining('monthly usage cap') });
    expect((await s.ledger.appStatus()).blockedUntil).toBe(Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth() + 1, 1));
    const callsAtCap = creates(s).length;
    await s.producer.enqueue(post('g2', 'globex in the same month', { accountId: 'globex' }));
    const g2 = await waitUntil(async () => {
      const r = await s.ledger.get(id('g2'));
      return r?.state === 'failed' || r?.state === 'sent' ? r : undefined;
    }, 'g2 final');
    expect(g2).toMatchObject({ state: 'failed', reason: 'expired' });
    expect(creates(s)).toHaveLength(callsAtCap);
  });
});

describe('field names move (spec 2.159 → 2.167)', () => {
  it('X refusing tweet.fields: the adapter switches to post.fields once, remembers it, and reconciliation still finds replies', async () => {
    const clock = testClock();
    stack = await startStack({ clock: clock.now, timeoutMs: TIMEOUT, settleWindowMs: SETTLE, fake: { fieldNames: '2.167' } });
    const s = stack;
    const target = await s.x.createPost('acme', { text: 'the thread starts here' });
    await ambiguousKey(s, 'amb1', 'first ambiguous', clock);
    s.fake.injectNext('commit-then-reset', { text: 'a reply in doubt' });
    await s.producer.enqueue(post('amb2', 'a reply in doubt', { kind: 'reply', inReplyToTweetId: target.id }));
    await waitUntil(async () => (await s.ledger.get(id('amb2')))?.state === 'ambiguous', 'amb2 ambiguous');
    clock.advance(SETTLE + 1);
    const timelineAnswers = () =>
      s.fake
        .requests()
        .filter((r) => r.path === '/2/users/1001/tweets')
        .map((r) => r.status);

    const first = await s.reconcile();
    expect(first.outcomes).toMatchObject({ sent: 2 });
    expect(timelineAnswers()).toEqual([400, 200]);
    const live = s.fake.created().find((c) => c.text === 'a reply in doubt')!;
    expect(await s.ledger.get(id('amb2'))).toMatchObject({ state: 'sent', tweetId: live.id });

    // Remembered: the next lookup asks in 2.167's names straight away.
    await ambiguousKey(s, 'amb3', 'third ambiguous', clock);
    expect((await s.reconcile()).outcomes).toMatchObject({ sent: 1 });
    expect(timelineAnswers()).toEqual([400, 200, 200]);
  });
});
