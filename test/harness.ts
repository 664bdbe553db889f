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
import { ACCOUNTS, FAKE_ACCOUNTS } from './support/accounts.js';
import { dropPrefix, newRedis, uniquePrefix } from './support/redis.js';

// The test kit lives in test/support/; tests import these from here too.
export { ACCOUNTS, FAKE_ACCOUNTS, SECRETS } from './support/accounts.js';
export { dropPrefix, dumpPrefix, newRedis, REDIS_URL, uniquePrefix } from './support/redis.js';
export { waitUntil } from './support/wait.js';

/** A clock the test can move forward; shared by the fake X, workers, producer and reconciler. */
export function testClock(): { now: () => number; advance: (ms: number) => void } {
  let offset = 0;
  return {
    now: () => Date.now() + offset,
    advance: (ms: number) => {
      offset += ms;
    },
  };
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
  /** Limits of some accounts (as in the accounts file), seen by the workers and the producer (`textLength`). */
  limits?: Record<string, Account['limits']>;
  /** What X itself lets each account post, in weighted characters (Premium's long posts); default its `limits.textLength`, else X's 280. */
  xTextLength?: Record<string, number>;
  /** The workers' media settings (uploads per account, how long a job over that cap steps aside, URL fetch limit). */
  media?: Pick<PublishDeps, 'mediaUploadsPerAccount' | 'mediaWaitMs' | 'mediaFetchTimeoutMs'>;
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
    id: `acc-${i}`,
    userId: String(5000 + i),
    token: `ACC-${i}-TOKEN`,
  }));
  const accounts: Account[] = [...ACCOUNTS, ...extra.map((a) => ({ id: a.id, userId: a.userId, auth: { type: 'oauth2' as const, accessToken: a.token } }))].map(
    (a) => (opts.limits?.[a.id] ? { ...a, limits: opts.limits[a.id] } : a),
  );
  const xTextLength = (id: string) => opts.xTextLength?.[id] ?? opts.limits?.[id]?.textLength;
  const fakeAccounts = [...FAKE_ACCOUNTS, ...extra.map((a) => ({ userId: a.userId, username: a.id, tokens: [a.token] }))].map((f) => {
    const length = xTextLength(f.username);
    return length === undefined ? f : { ...f, textLength: length };
  });
  const clock = opts.clock ?? Date.now;
  const fake = await startFakeX({ accounts: fakeAccounts, clock, ...opts.fake });
  const workerAccounts = accounts.map((a) => ({ ...a, ...opts.credentialOverrides?.[a.id] }));
  const credentials = staticCredentialStore(workerAccounts);
  const twitter = new TwitterXPort({ credentials, baseUrl: fake.url, timeoutMs: opts.timeoutMs ?? 1_000 });
  const x = opts.wrapX ? opts.wrapX(twitter) : twitter;
  const { logger, lines } = captureLogs(opts.logLevel);
  const ledger = openLedger(redis, { prefix, retentionMs: 3_600_000 });
  const producer = createProducer({
    connection: redis,
    prefix,
    clock,
    knownAccount: (id) => accounts.some((a) => a.id === id),
    accountLimits: async (id) => accounts.find((a) => a.id === id)?.limits,
  });
  const connections: Redis[] = [];
  const workers: Worker[] = [];

  const startWorker = (o: Partial<StackOptions> = {}) => {
    const connection = newRedis();
    connections.push(connection);
    const worker = createPublishWorker({
      connection,
      prefix,
      retentionMs: 3_600_000,
      x: o.wrapX ? o.wrapX(x) : x,
      logger,
      clock,
      concurrency: o.concurrency ?? opts.concurrency ?? 5,
      leaseMs: o.leaseMs ?? opts.leaseMs ?? 30_000,
      settleWindowMs: opts.settleWindowMs ?? 5_000,
      retry: opts.retry ?? { baseMs: 100, maxMs: 1_000 },
      ...opts.media,
      ...(opts.budget && { budget: opts.budget, accountLimits: async (id: string) => (await credentials.get(id))?.limits }),
      workerOptions: { ...(opts.workerOptions ?? {}), ...(o.workerOptions ?? {}) },
    });
    worker.on('error', () => undefined);
    workers.push(worker);
    return worker;
  };
  if (opts.startWorkers !== false) for (let i = 0; i < (opts.workers ?? 1); i++) startWorker();
  const reconcileDeps: ReconcileDeps = {
    ledger,
    x,
    queue: producer.queue,
    logger,
    clock,
    settleWindowMs: opts.settleWindowMs ?? 5_000,
    unresolvedGraceMs: opts.unresolvedGraceMs ?? 10_000,
    skewMs: 2_000,
  };

  return {
    prefix,
    redis,
    fake,
    x,
    ledger,
    producer,
    workers,
    logs: lines,
    logger,
    startWorker,
    reconcileDeps,
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
  slotId,
  postId: 'p1',
  accountId: 'acme',
  kind: 'post',
  text,
  ...extra,
});
