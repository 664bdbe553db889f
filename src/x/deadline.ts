import { AsyncLocalStorage } from 'node:async_hooks';
import type { Socket } from 'node:net';
import { XDeadlineError } from '../domain/outcome.js';

/**
 * A hard deadline on one call to X that the client library cannot escape.
 *
 * twitter-api-v2's `timeout` is a socket idle timeout, and a 2xx whose
 * gzip body is cut mid-stream leaves its promise pending forever (the
 * gunzip stream never ends, and the socket's close is ignored once a
 * response has begun). So every call runs under a timer of its own: when it
 * fires, the call's sockets are destroyed and the call rejects with
 * `XDeadlineError`, whatever the library is still waiting for.
 *
 * The sockets are found through the request's debug hook, installed by the
 * base-URL plugin (`trackRequestSockets`) for calls made inside `withDeadline`.
 */
interface CallContext {
  readonly sockets: Set<Socket>;
}

const current = new AsyncLocalStorage<CallContext>();

/** The hard deadline for a socket timeout: a quarter more, at most 1 s more. */
export function deadlineFor(timeoutMs: number): number {
  return timeoutMs + Math.min(1_000, Math.ceil(timeoutMs / 4));
}

export async function withDeadline<T>(ms: number, what: string, call: () => Promise<T>): Promise<T> {
  const ctx: CallContext = { sockets: new Set() };
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      for (const socket of ctx.sockets) socket.destroy();
      reject(new XDeadlineError(what, ms));
    }, ms);
  });
  const run = current.run(ctx, call);
  // The call may still settle after the deadline won: nobody listens then.
  run.catch(() => undefined);
  try {
    return await Promise.race([run, expired]);
  } finally {
    clearTimeout(timer);
  }
}

type DebugHandler = (event: string, data?: { socket?: Socket }) => void;

/** For twitter-api-v2's `onBeforeRequestConfig`: remember the sockets of requests made under a deadline. */
export function trackRequestSockets(params: { requestEventDebugHandler?: DebugHandler }): void {
  const ctx = current.getStore();
  if (!ctx) return;
  const previous = params.requestEventDebugHandler;
  // One handler per request: its socket belongs to this call only until the
  // request closes (a keep-alive socket then serves other calls).
  let socket: Socket | undefined;
  params.requestEventDebugHandler = (event, data) => {
    if (event === 'socket' && data?.socket) ctx.sockets.add((socket = data.socket));
    else if (event === 'close' && socket) ctx.sockets.delete(socket);
    previous?.(event, data);
  };
}
