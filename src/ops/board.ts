import { createHash, timingSafeEqual } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import type { Queue } from 'bullmq';
import type { Ledger, RedisClient } from '../ledger/ledger.js';
import type { PublishJobData } from '../queue/jobs.js';
import type { Config } from '../config.js';
import { keyId } from '../domain/key.js';
import { QUEUE_NAMES } from '../ledger/keys.js';
import type { Logger } from '../log.js';
import { openLedger, openQueue, StartupError } from '../app.js';
import { createLifecycle } from '../queue/lifecycle.js';
import { type BoardPages, createPageKit, type NavItem } from './board-kit.js';
import { ledgerPages } from './board-ledger.js';
import { liveWorkers } from './health.js';
import { createMetrics } from './metrics.js';

/**
 * The operator's window: Bull Board on /board, the ledger's own pages on
 * /ledger (posts, one post, in doubt, accounts; board-ledger.ts), /metrics
 * for Prometheus, /healthz for probes and /api/posts/:slotId/:postId for one
 * key's ledger record. Everything but /healthz sits behind HTTP Basic auth.
 */
export const BOARD_BASE_PATH = '/board';

/** Longest a probe or a scrape waits for Redis before answering "down". */
const REDIS_PROBE_TIMEOUT_MS = 2_000;

export interface BoardOptions {
  readonly redis: RedisClient;
  readonly config: Pick<Config, 'prefix' | 'retentionMs' | 'boardUser' | 'boardPassword'>;
  readonly logger: Logger;
  /** Bull Board can only look (no retry, clean, pause, promote...). Default true. */
  readonly readOnly?: boolean;
  /** Serve without authentication when no credentials are configured. Default false: refuse to start. */
  readonly open?: boolean;
  /** Serve /metrics without authentication (for scrapers that cannot send any). Default false. */
  readonly metricsOpen?: boolean;
  readonly clock?: () => number;
  /** Account ids to list on the Accounts page besides those with a recorded standing (the accounts file's ids, never its contents). */
  readonly accountIds?: () => Promise<readonly string[]>;
  /**
   * More pages next to the ledger's, behind the same auth, in the same
   * layout and nav (extension point, see board-kit.ts: e.g. webhooks).
   */
  readonly pages?: readonly BoardPages[];
}

export interface BoardServer {
  readonly app: Express;
  /** Listen on host:port (port 0 picks a free one); resolves with the base URL. */
  listen(port: number, host?: string): Promise<{ url: string; port: number }>;
  /** Stop listening, drop open connections, close the queues (not the Redis connection). Idempotent. */
  close(): Promise<void>;
}

type Credentials = { readonly user: string; readonly password: string } | undefined;

/** The credentials the board must check, or undefined when it may run open; throws when it may not. */
export function boardCredentials(config: Pick<Config, 'boardUser' | 'boardPassword'>, open = false): Credentials {
  const { boardUser: user, boardPassword: password } = config;
  if (user && password) return { user, password };
  if (user || password) {
    throw new StartupError(`set both BOARD_USER and BOARD_PASSWORD (only ${user ? 'BOARD_USER' : 'BOARD_PASSWORD'} is set)`);
  }
  if (open) return undefined;
  throw new StartupError('the board needs BOARD_USER and BOARD_PASSWORD (HTTP Basic auth); pass --open to serve it without authentication');
}

/** Hashing first makes the buffers equal-length, so the comparison leaks neither content nor length. */
function sameSecret(given: string, expected: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();
  return timingSafeEqual(digest(given), digest(expected));
}

function basicAuth(creds: NonNullable<Credentials>, logger: Logger) {
  return (req: Request, res: Response, next: NextFunction) => {
    const m = /^Basic ([A-Za-z0-9+/=]+)$/i.exec(req.headers.authorization ?? '');
    const decoded = m ? Buffer.from(m[1]!, 'base64').toString('utf8') : '';
    const colon = decoded.indexOf(':');
    const user = colon >= 0 ? decoded.slice(0, colon) : '';
    const password = colon >= 0 ? decoded.slice(colon + 1) : '';
    // Both comparisons always run: a wrong user costs the same as a wrong password.
    const userOk = sameSecret(user, creds.user);
    const passwordOk = sameSecret(password, creds.password);
    if (m && colon >= 0 && userOk && passwordOk) return next();
    if (m) logger.debug({ path: req.path, ip: req.ip }, 'board: wrong credentials');
    res.set('WWW-Authenticate', 'Basic realm="xactly", charset="UTF-8"').status(401).json({ error: 'authentication required' });
  };
}

/**
 * Basic auth credentials ride along on every request a browser makes, so a
 * page on another site could make a logged-in operator's browser change
 * queues. Refuse state-changing requests that a browser marks as cross-site.
 */
function sameOriginWrites(req: Request, res: Response, next: NextFunction) {
  const site = req.headers['sec-fetch-site'];
  if (req.method === 'GET' || req.method === 'HEAD' || site === undefined || site === 'same-origin' || site === 'none') return next();
  res.status(403).json({ error: 'cross-site request refused' });
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, bound]).finally(() => clearTimeout(timer));
}

/** The board's own pages (the ledger's, then `opts.pages`) on one router, with the nav they share. */
function ownPages(opts: BoardOptions, ledger: Ledger, publish: Queue<PublishJobData>, readOnly: boolean, clock: () => number) {
  const sets: readonly BoardPages[] = [
    ledgerPages({ ledger, lifecycle: createLifecycle({ ledger, queue: publish, clock }), ...(opts.accountIds && { accountIds: opts.accountIds }) }),
    ...(opts.pages ?? []),
  ];
  const nav: readonly NavItem[] = [{ path: BOARD_BASE_PATH, label: 'Queues' }, ...sets.flatMap((p) => p.nav)];
  const kit = createPageKit({ nav: () => nav, readOnly, clock });
  const router = express.Router();
  for (const p of sets) p.mount(router, kit);
  return { nav, router };
}

export function createBoardServer(opts: BoardOptions): BoardServer {
  const { redis, config, logger } = opts;
  const creds = boardCredentials(config, opts.open);
  const readOnly = opts.readOnly ?? true;
  const clock = opts.clock ?? Date.now;
  const ledger = openLedger(redis, config);
  const queues = [QUEUE_NAMES.publish, QUEUE_NAMES.reconcile].map((name) => openQueue(name, redis, ledger.keys, { logger }));
  const { registry } = createMetrics({ ledger, queues, redis, clock });
  const pages = ownPages(opts, ledger, queues[0]!, readOnly, clock);

  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(BOARD_BASE_PATH);
  createBullBoard({
    queues: queues.map((q) => new BullMQAdapter(q, { readOnlyMode: readOnly })),
    serverAdapter,
    // Bull Board's header menu links to the ledger's pages, which tell what its job states cannot (ambiguous, paused...).
    options: {
      uiConfig: { boardTitle: 'xactly', hideDocsLink: true, miscLinks: pages.nav.slice(1).map((n) => ({ text: `Ledger: ${n.label}`, url: n.path })) },
    },
  });

  const app = express();
  app.disable('x-powered-by');
  const redisUp = async () => {
    // While Redis is away ioredis queues commands; don't wait for it to come back.
    if (redis.status === 'reconnecting' || redis.status === 'close' || redis.status === 'end') return false;
    try {
      await withTimeout(redis.ping(), REDIS_PROBE_TIMEOUT_MS, 'PING');
      return true;
    } catch {
      return false;
    }
  };

  app.get('/healthz', async (_req, res) => {
    const up = await redisUp();
    const workers = up ? await withTimeout(liveWorkers(redis, ledger.keys, clock()), REDIS_PROBE_TIMEOUT_MS, 'worker scan').catch(() => undefined) : undefined;
    const ok = up && workers !== undefined && workers.seen > 0;
    res.status(ok ? 200 : 503).json({
      status: ok ? 'ok' : 'unavailable',
      redis: up ? 'ok' : 'down',
      workers: { seen: workers?.seen ?? 0, lastSeenAgoMs: workers?.lastSeenAgoMs ?? null },
    });
  });

  const metrics = async (_req: Request, res: Response) => {
    if (!(await redisUp())) {
      res.status(503).type('text/plain').send('redis down\n');
      return;
    }
    const text = await withTimeout(registry.metrics(), 5 * REDIS_PROBE_TIMEOUT_MS, 'metrics');
    res.type(registry.contentType).send(text);
  };
  if (opts.metricsOpen) app.get('/metrics', metrics);

  if (creds) app.use(basicAuth(creds, logger));
  app.use(sameOriginWrites);
  if (!opts.metricsOpen) app.get('/metrics', metrics);

  app.get('/api/posts/:slotId/:postId', async (req, res) => {
    const { slotId, postId } = req.params as { slotId: string; postId: string };
    const id = keyId({ slotId, postId });
    const record = await ledger.get(id);
    res.set('Cache-Control', 'no-store');
    if (!record) {
      res.status(404).json({ error: 'no such key', slotId, postId });
      return;
    }
    res.json({ record, audit: await ledger.auditTrail(id) });
  });

  app.use(pages.router);

  app.get('/', (_req, res) => res.redirect(BOARD_BASE_PATH));
  app.use(BOARD_BASE_PATH, serverAdapter.getRouter());

  // Express's default handler answers with a stack trace; say nothing but that it failed.
  app.use((err: Error, req: Request, res: Response, _next: NextFunction) => {
    logger.error({ err, path: req.path }, 'board request failed');
    if (!res.headersSent) res.status(500).json({ error: 'internal error' });
  });

  let server: Server | undefined;
  let closing: Promise<void> | undefined;
  return {
    app,
    listen(port, host = '127.0.0.1') {
      return new Promise((resolve, reject) => {
        const s = app.listen(port, host);
        s.once('error', reject);
        s.once('listening', () => {
          server = s;
          const actual = (s.address() as AddressInfo).port;
          const url = `http://${host.includes(':') ? `[${host}]` : host}:${actual}`;
          logger.info({ url, readOnly, authentication: creds ? 'basic' : 'none', metricsOpen: opts.metricsOpen ?? false }, 'board listening');
          if (!creds) logger.warn('board is open: anyone who can reach it can read the queues and the ledger');
          resolve({ url, port: actual });
        });
      });
    },
    close() {
      closing ??= (async () => {
        if (server) {
          const s = server;
          const closed = new Promise<void>((resolve) => s.close(() => resolve()));
          s.closeAllConnections();
          await closed;
        }
        await Promise.all(queues.map((q) => q.close()));
      })();
      return closing;
    },
  };
}
