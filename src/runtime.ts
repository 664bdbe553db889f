import { Cluster, Redis } from 'ioredis';
import type { Config } from './config.js';
import { Ledger, type RedisClient } from './ledger/ledger.js';
import type { Logger } from './log.js';
import { type CredentialStore, type FileCredentialStore, fileCredentialStore } from './x/credentials.js';
import { TokenRefresher } from './x/refresh.js';
import { TwitterXPort } from './x/twitter.js';

/** Thrown when a process cannot start; the message says what to fix. */
export class StartupError extends Error {
  readonly code = 'STARTUP_FAILED';
  override name = 'StartupError';
}

/** The lease must outlast the slowest X call, so a live worker is never taken for dead. */
export function leaseFor(config: Pick<Config, 'xTimeoutMs'>): number {
  return 3 * config.xTimeoutMs + 10_000;
}

/** Connect to Redis (or a Redis Cluster) or explain how to get one; never hangs on a dead address. */
export async function connectRedis(config: Pick<Config, 'redisUrl' | 'redisClusterNodes'>): Promise<RedisClient> {
  const url = new URL(config.redisUrl);
  const auth = { ...(url.username && { username: decodeURIComponent(url.username) }), ...(url.password && { password: decodeURIComponent(url.password) }) };
  const nodes = config.redisClusterNodes;
  // disconnectTimeout: a socket that never connected would otherwise hold a
  // failing CLI command open for ioredis' default 2 s.
  const common = { maxRetriesPerRequest: null, connectTimeout: 5_000, disconnectTimeout: 500 };
  const redis: RedisClient = nodes
    ? new Cluster([...nodes], { lazyConnect: true, clusterRetryStrategy: () => null, redisOptions: { ...common, ...auth } })
    : new Redis(config.redisUrl, { ...common, lazyConnect: true, retryStrategy: () => null });
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
    const where = nodes ? nodes.map((n) => `${n.host}:${n.port}`).join(',') : `${url.hostname}:${url.port || 6379}`;
    throw new StartupError(
      `cannot reach Redis at ${where} (${cause.message}). ` +
        (nodes ? 'Check REDIS_CLUSTER_NODES and that the cluster is up.' : 'Start one (e.g. `redis-server --daemonize yes`) or set REDIS_URL.'),
    );
  }
  // From here on, reconnect forever: a Redis restart must not kill workers.
  const forever = (times: number) => Math.min(times * 200, 5_000);
  if (redis instanceof Cluster) redis.options.clusterRetryStrategy = forever;
  else redis.options.retryStrategy = forever;
  return redis;
}

export function ledgerFor(redis: RedisClient, config: Config): Ledger {
  return new Ledger(redis, { prefix: config.prefix, retentionMs: config.retentionMs });
}

export async function loadCredentials(config: Pick<Config, 'accountsFile'>): Promise<FileCredentialStore> {
  if (!config.accountsFile) {
    throw new StartupError('XACTLY_ACCOUNTS_FILE is not set: point it at the accounts JSON file (see README, "Accounts file").');
  }
  return fileCredentialStore(config.accountsFile);
}

/** The X adapter with OAuth 2.0 refresh coordinated through Redis. */
export function xPortFor(config: Config, credentials: CredentialStore, redis: RedisClient, ledger: Ledger, logger?: Logger): TwitterXPort {
  const refresher = new TokenRefresher({ redis, keys: ledger.keys, credentials, baseUrl: config.xApiBaseUrl, timeoutMs: config.xTimeoutMs, ...(logger && { logger }) });
  return new TwitterXPort({ credentials, baseUrl: config.xApiBaseUrl, timeoutMs: config.xTimeoutMs, refresher });
}

export type { Logger };
