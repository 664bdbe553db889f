/**
 * A fake X API v2 over plain HTTP on loopback, driven by the real
 * twitter-api-v2 client (via a URL-rewriting plugin). It keeps the ground
 * truth of what was really created, so tests and chaos runs can check the
 * exactly-once promise against it, and it injects the failures that make
 * publishing ambiguous: lost responses, resets, 5xx, truncated 201s, 429s.
 */
import http from 'node:http';
import type { Socket } from 'node:net';
import { gzipSync } from 'node:zlib';

import { ALL_LOOKUP_FAULT_KINDS, FaultPlan, faultCommits, type FaultKind, type FaultMatch, type LookupFaultKind } from './faults.js';
import {
  BadRequest,
  DM_EVENT_FIELDS,
  POST_FIELDS,
  TWEET_FIELDS,
  checkKnownParams,
  decodePageToken,
  isNumericId,
  isoMs,
  paginate,
  parseFields,
  parseIdParam,
  parseMaxResults,
  parseTimeWindow,
} from './lookup.js';
import { renderBody, renderPost, tcoUrl, type RenderedBody, type RenderedPost, type UrlEntity } from './render.js';

export type { FaultKind, FaultMatch, LookupFaultKind } from './faults.js';
export { ALL_FAULT_KINDS, ALL_LOOKUP_FAULT_KINDS } from './faults.js';

export interface FakeAccount {
  userId: string;
  username: string;
  /** OAuth 1.0a access tokens or OAuth 2.0 bearer tokens that authenticate as this user. */
  tokens: string[];
  /** OAuth 2.0 refresh token that POST /2/oauth2/token accepts for this user (rotated on use). */
  refreshToken?: string;
  /** When the account's `tokens` expire (ms); unset = never. */
  tokensExpireAt?: number;
}

export interface FakeXOptions {
  accounts: FakeAccount[];
  port?: number;
  host?: string;
  /**
   * Listen beyond loopback (e.g. 0.0.0.0 inside a demo container). Off by
   * default: fault and load runs must only ever target this machine.
   */
  exposeBeyondLoopback?: boolean;
  timelineLagMs?: number;
  duplicateContentCheck?: boolean;
  faultRate?: number;
  faultKinds?: FaultKind[];
  /** Share of timeline and DM-event reads that fail (a cut gzip body, or no answer at all). */
  lookupFaultRate?: number;
  lookupFaultKinds?: LookupFaultKind[];
  /**
   * Answer gzip-compressed when the client asks for it, as X does (default
   * on). A cut body is then a cut gzip stream, which twitter-api-v2 never
   * finishes reading.
   */
  gzip?: boolean;
  seed?: number;
  rateLimitResetSec?: number;
  clock?: () => number;
  /** Lifetime of access tokens issued by POST /2/oauth2/token (default 2 h, as X). */
  tokenTtlMs?: number;
  /**
   * Self-serve tiers since 2026-02-23: a reply to another account's post is
   * refused (403) unless that post mentions the replying account.
   */
  replyRestriction?: boolean;
  /** User ids whose settings refuse DMs from the accounts (403 on a DM to them). */
  refusesDms?: string[];
  /** Creates (posts + DMs) per user per UTC day; past it a 429 with `x-user-limit-24hour-*` (default: no cap). */
  userDailyCap?: number;
  /** Creates per UTC day for the whole app; past it a 429 with `x-app-limit-24hour-*`. */
  appDailyCap?: number;
  /** Creates per UTC month for the app; past it a 429 `usage-capped` problem. */
  monthlyCap?: number;
  /**
   * Which names the timeline speaks: spec 2.159's (`tweet.fields`,
   * `note_tweet`, `referenced_tweets`, `edit_history_tweet_ids`; default) or
   * 2.167's (`post.fields`, `note_post`, `referenced_posts`,
   * `edit_history_post_ids`). The other names are then a 400.
   */
  fieldNames?: '2.159' | '2.167';
}

export interface CreatedItem {
  kind: 'post' | 'dm';
  id: string;
  authorId: string;
  /** As sent, before X's rewrites. */
  text: string;
  createdAt: number;
  inReplyToTweetId?: string;
  recipientId?: string;
  dmConversationId?: string;
  /** Ids of the versions an edit on X made (`editPost`); still this one post. */
  edits?: string[];
}

export interface RequestRecord {
  method: string;
  path: string;
  userId?: string;
  fault?: FaultKind | LookupFaultKind;
  status?: number;
}

export interface FakeX {
  url: string;
  port: number;
  created(): CreatedItem[];
  requests(): RequestRecord[];
  injectNext(fault: FaultKind, match?: FaultMatch): void;
  /** The next timeline / DM-event read (matching `match.path`) fails this way. */
  injectNextLookup(fault: LookupFaultKind, match?: FaultMatch): void;
  faultsInjected(): Record<string, number>;
  setTimelineLag(ms: number): void;
  setDuplicateContentCheck(on: boolean): void;
  setFaultRate(rate: number): void;
  /** Expire every access token of a user now (as if their 2 h had passed). */
  expireTokens(userId: string): void;
  /** Revoke a user's tokens and refresh token (access revoked, or account suspended). */
  revoke(userId: string): void;
  /** Successful token refreshes per user id. */
  refreshes(): Record<string, number>;
  /** Delete a post (a reply to it is then refused as "deleted or not visible"). */
  deletePost(id: string): void;
  /** Suspend a user: their creates are refused with X's suspended-account 403. */
  suspend(userId: string): void;
  /** X refuses the whole app (client-not-enrolled) until allowApp(). */
  forbidApp(): void;
  allowApp(): void;
  /**
   * Edit a post as its author would on X: a new version with a new id and
   * `edit_history_tweet_ids` (original first) replaces the old one on the
   * timeline. Ground truth (`created()`) still counts one post.
   */
  editPost(id: string, newText: string): { id: string; editHistoryIds: string[] };
  close(): Promise<void>;
}

interface StoredPost {
  item: CreatedItem;
  idBig: bigint;
  rendered: RenderedPost;
  conversationId: string;
  inReplyToUserId?: string;
  /** `edit_history_tweet_ids` when edited: the original id first, this version last. */
  editHistory?: string[];
  /** When a later version replaced this one on the timeline. */
  supersededAt?: number;
}

interface StoredDm {
  item: CreatedItem;
  idBig: bigint;
  rendered: RenderedBody;
  participants: [string, string];
}

const DAY_MS = 24 * 60 * 60 * 1000;
const RATE_WINDOW_MS = 15 * 60 * 1000;
const TIMELINE_REACH = 3200;
const MAX_BODY_BYTES = 1 << 20;
/** Twitter's snowflake epoch; ids embed their creation time like real ones. */
const SNOWFLAKE_EPOCH = 1288834974657n;

const DUPLICATE_DETAIL = 'You are not allowed to create a Tweet with duplicate content.';
// X's own words for the 403s that concern one post, one account or the app.
const RESTRICTED_REPLY_DETAIL = 'Reply to this conversation is not allowed because you have not been mentioned or otherwise engaged by the author of the post you are replying to.';
const DELETED_TARGET_DETAIL = 'You attempted to reply to a Tweet that is deleted or not visible to you.';
const DM_REFUSED_DETAIL = 'You cannot send messages to this user.';
const SUSPENDED_DETAIL = 'Your account is suspended and is not permitted to access this feature.';
const CLIENT_FORBIDDEN_TYPE = 'https://api.twitter.com/2/problems/client-forbidden';
const USAGE_CAPPED_TYPE = 'https://api.twitter.com/2/problems/usage-capped';
const INVALID_REQUEST_TYPE = 'https://api.twitter.com/2/problems/invalid-request';

type Route =
  | { name: 'token' }
  | { name: 'me' }
  | { name: 'createTweet' }
  | { name: 'timeline'; userId: string }
  | { name: 'sendDm'; participantId: string }
  | { name: 'dmEvents'; participantId: string };

/** Per-user limits X documents for these endpoints (only reported in headers; real 429s come from faults). */
const LIMITS: Record<Route['name'], number> = {
  token: 300,
  me: 75,
  createTweet: 100,
  timeline: 900,
  sendDm: 200,
  dmEvents: 300,
};

function matchRoute(method: string, path: string): Route | undefined {
  if (method === 'POST' && path === '/2/oauth2/token') return { name: 'token' };
  if (method === 'GET' && path === '/2/users/me') return { name: 'me' };
  if (method === 'POST' && path === '/2/tweets') return { name: 'createTweet' };
  let m = /^\/2\/users\/([^/]+)\/tweets$/.exec(path);
  if (method === 'GET' && m?.[1]) return { name: 'timeline', userId: decodeURIComponent(m[1]) };
  m = /^\/2\/dm_conversations\/with\/([^/]+)\/(messages|dm_events)$/.exec(path);
  if (m?.[1]) {
    const participantId = decodeURIComponent(m[1]);
    if (method === 'POST' && m[2] === 'messages') return { name: 'sendDm', participantId };
    if (method === 'GET' && m[2] === 'dm_events') return { name: 'dmEvents', participantId };
  }
  return undefined;
}

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

function isLoopbackV4(host: string): boolean {
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

class HttpProblem extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string,
    readonly type = 'about:blank',
    readonly errors?: { message: string; parameters?: Record<string, string[]> }[],
  ) {
    super(detail);
  }
}

function invalidRequest(message: string, parameter?: string): HttpProblem {
  const parameters = parameter ? { [parameter]: [] as string[] } : undefined;
  return new HttpProblem(400, 'Invalid Request', 'One or more parameters to your request was invalid.', INVALID_REQUEST_TYPE, [
    parameters ? { message, parameters } : { message },
  ]);
}

export async function startFakeX(opts: FakeXOptions): Promise<FakeX> {
  const host = opts.host ?? '127.0.0.1';
  // Chaos runs send real-looking traffic: never expose it beyond loopback.
  if (!isLoopbackV4(host) && !opts.exposeBeyondLoopback) throw new Error(`fake X only listens on 127.0.0.0/8, not ${host} (unless exposeBeyondLoopback is set)`);
  const clock = opts.clock ?? Date.now;
  const rateLimitResetSec = opts.rateLimitResetSec ?? 2;
  let timelineLagMs = opts.timelineLagMs ?? 0;
  let duplicateCheck = opts.duplicateContentCheck ?? true;
  const plan = new FaultPlan({ seed: opts.seed ?? 1, rate: opts.faultRate ?? 0, kinds: opts.faultKinds ?? [] });
  const lookupPlan = new FaultPlan<LookupFaultKind>({
    seed: (opts.seed ?? 1) + 7919, rate: opts.lookupFaultRate ?? 0, kinds: opts.lookupFaultKinds ?? [], all: ALL_LOOKUP_FAULT_KINDS,
  });
  const gzip = opts.gzip ?? true;
  const replyRestriction = opts.replyRestriction ?? false;
  const refusesDms = new Set(opts.refusesDms ?? []);
  const deleted = new Set<string>();
  const suspended = new Set<string>();
  let appForbidden = false;
  const clientForbidden = () => Object.assign(
    new HttpProblem(403, 'Client Forbidden', 'When authenticating requests to the Twitter API v2 endpoints, you must use keys and tokens from a Twitter developer App that is attached to a Project. You can create a project via the developer portal.', CLIENT_FORBIDDEN_TYPE),
    { extra: { reason: 'client-not-enrolled', registration_url: 'https://developer.twitter.com/en/docs/projects/overview', required_enrollment: 'Appropriate Level of API Access', client_id: '27431570' } },
  );

  // 24-hour caps (per UTC day here) and the monthly usage cap, on creates only.
  const daily = new Map<string, { day: number; used: number }>();
  const monthly = { month: -1, used: 0 };
  const spendCaps = (userId: string, now: number): { headers: Record<string, string>; refused?: HttpProblem } => {
    const day = Math.floor(now / DAY_MS);
    const dayReset = String((day + 1) * (DAY_MS / 1000));
    const count = (key: string) => {
      let c = daily.get(key);
      if (!c || c.day !== day) daily.set(key, (c = { day, used: 0 }));
      return c;
    };
    const user = count(`user:${userId}`);
    const app = count('app');
    const userLimit = opts.userDailyCap ?? 100_000;
    const appLimit = opts.appDailyCap ?? 1_000_000;
    const d = new Date(now);
    const month = d.getUTCFullYear() * 12 + d.getUTCMonth();
    if (monthly.month !== month) Object.assign(monthly, { month, used: 0 });
    const over = user.used >= userLimit || app.used >= appLimit || (opts.monthlyCap !== undefined && monthly.used >= opts.monthlyCap);
    if (!over) {
      user.used++;
      app.used++;
      monthly.used++;
    }
    const headers = {
      'x-user-limit-24hour-limit': String(userLimit), 'x-user-limit-24hour-remaining': String(Math.max(0, userLimit - user.used)), 'x-user-limit-24hour-reset': dayReset,
      'x-app-limit-24hour-limit': String(appLimit), 'x-app-limit-24hour-remaining': String(Math.max(0, appLimit - app.used)), 'x-app-limit-24hour-reset': dayReset,
    };
    if (!over) return { headers };
    if (opts.monthlyCap !== undefined && monthly.used >= opts.monthlyCap && user.used < userLimit && app.used < appLimit) {
      return { headers, refused: Object.assign(new HttpProblem(429, 'UsageCapExceeded', 'Usage cap exceeded: Monthly product cap', USAGE_CAPPED_TYPE), { extra: { period: 'Monthly', scope: 'Product' } }) };
    }
    return { headers, refused: new HttpProblem(429, 'Too Many Requests', 'Too Many Requests') };
  };

  // Our own copies: refreshes add tokens and rotate refresh tokens.
  const fakeAccounts = opts.accounts.map((a) => ({ ...a, tokens: [...a.tokens] }));
  const accountsById = new Map<string, FakeAccount>();
  const accountsByToken = new Map<string, FakeAccount>();
  for (const a of fakeAccounts) {
    if (!isNumericId(a.userId)) throw new Error(`account userId must be numeric: ${a.userId}`);
    if (accountsById.has(a.userId)) throw new Error(`duplicate account userId: ${a.userId}`);
    accountsById.set(a.userId, a);
    for (const t of a.tokens) {
      if (accountsByToken.has(t)) throw new Error(`token used by two accounts: ${t}`);
      accountsByToken.set(t, a);
    }
  }

  // OAuth 2.0: access tokens with an expiry, refresh tokens rotated on use.
  const tokenTtlMs = opts.tokenTtlMs ?? 2 * 3_600_000;
  const tokenExpiry = new Map<string, number>();
  const refreshTokens = new Map<string, FakeAccount>();
  const refreshCounts: Record<string, number> = {};
  let issued = 0;
  for (const a of fakeAccounts) {
    if (a.tokensExpireAt !== undefined) for (const t of a.tokens) tokenExpiry.set(t, a.tokensExpireAt);
    if (a.refreshToken) refreshTokens.set(a.refreshToken, a);
  }
  const tokenAccount = (token: string, now: number): FakeAccount | undefined => {
    const a = accountsByToken.get(token);
    if (!a) return undefined;
    const expiry = tokenExpiry.get(token);
    return expiry !== undefined && now >= expiry ? undefined : a;
  };

  const posts: StoredPost[] = [];
  const postsById = new Map<string, StoredPost>();
  const dms: StoredDm[] = [];
  const createdLog: CreatedItem[] = [];
  const requestLog: RequestRecord[] = [];
  const faultCounts: Record<string, number> = {};
  const hanging = new Set<Socket>();
  const windows = new Map<string, { start: number; used: number }>();
  let lastId = 0n;
  let tcoCounter = 0;
  const nextTco = (): string => tcoUrl(++tcoCounter);

  // Snowflake-shaped so ids both increase and decode to their creation time,
  // like X's; bumped by one when the clock stalls or goes backwards.
  const nextId = (now: number): bigint => {
    const fromClock = (BigInt(Math.floor(now)) - SNOWFLAKE_EPOCH) << 22n;
    lastId = fromClock > lastId ? fromClock : lastId + 1n;
    return lastId;
  };

  const visible = (createdAt: number, now: number): boolean => createdAt + timelineLagMs <= now;

  const rateHeaders = (key: string, limit: number, now: number): Record<string, string> => {
    const start = Math.floor(now / RATE_WINDOW_MS) * RATE_WINDOW_MS;
    let w = windows.get(key);
    if (!w || w.start !== start) {
      w = { start, used: 0 };
      windows.set(key, w);
    }
    w.used++;
    // Never report 0 left: the fake doesn't enforce limits, and a client that
    // honours "0 remaining" would otherwise sleep out a 15-minute window.
    const remaining = Math.max(1, limit - w.used);
    return {
      'x-rate-limit-limit': String(limit),
      'x-rate-limit-remaining': String(remaining),
      'x-rate-limit-reset': String(Math.floor((start + RATE_WINDOW_MS) / 1000)),
    };
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent && !res.destroyed) {
        res.writeHead(500, { 'content-type': 'application/json; charset=utf-8' });
        res.end(JSON.stringify({ title: 'Internal Server Error', detail: String(err), type: 'about:blank', status: 500 }));
      } else {
        res.destroy();
      }
    });
  });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const now = clock();
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const record: RequestRecord = { method, path: url.pathname };
    requestLog.push(record);
    const route = matchRoute(method, url.pathname);
    const token = tokenFromAuthorization(req.headers.authorization);
    const account = token === undefined ? undefined : tokenAccount(token, now);
    if (account) record.userId = account.userId;
    let headers = rateHeaders(`${account?.userId ?? 'anon'}:${route?.name ?? 'none'}`, route ? LIMITS[route.name] : 300, now);

    const compressed = gzip && /\bgzip\b/i.test(String(req.headers['accept-encoding'] ?? ''));
    /**
     * Errors too come as `application/json; charset=utf-8`, as X sends them
     * (not `application/problem+json`). `cut`: announce the whole body,
     * deliver half of it (of the gzip stream when compressed), then drop the
     * connection.
     */
    const send = (status: number, body: unknown, extraHeaders: Record<string, string> = {}, cut = false): void => {
      record.status = status;
      const json = Buffer.from(JSON.stringify(body));
      const payload = compressed ? gzipSync(json) : json;
      res.writeHead(status, {
        ...headers, ...extraHeaders, 'content-type': 'application/json; charset=utf-8',
        ...(compressed && { 'content-encoding': 'gzip' }), 'content-length': String(payload.length),
      });
      if (!cut) {
        res.end(payload);
        return;
      }
      res.write(payload.subarray(0, Math.floor(payload.length / 2)), () => req.socket.destroy());
    };
    const hang = (): void => {
      // Keep the socket so close() can end it; the client only gets out via its own deadline.
      const socket = req.socket;
      hanging.add(socket);
      socket.once('close', () => hanging.delete(socket));
    };
    /** A read answer, unless a lookup fault is due (`scriptedOnly`: no random one). */
    const sendRead = (body: unknown, scriptedOnly = false): void => {
      const read = { path: url.pathname, text: undefined };
      const fault = scriptedOnly ? lookupPlan.nextScripted(read) : lookupPlan.next(read);
      if (fault) {
        record.fault = fault;
        faultCounts[`lookup-${fault}`] = (faultCounts[`lookup-${fault}`] ?? 0) + 1;
      }
      if (fault === 'hang') return hang();
      send(200, body, {}, fault === 'cut-body');
    };
    const sendProblem = (p: HttpProblem): void => {
      const body: Record<string, unknown> = { title: p.title, detail: p.detail, type: p.type, status: p.status };
      if (p.errors) body.errors = p.errors;
      Object.assign(body, (p as HttpProblem & { extra?: Record<string, unknown> }).extra);
      send(p.status, body);
    };

    try {
      if (!route) throw new HttpProblem(404, 'Not Found Error', `Unknown route ${method} ${url.pathname}`, 'about:blank');
      if (route.name === 'token') return refreshToken(await readForm(req), now);
      if (!account) throw new HttpProblem(401, 'Unauthorized', 'Unauthorized');
      switch (route.name) {
        case 'me':
          checkKnownParams(url.searchParams, ['expansions', 'tweet.fields', 'user.fields']);
          return send(200, { data: { id: account.userId, name: account.username, username: account.username } });
        case 'timeline':
          return sendRead(timeline(route.userId, url.searchParams, now));
        case 'dmEvents':
          return sendRead(dmEvents(account, route.participantId, url.searchParams, now));
        case 'createTweet':
        case 'sendDm': {
          const body = await readJson(req);
          if (appForbidden) throw clientForbidden();
          if (suspended.has(account.userId)) throw new HttpProblem(403, 'Forbidden', SUSPENDED_DETAIL);
          const write =
            route.name === 'createTweet'
              ? prepareTweet(account, body, now)
              : prepareDm(account, route.participantId, body);
          const cap = spendCaps(account.userId, now);
          headers = { ...headers, ...cap.headers };
          if (cap.refused) throw cap.refused;
          const fault = plan.next({ path: url.pathname, text: write.text });
          if (fault) {
            record.fault = fault;
            faultCounts[fault] = (faultCounts[fault] ?? 0) + 1;
          }
          const success = fault === undefined || faultCommits(fault) ? write.commit(clock()) : undefined;
          if (!fault) return send(201, success);
          return applyFault(fault, success);
        }
      }
    } catch (err) {
      if (err instanceof HttpProblem) return sendProblem(err);
      if (err instanceof BadRequest) return sendProblem(invalidRequest(err.message, err.parameter));
      throw err;
    }

    function refreshToken(form: Record<string, string>, now: number): void {
      const owner = form.grant_type === 'refresh_token' && form.refresh_token ? refreshTokens.get(form.refresh_token) : undefined;
      if (!owner || !form.client_id) {
        return send(400, { error: 'invalid_request', error_description: 'Value passed for the token was invalid.' });
      }
      refreshTokens.delete(form.refresh_token!);
      issued++;
      const accessToken = `fx-at-${owner.userId}-${issued}`;
      const nextRefresh = `fx-rt-${owner.userId}-${issued}`;
      accountsByToken.set(accessToken, owner);
      owner.tokens.push(accessToken);
      tokenExpiry.set(accessToken, now + tokenTtlMs);
      refreshTokens.set(nextRefresh, owner);
      owner.refreshToken = nextRefresh;
      refreshCounts[owner.userId] = (refreshCounts[owner.userId] ?? 0) + 1;
      record.userId = owner.userId;
      // Random lookup faults spare refreshes: a cut answer loses the rotated
      // refresh token for good (as on X); tests aim at it with injectNextLookup.
      sendRead({ token_type: 'bearer', expires_in: Math.floor(tokenTtlMs / 1000), access_token: accessToken, scope: 'tweet.read tweet.write users.read dm.read dm.write offline.access', refresh_token: nextRefresh }, true);
    }

    function applyFault(fault: FaultKind, success: unknown): void {
      switch (fault) {
        case 'hang-before-commit':
        case 'commit-then-hang':
          return hang();
        case 'commit-then-reset':
        case 'reset-before-commit':
          req.socket.destroy();
          return;
        case '5xx-with-commit':
        case '5xx-without-commit':
          return sendProblem(new HttpProblem(503, 'Service Unavailable', 'Service Unavailable'));
        case '429': {
          const reset = Math.ceil(clock() / 1000) + rateLimitResetSec;
          headers = { ...headers, 'x-rate-limit-remaining': '0', 'x-rate-limit-reset': String(reset) };
          return sendProblem(new HttpProblem(429, 'Too Many Requests', 'Too Many Requests'));
        }
        case 'truncated-201':
          // A 2xx status the client cannot parse, like a connection dropped
          // mid-body; compressed, twitter-api-v2 would wait for it forever.
          return send(201, success, {}, true);
      }
    }
  }

  interface PreparedWrite {
    text: string;
    commit(now: number): unknown;
  }

  function prepareTweet(author: FakeAccount, body: Record<string, unknown>, now: number): PreparedWrite {
    const text = body.text;
    if (typeof text !== 'string' || text.trim() === '') {
      // X refuses a post without content; whitespace-only text is no content.
      throw invalidRequest('Post text must not be empty.', 'text');
    }
    let target: StoredPost | undefined;
    if (body.reply !== undefined) {
      const reply = body.reply as { in_reply_to_tweet_id?: unknown } | null;
      const targetId = reply?.in_reply_to_tweet_id;
      if (typeof targetId !== 'string' || !isNumericId(targetId)) {
        throw invalidRequest('reply.in_reply_to_tweet_id must be a numeric string.', 'reply.in_reply_to_tweet_id');
      }
      target = postsById.get(targetId);
      if (!target || deleted.has(targetId)) throw new HttpProblem(403, 'Forbidden', DELETED_TARGET_DETAIL);
      if (replyRestriction && target.item.authorId !== author.userId && !target.item.text.includes(`@${author.username}`)) {
        throw new HttpProblem(403, 'Forbidden', RESTRICTED_REPLY_DETAIL);
      }
    }
    if (duplicateCheck) {
      const dup = posts.some((p) => p.item.authorId === author.userId && p.item.text === text && p.item.createdAt > now - DAY_MS);
      if (dup) throw new HttpProblem(403, 'Forbidden', DUPLICATE_DETAIL);
    }
    return {
      text,
      commit: (at) => {
        const idBig = nextId(at);
        const id = idBig.toString();
        const rendered = renderTweet(author.userId, target, text);
        const item: CreatedItem = { kind: 'post', id, authorId: author.userId, text, createdAt: at };
        if (target) item.inReplyToTweetId = target.item.id;
        const stored: StoredPost = { item, idBig, rendered, conversationId: target?.conversationId ?? id };
        if (target) stored.inReplyToUserId = target.item.authorId;
        posts.push(stored);
        postsById.set(id, stored);
        createdLog.push(item);
        return { data: { id, text: rendered.text, edit_history_tweet_ids: [id] } };
      },
    };
  }

  /** A reply to someone else gets their `@handle ` as hidden prefix; any reply folds its own leading @handles. */
  function renderTweet(authorId: string, target: StoredPost | undefined, text: string): RenderedPost {
    const targetAuthor = target ? accountsById.get(target.item.authorId) : undefined;
    const prefix = targetAuthor && targetAuthor.userId !== authorId ? `@${targetAuthor.username} ` : '';
    return renderPost(renderBody(text, { escape: true, nextTco }), prefix, target !== undefined);
  }

  function prepareDm(sender: FakeAccount, participantId: string, body: Record<string, unknown>): PreparedWrite {
    if (!isNumericId(participantId)) throw invalidRequest(`The \`participant_id\` value [${participantId}] is not valid`, 'participant_id');
    if (participantId === sender.userId) throw invalidRequest('You cannot send a direct message to yourself.', 'participant_id');
    if (refusesDms.has(participantId)) throw new HttpProblem(403, 'Forbidden', DM_REFUSED_DETAIL);
    const text = body.text;
    if (typeof text !== 'string' || text.trim() === '') throw invalidRequest('Message text must not be empty.', 'text');
    const participants = [sender.userId, participantId].sort(compareIds) as [string, string];
    const dmConversationId = participants.join('-');
    return {
      text,
      commit: (at) => {
        const idBig = nextId(at);
        const id = idBig.toString();
        // DMs get t.co links and HTML escaping like posts.
        const rendered = renderBody(text, { escape: true, nextTco });
        const item: CreatedItem = { kind: 'dm', id, authorId: sender.userId, text, createdAt: at, recipientId: participantId, dmConversationId };
        dms.push({ item, idBig, rendered, participants });
        createdLog.push(item);
        return { data: { dm_conversation_id: dmConversationId, dm_event_id: id } };
      },
    };
  }

  function timeline(userId: string, q: URLSearchParams, now: number): unknown {
    const names = opts.fieldNames ?? '2.159';
    const fieldsParam = names === '2.167' ? 'post.fields' : 'tweet.fields';
    checkKnownParams(q, [
      'since_id', 'until_id', 'max_results', 'pagination_token', 'exclude', 'start_time', 'end_time',
      'expansions', fieldsParam, 'media.fields', 'poll.fields', 'place.fields', 'user.fields',
    ]);
    if (!isNumericId(userId)) throw new BadRequest(`The \`id\` query parameter value [${userId}] is not valid`, 'id');
    const maxResults = parseMaxResults(q, 5, 100, 10);
    const fields = parseFields(q, fieldsParam, names === '2.167' ? POST_FIELDS : TWEET_FIELDS);
    const sinceId = parseIdParam(q, 'since_id');
    const untilId = parseIdParam(q, 'until_id');
    const { from, toExclusive } = parseTimeWindow(q);
    const exclude = new Set((q.get('exclude') ?? '').split(',').filter(Boolean));
    for (const e of exclude) if (e !== 'replies' && e !== 'retweets') throw new BadRequest(`The \`exclude\` query parameter value [${e}] is not one of [replies,retweets]`, 'exclude');
    const startAt = decodePageToken(q);
    if (!accountsById.has(userId)) {
      // X answers 200 with an errors array for an unknown user.
      return {
        errors: [{
          value: userId, detail: `Could not find user with id: [${userId}].`, title: 'Not Found Error',
          resource_type: 'user', parameter: 'id', resource_id: userId, type: 'https://api.twitter.com/2/problems/resource-not-found',
        }],
      };
    }
    const reachable = posts
      .filter((p) => p.item.authorId === userId && !deleted.has(p.item.id) && visible(p.item.createdAt, now))
      // An edited post shows its latest version only, once that is visible.
      .filter((p) => !(p.supersededAt !== undefined && visible(p.supersededAt, now)))
      .sort((a, b) => compareBig(b.idBig, a.idBig))
      .slice(0, TIMELINE_REACH);
    const matching = reachable.filter(
      (p) =>
        (sinceId === undefined || p.idBig > sinceId) &&
        (untilId === undefined || p.idBig < untilId) &&
        (from === undefined || p.item.createdAt >= from) &&
        (toExclusive === undefined || p.item.createdAt < toExclusive) &&
        !(exclude.has('replies') && p.item.inReplyToTweetId !== undefined),
    );
    const { page, nextToken } = paginate(matching, maxResults, startAt);
    if (page.length === 0) return { meta: { result_count: 0 } };
    const meta: Record<string, unknown> = {
      result_count: page.length,
      newest_id: page[0]?.item.id,
      oldest_id: page[page.length - 1]?.item.id,
    };
    if (nextToken) meta.next_token = nextToken;
    return { data: page.map((p) => (names === '2.167' ? postView2167(p, fields) : postView(p, fields))), meta };
  }

  function dmEvents(caller: FakeAccount, participantId: string, q: URLSearchParams, now: number): unknown {
    checkKnownParams(q, ['dm_event.fields', 'event_types', 'expansions', 'max_results', 'media.fields', 'pagination_token', 'tweet.fields', 'user.fields']);
    if (!isNumericId(participantId)) throw new BadRequest(`The \`participant_id\` value [${participantId}] is not valid`, 'participant_id');
    const maxResults = parseMaxResults(q, 1, 100, 100);
    const fields = parseFields(q, 'dm_event.fields', DM_EVENT_FIELDS);
    const types = (q.get('event_types') ?? 'MessageCreate').split(',');
    const startAt = decodePageToken(q);
    const pair = [caller.userId, participantId].sort(compareIds).join('-');
    const matching = types.includes('MessageCreate')
      ? dms
          .filter((d) => d.item.dmConversationId === pair && visible(d.item.createdAt, now))
          .sort((a, b) => compareBig(b.idBig, a.idBig))
      : [];
    const { page, nextToken } = paginate(matching, maxResults, startAt);
    if (page.length === 0) return { meta: { result_count: 0 } };
    const meta: Record<string, unknown> = { result_count: page.length };
    if (nextToken) meta.next_token = nextToken;
    return { data: page.map((d) => dmView(d, fields)), meta };
  }

  return new Promise<FakeX>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      const addr = server.address();
      if (addr === null || typeof addr === 'string') return reject(new Error('fake X: unexpected server address'));
      const port = addr.port;
      let closing: Promise<void> | undefined;
      resolve({
        url: `http://${host}:${port}`,
        port,
        created: () => createdLog.map((i) => ({ ...i })),
        requests: () => requestLog.map((r) => ({ ...r })),
        injectNext: (fault, match) => plan.injectNext(fault, match),
        injectNextLookup: (fault, match) => lookupPlan.injectNext(fault, match),
        faultsInjected: () => ({ ...faultCounts }),
        setTimelineLag: (ms) => {
          if (!Number.isFinite(ms) || ms < 0) throw new Error(`timeline lag must be >= 0, got ${ms}`);
          timelineLagMs = ms;
        },
        setDuplicateContentCheck: (on) => {
          duplicateCheck = on;
        },
        setFaultRate: (rate) => plan.setRate(rate),
        expireTokens: (userId) => {
          const a = accountsById.get(userId);
          for (const t of a?.tokens ?? []) tokenExpiry.set(t, 0);
        },
        revoke: (userId) => {
          const a = accountsById.get(userId);
          for (const t of a?.tokens ?? []) tokenExpiry.set(t, 0);
          if (a?.refreshToken) refreshTokens.delete(a.refreshToken);
        },
        refreshes: () => ({ ...refreshCounts }),
        editPost: (id, newText) => {
          const old = postsById.get(id);
          if (!old || old.supersededAt !== undefined) throw new Error(`fake X: no current post ${id} to edit`);
          const at = clock();
          const idBig = nextId(at);
          const newId = idBig.toString();
          const history = [...(old.editHistory ?? [old.item.id]), newId];
          const target = old.item.inReplyToTweetId ? postsById.get(old.item.inReplyToTweetId) : undefined;
          const { edits: _edits, ...rest } = old.item;
          const item: CreatedItem = { ...rest, id: newId, text: newText, createdAt: at };
          const stored: StoredPost = { item, idBig, rendered: renderTweet(old.item.authorId, target, newText), conversationId: old.conversationId, editHistory: history };
          if (old.inReplyToUserId) stored.inReplyToUserId = old.inReplyToUserId;
          old.supersededAt = at;
          posts.push(stored);
          postsById.set(newId, stored);
          const original = createdLog.find((c) => c.kind === 'post' && c.id === history[0]);
          if (original) original.edits = [...(original.edits ?? []), newId];
          return { id: newId, editHistoryIds: [...history] };
        },
        deletePost: (id) => {
          deleted.add(id);
        },
        suspend: (userId) => {
          suspended.add(userId);
        },
        forbidApp: () => {
          appForbidden = true;
        },
        allowApp: () => {
          appForbidden = false;
        },
        close: () => {
          closing ??= new Promise<void>((done) => {
            for (const s of hanging) s.destroy();
            hanging.clear();
            server.close(() => done());
            server.closeAllConnections();
          });
          return closing;
        },
      });
    });
  });
}

function postView(p: StoredPost, fields: Set<string>): Record<string, unknown> {
  const { item, rendered } = p;
  const out: Record<string, unknown> = { id: item.id, text: rendered.text, edit_history_tweet_ids: p.editHistory ?? [item.id] };
  if (fields.has('created_at')) out.created_at = isoMs(item.createdAt);
  if (fields.has('author_id')) out.author_id = item.authorId;
  if (fields.has('conversation_id')) out.conversation_id = p.conversationId;
  if (fields.has('in_reply_to_user_id') && p.inReplyToUserId) out.in_reply_to_user_id = p.inReplyToUserId;
  if (fields.has('entities') && rendered.urls.length > 0) out.entities = { urls: rendered.urls };
  if (fields.has('display_text_range')) out.display_text_range = rendered.displayTextRange;
  if (fields.has('referenced_tweets') && item.inReplyToTweetId) out.referenced_tweets = [{ type: 'replied_to', id: item.inReplyToTweetId }];
  if (fields.has('note_tweet') && rendered.noteTweet) out.note_tweet = withEntities({ text: rendered.noteTweet.text }, rendered.noteTweet.urls);
  return out;
}

/** The same post in spec 2.167's names. */
function postView2167(p: StoredPost, fields: Set<string>): Record<string, unknown> {
  const { edit_history_tweet_ids: history, referenced_tweets: _refs, note_tweet: _note, ...rest } = postView(p, new Set([...fields].filter((f) => f !== 'note_post')));
  const out: Record<string, unknown> = { ...rest, edit_history_post_ids: history };
  if (p.item.inReplyToTweetId) out.referenced_posts = [{ type: 'replied_to', id: p.item.inReplyToTweetId }];
  if (fields.has('note_post') && p.rendered.noteTweet) out.note_post = withEntities({ text: p.rendered.noteTweet.text }, p.rendered.noteTweet.urls);
  return out;
}

function dmView(d: StoredDm, fields: Set<string>): Record<string, unknown> {
  const { item, rendered } = d;
  const out: Record<string, unknown> = { id: item.id, event_type: 'MessageCreate', text: rendered.text };
  if (fields.has('created_at')) out.created_at = isoMs(item.createdAt);
  if (fields.has('sender_id')) out.sender_id = item.authorId;
  if (fields.has('dm_conversation_id')) out.dm_conversation_id = item.dmConversationId;
  if (fields.has('participant_ids')) out.participant_ids = [...d.participants];
  if (fields.has('entities') && rendered.urls.length > 0) out.entities = { urls: rendered.urls };
  return out;
}

function withEntities(o: Record<string, unknown>, urls: UrlEntity[]): Record<string, unknown> {
  return urls.length > 0 ? { ...o, entities: { urls } } : o;
}

function compareBig(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Numeric order for ids of different lengths (string sort would put "10" before "9"). */
function compareIds(a: string, b: string): number {
  return compareBig(BigInt(a), BigInt(b));
}

/** OAuth token requests come form-encoded (twitter-api-v2 may also send JSON). */
async function readForm(req: http.IncomingMessage): Promise<Record<string, string>> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const raw = Buffer.concat(chunks).toString('utf8');
  if (raw.trim().startsWith('{')) {
    try {
      return Object.fromEntries(Object.entries(JSON.parse(raw) as Record<string, unknown>).map(([k, v]) => [k, String(v)]));
    } catch {
      return {};
    }
  }
  return Object.fromEntries(new URLSearchParams(raw));
}

async function readJson(req: http.IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > MAX_BODY_BYTES) throw new HttpProblem(413, 'Payload Too Large', 'Request body too large');
    chunks.push(buf);
  }
  const raw = Buffer.concat(chunks).toString('utf8');
  let parsed: unknown;
  try {
    parsed = raw === '' ? {} : JSON.parse(raw);
  } catch {
    throw invalidRequest('Request body is not valid JSON.');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw invalidRequest('Request body must be a JSON object.');
  return parsed as Record<string, unknown>;
}
