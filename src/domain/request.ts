import { createHash } from 'node:crypto';
import twitterText from 'twitter-text';
import { z } from 'zod';

/**
 * A publish request as the producer sends it, and its validated form.
 * Every rejection names the field and the reason; nothing here talks to
 * Redis or X.
 */
export type PostKind = 'post' | 'reply' | 'dm' | 'thread';

export interface PublishRequestInput {
  slotId: string;
  postId: string;
  accountId: string;
  kind: PostKind;
  /** Every kind but a thread; a thread's texts are its parts'. */
  text?: string;
  /** A thread's parts, in order (2–25); the first may reply to an existing post. */
  parts?: { text: string; inReplyToTweetId?: string }[];
  inReplyToTweetId?: string;
  recipientId?: string;
  scheduledAt?: string;
  deadline?: string;
}

/** One part of a thread; `tweetId` once it is live. */
export interface ThreadPart {
  readonly text: string;
  readonly inReplyToTweetId?: string;
  readonly tweetId?: string;
}

/**
 * What one key publishes, and where. For a thread, `text` and
 * `inReplyToTweetId` are those of the part to publish next (`partIndex`):
 * the worker and the matcher see one post at a time.
 */
export interface PostPayload {
  readonly slotId: string;
  readonly postId: string;
  readonly accountId: string;
  readonly kind: PostKind;
  readonly text: string;
  readonly inReplyToTweetId?: string;
  readonly recipientId?: string;
  readonly parts?: readonly ThreadPart[];
  /** The part in progress (threads only). */
  readonly partIndex?: number;
}

/** A request that passed validation, with times resolved to epoch ms. */
export interface PublishRequest extends PostPayload {
  readonly scheduledAt: number;
  readonly deadline: number;
  /** Hash of the payload as the producer gave it: same key + other fingerprint = conflict. */
  readonly fingerprint: string;
  /** The times as the producer gave them (null: defaulted); the fingerprint covers these, not the defaults. */
  readonly given: GivenTimes;
}

/** The times of a request as the producer gave them (epoch ms), null where it left them to the default. */
export interface GivenTimes {
  readonly scheduledAt: number | null;
  readonly deadline: number | null;
}

export interface FieldError {
  readonly field: string;
  readonly reason: string;
}

export type Validation =
  | { readonly ok: true; readonly request: PublishRequest }
  | { readonly ok: false; readonly errors: readonly FieldError[] };

export const MAX_POST_WEIGHT = 280;
export const MAX_DM_CHARS = 10_000;
export const MIN_THREAD_PARTS = 2;
export const MAX_THREAD_PARTS = 25;
const MAX_ID_CHARS = 200;

export const idField = (what: string) =>
  z
    .string({ error: (i) => (i.input === undefined ? 'is required' : `must be a string`) })
    .min(1, `must not be empty`)
    .max(MAX_ID_CHARS, `must be at most ${MAX_ID_CHARS} characters`)
    // eslint-disable-next-line no-control-regex
    .refine((s) => !/[\u0000-\u001f\u007f]/.test(s), `${what} must not contain control characters`);

const xId = z
  .string({ error: (i) => (i.input === undefined ? 'is required' : 'must be a string') })
  .regex(/^[1-9]\d{0,19}$/, 'must be a numeric X id');

export const isoTime = z.iso.datetime({ offset: true, error: 'must be an ISO-8601 date-time with a time zone, e.g. 2026-01-31T09:00:00Z' });

const schema = z
  .object({
    slotId: idField('slotId'),
    postId: idField('postId'),
    accountId: z
      .string({ error: (i) => (i.input === undefined ? 'is required' : 'must be a string') })
      .regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1-64 letters, digits, _ . -'),
    kind: z.enum(['post', 'reply', 'dm', 'thread'], { error: 'must be one of post, reply, dm, thread' }),
    text: z.string({ error: 'must be a string' }).optional(),
    parts: z
      .array(
        z.object({ text: z.string({ error: (i) => (i.input === undefined ? 'is required' : 'must be a string') }), inReplyToTweetId: xId.optional() }).strict(),
        { error: 'must be an array of parts ({text})' },
      )
      .optional(),
    inReplyToTweetId: xId.optional(),
    recipientId: xId.optional(),
    scheduledAt: isoTime.optional(),
    deadline: isoTime.optional(),
  })
  .strict();

function textErrors(kind: PostKind, text: string): string | undefined {
  if (text.trim().length === 0) return 'must not be empty or whitespace-only';
  if (kind === 'dm') {
    const chars = [...text].length;
    return chars > MAX_DM_CHARS ? `is ${chars} characters; a DM allows ${MAX_DM_CHARS}` : undefined;
  }
  const weight = twitterText.parseTweet(text).weightedLength;
  return weight > MAX_POST_WEIGHT
    ? `is ${weight} weighted characters; X allows ${MAX_POST_WEIGHT} (URLs count 23, emoji and CJK 2)`
    : undefined;
}

/**
 * Only what the producer said, in a fixed order: defaults derived at
 * enqueue time (like "now") must not turn a retry into a conflict.
 */
export function fingerprintOf(
  p: Pick<PostPayload, 'accountId' | 'kind' | 'text' | 'inReplyToTweetId' | 'recipientId'> & { readonly parts?: readonly { readonly text: string }[] }, given: GivenTimes,
): string {
  const fields: unknown[] = [p.accountId, p.kind, p.text, p.inReplyToTweetId ?? null, p.recipientId ?? null, given.scheduledAt, given.deadline];
  if (p.parts) fields.push(p.parts.map((part) => part.text));
  const canonical = JSON.stringify(fields);
  return createHash('sha256').update(canonical).digest('base64url').slice(0, 22);
}

/** The given times of a raw input (undefined: defaulted). */
export function givenTimesOf(input: Pick<PublishRequestInput, 'scheduledAt' | 'deadline'>): GivenTimes {
  return {
    scheduledAt: input.scheduledAt === undefined ? null : Date.parse(input.scheduledAt),
    deadline: input.deadline === undefined ? null : Date.parse(input.deadline),
  };
}

export interface ValidateOptions {
  readonly now: number;
  readonly deadlineWindowMs: number;
  readonly knownAccount?: (accountId: string) => boolean;
}

export function validateRequest(raw: unknown, opts: ValidateOptions): Validation {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return { ok: false, errors: [{ field: '(request)', reason: 'must be a JSON object' }] };
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const errors: FieldError[] = parsed.error.issues.map((i) =>
      i.code === 'unrecognized_keys'
        ? { field: i.keys.join(','), reason: 'is not a known field' }
        : { field: i.path.join('.') || '(request)', reason: i.message },
    );
    // Report a bad text too, so one round of fixes is enough.
    const { kind, text } = raw as { kind?: unknown; text?: unknown };
    if (typeof text === 'string' && !errors.some((e) => e.field === 'text')) {
      const textError = textErrors(kind === 'dm' ? 'dm' : 'post', text);
      if (textError) errors.push({ field: 'text', reason: textError });
    }
    return { ok: false, errors };
  }
  const input = parsed.data;
  const errors: FieldError[] = [];
  const thread = input.kind === 'thread' ? threadErrors(input.parts, input.text, input.inReplyToTweetId) : undefined;
  if (thread) errors.push(...thread);
  else if (input.parts !== undefined) errors.push({ field: 'parts', reason: `is only allowed for a thread, not a ${input.kind}` });
  if (input.kind !== 'thread') {
    const textError = input.text === undefined ? 'is required' : textErrors(input.kind, input.text);
    if (textError) errors.push({ field: 'text', reason: textError });
  }
  if (input.kind === 'reply' && input.inReplyToTweetId === undefined)
    errors.push({ field: 'inReplyToTweetId', reason: 'is required for a reply' });
  if (input.kind !== 'reply' && input.kind !== 'thread' && input.inReplyToTweetId !== undefined)
    errors.push({ field: 'inReplyToTweetId', reason: `is only allowed for a reply, not a ${input.kind}` });
  if (input.kind === 'dm' && input.recipientId === undefined)
    errors.push({ field: 'recipientId', reason: 'is required for a dm' });
  if (input.kind !== 'dm' && input.recipientId !== undefined)
    errors.push({ field: 'recipientId', reason: `is only allowed for a dm, not a ${input.kind}` });
  if (opts.knownAccount && !opts.knownAccount(input.accountId))
    errors.push({ field: 'accountId', reason: `unknown account "${input.accountId}"` });

  const scheduledAt = input.scheduledAt === undefined ? opts.now : Date.parse(input.scheduledAt);
  const deadline =
    input.deadline === undefined ? scheduledAt + opts.deadlineWindowMs : Date.parse(input.deadline);
  // A deadline already in the past is not malformed: a re-enqueue of a key
  // that went out must still answer "sent", and a new one fails as expired.
  if (deadline <= scheduledAt) errors.push({ field: 'deadline', reason: 'must be after scheduledAt' });
  if (errors.length > 0) return { ok: false, errors };

  const parts = input.kind === 'thread' ? input.parts!.map((p) => ({ text: p.text, ...(p.inReplyToTweetId !== undefined && { inReplyToTweetId: p.inReplyToTweetId }) })) : undefined;
  const first = parts?.[0];
  const text = first ? first.text : input.text!;
  const inReplyToTweetId = first ? first.inReplyToTweetId : input.inReplyToTweetId;
  return {
    ok: true,
    request: {
      slotId: input.slotId,
      postId: input.postId,
      accountId: input.accountId,
      kind: input.kind,
      text,
      ...(inReplyToTweetId !== undefined && { inReplyToTweetId }),
      ...(parts && { parts, partIndex: 0 }),
      ...(input.recipientId !== undefined && { recipientId: input.recipientId }),
      scheduledAt,
      deadline,
      fingerprint: fingerprintOf({ ...input, text, ...(parts && { parts }) }, givenTimesOf(input)),
      given: givenTimesOf(input),
    },
  };
}

/** A thread's own rules; each error names its part (`parts[3].text: …`). */
function threadErrors(parts: readonly { text: string; inReplyToTweetId?: string }[] | undefined, text: string | undefined, inReplyToTweetId: string | undefined): FieldError[] {
  const errors: FieldError[] = [];
  if (text !== undefined) errors.push({ field: 'text', reason: 'is not used by a thread: give each part its text in parts[i].text' });
  if (inReplyToTweetId !== undefined) errors.push({ field: 'inReplyToTweetId', reason: 'is given on the first part of a thread: parts[0].inReplyToTweetId' });
  if (parts === undefined) return [...errors, { field: 'parts', reason: `is required for a thread (${MIN_THREAD_PARTS}–${MAX_THREAD_PARTS} parts)` }];
  if (parts.length < MIN_THREAD_PARTS || parts.length > MAX_THREAD_PARTS) {
    errors.push({ field: 'parts', reason: `has ${parts.length} part(s); a thread has ${MIN_THREAD_PARTS}–${MAX_THREAD_PARTS}` });
  }
  parts.forEach((p, i) => {
    const e = textErrors('post', p.text);
    if (e) errors.push({ field: `parts[${i}].text`, reason: e });
    if (i > 0 && p.inReplyToTweetId !== undefined) errors.push({ field: `parts[${i}].inReplyToTweetId`, reason: 'only the first part may reply to an existing post; the others reply to the part before them' });
  });
  return errors;
}

export function formatFieldErrors(errors: readonly FieldError[]): string {
  return errors.map((e) => `${e.field}: ${e.reason}`).join('; ');
}
