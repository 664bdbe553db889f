import type { PostPayload } from '../domain/request.js';

/** States as stored and printed. */
export type PostState = 'queued' | 'claimed' | 'ambiguous' | 'sent' | 'failed';
export const POST_STATES: readonly PostState[] = ['queued', 'claimed', 'ambiguous', 'sent', 'failed'];

/** Why a key failed, as printed; `detail` says more. */
export type FailReason = 'rejected' | 'expired' | 'invalid-account' | 'account-paused' | 'app-paused' | 'unresolved';

/** One key's ledger record. */
export interface PostRecord extends PostPayload {
  readonly keyId: string;
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

/** The stored form: the record as JSON, its audit trail inside it. */
export interface StoredRecord extends Omit<PostRecord, 'keyId'> {
  readonly trail: AuditEvent[];
}

/** Build a record from its stored JSON; undefined for a missing key. */
export function parseRecord(keyId: string, raw: string | null | undefined): PostRecord | undefined {
  const stored = parseStored(raw);
  if (!stored) return undefined;
  const { trail: _trail, ...rest } = stored;
  return { keyId, ...rest };
}

export function parseStored(raw: string | null | undefined): StoredRecord | undefined {
  if (!raw) return undefined;
  const stored = JSON.parse(raw) as StoredRecord;
  return stored.state ? stored : undefined;
}
