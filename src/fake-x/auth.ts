/**
 * Who a request is, and for how long. OAuth 1.0a requests are known by
 * their `oauth_token` (the signature is not checked), OAuth 2.0 ones by the
 * bearer token. Access tokens may expire; POST /2/oauth2/token trades a
 * refresh token for a new access token and a new refresh token (the old one
 * is spent), as X does.
 */
import type { Accounts, FakeAccount } from './accounts.js';

/** OAuth 1.0a (signature not checked, only oauth_token) or OAuth 2.0 bearer. */
export function tokenFromAuthorization(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (bearer?.[1]) return bearer[1];
  if (!/^OAuth\s/i.test(header)) return undefined;
  const tok = /(?:^OAuth\s+|,)\s*oauth_token="([^"]*)"/i.exec(header);
  if (!tok?.[1]) return undefined;
  try {
    return decodeURIComponent(tok[1]);
  } catch {
    return undefined;
  }
}

/** A successful refresh: whose it was and the token endpoint's answer. */
export interface TokenGrant {
  owner: FakeAccount;
  response: { token_type: 'bearer'; expires_in: number; access_token: string; scope: string; refresh_token: string };
}

const GRANTED_SCOPE = 'tweet.read tweet.write users.read dm.read dm.write media.write offline.access';

/** Whether the header carries an OAuth 2.0 bearer token (scoped) rather than OAuth 1.0a (not scoped). */
export function isBearer(header: string | undefined): boolean {
  return /^Bearer\s/i.test(header ?? '');
}

export class Auth {
  private readonly expiry = new Map<string, number>();
  private readonly refreshTokens = new Map<string, FakeAccount>();
  private readonly refreshCounts: Record<string, number> = {};
  private issued = 0;
  /** Users whose OAuth 2.0 tokens were granted without `media.write`. */
  private readonly withoutMediaWrite = new Set<string>();

  constructor(
    private readonly accounts: Accounts,
    /** Lifetime of the access tokens a refresh issues. */
    private readonly tokenTtlMs: number,
  ) {
    for (const a of accounts.all) {
      if (a.tokensExpireAt !== undefined) for (const t of a.tokens) this.expiry.set(t, a.tokensExpireAt);
      if (a.refreshToken) this.refreshTokens.set(a.refreshToken, a);
    }
  }

  /** The account an `Authorization` header authenticates as at `now`, if any. */
  authenticate(authorization: string | undefined, now: number): FakeAccount | undefined {
    const token = tokenFromAuthorization(authorization);
    if (token === undefined) return undefined;
    const expiry = this.expiry.get(token);
    return expiry !== undefined && now >= expiry ? undefined : this.accounts.withToken(token);
  }

  /** POST /2/oauth2/token with `grant_type=refresh_token`; undefined = X's 400 `invalid_request`. */
  refresh(form: Record<string, string>, now: number): TokenGrant | undefined {
    const spent = form.grant_type === 'refresh_token' ? form.refresh_token : undefined;
    const owner = spent ? this.refreshTokens.get(spent) : undefined;
    if (!owner || !spent || !form.client_id) return undefined;
    this.refreshTokens.delete(spent);
    this.issued++;
    const accessToken = `fx-at-${owner.userId}-${this.issued}`;
    const nextRefresh = `fx-rt-${owner.userId}-${this.issued}`;
    this.accounts.addToken(owner, accessToken);
    this.expiry.set(accessToken, now + this.tokenTtlMs);
    this.refreshTokens.set(nextRefresh, owner);
    owner.refreshToken = nextRefresh;
    this.refreshCounts[owner.userId] = (this.refreshCounts[owner.userId] ?? 0) + 1;
    const response = {
      token_type: 'bearer' as const,
      expires_in: Math.floor(this.tokenTtlMs / 1000),
      access_token: accessToken,
      scope: this.withoutMediaWrite.has(owner.userId) ? GRANTED_SCOPE.replace(' media.write', '') : GRANTED_SCOPE,
      refresh_token: nextRefresh,
    };
    return { owner, response };
  }

  /**
   * Grant or withhold `media.write` on a user's OAuth 2.0 tokens (a token
   * issued before the app asked for the scope). OAuth 1.0a tokens have no
   * scopes: they may always upload.
   */
  setMediaWrite(userId: string, granted: boolean): void {
    if (granted) this.withoutMediaWrite.delete(userId);
    else this.withoutMediaWrite.add(userId);
  }

  /** May this request use the media endpoints (they need `media.write` under OAuth 2.0)? */
  mayWriteMedia(authorization: string | undefined, account: FakeAccount): boolean {
    return !isBearer(authorization) || !this.withoutMediaWrite.has(account.userId);
  }

  /** Expire every access token of a user now (as if their 2 h had passed). */
  expireTokens(userId: string): void {
    for (const t of this.accounts.get(userId)?.tokens ?? []) this.expiry.set(t, 0);
  }

  /** Access revoked (or account suspended): the tokens and the refresh token stop working. */
  revoke(userId: string): void {
    this.expireTokens(userId);
    const refreshToken = this.accounts.get(userId)?.refreshToken;
    if (refreshToken) this.refreshTokens.delete(refreshToken);
  }

  /** Successful refreshes per user id. */
  refreshes(): Record<string, number> {
    return { ...this.refreshCounts };
  }
}
