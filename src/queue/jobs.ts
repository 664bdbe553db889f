import type { JobsOptions } from 'bullmq';
import type { PostPayload } from '../domain/request.js';
import type { PostRecord } from '../domain/state.js';

/**
 * What a publish job carries: the key and enough to read it on the board.
 * Never credentials: the worker resolves the account id itself. The ledger
 * record, not the job, is the source of truth for the payload.
 */
export interface PublishJobData extends Pick<PostPayload, 'slotId' | 'postId' | 'accountId' | 'kind' | 'text'> {
  readonly keyId: string;
  readonly scheduledAt: string;
  /** How many media the key carries (all parts): its uploads happen before the claim. */
  readonly media?: number;
}

export type PublishJobResult =
  | { readonly outcome: 'sent'; readonly tweetId: string; readonly attempt: number }
  | { readonly outcome: 'ambiguous'; readonly attempt: number; readonly cause: string }
  | { readonly outcome: 'skipped'; readonly state: string; readonly attempt: number };

/** BullMQ's dedupe lasts only while the job exists; the ledger outlives it. */
export const PUBLISH_JOB_OPTIONS: JobsOptions = Object.freeze({
  removeOnComplete: { age: 24 * 3600, count: 10_000 },
  removeOnFail: { age: 7 * 24 * 3600, count: 50_000 },
  // Retries here cover infrastructure errors (Redis hiccups); X outcomes are
  // handled by the processor through the ledger, never by blind retries.
  attempts: 5,
  backoff: { type: 'exponential', delay: 1_000 },
});

/** A job's data from its key's record (the record, not the job, is what the worker publishes). */
export function jobDataOf(
  keyId: string,
  r: Pick<PostRecord, 'slotId' | 'postId' | 'accountId' | 'kind' | 'text' | 'scheduledAt' | 'media' | 'parts'>,
): PublishJobData {
  const media = (r.media?.length ?? 0) + (r.parts ?? []).reduce((n, p) => n + (p.media?.length ?? 0), 0);
  return {
    keyId,
    slotId: r.slotId,
    postId: r.postId,
    accountId: r.accountId,
    kind: r.kind,
    text: r.text,
    scheduledAt: new Date(r.scheduledAt).toISOString(),
    ...(media > 0 && { media }),
  };
}
