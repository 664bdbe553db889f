import { AsyncLocalStorage } from 'node:async_hooks';
import { XDeadlineError } from '../domain/outcome.js';

/**
 * A hard deadline on one call to X that the client library cannot escape.
 *
 * twitter-api-v2's `timeout` is a socket idle timeout, and a 2xx whose
 * gzip body is cut mid-stream leaves its promise pending forever (the
 * gunzip stream never ends, and the socket's close is ignored once a
 * response has begun). So every call runs under a timer of its own: when it
 * fires, the call's requests are aborted (which destroys their sockets) and
 * the call rejects with `XDeadlineError`, whatever the library still waits for.
 *
 * The requests get the call's AbortSignal through the base-URL plugin
 * (`attachDeadlineSignal`), for calls made inside `withDeadline`.
 */
const current = new AsyncLocalStorage<AbortSignal>();

/** The hard deadline for a socket timeout: a quarter more, at most 1 s more. */
export function deadlineFor(timeoutMs: number): number {
  return timeoutMs + Math.min(1_000, Math.ceil(timeoutMs / 4));
}

export async function withDeadline<T>(ms: number, what: string, call: () => Promise<T>): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new XDeadlineError(what, ms));
      controller.abort();
    }, ms);
  });
  const run = current.run(controller.signal, call);
  // The call may still settle after the deadline won: nobody listens then.
  run.catch(() => undefined);
  try {
    return await Promise.race([run, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * For twitter-api-v2's `onBeforeRequest`: give the request (the options
 * passed to `http.request`) the signal of the deadline it runs under.
 */
export function attachDeadlineSignal(requestOptions: { signal?: AbortSignal }): void {
  const signal = current.getStore();
  if (signal) requestOptions.signal = signal;
}
