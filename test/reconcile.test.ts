import { afterEach, describe, expect, it } from 'vitest';
import { jobIdFor, keyId } from '../src/domain/key.js';
import type { FaultKind } from '../src/fake-x/index.js';
import { validateRequest } from '../src/domain/request.js';
import { reconcileOnce } from '../src/queue/reconciler.js';
import { startReconciler, openLedger } from '../src/app.js';
import type { XPort } from '../src/x/port.js';
import { newRedis, post, type Stack, startStack, testClock, waitUntil } from './harness.js';
import { overrideX } from './support/x.js';

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

const SETTLE = 5_000;
const id = (slotId: string, postId = 'p1') => keyId({ slotId, postId });
const recordOf = (s: Stack, slotId: string) => s.ledger.get(id(slotId));
const reach = (s: Stack, slotId: string, states: string[]) =>
  waitUntil(
    async () => {
      const r = await recordOf(s, slotId);
      return r && states.includes(r.state) ? r : undefined;
    },
    `${slotId} to reach ${states.join('/')}`,
  );
const postsWith = (s: Stack, text: string) => s.fake.created().filter((c) => c.text === text);

describe('reconciliation resolves ambiguous posts without double-posting', () => {
  it.each(['commit-then-hang', 'commit-then-reset', '5xx-with-commit', 'truncated-201'] as FaultKind[])(
    '%s → found on X → sent with the right tweet id, one post',
    async (fault) => {
      const clock = testClock();
      stack = await startStack({ clock: clock.now, timeoutMs: 300, settleWindowMs: SETTLE });
      const s = stack;
      s.fake.injectNext(fault);
      await s.producer.enqueue(post('amb', `did it go out? ${fault}`));
      await reach(s, 'amb', ['ambiguous']);
      expect((await s.reconcile()).examined).toBe(0); // not due inside the settle window
      clock.advance(SETTLE + 1);
      const report = await s.reconcile();
      expect(report.outcomes).toMatchObject({ sent: 1, released: 0 });
      const rec = await recordOf(s, 'amb');
      const live = postsWith(s, `did it go out? ${fault}`);
      expect(live).toHaveLength(1);
      expect(rec).toMatchObject({ state: 'sent', tweetId: live[0]!.id, attempt: 1 });
      const trail = await s.ledger.auditTrail(id('amb'));
      expect(trail.at(-2)).toMatchObject({ event: 'reconciled', evidence: { kind: 'found', id: live[0]!.id } });
      expect(await s.ledger.stats()).toMatchObject({ 'attempts:ambiguous': 1, 'resolved:sent': 1, 'final:sent': 1 });
    },
  );

  it.each(['hang-before-commit', '5xx-without-commit', 'reset-before-commit'] as FaultKind[])(
    '%s → not found after the settle window → a new attempt publishes once',
    async (fault) => {
      const clock = testClock();
      stack = await startStack({ clock: clock.now, timeoutMs: 300, settleWindowMs: SETTLE });
      const s = stack;
      s.fake.injectNext(fault);
      await s.producer.enqueue(post('lost', `try again ${fault}`));
      await reach(s, 'lost', ['ambiguous']);
      clock.advance(SETTLE + 1);
      const report = await s.reconcile();
      expect(report.outcomes).toMatchObject({ released: 1, sent: 0 });
      const rec = await reach(s, 'lost', ['sent']);
      expect(rec.attempt).toBe(2);
      expect(rec.jobId).toBe(jobIdFor({ slotId: 'lost', postId: 'p1' }, 2));
      expect(postsWith(s, `try again ${fault}`)).toHaveLength(1);
      expect(rec.tweetId).toBe(postsWith(s, `try again ${fault}`)[0]!.id);
    },
  );

  it('timeline lag longer than a reconcile interval but inside the settle window → no duplicate', async () => {
    const clock = testClock();
    stack = await startStack({ clock: clock.now, timeoutMs: 300, settleWindowMs: SETTLE, fake: { timelineLagMs: 4_000 } });
    const s = stack;
    s.fake.injectNext('commit-then-hang');
    await s.producer.enqueue(post('lag', 'slow to show'));
    await reach(s, 'lag', ['ambiguous']);
    // Look every second (as a 1 s interval would), forcing the key due each time.
    for (let t = 0; t < 4; t++) {
      await s.ledger.reschedule([{ keyId: id('lag'), at: clock.now() }]);
      const r = await s.reconcile();
      expect(r.outcomes).toMatchObject({ released: 0, sent: 0, deferred: 1 });
      clock.advance(1_000);
    }
    clock.advance(1_000);
    await s.ledger.reschedule([{ keyId: id('lag'), at: clock.now() }]);
    expect((await s.reconcile()).outcomes).toMatchObject({ sent: 1 });
    expect(postsWith(s, 'slow to show')).toHaveLength(1);
    expect(await recordOf(s, 'lag')).toMatchObject({ state: 'sent', attempt: 1 });
  });

  it('text with URLs, &, <, emoji and a reply with an @-prefix are matched despite X rewriting', async () => {
    const clock = testClock();
    stack = await startStack({ clock: clock.now, timeoutMs: 300, settleWindowMs: SETTLE });
    const s = stack;
    await s.producer.enqueue({ slotId: 'root', postId: 'p1', accountId: 'globex', kind: 'post', text: 'original' });
    const root = await reach(s, 'root', ['sent']);
    const texts = {
      url: 'new blog post https://example.com/posts/2026/exactly-once?utm=x&y=1',
      amp: 'fish & chips <3 and >',
      emoji: 'launch day 🚀👩‍🚀 ✨',
    };
    for (const [slot, text] of Object.entries(texts)) {
      s.fake.injectNext('commit-then-reset', { text });
      await s.producer.enqueue(post(slot, text));
    }
    s.fake.injectNext('commit-then-reset', { text: 'congrats!' });
    await s.producer.enqueue({ slotId: 'reply', postId: 'p1', accountId: 'acme', kind: 'reply', text: 'congrats!', inReplyToTweetId: root.tweetId });
    for (const slot of [...Object.keys(texts), 'reply']) await reach(s, slot, ['ambiguous']);
    clock.advance(SETTLE + 1);
    expect((await s.reconcile()).outcomes).toMatchObject({ sent: 4, released: 0 });
    for (const [slot, text] of [...Object.entries(texts), ['reply', 'congrats!']]) {
      const live = postsWith(s, text!);
      expect(live).toHaveLength(1);
      expect(await recordOf(s, slot!)).toMatchObject({ state: 'sent', tweetId: live[0]!.id });
    }
  });

  it('two keys of one account with the same text: the live post of the other key is not stolen', async () => {
    const clock = testClock();
    stack = await startStack({ clock: clock.now, timeoutMs: 300, settleWindowMs: SETTLE, fake: { duplicateContentCheck: false } });
    const s = stack;
    await s.producer.enqueue(post('monday', 'gm'));
    const monday = await reach(s, 'monday', ['sent']);
    s.fake.injectNext('hang-before-commit');
    await s.producer.enqueue(post('tuesday', 'gm'));
    await reach(s, 'tuesday', ['ambiguous']);
    clock.advance(SETTLE + 1);
    expect((await s.reconcile()).outcomes).toMatchObject({ sent: 0, released: 1 });
    const tuesday = await reach(s, 'tuesday', ['sent']);
    expect(tuesday.tweetId).not.toBe(monday.tweetId);
    expect(postsWith(s, 'gm')).toHaveLength(2);
  });

  it('two ambiguous keys with the same text each get their own live post', async () => {
    const clock = testClock();
    stack = await startStack({ clock: clock.now, timeoutMs: 300, settleWindowMs: SETTLE, fake: { duplicateContentCheck: false } });
    const s = stack;
    s.fake.injectNext('commit-then-reset');
    s.fake.injectNext('commit-then-reset');
    await s.producer.enqueueMany([post('a', 'same'), post('b', 'same')]);
    await reach(s, 'a', ['ambiguous']);
    await reach(s, 'b', ['ambiguous']);
    clock.advance(SETTLE + 1);
    expect((await s.reconcile()).outcomes).toMatchObject({ sent: 2 });
    const ids = [(await recordOf(s, 'a'))!.tweetId, (await recordOf(s, 'b'))!.tweetId];
    expect(new Set(ids).size).toBe(2);
    expect(ids.sort()).toEqual(
      postsWith(s, 'same')
        .map((c) => c.id)
        .sort(),
    );
  });

  it('DMs are reconciled against the conversation (commit-then-reset → sent; lost → resent once)', async () => {
    const clock = testClock();
    stack = await startStack({ clock: clock.now, timeoutMs: 300, settleWindowMs: SETTLE });
    const s = stack;
    s.fake.injectNext('commit-then-reset', { text: 'dm one https://example.com/x' });
    s.fake.injectNext('hang-before-commit', { text: 'dm two' });
    await s.producer.enqueueMany([
      { slotId: 'dm1', postId: 'p1', accountId: 'acme', kind: 'dm', text: 'dm one https://example.com/x', recipientId: '2001' },
      { slotId: 'dm2', postId: 'p1', accountId: 'acme', kind: 'dm', text: 'dm two', recipientId: '2001' },
    ]);
    await reach(s, 'dm1', ['ambiguous']);
    await reach(s, 'dm2', ['ambiguous']);
    clock.advance(SETTLE + 1);
    expect((await s.reconcile()).outcomes).toMatchObject({ sent: 1, released: 1 });
    await reach(s, 'dm2', ['sent']);
    expect(postsWith(s, 'dm one https://example.com/x')).toHaveLength(1);
    expect(postsWith(s, 'dm two')).toHaveLength(1);
    expect((await recordOf(s, 'dm1'))!.tweetId).toBe(postsWith(s, 'dm one https://example.com/x')[0]!.id);
  });
});

describe('quotes, polls, reply settings and long posts: the right body on X, matched after an ambiguous attempt', () => {
  const poll = { options: ['tabs', 'spaces'], durationMinutes: 60 };
  const long = `${'Long posts are cut by X; the whole text comes back in note_tweet. '.repeat(12)}https://example.com/long`;

  it('commit-then-hang on each → reconciliation finds it; one post each, with its quote, poll and reply settings', async () => {
    const clock = testClock();
    stack = await startStack({ clock: clock.now, timeoutMs: 300, settleWindowMs: SETTLE, limits: { acme: { textLength: 1_000 } } });
    const s = stack;
    await s.producer.enqueue({ slotId: 'root', postId: 'p1', accountId: 'globex', kind: 'post', text: 'worth quoting' });
    const root = (await reach(s, 'root', ['sent'])).tweetId!;
    const keys: Record<string, Record<string, unknown>> = {
      quote: post('quote', 'so true', { quoteTweetId: root }),
      poll: post('poll', 'tabs or spaces?', { poll }),
      settings: post('settings', 'only followers may answer', { replySettings: 'following' }),
      'reply-quote': post('reply-quote', 'agreed, and quoted', { kind: 'reply', inReplyToTweetId: root, quoteTweetId: root, replySettings: 'mentionedUsers' }),
      long: post('long', long, { quoteTweetId: root }),
    };
    for (const k of Object.values(keys)) s.fake.injectNext('commit-then-hang', { text: k.text as string });
    s.fake.injectNext('commit-then-hang', { text: 'and a poll to end with' });
    await s.producer.enqueueMany([
      ...Object.values(keys),
      {
        slotId: 'thread',
        postId: 'p1',
        accountId: 'acme',
        kind: 'thread',
        parts: [
          { text: 'a thread that quotes', quoteTweetId: root },
          { text: 'and a poll to end with', poll },
        ],
      },
    ]);
    for (const slot of [...Object.keys(keys), 'thread']) await reach(s, slot, ['ambiguous']);
    clock.advance(SETTLE + 1);
    expect((await s.reconcile()).outcomes).toMatchObject({ released: 0 });
    for (const [slot, k] of Object.entries(keys)) {
      const live = postsWith(s, k.text as string);
      expect(live, slot).toHaveLength(1);
      expect(await recordOf(s, slot), slot).toMatchObject({ state: 'sent', tweetId: live[0]!.id, attempt: 1 });
    }
    expect(postsWith(s, 'so true')[0]).toMatchObject({ quoteTweetId: root });
    expect(postsWith(s, 'so true')[0]).not.toHaveProperty('poll');
    expect(postsWith(s, 'tabs or spaces?')[0]).toMatchObject({ poll });
    expect(postsWith(s, 'only followers may answer')[0]).toMatchObject({ replySettings: 'following' });
    expect(postsWith(s, 'agreed, and quoted')[0]).toMatchObject({ inReplyToTweetId: root, quoteTweetId: root, replySettings: 'mentionedUsers' });
    expect(postsWith(s, long)[0]).toMatchObject({ quoteTweetId: root });
    // The thread: each part with its own extras, the second replying to the first.
    const thread = await reach(s, 'thread', ['sent']);
    const [first, second] = [postsWith(s, 'a thread that quotes'), postsWith(s, 'and a poll to end with')];
    expect([first.length, second.length]).toEqual([1, 1]);
    expect(first[0]).toMatchObject({ quoteTweetId: root });
    expect(first[0]).not.toHaveProperty('poll');
    expect(second[0]).toMatchObject({ poll, inReplyToTweetId: first[0]!.id });
    expect(second[0]).not.toHaveProperty('quoteTweetId');
    expect(thread.parts?.map((p) => p.tweetId)).toEqual([first[0]!.id, second[0]!.id]);
  });

  it('a quote lost before X took it, while a post with its text quoting another post is live: not taken for it, published once', async () => {
    const clock = testClock();
    stack = await startStack({ clock: clock.now, timeoutMs: 300, settleWindowMs: SETTLE, fake: { duplicateContentCheck: false } });
    const s = stack;
    await s.producer.enqueueMany([
      { slotId: 'root-a', postId: 'p1', accountId: 'globex', kind: 'post', text: 'root a' },
      { slotId: 'root-b', postId: 'p1', accountId: 'globex', kind: 'post', text: 'root b' },
    ]);
    const [a, b] = [(await reach(s, 'root-a', ['sent'])).tweetId!, (await reach(s, 'root-b', ['sent'])).tweetId!];
    s.fake.injectNext('hang-before-commit', { text: 'look at this' });
    await s.producer.enqueue(post('quotes-b', 'look at this', { quoteTweetId: b }));
    await reach(s, 'quotes-b', ['ambiguous']);
    // Posted by hand during the attempt (no key owns it): same text, in the window, quoting the other post.
    await s.x.createPost('acme', { text: 'look at this', quoteTweetId: a });
    clock.advance(SETTLE + 1);
    expect((await s.reconcile()).outcomes).toMatchObject({ sent: 0, released: 1 });
    const rec = await reach(s, 'quotes-b', ['sent']);
    const live = postsWith(s, 'look at this');
    expect(live.map((c) => c.quoteTweetId)).toEqual([a, b]);
    expect(rec).toMatchObject({ attempt: 2, tweetId: live[1]!.id });
  });
});

describe('dead workers, deadlines and failing lookups', () => {
  it.each([
    ['commit-then-hang', true],
    ['hang-before-commit', false],
  ] as [FaultKind, boolean][])('a worker killed between claim and record (%s) is resolved after its lease, without a duplicate', async (fault, committed) => {
    const clock = testClock();
    stack = await startStack({ clock: clock.now, timeoutMs: 30_000, leaseMs: 2_000, settleWindowMs: SETTLE, startWorkers: false });
    const s = stack;
    s.fake.injectNext(fault);
    const doomed = s.startWorker();
    await s.producer.enqueue(post('dead', 'worker died'));
    await waitUntil(() => s.fake.requests().some((r) => r.method === 'POST'), 'the X call');
    await doomed.close(true);
    expect(await recordOf(s, 'dead')).toMatchObject({ state: 'claimed', attempt: 1 });
    s.startWorker();
    clock.advance(2_000 + 1); // lease expired; settle window not yet over
    const early = await s.reconcile();
    expect(early.outcomes).toMatchObject(committed ? { sent: 1 } : { deferred: 1, released: 0 });
    if (!committed) {
      clock.advance(SETTLE);
      expect((await s.reconcile()).outcomes).toMatchObject({ released: 1 });
    }
    const rec = await reach(s, 'dead', ['sent']);
    expect(rec.attempt).toBe(committed ? 1 : 2);
    expect(postsWith(s, 'worker died')).toHaveLength(1);
  });

  it('a deadline that passes while ambiguous and not found → failed/expired', async () => {
    const clock = testClock();
    stack = await startStack({ clock: clock.now, timeoutMs: 300, settleWindowMs: SETTLE });
    const s = stack;
    s.fake.injectNext('hang-before-commit');
    await s.producer.enqueue(post('exp', 'too slow', { deadline: new Date(clock.now() + 3_000).toISOString() }));
    await reach(s, 'exp', ['ambiguous']);
    clock.advance(SETTLE + 1);
    expect((await s.reconcile()).outcomes).toMatchObject({ expired: 1 });
    const rec = await recordOf(s, 'exp');
    expect(rec).toMatchObject({ state: 'failed', reason: 'expired' });
    expect(rec!.detail).toMatch(/not found in \d+ item\(s\) between/);
    expect(postsWith(s, 'too slow')).toHaveLength(0);
  });

  it('lookups that keep failing → deferred, then failed/unresolved past deadline + grace', async () => {
    const clock = testClock();
    stack = await startStack({ clock: clock.now, timeoutMs: 300, settleWindowMs: SETTLE, unresolvedGraceMs: 10_000 });
    const s = stack;
    s.fake.injectNext('commit-then-reset');
    await s.producer.enqueue(post('unres', 'cannot check', { deadline: new Date(clock.now() + 3_000).toISOString() }));
    await reach(s, 'unres', ['ambiguous']);
    await s.fake.close(); // X unreachable for lookups from now on
    clock.advance(SETTLE + 1);
    expect((await s.reconcile()).outcomes).toMatchObject({ deferred: 1 });
    expect((await recordOf(s, 'unres'))!.state).toBe('ambiguous');
    clock.advance(10_000);
    expect((await s.reconcile()).outcomes).toMatchObject({ unresolved: 1 });
    const rec = await recordOf(s, 'unres');
    expect(rec).toMatchObject({ state: 'failed', reason: 'unresolved' });
    expect(rec!.detail).toContain("check account acme's timeline by hand");
  });

  it('a queued key whose job was lost gets its job back', async () => {
    const clock = testClock();
    stack = await startStack({ clock: clock.now });
    const s = stack;
    const v = validateRequest(post('orphan', 'ledger only'), { now: clock.now(), deadlineWindowMs: 600_000 });
    if (!v.ok) throw new Error('invalid');
    // The producer crashed between ledger and queue.
    await s.ledger.registerMany([{ request: v.request, keyId: id('orphan'), jobId: id('orphan') }], clock.now());
    clock.advance(60_001);
    expect((await s.reconcile({ lostJobGraceMs: 60_000 })).outcomes).toMatchObject({ requeued: 1 });
    await reach(s, 'orphan', ['sent']);
    expect(postsWith(s, 'ledger only')).toHaveLength(1);
  });
});

describe('uncertain candidates: never re-attempted, failed/unresolved after the deadline', () => {
  const creates = (s: Stack) => s.fake.requests().filter((r) => r.method === 'POST' && r.path === '/2/tweets').length;
  const trailEvidence = async (s: Stack, slotId: string) =>
    (await s.ledger.auditTrail(id(slotId))).filter((e) => e.event === 'reconciled').map((e) => e.evidence);

  /** Ambiguous, then looked at twice inside the deadline (deferred both times), then past it. */
  async function uncertainUntilDeadline(s: Stack, clock: ReturnType<typeof testClock>, slotId: string) {
    for (let look = 0; look < 2; look++) {
      clock.advance(SETTLE + 1);
      expect((await s.reconcile()).outcomes).toMatchObject({ deferred: 1, released: 0, sent: 0, unresolved: 0 });
      expect(await recordOf(s, slotId)).toMatchObject({ state: 'ambiguous', attempt: 1 });
      expect(await s.producer.queue.getJob(jobIdFor({ slotId, postId: 'p1' }, 2))).toBeUndefined();
    }
    clock.advance(30_000);
    expect((await s.reconcile()).outcomes).toMatchObject({ unresolved: 1, released: 0 });
    return (await recordOf(s, slotId))!;
  }

  it('the post was edited on X (new id, different text): uncertain, never re-attempted, then unresolved naming the candidate', async () => {
    const clock = testClock();
    stack = await startStack({ clock: clock.now, timeoutMs: 300, settleWindowMs: SETTLE });
    const s = stack;
    s.fake.injectNext('commit-then-reset');
    await s.producer.enqueue(post('edited', 'launch at noon', { deadline: new Date(clock.now() + 30_000).toISOString() }));
    await reach(s, 'edited', ['ambiguous']);
    const [live] = postsWith(s, 'launch at noon');
    const edit = s.fake.editPost(live!.id, 'launch at 1pm (moved)');
    const rec = await uncertainUntilDeadline(s, clock, 'edited');
    expect(rec).toMatchObject({ state: 'failed', reason: 'unresolved', attempt: 1 });
    expect(rec.detail).toContain(`X shows post ${edit.id}`);
    expect(rec.detail).toContain(`original ${live!.id}`);
    expect(await trailEvidence(s, 'edited')).toEqual([expect.objectContaining({ kind: 'uncertain', id: edit.id })]);
    expect(creates(s)).toBe(1);
    expect(s.fake.created()).toHaveLength(1);
  });

  it('a t.co link X did not expand: uncertain, never re-attempted, then unresolved', async () => {
    const clock = testClock();
    // X leaves out expanded_url: the link cannot be mapped back.
    const blind = (x: XPort): XPort =>
      overrideX(x, {
        timeline: async (a, q) => {
          const page = await x.timeline(a, q);
          return { ...page, items: page.items.map((t) => ({ ...t, urls: t.urls?.map(({ expandedUrl: _, ...u }) => u) })) };
        },
      });
    stack = await startStack({ clock: clock.now, timeoutMs: 300, settleWindowMs: SETTLE, wrapX: blind });
    const s = stack;
    const text = 'docs are up https://example.com/docs';
    s.fake.injectNext('commit-then-reset');
    await s.producer.enqueue(post('link', text, { deadline: new Date(clock.now() + 30_000).toISOString() }));
    await reach(s, 'link', ['ambiguous']);
    const rec = await uncertainUntilDeadline(s, clock, 'link');
    const live = postsWith(s, text);
    expect(live).toHaveLength(1);
    expect(rec).toMatchObject({ state: 'failed', reason: 'unresolved' });
    expect(rec.detail).toContain(`X shows post ${live[0]!.id}`);
    expect(rec.detail).toMatch(/expanded form/);
    expect(creates(s)).toBe(1);
  });

  it('an edit that kept the text, and a reply starting with @handles, are matched (sent, no new attempt)', async () => {
    const clock = testClock();
    stack = await startStack({ clock: clock.now, timeoutMs: 300, settleWindowMs: SETTLE });
    const s = stack;
    await s.producer.enqueue({ slotId: 'root', postId: 'p1', accountId: 'globex', kind: 'post', text: 'root' });
    const root = await reach(s, 'root', ['sent']);
    s.fake.injectNext('commit-then-reset', { text: 'same words' });
    s.fake.injectNext('commit-then-reset', { text: '@globex @fan congrats & thanks!' });
    await s.producer.enqueue(post('kept', 'same words'));
    await s.producer.enqueue({
      slotId: 'handles',
      postId: 'p1',
      accountId: 'acme',
      kind: 'reply',
      text: '@globex @fan congrats & thanks!',
      inReplyToTweetId: root.tweetId,
    });
    await reach(s, 'kept', ['ambiguous']);
    await reach(s, 'handles', ['ambiguous']);
    const edit = s.fake.editPost(postsWith(s, 'same words')[0]!.id, 'same words');
    clock.advance(SETTLE + 1);
    expect((await s.reconcile()).outcomes).toMatchObject({ sent: 2, released: 0, deferred: 0 });
    expect(await recordOf(s, 'kept')).toMatchObject({ state: 'sent', tweetId: edit.id, attempt: 1 });
    expect(await recordOf(s, 'handles')).toMatchObject({ state: 'sent', tweetId: postsWith(s, '@globex @fan congrats & thanks!')[0]!.id });
    expect(creates(s)).toBe(3);
  });
});

describe('cost and exclusivity', () => {
  it('200 ambiguous keys over 20 accounts: one pass, one paged lookup per account', async () => {
    const clock = testClock();
    stack = await startStack({
      clock: clock.now,
      timeoutMs: 300,
      settleWindowMs: SETTLE,
      extraAccounts: 20,
      concurrency: 20,
      fake: { faultRate: 1, faultKinds: ['commit-then-reset'] },
    });
    const s = stack;
    const reqs = Array.from({ length: 200 }, (_, i) => ({ slotId: `k${i}`, postId: 'p1', accountId: `acc-${i % 20}`, kind: 'post', text: `bulk post ${i}` }));
    await s.producer.enqueueMany(reqs);
    await waitUntil(
      async () =>
        (await s.ledger.unresolvedCount()) === 200 && (await Promise.all(reqs.map((r) => recordOf(s, r.slotId)))).every((r) => r?.state === 'ambiguous'),
      'all ambiguous',
      30_000,
    );
    const before = s.fake.requests().length;
    clock.advance(SETTLE + 1);
    const report = await s.reconcile();
    expect(report.outcomes.sent).toBe(200);
    expect(report.lookups).toBe(20);
    const gets = s.fake
      .requests()
      .slice(before)
      .filter((r) => r.method === 'GET');
    expect(gets).toHaveLength(20);
    expect(new Set(gets.map((r) => r.userId)).size).toBe(20);
    expect(s.fake.created()).toHaveLength(200);
  });

  it('two reconcilers started at once never overlap and never release twice', async () => {
    const clock = testClock();
    stack = await startStack({ clock: clock.now, timeoutMs: 300, settleWindowMs: SETTLE, startWorkers: false });
    const s = stack;
    s.fake.setFaultRate(1);
    const reqs = Array.from({ length: 10 }, (_, i) => post(`r${i}`, `release me ${i}`));
    for (let i = 0; i < reqs.length; i++) s.fake.injectNext('hang-before-commit');
    await s.producer.enqueueMany(reqs);
    s.startWorker({ concurrency: 10 });
    for (const r of reqs) await reach(s, r.slotId, ['ambiguous']);
    s.fake.setFaultRate(0);
    for (const w of s.workers) await w.close();
    clock.advance(SETTLE + 1);

    // The first lookup is held until the other pass is over (it found the
    // lock taken) or, if the lock did not hold, until a second lookup joins
    // it: the passes overlap for certain when they can, and not by luck.
    let inFlight = 0;
    let maxInFlight = 0;
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const slow = (x: XPort): XPort =>
      overrideX(x, {
        timeline: async (a, q) => {
          maxInFlight = Math.max(maxInFlight, ++inFlight);
          if (inFlight > 1) release();
          await held;
          try {
            return await x.timeline(a, q);
          } finally {
            inFlight--;
          }
        },
      });
    const conns = [newRedis(), newRedis()];
    const deps = conns.map((c) => ({ ...s.reconcileDeps, ledger: openLedger(c, { prefix: s.prefix, retentionMs: 3_600_000 }), x: slow(s.x) }));
    const passes = deps.map((d) => reconcileOnce(d));
    // The lock of a pass is short (renewed while it runs): a process killed
    // mid-pass blocks reconciliation for seconds, not minutes.
    await waitUntil(() => inFlight > 0, 'a lookup in flight');
    const ttl = await s.redis.pttl(s.ledger.keys.reconcileLock);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(15_000);
    // The pass without the lock ends while the other one's lookup is held.
    const first = await Promise.race(passes);
    release();
    expect(first.ran).toBe(false);
    const reports = await Promise.all(passes);
    expect(reports.filter((r) => r.ran)).toHaveLength(1);
    expect(reports.reduce((n, r) => n + r.outcomes.released, 0)).toBe(10);
    expect(maxInFlight).toBe(1);
    // Each key got exactly one new attempt job.
    for (const r of reqs) {
      const g2 = await s.producer.queue.getJob(jobIdFor({ slotId: r.slotId, postId: 'p1' }, 2));
      expect(g2).toBeDefined();
      expect(await s.producer.queue.getJob(jobIdFor({ slotId: r.slotId, postId: 'p1' }, 3))).toBeUndefined();
    }

    // And as repeatable jobs: two scheduler registrations, one run at a time.
    const reconcilers = await Promise.all(deps.map((d, i) => startReconciler({ ...d, connection: conns[i]!, intervalMs: 100 })));
    let runs = 0;
    await new Promise<void>((resolve) => {
      for (const rc of reconcilers)
        rc.worker.on('completed', () => {
          if (++runs >= 6) resolve();
        });
    });
    const schedulers = await reconcilers[0]!.queue.getJobSchedulers();
    expect(schedulers).toHaveLength(1);
    expect(maxInFlight).toBe(1);
    await Promise.all(reconcilers.map((r) => r.close()));
    await Promise.all(conns.map((c) => c.quit()));
  });
});
