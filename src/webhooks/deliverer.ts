import { Cluster } from 'ioredis';
import type { WebhookConfig } from '../config.js';
import { afterFailure, isDelivered, type RetryPolicy } from '../domain/webhook.js';
import { eventView } from '../domain/view.js';
import type { RedisClient } from '../ledger/ledger.js';
import type { LedgerKeys } from '../ledger/keys.js';
import type { Logger } from '../log.js';
import { SIGNATURE_HEADER, sign } from './signing.js';
import { type ClaimedEntry, RECENT_MAX, type WebhookTarget, WebhookStore, webhookTarget } from './store.js';

/**
 * The webhook deliverer: POSTs each outcome event of the `{prefix}:events`
 * stream, signed, to every configured URL, at least once.
 *
 * - One loop per URL, each with its own tries in flight (bounded by
 *   `concurrency`) and its own timeouts: a slow or dead receiver holds only
 *   its own loop. Publishing never waits on any of it: the events are
 *   written by the ledger's scripts and read from here.
 * - Any number of deliverers (one per worker process) serve the same URLs
 *   together: each event enters a URL's pending set once (an atomic intake
 *   that moves the URL's cursor), and each try takes a lease on it; a
 *   process that dies mid-try leaves a lease that ends, and any deliverer
 *   tries the event again.
 * - A failed try is due again after an exponential backoff with a cap; past
 *   `maxTries` the event goes to the URL's dead-letter list
 *   (`xactly webhooks failed`, `xactly webhooks retry`).
 */
export interface DelivererOptions {
  /** For the deliverer's (non-blocking) commands; a connection of its own is made to wait on the stream. */
  readonly redis: RedisClient;
  readonly keys: LedgerKeys;
  readonly config: WebhookConfig;
  readonly logger: Logger;
  readonly clock?: () => number;
  /** Longest an idle URL loop waits before it looks for retries that came due and leases that ended (default 1 s). */
  readonly pollMs?: number;
  /** A try's lease is its timeout plus this (default 5 s): past it, another deliverer may try the event again. */
  readonly leaseMarginMs?: number;
  /** Where a URL served for the first time starts in the stream: 'now' (default: only new events) or 'oldest' (every event kept). */
  readonly start?: 'now' | 'oldest';
  readonly random?: () => number;
}

export interface Deliverer {
  readonly targets: readonly WebhookTarget[];
  /**
   * Stop looking for work; let tries in flight finish for up to `graceMs`
   * (default: the timeout), then abort the rest without recording them
   * (their leases end and any deliverer tries them again). Idempotent.
   */
  stop(graceMs?: number): Promise<'drained' | 'forced'>;
}

/** Events taken in per intake step. */
const INTAKE_BATCH = 200;

const USER_AGENT = 'xactly-webhooks/1';

interface TryResult {
  readonly status: number;
  readonly ms: number;
  readonly error?: string;
  /** The deliverer was stopped (forced) mid-try: record nothing. */
  readonly abandoned?: boolean;
}

/** What went wrong with a request, in a few words (never the URL: it may hold a token). */
function failureOf(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError') return `timeout after ${timeoutMs} ms`;
  const code = e?.cause?.code;
  if (code) return code;
  // Messages may quote the URL (with its query, even its userinfo): it is stored and shown, so it goes.
  return (e?.cause?.message ?? e?.message ?? String(err)).replace(/[a-z][a-z0-9+.-]*:\/\/\S*/gi, '<url>').slice(0, 200);
}

/**
 * Where a URL's POSTs go, and the header its userinfo becomes: fetch
 * refuses a URL with credentials in it, and Basic auth is what
 * `https://user:pass@host/…` means.
 */
export function endpointOf(url: string): { readonly url: string; readonly headers: Record<string, string> } {
  const u = new URL(url);
  if (!u.username && !u.password) return { url, headers: {} };
  const basic = Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`, 'utf8').toString('base64');
  u.username = '';
  u.password = '';
  return { url: u.href, headers: { Authorization: `Basic ${basic}` } };
}

/** One POST, bounded by `timeoutMs` from start to the end of the answer's body; redirects are not followed. */
async function post(url: string, body: string, headers: Record<string, string>, timeoutMs: number, stop: AbortSignal): Promise<TryResult> {
  const started = performance.now();
  const ms = () => Math.round(performance.now() - started);
  // A controller held by its own timer, not AbortSignal.any([stop,
  // AbortSignal.timeout()]): fetch follows a signal weakly, and once GC took
  // the composite (nothing else held it) a hanging receiver held the try
  // forever (nodejs/node#55428; seen under CI's GC pressure).
  const controller = new AbortController();
  const onStop = () => controller.abort(stop.reason);
  stop.addEventListener('abort', onStop, { once: true });
  const timer = setTimeout(() => controller.abort(new DOMException(`timeout after ${timeoutMs} ms`, 'TimeoutError')), timeoutMs);
  try {
    const res = await fetch(url, { method: 'POST', headers, body, signal: controller.signal, redirect: 'manual' });
    // Read the answer to its end (within the timeout) so the connection can be reused.
    await res.arrayBuffer();
    return { status: res.status, ms: ms(), ...(!isDelivered(res.status) && { error: `HTTP ${res.status}` }) };
  } catch (err) {
    if (stop.aborted) return { status: 0, ms: ms(), abandoned: true };
    return { status: 0, ms: ms(), error: failureOf(err, timeoutMs) };
  } finally {
    clearTimeout(timer);
    stop.removeEventListener('abort', onStop);
  }
}

/** A wait that ends after `ms` or at the next `wake()`, whichever is first. */
function waiter(): { wake(): void; wait(ms: number): Promise<void> } {
  let wakeUp: (() => void) | undefined;
  return {
    wake: () => wakeUp?.(),
    wait: (ms) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.max(0, ms));
        function done() {
          clearTimeout(timer);
          wakeUp = undefined;
          resolve();
        }
        wakeUp = done;
      }),
  };
}

/** The body (the event as readers outside see it, the same for every try) and the headers of a try, signed at `now`. */
export function requestOf(secret: string, { id, entry }: ClaimedEntry, now: number): { body: string; headers: Record<string, string> } {
  const body = JSON.stringify(eventView({ id, ...entry.f }));
  return {
    body,
    headers: {
      'Content-Type': 'application/json',
      'User-Agent': USER_AGENT,
      [SIGNATURE_HEADER]: sign(secret, body, now),
      'X-Xactly-Event-Id': id,
      'X-Xactly-Event-Type': entry.f.type ?? '',
      'X-Xactly-Try': String(entry.tries),
    },
  };
}

/** What every URL loop of one deliverer shares. */
interface LoopContext {
  readonly store: WebhookStore;
  readonly config: WebhookConfig;
  readonly policy: RetryPolicy;
  readonly clock: () => number;
  readonly pollMs: number;
  readonly leaseMs: number;
  readonly start: 'now' | 'oldest';
  readonly random: (() => number) | undefined;
  /** Aborted by a forced stop: tries in flight end without being recorded. */
  readonly abandon: AbortSignal;
  stopping(): boolean;
  readonly log: Logger;
}

interface UrlLoop {
  readonly wake: () => void;
  readonly inFlight: ReadonlySet<Promise<void>>;
  /** Resolves once the loop has stopped looking for work (tries may still be in flight). */
  readonly done: Promise<void>;
}

/** One URL's loop: its own tries in flight, its own waits; nothing in it waits on another URL. */
function urlLoop(ctx: LoopContext, target: WebhookTarget): UrlLoop {
  const { store, config, clock, pollMs } = ctx;
  const w = waiter();
  const inFlight = new Set<Promise<void>>();
  const log = ctx.log.child({ urlId: target.id, url: target.label });
  const endpoint = endpointOf(target.url);

  async function attempt({ id, entry }: ClaimedEntry): Promise<void> {
    const { body, headers } = requestOf(config.secret, { id, entry }, clock());
    const r = await post(endpoint.url, body, { ...headers, ...endpoint.headers }, config.timeoutMs, ctx.abandon);
    if (r.abandoned) return;
    const now = clock();
    const base = { urlId: target.id, host: target.host, eventId: id, tries: entry.tries, now, status: r.status, ms: r.ms, recentMax: RECENT_MAX };
    if (!r.error) {
      await store.settle({ ...base, outcome: 'delivered' });
      return;
    }
    const next = afterFailure(entry.tries, ctx.policy, now, ctx.random);
    const fields = { eventId: id, type: entry.f.type, tries: entry.tries, error: r.error };
    if (next.verdict === 'retry') {
      if ((await store.settle({ ...base, outcome: 'retry', retryAt: next.at, error: r.error })) === 'ok') {
        log.debug({ ...fields, event: 'webhook-retry', retryAt: next.at }, 'webhook try failed; will try again');
      }
    } else if ((await store.settle({ ...base, outcome: 'dead', error: r.error })) === 'ok') {
      log.warn({ ...fields, event: 'webhook-dead-letter' }, 'webhook event dead-lettered after its last try');
    }
  }

  function launch(c: ClaimedEntry) {
    const p = attempt(c)
      .catch((err: unknown) =>
        log.warn({ err, eventId: c.id, event: 'webhook-record-failed' }, 'could not record a webhook try; it is tried again when its lease ends'),
      )
      .finally(() => {
        inFlight.delete(p);
        w.wake();
      });
    inFlight.add(p);
  }

  /** One step: take new events in, lease what is due, start its tries. Answers when to look again (ms; 0 = at once). */
  async function step(): Promise<number> {
    const now = clock();
    const got = await store.intake({
      urlId: target.id,
      host: target.host,
      now,
      max: INTAKE_BATCH,
      start: ctx.start,
      types: config.events,
      accounts: config.accounts,
    });
    if (got.skipped > 0) {
      log.error(
        { event: 'webhook-events-skipped', skipped: got.skipped, after: got.skippedFrom, before: got.skippedTo || undefined },
        'events were trimmed from the stream before this URL took them (no deliverer ran for longer than XACTLY_EVENTS_RETENTION_HOURS); they are not delivered',
      );
    }
    const free = config.concurrency - inFlight.size;
    if (free <= 0) return pollMs;
    const { entries, nextDueAt } = await store.claim(target.id, now, ctx.leaseMs, free);
    for (const c of entries) launch(c);
    if (got.taken === INTAKE_BATCH || entries.length === free) return 0;
    return nextDueAt === undefined ? pollMs : Math.min(pollMs, Math.max(0, nextDueAt - clock()));
  }

  async function run(): Promise<void> {
    while (!ctx.stopping()) {
      let next: number;
      try {
        next = await step();
      } catch (err) {
        if (ctx.stopping()) break;
        log.warn({ err, event: 'webhook-loop-error' }, 'webhook loop: Redis command failed; trying again');
        next = pollMs;
      }
      if (next > 0 && !ctx.stopping()) await w.wait(next);
    }
  }

  return { wake: w.wake, inFlight, done: run() };
}

/** Call `onNew` as soon as the stream has entries past the newest one seen, on a connection of its own (it blocks). */
async function watchStream(watcher: RedisClient, stream: string, pollMs: number, stopping: () => boolean, onNew: () => void): Promise<void> {
  const latest = (await watcher.xrevrange(stream, '+', '-', 'COUNT', 1).catch(() => [])) as [string, string[]][];
  let last = latest[0]?.[0] ?? '0-0';
  while (!stopping()) {
    try {
      const got = (await watcher.xread('COUNT', 100, 'BLOCK', pollMs, 'STREAMS', stream, last)) as [string, [string, string[]][]][] | null;
      const entries = got?.[0]?.[1];
      if (entries?.length) {
        last = entries.at(-1)![0];
        onNew();
      }
    } catch {
      if (!stopping()) await new Promise((r) => setTimeout(r, pollMs));
    }
  }
}

export async function startDeliverer(opts: DelivererOptions): Promise<Deliverer> {
  const { redis, keys, config, logger } = opts;
  const store = new WebhookStore(redis, keys);
  const targets = config.urls.map(webhookTarget);
  const log = logger.child({ component: 'webhooks' });
  const abandon = new AbortController();
  let stopping = false;
  for (const t of targets) await store.register(t);

  const ctx: LoopContext = {
    store,
    config,
    policy: { maxTries: config.maxTries, baseMs: config.backoffBaseMs, maxMs: config.backoffMaxMs },
    clock: opts.clock ?? Date.now,
    pollMs: opts.pollMs ?? 1_000,
    leaseMs: config.timeoutMs + (opts.leaseMarginMs ?? 5_000),
    start: opts.start ?? 'now',
    random: opts.random,
    abandon: abandon.signal,
    stopping: () => stopping,
    log,
  };
  const loops = targets.map((t) => urlLoop(ctx, t));
  // The loops poll anyway; waking them on each new entry makes delivery prompt.
  const watcher: RedisClient = redis instanceof Cluster ? redis.duplicate() : redis.duplicate();
  watcher.on('error', () => undefined);
  const watching = watchStream(watcher, keys.events, ctx.pollMs, ctx.stopping, () => loops.forEach((l) => l.wake()));
  log.info({ event: 'webhooks-ready', urls: targets.map((t) => ({ id: t.id, url: t.label })) }, 'webhook deliverer started');

  let stopped: Promise<'drained' | 'forced'> | undefined;
  return {
    targets,
    stop(graceMs = config.timeoutMs) {
      stopped ??= (async () => {
        stopping = true;
        for (const l of loops) l.wake();
        watcher.disconnect();
        await Promise.all([watching, ...loops.map((l) => l.done)]);
        const flying = loops.flatMap((l) => [...l.inFlight]);
        let timer: NodeJS.Timeout | undefined;
        const bound = new Promise<'forced'>((r) => (timer = setTimeout(() => r('forced'), graceMs)));
        const how = await Promise.race([Promise.all(flying).then(() => 'drained' as const), bound]);
        clearTimeout(timer);
        if (how === 'forced') {
          abandon.abort();
          await Promise.all(flying);
        }
        log.info({ event: 'webhooks-stopped', how }, 'webhook deliverer stopped');
        return how;
      })();
      return stopped;
    },
  };
}
