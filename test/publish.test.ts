import { afterEach, describe, expect, it } from 'vitest';
import { keyId } from '../src/domain/key.js';
import { createProducer, openApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { memoryCredentialStore } from '../src/x/credentials.js';
import { PayloadConflictError } from '../src/queue/producer.js';
import { hashTagged, QUEUE_NAMES } from '../src/ledger/keys.js';
import { monitorRedis } from './support/monitor.js';
import { ACCOUNTS, newRedis, post, REDIS_URL, type Stack, startStack, waitUntil } from './harness.js';
import { overrideX } from './support/x.js';

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

const recordOf = (s: Stack, slotId: string, postId = 'p1') => s.ledger.get(keyId({ slotId, postId }));
const settled = (s: Stack, slotId: string, postId = 'p1') =>
  waitUntil(async () => {
    const r = await recordOf(s, slotId, postId);
    return r && (r.state === 'sent' || r.state === 'failed' || r.state === 'ambiguous') ? r : undefined;
  }, `${slotId}/${postId} to settle`);

describe('publish pipeline (real Redis, real twitter-api-v2, fake X)', () => {
  it('publishes a post, a reply and a DM once each and records X ids', async () => {
    stack = await startStack();
    const s = stack;
    const r1 = await s.producer.enqueue(post('s-post', 'hello & <world> https://example.com/a'));
    expect(r1.status).toBe('queued');
    const first = await settled(s, 's-post');
    await s.producer.enqueue({ slotId: 's-reply', postId: 'p1', accountId: 'globex', kind: 'reply', text: 'a reply', inReplyToTweetId: first.tweetId });
    await s.producer.enqueue({ slotId: 's-dm', postId: 'p1', accountId: 'acme', kind: 'dm', text: 'psst', recipientId: '2001' });
    const reply = await settled(s, 's-reply');
    const dm = await settled(s, 's-dm');

    expect([first.state, reply.state, dm.state]).toEqual(['sent', 'sent', 'sent']);
    const created = s.fake.created();
    expect(created.map((c) => [c.kind, c.id, c.text])).toEqual([
      ['post', first.tweetId, 'hello & <world> https://example.com/a'],
      ['post', reply.tweetId, 'a reply'],
      ['dm', dm.tweetId, 'psst'],
    ]);
    expect(created[1]!.inReplyToTweetId).toBe(first.tweetId);
    expect(created[2]!.recipientId).toBe('2001');
    expect(first.attempt).toBe(1);
    const trail = await s.ledger.auditTrail(keyId({ slotId: 's-post', postId: 'p1' }));
    expect(trail.map((e) => e.event)).toEqual(['queued', 'claimed', 'x-answer', 'sent']);
    const stats = await s.ledger.stats();
    expect(stats).toMatchObject({ 'final:sent': 3, 'attempts:sent': 3, latency_count: 3 });
    expect(
      Object.entries(stats)
        .filter(([k]) => k.startsWith('latency_bucket:'))
        .reduce((n, [, v]) => n + v, 0),
    ).toBe(3);
  });

  it('the same key enqueued 100 times by concurrent producers, and again after its job is gone, posts once', async () => {
    stack = await startStack();
    const s = stack;
    const producers = Array.from({ length: 4 }, () => newRedis());
    const ps = producers.map((c) => createProducer({ connection: c, prefix: s.prefix }));
    const req = post('race', 'only once please');
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => ps[i % 4]!.enqueue(req)));
    expect(results.filter((r) => r.status === 'queued')).toHaveLength(1);
    expect(results.every((r) => ['queued', 'duplicate', 'sent'].includes(r.status))).toBe(true);

    const rec = await settled(s, 'race');
    expect(rec.state).toBe('sent');
    // BullMQ's dedupe ends with the job; the ledger's does not.
    const job = await s.producer.queue.getJob(keyId({ slotId: 'race', postId: 'p1' }));
    await waitUntil(async () => (await job?.getState()) === 'completed', 'job completed');
    await job!.remove();
    expect(await s.producer.queue.getJob(keyId({ slotId: 'race', postId: 'p1' }))).toBeUndefined();
    const again = await Promise.all(Array.from({ length: 10 }, () => ps[0]!.enqueue(req)));
    expect(again.every((r) => r.status === 'sent' && r.tweetId === rec.tweetId)).toBe(true);
    expect(await s.producer.queue.getJob(keyId({ slotId: 'race', postId: 'p1' }))).toBeUndefined();

    expect(s.fake.created().filter((c) => c.text === 'only once please')).toHaveLength(1);
    await Promise.all(ps.map((p) => p.close()));
    await Promise.all(producers.map((c) => c.quit()));
  });

  it('20 workers racing on the same keys (duplicate jobs per key) make one X call per key', async () => {
    let calls = 0;
    stack = await startStack({
      workers: 20,
      concurrency: 4,
      wrapX: (x) =>
        overrideX(x, {
          createPost: (a, p) => {
            calls++;
            return x.createPost(a, p);
          },
        }),
    });
    const s = stack;
    const keys = Array.from({ length: 30 }, (_, i) => `slot-${i}`);
    await s.producer.enqueueMany(keys.map((k) => post(k, `text of ${k}`)));
    // Extra jobs for the same keys, as a stale retry or an operator's re-run would add.
    await s.producer.queue.addBulk(
      keys.flatMap((k) =>
        [1, 2, 3].map((g) => ({
          name: 'post',
          data: { keyId: keyId({ slotId: k, postId: 'p1' }), slotId: k, postId: 'p1', accountId: 'acme', kind: 'post' as const, text: '', scheduledAt: '' },
          opts: { jobId: `${keyId({ slotId: k, postId: 'p1' })}.g${g}` },
        })),
      ),
    );
    await waitUntil(async () => (await s.producer.queue.getJobCounts('completed')).completed === keys.length * 4, 'all jobs done');
    for (const k of keys) expect((await recordOf(s, k))!.state).toBe('sent');
    expect(calls).toBe(keys.length);
    expect(s.fake.requests().filter((r) => r.method === 'POST')).toHaveLength(keys.length);
    expect(new Set(s.fake.created().map((c) => c.text)).size).toBe(keys.length);
  });

  it('same key with a different payload is a conflict error; nothing else is published', async () => {
    stack = await startStack();
    const s = stack;
    await s.producer.enqueue(post('c1', 'original'));
    await expect(s.producer.enqueue(post('c1', 'changed'))).rejects.toBeInstanceOf(PayloadConflictError);
    const [res] = await s.producer.enqueueMany([post('c1', 'original', { accountId: 'globex' })]);
    expect(res).toMatchObject({ status: 'conflict' });
    await settled(s, 'c1');
    expect(s.fake.created().map((c) => c.text)).toEqual(['original']);
  });

  it('one enqueueMany of 450 requests (several batches on the wire at once): a key repeated in a later batch is a duplicate or a conflict, answers keep their order, each key posts once', async () => {
    stack = await startStack({ concurrency: 20 });
    const s = stack;
    const reqs: ReturnType<typeof post>[] = Array.from({ length: 450 }, (_, i) => post(`many-${i}`, `post ${i}`));
    // Later batches repeat early keys: the same payload (a duplicate) and another one (a conflict).
    reqs[300] = post('many-3', 'post 3');
    reqs[420] = post('many-5', 'not post 5');
    // Ledger first: MONITOR shows, per key, its record written before its job (BullMQ's job hash).
    const p = hashTagged(s.prefix);
    const firstWrite = new Map<string, number>();
    let seen = 0;
    const monitor = await monitorRedis((source, command, key) => {
      seen++;
      if (source === 'lua' && key?.startsWith(`${p}:`) && !firstWrite.has(key) && (command === 'SET' || command === 'HMSET' || command === 'HSET'))
        firstWrite.set(key, seen);
    });
    const results = await s.producer.enqueueMany(reqs);
    expect(results).toHaveLength(450);
    results.forEach((r, i) => {
      if (i !== 300 && i !== 420) expect(r).toMatchObject({ status: 'queued', key: { slotId: `many-${i}` } });
    });
    expect(results[300]).toMatchObject({ status: 'duplicate', key: { slotId: 'many-3' } });
    expect(results[420]).toMatchObject({ status: 'conflict', key: { slotId: 'many-5' } });
    const jobKey = (i: number) => `${p}:${QUEUE_NAMES.publish}:${keyId({ slotId: `many-${i}`, postId: 'p1' })}`;
    await waitUntil(
      () => Array.from({ length: 450 }, (_, i) => i).every((i) => i === 300 || i === 420 || firstWrite.has(jobKey(i))),
      'MONITOR to report every job',
    );
    monitor.destroy();
    for (let i = 0; i < 450; i++) {
      if (i === 300 || i === 420) continue;
      const record = firstWrite.get(s.ledger.keys.record(keyId({ slotId: `many-${i}`, postId: 'p1' })));
      expect(record, `many-${i}: its record is written`).toBeDefined();
      expect(record!, `many-${i}: record before job`).toBeLessThan(firstWrite.get(jobKey(i))!);
    }
    await waitUntil(async () => (await s.producer.queue.getJobCounts('completed')).completed === 448, 'all 448 jobs done', 60_000);
    const texts = s.fake.created().map((c) => c.text);
    expect(texts).toHaveLength(448);
    expect(new Set(texts).size).toBe(448);
    expect(texts).toContain('post 5');
    expect(texts).not.toContain('not post 5');
    // Every job found its record: none failed as "no ledger record".
    expect((await s.producer.queue.getJobCounts('failed')).failed).toBe(0);
  });

  it('bad requests get per-field errors; good ones in the same batch go through', async () => {
    stack = await startStack();
    const s = stack;
    const results = await s.producer.enqueueMany([
      post('good-1', 'fine'),
      { slotId: 'bad-1', postId: 'p1', accountId: 'acme', kind: 'post' },
      post('bad-2', 'x'.repeat(281)),
      post('bad-3', 'y', { scheduledAt: 'next tuesday' }),
      post('bad-4', 'z', { kind: 'tweet' }),
      post('bad-5', 'z', { accountId: 'nobody' }),
      'not an object',
      post('good-2', 'also fine'),
    ]);
    expect(results.map((r) => r.status)).toEqual(['queued', 'invalid', 'invalid', 'invalid', 'invalid', 'invalid', 'invalid', 'queued']);
    const fields = results.map((r) => (r.status === 'invalid' ? r.errors.map((e) => e.field).join(',') : ''));
    expect(fields).toEqual(['', 'text', 'text', 'scheduledAt', 'kind', 'accountId', '(request)', '']);
    await settled(s, 'good-1');
    await settled(s, 'good-2');
    expect(
      s.fake
        .created()
        .map((c) => c.text)
        .sort(),
    ).toEqual(['also fine', 'fine']);
    for (const bad of ['bad-1', 'bad-2', 'bad-3']) expect(await recordOf(s, bad)).toBeUndefined();
  });

  it("a long post within its account's limits.textLength (credential store, wired by openApp) is accepted and reaches X whole; over it, or on a 280 account, refused", async () => {
    stack = await startStack({ xTextLength: { acme: 1_000 } });
    const s = stack;
    const credentials = memoryCredentialStore(ACCOUNTS.map((a) => (a.id === 'acme' ? { ...a, limits: { textLength: 1_000 } } : a)));
    const app = await openApp(loadConfig({ REDIS_URL, XACTLY_PREFIX: s.prefix }), s.logger, { redis: s.redis, credentials });
    try {
      const long = `${'word '.repeat(199)}end`; // 998 weighted characters
      const results = await app
        .producer()
        .enqueueMany([post('long-ok', long), post('long-over', `${long} and more`), post('long-globex', long, { accountId: 'globex' })]);
      expect(results.map((r) => r.status)).toEqual(['queued', 'invalid', 'invalid']);
      const reasons = results.map((r) => (r.status === 'invalid' ? r.errors.map((e) => `${e.field}: ${e.reason}`).join() : ''));
      expect(reasons[1]).toContain('text: is 1007 weighted characters; the account allows 1000 (limits.textLength)');
      expect(reasons[2]).toContain('text: is 998 weighted characters; X allows 280');
      expect((await settled(s, 'long-ok')).state).toBe('sent');
      expect(s.fake.created().map((c) => c.text)).toEqual([long]);
      const [shown] = (await s.x.timeline('acme', {})).items;
      expect(shown).toMatchObject({ noteText: long });
      expect(Array.from(shown!.text).length).toBeLessThanOrEqual(280);
    } finally {
      await app.close();
    }
  });

  it('an accounts file that claims a long-post limit X does not grant: X refuses the post (400), the key fails rejected after one attempt, nothing is retried', async () => {
    // The accounts file says 1,000; on X the account has no Premium (280).
    stack = await startStack({ limits: { acme: { textLength: 1_000 } }, xTextLength: { acme: 280 } });
    const s = stack;
    const long = `${'word '.repeat(99)}end`; // 498 weighted characters
    expect((await s.producer.enqueue(post('long', long))).status).toBe('queued');
    await s.producer.enqueue(post('short', 'still fine'));
    const r = await settled(s, 'long');
    expect(r).toMatchObject({ state: 'failed', reason: 'rejected', attempt: 1 });
    expect(r.detail).toMatch(/too long/i);
    expect((await settled(s, 'short')).state).toBe('sent');
    expect(s.fake.created().map((c) => c.text)).toEqual(['still fine']);
    const creates = s.fake.requests().filter((q) => q.method === 'POST' && q.path === '/2/tweets');
    expect(creates.map((q) => q.status).sort()).toEqual([201, 400]);
  });

  it('never publishes before scheduledAt: a future post waits as a delayed job', async () => {
    stack = await startStack();
    const s = stack;
    const at = Date.now() + 1_500;
    await s.producer.enqueue(post('later', 'not yet', { scheduledAt: new Date(at).toISOString() }));
    const job = await s.producer.queue.getJob(keyId({ slotId: 'later', postId: 'p1' }));
    expect(await job!.getState()).toBe('delayed');
    const rec = await settled(s, 'later');
    expect(rec.state).toBe('sent');
    expect(s.fake.created()[0]!.createdAt).toBeGreaterThanOrEqual(at);
  });

  it('a deadline already passed fails as expired without calling X', async () => {
    stack = await startStack();
    const s = stack;
    const past = Date.now() - 60_000;
    const r = await s.producer.enqueue(
      post('too-late', 'old news', { scheduledAt: new Date(past - 1000).toISOString(), deadline: new Date(past).toISOString() }),
    );
    expect(r.status).toBe('queued');
    const rec = await settled(s, 'too-late');
    expect(rec).toMatchObject({ state: 'failed', reason: 'expired', attempt: 0 });
    expect(s.fake.requests()).toHaveLength(0);
    const again = await s.producer.enqueue(
      post('too-late', 'old news', { scheduledAt: new Date(past - 1000).toISOString(), deadline: new Date(past).toISOString() }),
    );
    expect(again).toMatchObject({ status: 'failed', reason: 'expired' });
  });
});
