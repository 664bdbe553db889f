import { DelayedError, type Job, UnrecoverableError } from 'bullmq';
import { type AccountLimits, budgetFor, type BudgetPolicy } from '../domain/budget.js';
import { decideAfterAttempt, DEFAULT_RETRY, type RetryPolicy } from '../domain/decide.js';
import { holdOf, type XOutcome } from '../domain/outcome.js';
import { classifyXError } from '../x/classify.js';
import { extrasOf } from '../domain/request.js';
import { threadTransition } from '../domain/thread.js';
import { attemptStats, undurableStats } from '../domain/stats.js';
import type { ClaimDurability } from '../ledger/durability.js';
import type { Ledger } from '../ledger/ledger.js';
import { dueAt, type PostRecord } from '../domain/state.js';
import { bind, type BoundLogger, type Logger } from '../log.js';
import type { CreatedPost, XPort } from '../x/port.js';
import { contentIdsOf, forgetMedia, mediaOf, prepareMedia, type PreparedMedia, UploadSlots } from './media.js';
import type { PublishJobData, PublishJobResult } from './jobs.js';

export interface PublishDeps {
  readonly ledger: Ledger;
  readonly x: XPort;
  readonly logger: Logger;
  readonly clock?: () => number;
  /** How long a claim stays valid; must outlast the slowest X call. */
  readonly leaseMs: number;
  readonly settleWindowMs: number;
  readonly retry?: RetryPolicy;
  /** Per-account and app budgets; none when absent. */
  readonly budget?: BudgetPolicy;
  /** Per-account overrides of the budget (from the credential store). */
  readonly accountLimits?: (accountId: string) => Promise<AccountLimits | undefined>;
  /**
   * Media uploads in flight per account in this process (default 1): a job
   * of an account already uploading steps aside for `mediaWaitMs` without a
   * claim, so one account's video never takes every worker slot.
   */
  readonly mediaUploadsPerAccount?: number;
  readonly mediaWaitMs?: number;
  /** Time limit of a URL medium's fetch (default 60 s). */
  readonly mediaFetchTimeoutMs?: number;
  /** Most bytes a URL medium's fetch takes (default X's largest, 512 MB). */
  readonly mediaFetchMaxBytes?: number;
  /** Confirms each claim is durable (replicas, fsync) before X is called; `local` when absent. */
  readonly durability?: ClaimDurability;
  /** Called with every attempt's outcome and X latency (metrics hook). */
  readonly onAttempt?: (e: { accountId: string; kind: string; outcome: XOutcome['kind']; latencyMs: number }) => void;
}

async function callX(x: XPort, r: PostRecord, mediaIds: readonly string[]): Promise<CreatedPost> {
  if (r.kind === 'dm') return x.sendDm(r.accountId, { recipientId: r.recipientId!, text: r.text, ...(mediaIds.length > 0 && { mediaIds }) });
  // A thread's extras are those of the part in progress.
  return x.createPost(r.accountId, {
    text: r.text,
    ...(r.inReplyToTweetId && { inReplyToTweetId: r.inReplyToTweetId }),
    ...extrasOf(r),
    ...(mediaIds.length > 0 && { mediaIds }),
  });
}

const sameIds = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x, i) => x === b[i]);

/**
 * The publish processor: claim -> call X -> record. The ledger decides
 * whether X may be called at all; a job that finds the key claimed,
 * ambiguous or settled completes without calling X.
 */
export function createPublishProcessor(deps: PublishDeps) {
  const clock = deps.clock ?? Date.now;
  const retry = deps.retry ?? DEFAULT_RETRY;
  const slots = new UploadSlots(deps.mediaUploadsPerAccount ?? 1);
  // BullMQ delays by the real clock; decisions use the injected one (a test clock may run ahead).
  const delayUntil = (at: number) => Date.now() + Math.max(0, at - clock());
  const mediaDeps = {
    ledger: deps.ledger,
    x: deps.x,
    clock,
    ...(deps.mediaFetchTimeoutMs && { urlFetchTimeoutMs: deps.mediaFetchTimeoutMs }),
    ...(deps.mediaFetchMaxBytes && { urlFetchMaxBytes: deps.mediaFetchMaxBytes }),
  };

  /** `holding`: this job already holds its account's upload slot (a thread going on to its next part). */
  async function processPublish(job: Job<PublishJobData>, token?: string, holding = false): Promise<PublishJobResult> {
    if (!job.data.media) return claimAndCall(job, token);
    // Uploads happen before the claim (they are not an effect), one account at a time per process.
    if (!holding && !slots.tryTake(job.data.accountId)) {
      await job.moveToDelayed(Date.now() + (deps.mediaWaitMs ?? 1_000), token);
      throw new DelayedError();
    }
    try {
      const r = await deps.ledger.get(job.data.keyId);
      const now = clock();
      const ready = r && r.state === 'queued' && dueAt(r) <= now && now < r.deadline && mediaOf(r).length > 0;
      return await claimAndCall(job, token, ready ? await prepareMedia(mediaDeps, r) : undefined);
    } finally {
      if (!holding) slots.release(job.data.accountId);
    }
  }
  return (job: Job<PublishJobData>, token?: string) => processPublish(job, token);

  async function claimAndCall(job: Job<PublishJobData>, token?: string, prepared?: PreparedMedia): Promise<PublishJobResult> {
    const { keyId, accountId } = job.data;
    const jobId = job.id ?? '';
    const now0 = clock();
    const budget = deps.budget ? budgetFor(job.data.kind, now0, deps.budget, await deps.accountLimits?.(accountId)) : undefined;
    // Which connection the claim goes out on: a confirmation from another one proves nothing (durability.ts).
    const mark = deps.durability?.mark() ?? 0;
    const claim = await deps.ledger.claim({ keyId, jobId, leaseMs: deps.leaseMs, now: now0, accountId, ...(budget && { budget }) });
    const log = bind(deps.logger, { key: keyId, accountId, jobId });
    // Uploads made for a claim that did not go through are still told in the trail (their ids may be reused later).
    if (claim.verdict !== 'claimed' && prepared && prepared.events.length > 0) await deps.ledger.note(keyId, prepared.events, clock());

    switch (claim.verdict) {
      case 'missing':
        log.error({ event: 'no-ledger-record' }, 'job has no ledger record; not publishing');
        throw new UnrecoverableError(`no ledger record for ${keyId} (never registered, or past retention)`);
      case 'expired':
        log.warn({ attempt: claim.record.attempt, outcome: 'expired' }, 'deadline passed before an attempt; failed');
        throw new UnrecoverableError('expired: the deadline passed before an attempt could start');
      case 'paused':
        log.warn({ outcome: 'failed', reason: 'account-paused', detail: claim.record.detail }, 'account paused; failed without calling X');
        throw new UnrecoverableError(`account-paused: ${claim.record.detail ?? ''}`);
      case 'throttled':
        // Out of budget or blocked by a 429: step aside without calling X and
        // without holding a worker slot, so other accounts keep going.
        log.debug({ retryAt: claim.retryAt }, 'account over budget; delayed');
        await job.moveToDelayed(delayUntil(claim.retryAt), token);
        throw new DelayedError();
      case 'early': {
        const due = dueAt(claim.record);
        await job.moveToDelayed(delayUntil(due), token);
        throw new DelayedError();
      }
      case 'held':
      case 'sent':
      case 'failed':
      case 'cancelled':
        log.info({ attempt: claim.record.attempt, state: claim.record.state }, 'key not claimable; skipped without calling X');
        return { outcome: 'skipped', state: claim.record.state, attempt: claim.record.attempt };
      case 'claimed':
        break;
    }

    const record = claim.record;
    const attempt = record.attempt;
    const alog = log.with({ attempt });
    const started = clock();
    let outcome: XOutcome;
    // X is called only once the claim is where durability lives; otherwise nothing went out: give it back.
    const durable = deps.durability ? await deps.durability.confirm(mark) : undefined;
    const undurable = durable && !durable.ok ? durable.why : undefined;
    // Media prepared before the claim hold only for the payload they were made for (an edit may have come in).
    const media =
      undurable !== undefined || mediaOf(record).length === 0
        ? undefined
        : prepared && (!prepared.ok || sameIds(prepared.contentIds, contentIdsOf(record)))
          ? prepared
          : await prepareMedia(mediaDeps, record);
    const mediaEvents = [...(prepared && media !== prepared ? prepared.events : []), ...(media?.events ?? [])].map((e) => ({ ...e, attempt }));
    if (undurable !== undefined) {
      alog.warn({ event: 'claim-not-durable', why: undurable }, 'claim not durable; given back without calling X');
      outcome = { kind: 'not-sent', cause: `claim-not-durable: ${undurable}` };
    } else if (media && !media.ok) {
      outcome = media.outcome;
    } else {
      try {
        const created = await callX(deps.x, record, media?.mediaIds ?? []);
        const hold = holdOf(created.limits, clock(), false);
        outcome = { kind: 'sent', xId: created.id, ...(hold && { hold }) };
      } catch (err) {
        outcome = classifyXError(err, clock());
      }
      if (outcome.kind === 'not-sent' && outcome.cause.startsWith('media-expired')) await forgetMedia(deps.ledger, record, clock());
    }
    const now = clock();
    const latencyMs = now - started;
    if (undurable === undefined) deps.onAttempt?.({ accountId: record.accountId, kind: record.kind, outcome: outcome.kind, latencyMs });
    await guardAccount(deps, record.accountId, outcome, now, alog);

    const transition = threadTransition(
      record,
      decideAfterAttempt(outcome, {
        now,
        attempt,
        deadline: record.deadline,
        settleWindowMs: deps.settleWindowMs,
        retry,
      }),
      now,
    );
    const answer = {
      event: undurable === undefined ? 'x-answer' : 'claim-not-durable',
      attempt,
      outcome: outcome.kind,
      latencyMs,
      ...(outcome.kind === 'sent' ? { xId: outcome.xId } : { cause: outcome.cause }),
    };
    const settled = await deps.ledger.settle(
      keyId,
      attempt,
      transition,
      now,
      [...mediaEvents, answer],
      undurable !== undefined ? undurableStats(transition) : attemptStats(outcome.kind, latencyMs, transition),
    );
    if (settled.verdict !== 'ok') {
      if (mediaEvents.length > 0) await deps.ledger.note(keyId, mediaEvents, now);
      // Our lease ran out and someone else (reconciliation) moved on: the
      // ledger keeps its decision, ours is only in the audit trail.
      alog.warn({ outcome: outcome.kind, latencyMs, state: settled.state, currentAttempt: settled.attempt }, 'attempt result refused as stale');
      return { outcome: 'skipped', state: settled.state, attempt };
    }

    if (settled.state !== transition.to) {
      // A cancel came in while this attempt was in flight: the key ends
      // cancelled (nothing went out) or stays cancelling (in doubt).
      alog.info({ outcome: outcome.kind, latencyMs, state: settled.state }, 'key was cancelled during the attempt; no new attempt');
      return settled.state === 'cancelling'
        ? { outcome: 'ambiguous', attempt, cause: outcome.kind === 'sent' ? '' : outcome.cause }
        : { outcome: 'skipped', state: settled.state, attempt };
    }
    switch (transition.to) {
      case 'cancelled':
        return { outcome: 'skipped', state: 'cancelled', attempt };
      case 'sent':
        alog.info({ outcome: 'sent', tweetId: transition.tweetId, latencyMs }, 'published');
        return { outcome: 'sent', tweetId: transition.tweetId, attempt };
      case 'ambiguous':
        alog.warn({ outcome: 'ambiguous', cause: transition.cause, latencyMs }, 'outcome unknown; left for reconciliation');
        return { outcome: 'ambiguous', attempt, cause: transition.cause };
      case 'failed':
        alog.warn({ outcome: 'failed', reason: transition.reason, detail: transition.detail, latencyMs }, 'failed');
        throw new UnrecoverableError(`${transition.reason}: ${transition.detail}`);
      case 'queued':
        if (transition.next) {
          // A thread's part is live: the next part goes out now, from this job.
          alog.info({ outcome: 'part-sent', tweetId: transition.next.sentId, part: transition.next.partIndex, latencyMs }, 'thread part published');
          return processPublish(job, token, true);
        }
        // Delay only this job: worker.rateLimit() would pause every account.
        alog.info({ outcome: 'not-sent', cause: transition.cause, retryAt: transition.retryAt, latencyMs }, 'not sent; retrying later');
        await job.moveToDelayed(delayUntil(transition.retryAt), token);
        throw new DelayedError();
    }
  }
}

/**
 * What an attempt says beyond its own key. A limit (a 429, or 0 left in a
 * window or a 24-hour cap) holds every publish of the account, or of every
 * account of the app, until that limit's own reset; refused credentials or
 * a suspended account pause the account; a refused app pauses the app. A
 * refusal of one post (a restricted reply, a deleted target, a refused DM)
 * touches nothing else.
 */
async function guardAccount(deps: PublishDeps, accountId: string, outcome: XOutcome, now: number, log: BoundLogger): Promise<void> {
  const hold = outcome.kind === 'sent' || outcome.kind === 'not-sent' ? outcome.hold : undefined;
  if (hold?.scope === 'account') {
    await deps.ledger.blockAccount(accountId, hold.until, now);
    if (outcome.kind === 'not-sent') log.warn({ until: hold.until, why: hold.why }, 'account rate-limited by X; its publishes wait for the reset');
  } else if (hold?.scope === 'app') {
    await deps.ledger.blockApp(hold.until, now);
    log.warn({ until: hold.until, why: hold.why }, 'app limit reached on X; every account waits for the reset');
  }
  if (outcome.kind !== 'rejected') return;
  if (outcome.scope === 'account') {
    await deps.ledger.pauseAccount(accountId, `X refused the account (${outcome.cause}); fix it, then: xactly accounts resume ${accountId}`);
    log.error({ cause: outcome.cause }, 'account paused: X refused the account');
  } else if (outcome.scope === 'app') {
    await deps.ledger.pauseApp(`X refused the app (${outcome.cause}); fix its access in X's developer portal, then: xactly accounts resume --app`);
    log.error({ cause: outcome.cause }, 'app paused: X refused the app; no account publishes until it is resumed');
  }
}
