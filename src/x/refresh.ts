import { createHash, randomUUID } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { Redis, Cluster } from 'ioredis';
import { ApiRequestError, ApiResponseError, TwitterApi } from 'twitter-api-v2';
import { AccountAuthError, XDeadlineError } from '../domain/outcome.js';
import type { LedgerKeys } from '../ledger/keys.js';
import { releaseLock } from '../ledger/ledger.js';
import type { Logger } from '../log.js';
import type { Account, CredentialStore } from './credentials.js';
import { deadlineFor, withDeadline } from './deadline.js';
import { baseUrlPlugin } from './plugin.js';

/** Refreshing failed for now (network, 5xx, lock wait): try again later. */
export class RefreshUnavailableError extends Error {
  override name = 'RefreshUnavailableError';
  readonly code = 'REFRESH_UNAVAILABLE';
  constructor(
    readonly accountId: string,
    override readonly cause: string,
  ) {
    super(`account ${accountId}: token refresh unavailable (${cause})`);
  }
}

export interface TokenRefresherOptions {
  readonly redis: Redis | Cluster;
  readonly keys: LedgerKeys;
  readonly credentials: CredentialStore;
  readonly baseUrl: string;
  readonly timeoutMs: number;
  readonly logger?: Logger;
  readonly clock?: () => number;
  /** How long one refresh may hold the account's lock. */
  readonly lockMs?: number;
  /** How long a process waits for another one's refresh to show up in its store. */
  readonly waitMs?: number;
  /** Refresh this long before the token's recorded expiry. */
  readonly marginMs?: number;
}

const fingerprint = (token: string) => createHash('sha256').update(token).digest('base64url').slice(0, 16);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * OAuth 2.0 user tokens expire (2 h on X) and their refresh tokens rotate on
 * use, so a refresh must happen once per account across every process: a
 * Redis lock elects the refresher, the store persists the new tokens, and a
 * marker (a hash of the replaced token, never a token) tells other processes
 * to wait for their store rather than spend the old refresh token.
 */
export class TokenRefresher {
  private readonly clock: () => number;
  private readonly agent: http.Agent;

  constructor(private readonly opts: TokenRefresherOptions) {
    this.clock = opts.clock ?? Date.now;
    this.agent = opts.baseUrl.startsWith('http:') ? new http.Agent() : new https.Agent();
  }

  /** True when the account's token should be refreshed before use. */
  due(account: Account): boolean {
    const a = account.auth;
    return a.type === 'oauth2' && !!a.refreshToken && a.expiresAt !== undefined && a.expiresAt - (this.opts.marginMs ?? 60_000) <= this.clock();
  }

  canRefresh(account: Account): boolean {
    return account.auth.type === 'oauth2' && !!account.auth.refreshToken && !!account.auth.clientId;
  }

  /** Make sure a token newer than `stale` exists and return the account holding it. */
  async renew(accountId: string, stale: string): Promise<Account> {
    const { redis, keys, credentials } = this.opts;
    const until = this.clock() + (this.opts.waitMs ?? 30_000);
    const lockKey = keys.refreshLock(accountId);
    const markerKey = keys.refreshed(accountId);
    const staleId = fingerprint(stale);
    for (;;) {
      const current = await credentials.get(accountId);
      if (!current) throw new AccountAuthError(accountId, 'no credentials');
      if (current.auth.accessToken !== stale) return current;
      if (!this.canRefresh(current)) throw new AccountAuthError(accountId, 'access token refused and no refresh token or client id to renew it');
      const alreadyReplaced = (await redis.get(markerKey)) === staleId;
      const lock = randomUUID();
      if (!alreadyReplaced && (await redis.set(lockKey, lock, 'PX', this.opts.lockMs ?? 30_000, 'NX')) === 'OK') {
        try {
          // Re-check under the lock: another process may have just finished.
          if ((await redis.get(markerKey)) !== staleId) return await this.refresh(current, staleId);
        } finally {
          await releaseLock(redis, lockKey, lock);
        }
      }
      if (this.clock() > until) throw new RefreshUnavailableError(accountId, 'timed out waiting for another process to refresh the token');
      await sleep(100);
    }
  }

  private async refresh(account: Account, staleId: string): Promise<Account> {
    const auth = account.auth;
    if (auth.type !== 'oauth2' || !auth.refreshToken || !auth.clientId) throw new AccountAuthError(account.id, 'cannot refresh');
    if (!this.opts.credentials.update) throw new AccountAuthError(account.id, 'the credential store cannot persist refreshed tokens');
    const client = new TwitterApi(
      { clientId: auth.clientId, ...(auth.clientSecret && { clientSecret: auth.clientSecret }) },
      { httpAgent: this.agent, plugins: [baseUrlPlugin(this.opts.baseUrl, this.opts.timeoutMs)] },
    );
    let result;
    try {
      result = await withDeadline(deadlineFor(this.opts.timeoutMs), 'token refresh', () => client.refreshOAuth2Token(auth.refreshToken!));
    } catch (err) {
      if (err instanceof ApiResponseError && err.code >= 400 && err.code < 500 && err.code !== 429) {
        throw new AccountAuthError(account.id, `token refresh refused by X (http-${err.code})`);
      }
      const cause =
        err instanceof ApiResponseError
          ? `http-${err.code}`
          : err instanceof ApiRequestError
            ? 'request-error'
            : err instanceof XDeadlineError
              ? `deadline-${err.ms}ms`
              : 'unexpected-error';
      throw new RefreshUnavailableError(account.id, cause);
    }
    const now = this.clock();
    const renewed: Account = {
      ...account,
      auth: {
        ...auth,
        accessToken: result.accessToken,
        ...(result.refreshToken && { refreshToken: result.refreshToken }),
        ...(result.expiresIn && { expiresAt: now + result.expiresIn * 1000 }),
      },
    };
    await this.opts.credentials.update(renewed);
    await this.opts.redis.set(this.opts.keys.refreshed(account.id), staleId, 'PX', 10 * 60_000);
    await this.opts.redis.hincrby(this.opts.keys.stats, 'token_refreshes', 1);
    this.opts.logger?.info({ accountId: account.id, expiresAt: renewed.auth.type === 'oauth2' ? renewed.auth.expiresAt : undefined }, 'access token refreshed');
    return renewed;
  }

  close(): void {
    this.agent.destroy();
  }
}
