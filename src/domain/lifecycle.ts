import { z } from 'zod';
import type { PostKey } from './key.js';
import twitterText from 'twitter-text';
import { type FieldError, fingerprintOf, type GivenTimes, idField, isoTime, MAX_POST_WEIGHT, ownExtras, validateRequest } from './request.js';
import type { PostRecord } from './state.js';
import { inputOf, storedProbes } from './media.js';

/**
 * Cancel, edit and reschedule: what may change on a key, checked before any
 * script runs. Pure: the scripts in ledger/scripts.ts apply a plan only
 * while the key is still queued and its fingerprint is the one planned
 * from, so a plan never lands on a key that moved on.
 *
 * | state when asked      | cancel                | edit / reschedule       |
 * | queued                | cancelled             | edited / rescheduled    |
 * | claimed, ambiguous    | cancelling            | in-flight (refused)     |
 * | cancelling            | cancelling (no-op)    | in-flight (refused)     |
 * | sent                  | already-sent (+ X id) | already-sent            |
 * | failed, cancelled     | final (no-op)         | final                   |
 * | unknown key           | not-found             | not-found               |
 */
export const LIFECYCLE_STATUSES = ['cancelled', 'cancelling', 'edited', 'rescheduled', 'in-flight', 'already-sent', 'final', 'not-found', 'invalid'] as const;
export type LifecycleStatus = (typeof LIFECYCLE_STATUSES)[number];

/** Done or nothing to do (exit 0 in the CLI); every other status is a refusal (exit 2). */
export function isRefusal(status: LifecycleStatus, op: 'cancel' | 'edit' | 'reschedule'): boolean {
  if (status === 'cancelled' || status === 'cancelling' || status === 'edited' || status === 'rescheduled') return false;
  // Cancelling a key that is already final is a no-op: the caller's wish holds (it will not go out again).
  return !(op === 'cancel' && status === 'final');
}

/** The fields an edit may change; the rest of a key is fixed. */
export const EDITABLE_FIELDS = ['text', 'inReplyToTweetId', 'recipientId', 'quoteTweetId', 'poll', 'replySettings', 'parts'] as const;
/** A post's extras: an edit sets one to a new value, or removes it with null. */
const EXTRA_FIELDS = ['quoteTweetId', 'poll', 'replySettings'] as const;
export interface EditChanges {
  readonly text?: string;
  readonly inReplyToTweetId?: string;
  readonly recipientId?: string;
  /** Checked as at enqueue once merged with the key's payload; null removes it. */
  readonly quoteTweetId?: unknown;
  readonly poll?: unknown;
  readonly replySettings?: unknown;
  /** A thread's parts, all of them (only before its first part is live). */
  readonly parts?: readonly ({ readonly text: string; readonly inReplyToTweetId?: string } & { readonly [extra: string]: unknown })[];
}

export type Plan<T> =
  { readonly ok: true; readonly key: PostKey; readonly value: T } | { readonly ok: false; readonly key?: PostKey; readonly errors: readonly FieldError[] };

const FIXED_REASONS: Record<string, string> = {
  accountId: 'cannot be edited: cancel this key and enqueue a new one',
  kind: 'cannot be edited: cancel this key and enqueue a new one',
  scheduledAt: 'is changed with reschedule, not edit',
  deadline: 'is changed with reschedule, not edit',
};

const keySchema = { slotId: idField('slotId'), postId: idField('postId') };
const cancelSchema = z.object({ ...keySchema, reason: z.string().max(500, 'must be at most 500 characters').optional() }).strict();
const editSchema = z
  .object({
    ...keySchema,
    text: z.string().optional(),
    inReplyToTweetId: z.string().optional(),
    recipientId: z.string().optional(),
    // Checked by validateRequest once merged, as at enqueue; null removes.
    quoteTweetId: z.unknown().optional(),
    poll: z.unknown().optional(),
    replySettings: z.unknown().optional(),
    // A part's extras are checked by validateRequest, as at enqueue.
    parts: z
      .array(
        z
          .object({
            text: z.string(),
            inReplyToTweetId: z.string().optional(),
            quoteTweetId: z.unknown().optional(),
            poll: z.unknown().optional(),
            replySettings: z.unknown().optional(),
          })
          .strict(),
        { error: 'must be an array of parts ({text})' },
      )
      .optional(),
  })
  .strict();
const rescheduleSchema = z.object({ ...keySchema, scheduledAt: isoTime, deadline: isoTime.optional() }).strict();

function parse<S extends z.ZodType>(schema: S, raw: unknown, fixed: Record<string, string> = {}): Plan<z.infer<S>> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { ok: false, errors: [{ field: '(request)', reason: 'must be a JSON object' }] };
  const r = raw as Record<string, unknown>;
  const key = typeof r.slotId === 'string' && typeof r.postId === 'string' ? { slotId: r.slotId, postId: r.postId } : undefined;
  const parsed = schema.safeParse(raw);
  if (parsed.success) {
    const v = parsed.data as PostKey;
    return { ok: true, key: { slotId: v.slotId, postId: v.postId }, value: parsed.data };
  }
  const errors = parsed.error.issues.flatMap((i): FieldError[] =>
    i.code === 'unrecognized_keys'
      ? i.keys.map((k) => ({ field: k, reason: fixed[k] ?? 'is not a known field' }))
      : [{ field: i.path.join('.') || '(request)', reason: i.message === 'Invalid input: expected string, received undefined' ? 'is required' : i.message }],
  );
  return { ok: false, ...(key && { key }), errors };
}

export function parseCancel(raw: unknown): Plan<{ reason?: string }> {
  return parse(cancelSchema, raw);
}

/** The shape of an edit request (before the key's record is known). */
export function parseEdit(raw: unknown): Plan<EditChanges> {
  const p = parse(editSchema, raw, FIXED_REASONS);
  if (!p.ok) return p;
  const { slotId: _s, postId: _p, ...changes } = p.value;
  if (Object.keys(changes).length === 0) {
    return { ok: false, key: p.key, errors: [{ field: '(request)', reason: `changes nothing: give one of ${EDITABLE_FIELDS.join(', ')}` }] };
  }
  return { ok: true, key: p.key, value: changes };
}

export function parseReschedule(raw: unknown): Plan<{ scheduledAt: string; deadline?: string }> {
  return parse(rescheduleSchema, raw);
}

/** The fingerprint's times of a record (records written before `given` was kept: their resolved times). */
function givenOf(r: PostRecord): GivenTimes {
  return r.given ?? { scheduledAt: r.scheduledAt, deadline: r.deadline };
}

export interface EditPlan {
  readonly set: Record<string, unknown> & { readonly fingerprint: string };
  readonly fingerprint: string;
}

/** The key's payload after an edit, validated exactly as an enqueue is (same fields, same reasons). */
export function planEdit(r: PostRecord, changes: EditChanges, now: number): { ok: true; plan: EditPlan } | { ok: false; errors: readonly FieldError[] } {
  if (r.kind === 'thread') return planThreadEdit(r, changes, now);
  if (changes.parts !== undefined) return { ok: false, errors: [{ field: 'parts', reason: `is only for a thread, not a ${r.kind}` }] };
  const merged = {
    slotId: r.slotId,
    postId: r.postId,
    accountId: r.accountId,
    kind: r.kind,
    text: changes.text ?? r.text,
    ...((changes.inReplyToTweetId ?? r.inReplyToTweetId) !== undefined && { inReplyToTweetId: changes.inReplyToTweetId ?? r.inReplyToTweetId }),
    ...((changes.recipientId ?? r.recipientId) !== undefined && { recipientId: changes.recipientId ?? r.recipientId }),
    ...editedExtras(r, changes),
    ...timesOf(r),
  };
  // The key's media stay as they are (checked at enqueue; the worker checks the files again).
  const v = validateRequest(merged, {
    now,
    deadlineWindowMs: r.deadline - r.scheduledAt,
    textLengthOf: () => editTextLength(r),
    probeMedia: storedProbes(r.media ?? []),
  });
  if (!v.ok) return v;
  const fingerprint = fingerprintOf(v.request, givenOf(r));
  const set = {
    text: v.request.text,
    ...(v.request.inReplyToTweetId !== undefined && { inReplyToTweetId: v.request.inReplyToTweetId }),
    ...(v.request.recipientId !== undefined && { recipientId: v.request.recipientId }),
    // An extra the edit names is written; null removes it from the record (the change script deletes null fields).
    ...Object.fromEntries(EXTRA_FIELDS.filter((f) => changes[f] !== undefined).map((f) => [f, v.request[f] ?? null])),
    fingerprint,
  };
  return { ok: true, plan: { set, fingerprint } };
}

/** The key's extras with the edit's applied: a value replaces, null removes, absent keeps. */
function editedExtras(r: PostRecord, changes: EditChanges): Record<string, unknown> {
  const { media, ...own } = ownExtras(r);
  const extras: Record<string, unknown> = { ...own, ...(media && { media: media.map(inputOf) }) };
  for (const f of EXTRA_FIELDS) {
    if (changes[f] === null) delete extras[f];
    else if (changes[f] !== undefined) extras[f] = changes[f];
  }
  return extras;
}

/**
 * The text length an edit is checked against: the account's limit is not
 * known here, but what it already accepted for this key (a long post on a
 * long-post account) is within it, so an edit may be as long as the longest
 * text the key has, and never less than 280.
 */
function editTextLength(r: PostRecord): number {
  const texts = r.parts ? r.parts.map((p) => p.text) : [r.text];
  return Math.max(MAX_POST_WEIGHT, ...texts.map((t) => twitterText.parseTweet(t).weightedLength));
}

const timesOf = (r: PostRecord) => ({ scheduledAt: new Date(r.scheduledAt).toISOString(), deadline: new Date(r.deadline).toISOString() });

/** A thread's parts, replaced whole, only while none of them is live (a started thread carries on as it is). */
function planThreadEdit(r: PostRecord, changes: EditChanges, now: number): { ok: true; plan: EditPlan } | { ok: false; errors: readonly FieldError[] } {
  const other = (['text', 'inReplyToTweetId', 'recipientId', ...EXTRA_FIELDS] as const).filter((f) => changes[f] !== undefined);
  if (other.length)
    return { ok: false, errors: other.map((field) => ({ field, reason: "is not edited on a thread: give the thread's parts, all of them, in parts" })) };
  if ((r.parts ?? []).some((p) => p.media)) {
    return { ok: false, errors: [{ field: 'parts', reason: 'a thread with media cannot be edited yet: cancel it and enqueue a new key' }] };
  }
  if ((r.parts ?? []).some((p) => p.tweetId)) {
    return { ok: false, errors: [{ field: 'parts', reason: 'part 1 is already live: a started thread cannot be edited (cancel it to stop the rest)' }] };
  }
  const v = validateRequest(
    { slotId: r.slotId, postId: r.postId, accountId: r.accountId, kind: 'thread', parts: changes.parts, ...timesOf(r) },
    { now, deadlineWindowMs: r.deadline - r.scheduledAt, textLengthOf: () => editTextLength(r) },
  );
  if (!v.ok) return v;
  const fingerprint = fingerprintOf(v.request, givenOf(r));
  const set = { text: v.request.text, inReplyToTweetId: v.request.inReplyToTweetId ?? null, parts: v.request.parts, partIndex: 0, fingerprint };
  return { ok: true, plan: { set, fingerprint } };
}

export interface ReschedulePlan {
  readonly scheduledAt: number;
  readonly deadline: number;
  readonly fingerprint: string;
  readonly given: GivenTimes;
  /** When the key is now due (a backoff X imposed still holds). */
  readonly due: number;
}

/**
 * New times for a key. A time in the past means now. Without a deadline the
 * key keeps its window (deadline − scheduledAt) from the new time. A
 * deadline at or before now is refused: it would fail the key at once.
 */
export function planReschedule(
  r: PostRecord,
  req: { scheduledAt: string; deadline?: string },
  now: number,
): { ok: true; plan: ReschedulePlan } | { ok: false; errors: readonly FieldError[] } {
  const asked = Date.parse(req.scheduledAt);
  const scheduledAt = Math.max(now, asked);
  const deadline = req.deadline === undefined ? scheduledAt + (r.deadline - r.scheduledAt) : Date.parse(req.deadline);
  const errors: FieldError[] = [];
  if (deadline <= now)
    errors.push({ field: 'deadline', reason: `is in the past (${new Date(deadline).toISOString()}); a reschedule cannot move it before now` });
  else if (deadline <= scheduledAt) errors.push({ field: 'deadline', reason: 'must be after scheduledAt' });
  if (errors.length) return { ok: false, errors };
  const given = { scheduledAt: asked, deadline: req.deadline === undefined ? null : deadline };
  return {
    ok: true,
    plan: { scheduledAt, deadline, given, fingerprint: fingerprintOf(r, given), due: Math.max(scheduledAt, r.notBefore ?? 0) },
  };
}
