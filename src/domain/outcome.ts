import { ApiPartialResponseError, ApiRequestError, ApiResponseError } from 'twitter-api-v2';

/**
 * What one call to X did, decided from what came back. This is the whole
 * exactly-once argument in one place:
 *
 * | what came back                                   | outcome    |
 * |--------------------------------------------------|------------|
 * | 2xx with an id                                   | sent       |
 * | ECONNREFUSED, DNS failure, thrown before any I/O | not-sent   |
 * | 429                                              | not-sent (retry at x-rate-limit-reset) |
 * | timeout, hard deadline, reset, socket closed, unknown error | ambiguous |
 * | 5xx                                              | ambiguous  |
 * | 2xx with a truncated or id-less body             | ambiguous  |
 * | 403 duplicate content                            | ambiguous  |
 * | other 4xx                                        | rejected   |
 *
 * Causes are built from error codes and X's own `detail`, never from the
 * request, so no credential can leak through them.
 */
export type XOutcome =
  | { readonly kind: 'sent'; readonly xId: string; readonly rateLimit?: { readonly remaining: number; readonly reset: number } }
  | { readonly kind: 'not-sent'; readonly cause: string; readonly retryAt?: number }
  | { readonly kind: 'ambiguous'; readonly cause: string }
  | {
      readonly kind: 'rejected';
      readonly cause: string;
      readonly status?: number;
      /** 401/403: the account's credentials, not this post, are the problem. */
      readonly accountLevel: boolean;
    };

/** Thrown by an adapter before it sent a single byte (nothing can have reached X). */
export class NotSentError extends Error {
  override name = 'NotSentError';
  constructor(override readonly cause: string) {
    super(`not sent: ${cause}`);
  }
}

/** The job names an account the worker has no credentials for. */
export class UnknownAccountError extends Error {
  override name = 'UnknownAccountError';
  readonly code = 'UNKNOWN_ACCOUNT';
  constructor(readonly accountId: string) {
    super(`no credentials for account "${accountId}"`);
  }
}

/** The account's credentials are refused for good (refresh token revoked or rotated away). */
export class AccountAuthError extends Error {
  override name = 'AccountAuthError';
  readonly code = 'ACCOUNT_AUTH';
  constructor(readonly accountId: string, override readonly cause: string) {
    super(`account ${accountId}: ${cause}`);
  }
}

/**
 * A call to X outlived its hard deadline and was cut off. For a create this
 * is ambiguous (the request may have been executed); a lookup just failed.
 */
export class XDeadlineError extends Error {
  override name = 'XDeadlineError';
  readonly code = 'X_DEADLINE';
  constructor(readonly what: string, readonly ms: number) {
    super(`${what}: no complete answer from X within ${ms} ms`);
  }
}

/** X answered 2xx but without the id of what it created. */
export class MissingIdError extends Error {
  override name = 'MissingIdError';
  constructor(readonly status: number) {
    super(`X answered ${status} without an id`);
  }
}

export const DUPLICATE_CONTENT_DETAIL = 'You are not allowed to create a Tweet with duplicate content.';

/** Connection never established: the request cannot have reached X. */
const NEVER_CONNECTED = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

const DEFAULT_RATE_LIMIT_WAIT_MS = 60_000;

function rateLimitResetAt(err: ApiResponseError | ApiPartialResponseError, now: number): number {
  const header =
    err instanceof ApiResponseError ? (err.rateLimit?.reset ?? err.headers?.['x-rate-limit-reset']) : err.response?.headers?.['x-rate-limit-reset'];
  const resetSec = Number(Array.isArray(header) ? header[0] : header);
  return Number.isFinite(resetSec) && resetSec > 0 ? Math.max(now, resetSec * 1000) : now + DEFAULT_RATE_LIMIT_WAIT_MS;
}

function detailOf(data: unknown): string {
  if (typeof data !== 'object' || data === null) return '';
  const d = data as { detail?: unknown; title?: unknown; errors?: { message?: unknown }[] };
  const text = d.detail ?? d.errors?.[0]?.message ?? d.title;
  return typeof text === 'string' ? text.slice(0, 300) : '';
}

function isDuplicateContent(err: ApiResponseError): boolean {
  return err.code === 403 && /duplicate content/i.test(detailOf(err.data));
}

/** The network cause of an ApiRequestError: the library hides it in _options.error. */
function requestCause(err: ApiRequestError): { code?: string; message: string } {
  const inner = (err as unknown as { _options?: { error?: { code?: unknown; message?: unknown } } })._options?.error;
  const code = typeof inner?.code === 'string' ? inner.code : undefined;
  const message = typeof inner?.message === 'string' ? inner.message : 'unknown request error';
  return { code, message };
}

export function classifyXError(err: unknown, now: number): Exclude<XOutcome, { kind: 'sent' }> {
  if (err instanceof NotSentError) return { kind: 'not-sent', cause: err.cause };
  if (err instanceof UnknownAccountError)
    return { kind: 'rejected', cause: 'invalid-account: ' + err.message, accountLevel: true };
  if (err instanceof AccountAuthError) return { kind: 'rejected', cause: `account-auth: ${err.cause}`, accountLevel: true };
  if (err instanceof MissingIdError) return { kind: 'ambiguous', cause: `http-${err.status}-without-id` };
  if (err instanceof XDeadlineError) return { kind: 'ambiguous', cause: `deadline-${err.ms}ms` };

  if (err instanceof ApiResponseError) {
    const status = err.code;
    if (status === 429) return { kind: 'not-sent', cause: 'http-429', retryAt: rateLimitResetAt(err, now) };
    if (status >= 500) return { kind: 'ambiguous', cause: `http-${status}` };
    if (isDuplicateContent(err)) return { kind: 'ambiguous', cause: 'duplicate-content' };
    const detail = detailOf(err.data);
    return {
      kind: 'rejected',
      cause: `http-${status}${detail ? ': ' + detail : ''}`,
      status,
      accountLevel: status === 401 || status === 403,
    };
  }

  if (err instanceof ApiPartialResponseError) {
    const status = err.response?.statusCode ?? 0;
    // The body is cut, so a 403 may be duplicate content: only statuses that
    // are unambiguous without a body are decided here.
    if (status === 429) return { kind: 'not-sent', cause: 'http-429-partial', retryAt: rateLimitResetAt(err, now) };
    if (status === 400 || status === 401 || status === 404)
      return { kind: 'rejected', cause: `http-${status}-partial`, status, accountLevel: status === 401 };
    return { kind: 'ambiguous', cause: `partial-response-${status}` };
  }

  if (err instanceof ApiRequestError) {
    const { code, message } = requestCause(err);
    if (code && NEVER_CONNECTED.has(code)) return { kind: 'not-sent', cause: code.toLowerCase() };
    if (message === 'Request timeout.') return { kind: 'ambiguous', cause: 'timeout' };
    return { kind: 'ambiguous', cause: code ? code.toLowerCase() : 'request-error' };
  }

  // Unknown failures may have happened after the request left: assume the worst.
  const name = err instanceof Error ? err.name : typeof err;
  return { kind: 'ambiguous', cause: `unexpected-error: ${name}` };
}
