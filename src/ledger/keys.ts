/**
 * Every Redis key xactly uses, in one place. All keys of one prefix share a
 * hash tag, so the Lua scripts (which touch several keys) and BullMQ's own
 * keys stay in one slot on Redis Cluster.
 */
export function hashTagged(prefix: string): string {
  return /\{[^}]+\}/.test(prefix) ? prefix : `{${prefix}}`;
}

export const QUEUE_NAMES = Object.freeze({ publish: 'publish', reconcile: 'reconcile' });

export interface LedgerKeys {
  /** Prefix for BullMQ queues (same hash tag as the ledger). */
  readonly bullPrefix: string;
  /** String (JSON): the ledger record of one key, its audit trail inside. */
  record(keyId: string): string;
  /** Sorted set: unresolved keys by when reconciliation should look at them next. */
  readonly due: string;
  /** Sorted set: every key by creation time, for listing. */
  readonly index: string;
  /** String: the key an X post/DM id is attributed to (so no other key can claim it). */
  attribution(xId: string): string;
  /** String with TTL: lookups for this account wait until it expires (X said 429). */
  lookupBlock(accountId: string): string;
  /** Counter: what an account spent of one budget class ('post' or 'dm') in the window starting at windowStart. */
  budget(accountId: string, budgetClass: string, windowStart: number): string;
  /** Counter: what the whole app spent in the UTC day starting at dayStart. */
  appBudget(dayStart: number): string;
  /**
   * Hash: an account's state shared by all workers: `blockedUntil` (ms; X
   * answered 429) and `paused` (why: revoked or suspended credentials).
   */
  account(accountId: string): string;
  /**
   * Hash: the X app's state shared by all workers (one deployment = one X
   * app, as the app budget assumes): `paused` (why: X refused the app) and
   * `blockedUntil` (ms: its 24-hour or monthly cap).
   */
  readonly app: string;
  /** String with TTL: held by the one process refreshing this account's OAuth 2.0 token. */
  refreshLock(accountId: string): string;
  /** String with TTL: a hash (never the token) of the access token the last refresh replaced. */
  refreshed(accountId: string): string;
  /**
   * Stream: one outcome event per transition a user cares about, written by
   * the script that makes the transition; trimmed by age.
   */
  readonly events: string;
  /**
   * String (JSON) with TTL: what the last reconciliation pass that deferred
   * a key in doubt saw on X (its candidate, a failed lookup...), for the
   * board. Not state: the record and its trail stay the authority.
   */
  evidence(keyId: string): string;
  /** Hash: cluster-wide counters (attempt outcomes, final states, X latency buckets) for /metrics. */
  readonly stats: string;
  /**
   * Hash: the webhook URLs deliverers have served, url id -> JSON `{host, label}`
   * (never the URL itself: its path or query may hold a token).
   */
  readonly webhooks: string;
  /** Hash: webhook counters for /metrics by URL host: `delivered:<host>`, `retried:<host>`, `dead:<host>`, `skipped:<host>`. */
  readonly webhookStats: string;
  /** Hash: one webhook URL's intake: `cursor` (last stream id taken), `pos` (stream entries up to it), and its counts. */
  webhookState(urlId: string): string;
  /** Hash: event id -> JSON `{f: event fields, tries, error?, deadAt?}`: what the URL still owes (pending or dead-lettered). */
  webhookEntries(urlId: string): string;
  /** Sorted set: a URL's pending event ids by when to try next (while a try is in flight: when its lease ends). */
  webhookDue(urlId: string): string;
  /** Sorted set: a URL's dead-lettered event ids by when they were given up on. */
  webhookDead(urlId: string): string;
  /** List: a URL's latest try outcomes (JSON), newest first, capped. */
  webhookRecent(urlId: string): string;
  /**
   * String (JSON `{mediaId, expiresAt, bytes}`) with TTL until X forgets the
   * id: an upload of one medium (by content hash, or URL) for one key, so a
   * later attempt reuses it instead of uploading again.
   */
  mediaUpload(keyId: string, contentId: string): string;
  /** String with TTL: held by the one reconciliation pass running. */
  readonly reconcileLock: string;
  /** String with TTL: a live worker process's last heartbeat (ms since epoch), for /healthz. */
  heartbeat(workerId: string): string;
  /**
   * String (JSON) with TTL: how a worker process stopped — `{how: 'drained' | 'forced', stoppingAt, stoppedAt}` —
   * written before it exits, for supervisors and tests that must not depend on log files.
   */
  workerStopped(workerId: string): string;
  /** Counter with TTL: requests an HTTP API token made in the rate-limit window starting at windowStart. */
  apiRate(tokenName: string, windowStart: number): string;
}

export function ledgerKeys(prefix: string): LedgerKeys {
  const p = hashTagged(prefix);
  return Object.freeze({
    bullPrefix: p,
    record: (keyId: string) => `${p}:post:${keyId}`,
    due: `${p}:due`,
    index: `${p}:posts`,
    attribution: (xId: string) => `${p}:xid:${xId}`,
    lookupBlock: (accountId: string) => `${p}:lookup-block:${accountId}`,
    reconcileLock: `${p}:reconcile-lock`,
    stats: `${p}:stats`,
    events: `${p}:events`,
    webhooks: `${p}:webhooks`,
    webhookStats: `${p}:webhook-stats`,
    webhookState: (urlId: string) => `${p}:webhook:${urlId}:state`,
    webhookEntries: (urlId: string) => `${p}:webhook:${urlId}:entries`,
    webhookDue: (urlId: string) => `${p}:webhook:${urlId}:due`,
    webhookDead: (urlId: string) => `${p}:webhook:${urlId}:dead`,
    webhookRecent: (urlId: string) => `${p}:webhook:${urlId}:recent`,
    evidence: (keyId: string) => `${p}:evidence:${keyId}`,
    mediaUpload: (keyId: string, contentId: string) => `${p}:media:${keyId}:${contentId}`,
    heartbeat: (workerId: string) => `${p}:worker:${workerId}`,
    workerStopped: (workerId: string) => `${p}:worker-stopped:${workerId}`,
    budget: (accountId: string, budgetClass: string, windowStart: number) => `${p}:budget:${accountId}:${budgetClass}:${windowStart}`,
    appBudget: (dayStart: number) => `${p}:budget-app:${dayStart}`,
    account: (accountId: string) => `${p}:account:${accountId}`,
    app: `${p}:app`,
    refreshLock: (accountId: string) => `${p}:refresh-lock:${accountId}`,
    refreshed: (accountId: string) => `${p}:refreshed:${accountId}`,
    apiRate: (tokenName: string, windowStart: number) => `${p}:api-rate:${tokenName}:${windowStart}`,
  });
}
