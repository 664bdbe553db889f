import { hostname } from 'node:os';
import type { RedisClient } from '../ledger/ledger.js';
import { globEscape, scanMatch } from '../ledger/drop.js';
import type { LedgerKeys } from '../ledger/keys.js';
import type { Logger } from '../log.js';

/**
 * Worker liveness for /healthz and /metrics. Each worker process refreshes a
 * key with a TTL; a worker that dies simply stops refreshing it, so no one has
 * to clean up after a SIGKILL.
 */
export const HEARTBEAT_INTERVAL_MS = 5_000;
/** A heartbeat older than this (3 missed beats) no longer counts as live. */
export const HEARTBEAT_FRESH_MS = 3 * HEARTBEAT_INTERVAL_MS;

export function workerId(): string {
  return `${hostname()}-${process.pid}`;
}

export interface Heartbeat {
  /** Stop beating and remove the key, so the worker stops counting at once. Idempotent. */
  stop(): Promise<void>;
}

export interface HeartbeatOptions {
  readonly redis: RedisClient;
  readonly keys: Pick<LedgerKeys, 'heartbeat'>;
  readonly workerId?: string;
  readonly logger?: Logger;
  readonly intervalMs?: number;
  readonly clock?: () => number;
}

/** Beat now and every interval; the timer never keeps the process alive. */
export function startHeartbeat(opts: HeartbeatOptions): Heartbeat {
  const key = opts.keys.heartbeat(opts.workerId ?? workerId());
  const intervalMs = opts.intervalMs ?? HEARTBEAT_INTERVAL_MS;
  const clock = opts.clock ?? Date.now;
  let pending = false;
  const beat = () => {
    // During a Redis outage commands queue up; one queued beat is enough.
    if (pending) return;
    pending = true;
    opts.redis
      .set(key, String(clock()), 'PX', 3 * intervalMs)
      .catch((err: unknown) => opts.logger?.warn({ err }, 'heartbeat failed'))
      .finally(() => {
        pending = false;
      });
  };
  beat();
  const timer = setInterval(beat, intervalMs);
  timer.unref();
  let stopped: Promise<void> | undefined;
  return {
    stop() {
      stopped ??= (async () => {
        clearInterval(timer);
        await opts.redis.del(key).catch(() => undefined);
      })();
      return stopped;
    },
  };
}

export interface WorkerLiveness {
  /** Worker processes with a fresh heartbeat. */
  readonly seen: number;
  /** Age of the newest heartbeat, null when there is none. */
  readonly lastSeenAgoMs: number | null;
}

/** Count live workers by scanning their heartbeat keys. */
export async function liveWorkers(redis: RedisClient, keys: Pick<LedgerKeys, 'heartbeat'>, now: number): Promise<WorkerLiveness> {
  const found: string[] = [];
  for await (const batch of scanMatch(redis, `${globEscape(keys.heartbeat(''))}*`)) found.push(...batch);
  const beats = found.length ? await redis.mget(...found) : [];
  let seen = 0;
  let newest: number | undefined;
  for (const v of beats) {
    const at = Number(v);
    if (v === null || !Number.isFinite(at)) continue;
    if (newest === undefined || at > newest) newest = at;
    if (now - at < HEARTBEAT_FRESH_MS) seen++;
  }
  return { seen, lastSeenAgoMs: newest === undefined ? null : Math.max(0, now - newest) };
}
