import type { Queue } from 'bullmq';
import type { RedisClient } from '../ledger/ledger.js';
import { Counter, Gauge, type Metric, Registry } from 'prom-client';
import { LATENCY_BUCKETS_MS } from '../domain/stats.js';
import type { Ledger } from '../ledger/ledger.js';
import { FAIL_REASONS } from '../domain/state.js';
import { liveWorkers, type WorkerLiveness } from './health.js';

/**
 * Prometheus metrics, computed at scrape time from Redis, so every board
 * process reports the same cluster-wide numbers and none of them has to see
 * the events happen. The counters come from the stats hash the transition Lua
 * scripts write (see src/domain/stats.ts).
 */
export const METRIC_NAMES = Object.freeze({
  finalTotal: 'xactly_posts_final_total',
  attemptsTotal: 'xactly_x_attempts_total',
  claimsNotDurable: 'xactly_claims_not_durable_total',
  callDuration: 'xactly_x_call_duration_seconds',
  resolvedTotal: 'xactly_ambiguous_resolved_total',
  unresolvedKeys: 'xactly_unresolved_keys',
  oldestUnresolvedAge: 'xactly_oldest_unresolved_age_seconds',
  queueJobs: 'xactly_queue_jobs',
  workersLive: 'xactly_workers_live',
  appPaused: 'xactly_app_paused',
  webhookDelivered: 'xactly_webhook_delivered_total',
  webhookRetried: 'xactly_webhook_retried_total',
  webhookDeadLettered: 'xactly_webhook_dead_lettered_total',
  webhookSkipped: 'xactly_webhook_skipped_total',
});

/** Label values always exported (as 0 until they happen), so rate() and alerts see the series from the start. */
const ATTEMPT_OUTCOMES = ['sent', 'not-sent', 'ambiguous', 'rejected'] as const;
const RESOLUTIONS = ['sent', 'released', 'expired', 'unresolved', 'cancelled'] as const;

export interface MetricsDeps {
  readonly ledger: Ledger;
  /** Queues whose job counts are exported, labelled by queue name. */
  readonly queues: readonly Queue[];
  readonly redis: RedisClient;
  readonly clock?: () => number;
}

export interface Metrics {
  readonly registry: Registry;
}

interface Snapshot {
  readonly now: number;
  readonly stats: Readonly<Record<string, number>>;
  readonly unresolved: number;
  /** Smallest score of the due set: when the most overdue unresolved key should have been looked at. */
  readonly oldestDueAt: number | undefined;
  readonly queues: readonly { readonly name: string; readonly counts: Readonly<Record<string, number>> }[];
  readonly workers: WorkerLiveness;
  /** Webhook counters by URL host (`delivered:<host>`...), written by the webhook scripts. */
  readonly webhooks: Readonly<Record<string, number>>;
}

/** Fields `<prefix><rest>` of the stats hash, as [rest, value]. */
function withPrefix(stats: Readonly<Record<string, number>>, prefix: string): [string, number][] {
  return Object.entries(stats).flatMap(([k, v]) => (k.startsWith(prefix) ? [[k.slice(prefix.length), v] as [string, number]] : []));
}

/** Cumulative Prometheus buckets (seconds) from the stored non-cumulative millisecond buckets. */
export function cumulativeBuckets(stats: Readonly<Record<string, number>>): { le: string; count: number }[] {
  const perBucket = new Map<number, number>(LATENCY_BUCKETS_MS.map((b) => [b, 0]));
  let overflow = 0;
  for (const [le, n] of withPrefix(stats, 'latency_bucket:')) {
    // A bound that is no longer configured falls into the next one up, so
    // the cumulative counts stay right if the bucket list ever changes.
    const bound = le === '+Inf' ? undefined : LATENCY_BUCKETS_MS.find((b) => Number(le) <= b);
    if (bound === undefined) overflow += n;
    else perBucket.set(bound, perBucket.get(bound)! + n);
  }
  let running = 0;
  const out = LATENCY_BUCKETS_MS.map((b) => {
    running += perBucket.get(b)!;
    return { le: String(b / 1000), count: running };
  });
  out.push({ le: '+Inf', count: running + overflow });
  return out;
}

/**
 * prom-client's Histogram only counts observations it sees itself; this one
 * exports buckets that were counted elsewhere (by the Lua scripts).
 */
class StoredHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly read: () => Promise<{ buckets: { le: string; count: number }[]; sum: number }>,
  ) {}

  async get() {
    const { buckets, sum } = await this.read();
    const count = buckets.at(-1)?.count ?? 0;
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      aggregator: this.aggregator,
      values: [
        ...buckets.map((b) => ({ metricName: `${this.name}_bucket`, labels: { le: b.le }, value: b.count })),
        { metricName: `${this.name}_sum`, labels: {}, value: sum },
        { metricName: `${this.name}_count`, labels: {}, value: count },
      ],
    };
  }
}

export function createMetrics(deps: MetricsDeps): Metrics {
  const { ledger, redis } = deps;
  const clock = deps.clock ?? Date.now;
  const registry = new Registry();

  async function load(): Promise<Snapshot> {
    const now = clock();
    const [stats, unresolved, oldest, queues, workers, webhooks] = await Promise.all([
      ledger.stats(),
      ledger.unresolvedCount(),
      redis.zrange(ledger.keys.due, '0', '0', 'WITHSCORES'),
      Promise.all(deps.queues.map(async (q) => ({ name: q.name, counts: await q.getJobCounts() }))),
      liveWorkers(redis, ledger.keys, now),
      redis.hgetall(ledger.keys.webhookStats) as Promise<Record<string, string>>,
    ]);
    const score = (oldest as unknown[]).flat()[1];
    return {
      now,
      stats,
      unresolved,
      oldestDueAt: score === undefined ? undefined : Number(score),
      queues,
      workers,
      webhooks: Object.fromEntries(Object.entries(webhooks).map(([k, v]) => [k, Number(v)])),
    };
  }

  // One Redis read per scrape: prom-client calls every collect() in the same
  // tick, so they all join the first one's load.
  let inflight: Promise<Snapshot> | undefined;
  const snapshot = () =>
    (inflight ??= load().finally(() => {
      inflight = undefined;
    }));

  new Counter({
    name: METRIC_NAMES.finalTotal,
    help: 'Keys that reached a final state: sent, failed with a reason, or cancelled.',
    labelNames: ['state', 'reason'],
    registers: [registry],
    async collect() {
      const { stats } = await snapshot();
      this.reset();
      this.inc({ state: 'sent' }, stats['final:sent'] ?? 0);
      this.inc({ state: 'cancelled' }, stats['final:cancelled'] ?? 0);
      const failed = new Map<string, number>(FAIL_REASONS.map((r) => [r, 0]));
      for (const [reason, n] of withPrefix(stats, 'final:failed:')) failed.set(reason, n);
      for (const [reason, n] of failed) this.inc({ state: 'failed', reason }, n);
    },
  });

  /** A counter per outcome read from the stats hash (`<field>:<outcome>`), every known outcome exported from 0. */
  const outcomeCounter = (name: string, help: string, field: string, known: readonly string[]) =>
    new Counter({
      name,
      help,
      labelNames: ['outcome'],
      registers: [registry],
      async collect() {
        const { stats } = await snapshot();
        this.reset();
        const outcomes = new Map<string, number>(known.map((o) => [o, 0]));
        for (const [outcome, n] of withPrefix(stats, field)) outcomes.set(outcome, n);
        for (const [outcome, n] of outcomes) this.inc({ outcome }, n);
      },
    });
  outcomeCounter(
    METRIC_NAMES.attemptsTotal,
    'Calls to X by outcome: sent, not-sent (provably not executed), ambiguous, rejected.',
    'attempts:',
    ATTEMPT_OUTCOMES,
  );

  new Counter({
    name: METRIC_NAMES.claimsNotDurable,
    help: 'Claims given back without calling X because the replicas (or the fsync) did not confirm them in time (XACTLY_CLAIM_DURABILITY).',
    registers: [registry],
    async collect() {
      this.reset();
      this.inc((await snapshot()).stats['claims:not-durable'] ?? 0);
    },
  });

  registry.registerMetric(
    new StoredHistogram(METRIC_NAMES.callDuration, 'Duration of publish calls to X (one per attempt), in seconds.', async () => {
      const { stats } = await snapshot();
      return { buckets: cumulativeBuckets(stats), sum: (stats['latency_sum_ms'] ?? 0) / 1000 };
    }) as unknown as Metric,
  );

  outcomeCounter(
    METRIC_NAMES.resolvedTotal,
    'Reconciliation decisions about keys in doubt: found on X (sent), released for a new attempt, failed (expired, unresolved), or cancelled (cancelled in flight, not on X).',
    'resolved:',
    RESOLUTIONS,
  );

  new Gauge({
    name: METRIC_NAMES.unresolvedKeys,
    help: 'Keys not yet final (queued, claimed, ambiguous or cancelling) that reconciliation tracks.',
    registers: [registry],
    async collect() {
      this.set((await snapshot()).unresolved);
    },
  });

  new Gauge({
    name: METRIC_NAMES.oldestUnresolvedAge,
    help: 'How long the most overdue unresolved key has waited past the time reconciliation should have looked at it, in seconds; 0 when none is overdue. Stays below the reconcile interval when healthy.',
    registers: [registry],
    async collect() {
      const { now, oldestDueAt } = await snapshot();
      this.set(oldestDueAt === undefined ? 0 : Math.max(0, now - oldestDueAt) / 1000);
    },
  });

  new Gauge({
    name: METRIC_NAMES.queueJobs,
    help: 'BullMQ jobs by queue and state.',
    labelNames: ['queue', 'state'],
    registers: [registry],
    async collect() {
      const { queues } = await snapshot();
      this.reset();
      for (const { name, counts } of queues) for (const [state, n] of Object.entries(counts)) this.set({ queue: name, state }, n);
    },
  });

  new Gauge({
    name: METRIC_NAMES.appPaused,
    help: "Alert: 1 when X refused the app (client-forbidden / client-not-enrolled) and no account publishes. Fix the app in X's developer portal, then `xactly accounts resume --app`.",
    registers: [registry],
    async collect() {
      this.set((await ledger.appStatus()).paused ? 1 : 0);
    },
  });

  /** A webhook counter by URL host (the host only: a URL's path or query may hold a token). */
  const webhookCounter = (name: string, help: string, field: string) =>
    new Counter({
      name,
      help,
      labelNames: ['host'],
      registers: [registry],
      async collect() {
        const { webhooks } = await snapshot();
        this.reset();
        for (const [host, n] of withPrefix(webhooks, `${field}:`)) this.inc({ host }, n);
      },
    });
  webhookCounter(METRIC_NAMES.webhookDelivered, 'Outcome events a webhook receiver took (answered 2xx), by URL host.', 'delivered');
  webhookCounter(METRIC_NAMES.webhookRetried, 'Failed webhook tries that will be tried again (after a backoff), by URL host.', 'retried');
  webhookCounter(
    METRIC_NAMES.webhookDeadLettered,
    'Outcome events given up on after XACTLY_WEBHOOK_MAX_TRIES, into the dead-letter list (`xactly webhooks failed`), by URL host.',
    'dead',
  );
  webhookCounter(
    METRIC_NAMES.webhookSkipped,
    'Alert: outcome events trimmed from the stream before a webhook URL took them (no deliverer ran for longer than the events retention), by URL host.',
    'skipped',
  );

  new Gauge({
    name: METRIC_NAMES.workersLive,
    help: 'Worker processes with a fresh heartbeat.',
    registers: [registry],
    async collect() {
      this.set((await snapshot()).workers.seen);
    },
  });

  return { registry };
}
