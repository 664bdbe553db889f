import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import { z } from 'zod';
import type { ApiConfig } from '../config.js';
import { keyId } from '../domain/key.js';
import { EDITABLE_FIELDS } from '../domain/lifecycle.js';
import { type FieldError, isoTime } from '../domain/request.js';
import { POST_STATES, type PostRecord } from '../domain/state.js';
import { auditView, eventView, recordView } from '../domain/view.js';
import type { RedisClient } from '../ledger/ledger.js';
import type { Logger } from '../log.js';
import type { Producer } from '../queue/producer.js';
import { type Answer, enqueueAnswer, forbiddenAnswer, invalidAnswer, lifecycleAnswer } from './answers.js';
import { OPENAPI } from './openapi.js';
import { type RateLimiter, redisRateLimiter } from './rate-limit.js';
import type { TokenGrant, TokenStore } from './tokens.js';

/**
 * The HTTP API: the producer's calls (enqueue, cancel, edit, reschedule)
 * and the ledger's reads over HTTP, for apps in any language. Every
 * answer is the producer's, mapped by answers.ts; bodies are the views of
 * domain/view.ts, the same the CLI prints. Bearer tokens (tokens.ts),
 * scoped to accounts, rate-limited per token (rate-limit.ts); the token's
 * name, never the token, goes into the audit trail of what it did.
 * The contract is openapi.ts, served at /v1/openapi.json.
 */
export interface ApiServerOptions {
  readonly producer: Producer;
  /** For the rate-limit counters (the producer's ledger keys name them). */
  readonly redis: RedisClient;
  readonly tokens: TokenStore;
  readonly logger: Logger;
  readonly limits: Pick<ApiConfig, 'bodyLimitBytes' | 'maxBatch' | 'rateLimit' | 'rateWindowMs'>;
  readonly rateLimiter?: RateLimiter;
  readonly clock?: () => number;
}

export interface ApiServer {
  readonly app: Express;
  /** Listen on host:port (port 0 picks a free one); resolves with the base URL. */
  listen(port: number, host?: string): Promise<{ url: string; port: number }>;
  /** Stop listening and drop open connections (the producer is the caller's). Idempotent. */
  close(): Promise<void>;
}

const PAGE_MAX = 500;
const PAGE_DEFAULT = 100;
const EVENTS_MAX = 1_000;
const ACCOUNT_ID = /^[A-Za-z0-9_.-]{1,64}$/;
const STREAM_ID = /^\d+(-\d+)?$/;

type Parsed = { ok: true; value: unknown } | { ok: false; answer: Answer };

/** The request body as JSON, or the answer that says what is wrong with it. */
function jsonBody(req: Request, required: boolean): Parsed {
  const raw = req.body as Buffer | undefined;
  if (!Buffer.isBuffer(raw) || raw.length === 0) {
    if (!required) return { ok: true, value: undefined };
    return {
      ok: false,
      answer: { code: 400, body: { status: 'invalid', error: 'a JSON body is required', errors: [{ field: '(body)', reason: 'is empty' }] } },
    };
  }
  const type = req.headers['content-type'];
  if (type !== undefined && !/^application\/([a-z0-9.+-]+\+)?json\b/i.test(type)) {
    return { ok: false, answer: { code: 415, body: { error: `Content-Type must be application/json (got ${JSON.stringify(type)})` } } };
  }
  try {
    return { ok: true, value: JSON.parse(raw.toString('utf8')) };
  } catch (err) {
    const reason = `is not valid JSON (${(err as Error).message})`;
    return { ok: false, answer: { code: 400, body: { status: 'invalid', error: 'malformed JSON', errors: [{ field: '(body)', reason }] } } };
  }
}

/** Query parameters: only the known ones, each given once. */
function queryOf<S extends z.ZodRawShape>(req: Request, shape: S): { ok: true; value: z.infer<z.ZodObject<S>> } | { ok: false; errors: FieldError[] } {
  const parsed = z.object(shape).strict().safeParse(req.query);
  if (parsed.success) return { ok: true, value: parsed.data };
  return {
    ok: false,
    errors: parsed.error.issues.flatMap((i): FieldError[] =>
      i.code === 'unrecognized_keys'
        ? i.keys.map((k) => ({ field: k, reason: 'is not a known query parameter' }))
        : [{ field: i.path.join('.') || '(query)', reason: i.message }],
    ),
  };
}

const queryString = (reason: string) => z.string({ error: reason });
const limitParam = (max: number) =>
  queryString('must be given once')
    .regex(/^\d+$/, `must be a whole number 1-${max}`)
    .transform(Number)
    .refine((n) => n >= 1 && n <= max, `must be a whole number 1-${max}`);

const encodeCursor = (last: { keyId: string; score: number }) => Buffer.from(JSON.stringify([last.keyId, last.score])).toString('base64url');
function decodeCursor(cursor: string): { keyId: string; score: number } | undefined {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(v) && v.length === 2 && typeof v[0] === 'string' && typeof v[1] === 'number') return { keyId: v[0], score: v[1] };
  } catch {
    // falls through
  }
  return undefined;
}

const mayTouch = (grant: TokenGrant, accountId: string) => !grant.accounts || grant.accounts.has(accountId);

/** What the routes work with. */
interface Routes {
  readonly producer: Producer;
  readonly ledger: Producer['ledger'];
  readonly limits: ApiServerOptions['limits'];
  /** The body reader of writes: raw bytes up to the limit (jsonBody parses them). */
  readonly body: ReturnType<typeof express.raw>;
}

const send = (res: Response, a: Answer) => res.status(a.code).json(a.body);
const grantOf = (res: Response) => res.locals.grant as TokenGrant;

/** Who is asking, and may they ask now. Unknown and missing tokens look alike to the caller. */
function authenticate(tokens: TokenStore, limiter: RateLimiter, logger: Logger) {
  return async (req: Request, res: Response, next: NextFunction) => {
    const m = /^Bearer ([\x21-\x7e]+)$/i.exec(req.headers.authorization ?? '');
    const grant = m ? await tokens.verify(m[1]!) : undefined;
    if (!grant) {
      res.set('WWW-Authenticate', m ? 'Bearer realm="xactly", error="invalid_token"' : 'Bearer realm="xactly"');
      res.status(401).json({ error: m ? 'unknown API token' : 'an API token is required: Authorization: Bearer <token>' });
      return;
    }
    const taken = await limiter.take(grant.name);
    res.set('RateLimit-Limit', String(limiter.limit));
    if (!taken.ok) {
      const seconds = Math.max(1, Math.ceil(taken.retryAfterMs / 1000));
      res.set('Retry-After', String(seconds)).set('RateLimit-Remaining', '0');
      res.status(429).json({ error: `rate limit: ${limiter.limit} requests per ${limiter.windowMs / 1000} s for token ${grant.name}; retry in ${seconds} s` });
      return;
    }
    res.set('RateLimit-Remaining', String(taken.remaining));
    res.locals.grant = grant;
    logger.debug({ method: req.method, path: req.path, token: grant.name }, 'api request');
    next();
  };
}

/** POST /v1/posts (one or a batch) and GET /v1/posts (a page). */
function postsRoutes(app: Express, ctx: Routes): void {
  const { producer, ledger, limits, body } = ctx;
  /** Enqueue in input order; items for accounts the token may not touch are answered 403 and never reach the ledger. */
  async function enqueueAll(items: readonly unknown[], grant: TokenGrant): Promise<Answer[]> {
    const answers: (Answer | undefined)[] = new Array(items.length);
    const allowed: { index: number; item: unknown }[] = [];
    items.forEach((item, index) => {
      const accountId = (item as { accountId?: unknown } | null)?.accountId;
      if (typeof accountId === 'string' && !mayTouch(grant, accountId)) answers[index] = forbiddenAnswer(item, accountId);
      else allowed.push({ index, item });
    });
    const results = await producer.enqueueMany(
      allowed.map((a) => a.item),
      { by: grant.name },
    );
    results.forEach((r, i) => (answers[allowed[i]!.index] = enqueueAnswer(r, allowed[i]!.item)));
    return answers as Answer[];
  }

  app.post('/v1/posts', body, async (req, res) => {
    const parsed = jsonBody(req, true);
    if (!parsed.ok) return send(res, parsed.answer);
    const v = parsed.value;
    if (Array.isArray(v)) {
      if (v.length > limits.maxBatch) {
        res.status(413).json({ error: `a batch holds at most ${limits.maxBatch} requests (got ${v.length}); split it` });
        return;
      }
      const answers = await enqueueAll(v, grantOf(res));
      res.status(200).json({ results: answers.map((a, index) => ({ ...a.body, code: a.code, index })) });
      return;
    }
    if (typeof v !== 'object' || v === null) {
      return send(res, invalidAnswer(v, [{ field: '(request)', reason: 'must be a JSON object (one request) or an array of them' }]));
    }
    send(res, (await enqueueAll([v], grantOf(res)))[0]!);
  });

  app.get('/v1/posts', async (req, res) => {
    const q = queryOf(req, {
      state: z.enum(POST_STATES, { error: `must be one of ${POST_STATES.join(', ')}` }).optional(),
      account: queryString('must be given once').regex(ACCOUNT_ID, 'must be an account id').optional(),
      from: isoTime.optional(),
      to: isoTime.optional(),
      cursor: queryString('must be given once').optional(),
      limit: limitParam(PAGE_MAX).optional(),
    });
    if (!q.ok) return send(res, { code: 422, body: { error: 'invalid query', errors: q.errors } });
    const { state, account, from, to, cursor, limit } = q.value;
    const after = cursor === undefined ? undefined : decodeCursor(cursor);
    if (cursor !== undefined && !after) {
      return send(res, { code: 422, body: { error: 'invalid query', errors: [{ field: 'cursor', reason: 'is not a cursor this API gave out' }] } });
    }
    const grant = grantOf(res);
    if (account !== undefined && !mayTouch(grant, account)) {
      return send(res, { code: 403, body: { error: `this token may not read account ${account}` } });
    }
    const page = await ledger.listPage(
      {
        ...(state && { state }),
        ...(account && { accountId: account }),
        ...(grant.accounts && { accounts: grant.accounts }),
        ...(from && { from: Date.parse(from) }),
        ...(to && { to: Date.parse(to) }),
      },
      { limit: limit ?? PAGE_DEFAULT, ...(after && { after }) },
    );
    res.json({ posts: page.records.map(recordView), ...(page.last && { next: encodeCursor(page.last) }) });
  });
}

/** One key: GET, PATCH (edit or reschedule), DELETE (cancel). */
function keyRoutes(app: Express, ctx: Routes): void {
  const { producer, ledger } = ctx;
  const { body } = ctx;
  /** The key's record when the token may touch it; otherwise the answer already sent (404 or 403). */
  async function recordFor(req: Request, res: Response): Promise<PostRecord | undefined> {
    const { slotId, postId } = req.params as { slotId: string; postId: string };
    const record = await ledger.get(keyId({ slotId, postId }));
    if (!record) {
      send(res, { code: 404, body: { status: 'not-found', slotId, postId, error: 'no such key' } });
      return undefined;
    }
    if (!mayTouch(grantOf(res), record.accountId)) {
      send(res, forbiddenAnswer({ slotId, postId }, record.accountId));
      return undefined;
    }
    return record;
  }

  app.get('/v1/posts/:slotId/:postId', async (req, res) => {
    const record = await recordFor(req, res);
    if (!record) return;
    const audit = await ledger.auditTrail(record.keyId);
    res.json({ ...recordView(record), ...(record.kind !== 'thread' && { text: record.text }), audit: auditView(audit) });
  });

  app.patch('/v1/posts/:slotId/:postId', body, async (req, res) => {
    const { slotId, postId } = req.params as { slotId: string; postId: string };
    const parsed = jsonBody(req, true);
    if (!parsed.ok) return send(res, parsed.answer);
    const b = parsed.value;
    if (typeof b !== 'object' || b === null || Array.isArray(b)) {
      return send(res, invalidAnswer({ slotId, postId }, [{ field: '(request)', reason: 'must be a JSON object of the changes' }]));
    }
    const fields = b as Record<string, unknown>;
    const clash = (['slotId', 'postId'] as const).filter((f) => f in fields && fields[f] !== { slotId, postId }[f]);
    if (clash.length)
      return send(
        res,
        invalidAnswer(
          { slotId, postId },
          clash.map((field) => ({ field, reason: 'differs from the path; the path names the key' })),
        ),
      );
    const times = 'scheduledAt' in fields || 'deadline' in fields;
    if (times && EDITABLE_FIELDS.some((f) => f in fields)) {
      const reason = `give either changes (${EDITABLE_FIELDS.join(', ')}) or new times (scheduledAt, deadline), not both: send two requests`;
      return send(res, invalidAnswer({ slotId, postId }, [{ field: '(request)', reason }]));
    }
    const grant = grantOf(res);
    if (grant.accounts && !(await recordFor(req, res))) return;
    const input = { ...fields, slotId, postId };
    const r = times ? await producer.lifecycle.rescheduleRaw(input, grant.name) : await producer.lifecycle.editRaw(input, grant.name);
    send(res, lifecycleAnswer(r));
  });

  app.delete('/v1/posts/:slotId/:postId', async (req, res) => {
    const { slotId, postId } = req.params as { slotId: string; postId: string };
    const q = queryOf(req, { reason: queryString('must be given once').optional() });
    if (!q.ok) return send(res, invalidAnswer({ slotId, postId }, q.errors));
    const grant = grantOf(res);
    if (grant.accounts && !(await recordFor(req, res))) return;
    const r = await producer.lifecycle.cancelRaw({ slotId, postId, ...(q.value.reason !== undefined && { reason: q.value.reason }) }, grant.name);
    send(res, lifecycleAnswer(r));
  });
}

/** POST /v1/accounts/:id/cancel-queued and GET /v1/events. */
function accountAndEventRoutes(app: Express, ctx: Routes): void {
  const { producer, ledger, body } = ctx;
  const cancelQueuedBody = z
    .object({ from: isoTime.optional(), to: isoTime.optional(), reason: z.string().max(500, 'must be at most 500 characters').optional() })
    .strict();

  app.post('/v1/accounts/:accountId/cancel-queued', body, async (req, res) => {
    const { accountId } = req.params as { accountId: string };
    if (!ACCOUNT_ID.test(accountId))
      return send(res, { code: 422, body: { error: 'invalid account', errors: [{ field: 'accountId', reason: 'must be an account id' }] } });
    const grant = grantOf(res);
    if (!mayTouch(grant, accountId)) return send(res, { code: 403, body: { error: `this token may not touch account ${accountId}` } });
    const parsed = jsonBody(req, false);
    if (!parsed.ok) return send(res, parsed.answer);
    const b = cancelQueuedBody.safeParse(parsed.value ?? {});
    if (!b.success) {
      const errors = b.error.issues.flatMap((i): FieldError[] =>
        i.code === 'unrecognized_keys'
          ? i.keys.map((k) => ({ field: k, reason: 'is not a known field' }))
          : [{ field: i.path.join('.') || '(request)', reason: i.message }],
      );
      return send(res, { code: 422, body: { error: 'invalid request', errors } });
    }
    const result = await producer.cancelAccount(accountId, { ...b.data, by: grant.name });
    res.json(result);
  });

  app.get('/v1/events', async (req, res) => {
    const q = queryOf(req, {
      from: queryString('must be given once').regex(STREAM_ID, 'must be an event id from this API (or 0 for the oldest kept)').optional(),
      limit: limitParam(EVENTS_MAX).optional(),
    });
    if (!q.ok) return send(res, { code: 422, body: { error: 'invalid query', errors: q.errors } });
    const from = q.value.from ?? '0';
    const batch = await ledger.readEvents(from, q.value.limit ?? PAGE_DEFAULT);
    const grant = grantOf(res);
    const events = batch.filter((e) => e.account === undefined || mayTouch(grant, e.account)).map(eventView);
    // Only a cursor older than the retention can have lost events to trimming: then say so (re-read with GET /v1/posts).
    const gap = await ledger.eventsGap(from);
    res.json({ events, next: batch.at(-1)?.id ?? from, ...(gap && { gap: true }) });
  });
}

/** Unknown paths, and errors: body-parser and router errors carry their 4xx; anything else is ours, and says nothing but that it failed. */
function fallbacks(app: Express, limits: ApiServerOptions['limits'], logger: Logger): void {
  app.use((_req, res) => {
    res.status(404).json({ error: 'no such endpoint (see /v1/openapi.json)' });
  });

  app.use((err: Error & { status?: number; type?: string }, req: Request, res: Response, _next: NextFunction) => {
    if (res.headersSent) return;
    if (err.type === 'entity.too.large') {
      res.status(413).json({ error: `request body over ${limits.bodyLimitBytes} bytes (API_BODY_LIMIT_BYTES)` });
      return;
    }
    if (err.status && err.status >= 400 && err.status < 500) {
      res.status(err.status).json({ error: err.status === 400 ? `bad request (${err.message})` : err.message });
      return;
    }
    logger.error({ err, method: req.method, path: req.path }, 'api request failed');
    res.status(500).json({ error: 'internal error' });
  });
}

export function createApiServer(opts: ApiServerOptions): ApiServer {
  const { producer, tokens, logger, limits } = opts;
  const ledger = producer.ledger;
  const limiter =
    opts.rateLimiter ?? redisRateLimiter({ redis: opts.redis, keys: ledger.keys, limit: limits.rateLimit, windowMs: limits.rateWindowMs, clock: opts.clock });
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.set('etag', false);
  app.use((_req, res, next) => {
    res.set('Cache-Control', 'no-store');
    next();
  });
  app.get('/v1/openapi.json', (_req, res) => {
    res.json(OPENAPI);
  });
  app.use('/v1', authenticate(tokens, limiter, logger));
  const ctx: Routes = { producer, ledger, limits, body: express.raw({ type: () => true, limit: limits.bodyLimitBytes }) };
  postsRoutes(app, ctx);
  keyRoutes(app, ctx);
  accountAndEventRoutes(app, ctx);
  fallbacks(app, limits, logger);

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
          logger.info({ url, tokens: tokens.size, rateLimit: limiter.limit, rateWindowMs: limiter.windowMs }, 'api listening');
          resolve({ url, port: actual });
        });
      });
    },
    close() {
      closing ??= (async () => {
        if (!server) return;
        const s = server;
        const closed = new Promise<void>((resolve) => s.close(() => resolve()));
        s.closeAllConnections();
        await closed;
      })();
      return closing;
    },
  };
}
