import type { AuditEvent, PostRecord } from '../domain/state.js';

export { POST_STATES, type AuditEvent, type FailReason, type PostRecord, type PostState } from '../domain/state.js';

/**
 * The stored form of a record: a Redis hash with one field per record
 * field, so that a script reads and writes only the fields a transition
 * touches instead of decoding and encoding the whole record (#16). Strings
 * are stored as they are, numbers in decimal, objects and lists as JSON.
 * The audit trail is the field `trail`, one JSON event per line (JSON never
 * holds a raw newline), with its length in `trailN`: appending is a string
 * concatenation, never a decode.
 */
export interface StoredRecord extends Omit<PostRecord, 'keyId'> {
  readonly trail: AuditEvent[];
}

type FieldKind = 'string' | 'number' | 'json';
type StoredFields = Omit<PostRecord, 'keyId'>;

/** Every field of a record and how it is stored; the compiler makes a new field pick one. */
export const RECORD_FIELD_KINDS: { readonly [K in keyof Required<StoredFields>]: FieldKind } = Object.freeze({
  slotId: 'string',
  postId: 'string',
  accountId: 'string',
  kind: 'string',
  text: 'string',
  inReplyToTweetId: 'string',
  recipientId: 'string',
  quoteTweetId: 'string',
  replySettings: 'string',
  fingerprint: 'string',
  state: 'string',
  jobId: 'string',
  tweetId: 'string',
  reason: 'string',
  detail: 'string',
  scheduledAt: 'number',
  deadline: 'number',
  notBefore: 'number',
  attempt: 'number',
  leaseUntil: 'number',
  attemptStartedAt: 'number',
  attemptEndedAt: 'number',
  createdAt: 'number',
  updatedAt: 'number',
  partIndex: 'number',
  poll: 'json',
  media: 'json',
  parts: 'json',
  cancel: 'json',
  given: 'json',
});

/** The record's fields in a fixed order: what a script's HMGET of the whole record (not its trail) asks for. */
export const RECORD_FIELDS = Object.freeze(Object.keys(RECORD_FIELD_KINDS)) as readonly (keyof StoredFields)[];

/** The hash fields of the audit trail. */
export const TRAIL_FIELD = 'trail';
export const TRAIL_COUNT_FIELD = 'trailN';

/** One trail event as stored (a line of `trail`). */
export const trailLine = (e: AuditEvent): string => JSON.stringify(e);

function encodeValue(field: string, value: unknown): string {
  const kind = (RECORD_FIELD_KINDS as Record<string, FieldKind | undefined>)[field];
  if (kind === undefined) throw new Error(`not a record field: ${field}`);
  if (kind === 'json') return JSON.stringify(value);
  if (kind === 'number') {
    if (typeof value !== 'number' || !Number.isFinite(value)) throw new Error(`record field ${field} must be a number, got ${JSON.stringify(value)}`);
    return String(value);
  }
  if (typeof value !== 'string') throw new Error(`record field ${field} must be a string, got ${JSON.stringify(value)}`);
  return value;
}

/**
 * Record fields as hash fields: `set` flat (field, value, ...) for HSET,
 * `del` the fields to remove (given as undefined or null).
 */
export function encodeFields(fields: Readonly<Record<string, unknown>>): { set: string[]; del: string[] } {
  const set: string[] = [];
  const del: string[] = [];
  for (const [field, value] of Object.entries(fields)) {
    if (value === undefined || value === null) del.push(field);
    else set.push(field, encodeValue(field, value));
  }
  return { set, del };
}

/** A new record's hash: its fields and its first trail event. */
export function encodeNewRecord(stored: StoredRecord): string[] {
  const { trail, ...fields } = stored;
  return [...encodeFields(fields).set, TRAIL_FIELD, trail.map(trailLine).join('\n'), TRAIL_COUNT_FIELD, String(trail.length)];
}

function decodeValue(field: string, raw: string): unknown {
  switch ((RECORD_FIELD_KINDS as Record<string, FieldKind | undefined>)[field]) {
    case 'number':
      return Number(raw);
    case 'json':
      return JSON.parse(raw) as unknown;
    case 'string':
      return raw;
    default:
      return undefined;
  }
}

/** The hash as Redis answers it: HGETALL's object, or a flat (field, value, ...) list from a script. */
export type RawRecord = Readonly<Record<string, string>> | readonly string[];

function asObject(raw: RawRecord): Readonly<Record<string, string>> {
  if (!Array.isArray(raw)) return raw as Readonly<Record<string, string>>;
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < raw.length; i += 2) out[raw[i]!] = raw[i + 1]!;
  return out;
}

/** Build a record from its stored hash; undefined for a missing key. */
export function parseRecord(keyId: string, raw: RawRecord | null | undefined): PostRecord | undefined {
  if (!raw) return undefined;
  const h = asObject(raw);
  if (!h.state) return undefined;
  const r: Record<string, unknown> = { keyId };
  for (const field of RECORD_FIELDS) {
    const v = h[field];
    if (v !== undefined) r[field] = decodeValue(field, v);
  }
  return r as unknown as PostRecord;
}

/** A record from a script's HMGET of RECORD_FIELDS (nil where a field is absent). */
export function recordFromValues(keyId: string, values: readonly (string | null)[]): PostRecord | undefined {
  const r: Record<string, unknown> = { keyId };
  RECORD_FIELDS.forEach((field, i) => {
    const v = values[i];
    if (v !== null && v !== undefined) r[field] = decodeValue(field, v);
  });
  return r.state ? (r as unknown as PostRecord) : undefined;
}

/** A stored trail (the `trail` field) as events, oldest first. */
export function parseTrail(raw: string | null | undefined): AuditEvent[] {
  if (!raw) return [];
  return raw.split('\n').map((line) => JSON.parse(line) as AuditEvent);
}
