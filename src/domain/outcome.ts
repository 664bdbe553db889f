/**
 * What one call to X did, decided from what came back. This is the whole
 * exactly-once argument in one place:
 *
 * | what came back                                   | outcome    |
 * |--------------------------------------------------|------------|
 * | 2xx with an id                                   | sent       |
 * | ECONNREFUSED, DNS failure, thrown before any I/O | not-sent   |
 * | 429 (15-min window, 24-hour cap, usage cap)      | not-sent, with a hold until its own reset |
 * | timeout, hard deadline, reset, socket closed, unknown error | ambiguous |
 * | 5xx                                              | ambiguous  |
 * | 2xx with a truncated or id-less body             | ambiguous  |
 * | 403 duplicate content                            | ambiguous  |
 * | 403 about the app (client-forbidden, oauth1 permissions) | rejected, scope app: nothing was executed, the key waits |
 * | 401, 403 suspended / locked / unsupported auth   | rejected, scope account |
 * | any other 4xx, any other 403                     | rejected, scope post |
 *
 * An unknown 403 is about the post: failing one key is recoverable, while
 * pausing an account by mistake silently stops a client.
 *
 * Causes are built from error codes and X's own `detail`, never from the
 * request, so no credential can leak through them.
 */
import { MediaExpiredError, MediaRejectedError, MediaUnavailableError } from './media.js';

export type RejectScope = 'post' | 'account' | 'app';

/** Nothing more may be sent for the account (or every account of the app) until `until` (ms). */
export interface Hold {
  readonly scope: 'account' | 'app';
  readonly until: number;
  /** Which limit: `15-minute window`, `24-hour user cap`, `24-hour app cap`, `monthly usage cap`… */
  readonly why: string;
}

export type XOutcome =
  | { readonly kind: 'sent'; readonly xId: string; readonly hold?: Hold }
  | { readonly kind: 'not-sent'; readonly cause: string; readonly retryAt?: number; readonly hold?: Hold }
  | { readonly kind: 'ambiguous'; readonly cause: string }
  | { readonly kind: 'rejected'; readonly cause: string; readonly status?: number; readonly scope: RejectScope };

/** X's limit headers as received (lower-case names), for `holdOf`. */
export type LimitHeaders = Readonly<Record<string, string | string[] | undefined>>;

/** Thrown by an adapter before it sent a single byte (nothing can have reached X). */
export class NotSentError extends Error {
  override name = 'NotSentError';
  readonly code = 'NOT_SENT';
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
  constructor(
    readonly accountId: string,
    override readonly cause: string,
  ) {
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
  constructor(
    readonly what: string,
    readonly ms: number,
  ) {
    super(`${what}: no complete answer from X within ${ms} ms`);
  }
}

/** X answered 2xx but without the id of what it created. */
export class MissingIdError extends Error {
  override name = 'MissingIdError';
  readonly code = 'X_MISSING_ID';
  constructor(readonly status: number) {
    super(`X answered ${status} without an id`);
  }
}

export const DUPLICATE_CONTENT_DETAIL = 'You are not allowed to create a Tweet with duplicate content.';

/** Connection never established: the request cannot have reached X. */
const NEVER_CONNECTED = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

const DEFAULT_RATE_LIMIT_WAIT_MS = 60_000;
const DAY_MS = 86_400_000;

function header(h: LimitHeaders | undefined, name: string): string | undefined {
  const v = h?.[name];
  return Array.isArray(v) ? v[0] : v;
}

/** A reset header (Unix seconds) as ms, if present and sane. */
function resetAt(h: LimitHeaders | undefined, name: string): number | undefined {
  const sec = Number(header(h, name));
  return Number.isFinite(sec) && sec > 0 ? sec * 1000 : undefined;
}

/** Start of the next UTC day or month: when a daily or monthly usage cap ends. */
export function periodEnd(period: 'Daily' | 'Monthly', now: number): number {
  const d = new Date(now);
  return period === 'Daily' ? Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()) + DAY_MS : Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
}

/**
 * What X's limit headers (on a 2xx or a 429) and a usage-capped problem say
 * about when the next create may go: the 24-hour caps and the usage cap win
 * over the 15-minute window, whose reset would only lead into the same wall.
 * `limited` is true for a 429: something holds even without a 0 in sight.
 */
export function holdOf(h: LimitHeaders | undefined, now: number, limited: boolean, data?: unknown): Hold | undefined {
  const p = (typeof data === 'object' && data !== null ? data : {}) as { type?: unknown; period?: unknown; scope?: unknown };
  const later = (at: number | undefined) => Math.max(now, at ?? now + DEFAULT_RATE_LIMIT_WAIT_MS);
  if (p.type === USAGE_CAPPED) {
    const period = p.period === 'Daily' ? 'Daily' : 'Monthly';
    const scope = p.scope === 'Account' ? 'account' : 'app';
    return { scope, until: periodEnd(period, now), why: `${period === 'Daily' ? 'daily' : 'monthly'} usage cap (${scope})` };
  }
  if (header(h, 'x-user-limit-24hour-remaining') === '0') {
    return { scope: 'account', until: later(resetAt(h, 'x-user-limit-24hour-reset')), why: '24-hour user cap' };
  }
  if (header(h, 'x-app-limit-24hour-remaining') === '0') {
    return { scope: 'app', until: later(resetAt(h, 'x-app-limit-24hour-reset')), why: '24-hour app cap' };
  }
  if (limited || header(h, 'x-rate-limit-remaining') === '0') {
    return { scope: 'account', until: later(resetAt(h, 'x-rate-limit-reset')), why: '15-minute window' };
  }
  return undefined;
}

const USAGE_CAPPED = 'https://api.twitter.com/2/problems/usage-capped';
const CLIENT_FORBIDDEN = 'https://api.twitter.com/2/problems/client-forbidden';
const OAUTH1_PERMISSIONS = 'https://api.twitter.com/2/problems/oauth1-permissions';
const UNSUPPORTED_AUTH = 'https://api.twitter.com/2/problems/unsupported-authentication';
/** v1.1-style error codes X still puts in some 403s: 64 suspended, 326 locked. */
const ACCOUNT_ERROR_CODES = new Set([64, 326]);

/** X's words for a refusal. An invalid request's detail is generic ("One or more parameters…"); the error's message says which. */
function detailOf(data: unknown): string {
  if (typeof data !== 'object' || data === null) return '';
  const d = data as { detail?: unknown; title?: unknown; errors?: { message?: unknown }[] };
  const message = d.errors?.[0]?.message;
  const texts = [d.detail, message].filter((t): t is string => typeof t === 'string' && t !== '');
  const text = texts.length ? [...new Set(texts)].join(': ') : d.title;
  return typeof text === 'string' ? text.slice(0, 300) : '';
}

/** `client-forbidden (client-not-enrolled)`: the problem type's last segment and its reason. */
function problemName(data: unknown): string {
  const d = (typeof data === 'object' && data !== null ? data : {}) as { type?: unknown; reason?: unknown };
  const type = typeof d.type === 'string' ? d.type.split('/').pop() : 'forbidden';
  return typeof d.reason === 'string' ? `${type} (${d.reason})` : String(type);
}

/** Whom a 403 is about, from X's body. */
export function scopeOf403(data: unknown): RejectScope | 'duplicate' {
  const d = (typeof data === 'object' && data !== null ? data : {}) as { type?: unknown; reason?: unknown; errors?: { code?: unknown }[] };
  const detail = detailOf(data);
  if (/duplicate content/i.test(detail)) return 'duplicate';
  if (d.type === CLIENT_FORBIDDEN || d.type === OAUTH1_PERMISSIONS || d.reason === 'client-not-enrolled' || d.reason === 'official-client-forbidden')
    return 'app';
  if (d.type === UNSUPPORTED_AUTH) return 'account';
  if (d.errors?.some((e) => typeof e.code === 'number' && ACCOUNT_ERROR_CODES.has(e.code))) return 'account';
  if (/\b(account|user) (is |has been )?(suspended|locked)\b|\btemporarily locked\b/i.test(detail)) return 'account';
  return 'post';
}

/**
 * What came back from a failed call to X, in words free of any client
 * library (`x/classify.ts` describes twitter-api-v2's errors this way).
 */
export type XFailure =
  /** A complete answer with an error status. */
  | { readonly kind: 'response'; readonly status: number; readonly body: unknown; readonly headers?: LimitHeaders }
  /** A status line, then the connection dropped mid-body. */
  | { readonly kind: 'partial'; readonly status: number; readonly headers?: LimitHeaders }
  /** No answer: the request failed at the network level. */
  | { readonly kind: 'network'; readonly code?: string; readonly timedOut: boolean }
  /** Anything else thrown (xactly's own errors below, or a bug). */
  | { readonly kind: 'thrown'; readonly error: unknown };

export function classifyXFailure(f: XFailure, now: number): Exclude<XOutcome, { kind: 'sent' }> {
  switch (f.kind) {
    case 'response': {
      const { status, body } = f;
      if (status === 429) {
        const hold = holdOf(f.headers, now, true, body)!;
        return { kind: 'not-sent', cause: `http-429: ${hold.why}`, retryAt: hold.until, hold };
      }
      if (status >= 500) return { kind: 'ambiguous', cause: `http-${status}` };
      const detail = detailOf(body);
      const cause = `http-${status}${detail ? ': ' + detail : ''}`;
      if (status === 403) {
        const scope = scopeOf403(body);
        if (scope === 'duplicate') return { kind: 'ambiguous', cause: 'duplicate-content' };
        return { kind: 'rejected', cause: scope === 'app' ? `http-403 ${problemName(body)}: ${detail}` : cause, status, scope };
      }
      return { kind: 'rejected', cause, status, scope: status === 401 ? 'account' : 'post' };
    }
    case 'partial': {
      const { status } = f;
      // The body is cut, so a 403 may be duplicate content: only statuses that
      // are unambiguous without a body are decided here.
      if (status === 429) {
        const hold = holdOf(f.headers, now, true)!;
        return { kind: 'not-sent', cause: `http-429-partial: ${hold.why}`, retryAt: hold.until, hold };
      }
      if (status === 400 || status === 401 || status === 404)
        return { kind: 'rejected', cause: `http-${status}-partial`, status, scope: status === 401 ? 'account' : 'post' };
      return { kind: 'ambiguous', cause: `partial-response-${status}` };
    }
    case 'network':
      if (f.code && NEVER_CONNECTED.has(f.code)) return { kind: 'not-sent', cause: f.code.toLowerCase() };
      if (f.timedOut) return { kind: 'ambiguous', cause: 'timeout' };
      return { kind: 'ambiguous', cause: f.code ? f.code.toLowerCase() : 'request-error' };
    case 'thrown': {
      const err = f.error;
      if (err instanceof NotSentError) return { kind: 'not-sent', cause: err.cause };
      // X refused the create's media ids with a 400: nothing was created; the next attempt uploads again.
      if (err instanceof MediaExpiredError) return { kind: 'not-sent', cause: `media-expired: ${err.cause}` };
      if (err instanceof MediaUnavailableError) return { kind: 'rejected', cause: `media-unavailable: ${err.cause}`, scope: 'post' };
      if (err instanceof MediaRejectedError) return { kind: 'rejected', cause: `media-rejected: ${err.cause}`, scope: 'post' };
      if (err instanceof UnknownAccountError) return { kind: 'rejected', cause: 'invalid-account: ' + err.message, scope: 'account' };
      if (err instanceof AccountAuthError) return { kind: 'rejected', cause: `account-auth: ${err.cause}`, scope: 'account' };
      if (err instanceof MissingIdError) return { kind: 'ambiguous', cause: `http-${err.status}-without-id` };
      if (err instanceof XDeadlineError) return { kind: 'ambiguous', cause: `deadline-${err.ms}ms` };
      // Unknown failures may have happened after the request left: assume the worst.
      const name = err instanceof Error ? err.name : typeof err;
      return { kind: 'ambiguous', cause: `unexpected-error: ${name}` };
    }
  }
}
