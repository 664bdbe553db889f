import { describe, expect, it } from 'vitest';
import { planEdit } from '../src/domain/lifecycle.js';
import { validateRequest, type ValidateOptions } from '../src/domain/request.js';
import type { PostRecord } from '../src/domain/state.js';

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

  it('keeps the fingerprint of a request without quote, poll or reply settings (pinned from before they existed)', () => {
    const fp = (raw: unknown) => {
      const v = validateRequest(raw, { now, deadlineWindowMs: 15 * 60_000 });
      if (!v.ok) throw new Error(JSON.stringify(v.errors));
      return v.request.fingerprint;
    };
    expect(fp(base)).toBe('48VJ4UZGjUxA6yyZm2m_ig');
    expect(fp({ ...base, kind: 'reply', inReplyToTweetId: '123', scheduledAt: '2026-06-01T12:00:00Z' })).toBe('prf66FQIVT6s18i4wkMUyT');
    expect(fp({ ...base, kind: 'thread', text: undefined, parts: [{ text: 'a' }, { text: 'b' }] })).toBe('31bBaNla4oAOAh3ogS8bEs');
    expect(fp({ ...base, kind: 'dm', text: 'hi', recipientId: '42' })).toBe('RLaEgYI3jmcmbclNuD3fsr');
  });
});

describe('quote, poll and reply settings', () => {
  const poll = { options: ['yes', 'no'], durationMinutes: 60 };

  it('accepts them on a post and a reply, and carries them on the request', () => {
    const v = validateRequest({ ...base, quoteTweetId: '1234567890', replySettings: 'following' }, opts);
    expect(v.ok && v.request).toMatchObject({ quoteTweetId: '1234567890', replySettings: 'following' });
    const r = validateRequest({ ...base, kind: 'reply', inReplyToTweetId: '42', poll: { options: ['a', 'b', 'c', 'd'], durationMinutes: 10_080 } }, opts);
    expect(r.ok && r.request).toMatchObject({ poll: { options: ['a', 'b', 'c', 'd'], durationMinutes: 10_080 } });
    expect(validateRequest({ ...base, poll: { options: ['x'.repeat(25), '🙂'.repeat(25)], durationMinutes: 5 } }, opts).ok).toBe(true);
  });

  it.each([
    [{ ...base, poll: { options: ['only'], durationMinutes: 60 } }, 'poll.options', 'has 1 option(s); a poll has 2–4'],
    [{ ...base, poll: { options: ['a', 'b', 'c', 'd', 'e'], durationMinutes: 60 } }, 'poll.options', 'has 5 option(s)'],
    [{ ...base, poll: { options: ['ok', 'x'.repeat(26)], durationMinutes: 60 } }, 'poll.options[1]', 'is 26 characters; a poll option allows 1–25'],
    [{ ...base, poll: { options: ['ok', ''], durationMinutes: 60 } }, 'poll.options[1]', 'must not be empty'],
    [{ ...base, poll: { options: ['a', 'b'], durationMinutes: 4 } }, 'poll.durationMinutes', 'is 4; a poll runs 5–10,080 whole minutes'],
    [{ ...base, poll: { options: ['a', 'b'], durationMinutes: 10_081 } }, 'poll.durationMinutes', 'is 10081'],
    [{ ...base, poll: { options: ['a', 'b'] } }, 'poll.durationMinutes', 'is required'],
    [{ ...base, poll: { options: ['a', 'b'], durationMinutes: 60, multiple: true } }, 'multiple', 'is not a known field'],
    [{ ...base, poll, quoteTweetId: '99' }, 'poll', 'cannot be combined with quoteTweetId'],
    [{ ...base, replySettings: 'everyone' }, 'replySettings', 'must be one of following, mentionedUsers, subscribers, verified'],
    [{ ...base, quoteTweetId: 'https://x.com/a/status/1' }, 'quoteTweetId', 'must be a numeric X id'],
    [{ ...base, kind: 'dm', recipientId: '42', quoteTweetId: '99' }, 'quoteTweetId', 'is only allowed for a post, a reply or a thread part, not a dm'],
    [{ ...base, kind: 'dm', recipientId: '42', poll }, 'poll', 'not a dm'],
    [{ ...base, kind: 'dm', recipientId: '42', replySettings: 'verified' }, 'replySettings', 'not a dm'],
    [{ ...base, kind: 'thread', text: undefined, parts: [{ text: 'a' }, { text: 'b' }], poll }, 'poll', 'is given per part on a thread: parts[i].poll'],
    [
      { ...base, kind: 'thread', text: undefined, parts: [{ text: 'a', poll, quoteTweetId: '7' }, { text: 'b' }] },
      'parts[0].poll',
      'cannot be combined with parts[0].quoteTweetId',
    ],
    [
      { ...base, kind: 'thread', text: undefined, parts: [{ text: 'a' }, { text: 'b', poll: { options: ['a'], durationMinutes: 60 } }] },
      'parts[1].poll.options',
      'has 1 option(s)',
    ],
  ])('rejects %j naming %s', (raw, field, reason) => {
    const errors = errorsOf(raw);
    const hit = errors.find((e) => e.field === field);
    expect(hit, JSON.stringify(errors)).toBeDefined();
    expect(hit!.reason).toContain(reason);
  });

  it('are in the fingerprint when given: another poll, quote or setting is another payload', () => {
    const fp = (raw: unknown) => {
      const v = validateRequest(raw, opts);
      if (!v.ok) throw new Error(JSON.stringify(v.errors));
      return v.request.fingerprint;
    };
    const all = [
      fp(base),
      fp({ ...base, poll }),
      fp({ ...base, poll: { ...poll, durationMinutes: 61 } }),
      fp({ ...base, poll: { ...poll, options: ['no', 'yes'] } }),
      fp({ ...base, quoteTweetId: '99' }),
      fp({ ...base, replySettings: 'following' }),
      fp({ ...base, replySettings: 'verified' }),
      fp({ ...base, kind: 'thread', text: undefined, parts: [{ text: 'hello' }, { text: 'b' }] }),
      fp({ ...base, kind: 'thread', text: undefined, parts: [{ text: 'hello', quoteTweetId: '99' }, { text: 'b' }] }),
    ];
    expect(new Set(all).size).toBe(all.length);
    // The same extras, given in another key order, are the same payload.
    expect(fp({ ...base, replySettings: 'following', poll })).toBe(
      fp({ poll: { durationMinutes: 60, options: ['yes', 'no'] }, ...base, replySettings: 'following' }),
    );
  });

  it("a thread's parts keep their own extras; the first part's are the ones to publish first", () => {
    const v = validateRequest(
      {
        ...base,
        kind: 'thread',
        text: undefined,
        parts: [
          { text: 'a', quoteTweetId: '99' },
          { text: 'b', poll },
        ],
      },
      opts,
    );
    if (!v.ok) throw new Error(JSON.stringify(v.errors));
    expect(v.request.parts).toEqual([
      { text: 'a', quoteTweetId: '99' },
      { text: 'b', poll },
    ]);
    expect(v.request).not.toHaveProperty('quoteTweetId');
  });
});

describe("an account's text length (limits.textLength)", () => {
  const long = 'long '.repeat(200).trim(); // 999 weighted characters
  const withLimit = { ...opts, textLengthOf: (id: string) => (id === 'acme' ? 1_000 : undefined) };

  it("a long post within the account's limit is accepted, over it refused naming the limit", () => {
    expect(validateRequest({ ...base, text: long }, withLimit).ok).toBe(true);
    const over = validateRequest({ ...base, text: `${long} xy` }, withLimit);
    expect(over.ok ? [] : over.errors).toEqual([
      { field: 'text', reason: 'is 1002 weighted characters; the account allows 1000 (limits.textLength) (URLs count 23, emoji and CJK 2)' },
    ]);
  });

  it('an account without a limit keeps 280, and so do thread parts', () => {
    expect(errorsOf({ ...base, text: long })[0]).toMatchObject({ field: 'text', reason: expect.stringContaining('X allows 280') });
    const thread = { ...base, kind: 'thread', text: undefined, parts: [{ text: long }, { text: 'b' }] };
    expect(validateRequest(thread, withLimit).ok).toBe(true);
    expect(errorsOf(thread)[0]).toMatchObject({ field: 'parts[0].text' });
  });
});

describe('an edit keeps the extras and the length the key was accepted with', () => {
  const recordOf = (raw: Record<string, unknown>, o: ValidateOptions = opts): PostRecord => {
    const v = validateRequest(raw, o);
    if (!v.ok) throw new Error(JSON.stringify(v.errors));
    return { ...v.request, keyId: 'k', state: 'queued', attempt: 0, jobId: 'j', createdAt: now, updatedAt: now };
  };

  it('the fingerprint after an edit is that of the edited request, poll included', () => {
    const poll = { options: ['yes', 'no'], durationMinutes: 60 };
    const r = recordOf({ ...base, poll, scheduledAt: '2026-06-01T12:00:00Z' });
    const edit = planEdit(r, { text: 'hello again' }, now);
    const fresh = validateRequest({ ...base, text: 'hello again', poll, scheduledAt: '2026-06-01T12:00:00Z' }, opts);
    expect(edit.ok && fresh.ok && edit.plan.fingerprint === fresh.request.fingerprint).toBe(true);
    expect(edit.ok && edit.plan.set).not.toHaveProperty('poll');
  });

  it('an edit replaces a poll, a quote or reply settings, or removes one with null, checked and fingerprinted as at enqueue', () => {
    const at = { scheduledAt: '2026-06-01T12:00:00Z' };
    const poll = { options: ['yes', 'no'], durationMinutes: 60 };
    const r = recordOf({ ...base, ...at, poll });
    const fingerprintOf = (raw: Record<string, unknown>) => {
      const v = validateRequest({ ...base, ...at, ...raw }, opts);
      return v.ok ? v.request.fingerprint : undefined;
    };

    const newPoll = { options: ['yes', 'no', 'maybe'], durationMinutes: 120 };
    const replaced = planEdit(r, { poll: newPoll, replySettings: 'following' }, now);
    expect(replaced.ok && replaced.plan.set).toMatchObject({ poll: newPoll, replySettings: 'following' });
    expect(replaced.ok && replaced.plan.fingerprint).toBe(fingerprintOf({ poll: newPoll, replySettings: 'following' }));

    const removed = planEdit(r, { poll: null, quoteTweetId: '1234567890' }, now);
    expect(removed.ok && removed.plan.set).toMatchObject({ poll: null, quoteTweetId: '1234567890' });
    expect(removed.ok && removed.plan.fingerprint).toBe(fingerprintOf({ quoteTweetId: '1234567890' }));

    // The merged payload is what is checked: a quote added to a key with a poll is X's refused combination.
    const both = planEdit(r, { quoteTweetId: '1234567890' }, now);
    expect(both.ok ? [] : both.errors.map((e) => e.field)).toEqual(['poll']);
    const onePoll = planEdit(r, { poll: { options: ['only'], durationMinutes: 60 } }, now);
    expect(onePoll.ok ? [] : onePoll.errors.map((e) => e.field)).toEqual(['poll.options']);
    const badSetting = planEdit(r, { replySettings: 'everyone-ish' }, now);
    expect(badSetting.ok ? [] : badSetting.errors.map((e) => e.field)).toEqual(['replySettings']);

    const dm = recordOf({ ...base, ...at, kind: 'dm', recipientId: '42' });
    const onDm = planEdit(dm, { quoteTweetId: '1234567890' }, now);
    expect(onDm.ok ? [] : onDm.errors.map((e) => e.field)).toEqual(['quoteTweetId']);
    const thread = recordOf({ ...base, ...at, kind: 'thread', text: undefined, parts: [{ text: 'one' }, { text: 'two' }] });
    const onThread = planEdit(thread, { poll: newPoll }, now);
    expect(onThread.ok ? '' : onThread.errors[0]?.reason).toMatch(/give the thread's parts/);
  });

  it('a long post may be edited to a text as long as the one the account was allowed', () => {
    const long = 'long '.repeat(200).trim();
    const r = recordOf({ ...base, text: long }, { ...opts, textLengthOf: () => 1_000 });
    expect(planEdit(r, { text: long.replace('long', 'LONG') }, now).ok).toBe(true);
    const over = planEdit(r, { text: `${long} and more` }, now);
    expect(over.ok ? [] : over.errors[0]?.field).toBe('text');
  });
});
