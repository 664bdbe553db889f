import { type Job, type JobsOptions, Queue, Worker, type WorkerOptions } from 'bullmq';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Config } from './config.js';
import { claimDurability, DurabilityError } from './ledger/durability.js';
import type { RetryPolicy } from './domain/decide.js';
import { Ledger, type RedisClient } from './ledger/ledger.js';
import { type LedgerKeys, QUEUE_NAMES } from './ledger/keys.js';
import type { Logger } from './log.js';
import { PUBLISH_JOB_OPTIONS, type PublishJobData, type PublishJobResult } from './queue/jobs.js';
import { type Producer, type ProducerOptions, producerOver } from './queue/producer.js';
import { createPublishProcessor, type PublishDeps } from './queue/publisher.js';
import { type ReconcileDeps, type ReconcileReport, reconcileOnce } from './queue/reconciler.js';
import { type CredentialStore, type FileCredentialStore, fileCredentialStore } from './x/credentials.js';
import type { XPort } from './x/port.js';
import { TokenRefresher } from './x/refresh.js';
import { TwitterXPort } from './x/twitter.js';
import { type Deliverer, startDeliverer } from './webhooks/deliverer.js';

/**
 * The composition root: the one module that builds Redis connections,
 * Ledgers, Queues and Workers, and wires them into processes (the worker,
 * the board, each CLI command). Tests and benches build through it too,
 * with overrides (`clock`, `retry`, `leaseMs`, `x`, `credentials`).
 *
 * Two levels:
 * - part factories (`connectRedis`, `redisFrom`, `openLedger`, `openQueue`,
 *   `createProducer`, `createPublishWorker`, `startReconciler`) for code that
 *   brings its own connection;
 * - `openApp(config)`, one process's parts built from its config, each made
 *   once on first use and closed by `app.close()`.
 */

/** Thrown when a process cannot start; the message says what to fix. */
export class StartupError extends Error {
  readonly code = 'STARTUP_FAILED';
  override name = 'StartupError';
}

/** The lease must outlast the slowest X call, so a live worker is never taken for dead. */
export function leaseFor(config: Pick<Config, 'xTimeoutMs'>): number {
  return 3 * config.xTimeoutMs + 10_000;
}

// ---------------------------------------------------------------------------
// Redis: one connection policy.

/**
 * Every connection: commands wait through a reconnect instead of failing
 * (BullMQ needs `maxRetriesPerRequest: null`); a socket that never connected
 * does not hold a failing command open for ioredis' default 2 s.
 */
const CONNECTION_POLICY = { maxRetriesPerRequest: null, connectTimeout: 5_000, disconnectTimeout: 500 } as const;
/** Once up, reconnect forever: a Redis restart must not kill a worker. */
const reconnectForever = (times: number) => Math.min(times * 200, 5_000);

/** Connect to Redis (or a Redis Cluster) or explain how to get one; never hangs on a dead address. */
export async function connectRedis(config: Pick<Config, 'redisUrl' | 'redisClusterNodes' | 'redisSentinel'>): Promise<RedisClient> {
  const url = new URL(config.redisUrl);
  const auth = { ...(url.username && { username: decodeURIComponent(url.username) }), ...(url.password && { password: decodeURIComponent(url.password) }) };
  const nodes = config.redisClusterNodes;
  const sentinel = config.redisSentinel;
  // Through Sentinel, ioredis asks for the primary and follows a failover by itself (no home-made failover).
  const redis: RedisClient = nodes
    ? new Cluster([...nodes], { lazyConnect: true, clusterRetryStrategy: () => null, redisOptions: { ...CONNECTION_POLICY, ...auth } })
    : sentinel
      ? new Redis({
          ...CONNECTION_POLICY,
          ...auth,
          lazyConnect: true,
          sentinels: [...sentinel.sentinels],
          name: sentinel.name,
          ...(sentinel.password && { sentinelPassword: sentinel.password }),
          ...(url.pathname.length > 1 && { db: Number(url.pathname.slice(1)) }),
          sentinelRetryStrategy: () => null,
          // A demoted primary answers writes with READONLY: reconnect, and Sentinel names the new one.
          reconnectOnError: (err: Error) => err.message.startsWith('READONLY'),
          retryStrategy: () => null,
        })
      : new Redis(config.redisUrl, { ...CONNECTION_POLICY, lazyConnect: true, retryStrategy: () => null });
  // Keep the first connection error for the message, instead of ioredis
  // printing "Unhandled error event" to stderr.
  let connectError: Error | undefined;
  const onError = (err: Error) => (connectError ??= err);
  redis.on('error', onError);
  try {
    await redis.connect();
    await redis.ping();
    redis.off('error', onError);
  } catch (err) {
    redis.disconnect();
    const cause = connectError ?? (err as Error);
    const list = nodes ?? sentinel?.sentinels;
    const where = list ? list.map((n) => `${n.host}:${n.port}`).join(',') : `${url.hostname}:${url.port || 6379}`;
    throw new StartupError(
      `cannot reach Redis at ${where} (${cause.message}). ` +
        (nodes
          ? 'Check REDIS_CLUSTER_NODES and that the cluster is up.'
          : sentinel
            ? `Check REDIS_SENTINELS, REDIS_SENTINEL_NAME (${sentinel.name}) and that the Sentinels know a primary.`
            : 'Start one (e.g. `redis-server --daemonize yes`) or set REDIS_URL.'),
    );
  }
  if (redis instanceof Cluster) redis.options.clusterRetryStrategy = reconnectForever;
  else {
    redis.options.retryStrategy = reconnectForever;
    if (sentinel) redis.options.sentinelRetryStrategy = reconnectForever;
  }
  return redis;
}

/**
 * A client for library users who hand in a client, options or a URL: a
 * client is shared (not ours to close); options and URLs get the same policy
 * as `connectRedis`, connecting lazily.
 */
export function redisFrom(connection: RedisClient | RedisOptions | string): { client: RedisClient; owned: boolean } {
  if (connection instanceof Redis || connection instanceof Cluster || (connection as { isCluster?: boolean }).isCluster) {
    return { client: connection as RedisClient, owned: false };
  }
  const options = { ...CONNECTION_POLICY, retryStrategy: reconnectForever };
  const client = typeof connection === 'string' ? new Redis(connection, options) : new Redis({ ...(connection as RedisOptions), ...options });
  return { client, owned: true };
}

// ---------------------------------------------------------------------------
// Parts.

export interface LedgerSettings {
  readonly prefix: string;
  /** How long a settled record is kept (default 30 days). */
  readonly retentionMs?: number;
  /** How long outcome events are kept (default 7 days). */
  readonly eventsRetentionMs?: number;
  /** Grace after a queued key's due time before reconciliation looks for its lost job (default 60 s). */
  readonly lostJobGraceMs?: number;
}

const DEFAULT_RETENTION_MS = 30 * 24 * 3_600_000;

export function openLedger(redis: RedisClient, s: LedgerSettings): Ledger {
  return new Ledger(redis, {
    prefix: s.prefix,
    retentionMs: s.retentionMs ?? DEFAULT_RETENTION_MS,
    ...(s.eventsRetentionMs !== undefined && { eventsRetentionMs: s.eventsRetentionMs }),
    ...(s.lostJobGraceMs !== undefined && { lostJobGraceMs: s.lostJobGraceMs }),
  });
}

export type QueueName = (typeof QUEUE_NAMES)[keyof typeof QUEUE_NAMES];

/**
 * The one Queue factory. A connection error is logged (when a logger is
 * given) instead of BullMQ printing it raw to the console.
 */
export function openQueue<T = PublishJobData>(
  name: QueueName,
  redis: RedisClient,
  keys: LedgerKeys,
  opts: { readonly logger?: Logger; readonly defaultJobOptions?: JobsOptions } = {},
): Queue<T> {
  const queue = new Queue<T>(name, {
    connection: redis as never,
    prefix: keys.bullPrefix,
    ...(opts.defaultJobOptions && { defaultJobOptions: opts.defaultJobOptions }),
  });
  const { logger } = opts;
  (queue as Queue).on('error', (err: Error) => logger?.warn({ err, event: 'queue-error', queue: name }, 'queue connection error'));
  return queue;
}

/** The producer for applications: ledger registration first, then the BullMQ job. */
export function createProducer(opts: ProducerOptions): Producer {
  const { client, owned } = redisFrom(opts.connection);
  const ledger = openLedger(client, { prefix: opts.prefix ?? 'xactly', ...(opts.retentionMs !== undefined && { retentionMs: opts.retentionMs }) });
  // Connection errors surface as rejected enqueues.
  const queue = openQueue(QUEUE_NAMES.publish, client, ledger.keys, { defaultJobOptions: PUBLISH_JOB_OPTIONS });
  const settings = { prefix: opts.prefix ?? 'xactly', ...(opts.retentionMs !== undefined && { retentionMs: opts.retentionMs }) };
  return producerOver({
    ledger,
    queue,
    options: opts,
    eventsReader: () => {
      const reader: RedisClient = client instanceof Cluster ? client.duplicate() : client.duplicate();
      reader.on('error', () => undefined);
      return { ledger: openLedger(reader, settings), close: () => reader.disconnect() };
    },
    async close() {
      await queue.close();
      if (owned) await client.quit();
    },
  });
}

export interface PublishWorkerOptions extends Omit<PublishDeps, 'ledger'> {
  readonly connection: RedisClient;
  /** The ledger to claim through; built on `connection` under `prefix` when absent. */
  readonly ledger?: Ledger;
  readonly prefix?: string;
  readonly retentionMs?: number;
  readonly concurrency: number;
  readonly workerOptions?: Partial<WorkerOptions>;
}

export function createPublishWorker(opts: PublishWorkerOptions): Worker<PublishJobData, PublishJobResult> {
  const ledger =
    opts.ledger ?? openLedger(opts.connection, { prefix: opts.prefix ?? 'xactly', ...(opts.retentionMs !== undefined && { retentionMs: opts.retentionMs }) });
  return new Worker<PublishJobData, PublishJobResult>(QUEUE_NAMES.publish, createPublishProcessor({ ...opts, ledger }), {
    connection: opts.connection as never,
    prefix: ledger.keys.bullPrefix,
    concurrency: opts.concurrency,
    ...opts.workerOptions,
  });
}

export interface ReconcilerOptions extends ReconcileDeps {
  readonly connection: RedisClient;
  readonly intervalMs: number;
  readonly onReport?: (report: ReconcileReport) => void;
}

export interface Reconciler {
  readonly worker: Worker;
  readonly queue: Queue;
  close(): Promise<void>;
}

/**
 * The repeatable reconciliation job: a BullMQ Job Scheduler on its own queue,
 * registered idempotently by every worker process, one run at a time across
 * all of them (global concurrency 1, and the pass's own lock).
 */
export async function startReconciler(opts: ReconcilerOptions): Promise<Reconciler> {
  const queue = openQueue<unknown>(QUEUE_NAMES.reconcile, opts.connection, opts.ledger.keys, { logger: opts.logger }) as Queue;
  await queue.setGlobalConcurrency(1);
  await queue.upsertJobScheduler(
    'reconcile',
    { every: opts.intervalMs },
    {
      name: 'reconcile',
      opts: { removeOnComplete: { count: 100 }, removeOnFail: { count: 100 } },
    },
  );
  const worker = new Worker(
    QUEUE_NAMES.reconcile,
    async (_job: Job) => {
      const report = await reconcileOnce(opts);
      opts.onReport?.(report);
      return report;
    },
    {
      connection: opts.connection as never,
      prefix: opts.ledger.keys.bullPrefix,
      concurrency: 1,
      // A pass left active by a killed process must not block the next ones for long.
      lockDuration: 10_000,
      stalledInterval: 5_000,
    },
  );
  worker.on('error', (err) => opts.logger.error({ err, event: 'reconcile-worker-error' }, 'reconcile worker error'));
  return {
    worker,
    queue,
    async close() {
      await worker.close();
      await queue.close();
    },
  };
}

export async function loadCredentials(config: Pick<Config, 'accountsFile'>): Promise<FileCredentialStore> {
  if (!config.accountsFile) {
    throw new StartupError('XACTLY_ACCOUNTS_FILE is not set: point it at the accounts JSON file (see README, "Accounts file").');
  }
  return fileCredentialStore(config.accountsFile);
}

/** The X adapter with OAuth 2.0 refresh coordinated through Redis. */
export function xPortFor(config: Config, credentials: CredentialStore, redis: RedisClient, keys: LedgerKeys, logger?: Logger): TwitterXPort {
  const refresher = new TokenRefresher({ redis, keys, credentials, baseUrl: config.xApiBaseUrl, timeoutMs: config.xTimeoutMs, ...(logger && { logger }) });
  return new TwitterXPort({ credentials, baseUrl: config.xApiBaseUrl, timeoutMs: config.xTimeoutMs, refresher });
}

// ---------------------------------------------------------------------------
// One process's parts.

export interface AppOverrides {
  readonly clock?: () => number;
  readonly retry?: RetryPolicy;
  readonly leaseMs?: number;
  /** Use this X adapter instead of the real one over `config.xApiBaseUrl`. */
  readonly x?: XPort;
  /** Use these credentials instead of the accounts file. */
  readonly credentials?: CredentialStore;
  /** Use this connection (not closed by the app) instead of connecting from the config. */
  readonly redis?: RedisClient;
  /** Grace before reconciliation re-creates a queued key's lost job (default 60 s; tests shorten it). */
  readonly lostJobGraceMs?: number;
}

export interface App {
  readonly config: Config;
  readonly logger: Logger;
  readonly redis: RedisClient;
  readonly ledger: Ledger;
  readonly clock: () => number;
  /** The queue of that name, made once. */
  queue(name: QueueName): Queue<PublishJobData>;
  /** The credential store (the accounts file unless overridden), loaded once. */
  credentials(): Promise<CredentialStore>;
  /** The accounts file when the app reads one (it can be watched and reloaded). */
  accountsFile(): Promise<FileCredentialStore | undefined>;
  x(): Promise<XPort>;
  /** A producer; each account's text length comes from the credential store when the app has one (an accounts file or an override). */
  producer(opts?: Pick<ProducerOptions, 'knownAccount' | 'accountLimits'>): Producer;
  publishWorker(opts?: { readonly concurrency?: number; readonly workerOptions?: Partial<WorkerOptions> }): Promise<Worker<PublishJobData, PublishJobResult>>;
  reconcileDeps(): Promise<ReconcileDeps>;
  reconciler(opts?: { readonly onReport?: (report: ReconcileReport) => void }): Promise<Reconciler>;
  /** The webhook deliverer for `config.webhooks`, started once (a StartupError when no URL is configured). */
  webhookDeliverer(): Promise<Deliverer>;
  /** Close what the app made, then its own connection. Idempotent. */
  close(): Promise<void>;
}

export async function openApp(config: Config, logger: Logger, overrides: AppOverrides = {}): Promise<App> {
  const redis = overrides.redis ?? (await connectRedis(config));
  const ledger = openLedger(redis, { ...config, ...(overrides.lostJobGraceMs !== undefined && { lostJobGraceMs: overrides.lostJobGraceMs }) });
  const clock = overrides.clock ?? Date.now;
  const queues = new Map<QueueName, Queue<PublishJobData>>();
  const closers: (() => Promise<void> | void)[] = [];
  const once = <T>(make: () => Promise<T>) => {
    let made: Promise<T> | undefined;
    return () => (made ??= make());
  };
  const accountsFile = once(async () => {
    if (overrides.credentials) return undefined;
    const file = await loadCredentials(config);
    closers.push(() => file.close());
    return file;
  });
  const credentials = once(async () => overrides.credentials ?? (await accountsFile())!);
  // Checked once, at the first publish worker: fsync mode refuses to start on a Redis that cannot make a claim durable.
  const durability = once(async () => {
    try {
      return await claimDurability(redis, config.claimDurability, ledger.keys.due);
    } catch (err) {
      throw err instanceof DurabilityError ? new StartupError(err.message) : err;
    }
  });
  const x = once(async () => {
    if (overrides.x) return overrides.x;
    const twitter = xPortFor(config, await credentials(), redis, ledger.keys, logger);
    closers.push(() => twitter.close());
    return twitter;
  });
  const queue = (name: QueueName) => {
    let q = queues.get(name);
    if (!q) queues.set(name, (q = openQueue(name, redis, ledger.keys, { logger })));
    return q;
  };
  const reconcileDeps = async (): Promise<ReconcileDeps> => ({
    ledger,
    x: await x(),
    queue: queue(QUEUE_NAMES.publish),
    logger,
    clock,
    settleWindowMs: config.settleWindowMs,
    unresolvedGraceMs: config.unresolvedGraceMs,
    passBudgetMs: config.reconcileBudgetMs,
    ...(overrides.lostJobGraceMs !== undefined && { lostJobGraceMs: overrides.lostJobGraceMs }),
  });
  const webhookDeliverer = once(async () => {
    if (!config.webhooks) throw new StartupError('XACTLY_WEBHOOK_URLS is not set: name the URLs to deliver outcome events to (see README, "Webhooks").');
    const deliverer = await startDeliverer({ redis, keys: ledger.keys, config: config.webhooks, logger, clock });
    closers.push(async () => void (await deliverer.stop()));
    return deliverer;
  });
  let closing: Promise<void> | undefined;

  return {
    config,
    logger,
    redis,
    ledger,
    clock,
    queue,
    credentials,
    accountsFile,
    x,
    reconcileDeps,
    webhookDeliverer,
    producer: (opts = {}) => {
      const hasStore = overrides.credentials !== undefined || Boolean(config.accountsFile);
      const accountLimits = hasStore ? async (id: string) => (await (await credentials()).get(id))?.limits : undefined;
      const producer = createProducer({
        connection: redis,
        prefix: config.prefix,
        deadlineWindowMs: config.deadlineWindowMs,
        retentionMs: config.retentionMs,
        clock,
        ...(accountLimits && { accountLimits }),
        ...opts,
      });
      closers.push(() => producer.close());
      return producer;
    },
    async publishWorker(opts = {}) {
      const store = await credentials();
      const worker = createPublishWorker({
        connection: redis,
        ledger,
        x: await x(),
        logger,
        clock,
        concurrency: opts.concurrency ?? config.workerConcurrency,
        leaseMs: overrides.leaseMs ?? leaseFor(config),
        settleWindowMs: config.settleWindowMs,
        budget: config.budget,
        durability: await durability(),
        accountLimits: async (id) => (await store.get(id))?.limits,
        mediaUploadsPerAccount: config.media.uploadsPerAccount,
        mediaWaitMs: config.media.waitMs,
        mediaFetchTimeoutMs: config.media.fetchTimeoutMs,
        mediaFetchMaxBytes: config.media.fetchMaxBytes,
        ...(overrides.retry && { retry: overrides.retry }),
        ...(opts.workerOptions && { workerOptions: opts.workerOptions }),
      });
      worker.on('error', (err) => logger.error({ err, event: 'publish-worker-error' }, 'publish worker error'));
      closers.push(() => worker.close());
      return worker;
    },
    async reconciler(opts = {}) {
      const r = await startReconciler({ ...(await reconcileDeps()), connection: redis, intervalMs: config.reconcileIntervalMs, ...opts });
      closers.push(() => r.close());
      return r;
    },
    close() {
      closing ??= (async () => {
        for (const close of closers.reverse()) await close();
        await Promise.all([...queues.values()].map((q) => q.close()));
        if (!overrides.redis) redis.disconnect();
      })();
      return closing;
    },
  };
}
