import type { Redis, Cluster } from 'ioredis';
import type { Transition } from '../domain/decide.js';
import type { Budget } from '../domain/budget.js';
import type { PublishRequest } from '../domain/request.js';
import { ledgerKeys, type LedgerKeys } from './keys.js';
import { type AuditEvent, type PostRecord, type PostState, parseRecord } from './record.js';
import { CLAIM, REGISTER, SETTLE } from './scripts.js';

export type RedisClient = Redis | Cluster;

export type RegisterResult =
  | { readonly verdict: 'new' }
  | { readonly verdict: 'exists'; readonly record: PostRecord }
  | { readonly verdict: 'conflict'; readonly record: PostRecord };

export type ClaimVerdict = 'missing' | 'claimed' | 'early' | 'expired' | 'paused' | 'throttled' | 'held' | 'sent' | 'failed';
export type ClaimResult =
  | { readonly verdict: 'missing' }
  | { readonly verdict: 'throttled'; readonly record: PostRecord; readonly retryAt: number }
  | { readonly verdict: Exclude<ClaimVerdict, 'missing' | 'throttled'>; readonly record: PostRecord };

/** No budget: one unit per window that never runs out (for tools and tests that do not care). */
const UNLIMITED: Budget = { budgetClass: 'post', limit: Number.MAX_SAFE_INTEGER, windowStart: 0, windowEnd: 8.64e15, windowMs: 8.64e15, appLimit: 0, dayStart: 0, dayEnd: 8.64e15 };


export interface SettleResult {
  readonly verdict: 'ok' | 'stale' | 'missing';
  readonly state: PostState | '';
  readonly attempt: number;
}

export interface LedgerOptions {
  readonly prefix: string;
  readonly retentionMs: number;
  /** Grace after a queued key's due time before reconciliation asks where its job went. */
  readonly lostJobGraceMs?: number;
  readonly auditMax?: number;
}

type LedgerRedis = RedisClient & {
  xactlyRegister(...args: (string | number)[]): Promise<string[]>;
  xactlyClaim(...args: (string | number)[]): Promise<string[]>;
  xactlySettle(...args: (string | number)[]): Promise<string[]>;
};

/**
 * The claim ledger: one record per key, which outlives BullMQ's jobs and is
 * the only authority on whether a key may call X.
 */
export class Ledger {
  readonly keys: LedgerKeys;
  private readonly redis: LedgerRedis;
  private readonly retentionMs: number;
  private readonly lostJobGraceMs: number;
  private readonly auditMax: number;

  constructor(redis: RedisClient, opts: LedgerOptions) {
    this.keys = ledgerKeys(opts.prefix);
    this.retentionMs = opts.retentionMs;
    this.lostJobGraceMs = opts.lostJobGraceMs ?? 60_000;
    this.auditMax = opts.auditMax ?? 50;
    const r = redis as LedgerRedis;
    if (typeof r.xactlyRegister !== 'function') {
      r.defineCommand('xactlyRegister', { numberOfKeys: 4, lua: REGISTER });
      r.defineCommand('xactlyClaim', { numberOfKeys: 8, lua: CLAIM });
      r.defineCommand('xactlySettle', { numberOfKeys: 5, lua: SETTLE });
    }
    this.redis = r;
  }

  /** Register many keys in one round trip (a pipeline of atomic scripts). */
  async registerMany(entries: readonly { request: PublishRequest; keyId: string; jobId: string }[], now: number): Promise<RegisterResult[]> {
    if (entries.length === 0) return [];
    const pipeline = this.redis.pipeline() as unknown as {
      xactlyRegister(...args: (string | number)[]): void;
      exec(): Promise<[Error | null, unknown][] | null>;
    };
    for (const { request: r, keyId, jobId } of entries) {
      const payload: (string | number)[] = [
        'slotId', r.slotId, 'postId', r.postId, 'accountId', r.accountId, 'kind', r.kind, 'text', r.text,
        'scheduledAt', r.scheduledAt, 'deadline', r.deadline,
      ];
      if (r.inReplyToTweetId) payload.push('inReplyToTweetId', r.inReplyToTweetId);
      if (r.recipientId) payload.push('recipientId', r.recipientId);
      pipeline.xactlyRegister(
        this.keys.record(keyId), this.keys.audit(keyId), this.keys.due, this.keys.index,
        now, r.fingerprint, keyId, jobId,
        Math.max(now, r.deadline) + this.retentionMs,
        r.scheduledAt + this.lostJobGraceMs,
        this.auditMax,
        ...payload,
      );
    }
    const replies = (await pipeline.exec()) ?? [];
    return replies.map(([err, reply], i) => {
      if (err) throw err;
      const [verdict, ...pairs] = reply as string[];
      if (verdict === 'new') return { verdict: 'new' };
      const record = parseRecord(entries[i]!.keyId, pairs);
      if (!record) throw new Error(`ledger returned an empty record for ${entries[i]!.keyId}`);
      return { verdict: verdict as 'exists' | 'conflict', record };
    });
  }

  /**
   * Try to claim a key for its next attempt, spending one unit of the
   * account's budget (`accountId` as the job names it) and of the app's.
   */
  async claim(keyId: string, jobId: string, leaseMs: number, now: number, accountId = '-', b: Budget = UNLIMITED): Promise<ClaimResult> {
    const [verdict, ...pairs] = await this.redis.xactlyClaim(
      this.keys.record(keyId), this.keys.audit(keyId), this.keys.due, this.keys.stats,
      this.keys.budget(accountId, b.budgetClass, b.windowStart), this.keys.appBudget(b.dayStart),
      this.keys.accountBlock(accountId), this.keys.accountPause(accountId),
      now, leaseMs, keyId, jobId, this.auditMax, this.retentionMs,
      b.limit, b.windowEnd, b.windowMs, b.appLimit, b.dayEnd,
    );
    if (verdict === 'missing') return { verdict: 'missing' };
    const record = parseRecord(keyId, pairs);
    if (!record) return { verdict: 'missing' };
    if (verdict === 'throttled') return { verdict, record, retryAt: Number(pairs.at(-1)) };
    return { verdict: verdict as Exclude<ClaimVerdict, 'missing' | 'throttled'>, record };
  }

  /** Hold every publish of an account until `until` (X answered 429 or 0 remaining). */
  async blockAccount(accountId: string, until: number, now: number): Promise<void> {
    if (until > now) await this.redis.set(this.keys.accountBlock(accountId), String(until), 'PX', until - now);
  }

  /** Pause an account: its due posts fail with this reason until it is resumed. */
  async pauseAccount(accountId: string, reason: string): Promise<void> {
    await this.redis.set(this.keys.accountPause(accountId), reason);
  }

  async resumeAccount(accountId: string): Promise<boolean> {
    return (await this.redis.del(this.keys.accountPause(accountId))) > 0;
  }

  /** Pause reasons and block times of these accounts (only those that have one). */
  async accountStatus(accountIds: readonly string[]): Promise<Map<string, { paused?: string; blockedUntil?: number }>> {
    if (accountIds.length === 0) return new Map();
    const pipeline = this.redis.pipeline();
    for (const id of accountIds) pipeline.get(this.keys.accountPause(id)).get(this.keys.accountBlock(id));
    const replies = ((await pipeline.exec()) ?? []).map(([, v]) => v as string | null);
    const out = new Map<string, { paused?: string; blockedUntil?: number }>();
    accountIds.forEach((id, i) => {
      const paused = replies[2 * i];
      const blocked = replies[2 * i + 1];
      if (paused || blocked) out.set(id, { ...(paused && { paused }), ...(blocked && { blockedUntil: Number(blocked) }) });
    });
    return out;
  }

  /**
   * Move a key out of `claimed`/`ambiguous`, fenced by attempt. `events` are
   * written to the audit trail ahead of the transition event.
   */
  async settle(
    keyId: string, attempt: number, t: Transition, now: number,
    events: readonly Omit<AuditEvent, 'at'>[] = [],
    stats: { readonly fields: readonly string[]; readonly latencyMs?: number } = { fields: [] },
  ): Promise<SettleResult> {
    const fields: (string | number)[] = [];
    let due = 0;
    let event: Omit<AuditEvent, 'at'>;
    switch (t.to) {
      case 'sent':
        fields.push('tweetId', t.tweetId, 'attemptEndedAt', now);
        event = { event: 'sent', attempt, tweetId: t.tweetId };
        break;
      case 'failed':
        fields.push('reason', t.reason, 'detail', t.detail, 'attemptEndedAt', now);
        event = { event: 'failed', attempt, reason: t.reason, detail: t.detail };
        break;
      case 'ambiguous':
        fields.push('detail', t.cause, 'attemptEndedAt', now);
        due = t.recheckAt;
        event = { event: 'ambiguous', attempt, cause: t.cause, recheckAt: t.recheckAt };
        break;
      case 'queued':
        fields.push('detail', t.cause, 'attemptEndedAt', now, 'notBefore', t.retryAt);
        if (t.jobId) fields.push('jobId', t.jobId);
        due = t.retryAt + this.lostJobGraceMs;
        event = { event: 'released', attempt, cause: t.cause, retryAt: t.retryAt };
        break;
    }
    const audit = [...events, event].map((e) => JSON.stringify({ at: now, ...e }));
    const [verdict, state, current] = await this.redis.xactlySettle(
      this.keys.record(keyId), this.keys.audit(keyId), this.keys.due, this.keys.attribution(t.to === 'sent' ? t.tweetId : '-'), this.keys.stats,
      now, attempt, t.to, keyId, due, this.auditMax, this.retentionMs,
      audit.length, stats.fields.length, stats.latencyMs ?? '', ...audit, ...stats.fields, ...fields,
    );
    return { verdict: verdict as SettleResult['verdict'], state: (state ?? '') as PostState | '', attempt: Number(current) };
  }

  /** Unresolved keys whose time to be looked at has come, soonest first. */
  async dueKeys(now: number, limit: number): Promise<string[]> {
    return this.redis.zrangebyscore(this.keys.due, '-inf', now, 'LIMIT', 0, limit);
  }

  /** How many keys are unresolved (due now or later). */
  async unresolvedCount(): Promise<number> {
    return this.redis.zcard(this.keys.due);
  }

  async getMany(keyIds: readonly string[]): Promise<(PostRecord | undefined)[]> {
    if (keyIds.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const id of keyIds) pipeline.hgetall(this.keys.record(id));
    const replies = (await pipeline.exec()) ?? [];
    return keyIds.map((id, i) => parseRecord(id, (replies[i]?.[1] ?? {}) as Record<string, string>));
  }

  /** Look at these keys again at the given times (or drop them from the index). */
  async reschedule(entries: readonly { keyId: string; at: number | null }[]): Promise<void> {
    if (entries.length === 0) return;
    const pipeline = this.redis.pipeline();
    for (const { keyId, at } of entries) {
      if (at === null) pipeline.zrem(this.keys.due, keyId);
      else pipeline.zadd(this.keys.due, at, keyId);
    }
    await pipeline.exec();
  }

  /** X ids already attributed to some key. */
  async attributed(xIds: readonly string[]): Promise<Set<string>> {
    if (xIds.length === 0) return new Set();
    const owners = await this.redis.mget(...xIds.map((id) => this.keys.attribution(id)));
    return new Set(xIds.filter((_, i) => owners[i] !== null));
  }

  async blockLookups(accountId: string, until: number, now: number): Promise<void> {
    if (until > now) await this.redis.set(this.keys.lookupBlock(accountId), String(until), 'PX', until - now);
  }

  /** accountId -> time until which lookups must wait, for blocked accounts only. */
  async lookupBlocks(accountIds: readonly string[]): Promise<Map<string, number>> {
    if (accountIds.length === 0) return new Map();
    const values = await this.redis.mget(...accountIds.map((id) => this.keys.lookupBlock(id)));
    return new Map(accountIds.flatMap((id, i) => (values[i] ? [[id, Number(values[i])] as const] : [])));
  }

  /** Exclusive lock for one reconciliation pass across all processes. */
  async acquireReconcileLock(token: string, ttlMs: number): Promise<boolean> {
    return (await this.redis.set(this.keys.reconcileLock, token, 'PX', ttlMs, 'NX')) === 'OK';
  }

  async releaseReconcileLock(token: string): Promise<void> {
    await this.redis.eval(
      "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end",
      1, this.keys.reconcileLock, token,
    );
  }

  /** The cluster-wide counters written with each transition. */
  async stats(): Promise<Record<string, number>> {
    const raw = (await this.redis.hgetall(this.keys.stats)) as Record<string, string>;
    return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, Number(v)]));
  }

  async get(keyId: string): Promise<PostRecord | undefined> {
    const h = (await this.redis.hgetall(this.keys.record(keyId))) as Record<string, string>;
    return parseRecord(keyId, h);
  }

  /** Oldest event first. */
  async auditTrail(keyId: string): Promise<AuditEvent[]> {
    const raw = await this.redis.lrange(this.keys.audit(keyId), 0, -1);
    return raw.reverse().map((s) => JSON.parse(s) as AuditEvent);
  }

  /** Keys in creation order, optionally filtered; skips records past retention. */
  async *list(filter: { state?: PostState; accountId?: string } = {}, batch = 200): AsyncGenerator<PostRecord> {
    for (let start = 0; ; start += batch) {
      const ids = await this.redis.zrange(this.keys.index, String(start), String(start + batch - 1));
      if (ids.length === 0) return;
      const pipeline = this.redis.pipeline();
      for (const id of ids) pipeline.hgetall(this.keys.record(id));
      const replies = (await pipeline.exec()) ?? [];
      for (let i = 0; i < ids.length; i++) {
        const record = parseRecord(ids[i]!, (replies[i]?.[1] ?? {}) as Record<string, string>);
        if (!record) continue;
        if (filter.state && record.state !== filter.state) continue;
        if (filter.accountId && record.accountId !== filter.accountId) continue;
        yield record;
      }
    }
  }
}
