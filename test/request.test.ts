import { describe, expect, it } from 'vitest';
import { validateRequest } from '../src/domain/request.js';

const now = Date.parse('2026-06-01T12:00:00Z');
const opts = { now, deadlineWindowMs: 15 * 60_000, knownAccount: (id: string) => id === 'acme' };
const base = { slotId: 's1', postId: 'p1', accountId: 'acme', kind: 'post', text: 'hello' };

function errorsOf(raw: unknown) {
  const v = validateRequest(raw, opts);
  return v.ok ? [] : v.errors;
}

describe('validateRequest', () => {
  it('accepts a post and defaults scheduledAt to now and the deadline to +15 min', () => {
    const v = validateRequest(base, opts);
    expect(v.ok).toBe(true);
    if (!v.ok) return;
    expect(v.request.scheduledAt).toBe(now);
    expect(v.request.deadline).toBe(now + 15 * 60_000);
  });

  it.each([
    [{ ...base, slotId: undefined }, 'slotId', 'is required'],
    [{ ...base, text: undefined }, 'text', 'is required'],
    [{ ...base, kind: 'story' }, 'kind', 'must be one of post, reply, dm'],
    [{ ...base, accountId: 'nobody' }, 'accountId', 'unknown account "nobody"'],
    [{ ...base, text: '   \n\t' }, 'text', 'must not be empty or whitespace-only'],
    [{ ...base, text: '' }, 'text', 'must not be empty or whitespace-only'],
    [{ ...base, text: 'a'.repeat(281) }, 'text', 'is 281 weighted characters; X allows 280'],
    [{ ...base, text: '😀'.repeat(141) }, 'text', 'is 282 weighted characters'],
    [{ ...base, kind: 'reply' }, 'inReplyToTweetId', 'is required for a reply'],
    [{ ...base, inReplyToTweetId: '12' }, 'inReplyToTweetId', 'is only allowed for a reply'],
    [{ ...base, kind: 'dm' }, 'recipientId', 'is required for a dm'],
    [{ ...base, kind: 'reply', inReplyToTweetId: 'abc' }, 'inReplyToTweetId', 'must be a numeric X id'],
    [{ ...base, scheduledAt: '2026-06-01 12:00' }, 'scheduledAt', 'must be an ISO-8601 date-time'],
    [{ ...base, scheduledAt: '2026-06-01T12:00:00' }, 'scheduledAt', 'must be an ISO-8601 date-time'],
    [{ ...base, deadline: 'tomorrow' }, 'deadline', 'must be an ISO-8601 date-time'],
    [{ ...base, scheduledAt: '2026-06-01T13:00:00Z', deadline: '2026-06-01T12:30:00Z' }, 'deadline', 'must be after scheduledAt'],
    [{ ...base, extra: 1 }, 'extra', 'is not a known field'],
    [{ ...base, slotId: 'a\u0000b' }, 'slotId', 'must not contain control characters'],
  ])('rejects %j naming %s', (raw, field, reason) => {
    const errors = errorsOf(raw);
    const hit = errors.find((e) => e.field === field);
    expect(hit, JSON.stringify(errors)).toBeDefined();
    expect(hit!.reason).toContain(reason);
  });

  it('counts URLs as 23 and allows exactly 280 weighted characters', () => {
    const url = 'https://example.com/' + 'x'.repeat(200);
    expect(validateRequest({ ...base, text: 'a'.repeat(280 - 24) + ' ' + url }, opts).ok).toBe(true);
    expect(validateRequest({ ...base, text: 'a'.repeat(280) }, opts).ok).toBe(true);
  });

  it('allows long DMs up to 10,000 characters', () => {
    expect(validateRequest({ ...base, kind: 'dm', recipientId: '42', text: 'a'.repeat(10_000) }, opts).ok).toBe(true);
    expect(errorsOf({ ...base, kind: 'dm', recipientId: '42', text: 'a'.repeat(10_001) })[0]?.field).toBe('text');
  });

  it('reports every bad field at once', () => {
    const fields = errorsOf({ slotId: 's', postId: 'p', kind: 'post', text: 'x'.repeat(300) }).map((e) => e.field);
    expect(fields.sort()).toEqual(['accountId', 'text']);
  });

  it('rejects non-objects with a clear message', () => {
    expect(errorsOf('hello')).toEqual([{ field: '(request)', reason: 'must be a JSON object' }]);
    expect(errorsOf(null)).toEqual([{ field: '(request)', reason: 'must be a JSON object' }]);
  });

  it('fingerprints only what the producer said', () => {
    const a = validateRequest(base, opts);
    const b = validateRequest(base, { ...opts, now: now + 5000 });
    const c = validateRequest({ ...base, text: 'hello!' }, opts);
    if (!a.ok || !b.ok || !c.ok) throw new Error('expected valid');
    expect(a.request.fingerprint).toBe(b.request.fingerprint);
    expect(a.request.fingerprint).not.toBe(c.request.fingerprint);
  });
});
