import { afterEach, describe, expect, it } from 'vitest';
import { keyId } from '../src/domain/key.js';
import type { FaultKind } from '../src/fake-x/index.js';
import { openLedger } from '../src/app.js';
import type { XPort } from '../src/x/port.js';
import { newRedis, post, SECRETS, type Stack, startStack, waitUntil, dumpPrefix } from './harness.js';
import { overrideX } from './support/x.js';

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

const recordOf = (s: Stack, slotId: string) => s.ledger.get(keyId({ slotId, postId: 'p1' }));
const settled = (s: Stack, slotId: string, states = ['sent', 'failed', 'ambiguous']) =>
  waitUntil(
    async () => {
      const r = await recordOf(s, slotId);
      return r && states.includes(r.state) ? r : undefined;
    },
    `${slotId} to reach ${states.join('/')}`,
  );

describe('each fault X shows → the documented state, zero duplicates', () => {
  const ambiguous: [string, boolean, string][] = [
    ['hang-before-commit', false, 'timeout'],
    ['commit-then-hang', true, 'timeout'],
    ['commit-then-reset', true, 'econnreset'],
    ['reset-before-commit', false, 'econnreset'],
    ['5xx-with-commit', true, 'http-503'],
    ['5xx-without-commit', false, 'http-503'],
    ['truncated-201', true, 'deadline-375ms'],
    ['truncated-201 (plain body)', true, 'partial-response-201'],
  ];

  it.each(ambiguous)('%s → ambiguous (committed on X: %s), no retry', async (label, committed, cause) => {
    // X answers gzip: a cut compressed 201 never ends inside twitter-api-v2;
    // only the hard deadline gets the worker out. A plain cut body fails fast.
    const fault = label.split(' ')[0] as FaultKind;
    stack = await startStack({ timeoutMs: 300, ...(label.includes('plain') && { fake: { gzip: false } }) });
    const s = stack;
    s.fake.injectNext(fault);
    await s.producer.enqueue(post('f', `fault ${fault}`));
    const rec = await settled(s, 'f');
    expect(rec).toMatchObject({ state: 'ambiguous', attempt: 1, detail: cause });
    expect(s.fake.created()).toHaveLength(committed ? 1 : 0);
    // The job is done; reconciliation owns the key now. Nothing retried it.
    const job = await s.producer.queue.getJob(keyId({ slotId: 'f', postId: 'p1' }));
    await waitUntil(async () => (await job!.getState()) === 'completed', 'job completed');
    expect(job!.attemptsMade).toBeLessThanOrEqual(1);
    expect(s.fake.requests().filter((r) => r.method === 'POST')).toHaveLength(1);
    // Re-enqueueing an ambiguous key is a duplicate, not a second attempt.
    expect(await s.producer.enqueue(post('f', `fault ${fault}`))).toMatchObject({ status: 'duplicate', state: 'ambiguous' });
    expect((await recordOf(s, 'f'))!.attempt).toBe(1);
  });

  it('403 duplicate content → ambiguous (an earlier attempt probably went out)', async () => {
    stack = await startStack();
    const s = stack;
    await s.producer.enqueue(post('first', 'same words'));
    await settled(s, 'first');
    await s.producer.enqueue(post('second', 'same words'));
    const rec = await settled(s, 'second');
    expect(rec).toMatchObject({ state: 'ambiguous', detail: 'duplicate-content' });
    expect(s.fake.created()).toHaveLength(1);
  });

  it('429 → released and delayed until x-rate-limit-reset, then sent once', async () => {
    stack = await startStack({ fake: { rateLimitResetSec: 1 } });
    const s = stack;
    s.fake.injectNext('429');
    const before = Date.now();
    await s.producer.enqueue(post('rl', 'rate limited'));
    const rec = await settled(s, 'rl', ['sent', 'failed']);
    expect(rec).toMatchObject({ state: 'sent', attempt: 2 });
    expect(s.fake.created()).toHaveLength(1);
    // The retry waited for the reset second, not a blind backoff.
    expect(s.fake.created()[0]!.createdAt).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 + 1000);
    const trail = await s.ledger.auditTrail(keyId({ slotId: 'rl', postId: 'p1' }));
    expect(trail.map((e) => e.event)).toEqual(['queued', 'claimed', 'x-answer', 'released', 'claimed', 'x-answer', 'sent']);
  });

  it('X unreachable (ECONNREFUSED) → not sent, retried with backoff, then failed as expired at the deadline', async () => {
    stack = await startStack({ retry: { baseMs: 100, maxMs: 400 } });
    const s = stack;
    await s.fake.close(); // nothing listens on its port any more
    const deadline = Date.now() + 2_000;
    await s.producer.enqueue(post('down', 'nobody home', { deadline: new Date(deadline).toISOString() }));
    const rec = await settled(s, 'down', ['sent', 'failed']);
    expect(rec.state).toBe('failed');
    expect(rec.reason).toBe('expired');
    expect(rec.attempt).toBeGreaterThan(2);
    expect(rec.updatedAt).toBeGreaterThanOrEqual(deadline - 500);
    const trail = await s.ledger.auditTrail(keyId({ slotId: 'down', postId: 'p1' }));
    expect(trail.filter((e) => e.event === 'x-answer').every((e) => e.cause === 'econnrefused')).toBe(true);
  });

  it("a definitive 4xx → failed with X's reason, never retried", async () => {
    stack = await startStack();
    const s = stack;
    await s.producer.enqueue({ slotId: 'bad-reply', postId: 'p1', accountId: 'acme', kind: 'reply', text: 'to nothing', inReplyToTweetId: '999' });
    const rec = await settled(s, 'bad-reply');
    expect(rec).toMatchObject({ state: 'failed', reason: 'rejected', attempt: 1 });
    // X answers a reply to a missing post with a post-level 403, not a 400.
    expect(rec.detail).toBe('http-403: You attempted to reply to a Tweet that is deleted or not visible to you.');
    expect((await s.ledger.accountStatus(['acme'])).size).toBe(0);
    const job = await s.producer.queue.getJob(keyId({ slotId: 'bad-reply', postId: 'p1' }));
    await waitUntil(async () => (await job!.getState()) === 'failed', 'job failed');
    expect(s.fake.requests().filter((r) => r.method === 'POST')).toHaveLength(1);
  });

  it('an account the worker has no credentials for → failed invalid-account, no X call', async () => {
    stack = await startStack();
    const s = stack;
    // The producer does not know the worker's accounts here.
    const { createProducer } = await import('../src/app.js');
    const p = createProducer({ connection: s.redis, prefix: s.prefix });
    await p.enqueue(post('ghost', 'who am i', { accountId: 'ghost' }));
    const rec = await settled(s, 'ghost');
    expect(rec).toMatchObject({ state: 'failed', reason: 'invalid-account' });
    expect(s.fake.requests()).toHaveLength(0);
    await p.close();
  });
});

describe('crashes and zombies', () => {
  it('a worker that dies between claim and record: the re-run of its job does not call X', async () => {
    stack = await startStack({ startWorkers: false, timeoutMs: 20_000 });
    const s = stack;
    let calls = 0;
    const counting = (x: XPort): XPort =>
      overrideX(x, {
        createPost: (a, p) => {
          calls++;
          return x.createPost(a, p);
        },
      });
    s.fake.injectNext('commit-then-hang');
    const doomed = s.startWorker({ wrapX: counting, workerOptions: { lockDuration: 1_000, stalledInterval: 500 } });
    await s.producer.enqueue(post('zombie', 'posted then crashed'));
    await waitUntil(() => s.fake.created().length === 1 && calls === 1, 'first X call committed');
    expect(await s.stateOf('zombie', 'p1')).toBe('claimed');
    await doomed.close(true); // the process is gone; its X call never reports back

    const survivor = s.startWorker({ wrapX: counting, workerOptions: { lockDuration: 1_000, stalledInterval: 500 } });
    const done = await new Promise<unknown>((resolve) => survivor.on('completed', (_job, result) => resolve(result)));
    expect(done).toMatchObject({ outcome: 'skipped', state: 'claimed' });
    expect(calls).toBe(1);
    expect(s.fake.requests().filter((r) => r.method === 'POST')).toHaveLength(1);
    expect((await recordOf(s, 'zombie'))!.attempt).toBe(1);
  });
});

describe('fencing', () => {
  it("a stale attempt's late result cannot overwrite a newer attempt", async () => {
    const redis = newRedis();
    const prefix = `xt-fence-${Date.now()}`;
    const ledger = openLedger(redis, { prefix, retentionMs: 60_000 });
    const { validateRequest } = await import('../src/domain/request.js');
    const t0 = Date.now();
    const v = validateRequest(post('fence', 'fenced'), { now: t0 + 1000, deadlineWindowMs: 1e9 });
    if (!v.ok) throw new Error('invalid');
    const id = keyId({ slotId: 'fence', postId: 'p1' });
    await ledger.registerMany([{ request: v.request, keyId: id, jobId: id }], t0 + 1000);

    const a1 = await ledger.claim({ keyId: id, jobId: id, leaseMs: 10_000, now: t0 + 2000 });
    expect(a1).toMatchObject({ verdict: 'claimed', record: { attempt: 1 } });
    // A second claimant is refused while attempt 1 is in flight.
    expect(await ledger.claim({ keyId: id, jobId: 'other', leaseMs: 10_000, now: t0 + 2001 })).toMatchObject({ verdict: 'held' });
    expect(await ledger.settle(id, 1, { to: 'ambiguous', cause: 'timeout', recheckAt: t0 + 9000 }, t0 + 3000)).toMatchObject({ verdict: 'ok' });
    // Reconciliation proved attempt 1 absent and released the key; attempt 2 starts.
    expect(await ledger.settle(id, 1, { to: 'queued', cause: 'not found', retryAt: t0 + 4000, jobId: `${id}.g2` }, t0 + 4000)).toMatchObject({ verdict: 'ok' });
    const a2 = await ledger.claim({ keyId: id, jobId: `${id}.g2`, leaseMs: 10_000, now: t0 + 4001 });
    expect(a2).toMatchObject({ verdict: 'claimed', record: { attempt: 2 } });

    // Attempt 1's zombie reports late: refused, whatever it says.
    for (const t of [
      { to: 'sent', tweetId: '111' },
      { to: 'failed', reason: 'rejected', detail: 'x' },
      { to: 'ambiguous', cause: 'c', recheckAt: 1 },
      { to: 'queued', cause: 'c', retryAt: 1 },
    ] as const) {
      expect(await ledger.settle(id, 1, t, t0 + 5000)).toMatchObject({ verdict: 'stale', state: 'claimed', attempt: 2 });
    }
    expect(await ledger.settle(id, 2, { to: 'sent', tweetId: '222' }, t0 + 6000)).toMatchObject({ verdict: 'ok' });
    // And once settled, nothing moves it again, not even its own attempt.
    expect(await ledger.settle(id, 2, { to: 'failed', reason: 'rejected', detail: 'late' }, t0 + 7000)).toMatchObject({ verdict: 'stale', state: 'sent' });
    expect(await ledger.get(id)).toMatchObject({ state: 'sent', tweetId: '222', attempt: 2 });
    const trail = await ledger.auditTrail(id);
    expect(trail.filter((e) => e.event === 'stale-result')).toHaveLength(5);
    await redis.del(ledger.keys.record(id), ledger.keys.due, ledger.keys.index, ledger.keys.stats);
    await redis.quit();
  });
});

describe('secrets', () => {
  it('credentials never appear in job data, the ledger, logs or error messages', async () => {
    stack = await startStack({ timeoutMs: 300, logLevel: 'trace' });
    const s = stack;
    const faults: FaultKind[] = ['commit-then-reset', '5xx-without-commit', 'hang-before-commit', 'truncated-201'];
    for (const f of faults) s.fake.injectNext(f);
    const reqs = [
      ...faults.map((f, i) => post(`sec-${i}`, `secret test ${f}`)),
      post('sec-ok', 'plain', { accountId: 'globex' }),
      { slotId: 'sec-bad', postId: 'p1', accountId: 'acme', kind: 'reply', text: 'x', inReplyToTweetId: '999' },
    ];
    await s.producer.enqueueMany(reqs);
    for (const r of reqs) await settled(s, r.slotId);
    const stored = await dumpPrefix(s.redis, s.prefix);
    const failed = await s.producer.queue.getFailed();
    const errors = failed.map((j) => `${j.failedReason} ${(j.stacktrace ?? []).join('\n')}`).join('\n');
    expect(failed.length).toBeGreaterThan(0);
    expect(stored).toContain('secret test'); // the dump really holds the job data
    expect(s.logs.length).toBeGreaterThan(5);
    for (const secret of Object.values(SECRETS)) {
      expect(stored).not.toContain(secret);
      expect(s.logs.join('')).not.toContain(secret);
      expect(errors).not.toContain(secret);
    }
  });
});
