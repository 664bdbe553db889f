import { createHash } from 'node:crypto';
import { eventView } from '../domain/view.js';
import type { RedisClient } from '../ledger/ledger.js';
import type { LedgerKeys } from '../ledger/keys.js';
import {
  type Script,
  verdictOf,
  WEBHOOK_CLAIM,
  WEBHOOK_INTAKE,
  WEBHOOK_RETRY,
  WEBHOOK_SCRIPTS,
  WEBHOOK_SETTLE,
  WEBHOOK_SETTLE_VERDICTS,
  type WebhookIntakeArgs,
  type WebhookSettleArgs,
} from '../ledger/scripts.js';

/**
 * Webhook state in Redis (keys in src/ledger/keys.ts, scripts in
 * src/ledger/scripts.ts): per URL, the intake cursor into the events stream,
 * the events it still owes (pending or dead-lettered), their schedule, and
 * the latest outcomes; and the read side the CLI and the board use.
 */

/** A URL as xactly names it outside: an id and its host, never the URL itself (its path or query may hold a token). */
export interface WebhookTarget {
  readonly url: string;
  /** Stable id of the URL (the first 12 hex digits of its SHA-256): its Redis keys, the CLI's --url. */
  readonly id: string;
  /** host[:port], the metrics label. */
  readonly host: string;
  /** scheme://host, with `/…` when the URL has a path: safe to show. */
  readonly label: string;
}

export function webhookTarget(url: string): WebhookTarget {
  const u = new URL(url);
  return {
    url,
    id: createHash('sha256').update(url).digest('hex').slice(0, 12),
    host: u.host,
    label: `${u.protocol}//${u.host}${u.pathname !== '/' || u.search ? '/…' : ''}`,
  };
}

/** What a URL owes for one event, as stored. */
export interface StoredEntry {
  /** The event's fields as the stream holds them. */
  readonly f: Record<string, string>;
  /** Tries so far (the latest one's fencing token). */
  readonly tries: number;
  readonly triedAt?: number;
  readonly error?: string;
  readonly deadAt?: number;
  /** How many times an operator put it back from the dead-letter list. */
  readonly retried?: number;
}

export interface ClaimedEntry {
  readonly id: string;
  readonly entry: StoredEntry;
}

/** Recent outcomes kept per URL for the board. */
export const RECENT_MAX = 100;

type ScriptRedis = RedisClient & Record<string, (...args: (string | number)[]) => Promise<unknown>>;

export class WebhookStore {
  private readonly redis: ScriptRedis;

  constructor(
    redis: RedisClient,
    readonly keys: LedgerKeys,
  ) {
    const r = redis as ScriptRedis;
    for (const script of WEBHOOK_SCRIPTS) {
      if (typeof r[script.name] !== 'function') r.defineCommand(script.name, { numberOfKeys: script.keyCount, lua: script.lua });
    }
    this.redis = r;
  }

  private call<A>(script: Script<A>, a: A): Promise<unknown> {
    return this.redis[script.name]!(...script.args(this.keys, a));
  }

  /** Name the URL in the registry the board and the CLI read (its host and label only). */
  async register(t: WebhookTarget): Promise<void> {
    await this.redis.hset(this.keys.webhooks, t.id, JSON.stringify({ host: t.host, label: t.label }));
  }

  /** Take new events of the stream in (see WEBHOOK_INTAKE). */
  async intake(a: WebhookIntakeArgs): Promise<{ taken: number; queued: number; skipped: number; cursor: string; skippedFrom: string; skippedTo: string }> {
    const [taken, queued, skipped, cursor, skippedFrom, skippedTo] = (await this.call(WEBHOOK_INTAKE, a)) as [number, number, number, string, string, string];
    return { taken, queued, skipped, cursor, skippedFrom, skippedTo };
  }

  /** Lease up to `max` due entries for a try; `nextDueAt` is when the next one (of the rest) is due. */
  async claim(urlId: string, now: number, leaseMs: number, max: number): Promise<{ entries: ClaimedEntry[]; nextDueAt: number | undefined }> {
    const [next, ...flat] = (await this.call(WEBHOOK_CLAIM, { urlId, now, leaseMs, max })) as string[];
    const entries: ClaimedEntry[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) entries.push({ id: flat[i]!, entry: JSON.parse(flat[i + 1]!) as StoredEntry });
    return { entries, nextDueAt: next ? Number(next) : undefined };
  }

  async settle(a: WebhookSettleArgs): Promise<(typeof WEBHOOK_SETTLE_VERDICTS)[number]> {
    return verdictOf('webhook settle', WEBHOOK_SETTLE_VERDICTS, await this.call(WEBHOOK_SETTLE, a));
  }

  /** Put dead-lettered events of a URL back for delivery; answers how many were. */
  async retry(urlId: string, eventIds: readonly string[], now: number): Promise<number> {
    if (eventIds.length === 0) return 0;
    return Number(await this.call(WEBHOOK_RETRY, { urlId, now, eventIds }));
  }
}

// ---------------------------------------------------------------------------
// The read side: the CLI (`xactly webhooks failed`) and the board's Webhooks page.

export interface WebhookEntryView {
  readonly id: string;
  readonly type: string;
  readonly slotId?: string;
  readonly postId?: string;
  readonly accountId?: string;
  readonly tries: number;
  readonly error?: string;
  /** Pending: when the next try is due (or, while one is in flight, when its lease ends). */
  readonly dueAt?: string;
  /** Dead-lettered: when it was given up on. */
  readonly deadAt?: string;
  /** The body it is POSTed with. */
  readonly event: Record<string, unknown>;
}

export interface WebhookOutcome {
  readonly id: string;
  readonly type: string;
  readonly at: string;
  readonly try: number;
  readonly outcome: 'delivered' | 'retry' | 'dead';
  /** The receiver's HTTP status; 0 when it did not answer. */
  readonly status: number;
  readonly ms: number;
  readonly error?: string;
}

export interface WebhookStatus {
  readonly urlId: string;
  readonly host: string;
  readonly label: string;
  /** The last stream id taken in ('' before the first intake). */
  readonly cursor: string;
  /** Since the URL was first served: events delivered, failed tries retried, events dead-lettered, events trimmed from the stream before it took them. */
  readonly counts: { readonly delivered: number; readonly retried: number; readonly deadLettered: number; readonly skipped: number };
  readonly pending: number;
  readonly dead: number;
  /** The soonest pending entries, then the latest dead letters (up to `limit` each), then the latest outcomes. */
  readonly pendingEntries: readonly WebhookEntryView[];
  readonly deadLetters: readonly WebhookEntryView[];
  readonly recent: readonly WebhookOutcome[];
}

const iso = (ms: number) => new Date(ms).toISOString();

function entryView(id: string, raw: string | null | undefined, score: { dueAt?: number; deadAt?: number }): WebhookEntryView | undefined {
  if (!raw) return undefined;
  const e = JSON.parse(raw) as StoredEntry;
  return {
    id,
    type: e.f.type ?? '',
    ...(e.f.slotId !== undefined && { slotId: e.f.slotId }),
    ...(e.f.postId !== undefined && { postId: e.f.postId }),
    ...(e.f.account !== undefined && { accountId: e.f.account }),
    tries: e.tries,
    ...(e.error && { error: e.error }),
    ...(score.dueAt !== undefined && { dueAt: iso(score.dueAt) }),
    ...(score.deadAt !== undefined && { deadAt: iso(score.deadAt) }),
    event: eventView({ id, ...e.f }),
  };
}

/** Pairs of a WITHSCORES reply. */
function pairs(flat: string[]): [string, number][] {
  const out: [string, number][] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([flat[i]!, Number(flat[i + 1])]);
  return out;
}

/**
 * Every webhook URL a deliverer has served, with its counts, its soonest
 * pending entries, its latest dead letters and outcomes (`limit` of each,
 * default 50). Reads Redis only: any process can call it (the board need
 * not know the URLs).
 */
export async function webhookStatus(
  redis: RedisClient,
  keys: LedgerKeys,
  opts: { readonly limit?: number; readonly urlId?: string } = {},
): Promise<WebhookStatus[]> {
  const limit = opts.limit ?? 50;
  const registry = (await redis.hgetall(keys.webhooks)) as Record<string, string>;
  const ids = Object.keys(registry)
    .filter((id) => !opts.urlId || id === opts.urlId)
    .sort();
  return Promise.all(
    ids.map(async (urlId) => {
      const { host, label } = JSON.parse(registry[urlId]!) as { host: string; label: string };
      const [state, pending, dead, due, deadIds, recent] = await Promise.all([
        redis.hgetall(keys.webhookState(urlId)) as Promise<Record<string, string>>,
        redis.zcard(keys.webhookDue(urlId)),
        redis.zcard(keys.webhookDead(urlId)),
        limit > 0 ? redis.zrange(keys.webhookDue(urlId), '0', String(limit - 1), 'WITHSCORES') : [],
        limit > 0 ? redis.zrevrange(keys.webhookDead(urlId), 0, limit - 1, 'WITHSCORES') : [],
        limit > 0 ? redis.lrange(keys.webhookRecent(urlId), 0, limit - 1) : [],
      ]);
      const dueP = pairs(due);
      const deadP = pairs(deadIds);
      const ids = [...dueP, ...deadP].map(([id]) => id);
      const raws = ids.length ? await redis.hmget(keys.webhookEntries(urlId), ...ids) : [];
      const pendingEntries = dueP.flatMap(([id, at], i) => entryView(id, raws[i], { dueAt: at }) ?? []);
      const deadLetters = deadP.flatMap(([id, at], i) => entryView(id, raws[dueP.length + i], { deadAt: at }) ?? []);
      const n = (f: string) => Number(state[f] ?? 0);
      return {
        urlId,
        host,
        label,
        cursor: state.cursor ?? '',
        counts: { delivered: n('delivered'), retried: n('retried'), deadLettered: n('dead'), skipped: n('skipped') },
        pending,
        dead,
        pendingEntries,
        deadLetters,
        recent: recent.map((r) => {
          const o = JSON.parse(r) as Omit<WebhookOutcome, 'at'> & { at: number };
          return { ...o, at: iso(o.at) };
        }),
      };
    }),
  );
}

/** Every dead letter of every URL (or of one), newest first per URL. */
export async function* deadLetters(
  redis: RedisClient,
  keys: LedgerKeys,
  urlId?: string,
  batch = 500,
): AsyncGenerator<WebhookEntryView & { urlId: string; host: string }> {
  const registry = (await redis.hgetall(keys.webhooks)) as Record<string, string>;
  for (const id of Object.keys(registry).sort()) {
    if (urlId && id !== urlId) continue;
    const { host } = JSON.parse(registry[id]!) as { host: string };
    for (let start = 0; ; start += batch) {
      const page = pairs(await redis.zrevrange(keys.webhookDead(id), start, start + batch - 1, 'WITHSCORES'));
      if (page.length === 0) break;
      const raws = await redis.hmget(keys.webhookEntries(id), ...page.map(([e]) => e));
      for (const [i, [eventId, at]] of page.entries()) {
        const v = entryView(eventId, raws[i], { deadAt: at });
        if (v) yield { urlId: id, host, ...v };
      }
    }
  }
}

/**
 * Put dead letters back for delivery: one event (`eventId`) or all of them
 * (`all`), of every URL or of one (`urlId`). Answers how many per URL id.
 * The deliverers pick them up on their next look (within their poll interval).
 */
export async function retryDeadLetters(
  redis: RedisClient,
  keys: LedgerKeys,
  which: { readonly eventId?: string; readonly all?: boolean; readonly urlId?: string },
  now: number = Date.now(),
): Promise<Map<string, number>> {
  const store = new WebhookStore(redis, keys);
  const ids = Object.keys((await redis.hgetall(keys.webhooks)) as Record<string, string>).filter((id) => !which.urlId || id === which.urlId);
  const out = new Map<string, number>();
  for (const urlId of ids) {
    let n = 0;
    if (which.eventId) n = await store.retry(urlId, [which.eventId], now);
    else if (which.all) {
      // Each pass takes the oldest dead letters; those put back leave the set.
      for (;;) {
        const page = await redis.zrange(keys.webhookDead(urlId), '0', '499');
        if (page.length === 0) break;
        n += await store.retry(urlId, page, now);
      }
    }
    out.set(urlId, n);
  }
  return out;
}
