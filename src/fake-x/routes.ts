/**
 * The endpoints: which handler answers which method and path, and the
 * handlers. Every request is logged, authenticated and counted against its
 * rate window before dispatch; a problem a handler throws becomes X's error
 * answer. Creates and reads are where the fault schedule strikes.
 */
import type http from 'node:http';
import type { Socket } from 'node:net';

import type { Accounts, FakeAccount } from './accounts.js';
import type { Auth } from './auth.js';
import { faultCommits, type FaultKind, type FaultSchedule, type LookupFaultKind, type MediaFaultKind } from './faults.js';
import { MAX_SEGMENT_BYTES, parseMultipart } from './media.js';
import type { Limits } from './limits.js';
import { checkKnownParams } from './lookup.js';
import {
  SUSPENDED_DETAIL,
  asProblem,
  clientForbidden,
  forbidden,
  missingScope,
  serviceUnavailable,
  tooManyRequests,
  unauthorized,
  unknownRoute,
} from './problems.js';
import { dmEventsBody, timelineBody, type FieldNames } from './reads.js';
import type { Store } from './store.js';
import { Reply, failRequest, readBody, readForm, readJson } from './wire.js';
import type { Writes } from './writes.js';

export interface RequestRecord {
  method: string;
  path: string;
  userId?: string;
  fault?: FaultKind | LookupFaultKind | MediaFaultKind;
  status?: number;
}

type Route =
  | { name: 'token' }
  | { name: 'me' }
  | { name: 'createTweet' }
  | { name: 'timeline'; userId: string }
  | { name: 'sendDm'; participantId: string }
  | { name: 'dmEvents'; participantId: string }
  | { name: 'mediaUpload' }
  | { name: 'mediaStatus' }
  | { name: 'mediaInit' }
  | { name: 'mediaAppend'; id: string }
  | { name: 'mediaFinalize'; id: string }
  | { name: 'mediaMetadata' };

/** Per-user limits X documents for these endpoints (only reported in headers; real 429s come from faults). */
const LIMITS: Record<Route['name'], number> = {
  token: 300,
  me: 75,
  createTweet: 100,
  timeline: 900,
  sendDm: 200,
  dmEvents: 300,
  mediaUpload: 500,
  mediaStatus: 1000,
  mediaInit: 500,
  mediaAppend: 5000,
  mediaFinalize: 500,
  mediaMetadata: 500,
};
/** The rate window of a path no route knows. */
const UNKNOWN_ROUTE_LIMIT = 300;

function matchRoute(method: string, path: string): Route | undefined {
  if (method === 'POST' && path === '/2/oauth2/token') return { name: 'token' };
  if (method === 'GET' && path === '/2/users/me') return { name: 'me' };
  if (method === 'POST' && path === '/2/tweets') return { name: 'createTweet' };
  if (path === '/2/media/upload') return method === 'POST' ? { name: 'mediaUpload' } : method === 'GET' ? { name: 'mediaStatus' } : undefined;
  if (method === 'POST' && path === '/2/media/upload/initialize') return { name: 'mediaInit' };
  if (method === 'POST' && path === '/2/media/metadata') return { name: 'mediaMetadata' };
  let m = /^\/2\/media\/upload\/(\d{1,19})\/(append|finalize)$/.exec(path);
  if (method === 'POST' && m?.[1]) return m[2] === 'append' ? { name: 'mediaAppend', id: m[1] } : { name: 'mediaFinalize', id: m[1] };
  m = /^\/2\/users\/([^/]+)\/tweets$/.exec(path);
  if (method === 'GET' && m?.[1]) return { name: 'timeline', userId: decodeURIComponent(m[1]) };
  m = /^\/2\/dm_conversations\/with\/([^/]+)\/(messages|dm_events)$/.exec(path);
  if (m?.[1]) {
    const participantId = decodeURIComponent(m[1]);
    if (method === 'POST' && m[2] === 'messages') return { name: 'sendDm', participantId };
    if (method === 'GET' && m[2] === 'dm_events') return { name: 'dmEvents', participantId };
  }
  return undefined;
}

export interface RouterDeps {
  store: Store;
  accounts: Accounts;
  auth: Auth;
  limits: Limits;
  faults: FaultSchedule;
  writes: Writes;
  fieldNames: FieldNames;
  /** Answer gzip-compressed when the client asks for it. */
  gzip: boolean;
  /** How far ahead a 429 fault's `x-rate-limit-reset` points. */
  rateLimitResetSec: number;
}

/** One request being answered. */
interface Exchange {
  req: http.IncomingMessage;
  url: URL;
  /** The clock when the request came in. */
  now: number;
  record: RequestRecord;
  reply: Reply;
}

export class Router {
  private readonly log: RequestRecord[] = [];
  private readonly hanging = new Set<Socket>();

  constructor(private readonly deps: RouterDeps) {}

  /** The `http.createServer` listener; a bug in a handler is a 500. */
  readonly listener = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    this.handle(req, res).catch((err: unknown) => failRequest(res, err));
  };

  /** Copies of the request log, in arrival order. */
  requests(): RequestRecord[] {
    return this.log.map((r) => ({ ...r }));
  }

  /** End the connections a hang fault left open. */
  dropHanging(): void {
    for (const s of this.hanging) s.destroy();
    this.hanging.clear();
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const { store, auth, limits, gzip } = this.deps;
    const now = store.now();
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const record: RequestRecord = { method, path: url.pathname };
    this.log.push(record);
    const route = matchRoute(method, url.pathname);
    const account = auth.authenticate(req.headers.authorization, now);
    if (account) record.userId = account.userId;
    const headers = limits.rateHeaders(`${account?.userId ?? 'anon'}:${route?.name ?? 'none'}`, route ? LIMITS[route.name] : UNKNOWN_ROUTE_LIMIT, now);
    const x: Exchange = { req, url, now, record, reply: new Reply(req, res, record, this.hanging, { gzip, headers }) };
    try {
      await this.dispatch(x, route, account);
    } catch (err) {
      const problem = asProblem(err);
      if (!problem) throw err;
      x.reply.problem(problem);
    }
  }

  private async dispatch(x: Exchange, route: Route | undefined, account: FakeAccount | undefined): Promise<void> {
    if (!route) throw unknownRoute(x.record.method, x.url.pathname);
    if (route.name === 'token') return this.token(x, await readForm(x.req));
    if (!account) throw unauthorized();
    const { store, accounts, fieldNames } = this.deps;
    const q = x.url.searchParams;
    switch (route.name) {
      case 'me':
        checkKnownParams(q, ['expansions', 'tweet.fields', 'user.fields']);
        return x.reply.send(200, { data: { id: account.userId, name: account.username, username: account.username } });
      case 'timeline':
        return this.answerRead(x, timelineBody(store, accounts, fieldNames, route.userId, q, x.now));
      case 'dmEvents':
        return this.answerRead(x, dmEventsBody(store, account, route.participantId, q, x.now));
      case 'createTweet':
      case 'sendDm':
        return this.create(x, route, account);
      case 'mediaUpload':
      case 'mediaStatus':
      case 'mediaInit':
      case 'mediaAppend':
      case 'mediaFinalize':
      case 'mediaMetadata':
        return this.media(x, route, account);
    }
  }

  /** The media endpoints (media.ts), with the media faults at their steps. */
  private async media(x: Exchange, route: Extract<Route, { name: `media${string}` }>, account: FakeAccount): Promise<void> {
    const { store, faults, auth } = this.deps;
    if (!auth.mayWriteMedia(x.req.headers.authorization, account)) {
      // Read what was sent (the client is still writing it), then refuse.
      await readBody(x.req, MAX_SEGMENT_BYTES + 64 * 1024).catch(() => undefined);
      throw missingScope();
    }
    const media = store.media;
    const fault = (step: Parameters<FaultSchedule['nextMedia']>[0]) => {
      const f = faults.nextMedia(step);
      if (f) x.record.fault = f;
      return f;
    };
    switch (route.name) {
      case 'mediaUpload': {
        const f = fault('upload');
        const body = await readBody(x.req, MAX_SEGMENT_BYTES + 64 * 1024);
        if (f === 'upload-reset') return x.reply.reset();
        return x.reply.send(200, media.simple(account.userId, parseMultipart(x.req.headers['content-type'], body), x.now));
      }
      case 'mediaInit':
        return x.reply.send(200, media.initialize(account.userId, await readJson(x.req), x.now));
      case 'mediaAppend': {
        const f = fault('append');
        // A reset strikes while the segment is still coming in.
        if (f === 'append-reset') return x.reply.reset();
        const body = await readBody(x.req, MAX_SEGMENT_BYTES + 64 * 1024);
        if (f === 'append-hang') return x.reply.hang();
        return x.reply.send(200, media.append(account.userId, route.id, parseMultipart(x.req.headers['content-type'], body), x.now));
      }
      case 'mediaFinalize': {
        const f = fault('finalize');
        await readBody(x.req);
        if (f === 'finalize-5xx') return x.reply.problem(serviceUnavailable());
        return x.reply.send(200, media.finalize(account.userId, route.id, x.now, f === 'processing-failed'));
      }
      case 'mediaStatus': {
        checkKnownParams(x.url.searchParams, ['media_id', 'command']);
        const id = x.url.searchParams.get('media_id') ?? '';
        const body = media.status(account.userId, id, x.now);
        if (fault('status') === 'status-cut-body') return x.reply.sendCut(200, body);
        return x.reply.send(200, body);
      }
      case 'mediaMetadata':
        return x.reply.send(200, media.metadata(account.userId, await readJson(x.req), x.now));
    }
  }

  /** POST /2/oauth2/token: a refresh, answered like a read (a cut answer loses the rotated token). */
  private token(x: Exchange, form: Record<string, string>): void {
    const grant = this.deps.auth.refresh(form, x.now);
    if (!grant) return x.reply.send(400, { error: 'invalid_request', error_description: 'Value passed for the token was invalid.' });
    x.record.userId = grant.owner.userId;
    // Random lookup faults spare refreshes: a cut answer loses the rotated
    // refresh token for good (as on X); tests aim at it with injectNextLookup.
    this.answerRead(x, grant.response, true);
  }

  /** A read answer, unless a lookup fault is due (`scriptedOnly`: no random one). */
  private answerRead(x: Exchange, body: unknown, scriptedOnly = false): void {
    const fault = this.deps.faults.nextLookup({ path: x.url.pathname, text: undefined }, scriptedOnly);
    if (fault) x.record.fault = fault;
    if (fault === 'hang') return x.reply.hang();
    if (fault === 'cut-body') return x.reply.sendCut(200, body);
    x.reply.send(200, body);
  }

  /** A post or DM: standing, validation, caps, then the fault plan decides how (and whether) it commits. */
  private async create(x: Exchange, route: Extract<Route, { name: 'createTweet' | 'sendDm' }>, account: FakeAccount): Promise<void> {
    const { store, writes, limits, faults } = this.deps;
    const body = await readJson(x.req);
    const mediaIds = (body.media as { media_ids?: unknown } | undefined)?.media_ids ?? dmMediaIds(body.attachments);
    if (Array.isArray(mediaIds) && faults.nextMedia('create') === 'expire-before-create') {
      x.record.fault = 'expire-before-create';
      for (const id of mediaIds) if (typeof id === 'string') store.media.expire(id);
    }
    if (store.isAppForbidden()) throw clientForbidden();
    if (store.isSuspended(account.userId)) throw forbidden(SUSPENDED_DETAIL);
    const write = route.name === 'createTweet' ? writes.preparePost(account, body, x.now) : writes.prepareDm(account, route.participantId, body, x.now);
    const cap = limits.spendCaps(account.userId, x.now);
    x.reply.addHeaders(cap.headers);
    if (cap.refused) throw cap.refused;
    const fault = faults.nextWrite({ path: x.url.pathname, text: write.text });
    if (fault) x.record.fault = fault;
    const success = fault === undefined || faultCommits(fault) ? write.commit(store.now()) : undefined;
    if (!fault) return x.reply.send(201, success);
    this.answerWithFault(x.reply, fault, success);
  }

  private answerWithFault(reply: Reply, fault: FaultKind, success: unknown): void {
    switch (fault) {
      case 'hang-before-commit':
      case 'commit-then-hang':
        return reply.hang();
      case 'commit-then-reset':
      case 'reset-before-commit':
        return reply.reset();
      case '5xx-with-commit':
      case '5xx-without-commit':
        return reply.problem(serviceUnavailable());
      case '429': {
        const reset = Math.ceil(this.deps.store.now() / 1000) + this.deps.rateLimitResetSec;
        reply.addHeaders({ 'x-rate-limit-remaining': '0', 'x-rate-limit-reset': String(reset) });
        return reply.problem(tooManyRequests());
      }
      case 'truncated-201':
        // A 2xx status the client cannot parse, like a connection dropped
        // mid-body; compressed, twitter-api-v2 would wait for it forever.
        return reply.sendCut(201, success);
    }
  }
}

/** The media ids a DM's `attachments` name (for the expiry fault). */
function dmMediaIds(attachments: unknown): unknown[] | undefined {
  return Array.isArray(attachments) ? attachments.map((a) => (a as { media_id?: unknown } | null)?.media_id) : undefined;
}
