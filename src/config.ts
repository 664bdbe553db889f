import { z } from 'zod';
import { CLAIM_DURABILITY_MODES, type ClaimDurabilitySettings } from './ledger/durability.js';
import type { BudgetPolicy } from './domain/budget.js';
import { EVENT_TYPES } from './domain/webhook.js';
import { MAX_BYTES } from './domain/media.js';

/**
 * Runtime configuration, parsed once from the environment. A bad value fails
 * at start with the variable's name and the value it had; nothing falls back
 * silently.
 */
export interface Config {
  readonly redisUrl: string;
  /** Redis Cluster seed nodes (host:port); when set, xactly speaks Cluster and REDIS_URL only lends its credentials. */
  readonly redisClusterNodes: readonly { host: string; port: number }[] | undefined;
  /** Redis Sentinel (REDIS_SENTINELS): every process finds the primary through it; REDIS_URL then lends only its credentials. */
  readonly redisSentinel: SentinelConfig | undefined;
  /** Where a claim must be durable before X is called (XACTLY_CLAIM_DURABILITY, ledger/durability.ts). */
  readonly claimDurability: ClaimDurabilitySettings;
  /** Namespace for every Redis key (ledger and BullMQ); hash-tagged for Cluster. */
  readonly prefix: string;
  readonly xApiBaseUrl: string;
  readonly xTimeoutMs: number;
  readonly accountsFile: string | undefined;
  readonly logLevel: string;
  readonly boardPort: number;
  readonly boardUser: string | undefined;
  readonly boardPassword: string | undefined;
  /** Interface the board listens on; 0.0.0.0 in a container. */
  readonly boardHost: string;
  /** Bull Board without retry/remove/clean buttons. */
  readonly boardReadOnly: boolean;
  /** Serve /metrics without credentials (for scrapers on a private network). */
  readonly boardMetricsOpen: boolean;
  /** `pretty` for humans in development (needs the pino-pretty dev dependency). */
  readonly logFormat: 'json' | 'pretty';
  /** Default deadline = scheduledAt + this, when a request names none. */
  readonly deadlineWindowMs: number;
  /** How long ledger records are kept after their last change. */
  readonly retentionMs: number;
  /** How long outcome events stay in the `{prefix}:events` stream. */
  readonly eventsRetentionMs: number;
  readonly workerConcurrency: number;
  /** Wait after an ambiguous attempt before "not on the timeline" counts as proof. */
  readonly settleWindowMs: number;
  readonly reconcileIntervalMs: number;
  /** Wall time one reconciliation pass may spend on lookups; the rest waits for the next pass. */
  readonly reconcileBudgetMs: number;
  /** Past the deadline, how long failing lookups may go on before a key fails as unresolved. */
  readonly unresolvedGraceMs: number;
  /** Publishing budgets shared by every worker (accounts may override post/dm). */
  readonly budget: BudgetPolicy;
  /** Webhook delivery (`xactly worker`, `xactly webhooks`); undefined when XACTLY_WEBHOOK_URLS is unset. */
  readonly webhooks: WebhookConfig | undefined;
  /** The HTTP API (`xactly api`): where it listens, its tokens file, its limits. */
  readonly api: ApiConfig;
  /** Media uploads in the publish worker: the per-account cap, its wait, URL fetch limits. */
  readonly media: MediaConfig;
}

export interface MediaConfig {
  /** Uploads in flight at once per account and worker process; a job over it steps aside without a claim. */
  readonly uploadsPerAccount: number;
  /** How long a job that stepped aside waits before it tries again. */
  readonly waitMs: number;
  /** Time limit of a URL medium's fetch, headers to last byte. */
  readonly fetchTimeoutMs: number;
  /** Past this many bytes a URL medium's fetch is cut (at most X's largest, a 512 MB video). */
  readonly fetchMaxBytes: number;
}

export interface SentinelConfig {
  readonly sentinels: readonly { host: string; port: number }[];
  /** The master name the Sentinels watch (REDIS_SENTINEL_NAME, default mymaster). */
  readonly name: string;
  /** REDIS_SENTINEL_PASSWORD: the Sentinels' own password (not enumerable: never printed with the config). */
  readonly password?: string;
}

export interface ApiConfig {
  readonly port: number;
  /** Interface it listens on; 0.0.0.0 in a container. */
  readonly host: string;
  /** JSON {"tokens":[{"name","sha256","accounts"?}]}; required by `xactly api`. */
  readonly tokensFile: string | undefined;
  /** Largest request body; a larger one is answered 413. */
  readonly bodyLimitBytes: number;
  /** Most requests in one POST /v1/posts array; more is answered 413. */
  readonly maxBatch: number;
  /** Requests one token may make per window (across every API process: the count is in Redis); over it, 429 with Retry-After. */
  readonly rateLimit: number;
  readonly rateWindowMs: number;
}

export interface WebhookConfig {
  readonly urls: readonly string[];
  /** HMAC-SHA256 key of the X-Xactly-Signature header; not enumerable, so a logged or printed config never shows it. */
  readonly secret: string;
  /** Event types to deliver (undefined: all). */
  readonly events: readonly string[] | undefined;
  /** Accounts whose events to deliver (undefined: all); the app's own events always go. */
  readonly accounts: readonly string[] | undefined;
  /** Tries per event and URL (the first included) before it goes to the URL's dead-letter list. */
  readonly maxTries: number;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  /** Longest one POST may take (connect, answer, body). */
  readonly timeoutMs: number;
  /** POSTs in flight at once per URL and process. */
  readonly concurrency: number;
}

const positiveInt = z
  .string()
  .trim()
  .regex(/^\d+$/, 'must be a positive integer')
  .transform(Number)
  .refine((n) => Number.isSafeInteger(n) && n > 0, 'must be a positive integer');

const url = (protocols: string[]) =>
  z
    .string()
    .trim()
    .refine(
      (s) => {
        try {
          return protocols.includes(new URL(s).protocol);
        } catch {
          return false;
        }
      },
      `must be a URL (${protocols.join(' or ')})`,
    );

const hostPorts = z
  .string()
  .trim()
  .regex(/^[A-Za-z0-9.-]+:\d{1,5}(,[A-Za-z0-9.-]+:\d{1,5})*$/, 'must be a comma-separated list of host:port')
  .transform((list) => list.split(',').map((hp) => ({ host: hp.slice(0, hp.lastIndexOf(':')), port: Number(hp.slice(hp.lastIndexOf(':') + 1)) })));

const bool = z.enum(['true', 'false'], { error: 'must be true or false' }).transform((v) => v === 'true');

const logLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

const schema = z.object({
  REDIS_URL: url(['redis:', 'rediss:']).default('redis://127.0.0.1:6379'),
  REDIS_CLUSTER_NODES: hostPorts.optional(),
  REDIS_SENTINELS: hostPorts.optional(),
  REDIS_SENTINEL_NAME: z.string().min(1).default('mymaster'),
  REDIS_SENTINEL_PASSWORD: z.string().min(1).optional(),
  XACTLY_CLAIM_DURABILITY: z.enum(CLAIM_DURABILITY_MODES, { error: `must be one of ${CLAIM_DURABILITY_MODES.join(', ')}` }).default('local'),
  XACTLY_CLAIM_REPLICAS: positiveInt.default(1),
  XACTLY_CLAIM_WAIT_MS: positiveInt.default(1_000),
  XACTLY_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_.{}-]+$/, 'must be letters, digits, _ . - (optionally one {hash tag})')
    .default('xactly'),
  X_API_BASE_URL: url(['http:', 'https:']).default('https://api.x.com'),
  X_TIMEOUT_MS: positiveInt.default(10_000),
  XACTLY_ACCOUNTS_FILE: z.string().min(1).optional(),
  LOG_LEVEL: logLevel.default('info'),
  BOARD_PORT: positiveInt.refine((n) => n < 65536, 'must be a TCP port').default(3000),
  BOARD_USER: z.string().min(1).optional(),
  BOARD_PASSWORD: z.string().min(1).optional(),
  BOARD_HOST: z.string().min(1).default('127.0.0.1'),
  BOARD_READ_ONLY: bool.default(true),
  BOARD_METRICS_OPEN: bool.default(false),
  LOG_FORMAT: z.enum(['json', 'pretty'], { error: 'must be json or pretty' }).default('json'),
  XACTLY_DEADLINE_WINDOW_MS: positiveInt.default(15 * 60_000),
  XACTLY_RETENTION_DAYS: positiveInt.default(30),
  XACTLY_EVENTS_RETENTION_HOURS: positiveInt.default(7 * 24),
  XACTLY_CONCURRENCY: positiveInt.default(20),
  XACTLY_SETTLE_WINDOW_MS: positiveInt.default(60_000),
  XACTLY_RECONCILE_INTERVAL_MS: positiveInt.default(30_000),
  XACTLY_RECONCILE_BUDGET_MS: positiveInt.default(20_000),
  XACTLY_UNRESOLVED_GRACE_MS: positiveInt.default(15 * 60_000),
  XACTLY_POST_LIMIT: positiveInt.default(100),
  XACTLY_DM_LIMIT: positiveInt.default(200),
  XACTLY_LIMIT_WINDOW_MS: positiveInt.default(15 * 60_000),
  API_PORT: positiveInt.refine((n) => n < 65536, 'must be a TCP port').default(3001),
  API_HOST: z.string().min(1).default('127.0.0.1'),
  XACTLY_API_TOKENS_FILE: z.string().min(1).optional(),
  API_BODY_LIMIT_BYTES: positiveInt.default(1_048_576),
  API_MAX_BATCH: positiveInt.default(1_000),
  API_RATE_LIMIT: positiveInt.default(600),
  API_RATE_WINDOW_MS: positiveInt.default(60_000),
  XACTLY_WEBHOOK_URLS: z
    .string()
    .trim()
    .transform((list) => list.split(',').map((u) => u.trim()))
    .refine((urls) => urls.every((u) => URL.canParse(u) && ['http:', 'https:'].includes(new URL(u).protocol)), 'must be a comma-separated list of http(s) URLs')
    .refine((urls) => new Set(urls).size === urls.length, 'lists a URL twice')
    .optional(),
  XACTLY_WEBHOOK_SECRET: z.string().min(16, 'must be at least 16 characters').optional(),
  XACTLY_WEBHOOK_EVENTS: z
    .string()
    .trim()
    .transform((list) => list.split(',').map((t) => t.trim()))
    .refine((types) => types.every((t) => (EVENT_TYPES as readonly string[]).includes(t)), `must be a comma-separated list of ${EVENT_TYPES.join(', ')}`)
    .optional(),
  XACTLY_WEBHOOK_ACCOUNTS: z
    .string()
    .trim()
    .regex(/^[^,\s]+(\s*,\s*[^,\s]+)*$/, 'must be a comma-separated list of account ids')
    .transform((list) => list.split(',').map((a) => a.trim()))
    .optional(),
  XACTLY_WEBHOOK_MAX_TRIES: positiveInt.default(15),
  XACTLY_WEBHOOK_BACKOFF_BASE_MS: positiveInt.default(1_000),
  XACTLY_WEBHOOK_BACKOFF_MAX_MS: positiveInt.default(15 * 60_000),
  XACTLY_WEBHOOK_TIMEOUT_MS: positiveInt.default(10_000),
  XACTLY_WEBHOOK_CONCURRENCY: positiveInt.default(4),
  XACTLY_MEDIA_UPLOADS_PER_ACCOUNT: positiveInt.default(1),
  XACTLY_MEDIA_WAIT_MS: positiveInt.default(1_000),
  XACTLY_MEDIA_FETCH_TIMEOUT_MS: positiveInt.default(60_000),
  XACTLY_MEDIA_FETCH_MAX_BYTES: positiveInt
    .refine((n) => n <= MAX_BYTES.video, `must be at most ${MAX_BYTES.video} (X's largest medium, a 512 MB video)`)
    .default(MAX_BYTES.video),
  XACTLY_APP_DAILY_LIMIT: z.string().trim().regex(/^\d+$/, 'must be a whole number (0 = no cap)').transform(Number).default(10_000),
});

export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  override name = 'ConfigError';
}

/** Secrets are never echoed back in an error message. */
const SECRET_VARS = new Set(['BOARD_PASSWORD', 'REDIS_URL', 'REDIS_SENTINEL_PASSWORD', 'XACTLY_WEBHOOK_SECRET', 'XACTLY_WEBHOOK_URLS']);

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // Empty strings mean "unset", as in most shells' `VAR= cmd`.
  const raw = Object.fromEntries(Object.keys(schema.shape).map((k) => [k, env[k] === '' ? undefined : env[k]]));
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => {
      const name = String(issue.path[0]);
      const got = SECRET_VARS.has(name) ? '(hidden)' : JSON.stringify(raw[name]);
      return `${name} ${issue.message} (got ${got})`;
    });
    throw new ConfigError(lines.join('; '));
  }
  const e = parsed.data;
  if (e.XACTLY_SETTLE_WINDOW_MS <= e.X_TIMEOUT_MS) {
    throw new ConfigError(`XACTLY_SETTLE_WINDOW_MS must be longer than X_TIMEOUT_MS (got ${e.XACTLY_SETTLE_WINDOW_MS} <= ${e.X_TIMEOUT_MS})`);
  }
  if (e.REDIS_SENTINELS && e.REDIS_CLUSTER_NODES)
    throw new ConfigError('REDIS_SENTINELS and REDIS_CLUSTER_NODES cannot both be set: Sentinel watches one primary, a Cluster has its own failover');
  if (e.XACTLY_WEBHOOK_URLS && !e.XACTLY_WEBHOOK_SECRET) {
    throw new ConfigError('XACTLY_WEBHOOK_SECRET is required when XACTLY_WEBHOOK_URLS is set (at least 16 characters; receivers check the signature with it)');
  }
  if (e.XACTLY_WEBHOOK_BACKOFF_MAX_MS < e.XACTLY_WEBHOOK_BACKOFF_BASE_MS) {
    throw new ConfigError(
      `XACTLY_WEBHOOK_BACKOFF_MAX_MS must be at least XACTLY_WEBHOOK_BACKOFF_BASE_MS (got ${e.XACTLY_WEBHOOK_BACKOFF_MAX_MS} < ${e.XACTLY_WEBHOOK_BACKOFF_BASE_MS})`,
    );
  }
  if (e.XACTLY_MEDIA_UPLOADS_PER_ACCOUNT > 1 && e.XACTLY_MEDIA_UPLOADS_PER_ACCOUNT >= e.XACTLY_CONCURRENCY) {
    throw new ConfigError(
      `XACTLY_MEDIA_UPLOADS_PER_ACCOUNT must be less than XACTLY_CONCURRENCY, or one account's uploads can take every worker slot (got ${e.XACTLY_MEDIA_UPLOADS_PER_ACCOUNT} >= ${e.XACTLY_CONCURRENCY})`,
    );
  }
  const webhooks: WebhookConfig | undefined = e.XACTLY_WEBHOOK_URLS
    ? Object.freeze(
        Object.defineProperty(
          {
            urls: Object.freeze(e.XACTLY_WEBHOOK_URLS),
            events: e.XACTLY_WEBHOOK_EVENTS && Object.freeze(e.XACTLY_WEBHOOK_EVENTS),
            accounts: e.XACTLY_WEBHOOK_ACCOUNTS && Object.freeze(e.XACTLY_WEBHOOK_ACCOUNTS),
            maxTries: e.XACTLY_WEBHOOK_MAX_TRIES,
            backoffBaseMs: e.XACTLY_WEBHOOK_BACKOFF_BASE_MS,
            backoffMaxMs: e.XACTLY_WEBHOOK_BACKOFF_MAX_MS,
            timeoutMs: e.XACTLY_WEBHOOK_TIMEOUT_MS,
            concurrency: e.XACTLY_WEBHOOK_CONCURRENCY,
          },
          'secret',
          { value: e.XACTLY_WEBHOOK_SECRET!, enumerable: false },
        ) as WebhookConfig,
      )
    : undefined;
  return Object.freeze({
    webhooks,
    redisUrl: e.REDIS_URL,
    redisClusterNodes: e.REDIS_CLUSTER_NODES,
    redisSentinel: e.REDIS_SENTINELS
      ? Object.freeze(
          Object.defineProperty({ sentinels: Object.freeze(e.REDIS_SENTINELS), name: e.REDIS_SENTINEL_NAME }, 'password', {
            value: e.REDIS_SENTINEL_PASSWORD,
            enumerable: false,
          }) as SentinelConfig,
        )
      : undefined,
    claimDurability: Object.freeze({ mode: e.XACTLY_CLAIM_DURABILITY, replicas: e.XACTLY_CLAIM_REPLICAS, timeoutMs: e.XACTLY_CLAIM_WAIT_MS }),
    prefix: e.XACTLY_PREFIX,
    xApiBaseUrl: e.X_API_BASE_URL.replace(/\/+$/, ''),
    xTimeoutMs: e.X_TIMEOUT_MS,
    accountsFile: e.XACTLY_ACCOUNTS_FILE,
    logLevel: e.LOG_LEVEL,
    boardPort: e.BOARD_PORT,
    boardUser: e.BOARD_USER,
    boardPassword: e.BOARD_PASSWORD,
    boardHost: e.BOARD_HOST,
    boardReadOnly: e.BOARD_READ_ONLY,
    boardMetricsOpen: e.BOARD_METRICS_OPEN,
    logFormat: e.LOG_FORMAT,
    deadlineWindowMs: e.XACTLY_DEADLINE_WINDOW_MS,
    retentionMs: e.XACTLY_RETENTION_DAYS * 24 * 3_600_000,
    eventsRetentionMs: e.XACTLY_EVENTS_RETENTION_HOURS * 3_600_000,
    workerConcurrency: e.XACTLY_CONCURRENCY,
    settleWindowMs: e.XACTLY_SETTLE_WINDOW_MS,
    reconcileIntervalMs: e.XACTLY_RECONCILE_INTERVAL_MS,
    reconcileBudgetMs: e.XACTLY_RECONCILE_BUDGET_MS,
    unresolvedGraceMs: e.XACTLY_UNRESOLVED_GRACE_MS,
    budget: Object.freeze({ post: e.XACTLY_POST_LIMIT, dm: e.XACTLY_DM_LIMIT, windowMs: e.XACTLY_LIMIT_WINDOW_MS, appDaily: e.XACTLY_APP_DAILY_LIMIT }),
    media: Object.freeze({
      uploadsPerAccount: e.XACTLY_MEDIA_UPLOADS_PER_ACCOUNT,
      waitMs: e.XACTLY_MEDIA_WAIT_MS,
      fetchTimeoutMs: e.XACTLY_MEDIA_FETCH_TIMEOUT_MS,
      fetchMaxBytes: e.XACTLY_MEDIA_FETCH_MAX_BYTES,
    }),
    api: Object.freeze({
      port: e.API_PORT,
      host: e.API_HOST,
      tokensFile: e.XACTLY_API_TOKENS_FILE,
      bodyLimitBytes: e.API_BODY_LIMIT_BYTES,
      maxBatch: e.API_MAX_BATCH,
      rateLimit: e.API_RATE_LIMIT,
      rateWindowMs: e.API_RATE_WINDOW_MS,
    }),
  });
}
