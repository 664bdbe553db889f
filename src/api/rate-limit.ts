import type { RedisClient } from '../ledger/ledger.js';
import type { LedgerKeys } from '../ledger/keys.js';

/**
 * Per-token rate limit: a fixed window counted in Redis, so several API
 * processes share one budget per token. One round trip (INCR with the
 * window's expiry in a MULTI) per request.
 */
export interface RateLimiter {
  /** Count one request; `retryAfterMs` when the token is over its limit for this window. */
  take(tokenName: string): Promise<{ ok: true; remaining: number } | { ok: false; retryAfterMs: number }>;
  readonly limit: number;
  readonly windowMs: number;
}

export function redisRateLimiter(opts: { redis: RedisClient; keys: LedgerKeys; limit: number; windowMs: number; clock?: () => number }): RateLimiter {
  const { redis, keys, limit, windowMs } = opts;
  const clock = opts.clock ?? Date.now;
  return {
    limit,
    windowMs,
    async take(tokenName) {
      const now = clock();
      const windowStart = now - (now % windowMs);
      const key = keys.apiRate(tokenName, windowStart);
      const replies = await redis
        .multi()
        .incr(key)
        .pexpire(key, windowMs * 2)
        .exec();
      const [err, count] = replies?.[0] ?? [new Error('no reply')];
      if (err) throw err;
      const n = Number(count);
      if (n <= limit) return { ok: true, remaining: limit - n };
      return { ok: false, retryAfterMs: windowStart + windowMs - now };
    },
  };
}
