/**
 * Waiting in tests and benchmarks: one poll loop for conditions that have no
 * event (a row in Redis, a line in another process's log file), and a
 * bounded wait for an event where there is one. Prefer the event.
 */
import { once, type EventEmitter } from 'node:events';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Poll `probe` every `everyMs` until it returns something truthy, and return
 * that; throw after `timeoutMs` naming `what` (the thing under test has no
 * event to wait on). `what` may be a function: its answer, asked at the
 * timeout, is what the error says, so a failure shows the state it ended in.
 */
export async function waitUntil<T>(
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  what: string | (() => string | Promise<string>),
  timeoutMs = 20_000,
  everyMs = 25,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${typeof what === 'string' ? what : await what()}`);
    await sleep(everyMs);
  }
}

/** The next `event` of `emitter` (its arguments), or a throw naming `what` after `timeoutMs`. */
export async function nextEvent(emitter: EventEmitter, event: string, what: string, timeoutMs = 20_000): Promise<unknown[]> {
  try {
    return await once(emitter, event, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    throw err;
  }
}
