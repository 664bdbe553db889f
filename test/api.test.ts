/**
 * The HTTP API against the real server on a free port, over a real
 * producer and ledger on a prefix of its own: every status code, batches in
 * every body shape, token scopes, URL-encoded keys, list paging, events,
 * the rate limit, and 1,000 concurrent POSTs of one key → one post on X.
 * Every answer is checked against the served OpenAPI document.
 */
import { readFile } from 'node:fs/promises';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { sha256Hex } from '../src/api/tokens.js';
import { createProducer } from '../src/app.js';
import { keyId } from '../src/domain/key.js';
import { createLogger } from '../src/log.js';
import { dumpPrefix, post, type Stack, startStack, waitUntil } from './harness.js';
import { seg, startApi, type TestApi } from './support/api.js';

let stack: Stack | undefined;
let api: TestApi | undefined;
const extra: (() => Promise<void>)[] = [];
afterEach(async () => {
  // No answer of any test may drift from the document.
  const drift = api?.contractErrors ?? [];
  await api?.close();
  for (const close of extra.splice(0)) await close();
  await stack?.close();
  api = stack = undefined;
  expect(drift).toEqual([]);
});

const quiet = createLogger({ level: 'silent' });
const later = (min = 60) => new Date(Date.now() + min * 60_000).toISOString();
const path = (slotId: string, postId = 'p1') => `/v1/posts/${seg(slotId)}/${seg(postId)}`;

/** A stack without workers (nothing leaves for X unless a test starts one) and the API over its producer. */
async function start(o: { workers?: boolean; limits?: Parameters<typeof startApi>[0]['limits'] } = {}) {
  stack = await startStack({ startWorkers: o.workers ?? false });
  api = await startApi({
    producer: stack.producer,
    redis: stack.redis,
    logger: quiet,
    tokens: { ops: undefined, 'acme-only': ['acme'], other: undefined },
    ...(o.limits && { limits: o.limits }),
  });
  return { s: stack, a: api, ops: api.tokens['ops']!, acme: api.tokens['acme-only']! };
}

/** Put a key in flight (claimed, attempt 1) the way a worker does, without calling X. */
async function claim(s: Stack, slotId: string) {
  const id = keyId({ slotId, postId: 'p1' });
  const r = await s.ledger.get(id);
  const c = await s.ledger.claim({ keyId: id, jobId: r!.jobId, leaseMs: 60_000, now: Date.now() });
  expect(c.verdict).toBe('claimed');
  return id;
}

describe('HTTP API: posting', () => {
  it('answers one request with the producer’s status code: 201 queued, 200 duplicate / sent / failed, 409 conflict, 422 invalid', async () => {
    const { s, a, ops } = await start();
    const one = post('one', 'hello API', { scheduledAt: later() });

    const queued = await a.call('POST', '/v1/posts', { token: ops, json: one });
    expect(queued.status).toBe(201);
    expect(queued.body).toEqual({ status: 'queued', slotId: 'one', postId: 'p1' });

    const dup = await a.call('POST', '/v1/posts', { token: ops, json: one });
    expect([dup.status, dup.body]).toEqual([200, { status: 'duplicate', slotId: 'one', postId: 'p1', state: 'queued' }]);

    const conflict = await a.call('POST', '/v1/posts', { token: ops, json: { ...one, text: 'another text' } });
    const stored = await s.ledger.get(keyId({ slotId: 'one', postId: 'p1' }));
    expect(conflict.status).toBe(409);
    expect(conflict.body).toMatchObject({ status: 'conflict', slotId: 'one', postId: 'p1', state: 'queued', fingerprint: stored!.fingerprint });

    const invalid = await a.call('POST', '/v1/posts', {
      token: ops,
      json: { slotId: 'bad', postId: 'p1', accountId: 'acme', kind: 'post', text: 'x'.repeat(281) },
    });
    expect(invalid.status).toBe(422);
    expect(invalid.body.status).toBe('invalid');
    expect(invalid.body.errors.map((e: { field: string }) => e.field)).toEqual(['text']);

    // Sent and failed as stored: a repeat answers the outcome, never a second post.
    await s.producer.enqueueMany([post('went', 'went out'), post('refused', 'refused by X')]);
    for (const [slot, t] of [
      ['went', { to: 'sent', tweetId: '1777' }],
      ['refused', { to: 'failed', reason: 'rejected', detail: 'X said no' }],
    ] as const) {
      await s.ledger.settle(await claim(s, slot), 1, t, Date.now());
    }
    const sent = await a.call('POST', '/v1/posts', { token: ops, json: post('went', 'went out') });
    expect([sent.status, sent.body]).toEqual([200, { status: 'sent', slotId: 'went', postId: 'p1', tweetId: '1777' }]);
    const failed = await a.call('POST', '/v1/posts', { token: ops, json: post('refused', 'refused by X') });
    expect([failed.status, failed.body]).toEqual([200, { status: 'failed', slotId: 'refused', postId: 'p1', reason: 'rejected', detail: 'X said no' }]);
  });

  it('answers a batch per item, in input order, whatever each item is', async () => {
    const { s, a, ops, acme } = await start();
    const at = later();
    await a.call('POST', '/v1/posts', { token: ops, json: post('known', 'already here', { scheduledAt: at }) });
    const items = [
      post('new', 'a new one', { scheduledAt: at }),
      post('known', 'already here', { scheduledAt: at }),
      post('known', 'same key, other text', { scheduledAt: at }),
      { slotId: 'types', postId: 7, accountId: {}, kind: 'tweet', text: ['no'] },
      42,
      null,
      'a string',
      [post('nested', 'an array inside')],
      {},
      post('globex', 'for another account', { accountId: 'globex', scheduledAt: later() }),
    ];
    const r = await a.call('POST', '/v1/posts', { token: ops, json: items });
    expect(r.status).toBe(200);
    expect(r.body.results.map((x: { status: string; code: number; index: number }) => [x.index, x.status, x.code])).toEqual([
      [0, 'queued', 201],
      [1, 'duplicate', 200],
      [2, 'conflict', 409],
      [3, 'invalid', 422],
      [4, 'invalid', 422],
      [5, 'invalid', 422],
      [6, 'invalid', 422],
      [7, 'invalid', 422],
      [8, 'invalid', 422],
      [9, 'queued', 201],
    ]);
    expect(r.body.results[3].errors.map((e: { field: string }) => e.field).sort()).toEqual(['accountId', 'kind', 'postId', 'text']);
    expect(r.body.results[3]).toMatchObject({ slotId: 'types', postId: null });
    expect(r.body.results[4]).toMatchObject({ slotId: null, postId: null });

    // The same batch with a token scoped to acme: the globex item is 403 and never reaches the ledger.
    const scoped = await a.call('POST', '/v1/posts', {
      token: acme,
      json: [post('mine', 'acme may', { scheduledAt: later() }), post('theirs', 'globex may not', { accountId: 'globex' })],
    });
    expect(scoped.body.results.map((x: { status: string; code: number }) => [x.status, x.code])).toEqual([
      ['queued', 201],
      ['forbidden', 403],
    ]);
    expect(await s.stateOf('theirs', 'p1')).toBeUndefined();

    const empty = await a.call('POST', '/v1/posts', { token: ops, json: [] });
    expect([empty.status, empty.body]).toEqual([200, { results: [] }]);
  });

  it('refuses bodies that are not a request with a clear reason and never a 500: 400, 413, 415, 422', async () => {
    const { a, ops } = await start({ limits: { bodyLimitBytes: 64 * 1024, maxBatch: 50 } });
    const notJson = await a.call('POST', '/v1/posts', { token: ops, raw: '{"slotId": "x", ' });
    expect(notJson.status).toBe(400);
    expect(notJson.body.errors[0]).toMatchObject({ field: '(body)' });
    expect(notJson.body.errors[0].reason).toMatch(/not valid JSON/);

    const empty = await a.call('POST', '/v1/posts', { token: ops, raw: '' });
    expect(empty.status).toBe(400);

    for (const scalar of ['"text"', '12', 'null', 'true']) {
      const r = await a.call('POST', '/v1/posts', { token: ops, raw: scalar });
      expect([scalar, r.status, r.body.errors[0].field]).toEqual([scalar, 422, '(request)']);
    }

    const huge = await a.call('POST', '/v1/posts', { token: ops, json: post('huge', 'x'.repeat(100 * 1024)) });
    expect(huge.status).toBe(413);
    expect(huge.body.error).toMatch(/over 65536 bytes/);

    const many = await a.call('POST', '/v1/posts', { token: ops, json: Array.from({ length: 51 }, (_, i) => post(`m${i}`, `many ${i}`)) });
    expect(many.status).toBe(413);
    expect(many.body.error).toMatch(/at most 50/);

    const form = await a.call('POST', '/v1/posts', { token: ops, raw: 'slotId=x', type: 'application/x-www-form-urlencoded' });
    expect(form.status).toBe(415);
  });

  it('1,000 concurrent POSTs of one key: one queued, 999 duplicate, one post on X', async () => {
    const { s, a, ops } = await start();
    const request = post('race', 'one thousand callers, one post');
    const answers = await Promise.all(Array.from({ length: 1_000 }, () => a.call('POST', '/v1/posts', { token: ops, json: request })));
    const counts: Record<string, number> = {};
    for (const r of answers) counts[`${r.status} ${r.body.status}`] = (counts[`${r.status} ${r.body.status}`] ?? 0) + 1;
    expect(counts).toEqual({ '201 queued': 1, '200 duplicate': 999 });

    s.startWorker();
    await waitUntil(async () => (await s.stateOf('race', 'p1')) === 'sent', 'the key to be sent', 30_000);
    expect(s.fake.created().filter((c) => c.text === request.text)).toHaveLength(1);
    const again = await a.call('POST', '/v1/posts', { token: ops, json: request });
    expect([again.status, again.body.status]).toEqual([200, 'sent']);
    expect(s.fake.created().filter((c) => c.text === request.text)).toHaveLength(1);
  }, 90_000);
});

describe('HTTP API: a key', () => {
  it('reads, cancels, edits and reschedules by URL-encoded path segments (slot ids with / and spaces), recording the token’s name', async () => {
    const { s, a, ops } = await start();
    const slot = 'calendar/2026-01-31 09:00';
    const postId = 'post 1/a?b#c';
    const at = later(120);
    expect((await a.call('POST', '/v1/posts', { token: ops, json: post(slot, 'first text', { postId, scheduledAt: at }) })).status).toBe(201);

    const got = await a.call('GET', path(slot, postId), { token: ops });
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({
      slotId: slot,
      postId,
      accountId: 'acme',
      kind: 'post',
      state: 'queued',
      attempts: 0,
      text: 'first text',
      scheduledAt: at,
    });
    expect(got.body.audit[0]).toMatchObject({ event: 'queued', by: 'ops' });

    const edited = await a.call('PATCH', path(slot, postId), { token: ops, json: { text: 'second text' } });
    expect(edited.status).toBe(200);
    expect(edited.body).toMatchObject({ status: 'edited', slotId: slot, postId });
    const moved = await a.call('PATCH', path(slot, postId), { token: ops, json: { scheduledAt: later(180) } });
    expect([moved.status, moved.body.status]).toEqual([200, 'rescheduled']);
    const both = await a.call('PATCH', path(slot, postId), { token: ops, json: { text: 'x', scheduledAt: later() } });
    expect([both.status, both.body.errors[0].field]).toEqual([422, '(request)']);
    const unknown = await a.call('PATCH', path(slot, postId), { token: ops, json: { accountId: 'globex' } });
    expect([unknown.status, unknown.body.errors[0].field]).toEqual([422, 'accountId']);

    const cancelled = await a.call('DELETE', `${path(slot, postId)}?reason=${seg('client pulled it')}`, { token: ops });
    expect([cancelled.status, cancelled.body]).toEqual([200, { status: 'cancelled', slotId: slot, postId }]);
    const again = await a.call('DELETE', path(slot, postId), { token: ops });
    expect([again.status, again.body.status, again.body.state]).toEqual([409, 'final', 'cancelled']);

    const after = await a.call('GET', path(slot, postId), { token: ops });
    expect(after.body).toMatchObject({ state: 'cancelled', text: 'second text', cancel: { by: 'ops', reason: 'client pulled it' } });
    expect(after.body.audit.map((e: { event: string; by?: string }) => [e.event, e.by])).toEqual([
      ['queued', 'ops'],
      ['edited', 'ops'],
      ['rescheduled', 'ops'],
      ['cancelled', 'ops'],
    ]);
    // The name, never the token, anywhere in Redis.
    expect(await dumpPrefix(s.redis, s.prefix)).not.toContain(ops);

    expect((await a.call('GET', path('no such slot'), { token: ops })).status).toBe(404);
    expect((await a.call('DELETE', path('no such slot'), { token: ops })).status).toBe(404);
    expect((await a.call('PATCH', path('no such slot'), { token: ops, json: { text: 'y' } })).status).toBe(404);
    const badEncoding = await a.call('GET', '/v1/posts/%E0%A4%A/p1', { token: ops });
    expect(badEncoding.status).toBe(400);
  });

  it('202 for a cancel of a key in flight, 409 with the state for in-flight, already-sent and final keys', async () => {
    const { s, a, ops } = await start();
    await s.producer.enqueueMany([post('busy', 'in flight'), post('done', 'went out'), post('busy2', 'in flight too')]);
    await claim(s, 'busy');
    await claim(s, 'busy2');
    await s.ledger.settle(await claim(s, 'done'), 1, { to: 'sent', tweetId: '1888' }, Date.now());

    const inFlight = await a.call('PATCH', path('busy'), { token: ops, json: { text: 'too late' } });
    expect([inFlight.status, inFlight.body.status, inFlight.body.state, inFlight.body.attempt]).toEqual([409, 'in-flight', 'claimed', 1]);
    const cancelling = await a.call('DELETE', path('busy2'), { token: ops });
    expect([cancelling.status, cancelling.body.status]).toEqual([202, 'cancelling']);
    const sentEdit = await a.call('PATCH', path('done'), { token: ops, json: { scheduledAt: later() } });
    expect([sentEdit.status, sentEdit.body]).toEqual([409, { status: 'already-sent', slotId: 'done', postId: 'p1', tweetId: '1888', state: 'sent' }]);
    const sentCancel = await a.call('DELETE', path('done'), { token: ops });
    expect([sentCancel.status, sentCancel.body.state]).toEqual([409, 'sent']);
  });
});

describe('HTTP API: tokens', () => {
  it('401 without a token or with a wrong one; the document is public; the file holds hashes only', async () => {
    const { a, ops } = await start();
    const none = await a.call('GET', '/v1/posts');
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect((await a.call('GET', '/v1/posts', { token: ops + 'x' })).status).toBe(401);
    expect((await a.call('GET', '/v1/posts', { headers: { authorization: `Basic ${Buffer.from('ops:' + ops).toString('base64')}` } })).status).toBe(401);
    expect((await a.call('POST', '/v1/posts', { json: post('anon', 'no token') })).status).toBe(401);
    const doc = await a.call('GET', '/v1/openapi.json');
    expect([doc.status, doc.body.openapi]).toEqual([200, '3.1.0']);

    const file = await readFile(a.tokensFile, 'utf8');
    expect(file).not.toContain(ops);
    expect(JSON.parse(file).tokens).toEqual([
      { name: 'ops', sha256: sha256Hex(ops) },
      { name: 'acme-only', sha256: sha256Hex(a.tokens['acme-only']!), accounts: ['acme'] },
      { name: 'other', sha256: sha256Hex(a.tokens['other']!) },
    ]);
  });

  it('a token scoped to accounts may not read, cancel, edit, list or bulk-cancel another account’s keys (403)', async () => {
    const { s, a, ops, acme } = await start();
    await s.producer.enqueueMany([post('a1', 'acme one', { scheduledAt: later() }), post('g1', 'globex one', { accountId: 'globex', scheduledAt: later() })]);

    expect((await a.call('GET', path('a1'), { token: acme })).status).toBe(200);
    expect((await a.call('GET', path('g1'), { token: acme })).status).toBe(403);
    expect((await a.call('DELETE', path('g1'), { token: acme })).status).toBe(403);
    expect((await a.call('PATCH', path('g1'), { token: acme, json: { text: 'hijack' } })).status).toBe(403);
    expect((await a.call('POST', '/v1/accounts/globex/cancel-queued', { token: acme })).status).toBe(403);
    expect((await a.call('GET', '/v1/posts?account=globex', { token: acme })).status).toBe(403);
    expect(await s.stateOf('g1', 'p1')).toBe('queued');
    expect((await s.ledger.get(keyId({ slotId: 'g1', postId: 'p1' })))!.text).toBe('globex one');

    const listed = await a.call('GET', '/v1/posts', { token: acme });
    expect(listed.body.posts.map((p: { slotId: string }) => p.slotId)).toEqual(['a1']);
    const events = await a.call('GET', '/v1/events', { token: acme });
    expect(new Set(events.body.events.map((e: { accountId: string }) => e.accountId))).toEqual(new Set(['acme']));
    const all = await a.call('GET', '/v1/posts', { token: ops });
    expect(all.body.posts.map((p: { slotId: string }) => p.slotId)).toEqual(['a1', 'g1']);

    const bulk = await a.call('POST', '/v1/accounts/acme/cancel-queued', { token: acme, json: { reason: 'client left' } });
    expect([bulk.status, bulk.body]).toEqual([200, { accountId: 'acme', cancelled: 1, cancelling: 0, final: 0 }]);
    expect(await s.stateOf('a1', 'p1')).toBe('cancelled');
    expect((await s.ledger.get(keyId({ slotId: 'a1', postId: 'p1' })))!.cancel).toMatchObject({ by: 'acme-only', reason: 'client left' });
    const badBulk = await a.call('POST', '/v1/accounts/acme/cancel-queued', { token: acme, json: { from: 'yesterday' } });
    expect([badBulk.status, badBulk.body.errors[0].field]).toEqual([422, 'from']);
  });

  it('rate-limits each token on its own: 429 with Retry-After past the limit', async () => {
    const { a, ops } = await start({ limits: { rateLimit: 3, rateWindowMs: 60_000 } });
    for (let i = 0; i < 3; i++) expect((await a.call('GET', '/v1/posts', { token: ops })).status).toBe(200);
    const over = await a.call('GET', '/v1/posts', { token: ops });
    expect(over.status).toBe(429);
    const retryAfter = Number(over.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(over.body.error).toMatch(/rate limit/);
    expect((await a.call('GET', '/v1/posts', { token: a.tokens['other'] })).status).toBe(200);
  });

  it('a token made while the server runs is taken within a second; an internal failure is a bare 500', async () => {
    const { s, a } = await start();
    const { createToken } = await import('../src/api/tokens.js');
    const late = await createToken(a.tokensFile, 'late');
    await waitUntil(async () => (await a.call('GET', '/v1/posts', { token: late })).status === 200, 'the new token to be accepted', 10_000, 200);

    // A producer whose Redis is gone: the answer says it failed, and nothing else.
    const dead = new Redis({ lazyConnect: true, enableOfflineQueue: false, port: 1 });
    const broken = await startApi({ producer: createProducer({ connection: dead, prefix: s.prefix }), redis: dead, logger: quiet, tokens: { ops: undefined } });
    extra.push(() => broken.close());
    const r = await broken.call('POST', '/v1/posts', { token: broken.tokens['ops'], json: post('x', 'y') });
    expect([r.status, r.body]).toEqual([500, { error: 'internal error' }]);
    expect(broken.contractErrors).toEqual([]);
  });
});

describe('HTTP API: lists and events', () => {
  it('lists with filters (state, account, scheduled from/to) and pages with a cursor, each key once, in creation order', async () => {
    const { s, a, ops } = await start();
    const base = Date.now() + 3_600_000;
    const requests = Array.from({ length: 23 }, (_, i) =>
      post(`k${String(i).padStart(2, '0')}`, `list ${i}`, {
        accountId: i % 3 === 0 ? 'globex' : 'acme',
        scheduledAt: new Date(base + i * 60_000).toISOString(),
      }),
    );
    for (const r of requests) await s.producer.enqueueMany([r]); // one at a time: creation order is input order
    await s.producer.cancel({ slotId: 'k04', postId: 'p1' });
    await s.producer.cancel({ slotId: 'k05', postId: 'p1' });

    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const r = await a.call('GET', `/v1/posts?limit=5${cursor ? `&cursor=${seg(cursor)}` : ''}`, { token: ops });
      expect(r.status).toBe(200);
      seen.push(...r.body.posts.map((p: { slotId: string }) => p.slotId));
      cursor = r.body.next;
      pages++;
    } while (cursor);
    expect(seen).toEqual(requests.map((r) => r.slotId));
    expect(pages).toBeGreaterThanOrEqual(5);

    const ids = async (q: string) => (await a.call('GET', `/v1/posts?${q}`, { token: ops })).body.posts.map((p: { slotId: string }) => p.slotId);
    expect(await ids('state=cancelled')).toEqual(['k04', 'k05']);
    expect(await ids('account=globex')).toEqual(['k00', 'k03', 'k06', 'k09', 'k12', 'k15', 'k18', 'k21']);
    const from = new Date(base + 10 * 60_000).toISOString();
    const to = new Date(base + 13 * 60_000).toISOString();
    expect(await ids(`from=${seg(from)}&to=${seg(to)}`)).toEqual(['k10', 'k11', 'k12']);
    expect(await ids(`account=acme&state=queued&from=${seg(from)}&to=${seg(to)}`)).toEqual(['k10', 'k11']);

    for (const [q, field] of [
      ['state=lost', 'state'],
      ['limit=0', 'limit'],
      ['limit=9999', 'limit'],
      ['from=tomorrow', 'from'],
      ['cursor=garbage', 'cursor'],
      ['colour=blue', 'colour'],
    ]) {
      const r = await a.call('GET', `/v1/posts?${q}`, { token: ops });
      expect([q, r.status, r.body.errors[0].field]).toEqual([q, 422, field]);
    }
  });

  it('events: the same stream, from a cursor, in the webhook shape', async () => {
    const { s, a, ops } = await start();
    await a.call('POST', '/v1/posts', {
      token: ops,
      json: [post('e1', 'event one', { scheduledAt: later() }), post('e2', 'event two', { scheduledAt: later() })],
    });
    const first = await a.call('GET', '/v1/events', { token: ops });
    expect(first.status).toBe(200);
    expect(first.body.events.map((e: { type: string; slotId: string }) => [e.type, e.slotId])).toEqual([
      ['queued', 'e1'],
      ['queued', 'e2'],
    ]);
    expect(first.body.events[0]).toMatchObject({ type: 'queued', slotId: 'e1', postId: 'p1', accountId: 'acme', state: 'queued', attempt: 0 });
    expect(first.body.events[0]).not.toHaveProperty('key');
    expect(Date.parse(first.body.events[0].at)).toBeGreaterThan(0);

    await a.call('DELETE', path('e2'), { token: ops });
    const next = await a.call('GET', `/v1/events?from=${seg(first.body.next)}`, { token: ops });
    expect(next.body.events.map((e: { type: string; slotId: string }) => [e.type, e.slotId])).toEqual([['cancelled', 'e2']]);
    const none = await a.call('GET', `/v1/events?from=${seg(next.body.next)}`, { token: ops });
    expect(none.body).toEqual({ events: [], next: next.body.next });
    const paged = await a.call('GET', '/v1/events?limit=1', { token: ops });
    expect(paged.body.events).toHaveLength(1);

    expect((await a.call('GET', '/v1/events?from=yesterday', { token: ops })).status).toBe(422);
    void s;
  });

  it('events: a cursor older than the retention, with the events after it trimmed, is told it may have missed some (gap); a cursor inside it never is', async () => {
    const { s, a, ops } = await start();
    // A reader stopped at an event from long ago (stream ids are times); the next write trims it away.
    await s.redis.xadd(s.ledger.keys.events, '1000-0', 'type', 'ancient');
    // The stream still holds the cursor: nothing after it can have been trimmed.
    const held = await a.call('GET', '/v1/events?from=1000-0', { token: ops });
    expect(held.body).toEqual({ events: [], next: '1000-0' });
    await a.call('POST', '/v1/posts', { token: ops, json: post('g1', 'after the gap', { scheduledAt: later() }) });
    const after = await a.call('GET', '/v1/events?from=1000-0', { token: ops });
    expect(after.status).toBe(200);
    expect(after.body.events.map((e: { type: string }) => e.type)).toEqual(['queued']);
    expect(after.body.gap).toBe(true);
    // Read from the oldest kept, or from a cursor the stream still holds: no gap.
    expect(await a.call('GET', '/v1/events', { token: ops }).then((r) => r.body)).not.toHaveProperty('gap');
    const resumed = await a.call('GET', `/v1/events?from=${seg(after.body.next)}`, { token: ops });
    expect(resumed.body).toEqual({ events: [], next: after.body.next });
    expect(a.contractErrors).toEqual([]);
  });
});
