import { Redis } from 'ioredis';
import type { Config } from './config.js';
import { Ledger } from './ledger/ledger.js';
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

/** Connect to Redis or explain how to get one; never hangs on a dead URL. */
export async function connectRedis(config: Pick<Config, 'redisUrl'>): Promise<Redis> {
  const redis = new Redis(config.redisUrl, { maxRetriesPerRequest: null, lazyConnect: true, connectTimeout: 5_000, retryStrategy: () => null });
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    redis.disconnect();
    const where = new URL(config.redisUrl);
    throw new StartupError(
      `cannot reach Redis at ${where.hostname}:${where.port || 6379} (${(err as Error).message}). ` +
        'Start one (e.g. `redis-server --daemonize yes`) or set REDIS_URL.',
    );
  }
  // From here on, reconnect forever: a Redis restart must not kill workers.
  redis.options.retryStrategy = (times: number) => Math.min(times * 200, 5_000);
  return redis;
}

export interface Runtime {
  readonly config: Config;
  readonly redis: Redis;
  readonly ledger: Ledger;
  close(): Promise<void>;
}

export function ledgerFor(redis: Redis, config: Config): Ledger {
  return new Ledger(redis, { prefix: config.prefix, retentionMs: config.retentionMs });
}

export async function loadCredentials(config: Pick<Config, 'accountsFile'>): Promise<FileCredentialStore> {
  if (!config.accountsFile) {
    throw new StartupError('XACTLY_ACCOUNTS_FILE is not set: point it at the accounts JSON file (see README, "Accounts file").');
  }
  return fileCredentialStore(config.accountsFile);
}

/** The X adapter with OAuth 2.0 refresh coordinated through Redis. */
export function xPortFor(config: Config, credentials: CredentialStore, redis: Redis, ledger: Ledger, logger?: Logger): TwitterXPort {
  const refresher = new TokenRefresher({ redis, keys: ledger.keys, credentials, baseUrl: config.xApiBaseUrl, timeoutMs: config.xTimeoutMs, ...(logger && { logger }) });
  return new TwitterXPort({ credentials, baseUrl: config.xApiBaseUrl, timeoutMs: config.xTimeoutMs, refresher });
}

export type { Logger };
