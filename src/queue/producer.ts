import type { Queue } from 'bullmq';
import type { RedisOptions } from 'ioredis';
import { jobIdFor, keyId as keyIdOf, type PostKey } from '../domain/key.js';
import { type FieldError, formatFieldErrors, type PublishRequest, validateRequest } from '../domain/request.js';
import type { Ledger, OutcomeEvent, RedisClient } from '../ledger/ledger.js';
import { answerForKnown, dueAt, type PostState } from '../domain/state.js';
import { jobDataOf, type PublishJobData } from './jobs.js';
import { mediaPathsOf, probeAll } from '../media/probe.js';
import { createLifecycle, type Lifecycle, type LifecycleResult } from './lifecycle.js';

/** Keys per ledger-then-queue step of enqueueMany; the steps of consecutive batches overlap. */
const ENQUEUE_BATCH = 100;

/** A request that passed validation, with its place in the call and its key. */
interface ValidRequest {
  readonly index: number;
  readonly request: PublishRequest;
  readonly keyId: string;
  readonly jobId: string;
}

export type EnqueueResult =
  | { readonly status: 'queued'; readonly key: PostKey; readonly jobId: string }
  /** Same key and payload, already queued or in flight. */
  | { readonly status: 'duplicate'; readonly key: PostKey; readonly state: PostState }
  | { readonly status: 'sent'; readonly key: PostKey; readonly tweetId: string }
  | { readonly status: 'failed'; readonly key: PostKey; readonly reason: string; readonly detail?: string }
  /** Cancelled: it stays cancelled (a re-sync of a calendar does not bring it back). */
  | { readonly status: 'cancelled'; readonly key: PostKey }
  /** `fingerprint`: the stored payload's, which this request's does not match. */
  | { readonly status: 'conflict'; readonly key: PostKey; readonly error: PayloadConflictError; readonly fingerprint: string; readonly state: PostState }
  | { readonly status: 'invalid'; readonly key?: Partial<PostKey>; readonly errors: readonly FieldError[] };

/** Same key, different payload: the producer must pick a new key or fix the payload. */
export class PayloadConflictError extends Error {
  readonly code = 'PAYLOAD_CONFLICT';
  override name = 'PayloadConflictError';
  constructor(
    readonly key: PostKey,
    readonly state: string,
  ) {
    super(`key (${key.slotId}, ${key.postId}) was already enqueued with a different payload (state ${state})`);
  }
}

export class InvalidRequestError extends Error {
  readonly code = 'INVALID_REQUEST';
  override name = 'InvalidRequestError';
  constructor(readonly errors: readonly FieldError[]) {
    super(`invalid publish request: ${formatFieldErrors(errors)}`);
  }
}

export interface ProducerOptions {
  /** An ioredis instance (shared, not closed by the producer) or options / a URL. */
  readonly connection: RedisClient | RedisOptions | string;
  readonly prefix?: string;
  readonly deadlineWindowMs?: number;
  readonly retentionMs?: number;
  /** Reject unknown account ids at enqueue time. */
  readonly knownAccount?: (accountId: string) => boolean;
  /** An account's limits (the credential store's); `textLength` is the longest post it may publish (default 280). */
  readonly accountLimits?: (accountId: string) => Promise<{ readonly textLength?: number } | undefined>;
  readonly clock?: () => number;
}

export interface Producer extends Pick<Lifecycle, 'cancel' | 'cancelAccount'> {
  /** Enqueue one request; throws InvalidRequestError or PayloadConflictError. */
  enqueue(request: unknown): Promise<Exclude<EnqueueResult, { status: 'invalid' | 'conflict' }>>;
  /** Enqueue many in two round trips; one result per input, in order; never throws for bad items. `by` (who asked) goes into each new key's audit trail. */
  enqueueMany(requests: readonly unknown[], opts?: { by?: string }): Promise<EnqueueResult[]>;
  /** Replace a queued key's text or reply target; throws InvalidRequestError for a bad edit (see domain/lifecycle.ts). */
  edit(key: PostKey, changes: Parameters<Lifecycle['edit']>[1], opts?: { by?: string }): Promise<Exclude<LifecycleResult, { status: 'invalid' }>>;
  /** Move a queued key in time; throws InvalidRequestError for bad times. */
  reschedule(key: PostKey, times: Parameters<Lifecycle['reschedule']>[1], opts?: { by?: string }): Promise<Exclude<LifecycleResult, { status: 'invalid' }>>;
  /**
   * Outcome events, oldest first, from after `from` (a stream id; default
   * '0', the oldest kept; '$' for only new ones), waiting for new ones until
   * the loop is left or `signal` aborts. Each event's `id` is the cursor to
   * resume from. Reads on a connection of its own (a blocking read would hold
   * up enqueues).
   */
  events(opts?: { from?: string; blockMs?: number; signal?: AbortSignal }): AsyncIterable<OutcomeEvent>;
  /** Cancel, edit and reschedule from raw JSON (CLI lines, HTTP bodies): bad input is an 'invalid' result, never a throw. */
  readonly lifecycle: Lifecycle;
  readonly ledger: Ledger;
  readonly queue: Queue<PublishJobData>;
  close(): Promise<void>;
}

/** The parts a producer works over; `createProducer` (src/app.ts) builds them. */
export interface ProducerParts {
  readonly ledger: Ledger;
  readonly queue: Queue<PublishJobData>;
  /** A ledger on a connection of its own, for blocking reads of the events stream. */
  eventsReader(): { readonly ledger: Ledger; close(): void };
  readonly options: Pick<ProducerOptions, 'deadlineWindowMs' | 'knownAccount' | 'accountLimits' | 'clock'>;
  close(): Promise<void>;
}

export function producerOver({ ledger, queue, options: opts, close, eventsReader }: ProducerParts): Producer {
  const clock = opts.clock ?? Date.now;
  const deadlineWindowMs = opts.deadlineWindowMs ?? 15 * 60_000;

  /** The text length of each account the batch names, looked up once per account. */
  async function textLengthsOf(raw: readonly unknown[]): Promise<Map<string, number>> {
    const lengths = new Map<string, number>();
    const limitsOf = opts.accountLimits;
    if (!limitsOf) return lengths;
    const ids = new Set(
      raw.flatMap((item) => {
        const id = (typeof item === 'object' && item !== null ? item : {}) as { accountId?: unknown };
        return typeof id.accountId === 'string' ? [id.accountId] : [];
      }),
    );
    await Promise.all(
      [...ids].map(async (id) => {
        const textLength = (await limitsOf(id))?.textLength;
        if (textLength !== undefined) lengths.set(id, textLength);
      }),
    );
    return lengths;
  }

  /** One batch: its keys into the ledger, then the jobs of those that are (still) queued. */
  async function registerAndAdd(valid: readonly ValidRequest[], now: number, by: string | undefined, results: (EnqueueResult | undefined)[]): Promise<void> {
    const registered = await ledger.registerMany(valid, now, by);
    const jobs: { name: string; data: PublishJobData; opts: { jobId: string; delay: number } }[] = [];
    registered.forEach((reg, i) => {
      const { index, request, keyId } = valid[i]!;
      const key = { slotId: request.slotId, postId: request.postId };
      if (reg.verdict === 'conflict') {
        results[index] = {
          status: 'conflict',
          key,
          error: new PayloadConflictError(key, reg.record.state),
          fingerprint: reg.record.fingerprint,
          state: reg.record.state,
        };
        return;
      }
      const record = reg.verdict === 'new' ? undefined : reg.record;
      if (record === undefined || record.state === 'queued') {
        // Re-adding a queued key's current job is a no-op while the job
        // exists, and brings it back if it was lost between ledger and queue.
        const jobId = record?.jobId ?? valid[i]!.jobId;
        const due = record ? dueAt(record) : request.scheduledAt;
        jobs.push({ name: request.kind, data: jobDataOf(keyId, record ?? request), opts: { jobId, delay: Math.max(0, due - now) } });
        results[index] = record ? { status: 'duplicate', key, state: record.state } : { status: 'queued', key, jobId };
        return;
      }
      results[index] = { ...answerForKnown(record), key };
    });
    if (jobs.length > 0) await queue.addBulk(jobs);
  }

  async function enqueueMany(raw: readonly unknown[], o: { by?: string } = {}): Promise<EnqueueResult[]> {
    const now = clock();
    const results: (EnqueueResult | undefined)[] = new Array(raw.length);
    const textLengths = await textLengthsOf(raw);
    // Media files are read here, at the edge: existence, size, type by content, content hash.
    const probes = await probeAll(mediaPathsOf(raw));
    // Batches of ENQUEUE_BATCH: one batch's ledger writes go out (and Redis
    // runs them) while the next one is validated. A key is registered before its
    // job is added (its own batch's two steps are in order), and Redis runs
    // one connection's commands in the order sent, so the ledger still comes
    // first and two requests for one key in one call still meet in order.
    const batches: Promise<void>[] = [];
    for (let start = 0; start < raw.length; start += ENQUEUE_BATCH) {
      const valid: ValidRequest[] = [];
      for (let index = start; index < Math.min(raw.length, start + ENQUEUE_BATCH); index++) {
        const item = raw[index];
        const v = validateRequest(item, {
          now,
          deadlineWindowMs,
          knownAccount: opts.knownAccount,
          textLengthOf: (id) => textLengths.get(id),
          probeMedia: (path) => probes.get(path),
        });
        if (!v.ok) {
          const r = (typeof item === 'object' && item !== null ? item : {}) as Partial<PostKey>;
          const key = typeof r.slotId === 'string' && typeof r.postId === 'string' ? { slotId: r.slotId, postId: r.postId } : undefined;
          results[index] = { status: 'invalid', ...(key && { key }), errors: v.errors };
          continue;
        }
        const k = { slotId: v.request.slotId, postId: v.request.postId };
        valid.push({ index, request: v.request, keyId: keyIdOf(k), jobId: jobIdFor(k) });
      }
      if (valid.length > 0) batches.push(registerAndAdd(valid, now, o.by, results));
    }
    // Every batch runs to its end before the call answers; the first failure is the answer.
    const failed = (await Promise.allSettled(batches)).find((b): b is PromiseRejectedResult => b.status === 'rejected');
    if (failed) throw failed.reason;
    return results as EnqueueResult[];
  }

  const lifecycle = createLifecycle({ ledger, queue, clock });
  const strict = async (p: Promise<LifecycleResult>) => {
    const r = await p;
    if (r.status === 'invalid') throw new InvalidRequestError(r.errors);
    return r;
  };

  async function* events(o: { from?: string; blockMs?: number; signal?: AbortSignal } = {}): AsyncGenerator<OutcomeEvent> {
    const reader = eventsReader();
    const stop = () => reader.close();
    o.signal?.addEventListener('abort', stop, { once: true });
    let cursor = o.from ?? '0';
    try {
      while (!o.signal?.aborted) {
        const batch = await reader.ledger.readEvents(cursor, 100, o.blockMs ?? 5_000).catch((err: unknown) => {
          if (o.signal?.aborted) return [];
          throw err;
        });
        for (const e of batch) {
          cursor = e.id;
          yield e;
        }
      }
    } finally {
      o.signal?.removeEventListener('abort', stop);
      reader.close();
    }
  }

  return {
    ledger,
    queue,
    lifecycle,
    events,
    cancel: lifecycle.cancel,
    cancelAccount: lifecycle.cancelAccount,
    edit: (key, changes, o) => strict(lifecycle.edit(key, changes, o)),
    reschedule: (key, times, o) => strict(lifecycle.reschedule(key, times, o)),
    enqueueMany,
    async enqueue(request) {
      const [result] = await enqueueMany([request]);
      if (result!.status === 'invalid') throw new InvalidRequestError(result!.errors);
      if (result!.status === 'conflict') throw result!.error;
      return result!;
    },
    close,
  };
}
