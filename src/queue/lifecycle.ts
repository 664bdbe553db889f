import type { Queue } from 'bullmq';
import { keyId as keyIdOf, movedJobId, type PostKey } from '../domain/key.js';
import { type EditChanges, parseCancel, parseEdit, parseReschedule, type Plan, planEdit, planReschedule } from '../domain/lifecycle.js';
import type { FieldError } from '../domain/request.js';
import { isFinal, isInFlight, type PostState } from '../domain/state.js';
import type { LifecycleReply, Ledger } from '../ledger/ledger.js';
import { jobDataOf, PUBLISH_JOB_OPTIONS, type PublishJobData } from './jobs.js';

/**
 * Cancel, edit and reschedule against the ledger: the decision is the
 * script's, atomic with claim and settle (see domain/lifecycle.ts for the
 * table). The BullMQ job follows afterwards, best effort: the claim, not
 * the job, is what keeps a cancelled key from X and a rescheduled one from
 * going out early.
 */
export type LifecycleResult =
  | { readonly status: 'cancelled'; readonly key: PostKey }
  | { readonly status: 'cancelling'; readonly key: PostKey; readonly attempt: number; readonly since: string }
  | { readonly status: 'edited'; readonly key: PostKey; readonly fingerprint: string }
  | { readonly status: 'rescheduled'; readonly key: PostKey; readonly scheduledAt: string; readonly deadline: string }
  | { readonly status: 'in-flight'; readonly key: PostKey; readonly state: PostState; readonly attempt: number; readonly since: string }
  | { readonly status: 'already-sent'; readonly key: PostKey; readonly tweetId: string }
  | { readonly status: 'final'; readonly key: PostKey; readonly state: PostState; readonly reason?: string }
  | { readonly status: 'not-found'; readonly key: PostKey }
  | { readonly status: 'invalid'; readonly key?: PostKey; readonly errors: readonly FieldError[] };

export interface BulkCancelResult {
  readonly accountId: string;
  readonly cancelled: number;
  /** In flight when asked: they end sent (it had gone out) or cancelled. */
  readonly cancelling: number;
  /** Keys of the account in the range that were already final. */
  readonly final: number;
}

export interface Lifecycle {
  cancel(key: PostKey, opts?: { reason?: string; by?: string }): Promise<LifecycleResult>;
  /** `by`: who asked (an API token's name), kept in the audit trail. */
  edit(key: PostKey, changes: EditChanges, opts?: { by?: string }): Promise<LifecycleResult>;
  reschedule(key: PostKey, times: { scheduledAt: string | Date; deadline?: string | Date }, opts?: { by?: string }): Promise<LifecycleResult>;
  /** Every not-yet-final key of an account (scheduled in [from, to) when given). */
  cancelAccount(accountId: string, opts?: { from?: Date | string; to?: Date | string; reason?: string; by?: string }): Promise<BulkCancelResult>;
  /** The same from raw JSON (a CLI line, an HTTP body): never throws for bad input, answers 'invalid'. */
  cancelRaw(raw: unknown, by?: string): Promise<LifecycleResult>;
  editRaw(raw: unknown, by?: string): Promise<LifecycleResult>;
  rescheduleRaw(raw: unknown, by?: string): Promise<LifecycleResult>;
}

export interface LifecycleDeps {
  readonly ledger: Ledger;
  readonly queue: Queue<PublishJobData>;
  readonly clock: () => number;
}

/** How often an edit is planned again when another edit of the same key lands in between. */
const MAX_REPLANS = 5;
const iso = (ms: number) => new Date(ms).toISOString();

function refused(key: PostKey, reply: LifecycleReply): LifecycleResult {
  switch (reply.verdict) {
    case 'not-found':
      return { status: 'not-found', key };
    case 'in-flight':
    case 'cancelling':
      return {
        status: reply.verdict === 'cancelling' ? 'cancelling' : 'in-flight',
        key,
        state: reply.state,
        attempt: reply.attempt,
        since: iso(reply.attemptStartedAt),
      };
    case 'already-sent':
      return { status: 'already-sent', key, tweetId: reply.tweetId };
    case 'final':
      return { status: 'final', key, state: reply.state, ...(reply.reason && { reason: reply.reason }) };
    default:
      throw new Error(`unexpected lifecycle verdict ${reply.verdict}`);
  }
}

export function createLifecycle({ ledger, queue, clock }: LifecycleDeps): Lifecycle {
  async function cancelKey(key: PostKey, opts: { reason?: string; by?: string } = {}): Promise<LifecycleResult> {
    const reply = await ledger.cancel(keyIdOf(key), clock(), opts);
    if (reply.verdict !== 'cancelled') {
      if (reply.verdict === 'cancelling') return { status: 'cancelling', key, attempt: reply.attempt, since: iso(reply.attemptStartedAt) };
      return refused(key, reply);
    }
    // The job would only find the key cancelled; remove it so it does not wait for nothing.
    await queue.remove(reply.jobId).catch(() => 0);
    return { status: 'cancelled', key };
  }

  /** Plan against the current record, apply while it is unchanged; plan again if an edit came first. */
  async function change(
    key: PostKey,
    plan: (r: NonNullable<Awaited<ReturnType<Ledger['get']>>>, now: number) => Promise<LifecycleResult | ChangeStep>,
  ): Promise<LifecycleResult> {
    const id = keyIdOf(key);
    for (let round = 0; round < MAX_REPLANS; round++) {
      const record = await ledger.get(id);
      if (!record) return { status: 'not-found', key };
      const now = clock();
      const step = await plan(record, now);
      if ('status' in step) return step;
      const reply = await ledger.change(id, now, { expectedFingerprint: record.fingerprint, ...step.apply });
      if (reply.verdict === 'changed') continue;
      if (reply.verdict !== 'edited' && reply.verdict !== 'rescheduled') return refused(key, reply);
      await step.after(reply.jobId, now).catch(() => undefined);
      return step.result;
    }
    throw new Error(`key (${key.slotId}, ${key.postId}) kept changing under ${MAX_REPLANS} edits in a row; try again`);
  }

  async function edit(key: PostKey, changes: EditChanges, by?: string): Promise<LifecycleResult> {
    return change(key, async (r, now) => {
      const early = refusalOf(key, r.state, r);
      if (early) return early;
      const p = planEdit(r, changes, now);
      if (!p.ok) return { status: 'invalid', key, errors: p.errors };
      return {
        apply: { set: p.plan.set, verdict: 'edited', event: { event: 'edited', from: r.fingerprint, to: p.plan.fingerprint, ...(by && { by }) } },
        result: { status: 'edited', key, fingerprint: p.plan.fingerprint },
        // The job's copy of the text is only for the board: the worker publishes the record.
        after: async (jobId) => {
          const job = await queue.getJob(jobId);
          if (job) await job.updateData({ ...job.data, text: String(p.plan.set['text']) });
        },
      };
    });
  }

  async function reschedule(key: PostKey, times: { scheduledAt: string; deadline?: string }, by?: string): Promise<LifecycleResult> {
    return change(key, async (r, now) => {
      const early = refusalOf(key, r.state, r);
      if (early) return early;
      const p = planReschedule(r, times, now);
      if (!p.ok) return { status: 'invalid', key, errors: p.errors };
      const { scheduledAt, deadline, given, fingerprint, due } = p.plan;
      return {
        apply: {
          set: { scheduledAt, deadline, given, fingerprint },
          verdict: 'rescheduled',
          due,
          deadline,
          event: { event: 'rescheduled', from: { scheduledAt: r.scheduledAt, deadline: r.deadline }, to: { scheduledAt, deadline }, ...(by && { by }) },
        },
        result: { status: 'rescheduled', key, scheduledAt: iso(scheduledAt), deadline: iso(deadline) },
        after: (jobId, at) => moveJob(jobId, { ...r, scheduledAt }, due, at),
      };
    });
  }

  /**
   * The job follows its key: a delayed job gets the new delay; a waiting
   * one is left to the claim (early → delayed to the new time); a job that
   * is running or gone gets a second carrier (the claim lets one through).
   */
  async function moveJob(jobId: string, r: Parameters<typeof jobDataOf>[1] & { keyId: string }, due: number, now: number): Promise<void> {
    const job = await queue.getJob(jobId);
    const state = job ? await job.getState() : 'missing';
    if (state === 'waiting' || state === 'prioritized') return;
    if (state === 'delayed') {
      const moved = await job!.changeDelay(Math.max(0, due - now)).then(
        () => true,
        () => false,
      );
      if (moved) return;
    }
    await queue.add(r.kind, jobDataOf(r.keyId, r), { ...PUBLISH_JOB_OPTIONS, jobId: movedJobId(jobId, now), delay: Math.max(0, due - now) });
  }

  async function cancelAccount(
    accountId: string,
    opts: { from?: Date | string; to?: Date | string; reason?: string; by?: string } = {},
  ): Promise<BulkCancelResult> {
    const from = opts.from === undefined ? -Infinity : new Date(opts.from).getTime();
    const to = opts.to === undefined ? Infinity : new Date(opts.to).getTime();
    const counts = { cancelled: 0, cancelling: 0, final: 0 };
    let batch: Promise<LifecycleResult>[] = [];
    const drain = async () => {
      for (const r of await Promise.all(batch)) {
        if (r.status === 'cancelled') counts.cancelled++;
        else if (r.status === 'cancelling') counts.cancelling++;
        else if (r.status === 'final' || r.status === 'already-sent') counts.final++;
      }
      batch = [];
    };
    for await (const r of ledger.list({ accountId })) {
      if (r.scheduledAt < from || r.scheduledAt >= to) continue;
      if (isFinal(r.state)) {
        counts.final++;
        continue;
      }
      batch.push(cancelKey({ slotId: r.slotId, postId: r.postId }, { ...(opts.reason && { reason: opts.reason }), ...(opts.by && { by: opts.by }) }));
      if (batch.length >= 50) await drain();
    }
    await drain();
    return { accountId, ...counts };
  }

  const raw = <T>(parsed: Plan<T>, run: (key: PostKey, value: T) => Promise<LifecycleResult>): Promise<LifecycleResult> =>
    parsed.ok ? run(parsed.key, parsed.value) : Promise.resolve({ status: 'invalid', ...(parsed.key && { key: parsed.key }), errors: parsed.errors });

  return {
    cancel: cancelKey,
    edit: (key, changes, o = {}) => raw(parseEdit({ ...changes, ...key }), (k, c) => edit(k, c, o.by)),
    reschedule: (key, t, o = {}) =>
      raw(parseReschedule({ ...key, scheduledAt: isoOf(t.scheduledAt), ...(t.deadline !== undefined && { deadline: isoOf(t.deadline) }) }), (k, v) =>
        reschedule(k, v, o.by),
      ),
    cancelAccount,
    cancelRaw: (input, by) => raw(parseCancel(input), (key, v) => cancelKey(key, { ...(v.reason && { reason: v.reason }), ...(by && { by }) })),
    editRaw: (input, by) => raw(parseEdit(input), (k, c) => edit(k, c, by)),
    rescheduleRaw: (input, by) => raw(parseReschedule(input), (k, v) => reschedule(k, v, by)),
  };
}

interface ChangeStep {
  readonly apply: Omit<Parameters<Ledger['change']>[2], 'expectedFingerprint'>;
  readonly result: LifecycleResult;
  after(jobId: string, now: number): Promise<void>;
}

const isoOf = (t: string | Date) => (t instanceof Date ? t.toISOString() : t);

/** A key that is not queued is refused before planning (the script refuses it again if it moved meanwhile). */
function refusalOf(
  key: PostKey,
  state: PostState,
  r: { attempt: number; attemptStartedAt?: number; tweetId?: string; reason?: string },
): LifecycleResult | undefined {
  if (state === 'queued') return undefined;
  if (isInFlight(state)) return { status: 'in-flight', key, state, attempt: r.attempt, since: iso(r.attemptStartedAt ?? 0) };
  if (state === 'sent') return { status: 'already-sent', key, tweetId: r.tweetId ?? '' };
  return { status: 'final', key, state, ...(r.reason && { reason: r.reason }) };
}
