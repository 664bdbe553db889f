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
  /** Hash: the ledger record of one key. */
  record(keyId: string): string;
  /** List: newest-first audit trail of one key. */
  audit(keyId: string): string;
  /** Sorted set: unresolved keys by when reconciliation should look at them next. */
  readonly due: string;
  /** Sorted set: every key by creation time, for listing. */
  readonly index: string;
  /** String: the key an X post/DM id is attributed to (so no other key can claim it). */
  attribution(xId: string): string;
  /** String with TTL: lookups for this account wait until it expires (X said 429). */
  lookupBlock(accountId: string): string;
  /** Hash: cluster-wide counters (attempt outcomes, final states, X latency buckets) for /metrics. */
  readonly stats: string;
  /** String with TTL: held by the one reconciliation pass running. */
  readonly reconcileLock: string;
}

export function ledgerKeys(prefix: string): LedgerKeys {
  const p = hashTagged(prefix);
  return Object.freeze({
    bullPrefix: p,
    record: (keyId: string) => `${p}:post:${keyId}`,
    audit: (keyId: string) => `${p}:audit:${keyId}`,
    due: `${p}:due`,
    index: `${p}:posts`,
    attribution: (xId: string) => `${p}:xid:${xId}`,
    lookupBlock: (accountId: string) => `${p}:lookup-block:${accountId}`,
    reconcileLock: `${p}:reconcile-lock`,
    stats: `${p}:stats`,
  });
}
