/**
 * A fake X API v2 over plain HTTP on loopback, driven by the real
 * twitter-api-v2 client (via a URL-rewriting plugin). It keeps the ground
 * truth of what was really created, so tests and chaos runs can check the
 * exactly-once promise against it, and it injects the failures that make
 * publishing ambiguous: lost responses, resets, 5xx, truncated 201s, 429s.
 *
 * This module only wires the parts: the store (`store.ts`), who is who
 * (`accounts.ts`, `auth.ts`), volume limits (`limits.ts`), the fault
 * schedule (`faults.ts`) and the endpoints (`routes.ts`); then it listens
 * and hands back the hooks tests drive it with.
 */
import http from 'node:http';

import { Accounts, type FakeAccount } from './accounts.js';
import { Auth } from './auth.js';
import { FaultSchedule, type FaultKind, type FaultMatch, type LookupFaultKind, type MediaFaultKind } from './faults.js';
import type { UploadedMedium } from './media.js';
import { Limits } from './limits.js';
import { Router, type RequestRecord } from './routes.js';
import { Store, type CreatedItem } from './store.js';
import { Writes } from './writes.js';

export type { FakeAccount } from './accounts.js';
export type { CreatedItem } from './store.js';
export type { RequestRecord } from './routes.js';
export type { AttachedMedium, UploadedMedium } from './media.js';
export type { MediaFaultKind } from './faults.js';

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
  /** Share of media requests that fail at their step (faults.ts MediaFaultKind), seeded like the others. */
  mediaFaultRate?: number;
  mediaFaultKinds?: MediaFaultKind[];
  /** `expires_after_secs` of a new media id (default a day, as X). */
  mediaExpirySecs?: number;
  /** How long a GIF or video processes after finalize (default 1.5 s; 0: succeeded at finalize). */
  mediaProcessingMs?: number;
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
  /** User ids whose OAuth 2.0 tokens lack `media.write`: every media request with one is X's 403 (OAuth 1.0a ones still upload). */
  withoutMediaWrite?: string[];
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

export interface FakeX {
  url: string;
  port: number;
  created(): CreatedItem[];
  requests(): RequestRecord[];
  injectNext(fault: FaultKind, match?: FaultMatch): void;
  /** The next timeline / DM-event read (matching `match.path`) fails this way. */
  injectNextLookup(fault: LookupFaultKind, match?: FaultMatch): void;
  faultsInjected(): Record<string, number>;
  /** The next media request at that fault's step fails this way. */
  injectNextMedia(fault: MediaFaultKind): void;
  setMediaFaultRate(rate: number): void;
  /** Ground truth of the uploads: every media id with the bytes received, its state and hash. */
  uploads(): UploadedMedium[];
  setTimelineLag(ms: number): void;
  setDuplicateContentCheck(on: boolean): void;
  setFaultRate(rate: number): void;
  /** Expire every access token of a user now (as if their 2 h had passed). */
  expireTokens(userId: string): void;
  /** Revoke a user's tokens and refresh token (access revoked, or account suspended). */
  revoke(userId: string): void;
  /** Successful token refreshes per user id. */
  refreshes(): Record<string, number>;
  /** Grant (true) or withhold (false) `media.write` on a user's OAuth 2.0 tokens. */
  setMediaWrite(userId: string, granted: boolean): void;
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

/** Access tokens issued by POST /2/oauth2/token live 2 h, as on X. */
const DEFAULT_TOKEN_TTL_MS = 2 * 3_600_000;

export async function startFakeX(opts: FakeXOptions): Promise<FakeX> {
  const host = opts.host ?? '127.0.0.1';
  // Chaos runs send real-looking traffic: never expose it beyond loopback.
  if (!isLoopbackV4(host) && !opts.exposeBeyondLoopback)
    throw new Error(`fake X only listens on 127.0.0.0/8, not ${host} (unless exposeBeyondLoopback is set)`);
  const faults = new FaultSchedule({
    seed: opts.seed,
    rate: opts.faultRate,
    kinds: opts.faultKinds,
    lookupRate: opts.lookupFaultRate,
    lookupKinds: opts.lookupFaultKinds,
    mediaRate: opts.mediaFaultRate,
    mediaKinds: opts.mediaFaultKinds,
  });
  const accounts = new Accounts(opts.accounts);
  const auth = new Auth(accounts, opts.tokenTtlMs ?? DEFAULT_TOKEN_TTL_MS);
  for (const userId of opts.withoutMediaWrite ?? []) auth.setMediaWrite(userId, false);
  const store = new Store(accounts, opts);
  const writes = new Writes(store, { replyRestriction: opts.replyRestriction ?? false, refusesDms: new Set(opts.refusesDms ?? []) });
  const router = new Router({
    store,
    accounts,
    auth,
    faults,
    writes,
    limits: new Limits(opts),
    fieldNames: opts.fieldNames ?? '2.159',
    gzip: opts.gzip ?? true,
    rateLimitResetSec: opts.rateLimitResetSec ?? 2,
  });
  const server = http.createServer(router.listener);
  const port = await listen(server, opts.port ?? 0, host);
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${port}`,
    port,
    created: () => store.created(),
    requests: () => router.requests(),
    injectNext: (fault, match) => faults.injectNext(fault, match),
    injectNextLookup: (fault, match) => faults.injectNextLookup(fault, match),
    faultsInjected: () => faults.injected(),
    injectNextMedia: (fault) => faults.injectNextMedia(fault),
    setMediaFaultRate: (rate) => faults.setMediaRate(rate),
    uploads: () => store.media.uploads(),
    setTimelineLag: (ms) => store.setTimelineLag(ms),
    setDuplicateContentCheck: (on) => store.setDuplicateContentCheck(on),
    setFaultRate: (rate) => faults.setRate(rate),
    expireTokens: (userId) => auth.expireTokens(userId),
    revoke: (userId) => auth.revoke(userId),
    refreshes: () => auth.refreshes(),
    setMediaWrite: (userId, granted) => auth.setMediaWrite(userId, granted),
    editPost: (id, newText) => store.editPost(id, newText),
    deletePost: (id) => store.deletePost(id),
    suspend: (userId) => store.suspend(userId),
    forbidApp: () => store.setAppForbidden(true),
    allowApp: () => store.setAppForbidden(false),
    close: () => {
      closing ??= new Promise<void>((done) => {
        router.dropHanging();
        server.close(() => done());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

function isLoopbackV4(host: string): boolean {
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** Listen on `host:port` (0: any free port); resolves with the port. */
function listen(server: http.Server, port: number, host: string): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const addr = server.address();
      if (addr === null || typeof addr === 'string') return reject(new Error('fake X: unexpected server address'));
      resolve(addr.port);
    });
  });
}
