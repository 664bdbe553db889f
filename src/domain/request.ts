import { createHash } from 'node:crypto';
import twitterText from 'twitter-text';
import { z } from 'zod';
import { canonicalMedia, checkMedia, copyMedia, type MediaInput, type MediaProbe, type MediaRef } from './media.js';

/**
 * A publish request as the producer sends it, and its validated form.
 * Every rejection names the field and the reason; nothing here talks to
 * Redis or X.
 */
export type PostKind = 'post' | 'reply' | 'dm' | 'thread';

export const REPLY_SETTINGS = ['following', 'mentionedUsers', 'subscribers', 'verified'] as const;
/** Who may reply (X's `reply_settings`); absent: everyone. */
export type ReplySettings = (typeof REPLY_SETTINGS)[number];

export interface Poll {
  readonly options: readonly string[];
  readonly durationMinutes: number;
}

/**
 * What a post or a thread part may carry beyond its text, passed to X as
 * `quote_tweet_id`, `poll` and `reply_settings`. Never on a DM.
 */
export interface PostExtras {
  readonly quoteTweetId?: string;
  readonly poll?: Poll;
  readonly replySettings?: ReplySettings;
  /** Images, a GIF or a video (domain/media.ts); the text may then be empty. */
  readonly media?: readonly MediaRef[];
}

export interface PublishRequestInput {
  slotId: string;
  postId: string;
  accountId: string;
  kind: PostKind;
  /** Every kind but a thread; a thread's texts are its parts'. */
  text?: string;
  /** A thread's parts, in order (2–25); the first may reply to an existing post; each may carry its own extras. */
  parts?: ({ text?: string; inReplyToTweetId?: string; media?: MediaInput[] } & Omit<PostExtras, 'media'>)[];
  inReplyToTweetId?: string;
  recipientId?: string;
  quoteTweetId?: string;
  poll?: Poll;
  replySettings?: ReplySettings;
  media?: MediaInput[];
  scheduledAt?: string;
  deadline?: string;
}

/** One part of a thread; `tweetId` once it is live. */
export interface ThreadPart extends PostExtras {
  readonly text: string;
  readonly inReplyToTweetId?: string;
  readonly tweetId?: string;
}

/**
 * What one key publishes, and where. For a thread, `text` and
 * `inReplyToTweetId` are those of the part to publish next (`partIndex`):
 * the worker and the matcher see one post at a time.
 */
export interface PostPayload extends PostExtras {
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

export type Validation = { readonly ok: true; readonly request: PublishRequest } | { readonly ok: false; readonly errors: readonly FieldError[] };

export const MAX_POST_WEIGHT = 280;
/** What X allows the longest posts (Premium): an account's `limits.textLength` may go up to this. */
export const MAX_LONG_POST_WEIGHT = 25_000;
export const MAX_DM_CHARS = 10_000;
export const MIN_POLL_OPTIONS = 2;
export const MAX_POLL_OPTIONS = 4;
export const MAX_POLL_OPTION_CHARS = 25;
export const MIN_POLL_MINUTES = 5;
export const MAX_POLL_MINUTES = 10_080;
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

const xId = z.string({ error: (i) => (i.input === undefined ? 'is required' : 'must be a string') }).regex(/^[1-9]\d{0,19}$/, 'must be a numeric X id');

export const isoTime = z.iso.datetime({ offset: true, error: 'must be an ISO-8601 date-time with a time zone, e.g. 2026-01-31T09:00:00Z' });

// Shapes only: the ranges are checked in extrasErrors, so each error names its option.
const pollShape = z
  .object(
    {
      options: z.array(z.string({ error: 'must be a string' }), { error: (i) => (i.input === undefined ? 'is required' : 'must be an array of strings') }),
      durationMinutes: z.number({ error: (i) => (i.input === undefined ? 'is required' : 'must be a number') }),
    },
    { error: 'must be an object {options, durationMinutes}' },
  )
  .strict();

const mediaShape = z.array(
  z
    .object({
      path: z.string({ error: 'must be a string' }).optional(),
      url: z.string({ error: 'must be a string' }).optional(),
      altText: z.string({ error: 'must be a string' }).optional(),
    })
    .strict(),
  { error: 'must be an array of media ({path} or {url}, with altText if you like)' },
);

const extrasShape = {
  media: mediaShape.optional(),
  quoteTweetId: xId.optional(),
  poll: pollShape.optional(),
  replySettings: z.enum(REPLY_SETTINGS, { error: `must be one of ${REPLY_SETTINGS.join(', ')}` }).optional(),
};

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
        z
          .object({
            text: z.string({ error: 'must be a string' }).optional(),
            inReplyToTweetId: xId.optional(),
            ...extrasShape,
          })
          .strict(),
        { error: 'must be an array of parts ({text})' },
      )
      .optional(),
    inReplyToTweetId: xId.optional(),
    recipientId: xId.optional(),
    ...extrasShape,
    scheduledAt: isoTime.optional(),
    deadline: isoTime.optional(),
  })
  .strict();

/** `maxWeight`: the account's text length (280 unless its `limits.textLength` says more). */
function textErrors(kind: PostKind, text: string, maxWeight = MAX_POST_WEIGHT, withMedia = false): string | undefined {
  // A media-only post is common on X: no text needed then.
  if (text.trim().length === 0) return withMedia ? undefined : 'must not be empty or whitespace-only (unless media is attached)';
  if (kind === 'dm') {
    const chars = [...text].length;
    return chars > MAX_DM_CHARS ? `is ${chars} characters; a DM allows ${MAX_DM_CHARS}` : undefined;
  }
  const weight = twitterText.parseTweet(text).weightedLength;
  if (weight <= maxWeight) return undefined;
  const allowed = maxWeight === MAX_POST_WEIGHT ? `X allows ${MAX_POST_WEIGHT}` : `the account allows ${maxWeight} (limits.textLength)`;
  return `is ${weight} weighted characters; ${allowed} (URLs count 23, emoji and CJK 2)`;
}

/**
 * A poll's ranges, and X's refusal to combine a poll with a quote (or with
 * media); `at` prefixes each field (`parts[2].` for a thread part).
 */
function extrasErrors(e: PostExtras, at = ''): FieldError[] {
  const errors: FieldError[] = [];
  if (e.media && (e.poll || e.quoteTweetId !== undefined))
    errors.push({ field: `${at}media`, reason: `cannot be combined with ${at}${e.poll ? 'poll' : 'quoteTweetId'}: X refuses media with a poll or a quote` });
  if (e.poll) {
    const { options, durationMinutes } = e.poll;
    if (options.length < MIN_POLL_OPTIONS || options.length > MAX_POLL_OPTIONS) {
      errors.push({ field: `${at}poll.options`, reason: `has ${options.length} option(s); a poll has ${MIN_POLL_OPTIONS}–${MAX_POLL_OPTIONS}` });
    }
    options.forEach((o, i) => {
      const chars = [...o].length;
      if (o.trim() === '') errors.push({ field: `${at}poll.options[${i}]`, reason: 'must not be empty or whitespace-only' });
      else if (chars > MAX_POLL_OPTION_CHARS)
        errors.push({ field: `${at}poll.options[${i}]`, reason: `is ${chars} characters; a poll option allows 1–${MAX_POLL_OPTION_CHARS}` });
    });
    if (!Number.isInteger(durationMinutes) || durationMinutes < MIN_POLL_MINUTES || durationMinutes > MAX_POLL_MINUTES) {
      errors.push({
        field: `${at}poll.durationMinutes`,
        reason: `is ${durationMinutes}; a poll runs ${MIN_POLL_MINUTES}–${MAX_POLL_MINUTES.toLocaleString('en-US')} whole minutes`,
      });
    }
    if (e.quoteTweetId !== undefined) {
      errors.push({ field: `${at}poll`, reason: `cannot be combined with ${at}quoteTweetId: X refuses a post with a poll and a quote (or media)` });
    }
  }
  return errors;
}

/** The extras of a payload, for a thread those of the part in progress; only the ones given. */
export function extrasOf(p: PostExtras & { readonly parts?: readonly PostExtras[]; readonly partIndex?: number }): PostExtras {
  const from = p.parts ? (p.parts[p.partIndex ?? 0] ?? {}) : p;
  return ownExtras(from);
}

/** The extras a payload (or a part) itself carries, copied. */
export function ownExtras(e: PostExtras): PostExtras {
  return {
    ...(e.quoteTweetId !== undefined && { quoteTweetId: e.quoteTweetId }),
    ...(e.poll !== undefined && { poll: { options: [...e.poll.options], durationMinutes: e.poll.durationMinutes } }),
    ...(e.replySettings !== undefined && { replySettings: e.replySettings }),
    ...(e.media !== undefined && { media: copyMedia(e.media) }),
  };
}

const hasExtras = (e: PostExtras) => e.quoteTweetId !== undefined || e.poll !== undefined || e.replySettings !== undefined || e.media !== undefined;

/**
 * The extras in a fixed order for the fingerprint (null where absent); the
 * media (content hashes) only when given, so older fingerprints hold.
 */
const canonicalExtras = (e: PostExtras) => [
  e.quoteTweetId ?? null,
  e.poll ? [[...e.poll.options], e.poll.durationMinutes] : null,
  e.replySettings ?? null,
  ...(e.media ? [canonicalMedia(e.media)] : []),
];

/**
 * Only what the producer said, in a fixed order: defaults derived at
 * enqueue time (like "now") must not turn a retry into a conflict.
 */
export function fingerprintOf(
  p: Pick<PostPayload, 'accountId' | 'kind' | 'text' | 'inReplyToTweetId' | 'recipientId'> &
    PostExtras & { readonly parts?: readonly ({ readonly text: string } & PostExtras)[] },
  given: GivenTimes,
): string {
  const fields: unknown[] = [p.accountId, p.kind, p.text, p.inReplyToTweetId ?? null, p.recipientId ?? null, given.scheduledAt, given.deadline];
  if (p.parts) fields.push(p.parts.map((part) => part.text));
  // Appended only when given, as an object (parts are an array): a request
  // without extras keeps the fingerprint it had before they existed.
  if (!p.parts && hasExtras(p)) fields.push({ extras: canonicalExtras(p) });
  if (p.parts?.some(hasExtras)) fields.push({ partExtras: p.parts.map((part) => (hasExtras(part) ? canonicalExtras(part) : null)) });
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
  /** The account's text length in weighted characters (its `limits.textLength`); undefined: 280. */
  readonly textLengthOf?: (accountId: string) => number | undefined;
  /** What the edge found at each media path (src/media/probe.ts); a path without a probe is an error. */
  readonly probeMedia?: (path: string) => MediaProbe | undefined;
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
    const { kind, text, accountId } = raw as { kind?: unknown; text?: unknown; accountId?: unknown };
    if (typeof text === 'string' && !errors.some((e) => e.field === 'text')) {
      const textError = textErrors(kind === 'dm' ? 'dm' : 'post', text, typeof accountId === 'string' ? opts.textLengthOf?.(accountId) : undefined);
      if (textError) errors.push({ field: 'text', reason: textError });
    }
    return { ok: false, errors };
  }
  const input = parsed.data;
  const errors: FieldError[] = [];
  const maxWeight = opts.textLengthOf?.(input.accountId) ?? MAX_POST_WEIGHT;
  const probeOf = opts.probeMedia ?? (() => undefined);
  /** A request's (or a part's) media checked against X's rules; undefined when none are given. */
  const mediaOf = (items: readonly MediaInput[] | undefined, at: string): MediaRef[] | undefined => {
    if (items === undefined) return undefined;
    const checked = checkMedia(items, probeOf, at);
    errors.push(...checked.errors);
    return checked.media;
  };
  const thread = input.kind === 'thread' ? threadErrors(input, maxWeight) : undefined;
  if (thread) errors.push(...thread);
  else if (input.parts !== undefined) errors.push({ field: 'parts', reason: `is only allowed for a thread, not a ${input.kind}` });
  const partMedia = input.kind === 'thread' ? (input.parts ?? []).map((p, i) => mediaOf(p.media, `parts[${i}].media`)) : [];
  const media = input.kind === 'thread' ? undefined : mediaOf(input.media, 'media');
  if (input.kind !== 'thread') {
    const textError =
      input.text === undefined && input.media === undefined ? 'is required' : textErrors(input.kind, input.text ?? '', maxWeight, input.media !== undefined);
    if (textError) errors.push({ field: 'text', reason: textError });
  }
  if (input.kind === 'dm') {
    for (const f of ['quoteTweetId', 'poll', 'replySettings'] as const) {
      if (input[f] !== undefined) errors.push({ field: f, reason: 'is only allowed for a post, a reply or a thread part, not a dm' });
    }
    // X attaches one medium to a DM message.
    if (input.media !== undefined && input.media.length > 1)
      errors.push({ field: 'media', reason: `has ${input.media.length} media; a DM takes 1 image, GIF or video` });
  } else if (input.kind !== 'thread') {
    errors.push(...extrasErrors(input));
  }
  if (input.kind === 'reply' && input.inReplyToTweetId === undefined) errors.push({ field: 'inReplyToTweetId', reason: 'is required for a reply' });
  if (input.kind !== 'reply' && input.kind !== 'thread' && input.inReplyToTweetId !== undefined)
    errors.push({ field: 'inReplyToTweetId', reason: `is only allowed for a reply, not a ${input.kind}` });
  if (input.kind === 'dm' && input.recipientId === undefined) errors.push({ field: 'recipientId', reason: 'is required for a dm' });
  if (input.kind !== 'dm' && input.recipientId !== undefined) errors.push({ field: 'recipientId', reason: `is only allowed for a dm, not a ${input.kind}` });
  if (opts.knownAccount && !opts.knownAccount(input.accountId)) errors.push({ field: 'accountId', reason: `unknown account "${input.accountId}"` });

  const scheduledAt = input.scheduledAt === undefined ? opts.now : Date.parse(input.scheduledAt);
  const deadline = input.deadline === undefined ? scheduledAt + opts.deadlineWindowMs : Date.parse(input.deadline);
  // A deadline already in the past is not malformed: a re-enqueue of a key
  // that went out must still answer "sent", and a new one fails as expired.
  if (deadline <= scheduledAt) errors.push({ field: 'deadline', reason: 'must be after scheduledAt' });
  if (errors.length > 0) return { ok: false, errors };

  const parts =
    input.kind === 'thread'
      ? input.parts!.map((p, i) => ({
          text: p.text ?? '',
          ...(p.inReplyToTweetId !== undefined && { inReplyToTweetId: p.inReplyToTweetId }),
          ...ownExtras({ ...p, media: partMedia[i] }),
        }))
      : undefined;
  const first = parts?.[0];
  const text = first ? first.text : (input.text ?? '');
  const inReplyToTweetId = first ? first.inReplyToTweetId : input.inReplyToTweetId;
  const extras = parts ? {} : ownExtras({ ...input, media });
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
      ...extras,
      scheduledAt,
      deadline,
      fingerprint: fingerprintOf({ ...input, media: undefined, text, ...extras, parts }, givenTimesOf(input)),
      given: givenTimesOf(input),
    },
  };
}

/** A thread's own rules; each error names its part (`parts[3].text: …`). */
function threadErrors(
  input: Pick<PublishRequestInput, 'parts' | 'text' | 'inReplyToTweetId' | 'media'> & Omit<PostExtras, 'media'>,
  maxWeight: number,
): FieldError[] {
  const { parts, text, inReplyToTweetId } = input;
  const errors: FieldError[] = [];
  if (text !== undefined) errors.push({ field: 'text', reason: 'is not used by a thread: give each part its text in parts[i].text' });
  if (inReplyToTweetId !== undefined) errors.push({ field: 'inReplyToTweetId', reason: 'is given on the first part of a thread: parts[0].inReplyToTweetId' });
  for (const f of ['quoteTweetId', 'poll', 'replySettings', 'media'] as const) {
    if (input[f] !== undefined) errors.push({ field: f, reason: `is given per part on a thread: parts[i].${f}` });
  }
  if (parts === undefined) return [...errors, { field: 'parts', reason: `is required for a thread (${MIN_THREAD_PARTS}–${MAX_THREAD_PARTS} parts)` }];
  if (parts.length < MIN_THREAD_PARTS || parts.length > MAX_THREAD_PARTS) {
    errors.push({ field: 'parts', reason: `has ${parts.length} part(s); a thread has ${MIN_THREAD_PARTS}–${MAX_THREAD_PARTS}` });
  }
  parts.forEach((p, i) => {
    const e = p.text === undefined && p.media === undefined ? 'is required' : textErrors('post', p.text ?? '', maxWeight, p.media !== undefined);
    if (e) errors.push({ field: `parts[${i}].text`, reason: e });
    errors.push(...extrasErrors({ ...p, media: p.media as MediaRef[] | undefined }, `parts[${i}].`));
    if (i > 0 && p.inReplyToTweetId !== undefined)
      errors.push({
        field: `parts[${i}].inReplyToTweetId`,
        reason: 'only the first part may reply to an existing post; the others reply to the part before them',
      });
  });
  return errors;
}

export function formatFieldErrors(errors: readonly FieldError[]): string {
  return errors.map((e) => `${e.field}: ${e.reason}`).join('; ');
}
