import { ApiPartialResponseError, ApiRequestError, ApiResponseError } from 'twitter-api-v2';
import { describe, expect, it } from 'vitest';
import { decideAfterAttempt, DEFAULT_RETRY } from '../src/domain/decide.js';
import { AccountAuthError, holdOf, MissingIdError, NotSentError, periodEnd, UnknownAccountError, XDeadlineError } from '../src/domain/outcome.js';
import { classifyXError } from '../src/x/classify.js';

const now = 1_800_000_000_000;
const SECRET = 'SECRET-ACCESS-TOKEN-123';
// The real errors carry the signed request; the classifier must not echo it.
const request = { getHeader: () => `OAuth oauth_token="${SECRET}"`, headers: { authorization: `Bearer ${SECRET}` } } as never;

const netError = (code: string | undefined, message = 'boom') => {
  const error = Object.assign(new Error(message), code ? { code } : {});
  return new ApiRequestError('Request failed.', { request, error } as never);
};
const httpError = (code: number, data: unknown, headers: Record<string, string> = {}) =>
  new ApiResponseError(`Request failed with code ${code}`, {
    code,
    data,
    headers,
    request,
    response: { statusCode: code, headers } as never,
    rateLimit: headers['x-rate-limit-reset'] ? { limit: 100, remaining: 0, reset: Number(headers['x-rate-limit-reset']) } : undefined,
  } as never);
const partial = (statusCode: number) =>
  new ApiPartialResponseError('partial', {
    request,
    response: { statusCode, headers: {} } as never,
    responseError: new Error('cut'),
    rawContent: '{"da',
  } as never);
const problem = (status: number, detail: string) => ({ title: 'x', detail, type: 'about:blank', status });

const table: [string, unknown, string, string?][] = [
  ['ECONNREFUSED', netError('ECONNREFUSED'), 'not-sent', 'econnrefused'],
  ['DNS ENOTFOUND', netError('ENOTFOUND'), 'not-sent', 'enotfound'],
  ['DNS EAI_AGAIN', netError('EAI_AGAIN'), 'not-sent', 'eai_again'],
  ['thrown before I/O', new NotSentError('credentials unavailable'), 'not-sent', 'credentials unavailable'],
  ['429', httpError(429, problem(429, 'Too Many Requests'), { 'x-rate-limit-reset': String(now / 1000 + 90) }), 'not-sent', 'http-429: 15-minute window'],
  ['timeout', netError(undefined, 'Request timeout.'), 'ambiguous', 'timeout'],
  ['ECONNRESET', netError('ECONNRESET', 'socket hang up'), 'ambiguous', 'econnreset'],
  ['EPIPE', netError('EPIPE'), 'ambiguous', 'epipe'],
  ['socket closed without info', netError(undefined, 'Socket closed without any information.'), 'ambiguous', 'request-error'],
  ['500', httpError(500, problem(500, 'oops')), 'ambiguous', 'http-500'],
  ['503', httpError(503, problem(503, 'Service Unavailable')), 'ambiguous', 'http-503'],
  ['truncated 201', partial(201), 'ambiguous', 'partial-response-201'],
  ['truncated 503', partial(503), 'ambiguous', 'partial-response-503'],
  ['truncated 403 (may be duplicate content)', partial(403), 'ambiguous', 'partial-response-403'],
  ['201 without id', new MissingIdError(201), 'ambiguous', 'http-201-without-id'],
  ['403 duplicate content', httpError(403, problem(403, 'You are not allowed to create a Tweet with duplicate content.')), 'ambiguous', 'duplicate-content'],
  ['unknown error', new TypeError('x is undefined'), 'ambiguous', 'unexpected-error: TypeError'],
  ['a thrown string', 'weird', 'ambiguous', 'unexpected-error: string'],
  ['400', httpError(400, problem(400, 'Invalid Request')), 'rejected', 'http-400: Invalid Request'],
  ['401', httpError(401, problem(401, 'Unauthorized')), 'rejected', 'http-401: Unauthorized'],
  ['403 other', httpError(403, problem(403, 'You are not permitted to perform this action.')), 'rejected', 'http-403'],
  ['deadline', new XDeadlineError('publish', 12_500), 'ambiguous', 'deadline-12500ms'],
  ['404', httpError(404, problem(404, 'Not Found')), 'rejected', 'http-404'],
  ['unknown account', new UnknownAccountError('ghost'), 'rejected', 'invalid-account'],
  ['refresh token refused', new AccountAuthError('acme', 'token refresh refused by X (http-400)'), 'rejected', 'account-auth: token refresh refused'],
];

describe('classifyXError', () => {
  it.each(table)('%s → %s', (_label, err, kind, cause) => {
    const outcome = classifyXError(err, now);
    expect(outcome.kind).toBe(kind);
    if (cause) expect('cause' in outcome ? outcome.cause : '').toContain(cause);
    expect(JSON.stringify(outcome)).not.toContain(SECRET);
  });

  it('takes the retry time of a 429 from x-rate-limit-reset (Unix seconds)', () => {
    const o = classifyXError(httpError(429, {}, { 'x-rate-limit-reset': String(now / 1000 + 90) }), now);
    expect(o).toMatchObject({ kind: 'not-sent', retryAt: now + 90_000 });
    const noHeader = classifyXError(httpError(429, {}), now);
    expect(noHeader).toMatchObject({ kind: 'not-sent', retryAt: now + 60_000 });
  });
});

/**
 * X's own bodies, as X sends them (application/json; charset=utf-8), each
 * with whom it is about. Post-level refusals fail one key; account-level
 * ones pause the account; app-level ones pause every account of the app.
 */
describe('a 403 is about the post, the account or the app', () => {
  const forbidden = (body: unknown) => httpError(403, body);
  const scoped: [string, unknown, 'post' | 'account' | 'app' | 'ambiguous'][] = [
    [
      'restricted reply (self-serve tiers since 2026-02-23)',
      {
        detail:
          'Reply to this conversation is not allowed because you have not been mentioned or otherwise engaged by the author of the post you are replying to.',
        type: 'about:blank',
        title: 'Forbidden',
        status: 403,
      },
      'post',
    ],
    [
      'reply target deleted or not visible',
      { detail: 'You attempted to reply to a Tweet that is deleted or not visible to you.', type: 'about:blank', title: 'Forbidden', status: 403 },
      'post',
    ],
    ['DM refused by the recipient', { detail: 'You cannot send messages to this user.', type: 'about:blank', title: 'Forbidden', status: 403 }, 'post'],
    [
      'content policy',
      {
        detail:
          "This request looks like it might be automated. To protect our users from spam and other malicious activity, we can't complete this action right now.",
        type: 'about:blank',
        title: 'Forbidden',
        status: 403,
      },
      'post',
    ],
    ['media policy', { detail: 'Your media IDs are invalid.', type: 'about:blank', title: 'Forbidden', status: 403 }, 'post'],
    ['an unknown 403', { detail: 'You are not permitted to perform this action.', type: 'about:blank', title: 'Forbidden', status: 403 }, 'post'],
    ['a 403 with no body', undefined, 'post'],
    [
      'duplicate content',
      { detail: 'You are not allowed to create a Tweet with duplicate content.', type: 'about:blank', title: 'Forbidden', status: 403 },
      'ambiguous',
    ],
    [
      'suspended account',
      { detail: 'Your account is suspended and is not permitted to access this feature.', type: 'about:blank', title: 'Forbidden', status: 403 },
      'account',
    ],
    [
      'locked account (v1.1 code 326)',
      {
        errors: [
          {
            code: 326,
            message:
              'To protect our users from spam and other malicious activity, this account is temporarily locked. Please log in to https://twitter.com to unlock your account.',
          },
        ],
      },
      'account',
    ],
    ['suspended (v1.1 code 64)', { errors: [{ code: 64, message: 'Your account is suspended and is not permitted to access this feature.' }] }, 'account'],
    [
      'unsupported authentication',
      {
        title: 'Unsupported Authentication',
        detail:
          'Authenticating with OAuth 2.0 Application-Only is forbidden for this endpoint.  Supported authentication types are [OAuth 1.0a User Context, OAuth 2.0 User Context].',
        type: 'https://api.twitter.com/2/problems/unsupported-authentication',
        status: 403,
      },
      'account',
    ],
    [
      'client-not-enrolled',
      {
        client_id: '12345678',
        detail:
          'When authenticating requests to the Twitter API v2 endpoints, you must use keys and tokens from a Twitter developer App that is attached to a Project. You can create a project via the developer portal.',
        registration_url: 'https://developer.twitter.com/en/docs/projects/overview',
        title: 'Client Forbidden',
        required_enrollment: 'Appropriate Level of API Access',
        reason: 'client-not-enrolled',
        type: 'https://api.twitter.com/2/problems/client-forbidden',
      },
      'app',
    ],
    [
      'official-client-forbidden',
      {
        title: 'Client Forbidden',
        detail: 'This request must be made using an approved developer account that is enrolled in the requested endpoint.',
        reason: 'official-client-forbidden',
        type: 'https://api.twitter.com/2/problems/client-forbidden',
      },
      'app',
    ],
    [
      'oauth1 app permissions',
      {
        title: 'Forbidden',
        detail: 'Your client app is not configured with the appropriate oauth1 app permissions for this endpoint.',
        type: 'https://api.twitter.com/2/problems/oauth1-permissions',
        status: 403,
      },
      'app',
    ],
  ];
  it.each(scoped)('%s → %s', (_label, body, expected) => {
    const o = classifyXError(forbidden(body), now);
    if (expected === 'ambiguous') expect(o).toMatchObject({ kind: 'ambiguous', cause: 'duplicate-content' });
    else expect(o).toMatchObject({ kind: 'rejected', status: 403, scope: expected });
  });

  it("401 is about the account; other 4xx about the post; X's reason is kept", () => {
    expect(classifyXError(httpError(401, problem(401, 'Unauthorized')), now)).toMatchObject({ scope: 'account' });
    expect(classifyXError(httpError(400, problem(400, 'Invalid Request')), now)).toMatchObject({ scope: 'post' });
    expect(classifyXError(forbidden(scoped[0]![1]), now)).toMatchObject({ cause: expect.stringContaining('not been mentioned or otherwise engaged') });
  });
});

describe('caps: each 429 waits for its own reset', () => {
  const h = (o: Record<string, number | string>) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, String(v)]));
  const s = now / 1000;

  it('the 15-minute window: the account until x-rate-limit-reset', () => {
    const o = classifyXError(
      httpError(
        429,
        problem(429, 'Too Many Requests'),
        h({
          'x-rate-limit-limit': 100,
          'x-rate-limit-remaining': 0,
          'x-rate-limit-reset': s + 600,
          'x-user-limit-24hour-limit': 2400,
          'x-user-limit-24hour-remaining': 2000,
          'x-user-limit-24hour-reset': s + 50_000,
        }),
      ),
      now,
    );
    expect(o).toMatchObject({ kind: 'not-sent', retryAt: now + 600_000, hold: { scope: 'account', until: now + 600_000, why: '15-minute window' } });
  });
  it('the 24-hour user cap: the account until x-user-limit-24hour-reset, not the 15-minute reset', () => {
    const o = classifyXError(
      httpError(
        429,
        problem(429, 'Too Many Requests'),
        h({
          'x-rate-limit-remaining': 40,
          'x-rate-limit-reset': s + 600,
          'x-user-limit-24hour-limit': 17,
          'x-user-limit-24hour-remaining': 0,
          'x-user-limit-24hour-reset': s + 50_000,
        }),
      ),
      now,
    );
    expect(o).toMatchObject({ kind: 'not-sent', retryAt: now + 50_000_000, hold: { scope: 'account', why: '24-hour user cap' } });
  });
  it('the 24-hour app cap: every account until x-app-limit-24hour-reset', () => {
    const o = classifyXError(
      httpError(
        429,
        problem(429, 'Too Many Requests'),
        h({
          'x-rate-limit-remaining': 40,
          'x-rate-limit-reset': s + 600,
          'x-app-limit-24hour-limit': 1667,
          'x-app-limit-24hour-remaining': 0,
          'x-app-limit-24hour-reset': s + 70_000,
        }),
      ),
      now,
    );
    expect(o).toMatchObject({ kind: 'not-sent', hold: { scope: 'app', until: now + 70_000_000, why: '24-hour app cap' } });
  });
  it('a monthly usage cap (usage-capped problem): the app until the month ends', () => {
    const body = {
      title: 'UsageCapExceeded',
      detail: 'Usage cap exceeded: Monthly product cap',
      type: 'https://api.twitter.com/2/problems/usage-capped',
      period: 'Monthly',
      scope: 'Product',
    };
    const o = classifyXError(httpError(429, body, h({ 'x-rate-limit-reset': s + 600 })), now);
    expect(o).toMatchObject({ kind: 'not-sent', hold: { scope: 'app', until: periodEnd('Monthly', now), why: 'monthly usage cap (app)' } });
    expect(new Date(periodEnd('Monthly', Date.UTC(2026, 11, 15))).toISOString()).toBe('2027-01-01T00:00:00.000Z');
    expect(new Date(periodEnd('Daily', Date.UTC(2026, 11, 15, 13))).toISOString()).toBe('2026-12-16T00:00:00.000Z');
  });
  it('a 2xx with 0 left in a cap holds the next create; with some left, nothing holds', () => {
    expect(holdOf(h({ 'x-user-limit-24hour-remaining': 0, 'x-user-limit-24hour-reset': s + 9 }), now, false)).toEqual({
      scope: 'account',
      until: now + 9_000,
      why: '24-hour user cap',
    });
    expect(holdOf(h({ 'x-app-limit-24hour-remaining': 0, 'x-app-limit-24hour-reset': s + 9 }), now, false)).toMatchObject({ scope: 'app' });
    expect(holdOf(h({ 'x-rate-limit-remaining': 0, 'x-rate-limit-reset': s + 9 }), now, false)).toMatchObject({ scope: 'account', why: '15-minute window' });
    expect(holdOf(h({ 'x-rate-limit-remaining': 3, 'x-user-limit-24hour-remaining': 5 }), now, false)).toBeUndefined();
  });
});

describe('decideAfterAttempt', () => {
  const ctx = { now, attempt: 1, deadline: now + 600_000, settleWindowMs: 60_000, retry: DEFAULT_RETRY };

  it('sent → sent with the id', () => {
    expect(decideAfterAttempt({ kind: 'sent', xId: '42' }, ctx)).toEqual({ to: 'sent', tweetId: '42' });
  });
  it('ambiguous → ambiguous, rechecked after the settle window counted from now', () => {
    expect(decideAfterAttempt({ kind: 'ambiguous', cause: 'timeout' }, ctx)).toEqual({ to: 'ambiguous', cause: 'timeout', recheckAt: now + 60_000 });
  });
  it('rejected → failed, never retried', () => {
    expect(decideAfterAttempt({ kind: 'rejected', cause: 'http-400', scope: 'post' }, ctx)).toMatchObject({ to: 'failed', reason: 'rejected' });
    expect(decideAfterAttempt({ kind: 'rejected', cause: 'invalid-account: x', scope: 'account' }, ctx)).toMatchObject({
      to: 'failed',
      reason: 'invalid-account',
    });
  });
  it('rejected for the app → waits (released), and fails as app-paused only when no time is left', () => {
    expect(decideAfterAttempt({ kind: 'rejected', cause: 'http-403: client-forbidden', scope: 'app' }, ctx)).toMatchObject({
      to: 'queued',
      retryAt: now + 60_000,
    });
    expect(decideAfterAttempt({ kind: 'rejected', cause: 'http-403', scope: 'app' }, { ...ctx, deadline: now + 1 })).toMatchObject({
      to: 'failed',
      reason: 'app-paused',
    });
  });
  it('not-sent → released with exponential backoff', () => {
    expect(decideAfterAttempt({ kind: 'not-sent', cause: 'econnrefused' }, ctx)).toEqual({ to: 'queued', cause: 'econnrefused', retryAt: now + 1000 });
    expect(decideAfterAttempt({ kind: 'not-sent', cause: 'econnrefused' }, { ...ctx, attempt: 4 })).toMatchObject({ retryAt: now + 8000 });
    expect(decideAfterAttempt({ kind: 'not-sent', cause: 'econnrefused' }, { ...ctx, attempt: 30 })).toMatchObject({ retryAt: now + 60_000 });
  });
  it('not-sent close to the deadline still gets one more try before it', () => {
    const t = decideAfterAttempt({ kind: 'not-sent', cause: 'econnrefused' }, { ...ctx, attempt: 10, deadline: now + 5000 });
    expect(t).toEqual({ to: 'queued', cause: 'econnrefused', retryAt: now + 4999 });
  });
  it('429 whose reset is after the deadline → expired', () => {
    const t = decideAfterAttempt({ kind: 'not-sent', cause: 'http-429', retryAt: now + 700_000 }, ctx);
    expect(t).toMatchObject({ to: 'failed', reason: 'expired' });
  });
  it('429 waits until the reset', () => {
    expect(decideAfterAttempt({ kind: 'not-sent', cause: 'http-429', retryAt: now + 90_000 }, ctx)).toMatchObject({ to: 'queued', retryAt: now + 90_000 });
  });
});
