/**
 * The ledger's group commit (src/ledger/batch.ts): the claims, and the
 * settles, made in one turn of the event loop share one call; each still
 * gets its own decision, fenced as alone, and a call whose script fails
 * fails alone. On a redis-server of the test's own, so that INFO
 * commandstats counts this test's calls and nobody else's.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProducer, openLedger } from '../src/app.js';
import { keyId } from '../src/domain/key.js';
import type { Ledger } from '../src/ledger/ledger.js';
import { post } from './harness.js';
import { type RedisServer, startRedisServer, uniquePrefix } from './support/redis.js';

let server: RedisServer;
let redis: Redis;
beforeAll(async () => {
  server = await startRedisServer();
  redis = new Redis(server.url, { maxRetriesPerRequest: null });
});
afterAll(async () => {
  redis.disconnect();
  await server.stop();
});

/** Script calls the server has run so far (EVALSHA, and EVAL when a script was not loaded yet). */
async function scriptCalls(): Promise<number> {
  const info = await redis.info('commandstats');
  const calls = (cmd: string) => Number(new RegExp(`cmdstat_${cmd}:calls=(\\d+)`).exec(info)?.[1] ?? 0);
  return calls('evalsha') + calls('eval');
}

const key = (slotId: string) => keyId({ slotId, postId: 'p1' });

/**
 * A ledger with `n` keys queued and due now. Its scripts are loaded first
 * (a claim and a settle alone, two of each together, on keys of their own),
 * so that what the test counts is only its own calls, never a NOSCRIPT retry.
 */
async function ledgerWith(n: number, label: string): Promise<{ ledger: Ledger; slots: string[]; now: number }> {
  const prefix = uniquePrefix(label);
  const producer = createProducer({ connection: redis, prefix });
  const slots = Array.from({ length: n }, (_, i) => `${label}-${i}`);
  const results = await producer.enqueueMany([...slots, 'warm-a', 'warm-b', 'warm-c'].map((s) => post(s, `${s} text`)));
  expect(results.every((r) => r.status === 'queued')).toBe(true);
  const ledger = openLedger(redis, { prefix });
  const now = Date.now();
  await claimOf(ledger, 'warm-a', now);
  await Promise.all([claimOf(ledger, 'warm-b', now), claimOf(ledger, 'warm-c', now)]);
  const sent = (slotId: string) => ledger.settle(key(slotId), 1, { to: 'sent', tweetId: '1' }, now, [], { fields: [] });
  await sent('warm-a');
  await Promise.all([sent('warm-b'), sent('warm-c')]);
  await producer.close();
  return { ledger, slots, now };
}

const claimOf = (ledger: Ledger, slotId: string, now: number) =>
  ledger.claim({ keyId: key(slotId), jobId: key(slotId), leaseMs: 30_000, now, accountId: 'acme' });

describe('group commit of claims and settles', () => {
  it('150 claims made in one turn go out as 3 calls (at most 64 each); each key gets its own verdict, record and attempt', async () => {
    const { ledger, slots, now } = await ledgerWith(150, 'claims');
    const before = await scriptCalls();
    // The second key twice, one after the other in the first call: the later claim finds it held.
    const order = [slots[0]!, slots[1]!, slots[1]!, ...slots.slice(2)];
    const claims = await Promise.all(order.map((s) => claimOf(ledger, s, now)));
    expect((await scriptCalls()) - before).toBe(3);
    expect(claims[2]).toMatchObject({ verdict: 'held', record: { slotId: slots[1], attempt: 1 } });
    claims
      .filter((_, i) => i !== 2)
      .forEach((c, i) => {
        expect(c.verdict).toBe('claimed');
        expect(c.verdict !== 'missing' && c.record).toMatchObject({ slotId: slots[i], state: 'claimed', attempt: 1, jobId: key(slots[i]!) });
      });
    expect(ledger.batchCounts().xactlyClaim).toEqual({ plain: 1, batches: 4, batched: 153 });

    // A claim alone goes out as the plain script, in one call.
    const late = await ledgerWith(1, 'alone');
    const beforeAlone = await scriptCalls();
    expect(await claimOf(late.ledger, late.slots[0]!, late.now)).toMatchObject({ verdict: 'claimed' });
    expect((await scriptCalls()) - beforeAlone).toBe(1);
    expect(late.ledger.batchCounts().xactlyClaim).toEqual({ plain: 2, batches: 1, batched: 2 });
  });

  it('a claim whose script fails (a record that is not JSON) gets that error alone; the others of its batch are claimed', async () => {
    const { ledger, slots, now } = await ledgerWith(10, 'broken');
    await redis.set(ledger.keys.record(key(slots[4]!)), 'not json');
    const before = await scriptCalls();
    const claims = await Promise.allSettled(slots.map((s) => claimOf(ledger, s, now)));
    expect((await scriptCalls()) - before).toBe(1);
    // cjson's own error, as the claim alone would answer it.
    expect(claims[4]).toMatchObject({
      status: 'rejected',
      reason: expect.objectContaining({ message: expect.stringContaining('Expected value but found invalid token') }),
    });
    claims.forEach((c, i) => {
      if (i !== 4) expect(c).toMatchObject({ status: 'fulfilled', value: { verdict: 'claimed', record: { slotId: slots[i] } } });
    });
  });

  it('settles made in one turn share a call and are fenced each on its own: a stale attempt is refused, the rest are recorded', async () => {
    const { ledger, slots, now } = await ledgerWith(20, 'settles');
    await Promise.all(slots.map((s) => claimOf(ledger, s, now)));
    const before = await scriptCalls();
    const settled = await Promise.all(
      // Slot 7 settles with an attempt it does not hold (2; its claim made it 1).
      slots.map((s, i) => ledger.settle(key(s), i === 7 ? 2 : 1, { to: 'sent', tweetId: String(9000 + i) }, now + 10, [], { fields: ['final:sent'] })),
    );
    expect((await scriptCalls()) - before).toBe(1);
    settled.forEach((r, i) => expect(r).toEqual(i === 7 ? { verdict: 'stale', state: 'claimed', attempt: 1 } : { verdict: 'ok', state: 'sent', attempt: 1 }));
    const records = await Promise.all(slots.map((s) => ledger.get(key(s))));
    records.forEach((r, i) => expect(r).toMatchObject(i === 7 ? { state: 'claimed' } : { state: 'sent', tweetId: String(9000 + i) }));
    expect((await ledger.stats())['final:sent']).toBe(19);
  });
});
