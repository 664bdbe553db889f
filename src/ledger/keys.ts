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
  /** Hash: cluster-wide counters (attempt outcomes, final states, X latency buckets) for /metrics. */
  readonly stats: string;
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
