/**
 * The users the fake knows: who each is (id, @handle) and which access
 * tokens authenticate as them. It holds its own copies of the accounts it
 * was given, because token refreshes add tokens and rotate refresh tokens.
 */
import { isNumericId } from './lookup.js';

export interface FakeAccount {
  userId: string;
  username: string;
  /** OAuth 1.0a access tokens or OAuth 2.0 bearer tokens that authenticate as this user. */
  tokens: string[];
  /** OAuth 2.0 refresh token that POST /2/oauth2/token accepts for this user (rotated on use). */
  refreshToken?: string;
  /** When the account's `tokens` expire (ms); unset = never. */
  tokensExpireAt?: number;
  /**
   * The longest post X lets this user publish, in weighted characters:
   * 280 (X's default), up to 25,000 for a Premium account's long posts.
   */
  textLength?: number;
}

/** What X allows an account without Premium. */
export const DEFAULT_TEXT_LENGTH = 280;

export class Accounts {
  /** In the order given. */
  readonly all: readonly FakeAccount[];
  private readonly byId = new Map<string, FakeAccount>();
  private readonly byToken = new Map<string, FakeAccount>();

  /** Throws on a non-numeric or repeated user id, or a token shared by two accounts. */
  constructor(accounts: readonly FakeAccount[]) {
    this.all = accounts.map((a) => ({ ...a, tokens: [...a.tokens] }));
    for (const a of this.all) {
      if (!isNumericId(a.userId)) throw new Error(`account userId must be numeric: ${a.userId}`);
      if (this.byId.has(a.userId)) throw new Error(`duplicate account userId: ${a.userId}`);
      this.byId.set(a.userId, a);
      for (const t of a.tokens) {
        if (this.byToken.has(t)) throw new Error(`token used by two accounts: ${t}`);
        this.byToken.set(t, a);
      }
    }
  }

  get(userId: string): FakeAccount | undefined {
    return this.byId.get(userId);
  }

  /** Whose token this is, expired or not (expiry is the auth's business). */
  withToken(token: string): FakeAccount | undefined {
    return this.byToken.get(token);
  }

  addToken(owner: FakeAccount, token: string): void {
    this.byToken.set(token, owner);
    owner.tokens.push(token);
  }
}
