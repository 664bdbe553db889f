import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';

describe('loadConfig', () => {
  it('is fully defaulted and frozen', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      redisUrl: 'redis://127.0.0.1:6379',
      prefix: 'xactly',
      xApiBaseUrl: 'https://api.x.com',
      xTimeoutMs: 10_000,
      boardPort: 3000,
      deadlineWindowMs: 900_000,
      retentionMs: 30 * 86_400_000,
      settleWindowMs: 60_000,
      reconcileIntervalMs: 30_000,
    });
    expect(Object.isFrozen(c)).toBe(true);
  });

  it.each([
    [{ X_TIMEOUT_MS: 'abc' }, 'X_TIMEOUT_MS must be a positive integer (got "abc")'],
    [{ X_TIMEOUT_MS: '0' }, 'X_TIMEOUT_MS must be a positive integer (got "0")'],
    [{ BOARD_PORT: '70000' }, 'BOARD_PORT must be a TCP port (got "70000")'],
    [{ X_API_BASE_URL: 'ftp://x' }, 'X_API_BASE_URL must be a URL (http: or https:) (got "ftp://x")'],
    [{ REDIS_URL: 'localhost:6379' }, 'REDIS_URL must be a URL (redis: or rediss:) (got (hidden))'],
    [{ XACTLY_PREFIX: 'a:b' }, 'XACTLY_PREFIX must be letters'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
    [{ XACTLY_SETTLE_WINDOW_MS: '5000', X_TIMEOUT_MS: '10000' }, 'XACTLY_SETTLE_WINDOW_MS must be longer than X_TIMEOUT_MS'],
    [{ XACTLY_MEDIA_UPLOADS_PER_ACCOUNT: '0' }, 'XACTLY_MEDIA_UPLOADS_PER_ACCOUNT must be a positive integer (got "0")'],
    [{ XACTLY_MEDIA_WAIT_MS: '1s' }, 'XACTLY_MEDIA_WAIT_MS must be a positive integer (got "1s")'],
    [{ XACTLY_MEDIA_FETCH_TIMEOUT_MS: '-5' }, 'XACTLY_MEDIA_FETCH_TIMEOUT_MS must be a positive integer (got "-5")'],
    [{ XACTLY_MEDIA_FETCH_MAX_BYTES: '600000000' }, 'XACTLY_MEDIA_FETCH_MAX_BYTES must be at most 536870912'],
    [{ XACTLY_MEDIA_UPLOADS_PER_ACCOUNT: '4', XACTLY_CONCURRENCY: '4' }, 'XACTLY_MEDIA_UPLOADS_PER_ACCOUNT must be less than XACTLY_CONCURRENCY'],
  ])('fails fast on %j naming the variable and value', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });

  it('media settings: defaulted (one upload per account, 1 s aside, 60 s and 512 MB per URL fetch), frozen, read from the environment', () => {
    const d = loadConfig({}).media;
    expect(d).toEqual({ uploadsPerAccount: 1, waitMs: 1_000, fetchTimeoutMs: 60_000, fetchMaxBytes: 512 * 1024 * 1024 });
    expect(Object.isFrozen(d)).toBe(true);
    expect(
      loadConfig({
        XACTLY_MEDIA_UPLOADS_PER_ACCOUNT: '3',
        XACTLY_MEDIA_WAIT_MS: '250',
        XACTLY_MEDIA_FETCH_TIMEOUT_MS: '5000',
        XACTLY_MEDIA_FETCH_MAX_BYTES: '1048576',
      }).media,
    ).toEqual({ uploadsPerAccount: 3, waitMs: 250, fetchTimeoutMs: 5_000, fetchMaxBytes: 1_048_576 });
    // One upload at a time is allowed whatever the concurrency (that single slot uploads).
    expect(loadConfig({ XACTLY_CONCURRENCY: '1' }).media.uploadsPerAccount).toBe(1);
  });

  it('never echoes a password', () => {
    try {
      loadConfig({ BOARD_PASSWORD: 'hunter2', REDIS_URL: 'nope://user:hunter2@x' });
      expect.unreachable();
    } catch (err) {
      expect(String(err)).not.toContain('hunter2');
    }
  });

  it('treats empty strings as unset', () => {
    expect(loadConfig({ X_TIMEOUT_MS: '', LOG_LEVEL: '' })).toMatchObject({ xTimeoutMs: 10_000, logLevel: 'info' });
  });
});
