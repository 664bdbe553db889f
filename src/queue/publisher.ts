import { DelayedError, type Job, UnrecoverableError, Worker, type WorkerOptions } from 'bullmq';
import { decideAfterAttempt, DEFAULT_RETRY, type RetryPolicy } from '../domain/decide.js';
import { classifyXError, type XOutcome } from '../domain/outcome.js';
import { attemptStats } from '../domain/stats.js';
import type { Ledger, RedisClient } from '../ledger/ledger.js';
import { QUEUE_NAMES } from '../ledger/keys.js';
import type { PostRecord } from '../ledger/record.js';
import type { Logger } from '../log.js';
import type { XPort } from '../x/port.js';
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
  /** Called with every attempt's outcome and X latency (metrics hook). */
  readonly onAttempt?: (e: { accountId: string; kind: string; outcome: XOutcome['kind']; latencyMs: number }) => void;
}

async function callX(x: XPort, r: PostRecord): Promise<{ id: string }> {
  if (r.kind === 'dm') return x.sendDm(r.accountId, { recipientId: r.recipientId!, text: r.text });
  return x.createPost(r.accountId, { text: r.text, ...(r.inReplyToTweetId && { inReplyToTweetId: r.inReplyToTweetId }) });
}

/**
 * The publish processor: claim -> call X -> record. The ledger decides
 * whether X may be called at all; a job that finds the key claimed,
 * ambiguous or settled completes without calling X.
 */
export function createPublishProcessor(deps: PublishDeps) {
  const clock = deps.clock ?? Date.now;
  const retry = deps.retry ?? DEFAULT_RETRY;

  return async function processPublish(job: Job<PublishJobData>, token?: string): Promise<PublishJobResult> {
    const { keyId } = job.data;
    const jobId = job.id ?? '';
    const claim = await deps.ledger.claim(keyId, jobId, deps.leaseMs, clock());
    const log = deps.logger.child({ key: keyId, accountId: job.data.accountId, jobId });

    switch (claim.verdict) {
      case 'missing':
        log.error({ event: 'no-ledger-record' }, 'job has no ledger record; not publishing');
        throw new UnrecoverableError(`no ledger record for ${keyId} (never registered, or past retention)`);
      case 'expired':
        log.warn({ attempt: claim.record.attempt, outcome: 'expired' }, 'deadline passed before an attempt; failed');
        throw new UnrecoverableError('expired: the deadline passed before an attempt could start');
      case 'early': {
        const due = Math.max(claim.record.scheduledAt, claim.record.notBefore ?? 0);
        await job.moveToDelayed(due, token);
        throw new DelayedError();
      }
      case 'held':
      case 'sent':
      case 'failed':
        log.info({ attempt: claim.record.attempt, state: claim.record.state }, 'key not claimable; skipped without calling X');
        return { outcome: 'skipped', state: claim.record.state, attempt: claim.record.attempt };
      case 'claimed':
        break;
    }

    const record = claim.record;
    const attempt = record.attempt;
    const alog = log.child({ attempt });
    const started = clock();
    let outcome: XOutcome;
    try {
      const created = await callX(deps.x, record);
      outcome = { kind: 'sent', xId: created.id };
    } catch (err) {
      outcome = classifyXError(err, clock());
    }
    const now = clock();
    const latencyMs = now - started;
    deps.onAttempt?.({ accountId: record.accountId, kind: record.kind, outcome: outcome.kind, latencyMs });

    const transition = decideAfterAttempt(outcome, {
      now, attempt, deadline: record.deadline, settleWindowMs: deps.settleWindowMs, retry,
    });
    const answer = {
      event: 'x-answer', attempt, outcome: outcome.kind, latencyMs,
      ...(outcome.kind === 'sent' ? { xId: outcome.xId } : { cause: outcome.cause }),
    };
    const settled = await deps.ledger.settle(keyId, attempt, transition, now, [answer], attemptStats(outcome.kind, latencyMs, transition));
    if (settled.verdict !== 'ok') {
      // Our lease ran out and someone else (reconciliation) moved on: the
      // ledger keeps its decision, ours is only in the audit trail.
      alog.warn({ outcome: outcome.kind, latencyMs, state: settled.state, currentAttempt: settled.attempt }, 'attempt result refused as stale');
      return { outcome: 'skipped', state: settled.state, attempt };
    }

    switch (transition.to) {
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
        // Delay only this job: worker.rateLimit() would pause every account.
        alog.info({ outcome: 'not-sent', cause: transition.cause, retryAt: transition.retryAt, latencyMs }, 'not sent; retrying later');
        await job.moveToDelayed(transition.retryAt, token);
        throw new DelayedError();
    }
  };
}

export interface PublishWorkerOptions extends PublishDeps {
  readonly connection: RedisClient;
  readonly concurrency: number;
  readonly workerOptions?: Partial<WorkerOptions>;
}

export function createPublishWorker(opts: PublishWorkerOptions): Worker<PublishJobData, PublishJobResult> {
  return new Worker<PublishJobData, PublishJobResult>(QUEUE_NAMES.publish, createPublishProcessor(opts), {
    connection: opts.connection as never,
    prefix: opts.ledger.keys.bullPrefix,
    concurrency: opts.concurrency,
    ...opts.workerOptions,
  });
}
