/**
 * A slow X in front of the fake: an HTTP proxy on 127.0.0.1 that holds every
 * request for `delayMs` and then forwards it to `target`, so the request
 * reaches X `delayMs` after the client sent it (X's latency, as the worker
 * sees it). Benchmarks use it for latency; tests use it to keep calls in
 * flight, to see which calls were open at a given moment, and to wait until
 * none is.
 *
 * Forwarding only ever goes to the loopback target it was given.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request the proxy answered: when it came in, and when X's answer had been passed on. */
export interface ProxiedCall {
  readonly method: string;
  readonly path: string;
  readonly start: number;
  readonly end: number;
}

export interface LatencyProxy {
  readonly url: string;
  /** Requests forwarded to X so far. */
  forwarded(): number;
  /** Requests received and not answered yet (held, or waiting for X). */
  inFlight(): number;
  /** Resolves once no request is in flight (at once if none is). */
  idle(): Promise<void>;
  /** Every answered request, in the order the answers ended. */
  readonly calls: readonly ProxiedCall[];
  close(): Promise<void>;
}

export async function startLatencyProxy(target: string, delayMs: number): Promise<LatencyProxy> {
  const to = new URL(target);
  if (!/^127\.\d+\.\d+\.\d+$/.test(to.hostname)) throw new Error(`latency proxy only forwards to 127.0.0.0/8, not ${to.hostname}`);
  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
  const calls: ProxiedCall[] = [];
  let forwarded = 0;
  let inFlight = 0;
  let idleWaiters: (() => void)[] = [];
  const done = () => {
    if (--inFlight > 0) return;
    const waiters = idleWaiters;
    idleWaiters = [];
    for (const w of waiters) w();
  };
  const server = http.createServer((req, res) => {
    const start = Date.now();
    inFlight++;
    let up: http.ClientRequest | undefined;
    let answered = false;
    let clientGone = false;
    // The client gave up (its timeout, a reset): so does this hop.
    res.once('close', () => {
      if (answered) return;
      clientGone = true;
      up?.destroy();
    });
    const body: Buffer[] = [];
    req.on('data', (c: Buffer) => body.push(c));
    req.on('end', () => {
      setTimeout(() => {
        forwarded++;
        const call = http.request({ host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers, agent }, (ur) => {
          res.writeHead(ur.statusCode ?? 502, ur.headers);
          ur.pipe(res);
          ur.on('end', () => {
            answered = true;
            calls.push({ method: req.method ?? 'GET', path: req.url ?? '/', start, end: Date.now() });
          });
        });
        up = call;
        // In flight until the exchange with X is over, whichever way it ends.
        call.once('close', done);
        // The fake resetting a connection must reach the client as a reset.
        call.on('error', () => res.destroy());
        // A request the client sent still reaches X after the delay, even if
        // the client has given up meanwhile (then X sees the connection close).
        call.end(Buffer.concat(body), () => {
          if (clientGone) call.destroy();
        });
      }, delayMs);
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    forwarded: () => forwarded,
    inFlight: () => inFlight,
    idle: () => (inFlight === 0 ? Promise.resolve() : new Promise<void>((resolve) => idleWaiters.push(resolve))),
    calls,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
        agent.destroy();
      }),
  };
}
