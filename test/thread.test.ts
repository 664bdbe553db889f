/**
 * Threads: one key, parts published one at a time, each replying to the
 * part before it, every part exactly once, resumed (never restarted) after a
 * fault or a dead worker. Checked against the fake X's ground truth.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { keyId, type PostKey } from '../src/domain/key.js';
import { validateRequest } from '../src/domain/request.js';
import { isFinal, type PostRecord } from '../src/domain/state.js';
import type { FaultKind } from '../src/fake-x/index.js';
import { ALL_FAULT_KINDS } from '../src/fake-x/index.js';
import type { XPort } from '../src/x/port.js';
import { transitionsOf } from '../src/ops/ground-truth.js';
import { type Stack, startStack, testClock, waitUntil } from './harness.js';
import { verify } from './support/verify.js';
import { overrideX } from './support/x.js';

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

const SETTLE = 3_000;
const key = (slotId: string): PostKey => ({ slotId, postId: 'th' });
const thread = (slotId: string, texts: readonly string[], extra: Record<string, unknown> = {}) => ({
  slotId,
  postId: 'th',
  accountId: 'acme',
  kind: 'thread',
  parts: texts.map((text) => ({ text })),
  ...extra,
});
const partsOf = (label: string, n: number) => Array.from({ length: n }, (_, i) => `${label} ${i + 1}/${n}: part ${i + 1} of the launch story`);

/** Reconcile (moving the clock past the settle window) until the keys are final. */
async function untilFinal(s: Stack, clock: ReturnType<typeof testClock>, slots: readonly string[]): Promise<PostRecord[]> {
  return waitUntil(
    async () => {
      const rs = await s.ledger.getMany(slots.map((slot) => keyId(key(slot))));
      if (rs.every((r) => r && isFinal(r.state))) return rs as PostRecord[];
      // Time moves only for what waits on it (a part in doubt, a dead worker's claim), so that
      // backoffs the workers set in real time (BullMQ delays) stay short.
      if (rs.some((r) => r?.state === 'ambiguous' || r?.state === 'claimed')) {
        clock.advance(SETTLE + 1);
        await s.reconcile();
      }
      return undefined;
    },
    'every thread to be final',
    60_000,
  );
}

describe('threads publish each part exactly once, in order', () => {
  it('two 6-part threads, a fault of every class on their parts and a worker that dies mid-thread: every part once, each replying to the one before', async () => {
    const clock = testClock();
    // One call hangs for good, as if its worker died holding the claim of that part.
    let dead = 0;
    const dying = (x: XPort): XPort =>
      overrideX(x, {
        createPost: async (a, p) => {
          if (p.text.startsWith('B 3/6') && dead++ === 0) return new Promise<never>(() => undefined);
          return x.createPost(a, p);
        },
      });
    stack = await startStack({
      clock: clock.now,
      timeoutMs: 300,
      leaseMs: 2_000,
      settleWindowMs: SETTLE,
      workers: 2,
      wrapX: dying,
      fake: { rateLimitResetSec: 1 },
    });
    const s = stack;
    const a = partsOf('A', 6);
    const b = partsOf('B', 6);
    // Every fault class lands on some part: A's parts take the first six, B's the last six.
    const kinds = ALL_FAULT_KINDS as readonly FaultKind[];
    a.forEach((text, i) => s.fake.injectNext(kinds[i % kinds.length]!, { text }));
    b.forEach((text, i) => s.fake.injectNext(kinds[(i + 2) % kinds.length]!, { text }));
    // untilFinal moves the clock 3 s a round: a day's deadline leaves room for every round.
    const deadline = new Date(Date.now() + 24 * 3_600_000).toISOString();
    await s.producer.enqueueMany([thread('thread-a', a, { deadline }), thread('thread-b', b, { deadline })]);
    const records = await untilFinal(s, clock, ['thread-a', 'thread-b']);

    expect(records.map((r) => `${r.state} ${r.detail ?? ''}`)).toEqual(records.map(() => expect.stringMatching(/^sent/)));
    expect(dead).toBeGreaterThan(0);
    const created = s.fake.created();
    const expected = [a, b].map((texts, i) => ({
      keyId: records[i]!.keyId,
      userId: '1001',
      kind: 'thread' as const,
      text: texts[0]!,
      parts: texts.map((text) => ({ text })),
      scheduledAt: records[i]!.scheduledAt,
    }));
    const verdict = verify(expected, records, created);
    expect(verdict.violations).toEqual([]);
    for (const [i, texts] of [a, b].entries()) {
      const live = texts.map((t) => created.filter((c) => c.text === t));
      expect(live.map((l) => l.length)).toEqual([1, 1, 1, 1, 1, 1]);
      live.forEach((l, j) => expect(l[0]!.inReplyToTweetId).toBe(j === 0 ? undefined : live[j - 1]![0]!.id));
      expect(records[i]!.parts!.map((p) => p.tweetId)).toEqual(live.map((l) => l[0]!.id));
      expect(records[i]!.tweetId).toBe(live[0]![0]!.id);
    }
    expect(Object.keys(s.fake.faultsInjected()).length).toBeGreaterThanOrEqual(ALL_FAULT_KINDS.length);
  }, 90_000);

  it('part 4 of 6 refused for good: failed thread-broken, parts 1-3 listed and left live, parts 5-6 never attempted', async () => {
    const texts = partsOf('C', 6);
    // Part 3 disappears just before part 4 replies to it: X refuses part 4 for good.
    const ref: { fake?: Stack['fake'] } = {};
    const deleting = (x: XPort): XPort =>
      overrideX(x, {
        createPost: async (a, p) => {
          if (p.text === texts[3] && p.inReplyToTweetId) ref.fake!.deletePost(p.inReplyToTweetId);
          return x.createPost(a, p);
        },
      });
    stack = await startStack({ wrapX: deleting });
    const s = stack;
    ref.fake = s.fake;
    await s.producer.enqueue(thread('thread-c', texts));
    const r = await waitUntil(async () => {
      const rec = await s.ledger.get(keyId(key('thread-c')));
      return rec && isFinal(rec.state) ? rec : undefined;
    }, 'the thread to end');
    expect(r).toMatchObject({ state: 'failed', reason: 'thread-broken', partIndex: 3 });
    expect(r.detail).toMatch(/^part 4 of 6 rejected: .*deleted or not visible.*; parts live \(not deleted\): 1: \d+, 2: \d+, 3: \d+$/);
    const live = texts.slice(0, 3).map((t) => s.fake.created().find((c) => c.text === t)!.id);
    expect(r.parts!.map((p) => p.tweetId)).toEqual([...live, undefined, undefined, undefined]);
    // Four calls to X, one per part up to the refused one; parts 5 and 6 never went out.
    expect(s.fake.requests().filter((q) => q.method === 'POST' && q.path === '/2/tweets')).toHaveLength(4);
    expect(r.attempt).toBe(4);
    expect(texts.slice(4).map((t) => s.fake.created().filter((c) => c.text === t).length)).toEqual([0, 0]);
  });

  it("the 2026 reply rule: a thread's self-replies pass; a thread under another author's post is thread-broken at part 1 with X's reason, unless that post quoted the account", async () => {
    stack = await startStack({ fake: { replyRestriction: true } });
    const s = stack;
    await s.producer.enqueue({ slotId: 'stranger', postId: 'p1', accountId: 'globex', kind: 'post', text: 'globex says hello' });
    const stranger = await waitUntil(async () => (await s.ledger.get(keyId({ slotId: 'stranger', postId: 'p1' })))?.tweetId, 'the post to reply under');
    const own = await s.x.createPost('acme', { text: 'acme launches' });
    const quoting = await s.x.createPost('globex', { text: 'globex quotes acme', quoteTweetId: own.id });
    const parts = (label: string) => partsOf(label, 3).map((text) => ({ text }));
    await s.producer.enqueueMany([
      thread('self', [], { parts: parts('S') }),
      thread('under-stranger', [], { parts: [{ ...parts('U')[0]!, inReplyToTweetId: stranger }, ...parts('U').slice(1)] }),
      thread('under-quote', [], { parts: [{ ...parts('Q')[0]!, inReplyToTweetId: quoting.id }, ...parts('Q').slice(1)] }),
    ]);
    const ends = await waitUntil(async () => {
      const rs = await s.ledger.getMany(['self', 'under-stranger', 'under-quote'].map((slot) => keyId(key(slot))));
      return rs.every((r) => r && isFinal(r.state)) ? (rs as PostRecord[]) : undefined;
    }, 'the threads to end');
    expect(ends.map((r) => r.state)).toEqual(['sent', 'failed', 'sent']);
    expect(ends[1]).toMatchObject({ reason: 'thread-broken', partIndex: 0 });
    expect(ends[1]!.detail).toMatch(
      /^part 1 of 3 rejected: http-403: Reply to this conversation is not allowed because you have not been mentioned.*; no part is live$/,
    );
    expect(s.fake.created().filter((c) => c.text.startsWith('U '))).toEqual([]);
    // The account is not paused: the refusal concerns that post only.
    expect((await s.ledger.accountStatus(['acme'])).get('acme')).toBeUndefined();
  });

  it('a part in doubt is found by reconciliation, and the thread carries on from the next part', async () => {
    const clock = testClock();
    stack = await startStack({ clock: clock.now, timeoutMs: 300, settleWindowMs: SETTLE });
    const s = stack;
    const texts = partsOf('D', 3);
    s.fake.injectNext('commit-then-hang', { text: texts[1]! });
    await s.producer.enqueue(thread('thread-d', texts));
    const doubt = await waitUntil(async () => {
      const rec = await s.ledger.get(keyId(key('thread-d')));
      return rec?.state === 'ambiguous' ? rec : undefined;
    }, 'part 2 to be in doubt');
    expect(doubt).toMatchObject({ partIndex: 1, text: texts[1] });
    const [r] = await untilFinal(s, clock, ['thread-d']);
    expect(r!.state).toBe('sent');
    const trail = (await s.ledger.auditTrail(r!.keyId)).map((e) => e.event);
    expect(trail.filter((e) => e === 'part-sent')).toHaveLength(2);
    expect(trail).toContain('reconciled');
    expect(texts.map((t) => s.fake.created().filter((c) => c.text === t).length)).toEqual([1, 1, 1]);
  });

  it('a re-enqueue of the same thread is a duplicate; a changed one a conflict', async () => {
    stack = await startStack();
    const s = stack;
    const later = new Date(Date.now() + 3_600_000).toISOString();
    const texts = partsOf('E', 2);
    expect((await s.producer.enqueueMany([thread('thread-e', texts, { scheduledAt: later })]))[0]?.status).toBe('queued');
    expect((await s.producer.enqueueMany([thread('thread-e', texts, { scheduledAt: later })]))[0]).toMatchObject({ status: 'duplicate' });
    expect((await s.producer.enqueueMany([thread('thread-e', [texts[0]!, 'another second part'], { scheduledAt: later })]))[0]?.status).toBe('conflict');
    expect(await s.producer.cancel(key('thread-e'))).toMatchObject({ status: 'cancelled' });
  });
});

describe('cancel and edit cover threads', () => {
  it('a cancel while part 2 of 3 is in flight: part 2 goes out as it was already on its way, part 3 never starts, both live parts are listed', async () => {
    const texts = partsOf('F', 3);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const gated = (x: XPort): XPort =>
      overrideX(x, {
        createPost: async (a, p) => {
          if (p.text === texts[1]) await gate;
          return x.createPost(a, p);
        },
      });
    stack = await startStack({ wrapX: gated });
    const s = stack;
    await s.producer.enqueue(thread('thread-f', texts));
    await waitUntil(async () => {
      const r = await s.ledger.get(keyId(key('thread-f')));
      return r?.state === 'claimed' && r.partIndex === 1;
    }, 'part 2 to be claimed');
    expect(await s.producer.cancel(key('thread-f'), { reason: 'campaign pulled' })).toMatchObject({ status: 'cancelling', attempt: 2 });
    release();
    const r = await waitUntil(async () => {
      const rec = await s.ledger.get(keyId(key('thread-f')));
      return rec && isFinal(rec.state) ? rec : undefined;
    }, 'the thread to end');
    const live = texts.map((t) =>
      s.fake
        .created()
        .filter((c) => c.text === t)
        .map((c) => c.id),
    );
    expect(live).toEqual([[expect.any(String)], [expect.any(String)], []]);
    expect(r).toMatchObject({ state: 'cancelled', cancel: { reason: 'campaign pulled' } });
    expect(r.parts!.map((p) => p.tweetId)).toEqual([live[0]![0], live[1]![0], undefined]);
    // Part 2 is live: its event goes out with the cancelled one, one per transition of the trail.
    const events = (await s.ledger.readEvents('0', 100)).filter((e) => e.key === keyId(key('thread-f')));
    expect(events.map((e) => [e.type, e.state, e.tweetId])).toEqual([
      ['queued', 'queued', undefined],
      ['part-sent', 'queued', live[0]![0]],
      ['cancelling', 'cancelling', undefined],
      ['part-sent', 'cancelling', live[1]![0]],
      ['cancelled', 'cancelled', undefined],
    ]);
    const t = transitionsOf(await s.ledger.auditTrail(keyId(key('thread-f'))), events);
    expect(t.events).toEqual(t.trail);
  });

  it('a thread is edited whole (validated as at enqueue) before it starts, rescheduled, and refused once it went out', async () => {
    stack = await startStack();
    const s = stack;
    const later = new Date(Date.now() + 3_600_000).toISOString();
    await s.producer.enqueue(thread('thread-g', partsOf('G', 2), { scheduledAt: later }));
    await expect(s.producer.edit(key('thread-g'), { text: 'x' })).rejects.toThrow(/text: is not edited on a thread/);
    await expect(s.producer.edit(key('thread-g'), { parts: [{ text: 'only one' }] })).rejects.toThrow(/parts: has 1 part\(s\)/);
    expect(await s.producer.edit(key('thread-g'), { parts: [{ text: 'G new 1' }, { text: 'G new 2' }, { text: 'G new 3' }] })).toMatchObject({
      status: 'edited',
    });
    expect(await s.producer.reschedule(key('thread-g'), { scheduledAt: new Date(Date.now() - 1_000) })).toMatchObject({ status: 'rescheduled' });
    const r = await waitUntil(async () => {
      const rec = await s.ledger.get(keyId(key('thread-g')));
      return rec?.state === 'sent' ? rec : undefined;
    }, 'the edited thread to go out');
    expect(r.parts!.map((p) => p.text)).toEqual(['G new 1', 'G new 2', 'G new 3']);
    expect(
      s.fake
        .created()
        .filter((c) => c.text.startsWith('G '))
        .map((c) => c.text),
    ).toEqual(['G new 1', 'G new 2', 'G new 3']);
    expect(await s.producer.edit(key('thread-g'), { parts: [{ text: 'a' }, { text: 'b' }] })).toMatchObject({ status: 'already-sent' });
  });
});

describe('thread validation names the part', () => {
  const v = (raw: unknown) => validateRequest(raw, { now: Date.now(), deadlineWindowMs: 60_000 });
  it('an empty part, a part too long, 26 parts, a reply target on a later part, a text beside the parts', () => {
    const bad = v(thread('t', ['fine', '   ', 'x'.repeat(300)]));
    expect(bad.ok).toBe(false);
    expect(!bad.ok && bad.errors).toEqual([
      { field: 'parts[1].text', reason: 'must not be empty or whitespace-only (unless media is attached)' },
      { field: 'parts[2].text', reason: expect.stringMatching(/^is 300 weighted characters; X allows 280/) as unknown as string },
    ]);
    const many = v(
      thread(
        't',
        Array.from({ length: 26 }, (_, i) => `part ${i}`),
      ),
    );
    expect(!many.ok && many.errors).toEqual([{ field: 'parts', reason: 'has 26 part(s); a thread has 2–25' }]);
    const one = v(thread('t', ['only one']));
    expect(!one.ok && one.errors).toEqual([{ field: 'parts', reason: 'has 1 part(s); a thread has 2–25' }]);
    const target = v({
      ...thread('t', ['a', 'b']),
      parts: [
        { text: 'a', inReplyToTweetId: '123' },
        { text: 'b', inReplyToTweetId: '456' },
      ],
    });
    expect(!target.ok && target.errors.map((e) => e.field)).toEqual(['parts[1].inReplyToTweetId']);
    const text = v({ ...thread('t', ['a', 'b']), text: 'what?' });
    expect(!text.ok && text.errors.map((e) => e.field)).toEqual(['text']);
    const none = v({ slotId: 't', postId: 'th', accountId: 'acme', kind: 'thread' });
    expect(!none.ok && none.errors.map((e) => e.field)).toEqual(['parts']);
    const partsOnPost = v({ slotId: 't', postId: 'p', accountId: 'acme', kind: 'post', text: 'x', parts: [{ text: 'y' }] });
    expect(!partsOnPost.ok && partsOnPost.errors.map((e) => e.field)).toEqual(['parts']);
  });

  it('a valid thread: the first part is the one to publish, its fingerprint covers every part', () => {
    const ok = v({ ...thread('t', ['a', 'b']), parts: [{ text: 'one', inReplyToTweetId: '123' }, { text: 'two' }] });
    expect(ok.ok && ok.request).toMatchObject({
      kind: 'thread',
      text: 'one',
      inReplyToTweetId: '123',
      partIndex: 0,
      parts: [{ text: 'one', inReplyToTweetId: '123' }, { text: 'two' }],
    });
    const other = v({ ...thread('t', ['a', 'b']), parts: [{ text: 'one', inReplyToTweetId: '123' }, { text: 'TWO' }] });
    expect(ok.ok && other.ok && ok.request.fingerprint !== other.request.fingerprint).toBe(true);
  });
});
