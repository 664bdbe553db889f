/**
 * Outcome events: one per transition a user cares about, written by the
 * script that makes the transition (never an event without its transition,
 * nor the reverse), read with a resumable cursor.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { keyId, type PostKey } from '../src/domain/key.js';
import { isFinal } from '../src/domain/state.js';
import type { OutcomeEvent } from '../src/ledger/ledger.js';
import { transitionsOf } from '../src/ops/ground-truth.js';
import { post, SECRETS, type Stack, startStack, testClock, waitUntil } from './harness.js';
import { monitorRedis } from './support/monitor.js';

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

const SETTLE = 3_000;

const key = (slotId: string): PostKey => ({ slotId, postId: 'p1' });

async function allEvents(s: Stack): Promise<OutcomeEvent[]> {
  const out: OutcomeEvent[] = [];
  for (let from = '0'; ;) {
    const batch = await s.ledger.readEvents(from, 100);
    if (batch.length === 0) return out;
    out.push(...batch);
    from = batch.at(-1)!.id;
  }
}

describe('outcome events', () => {
  it('every transition of every key writes exactly one event, in the order of its audit trail', async () => {
    const clock = testClock();
    stack = await startStack({ clock: clock.now, timeoutMs: 300, settleWindowMs: SETTLE, fake: { replyRestriction: true } });
    const s = stack;
    const later = new Date(Date.now() + 3_600_000).toISOString();
    // Every XADD to the events stream, and where Redis ran it from: a
    // transition and its event are one script, so each must come from Lua.
    const xadds: string[] = [];
    const monitor = await monitorRedis((source, command, key) => {
      if (command.toLowerCase() === 'xadd' && key === s.ledger.keys.events) xadds.push(source);
    });
    s.fake.injectNext('commit-then-hang', { text: 'went out, answer lost' });
    s.fake.injectNext('hang-before-commit', { text: 'lost, then sent' });
    await s.producer.enqueueMany([
      post('plain', 'a plain post'),
      post('doubt', 'went out, answer lost'),
      post('retry', 'lost, then sent'),
      post('refused', 'a reply nobody asked for', { kind: 'reply', inReplyToTweetId: '1234567890' }),
      post('pulled', 'pulled by the client', { scheduledAt: later }),
      post('fixed', 'a typo hre', { scheduledAt: later }),
      { slotId: 'story', postId: 'p1', accountId: 'acme', kind: 'thread', parts: [{ text: 'story 1/2' }, { text: 'story 2/2' }] },
    ]);
    await s.producer.cancel(key('pulled'), { reason: 'client pulled it' });
    await s.producer.edit(key('fixed'), { text: 'a typo here' });
    await s.producer.reschedule(key('fixed'), { scheduledAt: new Date(Date.now() - 1_000) });
    const slots = ['plain', 'doubt', 'retry', 'refused', 'pulled', 'fixed', 'story'];
    await waitUntil(async () => {
      const rs = await s.ledger.getMany(slots.map((slot) => keyId(key(slot))));
      if (rs.every((r) => r && isFinal(r.state))) return true;
      if (rs.some((r) => r?.state === 'ambiguous')) {
        clock.advance(SETTLE + 1);
        await s.reconcile();
      }
      return false;
    }, 'every key to be final');

    const events = await allEvents(s);
    await waitUntil(() => xadds.length >= events.length, 'MONITOR to report every XADD');
    monitor.destroy();
    expect(xadds).toHaveLength(events.length);
    expect(xadds.filter((source) => source !== 'lua')).toEqual([]);
    for (const slot of slots) {
      const id = keyId(key(slot));
      const t = transitionsOf(
        await s.ledger.auditTrail(id),
        events.filter((e) => e.key === id),
      );
      expect(t.events, slot).toEqual(t.trail);
    }
    const of = (slot: string) => events.filter((e) => e.key === keyId(key(slot)));
    const live = (text: string) => s.fake.created().find((c) => c.text === text)!.id;
    expect(of('plain').map((e) => e.type)).toEqual(['queued', 'sent']);
    expect(of('plain')[1]).toMatchObject({ slotId: 'plain', postId: 'p1', account: 'acme', state: 'sent', attempt: '1', tweetId: live('a plain post') });
    expect(of('doubt').map((e) => e.type)).toEqual(['queued', 'ambiguous', 'sent']);
    expect(of('retry').map((e) => e.type)).toEqual(['queued', 'ambiguous', 'released', 'sent']);
    expect(of('refused').map((e) => e.type)).toEqual(['queued', 'failed']);
    expect(of('refused')[1]).toMatchObject({ reason: 'rejected' });
    expect(of('pulled').map((e) => e.type)).toEqual(['queued', 'cancelled']);
    expect(of('pulled')[1]).toMatchObject({ reason: 'client pulled it', state: 'cancelled' });
    expect(of('fixed').map((e) => e.type)).toEqual(['queued', 'edited', 'rescheduled', 'sent']);
    expect(of('story').map((e) => e.type)).toEqual(['queued', 'part-sent', 'sent']);
    // No credentials, and no text: the producer's text stays in the ledger.
    const raw = JSON.stringify(events);
    for (const secret of Object.values(SECRETS)) expect(raw).not.toContain(secret);
    expect(raw).not.toContain('a plain post');
  });

  it('account standing: paused and resumed once each, rate-limited with its reset', async () => {
    stack = await startStack({ startWorkers: false });
    const s = stack;
    await s.ledger.pauseAccount('acme', 'X refused the account');
    await s.ledger.pauseAccount('acme', 'X refused the account');
    expect(await s.ledger.resumeAccount('acme')).toBe(true);
    expect(await s.ledger.resumeAccount('acme')).toBe(false);
    const until = Date.now() + 60_000;
    await s.ledger.blockAccount('globex', until, Date.now());
    const events = await allEvents(s);
    expect(events.map((e) => [e.type, e.account])).toEqual([
      ['account-paused', 'acme'],
      ['account-resumed', 'acme'],
      ['rate-limited', 'globex'],
    ]);
    expect(events[0]).toMatchObject({ reason: 'X refused the account' });
    expect(events[2]).toMatchObject({ until: String(until) });
  });

  it('producer.events() follows the stream live and resumes from its cursor', async () => {
    stack = await startStack();
    const s = stack;
    const seen: OutcomeEvent[] = [];
    const controller = new AbortController();
    const reading = (async () => {
      for await (const e of s.producer.events({ blockMs: 200, signal: controller.signal })) {
        seen.push(e);
        if (seen.filter((x) => x.type === 'sent').length === 2) break;
      }
    })();
    await s.producer.enqueueMany([post('one', 'first'), post('two', 'second')]);
    await reading;
    expect(seen.map((e) => e.type).sort()).toEqual(['queued', 'queued', 'sent', 'sent']);
    // Resume after the first event: the other three, none twice.
    const resumed: OutcomeEvent[] = [];
    for await (const e of s.producer.events({ from: seen[0]!.id, blockMs: 100 })) {
      resumed.push(e);
      if (resumed.length === 3) break;
    }
    expect(resumed.map((e) => e.id)).toEqual(seen.slice(1).map((e) => e.id));
    controller.abort();
  });

  it('the stream keeps events for the retention only', async () => {
    stack = await startStack({ startWorkers: false });
    const s = stack;
    // An entry from long ago (stream ids are times): older than the retention, trimmed by the next write.
    await s.redis.xadd(s.ledger.keys.events, '1000-0', 'type', 'ancient');
    await s.ledger.pauseAccount('acme', 'old news');
    await s.ledger.resumeAccount('acme');
    const types = (await allEvents(s)).map((e) => e.type);
    expect(types).toEqual(['account-paused', 'account-resumed']);
  });
});
