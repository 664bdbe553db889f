/**
 * Accounts in tests and benchmarks: the two named ones (acme, oauth1;
 * globex, oauth2) with secrets a test can look for in logs, numbered ones
 * (`acc-0`, `acc-1`, ...) for load, and the one mapping from an xactly
 * account to the fake X account that authenticates it (`fakeAccountOf`,
 * shared with the demo).
 */
import type { Account } from '../../src/x/credentials.js';
import { fakeAccountOf } from '../../src/ops/ground-truth.js';

export { type AccountLike, fakeAccountOf } from '../../src/ops/ground-truth.js';

/** An account as a test makes it up: an id, X's user id, one access token. */
export interface TestAccount {
  readonly id: string;
  readonly userId: string;
  readonly token: string;
}

/**
 * `n` accounts `${prefix}-0` … with user ids from `userIdBase` and tokens
 * `${PREFIX}-i-TOKEN` (or `token(i)`).
 */
export function numberedAccounts(n: number, opts: { prefix?: string; userIdBase: number; token?: (i: number) => string }): TestAccount[] {
  const prefix = opts.prefix ?? 'acc';
  return Array.from({ length: n }, (_, i) => ({
    id: `${prefix}-${i}`,
    userId: String(opts.userIdBase + i),
    token: opts.token?.(i) ?? `${prefix.toUpperCase()}-${i}-TOKEN`,
  }));
}

/** The xactly account (accounts file, credential store) of a test account: OAuth 2.0 bearer, or OAuth 1.0a with the app's keys. */
export function accountOf(a: TestAccount, oauth1?: { appKey: string; appSecret: string; accessSecret: string }): Account {
  return {
    id: a.id,
    userId: a.userId,
    auth: oauth1
      ? { type: 'oauth1', appKey: oauth1.appKey, appSecret: oauth1.appSecret, accessToken: a.token, accessSecret: oauth1.accessSecret }
      : { type: 'oauth2', accessToken: a.token },
  };
}

export const SECRETS = {
  appKey: 'APPKEY-s3cr3t-aaa',
  appSecret: 'APPSECRET-s3cr3t-bbb',
  acmeToken: 'ACME-ACCESS-s3cr3t-ccc',
  accessSecret: 'ACCESSSECRET-s3cr3t-ddd',
  globexToken: 'GLOBEX-BEARER-s3cr3t-eee',
};

export const ACCOUNTS: Account[] = [
  {
    id: 'acme',
    userId: '1001',
    auth: { type: 'oauth1', appKey: SECRETS.appKey, appSecret: SECRETS.appSecret, accessToken: SECRETS.acmeToken, accessSecret: SECRETS.accessSecret },
  },
  { id: 'globex', userId: '1002', auth: { type: 'oauth2', accessToken: SECRETS.globexToken } },
];

/** A user who is not an xactly account: replies go to their posts, DMs to them. */
export const FAN: TestAccount = { id: 'fan', userId: '2001', token: 'FAN-TOKEN' };

/** The fake X's users: acme (a Premium account on X: long posts up to 25,000), globex and the fan (X's 280). */
export const FAKE_ACCOUNTS = [...ACCOUNTS.map((a) => ({ ...fakeAccountOf(a), ...(a.id === 'acme' && { textLength: 25_000 }) })), fakeAccountOf(FAN)];
