/**
 * Cancel, edit and reschedule against real Redis, real BullMQ workers and
 * the fake X over HTTP. Every answer is checked against the fake's ground
 * truth: "cancelled" never published, "cancelling" published at most once
 * and ending sent or cancelled, "edited" published only with the new text.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { keyId, type PostKey } from '../src/domain/key.js';
import { isFinal, type PostRecord } from '../src/domain/state.js';
import type { LifecycleResult } from '../src/queue/lifecycle.js';
import { InvalidRequestError } from '../src/queue/producer.js';
import type { XPort } from '../src/x/port.js';
import { post, type Stack, startStack, testClock, waitUntil } from './harness.js';
import { overrideX } from './support/x.js';

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

const SETTLE = 3_000;
const key = (slotId: string): PostKey => ({ slotId, postId: 'p1' });
const iso = (ms: number) => new Date(ms).toISOString();
const recordOf = async (s: Stack, slotId: string) => s.ledger.get(keyId(key(slotId)));
const onX = (s: Stack, text: string) => s.fake.created().filter((c) => c.text === text);

/** Reconcile (moving the shared clock past the settle window) until every key is final. */
async function settleAll(s: Stack, clock: ReturnType<typeof testClock>, slots: readonly string[]): Promise<PostRecord[]> {
  return waitUntil(
    async () => {
      clock.advance(SETTLE + 1);
      await s.reconcile();
      const records = await s.ledger.getMany(slots.map((slot) => keyId(key(slot))));
      return records.every((r) => r && isFinal(r.state)) ? (records as PostRecord[]) : undefined;
    },
    'every key to be final',
    60_000,
  );
}

describe('cancel, edit and reschedule race the workers atomically', () => {
  it('20 workers and a canceller on 500 keys: cancelled never goes out, cancelling ends sent or cancelled, edited goes out with its new text only', async () => {
    const clock = testClock();
    stack = await startStack({
      clock: clock.now,
      workers: 20,
      concurrency: 5,
      timeoutMs: 300,
      settleWindowMs: SETTLE,
      logLevel: 'silent',
      // Faults give attempts that are in flight for a while, or ambiguous: the cancels that land there must wait.
      fake: { faultRate: 0.15, seed: 7 },
    });
    const s = stack;
    const N = 500;
    const start = clock.now() + 1_500;
    const slots = Array.from({ length: N }, (_, i) => `race-${i}`);
    // Due over 2 s, so cancels and edits meet keys queued, claimed, in flight and settled.
    const results = await s.producer.enqueueMany(
      slots.map((slot, i) => post(slot, `race ${i} v1`, { scheduledAt: iso(start + i * 4), deadline: iso(start + 120_000) })),
    );
    expect(results.every((r) => r.status === 'queued')).toBe(true);

    const answers = new Map<string, LifecycleResult>();
    const ops: Promise<void>[] = [];
    const t0 = Date.now();
    for (let i = 0; i < N; i++) {
      // Each op arrives around its key's due time: a little before, at, or after.
      const at = 1_500 + i * 4 + ((i * 37) % 300) - 150;
      const wait = Math.max(0, at - (Date.now() - t0));
      ops.push(
        new Promise<void>((resolve) => setTimeout(resolve, wait)).then(async () => {
          const slot = slots[i]!;
          const answer =
            i % 3 === 0
              ? await s.producer.cancel(key(slot), { reason: 'client pulled it' })
              : i % 3 === 1
                ? await s.producer.edit(key(slot), { text: `race ${i} v2` })
                : undefined;
          if (answer) answers.set(slot, answer);
        }),
      );
    }
    await Promise.all(ops);
    s.fake.setFaultRate(0);
    const records = await settleAll(s, clock, slots);

    const tally: Record<string, number> = {};
    records.forEach((r, i) => {
      const answer = answers.get(slots[i]!);
      const v1 = onX(s, `race ${i} v1`);
      const v2 = onX(s, `race ${i} v2`);
      expect(v1.length + v2.length, `${slots[i]} is on X at most once`).toBeLessThanOrEqual(1);
      const status = answer?.status ?? 'untouched';
      tally[status] = (tally[status] ?? 0) + 1;
      if (status === 'cancelled') {
        expect(v1.length + v2.length, `${slots[i]} was answered cancelled`).toBe(0);
        expect(r.state).toBe('cancelled');
      } else if (status === 'cancelling') {
        expect(['sent', 'cancelled']).toContain(r.state);
        if (r.state === 'sent') expect(r.tweetId).toBe(v1[0]?.id);
        else expect(v1).toHaveLength(0);
      } else if (status === 'edited') {
        expect(v1, `${slots[i]} was answered edited: its old text never goes out`).toHaveLength(0);
        expect(r.state).toBe('sent');
        expect(r.tweetId).toBe(v2[0]?.id);
      } else if (r.state === 'sent') {
        expect(r.tweetId).toBe((v1[0] ?? v2[0])?.id);
      }
    });
    // The race must have met every case, or it proved little.
    expect(tally['cancelled'], JSON.stringify(tally)).toBeGreaterThan(0);
    expect(tally['edited'], JSON.stringify(tally)).toBeGreaterThan(0);
    expect((tally['cancelling'] ?? 0) + (tally['in-flight'] ?? 0) + (tally['already-sent'] ?? 0), JSON.stringify(tally)).toBeGreaterThan(0);
    console.log(`lifecycle race (500 keys, 20 workers): ${JSON.stringify(tally)}`);
  }, 120_000);
});

describe('reschedule moves the job with the key', () => {
  it('100 keys moved 30 s later just before they are due never reach X before their new time', async () => {
    stack = await startStack({ workers: 2, concurrency: 20, logLevel: 'silent' });
    const s = stack;
    const due = Date.now() + 2_000;
    const slots = Array.from({ length: 100 }, (_, i) => `later-${i}`);
    await s.producer.enqueueMany(slots.map((slot, i) => post(slot, `later ${i}`, { scheduledAt: iso(due) })));
    await new Promise((r) => setTimeout(r, Math.max(0, due - 500 - Date.now()))); // "just before they are due" is the point of this test
    const newTime = Date.now() + 30_000;
    const answers = await Promise.all(slots.map((slot) => s.producer.reschedule(key(slot), { scheduledAt: iso(newTime) })));
    expect(answers.every((a) => a.status === 'rescheduled')).toBe(true);
    const sent = await waitUntil(
      async () => {
        const rs = await s.ledger.getMany(slots.map((slot) => keyId(key(slot))));
        return rs.every((r) => r?.state === 'sent') ? rs : undefined;
      },
      'every rescheduled key to go out',
      60_000,
    );
    expect(sent).toHaveLength(100);
    const early = slots
      .map((_, i) => onX(s, `later ${i}`))
      .flat()
      .filter((c) => c.createdAt < newTime);
    expect(early, 'published before the new time').toHaveLength(0);
    expect(slots.every((_, i) => onX(s, `later ${i}`).length === 1)).toBe(true);
  }, 90_000);

  it('100 keys moved earlier each go out within a second of their new time', async () => {
    stack = await startStack({ workers: 2, concurrency: 25, logLevel: 'silent' });
    const s = stack;
    const slots = Array.from({ length: 100 }, (_, i) => `sooner-${i}`);
    await s.producer.enqueueMany(slots.map((slot, i) => post(slot, `sooner ${i}`, { scheduledAt: iso(Date.now() + 3_600_000) })));
    const newTime = Date.now() + 2_000;
    const answers = await Promise.all(slots.map((slot) => s.producer.reschedule(key(slot), { scheduledAt: iso(newTime) })));
    expect(answers.every((a) => a.status === 'rescheduled')).toBe(true);
    await waitUntil(
      async () => {
        const rs = await s.ledger.getMany(slots.map((slot) => keyId(key(slot))));
        return rs.every((r) => r?.state === 'sent');
      },
      'every key moved earlier to go out',
      30_000,
    );
    const lateness = slots.map((_, i) => onX(s, `sooner ${i}`)[0]!.createdAt - newTime);
    expect(Math.min(...lateness)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...lateness), 'latest post after its new time (ms)').toBeLessThan(1_000);
  }, 60_000);
});

describe('a cancel while an attempt is in doubt waits for it', () => {
  it('the post had reached X: the key ends sent with that id', async () => {
    const clock = testClock();
    stack = await startStack({ clock: clock.now, timeoutMs: 300, settleWindowMs: SETTLE });
    const s = stack;
    s.fake.injectNext('commit-then-hang');
    await s.producer.enqueue(post('doubt-live', 'went out after all'));
    await waitUntil(async () => (await recordOf(s, 'doubt-live'))?.state === 'ambiguous', 'an ambiguous attempt');
    const answer = await s.producer.cancel(key('doubt-live'));
    expect(answer).toMatchObject({ status: 'cancelling', attempt: 1 });
    // Still cancelling: no new attempt may start, and a second cancel changes nothing.
    expect(await s.producer.cancel(key('doubt-live'))).toMatchObject({ status: 'cancelling' });
    clock.advance(SETTLE + 1);
    const report = await s.reconcile();
    expect(report.outcomes).toMatchObject({ sent: 1, released: 0 });
    const live = onX(s, 'went out after all');
    expect(live).toHaveLength(1);
    expect(await recordOf(s, 'doubt-live')).toMatchObject({ state: 'sent', tweetId: live[0]!.id, attempt: 1 });
    expect(await s.producer.cancel(key('doubt-live'))).toEqual({ status: 'already-sent', key: key('doubt-live'), tweetId: live[0]!.id });
  });

  it('the post had not reached X: the key ends cancelled and no new attempt is made', async () => {
    const clock = testClock();
    stack = await startStack({ clock: clock.now, timeoutMs: 300, settleWindowMs: SETTLE });
    const s = stack;
    s.fake.injectNext('hang-before-commit');
    await s.producer.enqueue(post('doubt-lost', 'never went out'));
    await waitUntil(async () => (await recordOf(s, 'doubt-lost'))?.state === 'ambiguous', 'an ambiguous attempt');
    expect(await s.producer.cancel(key('doubt-lost'), { reason: 'client changed their mind' })).toMatchObject({ status: 'cancelling' });
    clock.advance(SETTLE + 1);
    const report = await s.reconcile();
    expect(report.outcomes).toMatchObject({ cancelled: 1, released: 0, sent: 0 });
    const r = await recordOf(s, 'doubt-lost');
    expect(r).toMatchObject({ state: 'cancelled', attempt: 1, cancel: { reason: 'client changed their mind' } });
    expect(await s.producer.queue.getJob(`${keyId(key('doubt-lost'))}.g2`)).toBeUndefined();
    expect(onX(s, 'never went out')).toHaveLength(0);
    const trail = await s.ledger.auditTrail(keyId(key('doubt-lost')));
    expect(trail.map((e) => e.event)).toEqual(['queued', 'claimed', 'x-answer', 'ambiguous', 'cancel-requested', 'reconciled', 'cancelled']);
    expect(await s.ledger.stats()).toMatchObject({ 'final:cancelled': 1, 'resolved:cancelled': 1 });
  });

  it('a cancel that lands while the worker is inside the X call: the result decides (a rejection ends cancelled, not failed)', async () => {
    // Hold the X call until the cancel is in.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const gated = (x: XPort): XPort =>
      overrideX(x, {
        createPost: async (a, p) => {
          await gate;
          return x.createPost(a, p);
        },
      });
    stack = await startStack({ timeoutMs: 2_000, fake: { replyRestriction: true }, wrapX: gated });
    const s = stack;
    await s.producer.enqueue(post('inside', 'a restricted reply', { kind: 'reply', inReplyToTweetId: '1234567890' }));
    await waitUntil(async () => (await recordOf(s, 'inside'))?.state === 'claimed', 'the claim');
    expect(await s.producer.cancel(key('inside'))).toMatchObject({ status: 'cancelling', attempt: 1 });
    release();
    const r = await waitUntil(async () => {
      const rec = await recordOf(s, 'inside');
      return rec && isFinal(rec.state) ? rec : undefined;
    }, 'the attempt to settle');
    expect(r.state).toBe('cancelled');
    expect(onX(s, 'a restricted reply')).toHaveLength(0);
    const trail = await s.ledger.auditTrail(keyId(key('inside')));
    // The rejection never became the key's state: the cancelled entry tells it, and the events hold one 'cancelled'.
    expect(trail.map((e) => e.event)).toEqual(['queued', 'claimed', 'cancel-requested', 'x-answer', 'cancelled']);
    expect(trail.at(-1)).toMatchObject({ event: 'cancelled', after: expect.stringMatching(/^rejected: /) });
  });
});

describe('lifecycle answers by state', () => {
  it('refuses what cannot change, with the state, and names fields of bad input', async () => {
    stack = await startStack();
    const s = stack;
    await s.producer.enqueue(post('gone', 'will be sent'));
    const sent = await waitUntil(async () => {
      const r = await recordOf(s, 'gone');
      return r?.state === 'sent' ? r : undefined;
    }, 'the post to go out');
    expect(await s.producer.edit(key('gone'), { text: 'too late' })).toEqual({ status: 'already-sent', key: key('gone'), tweetId: sent.tweetId });
    expect(await s.producer.reschedule(key('gone'), { scheduledAt: new Date(Date.now() + 60_000) })).toMatchObject({ status: 'already-sent' });
    expect(await s.producer.cancel(key('nope'))).toEqual({ status: 'not-found', key: key('nope') });
    expect(await s.producer.edit(key('nope'), { text: 'x' })).toEqual({ status: 'not-found', key: key('nope') });

    const later = iso(Date.now() + 3_600_000);
    await s.producer.enqueue(post('cal', 'typo hre', { scheduledAt: later }));
    await expect(s.producer.edit(key('cal'), { text: 'x'.repeat(281) })).rejects.toThrow(InvalidRequestError);
    await expect(s.producer.edit(key('cal'), { text: 'x'.repeat(281) })).rejects.toThrow(/text: is 281 weighted characters/);
    await expect(s.producer.reschedule(key('cal'), { scheduledAt: later, deadline: iso(Date.now() - 1_000) })).rejects.toThrow(/deadline: is in the past/);
    await expect(s.producer.reschedule(key('cal'), { scheduledAt: 'tomorrow' })).rejects.toThrow(/scheduledAt: must be an ISO-8601/);
    expect((await recordOf(s, 'cal'))?.text).toBe('typo hre');

    expect(await s.producer.edit(key('cal'), { text: 'typo here' })).toMatchObject({ status: 'edited' });
    // The edited payload is the key's payload now: the old one conflicts, the new one is a duplicate.
    const [old] = await s.producer.enqueueMany([post('cal', 'typo hre', { scheduledAt: later })]);
    expect(old?.status).toBe('conflict');
    const [fresh] = await s.producer.enqueueMany([post('cal', 'typo here', { scheduledAt: later })]);
    expect(fresh).toMatchObject({ status: 'duplicate', state: 'queued' });
    const trail = await s.ledger.auditTrail(keyId(key('cal')));
    expect(trail.at(-1)).toMatchObject({ event: 'edited' });

    expect(await s.producer.cancel(key('cal'), { reason: 'pulled' })).toEqual({ status: 'cancelled', key: key('cal') });
    expect(await s.producer.cancel(key('cal'))).toMatchObject({ status: 'final', state: 'cancelled' });
    expect(await s.producer.edit(key('cal'), { text: 'again' })).toMatchObject({ status: 'final', state: 'cancelled' });
    const [again] = await s.producer.enqueueMany([post('cal', 'typo here', { scheduledAt: later })]);
    expect(again?.status).toBe('cancelled');
    expect(await s.producer.queue.getJob(keyId(key('cal')))).toBeUndefined();
  });

  it("an edit changes a queued post's poll, quote and reply settings (null removes one); X gets the edited body only", async () => {
    stack = await startStack();
    const s = stack;
    await s.producer.enqueue({ slotId: 'root', postId: 'p1', accountId: 'globex', kind: 'post', text: 'worth quoting' });
    const root = (await waitUntil(async () => ((await recordOf(s, 'root'))?.state === 'sent' ? recordOf(s, 'root') : undefined), 'the root post'))!.tweetId!;
    const later = iso(Date.now() + 3_600_000);
    await s.producer.enqueueMany([
      post('polled', 'tabs or spaces?', { scheduledAt: later, poll: { options: ['tabs', 'spaces'], durationMinutes: 60 } }),
      post('quoting', 'so true', { scheduledAt: later, quoteTweetId: root, replySettings: 'verified' }),
    ]);
    const newPoll = { options: ['tabs', 'spaces', 'both'], durationMinutes: 1_440 };
    expect(await s.producer.edit(key('polled'), { poll: newPoll, replySettings: 'following' })).toMatchObject({ status: 'edited' });
    expect(await s.producer.edit(key('quoting'), { quoteTweetId: null, replySettings: null, text: 'so true, unquoted' })).toMatchObject({ status: 'edited' });
    await expect(s.producer.edit(key('polled'), { quoteTweetId: root })).rejects.toThrow(/poll: cannot be combined with quoteTweetId/);
    expect(await recordOf(s, 'quoting')).not.toHaveProperty('quoteTweetId');

    for (const slot of ['polled', 'quoting']) await s.producer.reschedule(key(slot), { scheduledAt: new Date() });
    for (const slot of ['polled', 'quoting']) await waitUntil(async () => (await recordOf(s, slot))?.state === 'sent', `${slot} to go out`);
    const created = s.fake.created();
    expect(created.filter((c) => c.text === 'tabs or spaces?')).toEqual([expect.objectContaining({ poll: newPoll, replySettings: 'following' })]);
    const unquoted = created.filter((c) => c.text.startsWith('so true'));
    expect(unquoted).toHaveLength(1);
    expect(unquoted[0]).toMatchObject({ text: 'so true, unquoted' });
    expect(unquoted[0]).not.toHaveProperty('quoteTweetId');
    expect(unquoted[0]).not.toHaveProperty('replySettings');
  });

  it('a reschedule into the past means now', async () => {
    stack = await startStack();
    const s = stack;
    await s.producer.enqueue(post('now', 'move me up', { scheduledAt: iso(Date.now() + 3_600_000) }));
    const answer = await s.producer.reschedule(key('now'), { scheduledAt: iso(Date.now() - 60_000) });
    expect(answer.status).toBe('rescheduled');
    const r = await waitUntil(async () => {
      const rec = await recordOf(s, 'now');
      return rec?.state === 'sent' ? rec : undefined;
    }, 'the post to go out now');
    expect(onX(s, 'move me up').map((c) => c.id)).toEqual([r.tweetId]);
  });

  it('cancels every not-yet-final key of an account in a time range', async () => {
    stack = await startStack();
    const s = stack;
    const t = Date.now() + 3_600_000;
    await s.producer.enqueueMany([
      ...Array.from({ length: 10 }, (_, i) => post(`acme-${i}`, `acme ${i}`, { scheduledAt: iso(t + i * 60_000) })),
      post('globex-0', 'globex 0', { accountId: 'globex', scheduledAt: iso(t) }),
    ]);
    const inRange = await s.producer.cancelAccount('acme', { from: iso(t + 5 * 60_000) });
    expect(inRange).toEqual({ accountId: 'acme', cancelled: 5, cancelling: 0, final: 0 });
    const all = await s.producer.cancelAccount('acme');
    expect(all).toEqual({ accountId: 'acme', cancelled: 5, cancelling: 0, final: 5 });
    expect((await recordOf(s, 'globex-0'))?.state).toBe('queued');
  });
});
