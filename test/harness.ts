import { randomBytes } from 'node:crypto';
import type { Ledger } from '../src/ledger/ledger.js';
import { Writable } from 'node:stream';
import type { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { startFakeX, type FakeX, type FakeXOptions } from '../src/fake-x/index.js';
import { openLedger, createProducer, createPublishWorker } from '../src/app.js';
import type { PostState } from '../src/ledger/record.js';
import { createLogger, type Logger } from '../src/log.js';
import { type Producer } from '../src/queue/producer.js';
import type { PublishDeps } from '../src/queue/publisher.js';
import type { BudgetPolicy } from '../src/domain/budget.js';
import { reconcileOnce, type ReconcileDeps, type ReconcileReport } from '../src/queue/reconciler.js';
import { type Account, staticCredentialStore } from '../src/x/credentials.js';
import type { XPort } from '../src/x/port.js';
import { TwitterXPort } from '../src/x/twitter.js';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

export const uniquePrefix = (label = 't') => `xt-${label}-${randomBytes(4).toString('hex')}`;

export function newRedis(): Redis {
  return new Redis(REDIS_URL, { maxRetriesPerRequest: null });
}

import { dropPrefix, keysOf } from '../src/ledger/drop.js';

export { dropPrefix };

/** Every string value stored under a prefix (hashes, lists, strings, zsets, streams). */
export async function dumpPrefix(redis: Redis, prefix: string): Promise<string> {
  const out: string[] = [];
  for await (const keys of keysOf(redis, prefix)) {
    for (const key of keys) {
      const type = await redis.type(key);
      if (type === 'hash') out.push(JSON.stringify(await redis.hgetall(key)));
      else if (type === 'list') out.push(JSON.stringify(await redis.lrange(key, 0, -1)));
      else if (type === 'string') out.push(String(await redis.get(key)));
      else if (type === 'zset') out.push(JSON.stringify(await redis.zrange(key, '0', '-1')));
      else if (type === 'stream') out.push(JSON.stringify(await redis.xrange(key, '-', '+')));
    }
  }
  return out.join('\n');
}

/** A clock the test can move forward; shared by the fake X, workers, producer and reconciler. */
export function testClock(): { now: () => number; advance: (ms: number) => void } {
  let offset = 0;
  return { now: () => Date.now() + offset, advance: (ms: number) => { offset += ms; } };
}

/** Poll a condition until it holds (the thing under test has no event to wait on). */
export async function waitUntil<T>(probe: () => Promise<T | undefined | false> | T | undefined | false, what: string, timeoutMs = 20_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export function captureLogs(level = 'debug'): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  return { logger: createLogger({ level }, stream), lines };
}

export const SECRETS = {
  appKey: 'APPKEY-s3cr3t-aaa',
  appSecret: 'APPSECRET-s3cr3t-bbb',
  acmeToken: 'ACME-ACCESS-s3cr3t-ccc',
  accessSecret: 'ACCESSSECRET-s3cr3t-ddd',
  globexToken: 'GLOBEX-BEARER-s3cr3t-eee',
};

export const ACCOUNTS: Account[] = [
  { id: 'acme', userId: '1001', auth: { type: 'oauth1', appKey: SECRETS.appKey, appSecret: SECRETS.appSecret, accessToken: SECRETS.acmeToken, accessSecret: SECRETS.accessSecret } },
  { id: 'globex', userId: '1002', auth: { type: 'oauth2', accessToken: SECRETS.globexToken } },
];

export const FAKE_ACCOUNTS = [
  { userId: '1001', username: 'acme', tokens: [SECRETS.acmeToken] },
  { userId: '1002', username: 'globex', tokens: [SECRETS.globexToken] },
  { userId: '2001', username: 'fan', tokens: ['FAN-TOKEN'] },
];

export interface StackOptions {
  fake?: Partial<FakeXOptions>;
  workers?: number;
  concurrency?: number;
  timeoutMs?: number;
  leaseMs?: number;
  settleWindowMs?: number;
  retry?: PublishDeps['retry'];
  logLevel?: string;
  /** Wrap the X adapter (to count or sabotage calls). */
  wrapX?: (x: XPort) => XPort;
  workerOptions?: Record<string, unknown>;
  startWorkers?: boolean;
  /** Shared by the fake X, the workers and the producer, so tests can move time forward. */
  clock?: () => number;
  /** Extra accounts beyond acme and globex (ids acc-0..acc-N-1, oauth2). */
  extraAccounts?: number;
  unresolvedGraceMs?: number;
  budget?: BudgetPolicy;
  /** Replace the worker-side credentials of some accounts (e.g. a revoked token). */
  credentialOverrides?: Record<string, Partial<Account>>;
}

export interface Stack {
  prefix: string;
  redis: Redis;
  fake: FakeX;
  x: XPort;
  ledger: Ledger;
  producer: Producer;
  workers: Worker[];
  logs: string[];
  logger: Logger;
  startWorker(overrides?: Partial<StackOptions>): Worker;
  reconcile(overrides?: Partial<ReconcileDeps>): Promise<ReconcileReport>;
  reconcileDeps: ReconcileDeps;
  stateOf(slotId: string, postId: string): Promise<PostState | undefined>;
  close(): Promise<void>;
}

/** Fake X + real twitter-api-v2 adapter + producer + N publish workers on a fresh prefix. */
export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  const prefix = uniquePrefix();
  const redis = newRedis();
  const extra = Array.from({ length: opts.extraAccounts ?? 0 }, (_, i) => ({
    id: `acc-${i}`, userId: String(5000 + i), token: `ACC-${i}-TOKEN`,
  }));
  const accounts: Account[] = [...ACCOUNTS, ...extra.map((a) => ({ id: a.id, userId: a.userId, auth: { type: 'oauth2' as const, accessToken: a.token } }))];
  const fakeAccounts = [...FAKE_ACCOUNTS, ...extra.map((a) => ({ userId: a.userId, username: a.id, tokens: [a.token] }))];
  const clock = opts.clock ?? Date.now;
  const fake = await startFakeX({ accounts: fakeAccounts, clock, ...opts.fake });
  const workerAccounts = accounts.map((a) => ({ ...a, ...opts.credentialOverrides?.[a.id] }));
  const credentials = staticCredentialStore(workerAccounts);
  const twitter = new TwitterXPort({ credentials, baseUrl: fake.url, timeoutMs: opts.timeoutMs ?? 1_000 });
  const x = opts.wrapX ? opts.wrapX(twitter) : twitter;
  const { logger, lines } = captureLogs(opts.logLevel);
  const ledger = openLedger(redis, { prefix, retentionMs: 3_600_000 });
  const producer = createProducer({ connection: redis, prefix, clock, knownAccount: (id) => accounts.some((a) => a.id === id) });
  const connections: Redis[] = [];
  const workers: Worker[] = [];

  const startWorker = (o: Partial<StackOptions> = {}) => {
    const connection = newRedis();
    connections.push(connection);
    const worker = createPublishWorker({
      connection,
      prefix, retentionMs: 3_600_000,
      x: o.wrapX ? o.wrapX(x) : x,
      logger,
      clock,
      concurrency: o.concurrency ?? opts.concurrency ?? 5,
      leaseMs: o.leaseMs ?? opts.leaseMs ?? 30_000,
      settleWindowMs: opts.settleWindowMs ?? 5_000,
      retry: opts.retry ?? { baseMs: 100, maxMs: 1_000 },
      ...(opts.budget && { budget: opts.budget, accountLimits: async (id: string) => (await credentials.get(id))?.limits }),
      workerOptions: { ...(opts.workerOptions ?? {}), ...(o.workerOptions ?? {}) },
    });
    worker.on('error', () => undefined);
    workers.push(worker);
    return worker;
  };
  if (opts.startWorkers !== false) for (let i = 0; i < (opts.workers ?? 1); i++) startWorker();
  const reconcileDeps: ReconcileDeps = {
    ledger, x, queue: producer.queue, logger, clock,
    settleWindowMs: opts.settleWindowMs ?? 5_000,
    unresolvedGraceMs: opts.unresolvedGraceMs ?? 10_000,
    skewMs: 2_000,
  };

  return {
    prefix, redis, fake, x, ledger, producer, workers, logs: lines, logger, startWorker, reconcileDeps,
    reconcile: (o = {}) => reconcileOnce({ ...reconcileDeps, ...o }),
    async stateOf(slotId, postId) {
      const { keyId } = await import('../src/domain/key.js');
      return (await ledger.get(keyId({ slotId, postId })))?.state;
    },
    async close() {
      await Promise.all(workers.map((w) => w.close(true)));
      await producer.close();
      await fake.close();
      twitter.close();
      await dropPrefix(redis, prefix);
      await Promise.all(connections.map((c) => c.quit()));
      await redis.quit();
    },
  };
}

export const post = (slotId: string, text: string, extra: Record<string, unknown> = {}) => ({
  slotId, postId: 'p1', accountId: 'acme', kind: 'post', text, ...extra,
});
