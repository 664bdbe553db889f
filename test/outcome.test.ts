import { ApiPartialResponseError, ApiRequestError, ApiResponseError } from 'twitter-api-v2';
import { describe, expect, it } from 'vitest';
import { decideAfterAttempt, DEFAULT_RETRY } from '../src/domain/decide.js';
import { AccountAuthError, classifyXError, MissingIdError, NotSentError, UnknownAccountError } from '../src/domain/outcome.js';

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
    code, data, headers, request, response: { statusCode: code, headers } as never,
    rateLimit: headers['x-rate-limit-reset'] ? { limit: 100, remaining: 0, reset: Number(headers['x-rate-limit-reset']) } : undefined,
  } as never);
const partial = (statusCode: number) =>
  new ApiPartialResponseError('partial', { request, response: { statusCode, headers: {} } as never, responseError: new Error('cut'), rawContent: '{"da' } as never);
const problem = (status: number, detail: string) => ({ title: 'x', detail, type: 'about:blank', status });

const table: [string, unknown, string, string?][] = [
  ['ECONNREFUSED', netError('ECONNREFUSED'), 'not-sent', 'econnrefused'],
  ['DNS ENOTFOUND', netError('ENOTFOUND'), 'not-sent', 'enotfound'],
  ['DNS EAI_AGAIN', netError('EAI_AGAIN'), 'not-sent', 'eai_again'],
  ['thrown before I/O', new NotSentError('credentials unavailable'), 'not-sent', 'credentials unavailable'],
  ['429', httpError(429, problem(429, 'Too Many Requests'), { 'x-rate-limit-reset': String(now / 1000 + 90) }), 'not-sent', 'http-429'],
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

  it('marks 401/403 as account-level', () => {
    expect(classifyXError(httpError(401, {}), now)).toMatchObject({ accountLevel: true });
    expect(classifyXError(httpError(400, {}), now)).toMatchObject({ accountLevel: false });
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
    expect(decideAfterAttempt({ kind: 'rejected', cause: 'http-400', accountLevel: false }, ctx)).toMatchObject({ to: 'failed', reason: 'rejected' });
    expect(decideAfterAttempt({ kind: 'rejected', cause: 'invalid-account: x', accountLevel: true }, ctx)).toMatchObject({ to: 'failed', reason: 'invalid-account' });
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
