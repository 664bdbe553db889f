/**
 * Contract check of the fake X and of the adapter against X's own OpenAPI
 * documents (shared/x-api, see its README). The real adapter (TwitterXPort
 * over twitter-api-v2) talks to the fake X through a recording proxy; every
 * request and answer that went over the wire is validated against the
 * operation X's spec 2.159 describes (the field names today's clients send),
 * and the success bodies also against 2.167.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeX, type FakeX } from '../src/fake-x/index.js';
import { type Account, staticCredentialStore } from '../src/x/credentials.js';
import { TwitterXPort } from '../src/x/twitter.js';
import { ACCOUNTS, FAKE_ACCOUNTS } from './harness.js';
import { describeFailures, loadSpec, startRecordingProxy, type CheckResult, type Exchange, type RecordingProxy, type XSpec } from './x-spec.js';

const EXTRA_ACCOUNTS: Account[] = [
  { id: 'fan', userId: '2001', auth: { type: 'oauth2', accessToken: 'FAN-TOKEN' } },
  // A token the fake does not know: 401 on everything.
  { id: 'stranger', userId: '1001', auth: { type: 'oauth2', accessToken: 'NOT-A-KNOWN-TOKEN' } },
  // A valid token asking for the timeline of a user X does not have: 200 with `errors`.
  { id: 'ghost', userId: '9999999', auth: { type: 'oauth2', accessToken: 'FAN-TOKEN' } },
];

const OPS = {
  createPost: 'createPosts',
  sendDm: 'createDirectMessagesByParticipantId',
  timeline: 'getUsersPosts',
  dmEvents: 'getDirectMessagesEventsByParticipantId',
} as const;

/**
 * Response fields the fake sends that 2.159 declares nowhere (the schemas
 * allow them: no additionalProperties:false). Every other undeclared field
 * fails the check, since that is how a renamed field would show up.
 */
const KNOWN_UNDECLARED: Record<string, string> = {
  // X answers a created post with edit_history_tweet_ids (and the adapter
  // does not read it); 2.159's TweetCreateResponse.data lists only id and
  // text, 2.167's CreatePostsResponseData adds edit_history_post_ids.
  'createPosts 201 /data/edit_history_tweet_ids': 'sent by X, missing from 2.159',
  // Spec inconsistency: 2.159 offers `entities` in dm_event.fields, but its
  // DmEvent schema has no `entities` (it lists urls/hashtags/... at the top
  // level instead); 2.167's DmEvent declares `entities` (DmEventEntities).
  // The fake and the adapter (entities.urls) follow the field X lets you ask
  // for; the entities' shape is checked against 2.167 below.
  'getDirectMessagesEventsByParticipantId 200 /data/N/entities': 'requested via dm_event.fields=entities, schema lacks it in 2.159',
};

/**
 * Response issues that are defects of 2.159 itself, each allowed only for
 * the value that trips it: 2.159's ReplySettingsWithVerifiedUsers lists
 * `mentionedUsers` (14 letters) in its enum but its pattern allows 1-12
 * letters, so no valid answer could say it; 2.167 dropped the pattern.
 */
const KNOWN_SPEC_DEFECTS: { issue: RegExp; allowed: unknown; why: string }[] = [
  {
    issue: /^response body \(#\/components\/schemas\/Get2UsersIdTweetsResponse\): (\/data\/\d+\/reply_settings) must match pattern "\^\[A-Za-z\]\{1,12\}\$"$/,
    allowed: 'mentionedUsers',
    why: '2.159: mentionedUsers is in the enum, longer than the pattern allows',
  },
];

/** The value at a JSON pointer (`/data/2/reply_settings`). */
const at = (body: unknown, pointer: string): unknown =>
  pointer
    .split('/')
    .slice(1)
    .reduce<unknown>((v, k) => (typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[k] : undefined), body);

/** A response issue that is a known spec defect for the value the body has there. */
function isKnownDefect(issue: string, ex: Exchange | undefined): boolean {
  return KNOWN_SPEC_DEFECTS.some((d) => {
    const m = d.issue.exec(issue);
    return m?.[1] !== undefined && ex?.response !== undefined && at(JSON.parse(ex.response.text), m[1]) === d.allowed;
  });
}

const undeclaredKey = (r: CheckResult, pointer: string) => `${r.operationId} ${r.status} ${pointer.replace(/\/\d+(?=\/|$)/g, '/N')}`;

interface Expected {
  operationId: string;
  /** The status, or the statuses X may answer with (the check then still validates the body). */
  status: number | readonly number[];
  /** The request deliberately breaks the spec: its issues must match this (and the fake must refuse it). */
  requestIssue?: RegExp;
}

let spec: XSpec;
let fake: FakeX;
let proxy: RecordingProxy;
let x: TwitterXPort;
const checked: CheckResult[] = [];
const tag = randomBytes(3).toString('hex');
const startedAt = Date.now();

/** The exchanges that went over the wire while `fn` ran (recorded before the answer reached the client). */
async function wire(fn: () => Promise<unknown>): Promise<Exchange[]> {
  const from = proxy.exchanges.length;
  await fn();
  return proxy.exchanges.slice(from);
}

async function rejection(p: Promise<unknown>): Promise<{ code?: number }> {
  try {
    await p;
  } catch (err) {
    return err as { code?: number };
  }
  throw new Error('expected the call to fail');
}

/** A result whose undeclared response fields (other than the known ones) count as issues. */
function judge(r: CheckResult): CheckResult {
  const undeclared = r.undeclared.filter((p) => !(undeclaredKey(r, p) in KNOWN_UNDECLARED)).map((p) => `undeclared field ${p} (not in ${r.responseSchema})`);
  return { ...r, responseIssues: [...r.responseIssues, ...undeclared] };
}

/** Validate every exchange against the spec; fail with operation, status and the first validation errors. */
function expectConforms(exchanges: Exchange[], expected: Expected[]): CheckResult[] {
  const results = exchanges
    .map((e) => spec.check(e))
    .map((r, i) => ({ ...r, responseIssues: r.responseIssues.filter((issue) => !isKnownDefect(issue, exchanges[i])) }));
  checked.push(...results);
  const judged = results.map((r, i) => {
    const out = judge(r);
    const want = expected[i]?.requestIssue;
    if (!want) return out;
    expect(r.requestIssues.join('\n'), `${r.label}: the spec should refuse this request too`).toMatch(want);
    return { ...out, requestIssues: [] };
  });
  const failures = describeFailures(judged);
  const want = (e: Expected, got: number | undefined) => (typeof e.status === 'number' ? e.status : e.status.includes(got ?? -1) ? got : e.status.join('|'));
  expect(
    results.map((r) => `${r.operationId} ${r.status}`),
    failures,
  ).toEqual(expected.map((e, i) => `${e.operationId} ${want(e, results[i]?.status)}`));
  if (failures) expect.fail(`X API ${spec.version} contract violated:\n${failures}`);
  return results;
}

const bodyOf = (ex: Exchange) => JSON.parse(ex.response?.text ?? 'null') as Record<string, unknown>;

beforeAll(async () => {
  spec = loadSpec('2.159');
  expect(spec.version).toBe('2.159');
  fake = await startFakeX({ accounts: FAKE_ACCOUNTS });
  proxy = await startRecordingProxy(fake.url);
  x = new TwitterXPort({ credentials: staticCredentialStore([...ACCOUNTS, ...EXTRA_ACCOUNTS]), baseUrl: proxy.url, timeoutMs: 5_000 });
});

afterAll(async () => {
  x?.close();
  await proxy?.close();
  await fake?.close();
});

describe(`the adapter and the fake X speak X API 2.159`, () => {
  const ids: Record<string, string> = {};

  it('POST /2/tweets: a post, a reply to it, a post with URLs, a long post (OAuth 1.0a and 2.0)', async () => {
    const exchanges = await wire(async () => {
      ids.first = (await x.createPost('acme', { text: `contract post ${tag}` })).id;
      ids.reply = (await x.createPost('globex', { text: `a reply ${tag}`, inReplyToTweetId: ids.first })).id;
      ids.link = (await x.createPost('acme', { text: `link https://example.com/a?b=1&c=2 & <b> example.org ${tag}` })).id;
      const long = `${'long post '.repeat(30)}https://example.com/tail ${tag}`;
      ids.long = (await x.createPost('acme', { text: long })).id;
    });
    expectConforms(exchanges, Array(4).fill({ operationId: OPS.createPost, status: 201 }));
    expect(bodyOf(exchanges[1]!)).toMatchObject({ data: { id: ids.reply } });
  });

  it('POST /2/dm_conversations/with/{participant_id}/messages, both directions', async () => {
    const exchanges = await wire(async () => {
      await x.sendDm('acme', { recipientId: '2001', text: `hello fan, see https://example.com/dm ${tag}` });
      await x.sendDm('fan', { recipientId: '1001', text: `hi acme ${tag}` });
      await x.sendDm('acme', { recipientId: '2001', text: `third & last ${tag}` });
    });
    expectConforms(exchanges, Array(3).fill({ operationId: OPS.sendDm, status: 201 }));
  });

  it('GET /2/users/{id}/tweets with start_time, since_id and pagination', async () => {
    const more = await wire(async () => {
      for (let i = 0; i < 3; i++) await x.createPost('acme', { text: `more ${i} ${tag}` });
    });
    expectConforms(more, Array(3).fill({ operationId: OPS.createPost, status: 201 }));

    const startTime = new Date(Math.floor(startedAt / 1000) * 1000 - 1000).toISOString();
    const seen: string[] = [];
    const pages = await wire(async () => {
      let nextToken: string | undefined;
      do {
        const page = await x.timeline('acme', { startTime, maxResults: 5, paginationToken: nextToken });
        seen.push(...page.items.map((t) => t.id));
        nextToken = page.nextToken;
      } while (nextToken);
      // Nothing newer than the newest: an empty page ({meta: {result_count: 0}}).
      expect((await x.timeline('acme', { sinceId: seen[0] })).items).toEqual([]);
      // The reply: referenced_tweets, an @-prefix and display_text_range.
      expect((await x.timeline('globex', { startTime })).items[0]).toMatchObject({ id: ids.reply, inReplyToTweetId: ids.first });
    });
    expect(seen).toHaveLength(6);
    expect(seen).toEqual(expect.arrayContaining([ids.first, ids.link, ids.long]));
    expectConforms(pages, Array(4).fill({ operationId: OPS.timeline, status: 200 }));
    expect(pages.map((e) => new Map(e.request.query).get('start_time'))).toEqual([startTime, startTime, undefined, startTime]);
  });

  it('GET /2/dm_conversations/with/{participant_id}/dm_events with pagination', async () => {
    const texts: string[] = [];
    const pages = await wire(async () => {
      let nextToken: string | undefined;
      do {
        const page = await x.dmEvents('acme', '2001', { maxResults: 1, paginationToken: nextToken });
        texts.push(...page.items.map((e) => e.text));
        nextToken = page.nextToken;
      } while (nextToken);
      // No conversation with this user yet.
      expect((await x.dmEvents('globex', '2001', {})).items).toEqual([]);
    });
    expect(texts).toHaveLength(3);
    expectConforms(pages, Array(4).fill({ operationId: OPS.dmEvents, status: 200 }));
  });

  it('POST /2/tweets with quote_tweet_id, poll and reply_settings; the timeline shows the quote, the poll and the setting', async () => {
    const created = await wire(async () => {
      ids.quote = (await x.createPost('fan', { text: `quoting ${tag}`, quoteTweetId: ids.first!, replySettings: 'mentionedUsers' })).id;
      ids.poll = (
        await x.createPost('fan', { text: `a poll ${tag}`, poll: { options: ['yes', 'no', 'maybe'], durationMinutes: 1_440 }, replySettings: 'verified' })
      ).id;
      // acme has Premium on X: a long post.
      ids.longQuote = (await x.createPost('acme', { text: `${'long quote '.repeat(30)}${tag}`, quoteTweetId: ids.first! })).id;
    });
    expectConforms(created, Array(3).fill({ operationId: OPS.createPost, status: 201 }));
    expect(JSON.parse(created[0]!.request.rawBody)).toEqual({ text: `quoting ${tag}`, quote_tweet_id: ids.first, reply_settings: 'mentionedUsers' });
    expect(JSON.parse(created[1]!.request.rawBody)).toEqual({
      text: `a poll ${tag}`,
      poll: { options: ['yes', 'no', 'maybe'], duration_minutes: 1_440 },
      reply_settings: 'verified',
    });

    const reads = await wire(async () => {
      const items = (await x.timeline('fan', { startTime: new Date(startedAt - 60_000).toISOString() })).items;
      expect(items.find((t) => t.id === ids.quote)).toMatchObject({ quotedTweetId: ids.first });
      expect(items.find((t) => t.id === ids.poll)?.pollIds).toHaveLength(1);

      // reply_settings, which the adapter does not ask for, as any client would ask.
      const url = `${proxy.url}/2/users/2001/tweets?tweet.fields=reply_settings,attachments,referenced_tweets,note_tweet`;
      const res = await fetch(url, { headers: { authorization: 'Bearer FAN-TOKEN' } });
      expect(res.status).toBe(200);
    });
    const long = await wire(async () => {
      const items = (await x.timeline('acme', { startTime: new Date(startedAt - 60_000).toISOString() })).items;
      expect(items.find((t) => t.id === ids.longQuote)).toMatchObject({ quotedTweetId: ids.first, noteText: expect.stringContaining('long quote') });
    });
    expectConforms(long, [{ operationId: OPS.timeline, status: 200 }]);
    expectConforms(reads, Array(2).fill({ operationId: OPS.timeline, status: 200 }));
    const raw = bodyOf(reads[1]!).data as { id: string; reply_settings?: string; attachments?: unknown; referenced_tweets?: unknown }[];
    expect(raw.find((t) => t.id === ids.quote)).toMatchObject({ reply_settings: 'mentionedUsers', referenced_tweets: [{ type: 'quoted', id: ids.first }] });
    expect(raw.find((t) => t.id === ids.poll)).toMatchObject({ reply_settings: 'verified', attachments: { poll_ids: [expect.any(String)] } });
    // The one defect let through above, pinned: the day 2.159's pattern admits mentionedUsers, this says so.
    expect(spec.validateRef('#/components/schemas/ReplySettingsWithVerifiedUsers', 'mentionedUsers')).toEqual([expect.stringMatching(/must match pattern/)]);
    expect(spec.validateRef('#/components/schemas/ReplySettingsWithVerifiedUsers', 'verified')).toEqual([]);
  });

  it('400 and 403 answers for quotes and polls: a poll with a quote, a bad poll, a quote of a post that does not exist', async () => {
    const exchanges = await wire(async () => {
      const poll = { options: ['a', 'b'], durationMinutes: 60 };
      expect(await rejection(x.createPost('fan', { text: `poll and quote ${tag}`, poll, quoteTweetId: ids.first! }))).toMatchObject({ code: 400 });
      expect(await rejection(x.createPost('fan', { text: `one option ${tag}`, poll: { options: ['a'], durationMinutes: 60 } }))).toMatchObject({ code: 400 });
      expect(await rejection(x.createPost('fan', { text: `4 minutes ${tag}`, poll: { ...poll, durationMinutes: 4 } }))).toMatchObject({ code: 400 });
      expect([400, 403]).toContain((await rejection(x.createPost('fan', { text: `quoting nothing ${tag}`, quoteTweetId: '1' }))).code);
      // The fan has X's 280: a longer post is X's 400, naming text.
      expect(await rejection(x.createPost('fan', { text: `${'x'.repeat(281)} ${tag}` }))).toMatchObject({ code: 400 });
    });
    expectConforms(exchanges, [
      { operationId: OPS.createPost, status: 400 },
      { operationId: OPS.createPost, status: 400, requestIssue: /\/poll\/options must NOT have fewer than 2 items/ },
      { operationId: OPS.createPost, status: 400, requestIssue: /\/poll\/duration_minutes must be >= 5/ },
      { operationId: OPS.createPost, status: [400, 403] },
      { operationId: OPS.createPost, status: 400 },
    ]);
  });

  it('400 answers: bad text, unknown reply target, DM to self, and requests the spec refuses too', async () => {
    const exchanges = await wire(async () => {
      expect(await rejection(x.createPost('acme', { text: '   ' }))).toMatchObject({ code: 400 });
      // X refuses a reply to a post that does not exist (or is not visible);
      // 400 or 403 depending on how the fake models it: the body must be a valid problem either way.
      expect([400, 403]).toContain((await rejection(x.createPost('acme', { text: `reply to nothing ${tag}`, inReplyToTweetId: '1' }))).code);
      expect(await rejection(x.sendDm('acme', { recipientId: '1001', text: `to myself ${tag}` }))).toMatchObject({ code: 400 });
      expect(await rejection(x.timeline('acme', { maxResults: 500 }))).toMatchObject({ code: 400 });
      expect(await rejection(x.sendDm('acme', { recipientId: 'not-a-user', text: `nobody ${tag}` }))).toMatchObject({ code: 400 });
    });
    const results = expectConforms(exchanges, [
      { operationId: OPS.createPost, status: 400 },
      { operationId: OPS.createPost, status: [400, 403] },
      { operationId: OPS.sendDm, status: 400 },
      { operationId: OPS.timeline, status: 400, requestIssue: /query parameter max_results="500": \(root\) must be <= 100/ },
      { operationId: OPS.sendDm, status: 400, requestIssue: /path parameter participant_id="not-a-user": \(root\) must match pattern/ },
    ]);
    expect(results.every((r) => r.responseSchema === '#/components/schemas/Problem')).toBe(true);
    expect(bodyOf(exchanges[0]!)).toMatchObject({ type: 'https://api.twitter.com/2/problems/invalid-request' });
  });

  it('401 for a token X does not know, on a write and a read', async () => {
    const exchanges = await wire(async () => {
      expect(await rejection(x.createPost('stranger', { text: `who am I ${tag}` }))).toMatchObject({ code: 401 });
      expect(await rejection(x.timeline('stranger', {}))).toMatchObject({ code: 401 });
    });
    expectConforms(exchanges, [
      { operationId: OPS.createPost, status: 401 },
      { operationId: OPS.timeline, status: 401 },
    ]);
  });

  it('403 for duplicate content', async () => {
    const exchanges = await wire(async () => {
      expect(await rejection(x.createPost('acme', { text: `contract post ${tag}` }))).toMatchObject({ code: 403 });
    });
    expectConforms(exchanges, [{ operationId: OPS.createPost, status: 403 }]);
  });

  it('429 and 503 from injected faults, on posts and DMs', async () => {
    const exchanges = await wire(async () => {
      fake.injectNext('429');
      expect(await rejection(x.createPost('acme', { text: `rate limited ${tag}` }))).toMatchObject({ code: 429 });
      fake.injectNext('5xx-without-commit');
      expect(await rejection(x.createPost('acme', { text: `unavailable ${tag}` }))).toMatchObject({ code: 503 });
      fake.injectNext('429', { path: /\/messages$/ });
      expect(await rejection(x.sendDm('acme', { recipientId: '2001', text: `dm rate limited ${tag}` }))).toMatchObject({ code: 429 });
      fake.injectNext('5xx-without-commit', { path: /\/messages$/ });
      expect(await rejection(x.sendDm('acme', { recipientId: '2001', text: `dm unavailable ${tag}` }))).toMatchObject({ code: 503 });
    });
    expectConforms(exchanges, [
      { operationId: OPS.createPost, status: 429 },
      { operationId: OPS.createPost, status: 503 },
      { operationId: OPS.sendDm, status: 429 },
      { operationId: OPS.sendDm, status: 503 },
    ]);
  });

  it('200 with only an errors array for a user X does not have', async () => {
    const exchanges = await wire(async () => {
      expect((await x.timeline('ghost', {})).items).toEqual([]);
    });
    expectConforms(exchanges, [{ operationId: OPS.timeline, status: 200 }]);
    expect(bodyOf(exchanges[0]!)).toMatchObject({ errors: [{ type: 'https://api.twitter.com/2/problems/resource-not-found' }] });
  });

  it('covered every operation the adapter uses and every answer it must understand', () => {
    const seen = new Set(checked.map((r) => `${r.operationId} ${r.status}`));
    for (const op of Object.values(OPS)) expect(seen, op).toContain(`${op} ${op.startsWith('create') ? 201 : 200}`);
    for (const status of [400, 401, 403, 429, 503])
      expect(
        checked.some((r) => r.status === status),
        `status ${status}`,
      ).toBe(true);
    expect(proxy.exchanges.every((e) => e.response !== undefined)).toBe(true);
    // No format or keyword of the schemas used was skipped by the validator.
    expect(spec.warnings).toEqual([]);
  });
});

describe('the check fails on a drifting fake', () => {
  /** A real exchange of this operation and status, its response body replaced. */
  function drifted(operationId: string, status: number, mutate: (body: Record<string, unknown>) => unknown): string {
    const real = proxy.exchanges.find(
      (e) => spec.findOperation(e.request.method, e.request.path)?.operationId === operationId && e.response?.status === status,
    );
    if (!real?.response) throw new Error(`no recorded ${operationId} ${status}`);
    expect(describeFailures([judge(spec.check(real))]), 'the unbroken body passes').toBe('');
    const body = structuredClone(bodyOf(real));
    const broken = mutate(body) ?? body;
    return describeFailures([judge(spec.check({ ...real, response: { ...real.response, text: JSON.stringify(broken) } }))]);
  }

  const asRecord = (v: unknown) => v as Record<string, unknown>;
  const cases: { name: string; op: string; status: number; mutate: (b: Record<string, unknown>) => unknown; message: RegExp }[] = [
    {
      name: 'id as a number',
      op: OPS.createPost,
      status: 201,
      mutate: (b) => void (asRecord(b.data).id = Number(asRecord(b.data).id)),
      message: /POST \/2\/tweets \(createPosts\) → 201\n {2}response: response body \(#\/components\/schemas\/TweetCreateResponse\): \/data\/id must be string/,
    },
    {
      name: 'a missing required field',
      op: OPS.createPost,
      status: 201,
      mutate: (b) => void delete asRecord(b.data).text,
      message: /createPosts\) → 201\n.*\/data must have required property 'text'/,
    },
    {
      name: 'data as an object instead of an array',
      op: OPS.timeline,
      status: 200,
      mutate: (b) => ({ ...b, data: (b.data as unknown[])[0] }),
      message: /GET \/2\/users\/\{id\}\/tweets \(getUsersPosts\) → 200\n.*\/data must be array/,
    },
    {
      name: 'created_at that is not a date-time',
      op: OPS.timeline,
      status: 200,
      mutate: (b) => void (asRecord((b.data as unknown[])[0]).created_at = 'Wed Jan 06 18:40:40 +0000 2021'),
      message: /\/data\/0\/created_at must match format "date-time"/,
    },
    {
      name: 'a renamed field (created_at → createdAt)',
      op: OPS.timeline,
      status: 200,
      mutate: (b) => {
        const t = asRecord((b.data as unknown[])[0]);
        t.createdAt = t.created_at;
        delete t.created_at;
      },
      message: /getUsersPosts\) → 200\n {2}response: undeclared field \/data\/0\/createdAt \(not in #\/components\/schemas\/Get2UsersIdTweetsResponse\)/,
    },
    {
      name: 'a DM event without event_type',
      op: OPS.dmEvents,
      status: 200,
      mutate: (b) => void delete asRecord((b.data as unknown[])[0]).event_type,
      message: /getDirectMessagesEventsByParticipantId\) → 200\n.*\/data\/0 must have required property 'event_type'/,
    },
    {
      name: 'a DM conversation id of the wrong shape',
      op: OPS.sendDm,
      status: 201,
      mutate: (b) => void (asRecord(b.data).dm_conversation_id = 'acme:fan'),
      message: /\/data\/dm_conversation_id must match pattern/,
    },
    {
      name: 'a problem type X does not have',
      op: OPS.createPost,
      status: 403,
      mutate: (b) => void (b.type = 'https://fake.example/problems/duplicate'),
      message: /createPosts\) → 403\n[^]*type "https:\/\/fake.example\/problems\/duplicate" is not a value the spec maps/,
    },
    {
      name: 'invalid-request errors that are not an array',
      op: OPS.createPost,
      status: 400,
      mutate: (b) => void (b.errors = 'text is empty'),
      message: /\/errors must be array \(as InvalidRequestProblem\)/,
    },
    {
      name: 'a problem without a title',
      op: OPS.timeline,
      status: 401,
      mutate: (b) => void delete b.title,
      message: /getUsersPosts\) → 401\n[^]*must have required property 'title'/,
    },
  ];

  it.each(cases)('rejects $name', ({ op, status, mutate, message }) => {
    expect(drifted(op, status, mutate)).toMatch(message);
  });

  it('rejects an answer in an undeclared content type or status', () => {
    const real = proxy.exchanges.find((e) => e.response?.status === 201)!;
    const html = spec.check({ ...real, response: { ...real.response!, contentType: 'text/html', text: '{}' } });
    expect(html.responseIssues.join('\n')).toMatch(/content-type text\/html is not declared for 201/);
    const notJson = spec.check({ ...real, response: { ...real.response!, text: '{"data":' } });
    expect(notJson.responseIssues.join('\n')).toMatch(/response body is not JSON/);
  });

  it('rejects requests the spec does not allow', () => {
    const timeline = proxy.exchanges.find((e) => e.request.method === 'GET' && e.request.path === '/2/users/1001/tweets')!;
    const post = proxy.exchanges.find((e) => e.request.method === 'POST' && e.request.path === '/2/tweets')!;
    const issues = (req: Partial<Exchange['request']>) => spec.check({ ...timeline, ...{ request: { ...timeline.request, ...req } } }).requestIssues.join('\n');
    expect(issues({ query: [['tweet_fields', 'created_at']] })).toMatch(/query parameter tweet_fields is not a parameter of getUsersPosts/);
    expect(issues({ query: [['tweet.fields', 'created_at,bogus']] })).toMatch(
      /tweet.fields="created_at,bogus": \/1 must be equal to one of the allowed values/,
    );
    expect(issues({ query: [['start_time', '2026-01-01 10:00']] })).toMatch(/start_time.*must match format "date-time"/);
    expect(issues({ path: '/2/users/@acme/tweets' })).toMatch(/path parameter id="@acme": \(root\) must match pattern/);
    expect(issues({ method: 'DELETE' })).toMatch(/no operation DELETE \/2\/users\/1001\/tweets/);
    const bodyIssues = (body: unknown) => spec.check({ ...post, request: { ...post.request, rawBody: JSON.stringify(body) } }).requestIssues.join('\n');
    expect(bodyIssues({ text: 'x', reply: { in_reply_to_tweet_id: 123 } })).toMatch(
      /request body \(#\/components\/schemas\/TweetCreateRequest\): \/reply\/in_reply_to_tweet_id must be string/,
    );
    expect(bodyIssues({ text: 'x', txt: 'y' })).toMatch(/must NOT have additional properties: txt/);
    expect(spec.check({ ...post, request: { ...post.request, rawBody: '' } }).requestIssues).toEqual(['request body is required']);
  });
});

describe('X API 2.167 (the newer spec)', () => {
  let newer: XSpec;
  beforeAll(() => {
    newer = loadSpec('2.167');
  });
  const checkWith = (sp: XSpec, e: Exchange) => {
    const match = sp.findOperation(e.request.method, e.request.path);
    if (!match || !e.response) throw new Error(`${e.request.method} ${e.request.path}: no operation in ${sp.version} or no response`);
    const r = sp.checkResponse(match, e.response);
    return {
      label: `${e.request.method} ${match.template} (${match.operationId}) → ${e.response.status}`,
      operationId: match.operationId,
      status: e.response.status,
      requestIssues: [],
      responseIssues: r.issues,
      notes: r.notes,
      undeclared: [],
    };
  };

  it('the success bodies with data validate against 2.167 too', () => {
    const wanted = new Set<string>([`${OPS.createPost} 201`, `${OPS.sendDm} 201`, `${OPS.timeline} 200`, `${OPS.dmEvents} 200`]);
    const results = proxy.exchanges.filter((e) => e.response && e.response.status < 300 && !('errors' in bodyOf(e))).map((e) => checkWith(newer, e));
    expect(new Set(results.map((r) => `${r.operationId} ${r.status}`))).toEqual(wanted);
    const failures = describeFailures(results);
    if (failures) expect.fail(`X API ${newer.version} contract violated:\n${failures}`);
    expect(newer.warnings).toEqual([]);
  });

  it("2.167 moved the problem types to https://api.x.com/2/problems/ (the fake keeps 2.159's api.twitter.com)", () => {
    // Spec-version difference, not a fake bug: 2.159 (what today's clients
    // are built against) maps https://api.twitter.com/2/problems/*, 2.167
    // only https://api.x.com/2/problems/* and has no about:blank problem at
    // all. Pinned here so the day the fake follows 2.167 this test says so.
    const ghost = proxy.exchanges.find((e) => e.request.path === `/2/users/9999999/tweets`)!;
    expect(describeFailures([checkWith(newer, ghost)])).toMatch(
      /\/errors\/0\/type must be equal to one of the allowed values: \["https:\/\/api.x.com\/2\/problems\/resource-not-found"\]/,
    );
  });

  it("a fake X speaking 2.167's names: after the one refused tweet.fields, the adapter's requests and the answers validate against 2.167", async () => {
    const fx = await startFakeX({ accounts: FAKE_ACCOUNTS, fieldNames: '2.167' });
    const px = await startRecordingProxy(fx.url);
    const port = new TwitterXPort({ credentials: staticCredentialStore(ACCOUNTS), baseUrl: px.url, timeoutMs: 5_000 });
    try {
      const root = await port.createPost('acme', { text: `2.167 root ${tag}` });
      await port.createPost('acme', { text: `2.167 reply ${tag}`, inReplyToTweetId: root.id });
      const page = await port.timeline('acme', { startTime: new Date(startedAt - 60_000).toISOString(), maxResults: 100 });
      expect(port.timelineFieldNames).toBe('2.167');
      expect(page.items.find((t) => t.text === `2.167 reply ${tag}`)?.inReplyToTweetId).toBe(root.id);
      const reads = px.exchanges.filter((e) => e.request.path === '/2/users/1001/tweets');
      expect(reads.map((e) => e.response?.status)).toEqual([400, 200]);
      const after = reads[1]!;
      expect(newer.checkRequest(after.request).issues).toEqual([]);
      const failures = describeFailures([checkWith(newer, after)]);
      if (failures) expect.fail(`X API ${newer.version} contract violated:\n${failures}`);
      expect(JSON.stringify(bodyOf(after))).toContain('"edit_history_post_ids"');
    } finally {
      port.close();
      await px.close();
      await fx.close();
    }
  });

  it('the request drift is tweet.fields (2.167: post.fields) and sender_id in dm_event.fields', () => {
    // 2.167 renames tweet.fields → post.fields (README: 2.159 has "the names
    // today's clients send"), and its dm_event.fields enum lacks sender_id
    // although its own DmEvent schema has sender_id: most likely a defect of
    // 2.167; the adapter needs sender_id to tell its own DMs apart. This pins
    // the drift so any other difference to the newer spec shows up here.
    const issues = new Set(
      proxy.exchanges.flatMap((e) =>
        newer.checkRequest(e.request).issues.map((i) => i.replace(/ \(known: .*\)$|: \/\d+ must be equal to one of the allowed values.*$/, '')),
      ),
    );
    const refusedByBoth =
      /max_results="500"|participant_id="not-a-user"|\/poll\/options must NOT have fewer than 2 items|\/poll\/duration_minutes must be >= 5/;
    expect([...issues].filter((i) => !refusedByBoth.test(i)).sort()).toEqual([
      'query parameter dm_event.fields="created_at,entities,sender_id,attachments"',
      'query parameter tweet.fields is not a parameter of getUsersPosts',
    ]);
  });
});
