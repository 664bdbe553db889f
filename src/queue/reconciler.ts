import { randomUUID } from 'node:crypto';
import type { Queue } from 'bullmq';
import { jobIdFor } from '../domain/key.js';
import { attribute, type Attribution, type SeenItem, type SentItem } from '../domain/match.js';
import { extrasOf } from '../domain/request.js';
import { classifyXError } from '../x/classify.js';
import { reconcileStats } from '../domain/stats.js';
import { attemptEnd, decideReconcile, dueAction, type Evidence, type ReconcileSettings } from '../domain/reconcile.js';
import type { Ledger } from '../ledger/ledger.js';
import { dueAt, type PostRecord } from '../domain/state.js';
import { threadTransition } from '../domain/thread.js';
import type { Logger } from '../log.js';
import type { XPort } from '../x/port.js';
import { jobDataOf, PUBLISH_JOB_OPTIONS, type PublishJobData } from './jobs.js';

export interface ReconcileDeps extends ReconcileSettings {
  readonly ledger: Ledger;
  readonly x: XPort;
  /** The publish queue: released keys and lost jobs go back onto it. */
  readonly queue: Queue<PublishJobData>;
  readonly logger: Logger;
  readonly clock?: () => number;
  /** Allowance for clock differences between us and X when windowing created_at. */
  readonly skewMs?: number;
  /** Keys looked at per pass at most (default 5,000). */
  readonly batch?: number;
  /** Pages per lookup at most (100 items each); more than that is not proof of absence. */
  readonly maxPages?: number;
  /** Grace after a queued key's due time before its missing job is re-created. */
  readonly lostJobGraceMs?: number;
  /** Accounts looked up at once (default 8). */
  readonly lookupConcurrency?: number;
  /**
   * Wall time a pass may spend on lookups (default 20 s). Past it no new
   * lookup or page starts; the keys not looked at stay due for the next
   * pass. Each page is bounded by the X call's own deadline.
   */
  readonly passBudgetMs?: number;
}

/** Run `fn` over `items`, at most `limit` at a time. */
async function forEachLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const runners = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]!);
  });
  await Promise.all(runners);
}

export interface ReconcileReport {
  /** False when another pass held the lock; nothing was done. */
  readonly ran: boolean;
  readonly examined: number;
  readonly outcomes: {
    sent: number;
    released: number;
    expired: number;
    unresolved: number;
    cancelled: number;
    deferred: number;
    requeued: number;
    stale: number;
  };
  /** Lookup requests made to X (pages), and for how many accounts. */
  readonly lookups: number;
  readonly accounts: number;
  /** Age of the oldest key in doubt seen in this pass (0 when none). */
  readonly oldestUnresolvedAgeMs: number;
  /** Keys in doubt left for the next pass because the pass ran out of its time budget. */
  readonly left: number;
  readonly durationMs: number;
}

const RECONCILE_LOCK_MS = 15_000;

const LIVE_JOB_STATES = new Set(['waiting', 'delayed', 'active', 'prioritized', 'waiting-children']);

interface Group {
  readonly accountId: string;
  /** Undefined for posts/replies (the timeline); the participant for DMs. */
  readonly recipientId?: string;
  readonly records: PostRecord[];
}

function groupsOf(records: readonly PostRecord[]): Group[] {
  const groups = new Map<string, Group>();
  for (const r of records) {
    const k = r.kind === 'dm' ? `${r.accountId}\u0000dm\u0000${r.recipientId}` : `${r.accountId}\u0000tl`;
    let g = groups.get(k);
    if (!g) groups.set(k, (g = { accountId: r.accountId, ...(r.kind === 'dm' && { recipientId: r.recipientId }), records: [] }));
    g.records.push(r);
  }
  return [...groups.values()];
}

type Lookup =
  | { ok: true; items: SeenItem[]; from: number; to: number }
  | { ok: false; cause: string; retryAt?: number }
  /** The pass ran out of time before this lookup could finish: decide nothing. */
  | { ok: false; outOfTime: true };

/** One paged lookup for a group: the timeline from just before its oldest attempt, or a DM conversation. */
async function lookup(deps: ReconcileDeps, g: Group, now: number, count: () => void, outOfTime: () => boolean): Promise<Lookup> {
  const skew = deps.skewMs ?? 60_000;
  const maxPages = deps.maxPages ?? 32;
  const from = Math.min(...g.records.map((r) => r.attemptStartedAt ?? r.scheduledAt)) - skew;
  const items: SeenItem[] = [];
  let token: string | undefined;
  try {
    for (let page = 0; page < maxPages; page++) {
      if (outOfTime()) return { ok: false, outOfTime: true };
      count();
      if (g.recipientId === undefined) {
        const res = await deps.x.timeline(g.accountId, { startTime: new Date(from).toISOString(), maxResults: 100, ...(token && { paginationToken: token }) });
        items.push(...res.items);
        token = res.nextToken;
      } else {
        const res = await deps.x.dmEvents(g.accountId, g.recipientId, { maxResults: 100, ...(token && { paginationToken: token }) });
        // Only what the account itself sent; events are newest first.
        items.push(...res.items.filter((e) => e.fromSelf));
        const oldest = res.items.at(-1)?.createdAt;
        token = oldest && Date.parse(oldest) < from ? undefined : res.nextToken;
      }
      if (!token) return { ok: true, items, from, to: now };
    }
    return { ok: false, cause: `more than ${maxPages} pages since ${new Date(from).toISOString()}` };
  } catch (err) {
    const o = classifyXError(err, now);
    return { ok: false, cause: o.cause, ...(o.kind === 'not-sent' && o.retryAt !== undefined && { retryAt: o.retryAt }) };
  }
}

function sentItemOf(r: PostRecord, skewMs: number, settleWindowMs: number): SentItem {
  const start = r.attemptStartedAt ?? r.scheduledAt;
  const extras = extrasOf(r);
  return {
    keyId: r.keyId,
    text: r.text,
    ...(r.inReplyToTweetId && { inReplyToTweetId: r.inReplyToTweetId }),
    // A thread's are those of the part in doubt.
    ...(extras.quoteTweetId && { quoteTweetId: extras.quoteTweetId }),
    ...(extras.poll && { hasPoll: true }),
    ...(extras.media?.length && { mediaCount: extras.media.length }),
    windowStart: start - skewMs,
    // X's created_at is set while the request is in flight; the settle window
    // bounds how late X may still show it.
    windowEnd: attemptEnd(r) + settleWindowMs + skewMs,
    attemptStartedAt: start,
  };
}

/**
 * One reconciliation pass: resolve every due key in doubt against X (one
 * paged lookup per account, or per DM conversation), and re-create jobs that
 * queued keys lost. Exclusive across processes.
 */
export async function reconcileOnce(deps: ReconcileDeps): Promise<ReconcileReport> {
  const clock = deps.clock ?? Date.now;
  const started = clock();
  const outcomes = { sent: 0, released: 0, expired: 0, unresolved: 0, cancelled: 0, deferred: 0, requeued: 0, stale: 0 };
  const token = randomUUID();
  // A short lock, renewed while the pass runs: a process killed mid-pass
  // holds up reconciliation for at most RECONCILE_LOCK_MS, not minutes.
  if (!(await deps.ledger.acquireReconcileLock(token, RECONCILE_LOCK_MS))) {
    return { ran: false, examined: 0, outcomes, lookups: 0, accounts: 0, oldestUnresolvedAgeMs: 0, left: 0, durationMs: 0 };
  }
  let lookups = 0;
  let oldest = 0;
  let left = 0;
  let lockLost = false;
  // Real time, not the injected clock: the budget bounds X's latency.
  const budgetEnd = performance.now() + (deps.passBudgetMs ?? 20_000);
  const outOfTime = () => lockLost || performance.now() >= budgetEnd;
  const renewal = setInterval(() => {
    deps.ledger.renewReconcileLock(token, RECONCILE_LOCK_MS).then(
      (held) => {
        if (!held) lockLost = true;
      },
      () => undefined,
    );
  }, RECONCILE_LOCK_MS / 3);
  renewal.unref();
  try {
    const now = clock();
    const ids = await deps.ledger.dueKeys(now, deps.batch ?? 5000);
    const records = await deps.ledger.getMany(ids);
    const doubtful: PostRecord[] = [];
    const reschedule: Rescheduled[] = [];
    const queued: PostRecord[] = [];
    ids.forEach((id, i) => {
      const r = records[i];
      const action = dueAction(r, now);
      if (action.kind === 'drop') reschedule.push({ keyId: id, at: null });
      else if (action.kind === 'check-job') queued.push(r!);
      else if (action.kind === 'look-up') doubtful.push(r!);
      else reschedule.push({ keyId: id, at: action.at });
    });

    for (const r of queued) if (await requeueIfLost(deps, r, now)) outcomes.requeued++;
    reschedule.push(...queued.map((r) => ({ keyId: r.keyId, at: Math.max(now, dueAt(r)) + (deps.lostJobGraceMs ?? 60_000) })));

    const groups = groupsOf(doubtful);
    const blocks = await deps.ledger.lookupBlocks([...new Set(groups.map((g) => g.accountId))]);
    const skew = deps.skewMs ?? 60_000;
    // Lookups for different accounts go out a few at a time: a pass over
    // many accounts must not take accounts × X latency.
    await forEachLimit(groups, deps.lookupConcurrency ?? 8, async (g) => {
      if (outOfTime()) {
        left += g.records.length;
        return;
      }
      for (const r of g.records) oldest = Math.max(oldest, now - attemptEnd(r));
      const blockedUntil = blocks.get(g.accountId);
      const found: Lookup =
        blockedUntil && blockedUntil > now
          ? { ok: false, cause: 'http-429 (waiting for x-rate-limit-reset)', retryAt: blockedUntil }
          : await lookup(deps, g, now, () => lookups++, outOfTime);
      if (!found.ok && 'outOfTime' in found) {
        // Still due: the next pass looks at these keys first.
        left += g.records.length;
        return;
      }
      if (!found.ok && found.retryAt !== undefined) await deps.ledger.blockLookups(g.accountId, found.retryAt, now);

      let matches = new Map<string, Attribution>();
      if (found.ok) {
        // An edited post keeps its old ids in its history: any of them attributed means taken.
        const taken = await deps.ledger.attributed([...new Set(found.items.flatMap((t) => [t.id, ...(t.editHistoryIds ?? [])]))]);
        matches = attribute(
          g.records.map((r) => sentItemOf(r, skew, deps.settleWindowMs)),
          found.items,
          taken,
        );
      }
      for (const r of g.records) {
        const hit = matches.get(r.keyId);
        const createdAt = hit?.item.createdAt;
        const evidence: Evidence = !found.ok
          ? { kind: 'lookup-failed', cause: found.cause, ...(found.retryAt !== undefined && { retryAt: found.retryAt }) }
          : hit?.verdict === 'match'
            ? { kind: 'found', id: hit.item.id, ...(createdAt && { createdAt }) }
            : hit?.verdict === 'uncertain'
              ? { kind: 'uncertain', id: hit.item.id, why: hit.why ?? 'cannot be proven', ...(createdAt && { createdAt }) }
              : { kind: 'not-found', scanned: found.items.length, from: found.from, to: found.to };
        await apply(deps, r, evidence, now, outcomes, reschedule);
      }
    });
    if (lockLost) deps.logger.warn({}, 'reconciliation lock lost mid-pass; the rest is left to the next pass');
    else if (left > 0) deps.logger.warn({ left, budgetMs: deps.passBudgetMs ?? 20_000 }, 'reconciliation pass out of time; the rest is left to the next pass');
    await deps.ledger.reschedule(reschedule);
    const report = {
      ran: true,
      examined: ids.length,
      outcomes,
      lookups,
      accounts: new Set(groups.map((g) => g.accountId)).size,
      oldestUnresolvedAgeMs: oldest,
      left,
      durationMs: clock() - started,
    };
    if (ids.length > 0) deps.logger.info(report, 'reconciliation pass');
    return report;
  } finally {
    clearInterval(renewal);
    await deps.ledger.releaseReconcileLock(token);
  }
}

type Rescheduled = Parameters<ReconcileDeps['ledger']['reschedule']>[0][number];

async function apply(
  deps: ReconcileDeps,
  r: PostRecord,
  evidence: Evidence,
  now: number,
  outcomes: ReconcileReport['outcomes'],
  reschedule: Rescheduled[],
): Promise<void> {
  const decision = decideReconcile(r, evidence, now, deps);
  const log = deps.logger.child({ key: r.keyId, accountId: r.accountId, attempt: r.attempt });
  if (decision.to === 'defer') {
    outcomes.deferred++;
    // What X showed goes along (same round trip), so the board can show an operator the candidate.
    reschedule.push({ keyId: r.keyId, at: decision.at, note: { attempt: r.attempt, at: now, evidence, why: decision.why } });
    if (evidence.kind === 'uncertain') log.warn({ candidate: evidence.id, why: evidence.why, at: decision.at }, 'uncertain candidate on X; not re-attempted');
    else log.debug({ why: decision.why, at: decision.at }, 'reconciliation deferred');
    return;
  }
  const key = { slotId: r.slotId, postId: r.postId };
  const step = threadTransition(r, decision, now);
  const transition = step.to === 'queued' ? { ...step, jobId: jobIdFor(key, r.attempt + 1) } : step;
  const result = await deps.ledger.settle(
    r.keyId,
    r.attempt,
    transition,
    now,
    [{ event: 'reconciled', attempt: r.attempt, evidence }],
    reconcileStats(transition),
  );
  if (result.verdict !== 'ok') {
    outcomes.stale++;
    return;
  }
  if (result.state === 'cancelled') {
    // Cancelled while in flight, and not on X: nothing went out; no new attempt.
    outcomes.cancelled++;
    log.info({ outcome: 'cancelled', evidence }, 'cancelled: the attempt in doubt did not go out');
    return;
  }
  switch (transition.to) {
    case 'sent':
      outcomes.sent++;
      log.info({ outcome: 'sent', tweetId: transition.tweetId, evidence }, 'found on X');
      break;
    case 'failed':
      if (transition.reason === 'unresolved') outcomes.unresolved++;
      else outcomes.expired++;
      log.warn({ outcome: 'failed', reason: transition.reason, detail: transition.detail }, 'failed by reconciliation');
      break;
    case 'queued':
      outcomes.released++;
      // The old job ID may still be held by BullMQ's dedupe: a new attempt gets its own.
      await deps.queue.add(r.kind, jobDataOf(r.keyId, r), { ...PUBLISH_JOB_OPTIONS, jobId: transition.jobId });
      if (transition.next) log.info({ outcome: 'part-sent', jobId: transition.jobId, evidence }, 'thread part found on X; the next part goes out');
      else log.info({ outcome: 'released', jobId: transition.jobId, evidence }, 'not on X after the settle window; new attempt');
      break;
    default:
      break;
  }
}

/** A queued key whose job is gone (lost between ledger and queue, or failed by BullMQ) gets it back. */
async function requeueIfLost(deps: ReconcileDeps, r: PostRecord, now: number): Promise<boolean> {
  const job = await deps.queue.getJob(r.jobId);
  const state = job ? await job.getState() : 'missing';
  if (LIVE_JOB_STATES.has(state)) return false;
  if (job) await job.remove();
  const due = dueAt(r);
  await deps.queue.add(r.kind, jobDataOf(r.keyId, r), { ...PUBLISH_JOB_OPTIONS, jobId: r.jobId, delay: Math.max(0, due - now) });
  deps.logger.warn({ key: r.keyId, jobId: r.jobId, jobState: state }, 'queued key had no live job; re-enqueued');
  return true;
}
