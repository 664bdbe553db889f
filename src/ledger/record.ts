import type { PostKind } from '../domain/request.js';

/** States as stored and printed. */
export type PostState = 'queued' | 'claimed' | 'ambiguous' | 'sent' | 'failed';
export const POST_STATES: readonly PostState[] = ['queued', 'claimed', 'ambiguous', 'sent', 'failed'];
export const TERMINAL_STATES: ReadonlySet<PostState> = new Set(['sent', 'failed']);

/** Why a key failed, as printed; `detail` says more. */
export type FailReason = 'rejected' | 'expired' | 'invalid-account' | 'account-paused' | 'unresolved';

/** One key's ledger record. */
export interface PostRecord {
  readonly keyId: string;
  readonly slotId: string;
  readonly postId: string;
  readonly accountId: string;
  readonly kind: PostKind;
  readonly text: string;
  readonly inReplyToTweetId?: string;
  readonly recipientId?: string;
  readonly scheduledAt: number;
  readonly deadline: number;
  /** Set when a not-sent attempt was released: no new attempt before it. */
  readonly notBefore?: number;
  readonly fingerprint: string;
  readonly state: PostState;
  /** Number of the latest attempt (0 before the first); the fencing token. */
  readonly attempt: number;
  /** BullMQ job that currently carries the key. */
  readonly jobId: string;
  readonly leaseUntil?: number;
  readonly attemptStartedAt?: number;
  readonly attemptEndedAt?: number;
  /** Id of what X created: the post id, or the DM event id for a dm. */
  readonly tweetId?: string;
  readonly reason?: FailReason;
  readonly detail?: string;
  readonly createdAt: number;
  readonly updatedAt: number;
}

export interface AuditEvent {
  readonly at: number;
  readonly event: string;
  readonly attempt?: number;
  readonly [field: string]: unknown;
}

const num = (v: string | undefined) => (v === undefined || v === '' ? undefined : Number(v));
const str = (v: string | undefined) => (v === undefined || v === '' ? undefined : v);

/** Build a record from a Redis hash (as an object or as flat field/value pairs). */
export function parseRecord(keyId: string, raw: Record<string, string> | string[]): PostRecord | undefined {
  const h: Record<string, string> = Array.isArray(raw) ? pairsToObject(raw) : raw;
  if (!h.state) return undefined;
  const record: PostRecord = {
    keyId,
    slotId: h.slotId ?? '',
    postId: h.postId ?? '',
    accountId: h.accountId ?? '',
    kind: (h.kind ?? 'post') as PostKind,
    text: h.text ?? '',
    scheduledAt: Number(h.scheduledAt),
    deadline: Number(h.deadline),
    fingerprint: h.fp ?? '',
    state: h.state as PostState,
    attempt: Number(h.attempt ?? 0),
    jobId: h.jobId ?? '',
    createdAt: Number(h.createdAt),
    updatedAt: Number(h.updatedAt),
  };
  const optional = {
    inReplyToTweetId: str(h.inReplyToTweetId),
    recipientId: str(h.recipientId),
    notBefore: num(h.notBefore),
    leaseUntil: num(h.leaseUntil),
    attemptStartedAt: num(h.attemptStartedAt),
    attemptEndedAt: num(h.attemptEndedAt),
    tweetId: str(h.tweetId),
    reason: str(h.reason) as FailReason | undefined,
    detail: str(h.detail),
  };
  for (const [k, v] of Object.entries(optional)) if (v !== undefined) Object.assign(record, { [k]: v });
  return record;
}

export function pairsToObject(pairs: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < pairs.length; i += 2) out[pairs[i]!] = pairs[i + 1]!;
  return out;
}
