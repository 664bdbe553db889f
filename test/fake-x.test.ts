import http from 'node:http';

import { ApiPartialResponseError, ApiRequestError, ApiResponseError, TwitterApi, type ITwitterApiClientPlugin } from 'twitter-api-v2';
import { afterEach, describe, expect, it } from 'vitest';

import { ALL_FAULT_KINDS, FaultPlan, renderBody, renderPost, startFakeX, tcoUrl, type FakeX, type FakeXOptions, type FaultKind } from '../src/fake-x/index.js';

/** Alice has Premium on X (long posts); Bob has X's 280. */
const ALICE = { userId: '1001', username: 'alice', tokens: ['alice-oauth1', 'alice-bearer'], textLength: 25_000 };
const BOB = { userId: '1002', username: 'bob', tokens: ['bob-oauth1'] };
const T0 = Date.parse('2026-01-01T00:00:00.000Z');
const HANG_TIMEOUT_MS = 300;

// twitter-api-v2 has no base-URL setting: rewrite before OAuth signing.
const rewrite = (base: string, timeout: number): ITwitterApiClientPlugin => ({
  onBeforeRequestConfig({ params }) {
    params.url = String(params.url).replace('https://api.x.com', base);
    params.timeout = timeout;
  },
});

const running: FakeX[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((fx) => fx.close()));
});

async function fake(opts: Partial<FakeXOptions> = {}): Promise<FakeX> {
  const fx = await startFakeX({ accounts: [ALICE, BOB], ...opts });
  running.push(fx);
  return fx;
}

function oauth1(fx: FakeX, accessToken = 'alice-oauth1', timeout = 5000): TwitterApi {
  return new TwitterApi({ appKey: 'k', appSecret: 's', accessToken, accessSecret: 'x' }, { httpAgent: new http.Agent(), plugins: [rewrite(fx.url, timeout)] });
}

function bearer(fx: FakeX, token: string, timeout = 5000): TwitterApi {
  return new TwitterApi(token, { httpAgent: new http.Agent(), plugins: [rewrite(fx.url, timeout)] });
}

/** A manually driven clock so visibility lag and time windows need no sleeps. */
function manualClock(start = T0): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

async function failure(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected the call to fail');
}

/** The library keeps the socket error in _options.error; the requestError getter reads a key that is never set. */
function requestCause(err: unknown): NodeJS.ErrnoException {
  return (err as { _options: { error: NodeJS.ErrnoException } })._options.error;
}

interface TimelineBody {
  data?: {
    id: string;
    text: string;
    created_at?: string;
    entities?: unknown;
    display_text_range?: [number, number];
    referenced_tweets?: unknown;
    note_tweet?: { text: string };
    author_id?: string;
  }[];
  meta: { result_count: number; newest_id?: string; oldest_id?: string; next_token?: string };
}

describe('render helpers', () => {
  it('makes 23-character t.co links from a counter', () => {
    expect(tcoUrl(1)).toBe('https://t.co/0000000001');
    expect(tcoUrl(62)).toBe('https://t.co/0000000010');
    expect(tcoUrl(123456789)).toHaveLength(23);
  });

  it('counts entity indices in code points of the escaped text', () => {
    let n = 0;
    const body = renderBody('😀 a&b https://example.com/x?a=1&b=2 <ok>', { escape: true, nextTco: () => tcoUrl(++n) });
    expect(body.text).toBe('😀 a&amp;b https://t.co/0000000001 &lt;ok&gt;');
    expect(body.urls).toEqual([
      { start: 10, end: 33, url: 'https://t.co/0000000001', expanded_url: 'https://example.com/x?a=1&b=2', display_url: 'example.com/x?a=1&b=2' },
    ]);
    expect(Array.from(body.text).slice(10, 33).join('')).toBe('https://t.co/0000000001');
  });

  it('cuts long posts at the last word boundary within 280 weighted characters, without an ellipsis', () => {
    const words = 'ééé '.repeat(75).trim(); // 299 code points
    const post = renderPost(renderBody(words, { escape: true, nextTco: () => tcoUrl(0) }), '@bob ');
    expect(post.text).toBe(`@bob ${'ééé '.repeat(70).trim()}`); // 279 code points of body, cut before a space
    expect(post.text).not.toContain('…');
    expect(post.displayTextRange).toEqual([5, 5 + 279]);
    expect(post.noteTweet?.text).toBe(words);
    // One long word: cut at the limit.
    const word = renderPost(renderBody('é'.repeat(300), { escape: true, nextTco: () => tcoUrl(0) }));
    expect(word.text).toBe('é'.repeat(280));
  });

  it('never cuts inside a link', () => {
    const text = `${'a'.repeat(265)}(https://example.com/x) ${'b'.repeat(20)}`; // the link spans the limit, no space before it
    const post = renderPost(renderBody(text, { escape: true, nextTco: () => tcoUrl(1) }));
    expect(post.text).toBe(`${'a'.repeat(265)}(`);
    expect(post.urls).toEqual([]);
    expect(post.noteTweet?.urls).toHaveLength(1);
  });

  it("folds a reply's leading @handles into the hidden prefix", () => {
    const render = (text: string, prefix: string, isReply = true) => renderPost(renderBody(text, { escape: true, nextTco: () => tcoUrl(0) }), prefix, isReply);
    expect(render('@bob @carol thanks!', '@bob ')).toMatchObject({ text: '@bob @carol thanks!', displayTextRange: [12, 19] });
    expect(render('@carol thanks!', '@bob ')).toMatchObject({ text: '@bob @carol thanks!', displayTextRange: [12, 19] });
    expect(render('thanks!', '@bob ')).toMatchObject({ text: '@bob thanks!', displayTextRange: [5, 12] });
    // A self-reply (thread) has no target prefix but still folds its own handles.
    expect(render('@carol more', '')).toMatchObject({ text: '@carol more', displayTextRange: [7, 11] });
    // Not a reply: a leading mention is part of the displayed text.
    expect(render('@carol hi', '', false)).toMatchObject({ text: '@carol hi', displayTextRange: [0, 9] });
  });
});

describe('fake X: posting', () => {
  it('creates a post and returns X-rendered text with t.co links', async () => {
    const fx = await fake();
    const client = oauth1(fx);
    const res = await client.v2.tweet('Read https://example.com/a?x=1&y=2 & <enjoy>');
    expect(res.data.text).toBe('Read https://t.co/0000000001 &amp; &lt;enjoy&gt;');
    expect(res.data.id).toMatch(/^\d{19}$/);
    expect((res.data as { edit_history_tweet_ids?: string[] }).edit_history_tweet_ids).toEqual([res.data.id]);
    expect(fx.created()).toEqual([
      { kind: 'post', id: res.data.id, authorId: ALICE.userId, text: 'Read https://example.com/a?x=1&y=2 & <enjoy>', createdAt: expect.any(Number) },
    ]);

    const tl = await client.v2.get<TimelineBody>(`users/${ALICE.userId}/tweets`, { 'tweet.fields': 'entities,created_at,author_id' });
    expect(tl.data?.[0]).toMatchObject({
      id: res.data.id,
      text: res.data.text,
      author_id: ALICE.userId,
      entities: { urls: [{ start: 5, end: 28, url: 'https://t.co/0000000001', expanded_url: 'https://example.com/a?x=1&y=2' }] },
    });
    expect(fx.requests().map((r) => [r.method, r.path, r.userId, r.status])).toEqual([
      ['POST', '/2/tweets', ALICE.userId, 201],
      ['GET', `/2/users/${ALICE.userId}/tweets`, ALICE.userId, 200],
    ]);
  });

  it('authenticates OAuth 2 bearer tokens and rejects unknown tokens with 401', async () => {
    const fx = await fake();
    const me = await bearer(fx, 'alice-bearer').v2.me();
    expect(me.data).toMatchObject({ id: ALICE.userId, username: 'alice' });

    const err = await failure(oauth1(fx, 'nobody').v2.tweet('hello'));
    expect(err).toBeInstanceOf(ApiResponseError);
    expect((err as ApiResponseError).code).toBe(401);
    expect((err as ApiResponseError).data.title).toBe('Unauthorized');
    expect((err as ApiResponseError).rateLimit?.limit).toBeGreaterThan(0);
    expect(fx.created()).toEqual([]);
  });

  it('answers 403 duplicate content for the same text, switchable off', async () => {
    const fx = await fake();
    const client = oauth1(fx);
    await client.v2.tweet('same words');
    const err = await failure(client.v2.tweet('same words'));
    expect(err).toBeInstanceOf(ApiResponseError);
    expect((err as ApiResponseError).code).toBe(403);
    expect((err as ApiResponseError).data).toMatchObject({
      title: 'Forbidden',
      type: 'about:blank',
      detail: 'You are not allowed to create a Tweet with duplicate content.',
    });
    // Another author may say the same thing.
    await oauth1(fx, 'bob-oauth1').v2.tweet('same words');

    fx.setDuplicateContentCheck(false);
    await client.v2.tweet('same words');
    expect(fx.created().map((c) => c.authorId)).toEqual([ALICE.userId, BOB.userId, ALICE.userId]);
  });

  it("rejects empty text with 400 and replies to unknown posts with X's post-level 403", async () => {
    const fx = await fake();
    const client = oauth1(fx);
    const empty = await failure(client.v2.tweet('   '));
    expect(empty).toBeInstanceOf(ApiResponseError);
    expect((empty as ApiResponseError).code).toBe(400);
    expect((empty as ApiResponseError).data.title).toBe('Invalid Request');
    const orphan = await failure(client.v2.tweet('hi', { reply: { in_reply_to_tweet_id: '1234567890' } }));
    expect((orphan as ApiResponseError).code).toBe(403);
    expect((orphan as ApiResponseError).data.detail).toBe('You attempted to reply to a Tweet that is deleted or not visible to you.');
    expect((orphan as ApiResponseError).headers['content-type']).toBe('application/json; charset=utf-8');
    expect(fx.created()).toEqual([]);
  });

  it('prefixes replies to someone else with @handle and reports display_text_range', async () => {
    const fx = await fake();
    const alice = oauth1(fx);
    const bob = oauth1(fx, 'bob-oauth1');
    const root = await bob.v2.tweet('root post');
    const reply = await alice.v2.tweet('nice & true', { reply: { in_reply_to_tweet_id: root.data.id } });
    expect(reply.data.text).toBe('@bob nice &amp; true');
    const self = await alice.v2.tweet('thread continues', { reply: { in_reply_to_tweet_id: reply.data.id } });
    expect(self.data.text).toBe('thread continues');
    expect(fx.created()[1]).toMatchObject({ inReplyToTweetId: root.data.id, text: 'nice & true' });

    const tl = await alice.v2.get<TimelineBody>(`users/${ALICE.userId}/tweets`, { 'tweet.fields': 'display_text_range,referenced_tweets' });
    expect(tl.data).toEqual([
      {
        id: self.data.id,
        text: 'thread continues',
        edit_history_tweet_ids: [self.data.id],
        display_text_range: [0, 16],
        referenced_tweets: [{ type: 'replied_to', id: reply.data.id }],
      },
      {
        id: reply.data.id,
        text: '@bob nice &amp; true',
        edit_history_tweet_ids: [reply.data.id],
        display_text_range: [5, 20],
        referenced_tweets: [{ type: 'replied_to', id: root.data.id }],
      },
    ]);
  });

  it('truncates long posts and returns the whole text in note_tweet only when asked', async () => {
    const fx = await fake();
    const client = oauth1(fx);
    const long = `${'x'.repeat(290)} https://example.com`;
    const res = await client.v2.tweet(long);
    expect(res.data.text).toBe('x'.repeat(280));
    const plain = await client.v2.get<TimelineBody>(`users/${ALICE.userId}/tweets`);
    expect(plain.data?.[0]?.note_tweet).toBeUndefined();
    const withNote = await client.v2.get<TimelineBody>(`users/${ALICE.userId}/tweets`, { 'tweet.fields': 'note_tweet' });
    expect(withNote.data?.[0]?.note_tweet?.text).toBe(`${'x'.repeat(290)} https://t.co/0000000001`);
  });
});

describe('fake X: quotes, polls, reply settings, long posts', () => {
  interface ExtrasBody {
    data?: {
      id: string;
      text: string;
      display_text_range?: [number, number];
      referenced_tweets?: { type: string; id: string }[];
      attachments?: { poll_ids?: string[] };
      reply_settings?: string;
      note_tweet?: { text: string };
      entities?: { urls?: { url: string; expanded_url: string }[] };
    }[];
  }
  const FIELDS = { 'tweet.fields': 'display_text_range,referenced_tweets,attachments,reply_settings,entities,note_tweet' };
  const problemOf = async (p: Promise<unknown>) => {
    const err = (await failure(p)) as ApiResponseError;
    return { code: err.code, detail: err.data.detail, errors: (err.data as { errors?: unknown }).errors };
  };

  it('a quote shows referenced_tweets quoted and a t.co link to the quoted post after the displayed text', async () => {
    const fx = await fake();
    const alice = oauth1(fx);
    const bob = oauth1(fx, 'bob-oauth1');
    const root = await bob.v2.tweet('worth quoting');
    const quote = await alice.v2.tweet('so true', { quote_tweet_id: root.data.id });
    expect(quote.data.text).toBe('so true https://t.co/0000000001');
    const tl = await alice.v2.get<ExtrasBody>(`users/${ALICE.userId}/tweets`, FIELDS);
    expect(tl.data?.[0]).toMatchObject({
      id: quote.data.id,
      display_text_range: [0, 7],
      referenced_tweets: [{ type: 'quoted', id: root.data.id }],
      reply_settings: 'everyone',
      entities: { urls: [{ url: 'https://t.co/0000000001', expanded_url: `https://twitter.com/bob/status/${root.data.id}` }] },
    });
    expect(fx.created()[1]).toMatchObject({ text: 'so true', quoteTweetId: root.data.id });
  });

  it('a quote of a post that does not exist or was deleted: a post-level 403, nothing created', async () => {
    const fx = await fake();
    const alice = oauth1(fx);
    expect(await problemOf(alice.v2.tweet('quoting nothing', { quote_tweet_id: '1234567890' }))).toMatchObject({
      code: 403,
      detail: expect.stringContaining('quote a Tweet that is deleted'),
    });
    const gone = await alice.v2.tweet('soon gone');
    fx.deletePost(gone.data.id);
    expect((await problemOf(alice.v2.tweet('quoting the deleted', { quote_tweet_id: gone.data.id }))).code).toBe(403);
    expect(await problemOf(alice.v2.tweet('bad id', { quote_tweet_id: 'abc' }))).toMatchObject({ code: 400 });
    expect(fx.created().map((c) => c.text)).toEqual(['soon gone']);
  });

  it('a poll comes back with attachments.poll_ids; reply_settings is echoed', async () => {
    const fx = await fake();
    const alice = oauth1(fx);
    const polled = await alice.v2.tweet('tabs or spaces?', { poll: { options: ['tabs', 'spaces'], duration_minutes: 60 }, reply_settings: 'following' });
    const tl = await alice.v2.get<ExtrasBody>(`users/${ALICE.userId}/tweets`, FIELDS);
    expect(tl.data?.[0]).toMatchObject({
      id: polled.data.id,
      text: 'tabs or spaces?',
      reply_settings: 'following',
      attachments: { poll_ids: [expect.stringMatching(/^\d{1,19}$/)] },
    });
    expect(tl.data?.[0]?.attachments?.poll_ids?.[0]).not.toBe(polled.data.id);
    expect(fx.created()[0]).toMatchObject({ poll: { options: ['tabs', 'spaces'], durationMinutes: 60 }, replySettings: 'following' });
    // Without the fields asked for, neither shows.
    const plain = await alice.v2.get<ExtrasBody>(`users/${ALICE.userId}/tweets`);
    expect(plain.data?.[0]).toEqual({ id: polled.data.id, text: 'tabs or spaces?', edit_history_tweet_ids: [polled.data.id] });
  });

  it.each([
    ['one option', { poll: { options: ['only'], duration_minutes: 60 } }, 'poll.options'],
    ['a 26-character option', { poll: { options: ['ok', 'x'.repeat(26)], duration_minutes: 60 } }, 'poll.options'],
    ['4 minutes', { poll: { options: ['a', 'b'], duration_minutes: 4 } }, 'poll.duration_minutes'],
    ['a poll and a quote', { poll: { options: ['a', 'b'], duration_minutes: 60 }, quote_tweet_id: '1234567890' }, 'poll'],
    ['unknown reply_settings', { reply_settings: 'everyone' }, 'reply_settings'],
  ])('400 for %s, naming the parameter', async (_label, extra, parameter) => {
    const fx = await fake();
    const problem = await problemOf(oauth1(fx).v2.tweet('bad extras', extra as never));
    expect(problem).toMatchObject({ code: 400, errors: [{ parameters: { [parameter]: [] } }] });
    expect(fx.created()).toEqual([]);
  });

  it("a post over its author's length limit is refused with X's 400 invalid-request, naming text; exactly the limit passes", async () => {
    const fx = await fake();
    const bob = oauth1(fx, 'bob-oauth1');
    const at280 = `${'a'.repeat(257)} https://example.com/a/long/path/that/counts/as/23`; // 257 + 1 + 23 = 281
    expect(await problemOf(bob.v2.tweet(at280))).toMatchObject({
      code: 400,
      errors: [{ message: expect.stringMatching(/text is too long/), parameters: { text: [] } }],
    });
    expect((await bob.v2.tweet(`${'a'.repeat(256)} https://example.com/a/long/path/that/counts/as/23`)).data.id).toBeDefined();
    expect(await problemOf(bob.v2.tweet('新'.repeat(141)))).toMatchObject({ code: 400 });
    expect((await oauth1(fx).v2.tweet('新'.repeat(141))).data.id).toBeDefined();
    expect(fx.created().map((c) => c.authorId)).toEqual([BOB.userId, ALICE.userId]);
  });

  it('long posts are cut by weighted length: CJK at 140 characters, & counted as one', async () => {
    const fx = await fake();
    const alice = oauth1(fx);
    const cjk = '新しい製品を発表します。'.repeat(20);
    expect((await alice.v2.tweet(cjk)).data.text).toBe(Array.from(cjk).slice(0, 140).join(''));
    const amps = `${'&&&& '.repeat(55)}end`; // 278 weighted: not long, though 1,103 code points escaped
    const shown = (await alice.v2.tweet(amps)).data.text;
    expect(shown).toBe(amps.replace(/&/g, '&amp;'));
    const tl = await alice.v2.get<ExtrasBody>(`users/${ALICE.userId}/tweets`, FIELDS);
    expect(tl.data?.[0]?.note_tweet).toBeUndefined();
    expect(tl.data?.[1]?.note_tweet?.text).toBe(cjk);
  });

  it('the 2026 reply rule: a self-reply (a thread) passes; a reply to another author needs their mention or quote', async () => {
    const fx = await fake({ replyRestriction: true });
    const alice = oauth1(fx);
    const bob = oauth1(fx, 'bob-oauth1');
    const own = await alice.v2.tweet('thread part 1');
    expect((await alice.v2.tweet('thread part 2', { reply: { in_reply_to_tweet_id: own.data.id } })).data.id).toBeDefined();
    const stranger = await bob.v2.tweet('bob talks');
    expect(await problemOf(alice.v2.tweet('may I?', { reply: { in_reply_to_tweet_id: stranger.data.id } }))).toMatchObject({
      code: 403,
      detail: expect.stringContaining('not been mentioned'),
    });
    const quotesAlice = await bob.v2.tweet('bob quotes alice', { quote_tweet_id: own.data.id });
    expect((await alice.v2.tweet('thanks for the quote', { reply: { in_reply_to_tweet_id: quotesAlice.data.id } })).data.id).toBeDefined();
  });
});

describe('fake X: timeline lookups', () => {
  it('pages newest first with max_results, next_token, since_id and start_time', async () => {
    const clock = manualClock();
    const fx = await fake({ clock: clock.now });
    const client = oauth1(fx);
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) {
      ids.push((await client.v2.tweet(`post ${i}`)).data.id);
      clock.advance(1000);
    }
    const sorted = [...ids].sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1));
    expect(sorted).toEqual(ids);

    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const page: TimelineBody = await client.v2.get<TimelineBody>(`users/${ALICE.userId}/tweets`, {
        max_results: 5,
        'tweet.fields': 'created_at',
        ...(token ? { pagination_token: token } : {}),
      });
      seen.push(...(page.data ?? []).map((t) => t.id));
      expect(page.meta.result_count).toBe(page.data?.length);
      expect(page.meta.newest_id).toBe(page.data?.[0]?.id);
      token = page.meta.next_token;
      pages++;
    } while (token);
    expect(pages).toBe(3);
    expect(seen).toEqual([...ids].reverse());

    const since = await client.v2.get<TimelineBody>(`users/${ALICE.userId}/tweets`, { since_id: ids[9] as string, max_results: 5 });
    expect(since.data?.map((t) => t.id)).toEqual([ids[11], ids[10]]);

    const started = await client.v2.get<TimelineBody>(`users/${ALICE.userId}/tweets`, {
      start_time: new Date(T0 + 10_000).toISOString(),
      'tweet.fields': 'created_at',
    });
    expect(started.data?.map((t) => t.created_at)).toEqual(['2026-01-01T00:00:11.000Z', '2026-01-01T00:00:10.000Z']);

    // The library's own paginator works against the fake too.
    const paginator = await client.v2.userTimeline(ALICE.userId, { max_results: 5 });
    expect(paginator.tweets.map((t) => t.id)).toEqual([...ids].reverse().slice(0, 5));
    await paginator.fetchNext();
    expect(paginator.tweets).toHaveLength(10);
  });

  it('returns meta only for an empty timeline and 400 for out-of-range max_results', async () => {
    const fx = await fake();
    const client = oauth1(fx);
    const empty = await client.v2.get<TimelineBody>(`users/${BOB.userId}/tweets`);
    expect(empty).toEqual({ meta: { result_count: 0 } });
    for (const max_results of [4, 101]) {
      const err = await failure(client.v2.get(`users/${BOB.userId}/tweets`, { max_results }));
      expect((err as ApiResponseError).code).toBe(400);
    }
  });

  it('hides posts until the timeline lag has passed', async () => {
    const clock = manualClock();
    const fx = await fake({ clock: clock.now, timelineLagMs: 30_000 });
    const client = oauth1(fx);
    const post = await client.v2.tweet('eventually visible');
    expect(fx.created()).toHaveLength(1);
    expect((await client.v2.get<TimelineBody>(`users/${ALICE.userId}/tweets`)).meta.result_count).toBe(0);
    clock.advance(29_999);
    expect((await client.v2.get<TimelineBody>(`users/${ALICE.userId}/tweets`)).meta.result_count).toBe(0);
    clock.advance(1);
    expect((await client.v2.get<TimelineBody>(`users/${ALICE.userId}/tweets`)).data?.[0]?.id).toBe(post.data.id);

    fx.setTimelineLag(60_000);
    expect((await client.v2.get<TimelineBody>(`users/${ALICE.userId}/tweets`)).meta.result_count).toBe(0);
  });
});

describe('fake X: renderings as X shows them in 2026', () => {
  it('created_at has whole seconds, rounded down', async () => {
    const clock = manualClock(T0 + 1_750);
    const fx = await fake({ clock: clock.now });
    const client = oauth1(fx);
    await client.v2.tweet('on the dot');
    await client.v2.sendDmToParticipant(BOB.userId, { text: 'dm on the dot' });
    const tl = await client.v2.get<TimelineBody>(`users/${ALICE.userId}/tweets`, { 'tweet.fields': 'created_at' });
    expect(tl.data?.[0]?.created_at).toBe('2026-01-01T00:00:01.000Z');
    const dms = await client.v2.get<{ data?: { created_at?: string }[] }>(`dm_conversations/with/${BOB.userId}/dm_events`, { 'dm_event.fields': 'created_at' });
    expect(dms.data?.[0]?.created_at).toBe('2026-01-01T00:00:01.000Z');
    expect(fx.created()[0]?.createdAt).toBe(T0 + 1_750);
  });

  it("a reply's own leading @handles join the hidden prefix", async () => {
    const fx = await fake();
    const alice = oauth1(fx);
    const root = await oauth1(fx, 'bob-oauth1').v2.tweet('root post');
    const reply = await alice.v2.tweet('@bob @carol thanks!', { reply: { in_reply_to_tweet_id: root.data.id } });
    const other = await alice.v2.tweet('@carol thanks too', { reply: { in_reply_to_tweet_id: root.data.id } });
    const tl = await alice.v2.get<TimelineBody>(`users/${ALICE.userId}/tweets`, { 'tweet.fields': 'display_text_range' });
    expect(tl.data).toEqual([
      { id: other.data.id, text: '@bob @carol thanks too', display_text_range: [12, 22], edit_history_tweet_ids: [other.data.id] },
      { id: reply.data.id, text: '@bob @carol thanks!', display_text_range: [12, 19], edit_history_tweet_ids: [reply.data.id] },
    ]);
  });

  it('DMs come back HTML-escaped', async () => {
    const fx = await fake();
    await oauth1(fx).v2.sendDmToParticipant(BOB.userId, { text: 'a & b <c>' });
    const events = await oauth1(fx, 'bob-oauth1').v2.get<{ data?: { text: string }[] }>(`dm_conversations/with/${ALICE.userId}/dm_events`);
    expect(events.data?.[0]?.text).toBe('a &amp; b &lt;c&gt;');
  });

  it('editPost makes a new version with a new id and edit_history_tweet_ids; ground truth stays one post', async () => {
    const clock = manualClock();
    const fx = await fake({ clock: clock.now });
    const client = oauth1(fx);
    const first = await client.v2.tweet('typo & all');
    clock.advance(60_000);
    const edit = fx.editPost(first.data.id, 'fixed & all');
    expect(edit.editHistoryIds).toEqual([first.data.id, edit.id]);
    expect(BigInt(edit.id)).toBeGreaterThan(BigInt(first.data.id));
    clock.advance(1_000);
    const again = fx.editPost(edit.id, 'fixed again');
    expect(again.editHistoryIds).toEqual([first.data.id, edit.id, again.id]);
    expect(() => fx.editPost(first.data.id, 'old version')).toThrow();

    const tl = await client.v2.get<TimelineBody & { data?: { edit_history_tweet_ids?: string[] }[] }>(`users/${ALICE.userId}/tweets`, {
      'tweet.fields': 'created_at,edit_history_tweet_ids',
    });
    expect(tl.data).toEqual([
      { id: again.id, text: 'fixed again', created_at: '2026-01-01T00:01:01.000Z', edit_history_tweet_ids: [first.data.id, edit.id, again.id] },
    ]);
    expect(fx.created()).toEqual([{ kind: 'post', id: first.data.id, authorId: ALICE.userId, text: 'typo & all', createdAt: T0, edits: [edit.id, again.id] }]);
  });

  it('an edit of a reply keeps the reply target and its prefix', async () => {
    const fx = await fake();
    const root = await oauth1(fx, 'bob-oauth1').v2.tweet('root post');
    const reply = await oauth1(fx).v2.tweet('nice', { reply: { in_reply_to_tweet_id: root.data.id } });
    const edit = fx.editPost(reply.data.id, 'very nice');
    const tl = await oauth1(fx).v2.get<TimelineBody>(`users/${ALICE.userId}/tweets`, { 'tweet.fields': 'display_text_range,referenced_tweets' });
    expect(tl.data).toEqual([
      {
        id: edit.id,
        text: '@bob very nice',
        display_text_range: [5, 14],
        referenced_tweets: [{ type: 'replied_to', id: root.data.id }],
        edit_history_tweet_ids: [reply.data.id, edit.id],
      },
    ]);
  });
});

describe('fake X: direct messages', () => {
  it('sends a DM and lists the conversation newest first, after the lag', async () => {
    const clock = manualClock();
    const fx = await fake({ clock: clock.now, timelineLagMs: 1000 });
    const alice = oauth1(fx);
    const bob = oauth1(fx, 'bob-oauth1');
    const sent = (await alice.v2.sendDmToParticipant(BOB.userId, { text: 'hi bob, see https://example.com & more' })) as unknown as {
      data: { dm_conversation_id: string; dm_event_id: string };
    };
    expect(sent.data.dm_conversation_id).toBe('1001-1002');
    clock.advance(500);
    await bob.v2.sendDmToParticipant(ALICE.userId, { text: 'hi alice' });

    type DmBody = {
      data?: { id: string; text: string; event_type: string; sender_id?: string; created_at?: string; dm_conversation_id?: string }[];
      meta: { result_count: number; next_token?: string };
    };
    const fields = { 'dm_event.fields': 'created_at,sender_id,dm_conversation_id,entities' };
    const early = await alice.v2.get<DmBody>(`dm_conversations/with/${BOB.userId}/dm_events`, fields);
    expect(early).toEqual({ meta: { result_count: 0 } });

    clock.advance(1000);
    const events = await bob.v2.get<DmBody>(`dm_conversations/with/${ALICE.userId}/dm_events`, fields);
    expect(events.data?.map((e) => [e.text, e.sender_id, e.event_type])).toEqual([
      ['hi alice', BOB.userId, 'MessageCreate'],
      ['hi bob, see https://t.co/0000000001 &amp; more', ALICE.userId, 'MessageCreate'],
    ]);
    expect(events.data?.[1]).toMatchObject({ id: sent.data.dm_event_id, dm_conversation_id: '1001-1002', created_at: '2026-01-01T00:00:00.000Z' });

    const paged = await alice.v2.get<DmBody>(`dm_conversations/with/${BOB.userId}/dm_events`, { max_results: 1 });
    expect(paged.data).toHaveLength(1);
    const rest = await alice.v2.get<DmBody>(`dm_conversations/with/${BOB.userId}/dm_events`, {
      max_results: 1,
      pagination_token: paged.meta.next_token as string,
    });
    expect(rest.data?.[0]?.id).toBe(sent.data.dm_event_id);
    expect(rest.meta.next_token).toBeUndefined();

    expect(fx.created().map((c) => [c.kind, c.authorId, c.recipientId, c.dmConversationId])).toEqual([
      ['dm', ALICE.userId, BOB.userId, '1001-1002'],
      ['dm', BOB.userId, ALICE.userId, '1001-1002'],
    ]);
  });
});

describe('fake X: faults seen through twitter-api-v2', () => {
  interface Case {
    kind: FaultKind;
    commits: boolean;
    check: (err: unknown) => void;
  }
  const cases: Case[] = [
    {
      kind: 'hang-before-commit',
      commits: false,
      check: (err) => {
        expect(err).toBeInstanceOf(ApiRequestError);
        expect(requestCause(err).message).toBe('Request timeout.');
      },
    },
    {
      kind: 'commit-then-hang',
      commits: true,
      check: (err) => {
        expect(err).toBeInstanceOf(ApiRequestError);
        expect(requestCause(err).message).toBe('Request timeout.');
        expect((err as ApiRequestError).requestError).toBeUndefined();
      },
    },
    {
      kind: 'commit-then-reset',
      commits: true,
      check: (err) => {
        expect(err).toBeInstanceOf(ApiRequestError);
        expect(requestCause(err)).toMatchObject({ code: 'ECONNRESET', message: 'socket hang up' });
      },
    },
    {
      kind: 'reset-before-commit',
      commits: false,
      check: (err) => {
        expect(err).toBeInstanceOf(ApiRequestError);
        expect(requestCause(err)).toMatchObject({ code: 'ECONNRESET', message: 'socket hang up' });
      },
    },
    {
      kind: '5xx-with-commit',
      commits: true,
      check: (err) => {
        expect(err).toBeInstanceOf(ApiResponseError);
        expect((err as ApiResponseError).code).toBe(503);
        expect((err as ApiResponseError).data.title).toBe('Service Unavailable');
      },
    },
    {
      kind: '5xx-without-commit',
      commits: false,
      check: (err) => {
        expect(err).toBeInstanceOf(ApiResponseError);
        expect((err as ApiResponseError).code).toBe(503);
      },
    },
    {
      kind: 'truncated-201',
      commits: true,
      check: (err) => {
        expect(err).toBeInstanceOf(ApiPartialResponseError);
        const partial = err as ApiPartialResponseError;
        expect(partial.response.statusCode).toBe(201);
        expect(partial.message).toBe('Request failed with partial response with HTTP code 201 (connection abruptly closed)');
        expect(partial.rawContent.startsWith('{"data":{')).toBe(true);
      },
    },
    {
      kind: '429',
      commits: false,
      check: (err) => {
        expect(err).toBeInstanceOf(ApiResponseError);
        const e = err as ApiResponseError;
        expect(e.code).toBe(429);
        expect(e.rateLimitError).toBe(true);
        expect(e.rateLimit).toMatchObject({ limit: 100, remaining: 0, reset: T0 / 1000 + 2 });
      },
    },
  ];

  it('covers every fault kind', () => {
    expect(cases.map((c) => c.kind).sort()).toEqual([...ALL_FAULT_KINDS].sort());
  });

  // A plain cut body is what the client can report (ApiPartialResponseError);
  // the gzip case, where it reports nothing at all, is its own test below.
  const plain = (kind: string) => (kind === 'truncated-201' ? { gzip: false } : {});

  it('truncated-201 with gzip (as X answers): twitter-api-v2 stays pending far past its own timeout', async () => {
    const fx = await fake({ clock: () => T0 });
    fx.injectNext('truncated-201');
    const call = oauth1(fx, 'alice-oauth1', HANG_TIMEOUT_MS).v2.tweet('cut gzip');
    call.catch(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<'still pending'>((r) => {
      timer = setTimeout(() => r('still pending'), HANG_TIMEOUT_MS * 5);
    });
    const first = await Promise.race([
      call.then(
        () => 'resolved',
        () => 'rejected',
      ),
      waited,
    ]);
    clearTimeout(timer);
    expect(first).toBe('still pending');
    expect(fx.created().map((i) => i.text)).toEqual(['cut gzip']);
  });

  for (const c of cases) {
    it(`${c.kind}: post ${c.commits ? 'is' : 'is not'} created and the client sees the expected error`, async () => {
      const fx = await fake({ clock: () => T0, ...plain(c.kind) });
      fx.injectNext(c.kind);
      const err = await failure(oauth1(fx, 'alice-oauth1', HANG_TIMEOUT_MS).v2.tweet(`fault ${c.kind}`));
      c.check(err);
      expect(fx.created().map((i) => i.text)).toEqual(c.commits ? [`fault ${c.kind}`] : []);
      expect(fx.faultsInjected()).toEqual({ [c.kind]: 1 });
      expect(fx.requests()[0]?.fault).toBe(c.kind);
    });

    it(`${c.kind}: DM ${c.commits ? 'is' : 'is not'} created and the client sees the expected error`, async () => {
      const fx = await fake({ clock: () => T0, ...plain(c.kind) });
      fx.injectNext(c.kind, { path: /\/messages$/ });
      const err = await failure(oauth1(fx, 'alice-oauth1', HANG_TIMEOUT_MS).v2.sendDmToParticipant(BOB.userId, { text: `dm ${c.kind}` }));
      if (c.kind === '429') {
        // DM limits differ from post limits; only the shape matters here.
        expect(err).toBeInstanceOf(ApiResponseError);
        expect((err as ApiResponseError).rateLimit).toMatchObject({ remaining: 0, reset: T0 / 1000 + 2 });
      } else {
        c.check(err);
      }
      expect(fx.created().map((i) => [i.kind, i.text])).toEqual(c.commits ? [['dm', `dm ${c.kind}`]] : []);
    });
  }

  it('a retry after a lost 201 meets the duplicate-content 403', async () => {
    const fx = await fake();
    const client = oauth1(fx, 'alice-oauth1', HANG_TIMEOUT_MS);
    fx.injectNext('commit-then-reset');
    await failure(client.v2.tweet('only once please'));
    const err = await failure(client.v2.tweet('only once please'));
    expect((err as ApiResponseError).code).toBe(403);
    expect(fx.created()).toHaveLength(1);
  });

  it('scripted faults are FIFO, filtered by text or path, and leave reads alone', async () => {
    const fx = await fake();
    const client = oauth1(fx);
    fx.injectNext('5xx-without-commit', { text: 'second' });
    fx.injectNext('429', { path: /\/messages$/ });
    await client.v2.me();
    await client.v2.tweet('first');
    await failure(client.v2.tweet('second'));
    await client.v2.tweet('third');
    await failure(client.v2.sendDmToParticipant(BOB.userId, { text: 'dm' }));
    expect(fx.requests().map((r) => [r.path, r.fault, r.status])).toEqual([
      ['/2/users/me', undefined, 200],
      ['/2/tweets', undefined, 201],
      ['/2/tweets', '5xx-without-commit', 503],
      ['/2/tweets', undefined, 201],
      [`/2/dm_conversations/with/${BOB.userId}/messages`, '429', 429],
    ]);
    expect(fx.created().map((c) => c.text)).toEqual(['first', 'third']);
  });

  it('random faults follow the seed', async () => {
    const kinds: FaultKind[] = ['5xx-with-commit', '5xx-without-commit', '429'];
    const run = async (seed: number): Promise<(string | undefined)[]> => {
      const fx = await fake({ seed, faultRate: 0.5, faultKinds: kinds });
      const client = oauth1(fx);
      for (let i = 0; i < 16; i++) await client.v2.tweet(`random ${i}`).catch(() => undefined);
      return fx.requests().map((r) => r.fault);
    };
    const a = await run(7);
    const b = await run(7);
    expect(a).toEqual(b);
    expect(a.some((f) => f === undefined)).toBe(true);
    expect(a.some((f) => f !== undefined)).toBe(true);

    // Same decisions straight from the plan, without HTTP.
    const plan = new FaultPlan({ seed: 7, rate: 0.5, kinds });
    expect(Array.from({ length: 16 }, (_, i) => plan.next({ path: '/2/tweets', text: `random ${i}` }))).toEqual(a);
  });

  it('close() ends hanging requests so nothing leaks', async () => {
    const fx = await startFakeX({ accounts: [ALICE] });
    fx.injectNext('hang-before-commit');
    const pending = failure(oauth1(fx, 'alice-oauth1', 60_000).v2.tweet('stuck'));
    // Wait until the server holds the request, then close under it.
    while (fx.faultsInjected()['hang-before-commit'] !== 1) await new Promise((r) => setImmediate(r));
    await fx.close();
    const err = await pending;
    expect(err).toBeInstanceOf(ApiRequestError);
    expect(fx.created()).toEqual([]);
  });

  it('refuses to listen beyond loopback', async () => {
    await expect(startFakeX({ accounts: [ALICE], host: '0.0.0.0' })).rejects.toThrow(/127\.0\.0\.0\/8/);
  });
});
