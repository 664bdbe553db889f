import type { FieldError } from '../domain/request.js';
import type { EnqueueResult } from '../queue/producer.js';
import type { LifecycleResult } from '../queue/lifecycle.js';

/**
 * The producer's answers as HTTP: a status code and a body. Pure, so the
 * table is read here and nowhere else:
 *
 * | producer says                         | HTTP |
 * | queued                                | 201  |
 * | duplicate, sent, failed, cancelled    | 200 (the stored state) |
 * | conflict                              | 409, with the stored fingerprint and state |
 * | invalid                               | 422, with per-field errors |
 * | cancelled, edited, rescheduled        | 200  |
 * | cancelling (a cancel of a key in doubt) | 202: it ends sent or cancelled |
 * | in-flight, already-sent, final        | 409, with the state |
 * | not-found                             | 404  |
 */
export interface Answer {
  readonly code: number;
  readonly body: Record<string, unknown>;
}

/** A batch item's key as the caller sent it (null where it gave none that is a string). */
export function keyOfInput(item: unknown): { slotId: string | null; postId: string | null } {
  const r = (typeof item === 'object' && item !== null && !Array.isArray(item) ? item : {}) as Record<string, unknown>;
  return { slotId: typeof r.slotId === 'string' ? r.slotId : null, postId: typeof r.postId === 'string' ? r.postId : null };
}

export function enqueueAnswer(r: EnqueueResult, input: unknown): Answer {
  const key = { ...keyOfInput(input), ...('key' in r && r.key) };
  switch (r.status) {
    case 'queued':
      return { code: 201, body: { status: 'queued', ...key } };
    case 'duplicate':
      return { code: 200, body: { status: 'duplicate', ...key, state: r.state } };
    case 'sent':
      return { code: 200, body: { status: 'sent', ...key, tweetId: r.tweetId } };
    case 'failed':
      return { code: 200, body: { status: 'failed', ...key, reason: r.reason, ...(r.detail && { detail: r.detail }) } };
    case 'cancelled':
      return { code: 200, body: { status: 'cancelled', ...key } };
    case 'conflict':
      return { code: 409, body: { status: 'conflict', ...key, state: r.state, fingerprint: r.fingerprint, error: r.error.message } };
    case 'invalid':
      return { code: 422, body: { status: 'invalid', ...key, errors: r.errors } };
  }
}

/** A request for an account the token may not touch. */
export function forbiddenAnswer(input: unknown, accountId: string): Answer {
  return { code: 403, body: { status: 'forbidden', ...keyOfInput(input), error: `this token may not touch account ${accountId}` } };
}

export function invalidAnswer(input: unknown, errors: readonly FieldError[]): Answer {
  return { code: 422, body: { status: 'invalid', ...keyOfInput(input), errors } };
}

export function lifecycleAnswer(r: LifecycleResult): Answer {
  const { key, ...rest } = r as LifecycleResult & { key?: { slotId: string; postId: string } };
  const body = { ...rest, ...(key && { slotId: key.slotId, postId: key.postId }) };
  switch (r.status) {
    case 'cancelled':
    case 'edited':
    case 'rescheduled':
      return { code: 200, body };
    case 'cancelling':
      return { code: 202, body };
    case 'in-flight':
    case 'already-sent':
    case 'final':
      return { code: 409, body: { ...body, state: r.status === 'already-sent' ? 'sent' : r.state } };
    case 'not-found':
      return { code: 404, body: { ...body, error: 'no such key' } };
    case 'invalid':
      return { code: 422, body };
  }
}
