import type { Redis, Cluster } from 'ioredis';
import type { Budget } from '../domain/budget.js';
import type { Transition } from '../domain/decide.js';
import type { Evidence } from '../domain/reconcile.js';
import { ownExtras, type PublishRequest } from '../domain/request.js';
import { globEscape, scanMatch } from './drop.js';
import { ledgerKeys, type LedgerKeys } from './keys.js';
import { type CancelRequest, POST_STATES, whileCancelling } from '../domain/state.js';
import { type AuditEvent, type PostRecord, type PostState, parseRecord, parseStored, type StoredRecord } from './record.js';
import {
  CANCEL,
  CHANGE,
  type ChangeArgs,
  CLAIM,
  CLAIM_VERDICTS,
  LEDGER_SCRIPTS,
  LIFECYCLE_VERDICTS,
  NOTE,
  REGISTER,
  RELEASE_LOCK,
  RENEW_LOCK,
  type Script,
  SETTLE,
  SETTLE_VERDICTS,
  type OutcomeEmit,
  type SettleVariant,
  STANDING,
  type StandingArgs,
  verdictOf,
} from './scripts.js';

export type RedisClient = Redis | Cluster;

export type RegisterResult =
  { readonly verdict: 'new' } | { readonly verdict: 'exists'; readonly record: PostRecord } | { readonly verdict: 'conflict'; readonly record: PostRecord };

export type ClaimVerdict = (typeof CLAIM_VERDICTS)[number];
export type ClaimResult =
  | { readonly verdict: 'missing' }
  | { readonly verdict: 'throttled'; readonly record: PostRecord; readonly retryAt: number }
  | { readonly verdict: Exclude<ClaimVerdict, 'missing' | 'throttled'>; readonly record: PostRecord };

/** One entry of the events stream: the fields every event has, and its own (tweetId, reason, detail, part...). */
export interface OutcomeEvent {
  /** The stream id: the cursor to resume after. */
  readonly id: string;
  readonly type: string;
  readonly at: string;
  readonly key?: string;
  readonly slotId?: string;
  readonly postId?: string;
  readonly account?: string;
  readonly state?: string;
  readonly attempt?: string;
  readonly tweetId?: string;
  readonly reason?: string;
  readonly detail?: string;
  readonly [field: string]: string | undefined;
}

/** An upload a later attempt of the same key may reuse (keys.ts mediaUpload). */
export interface MediaUploadNote {
  readonly mediaId: string;
  readonly expiresAt: number;
  readonly bytes: number;
}

/** What a reconciliation pass saw on X for a key in doubt when it deferred it (see `reschedule`). */
export interface EvidenceNote {
  readonly attempt: number;
  readonly at: number;
  readonly evidence: Evidence;
  /** Why the pass decided to look again later. */
  readonly why: string;
}

export type LifecycleVerdict = (typeof LIFECYCLE_VERDICTS)[number];

/** What a cancel, edit or reschedule script answered. */
export type LifecycleReply =
  | { readonly verdict: 'not-found' | 'changed' }
  | { readonly verdict: 'cancelled' | 'edited' | 'rescheduled'; readonly jobId: string }
  | { readonly verdict: 'cancelling' | 'in-flight'; readonly attempt: number; readonly attemptStartedAt: number; readonly state: PostState }
  | { readonly verdict: 'already-sent'; readonly tweetId: string }
  | { readonly verdict: 'final'; readonly state: PostState; readonly reason?: string };

export interface SettleResult {
  readonly verdict: (typeof SETTLE_VERDICTS)[number];
  readonly state: PostState | '';
  readonly attempt: number;
}

export interface LedgerOptions {
  readonly prefix: string;
  readonly retentionMs: number;
  /** Grace after a queued key's due time before reconciliation asks where its job went. */
  readonly lostJobGraceMs?: number;
  readonly auditMax?: number;
  /** How long outcome events stay in the events stream (default 7 days). */
  readonly eventsRetentionMs?: number;
}

/** The outcome event a transition writes, and its own fields (no text beyond what the producer sent, no credentials). */
function outcomeEventOf(t: Transition): OutcomeEmit {
  switch (t.to) {
    case 'sent':
      return { type: 'sent', fields: { tweetId: t.tweetId, ...(t.partId && { lastPartId: t.partId }) } };
    case 'failed':
      return { type: t.reason === 'unresolved' ? 'unresolved' : 'failed', fields: { reason: t.reason, detail: t.detail } };
    case 'ambiguous':
      return { type: 'ambiguous', fields: { cause: t.cause } };
    case 'queued':
      return t.next
        ? { type: 'part-sent', fields: { part: t.next.partIndex, tweetId: t.next.sentId } }
        : { type: 'released', fields: { cause: t.cause, retryAt: t.retryAt } };
    case 'cancelled':
      return { type: 'cancelled', fields: { detail: t.detail } };
  }
}

/** The X id a transition makes live for this key (attributed to it, so no other key can claim it). */
function liveIdOf(t: Transition): string | undefined {
  if (t.to === 'sent') return t.partId ?? t.tweetId;
  if (t.to === 'queued') return t.next?.sentId;
  return undefined;
}

/** A stream id ("ms-seq", or "ms") as numbers; undefined when it is not one. */
function streamIdOf(id: string): [number, number] | undefined {
  const m = /^(\d+)(?:-(\d+))?$/.exec(id);
  return m ? [Number(m[1]), Number(m[2] ?? 0)] : undefined;
}

/** Give a lock back only while `token` still holds it; true when released. */
export async function releaseLock(redis: RedisClient, key: string, token: string): Promise<boolean> {
  return (await redis.eval(RELEASE_LOCK, 1, key, token)) === 1;
}

/** While the app is paused, a due key looks again this often (and fails as app-paused at its deadline). */
const APP_PAUSED_RECHECK_MS = 60_000;

/** No budget: the claim spends nothing (for tools and tests that do not care). */
const NO_BUDGET: Budget = { budgetClass: 'post', limit: 0, windowStart: 0, windowEnd: 0, windowMs: 1, appLimit: 0, dayStart: 0, dayEnd: 0 };

type LedgerRedis = RedisClient & Record<string, (...args: (string | number)[]) => Promise<string[]>>;

/**
 * The claim ledger: one record per key, which outlives BullMQ's jobs and is
 * the only authority on whether a key may call X.
 */
export class Ledger {
  readonly keys: LedgerKeys;
  private readonly redis: LedgerRedis;
  private readonly retentionMs: number;
  private readonly lostJobGraceMs: number;
  /** How many audit-trail entries a record keeps (the oldest go first). */
  readonly auditMax: number;
  private readonly eventsRetentionMs: number;

  constructor(redis: RedisClient, opts: LedgerOptions) {
    this.keys = ledgerKeys(opts.prefix);
    this.retentionMs = opts.retentionMs;
    this.lostJobGraceMs = opts.lostJobGraceMs ?? 60_000;
    this.auditMax = opts.auditMax ?? 50;
    this.eventsRetentionMs = opts.eventsRetentionMs ?? 7 * 24 * 3_600_000;
    const r = redis as LedgerRedis;
    for (const script of LEDGER_SCRIPTS) {
      if (typeof r[script.name] !== 'function') r.defineCommand(script.name, { numberOfKeys: script.keyCount, lua: script.lua });
    }
    this.redis = r;
  }

  /** Run a ledger script with named arguments; its verdict is checked against its list. */
  private async run<A>(script: Script<A>, a: A): Promise<string[]> {
    const reply = await this.redis[script.name]!(...script.args(this.keys, a));
    verdictOf(script.name, script.verdicts, reply[0]);
    return reply;
  }

  /** An account's (or the app's) standing changed; its event is written with it. */
  private async standing(a: Omit<StandingArgs, 'eventsRetentionMs' | 'now'> & { now?: number }): Promise<boolean> {
    const now = a.now ?? Date.now();
    const changed = await this.redis[STANDING.name]!(...STANDING.args(this.keys, { ...a, now, eventsRetentionMs: this.eventsRetentionMs }));
    return Number(changed) === 1;
  }

  /**
   * Outcome events after `from` (a stream id; '0' for the oldest kept, '$'
   * for only new ones), at most `count`, waiting up to `blockMs` for one.
   */
  /**
   * Whether events after `from` may have been trimmed before a reader saw
   * them: `from` is older than the retention and the oldest kept event is
   * after it. (Redis does not record what MINID trimmed, so "may": the
   * stream may also simply have had nothing in between.) A cursor inside
   * the retention never has a gap: trimming removes only older entries.
   */
  async eventsGap(from: string, now = Date.now()): Promise<boolean> {
    const cursor = streamIdOf(from);
    if (!cursor || (cursor[0] === 0 && cursor[1] === 0) || cursor[0] >= now - this.eventsRetentionMs) return false;
    const [first] = (await this.redis.xrange(this.keys.events, '-', '+', 'COUNT', 1)) as [string, string[]][];
    const oldest = first && streamIdOf(first[0]);
    return !oldest || oldest[0] > cursor[0] || (oldest[0] === cursor[0] && oldest[1] > cursor[1]);
  }

  async readEvents(from: string, count = 100, blockMs?: number): Promise<OutcomeEvent[]> {
    const xread = this.redis.xread.bind(this.redis) as unknown as (...a: (string | number)[]) => Promise<[string, [string, string[]][]][] | null>;
    const reply = await (blockMs !== undefined
      ? xread('COUNT', count, 'BLOCK', blockMs, 'STREAMS', this.keys.events, from)
      : xread('COUNT', count, 'STREAMS', this.keys.events, from));
    return (reply?.[0]?.[1] ?? []).map(([id, flat]) => {
      const fields: Record<string, string> = {};
      for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!;
      return { id, ...fields } as OutcomeEvent;
    });
  }

  /**
   * Register many keys in one round trip: a `SET NX GET` per key (an existing
   * record comes back instead of being overwritten) and one ZADD for each
   * index. Index entries of keys that already existed are harmless: the
   * reconciler drops entries of settled keys.
   */
  async registerMany(
    entries: readonly { request: PublishRequest; keyId: string; jobId: string }[],
    now: number,
    /** Who asked (an API token's name), for the audit trail; never a secret. */
    by?: string,
  ): Promise<RegisterResult[]> {
    if (entries.length === 0) return [];
    const pipeline = this.redis.pipeline();
    const due: (string | number)[] = [];
    const index: (string | number)[] = [];
    for (const { request: r, keyId, jobId } of entries) {
      const stored: StoredRecord = {
        slotId: r.slotId,
        postId: r.postId,
        accountId: r.accountId,
        kind: r.kind,
        text: r.text,
        ...(r.inReplyToTweetId && { inReplyToTweetId: r.inReplyToTweetId }),
        ...(r.recipientId && { recipientId: r.recipientId }),
        ...ownExtras(r),
        ...(r.parts && { parts: r.parts, partIndex: 0 }),
        scheduledAt: r.scheduledAt,
        deadline: r.deadline,
        fingerprint: r.fingerprint,
        given: r.given,
        state: 'queued',
        attempt: 0,
        jobId,
        createdAt: now,
        updatedAt: now,
        trail: [{ at: now, event: 'queued', jobId, ...(by && { by }) }],
      };
      // SET NX GET and, for a new key, its `queued` event (scripts.ts REGISTER).
      (pipeline as unknown as Record<string, (...a: (string | number)[]) => unknown>)[REGISTER.name]!(
        ...REGISTER.args(this.keys, {
          keyId,
          slotId: r.slotId,
          postId: r.postId,
          accountId: r.accountId,
          stored: JSON.stringify(stored),
          expireAt: Math.max(now, r.deadline) + this.retentionMs,
          now,
          eventsRetentionMs: this.eventsRetentionMs,
        }),
      );
      due.push(r.scheduledAt + this.lostJobGraceMs, keyId);
      index.push(now, keyId);
    }
    pipeline.zadd(this.keys.due, 'NX', ...due);
    pipeline.zadd(this.keys.index, 'NX', ...index);
    const replies = (await pipeline.exec()) ?? [];
    return entries.map(({ keyId, request }, i) => {
      const [err, previous] = replies[i] ?? [new Error('no reply')];
      if (err) throw err;
      const record = parseRecord(keyId, previous as string | null);
      if (!record) return { verdict: 'new' };
      return { verdict: record.fingerprint === request.fingerprint ? 'exists' : 'conflict', record };
    });
  }

  /**
   * Try to claim a key for its next attempt, spending one unit of the
   * account's budget (`accountId` as the job names it) and of the app's.
   */
  async claim(c: { keyId: string; jobId: string; leaseMs: number; now: number; accountId?: string; budget?: Budget }): Promise<ClaimResult> {
    const [answer, raw, retryAt] = await this.run(CLAIM, {
      keyId: c.keyId,
      jobId: c.jobId,
      accountId: c.accountId ?? '-',
      now: c.now,
      leaseMs: c.leaseMs,
      budget: c.budget ?? NO_BUDGET,
      auditMax: this.auditMax,
      retentionMs: this.retentionMs,
      lostJobGraceMs: this.lostJobGraceMs,
      appPausedRecheckMs: APP_PAUSED_RECHECK_MS,
      eventsRetentionMs: this.eventsRetentionMs,
    });
    const verdict = verdictOf('claim', CLAIM_VERDICTS, answer);
    const record = parseRecord(c.keyId, raw);
    if (verdict === 'missing' || !record) return { verdict: 'missing' };
    if (verdict === 'throttled') return { verdict, record, retryAt: Number(retryAt) };
    return { verdict, record };
  }

  /**
   * Move a key out of `claimed`/`ambiguous`, fenced by attempt. `events` are
   * written to the audit trail ahead of the transition event; `stats` are
   * the counters to bump when the transition is accepted.
   */
  async settle(
    keyId: string,
    attempt: number,
    t: Transition,
    now: number,
    events: readonly Omit<AuditEvent, 'at'>[] = [],
    stats: { readonly fields: readonly string[]; readonly latencyMs?: number } = { fields: [] },
  ): Promise<SettleResult> {
    const normal = this.variant(t, attempt, now, events, stats.fields);
    // Under a cancel the key may end elsewhere; when it ends the same way (sent), one variant serves both.
    const underCancel = whileCancelling(t.to, t.to === 'failed' ? t.reason : undefined);
    const cancelling = underCancel === t.to ? undefined : this.variant(t, attempt, now, events, stats.fields, underCancel);
    const [verdict, state, current] = await this.run(SETTLE, {
      keyId,
      attempt,
      now,
      ...(liveIdOf(t) && { xId: liveIdOf(t) }),
      normal,
      ...(cancelling && { cancelling }),
      ...(stats.latencyMs !== undefined && { latencyMs: stats.latencyMs }),
      auditMax: this.auditMax,
      retentionMs: this.retentionMs,
      eventsRetentionMs: this.eventsRetentionMs,
    });
    const st = state ? verdictOf('settle state', POST_STATES, state) : '';
    return { verdict: verdictOf('settle', SETTLE_VERDICTS, verdict), state: st, attempt: Number(current) };
  }

  /**
   * The fields, audit events and counters of a transition. `to`, when given,
   * is where the key goes instead (a cancel came in while the attempt was in
   * flight): the result is still recorded, the key ends there.
   */
  private variant(
    t: Transition,
    attempt: number,
    now: number,
    events: readonly Omit<AuditEvent, 'at'>[],
    stats: readonly string[],
    to?: PostState,
  ): SettleVariant {
    let patch: Record<string, unknown>;
    let due = 0;
    let event: Omit<AuditEvent, 'at'>;
    switch (t.to) {
      case 'sent':
        patch = { tweetId: t.tweetId, attemptEndedAt: now, ...(t.parts && { parts: t.parts }) };
        event = { event: 'sent', attempt, tweetId: t.partId ?? t.tweetId };
        break;
      case 'failed':
        patch = { reason: t.reason, detail: t.detail, attemptEndedAt: now, ...(t.parts && { parts: t.parts }) };
        event = { event: 'failed', attempt, reason: t.reason, detail: t.detail };
        break;
      case 'ambiguous':
        patch = { detail: t.cause, attemptEndedAt: now };
        due = t.recheckAt;
        event = { event: 'ambiguous', attempt, cause: t.cause, recheckAt: t.recheckAt };
        break;
      case 'queued':
        patch = { detail: t.cause, attemptEndedAt: now, notBefore: t.retryAt, ...(t.jobId && { jobId: t.jobId }) };
        due = t.retryAt + this.lostJobGraceMs;
        event = { event: 'released', attempt, cause: t.cause, retryAt: t.retryAt };
        if (t.next) {
          // A thread's part went out: the key moves on to the next one, which replies to it.
          const { partIndex, text, inReplyToTweetId, parts } = t.next;
          patch = { ...patch, partIndex, text, inReplyToTweetId, parts };
          event = { event: 'part-sent', attempt, part: partIndex, tweetId: t.next.sentId };
        }
        break;
      case 'cancelled':
        patch = { detail: t.detail, attemptEndedAt: now };
        event = { event: 'cancelled', attempt, detail: t.detail };
        break;
    }
    const attribute = liveIdOf(t) !== undefined;
    const own = outcomeEventOf(t);
    if (to === undefined || to === t.to) {
      return { to: t.to, due, patch, events: [...events, event].map((e) => ({ at: now, ...e })), stats, attribute, emits: [own] };
    }
    const counted = stats.filter((f) => !f.startsWith('final:'));
    if (to === 'cancelled') {
      // The key ends cancelled: a part that went out stays in the trail and
      // the events (it is live, with its id); a result that never became the
      // key's state (released, rejected) is told in the cancelled entry.
      const partSent = t.to === 'queued' && t.next !== undefined;
      const after = t.to === 'failed' ? `${t.reason}: ${t.detail}` : t.to === 'queued' && !t.next ? `released: ${t.cause}` : undefined;
      const ended = { event: 'cancelled', attempt, detail: `cancelled while attempt ${attempt} was in flight`, ...(after && { after }) };
      // A thread keeps the list of its live parts: nothing is deleted behind the user's back.
      const parts = t.to === 'queued' ? t.next?.parts : t.to === 'failed' ? t.parts : undefined;
      return {
        to,
        due: 0,
        patch: { attemptEndedAt: now, detail: ended.detail, ...(parts && { parts }) },
        events: [...events, ...(partSent ? [event] : []), ended].map((e) => ({ at: now, ...e })),
        stats: [...counted, 'final:cancelled'],
        attribute,
        emits: [...(partSent ? [{ ...own, state: 'cancelling' }] : []), { type: 'cancelled', fields: { detail: ended.detail } }],
      };
    }
    return { to, due, patch, events: [...events, event].map((e) => ({ at: now, ...e })), stats: counted, attribute, emits: [own] };
  }

  /** Cancel a key (see CANCEL in scripts.ts): cancelled when queued, cancelling while an attempt is in flight. */
  async cancel(keyId: string, now: number, request: Omit<CancelRequest, 'at'> = {}): Promise<LifecycleReply> {
    return this.lifecycleReply(
      await this.run(CANCEL, {
        keyId,
        now,
        ...request,
        auditMax: this.auditMax,
        retentionMs: this.retentionMs,
        eventsRetentionMs: this.eventsRetentionMs,
      }),
    );
  }

  /**
   * Replace fields of a queued key, compare-and-set on the fingerprint the
   * change was planned from ('changed' when another edit came first).
   * `due` moves the key's lost-job check; `deadline` its expiry.
   */
  async change(
    keyId: string,
    now: number,
    c: Pick<ChangeArgs, 'expectedFingerprint' | 'set' | 'event' | 'verdict'> & { readonly due?: number; readonly deadline?: number },
  ): Promise<LifecycleReply> {
    return this.lifecycleReply(
      await this.run(CHANGE, {
        keyId,
        now,
        expectedFingerprint: c.expectedFingerprint,
        set: c.set,
        event: c.event,
        verdict: c.verdict,
        auditMax: this.auditMax,
        eventsRetentionMs: this.eventsRetentionMs,
        ...(c.due !== undefined && { dueScore: c.due + this.lostJobGraceMs }),
        ...(c.deadline !== undefined && { expireAt: Math.max(now, c.deadline) + this.retentionMs }),
      }),
    );
  }

  private lifecycleReply(reply: string[]): LifecycleReply {
    const [verdict, a = '', b = '', c = ''] = reply;
    switch (verdictOf('lifecycle', LIFECYCLE_VERDICTS, verdict)) {
      case 'not-found':
        return { verdict: 'not-found' };
      case 'changed':
        return { verdict: 'changed' };
      case 'cancelled':
        return { verdict: 'cancelled', jobId: a };
      case 'edited':
        return { verdict: 'edited', jobId: a };
      case 'rescheduled':
        return { verdict: 'rescheduled', jobId: a };
      case 'cancelling':
      case 'in-flight':
        return { verdict: verdict as 'cancelling' | 'in-flight', attempt: Number(a), attemptStartedAt: Number(b), state: verdictOf('state', POST_STATES, c) };
      case 'already-sent':
        return { verdict: 'already-sent', tweetId: a };
      case 'final':
        return { verdict: 'final', state: verdictOf('state', POST_STATES, a), ...(b && { reason: b }) };
    }
  }

  /** Hold every publish of an account until `until` (X answered 429 or 0 remaining). */
  async blockAccount(accountId: string, until: number, now: number): Promise<void> {
    if (until > now) await this.standing({ accountId, op: 'set', field: 'blockedUntil', value: String(until), event: 'rate-limited', now });
  }

  /** Pause an account: its due posts fail with this reason until it is resumed. */
  async pauseAccount(accountId: string, reason: string): Promise<void> {
    await this.standing({ accountId, op: 'set', field: 'paused', value: reason, event: 'account-paused' });
  }

  async resumeAccount(accountId: string): Promise<boolean> {
    return this.standing({ accountId, op: 'del', field: 'paused', event: 'account-resumed' });
  }

  /** Hold every publish of every account until `until` (the app's 24-hour or monthly cap). */
  async blockApp(until: number, now: number): Promise<void> {
    if (until > now) await this.standing({ op: 'set', field: 'blockedUntil', value: String(until), event: 'app-rate-limited', now });
  }

  /** X refused the app itself: no account publishes until an operator resumes it. */
  async pauseApp(reason: string): Promise<void> {
    await this.standing({ op: 'set', field: 'paused', value: reason, event: 'app-paused' });
  }

  async resumeApp(): Promise<boolean> {
    return this.standing({ op: 'del', field: 'paused', event: 'app-resumed' });
  }

  async appStatus(now = Date.now()): Promise<{ paused?: string; blockedUntil?: number }> {
    const [paused, blocked] = await this.redis.hmget(this.keys.app, 'paused', 'blockedUntil');
    const blockedUntil = blocked && Number(blocked) > now ? Number(blocked) : undefined;
    return { ...(paused && { paused }), ...(blockedUntil && { blockedUntil }) };
  }

  /** Pause reasons and block times of these accounts (only those that have one in force). */
  async accountStatus(accountIds: readonly string[], now = Date.now()): Promise<Map<string, { paused?: string; blockedUntil?: number }>> {
    if (accountIds.length === 0) return new Map();
    const pipeline = this.redis.pipeline();
    for (const id of accountIds) pipeline.hmget(this.keys.account(id), 'paused', 'blockedUntil');
    const replies = ((await pipeline.exec()) ?? []).map(([, v]) => v as (string | null)[]);
    const out = new Map<string, { paused?: string; blockedUntil?: number }>();
    accountIds.forEach((id, i) => {
      const [paused, blocked] = replies[i] ?? [];
      const blockedUntil = blocked && Number(blocked) > now ? Number(blocked) : undefined;
      if (paused || blockedUntil) out.set(id, { ...(paused && { paused }), ...(blockedUntil && { blockedUntil }) });
    });
    return out;
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
    const raws = await this.redis.mget(...keyIds.map((id) => this.keys.record(id)));
    return keyIds.map((id, i) => parseRecord(id, raws[i]));
  }

  /**
   * Look at these keys again at the given times (or drop them from the
   * index). A `note` keeps what the pass saw on X, for the board, in the
   * same round trip; it is evidence, not state (the key's fencing stays the
   * record's).
   */
  async reschedule(entries: readonly { keyId: string; at: number | null; note?: EvidenceNote }[]): Promise<void> {
    if (entries.length === 0) return;
    const pipeline = this.redis.pipeline();
    for (const { keyId, at, note } of entries) {
      if (at === null) pipeline.zrem(this.keys.due, keyId);
      else pipeline.zadd(this.keys.due, at, keyId);
      if (note) pipeline.set(this.keys.evidence(keyId), JSON.stringify(note), 'PX', this.retentionMs);
    }
    await pipeline.exec();
  }

  /** Append events to a key's audit trail, no transition (an upload before a claim that did not go through). */
  async note(keyId: string, events: readonly Omit<AuditEvent, 'at'>[], now: number): Promise<void> {
    if (events.length === 0) return;
    await this.run(NOTE, { keyId, now, auditMax: this.auditMax, events });
  }

  /** Uploads of a key's media still valid at `now` (by content id), in one round trip. */
  async mediaUploads(keyId: string, contentIds: readonly string[], now: number): Promise<(MediaUploadNote | undefined)[]> {
    if (contentIds.length === 0) return [];
    const raw = await this.redis.mget(...contentIds.map((c) => this.keys.mediaUpload(keyId, c)));
    return raw.map((r) => {
      const note = r ? (JSON.parse(r) as MediaUploadNote) : undefined;
      return note && note.expiresAt > now ? note : undefined;
    });
  }

  /** Remember an upload until X forgets its id; `undefined` forgets it (X refused the id). */
  async rememberMediaUpload(keyId: string, contentId: string, note: MediaUploadNote | undefined, now: number): Promise<void> {
    const key = this.keys.mediaUpload(keyId, contentId);
    if (!note || note.expiresAt <= now) await this.redis.del(key);
    else await this.redis.set(key, JSON.stringify(note), 'PX', Math.ceil(note.expiresAt - now));
  }

  /** The last evidence notes of these keys (only those that have one). */
  async evidenceNotes(keyIds: readonly string[]): Promise<Map<string, EvidenceNote>> {
    if (keyIds.length === 0) return new Map();
    const raws = await this.redis.mget(...keyIds.map((id) => this.keys.evidence(id)));
    return new Map(keyIds.flatMap((id, i) => (raws[i] ? [[id, JSON.parse(raws[i]) as EvidenceNote] as const] : [])));
  }

  /** Unresolved keys (queued or in doubt) with when reconciliation looks at them next, soonest first. */
  async unresolvedKeys(limit: number): Promise<{ keyId: string; at: number }[]> {
    const flat = await this.redis.zrange(this.keys.due, '0', String(limit - 1), 'WITHSCORES');
    const out: { keyId: string; at: number }[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) out.push({ keyId: flat[i]!, at: Number(flat[i + 1]) });
    return out;
  }

  /** Accounts that have (or had) a pause or a rate limit recorded, by a SCAN of their standing hashes. */
  async standingAccountIds(): Promise<string[]> {
    const head = this.keys.account('');
    const ids = new Set<string>();
    for await (const keys of scanMatch(this.redis, `${globEscape(head)}*`)) for (const k of keys) ids.add(k.slice(head.length));
    return [...ids].sort();
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

  /** Keep holding the lock while a long pass goes on; false when it was lost. */
  async renewReconcileLock(token: string, ttlMs: number): Promise<boolean> {
    return (await this.redis.eval(RENEW_LOCK, 1, this.keys.reconcileLock, token, ttlMs)) === 1;
  }

  async releaseReconcileLock(token: string): Promise<void> {
    await releaseLock(this.redis, this.keys.reconcileLock, token);
  }

  /** The cluster-wide counters written with each transition. */
  async stats(): Promise<Record<string, number>> {
    const raw = (await this.redis.hgetall(this.keys.stats)) as Record<string, string>;
    return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, Number(v)]));
  }

  async get(keyId: string): Promise<PostRecord | undefined> {
    return parseRecord(keyId, await this.redis.get(this.keys.record(keyId)));
  }

  /** Oldest event first. */
  async auditTrail(keyId: string): Promise<AuditEvent[]> {
    return parseStored(await this.redis.get(this.keys.record(keyId)))?.trail ?? [];
  }

  /**
   * One page of keys in creation order, filtered, starting after `after`
   * (the last key a previous page looked at). Looks at no more than
   * `maxScan` keys, so a selective filter answers a short page (with
   * `last` to go on from) instead of reading the whole index. `last` is
   * absent when the index is exhausted.
   */
  async listPage(
    filter: {
      state?: PostState;
      accountId?: string;
      accounts?: ReadonlySet<string>;
      from?: number;
      to?: number;
      reason?: string;
      /** Case-insensitive part of the slot or post id. */
      keyContains?: string;
    },
    opts: { after?: { keyId: string; score: number }; limit: number; maxScan?: number },
  ): Promise<{ records: PostRecord[]; last?: { keyId: string; score: number } }> {
    const maxScan = opts.maxScan ?? 5_000;
    const needle = filter.keyContains?.toLowerCase();
    let start = 0;
    if (opts.after) {
      // The index only grows, so the last key's rank is where to go on; should it be gone, its score says.
      const rank = await this.redis.zrank(this.keys.index, opts.after.keyId);
      start = rank !== null ? rank + 1 : await this.redis.zcount(this.keys.index, '-inf', String(opts.after.score));
    }
    const records: PostRecord[] = [];
    let last: { keyId: string; score: number } | undefined;
    for (let scanned = 0; scanned < maxScan && records.length < opts.limit;) {
      const batch = Math.min(200, maxScan - scanned);
      const flat = await this.redis.zrange(this.keys.index, String(start), String(start + batch - 1), 'WITHSCORES');
      if (flat.length === 0) return { records };
      const ids = flat.filter((_, i) => i % 2 === 0);
      const got = await this.getMany(ids);
      for (let i = 0; i < ids.length && records.length < opts.limit; i++) {
        last = { keyId: ids[i]!, score: Number(flat[2 * i + 1]) };
        scanned++;
        start++;
        const r = got[i];
        if (!r) continue;
        if (filter.state && r.state !== filter.state) continue;
        if (filter.accountId && r.accountId !== filter.accountId) continue;
        if (filter.accounts && !filter.accounts.has(r.accountId)) continue;
        if (filter.from !== undefined && r.scheduledAt < filter.from) continue;
        if (filter.to !== undefined && r.scheduledAt >= filter.to) continue;
        if (filter.reason && r.reason !== filter.reason) continue;
        if (needle && !r.slotId.toLowerCase().includes(needle) && !r.postId.toLowerCase().includes(needle)) continue;
        records.push(r);
      }
      if (ids.length < batch && records.length < opts.limit) {
        // The end of the index: nothing left to go on from.
        return { records };
      }
    }
    return { records, ...(last && { last }) };
  }

  /** Keys in creation order, optionally filtered; skips records past retention. */
  async *list(filter: { state?: PostState; accountId?: string } = {}, batch = 200): AsyncGenerator<PostRecord> {
    for (let start = 0; ; start += batch) {
      const ids = await this.redis.zrange(this.keys.index, String(start), String(start + batch - 1));
      if (ids.length === 0) return;
      for (const record of await this.getMany(ids)) {
        if (!record) continue;
        if (filter.state && record.state !== filter.state) continue;
        if (filter.accountId && record.accountId !== filter.accountId) continue;
        yield record;
      }
    }
  }
}
