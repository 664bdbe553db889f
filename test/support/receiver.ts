/**
 * A real webhook receiver for tests: node:http on a free port of 127.0.0.1
 * that answers as told (200, 500, hang, reset the connection) and can go
 * down (the port refuses connections) and come back on the same port. It
 * checks each request's signature and, like a receiver that dedupes by
 * event id, processes an event the first time it answers 200 for it.
 */
import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { SIGNATURE_HEADER, verify } from '../../src/webhooks/signing.js';
import { freePort } from './ports.js';

export type Behaviour = 'ok' | '500' | 'hang' | 'reset';

export interface Received {
  readonly id: string;
  readonly body: string;
  readonly event: Record<string, unknown>;
  readonly signature: string | undefined;
  /** The Authorization header (a URL's userinfo arrives as Basic auth). */
  readonly authorization: string | undefined;
  readonly valid: boolean;
  readonly at: number;
  readonly answer: Behaviour;
}

export interface Receiver {
  readonly url: string;
  readonly port: number;
  /** How the next requests are answered; a function decides per request. */
  behaviour: Behaviour | ((event: Record<string, unknown>) => Behaviour);
  /** Every request that came with a body, in arrival order (answered or not). */
  readonly received: Received[];
  /** The first request answered 200 for each event id: what a deduping receiver processed. */
  readonly processed: Map<string, Received>;
  /** Requests answered 200 for an event already processed. */
  duplicates: number;
  /** Emits 'request' (Received) for each request, once its answer is decided. */
  readonly events: EventEmitter;
  readonly isUp: boolean;
  /** Stop listening and drop every connection (held ones too): the port refuses connections. */
  down(): Promise<void>;
  /** Listen again on the same port. */
  up(): Promise<void>;
  close(): Promise<void>;
}

export async function startReceiver(secret: string, opts: { port?: number; path?: string } = {}): Promise<Receiver> {
  const port = opts.port ?? (await freePort());
  const held = new Set<ServerResponse>();
  const events = new EventEmitter();
  let listening = false;

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let event: Record<string, unknown> = {};
      try {
        event = JSON.parse(body) as Record<string, unknown>;
      } catch {
        // recorded as is
      }
      const signature = req.headers[SIGNATURE_HEADER.toLowerCase()] as string | undefined;
      const answer = typeof r.behaviour === 'function' ? r.behaviour(event) : r.behaviour;
      const { authorization } = req.headers;
      const got: Received = { id: String(event.id), body, event, signature, authorization, valid: verify(secret, body, signature).ok, at: Date.now(), answer };
      r.received.push(got);
      if (answer === 'ok') {
        if (r.processed.has(got.id)) r.duplicates++;
        else r.processed.set(got.id, got);
        res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok');
      } else if (answer === '500') {
        res.writeHead(500).end('busy');
      } else if (answer === 'reset') {
        req.socket.resetAndDestroy();
      } else {
        held.add(res);
        res.on('close', () => held.delete(res));
      }
      events.emit('request', got);
    });
  };
  const server = createServer(onRequest);
  const sockets = new Set<Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        listening = true;
        resolve();
      });
    });
  const stop = () =>
    new Promise<void>((resolve) => {
      if (!listening) return resolve();
      listening = false;
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
    });

  const r: Receiver = {
    url: `http://127.0.0.1:${port}${opts.path ?? '/hook'}`,
    port,
    behaviour: 'ok',
    received: [],
    processed: new Map(),
    duplicates: 0,
    events,
    get isUp() {
      return listening;
    },
    down: stop,
    up: listen,
    close: stop,
  };
  await listen();
  return r;
}
