/**
 * Thread cost (issue #13): the Redis round trips of each part, and the
 * end-to-end time of a P-part thread at L ms of X latency, against the ideal
 * P × L (the parts go out one after the other: part k+1 replies to part k).
 *
 *   npm run build && npm run bench:thread -- [--parts 10] [--latency-ms 200] [--runs 5] [--posts 5]
 *     [--concurrent 20] [--concurrent-rounds 3] [--concurrency 20] [--warmup 1] [--timeout-s 120] [--report FILE]
 *
 * docs/benchmarks.md belongs to the suite (bench/suite.ts, `npm run bench --
 * --write-docs`), which runs this with `--report FILE` and takes its section.
 *
 * One stack in this process, on its own random prefix: the real producer
 * (`createProducer`, `enqueueMany`) and the real publish worker
 * (`createPublishWorker`, the defaults of `xactly worker`: concurrency 20,
 * lease, settle window, budgets, a pino logger at info into a stream that
 * drops the lines), the real `TwitterXPort` (OAuth 1.0a) over HTTP to the
 * latency proxy of test/support, which holds each request L ms and then
 * forwards it to the fake X. The fake X rather than an in-process X port:
 * threads are replies, and the fake X refuses a reply whose target it does
 * not hold, so every part's reply target is checked by "X" itself, and the
 * ground truth (`verify`) checks each part once, in order, replying to the
 * one before; and the adapter's own cost (signing, HTTP on loopback) is in
 * the figures, as it is in production.
 *
 * Phases, each thread on an account of its own (the default budget is 100
 * posts per 15 min per account):
 * - warm-up: W threads and W posts, one at a time, not measured;
 * - threads: R threads of P parts, one at a time. End-to-end = the worker's
 *   `completed` event of the key's job (outcome `sent`) − just before
 *   `enqueueMany`. The fake X's `createdAt` of each part splits it up: first
 *   part on X, gaps between parts (L + what xactly does between two parts),
 *   last part on X to the job's completion;
 * - posts: R single posts, one at a time, the same way (a post's round trips
 *   are what a part's are compared with);
 * - concurrent: N threads enqueued at once (one `enqueueMany`), K rounds;
 *   p50 / p99 (nearest rank) of their end-to-end times.
 *
 * Redis round trips are counted client side (bench/redis-stats.ts: ioredis'
 * `sendCommand` hooked; a pipeline counts once) on the worker's connections
 * only (the ledger shares the worker's connection, as `xactly worker` does;
 * BullMQ's blocking connection is a duplicate of it and counted too); the
 * producer's and the stats connection are left out. Server side,
 * `INFO commandstats` deltas (all clients, commands inside scripts included)
 * are context.
 *
 * Checks (exit 1): every key enqueued `queued`, its job completed `sent`, no
 * job failed, the ledger `sent` with every part's id, the ground truth clean
 * (each part on X once, in order, each replying to the one before, no
 * strays), and X got exactly one request per part or post.
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import type { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { createProducer, createPublishWorker, leaseFor } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { keyId } from '../src/domain/key.js';
import { type CreatedItem, type FakeX, startFakeX } from '../src/fake-x/index.js';
import { createLogger } from '../src/log.js';
import type { PublishJobData, PublishJobResult } from '../src/queue/jobs.js';
import type { Producer } from '../src/queue/producer.js';
import { staticCredentialStore } from '../src/x/credentials.js';
import { TwitterXPort } from '../src/x/twitter.js';
import { accountOf, fakeAccountOf, numberedAccounts, type TestAccount } from '../test/support/accounts.js';
import { type LatencyProxy, startLatencyProxy } from '../test/support/latency-proxy.js';
import { dropPrefix, newRedis, REDIS_URL } from '../test/support/redis.js';
import { median, percentile } from '../test/support/stats.js';
import { type ExpectedKey, verify } from '../test/support/verify.js';
import { sleep } from '../test/support/wait.js';
import {
  commandLine,
  countBy,
  f0,
  f2,
  type Figure,
  fmtCounts,
  intOption,
  machine,
  mdTable,
  nullStream,
  rand,
  redisVersion,
  type Row,
  run,
  sum,
  textTable,
  verdict,
  versionOf,
  writeReport,
} from './common.js';
import { type ClientCounts, type CommandStat, commandStats, diffCommandStats, installCommandCounter, isLedgerLabel, totalCalls } from './redis-stats.js';

const TARGET_VS_IDEAL = 1.3;

const { values: args } = parseArgs({
  options: {
    parts: { type: 'string', default: '10' },
    'latency-ms': { type: 'string', default: '200' },
    runs: { type: 'string', default: '5' },
    posts: { type: 'string' },
    concurrent: { type: 'string', default: '20' },
    'concurrent-rounds': { type: 'string', default: '3' },
    concurrency: { type: 'string' },
    warmup: { type: 'string', default: '1' },
    'timeout-s': { type: 'string', default: '120' },
    report: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log(
    'usage: node dist/bench/thread.js [--parts 10] [--latency-ms 200] [--runs 5] [--posts = runs] [--concurrent 20 (0: skip)] [--concurrent-rounds 3] [--concurrency = XACTLY_CONCURRENCY default] [--warmup 1] [--timeout-s 120] [--report FILE]',
  );
  process.exit(0);
}
const CONFIG = loadConfig({});
const P = intOption('parts', args.parts, 2);
if (P > 25) {
  console.error(`--parts must be at most 25, a thread's limit (got ${P})`);
  process.exit(2);
}
const LATENCY = intOption('latency-ms', args['latency-ms'], 0);
const RUNS = intOption('runs', args.runs, 1);
const POSTS = intOption('posts', args.posts ?? String(RUNS), 0);
const CONCURRENT = intOption('concurrent', args.concurrent, 0);
const CONCURRENT_ROUNDS = intOption('concurrent-rounds', args['concurrent-rounds'], 1);
const C = intOption('concurrency', args.concurrency ?? String(CONFIG.workerConcurrency), 1);
const WARMUP = intOption('warmup', args.warmup, 0);
const TIMEOUT_MS = intOption('timeout-s', args['timeout-s'], 1) * 1000;
const IDEAL_MS = P * LATENCY;
const RUN = rand();
const COMMAND = commandLine('thread.js');

const counter = installCommandCounter();

// ------------------------------------------------------------------ the stack

interface Finished {
  readonly at: number;
  readonly result?: PublishJobResult;
  readonly error?: string;
}

/** When each key's job ended, from the worker's events (the first end of a key counts). */
function finishesOf(worker: Worker<PublishJobData, PublishJobResult>) {
  const ended = new Map<string, Finished>();
  let waiters: { keys: readonly string[]; resolve: () => void }[] = [];
  const record = (key: string | undefined, f: Finished) => {
    if (key === undefined || ended.has(key)) return;
    ended.set(key, f);
    const ready = waiters.filter((w) => w.keys.every((k) => ended.has(k)));
    waiters = waiters.filter((w) => !ready.includes(w));
    for (const w of ready) w.resolve();
  };
  worker.on('completed', (job, result) => record(job.data.keyId, { at: Date.now(), result }));
  worker.on('failed', (job, err) => record(job?.data.keyId, { at: Date.now(), error: err.message }));
  return {
    get: (key: string) => ended.get(key),
    until(keys: readonly string[], timeoutMs: number): Promise<void> {
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`timed out after ${timeoutMs / 1000} s: ${keys.filter((k) => ended.has(k)).length} of ${keys.length} keys done`)),
          timeoutMs,
        );
        waiters.push({
          keys,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
        if (keys.every((k) => ended.has(k))) waiters.pop()!.resolve();
      });
    },
  };
}

interface Stack {
  readonly prefix: string;
  readonly fake: FakeX;
  readonly proxy: LatencyProxy;
  readonly producer: Producer;
  readonly finishes: ReturnType<typeof finishesOf>;
  /** A fresh account for each thread. */
  account(): TestAccount;
  close(): Promise<void>;
}

async function startStack(admin: Redis): Promise<Stack> {
  const prefix = `xb-thread-${RUN}`;
  const total = 2 * WARMUP + RUNS + 1 + CONCURRENT * CONCURRENT_ROUNDS;
  const accounts = numberedAccounts(total, { prefix: 'th', userIdBase: 9_000_000 });
  const oauth1 = { appKey: 'bench-app-key', appSecret: 'bench-app-secret', accessSecret: 'bench-access-secret' };
  const store = staticCredentialStore(accounts.map((a) => accountOf(a, oauth1)));
  const fake = await startFakeX({ accounts: accounts.map(fakeAccountOf) });
  const proxy = await startLatencyProxy(fake.url, LATENCY);
  const x = new TwitterXPort({ credentials: store, baseUrl: proxy.url, timeoutMs: CONFIG.xTimeoutMs });
  const producerRedis = newRedis();
  const workerRedis = newRedis();
  // Only the worker's traffic is counted: the producer's is the enqueue, not a part's cost.
  counter.ignore(producerRedis);
  const producer = createProducer({ connection: producerRedis, prefix, retentionMs: 3_600_000 });
  const worker = createPublishWorker({
    connection: workerRedis,
    prefix,
    retentionMs: 3_600_000,
    x,
    logger: createLogger({ level: 'info' }, nullStream()),
    concurrency: C,
    leaseMs: leaseFor(CONFIG),
    settleWindowMs: CONFIG.settleWindowMs,
    budget: CONFIG.budget,
    accountLimits: async (id) => (await store.get(id))?.limits,
  });
  worker.on('error', (err) => console.error(`  worker error: ${err.message}`));
  const finishes = finishesOf(worker);
  await Promise.all([producer.queue.waitUntilReady(), worker.waitUntilReady()]);
  let next = 0;
  return {
    prefix,
    fake,
    proxy,
    producer,
    finishes,
    account: () => accounts[next++ % accounts.length]!,
    async close() {
      await worker.close();
      await producer.close();
      x.close();
      await proxy.close();
      await fake.close();
      await dropPrefix(admin, prefix);
      await Promise.all([producerRedis.quit(), workerRedis.quit()]);
    },
  };
}

// ------------------------------------------------------------------ one phase

interface Req {
  readonly slotId: string;
  readonly postId: string;
  readonly accountId: string;
  readonly kind: 'thread' | 'post';
  readonly text?: string;
  readonly parts?: readonly { readonly text: string }[];
}

interface Item {
  readonly request: Req;
  readonly account: TestAccount;
  readonly texts: readonly string[];
}

function threadOf(tag: string, account: TestAccount): Item {
  const texts = Array.from(
    { length: P },
    (_, k) => `Thread ${RUN} ${tag} part ${k + 1}/${P}: a launch story in ${P} parts, each one replying to the one before.`,
  );
  return { account, texts, request: { slotId: `thread-${tag}`, postId: 'th', accountId: account.id, kind: 'thread', parts: texts.map((text) => ({ text })) } };
}

function postOf(tag: string, account: TestAccount): Item {
  const text = `Post ${RUN} ${tag}: one post, for the round trips a thread's part is compared with.`;
  return { account, texts: [text], request: { slotId: `post-${tag}`, postId: 'p1', accountId: account.id, kind: 'post', text } };
}

interface KeyRun {
  readonly item: Item;
  /** Enqueue → the job's `completed` event. */
  readonly e2eMs: number;
  /** Each part's (the post's) `createdAt` on the fake X − the enqueue's start. */
  readonly onX: readonly number[];
}

interface Phase {
  readonly runs: KeyRun[];
  readonly client: ClientCounts;
  readonly server: Map<string, CommandStat>;
  /** Enqueue → the last key's job completed. */
  readonly wallMs: number;
  readonly errors: string[];
}

/** Enqueue `items` at once, wait for their jobs, count the worker's Redis traffic in between, and check the work. */
async function phase(s: Stack, admin: Redis, items: readonly Item[]): Promise<Phase> {
  const keys = items.map((i) => keyId(i.request));
  const errors: string[] = [];
  const forwarded = s.proxy.forwarded();
  const before = await commandStats(admin);
  counter.begin();
  const t0 = Date.now();
  const statuses = await s.producer.enqueueMany(items.map((i) => i.request));
  await s.finishes.until(keys, TIMEOUT_MS).catch((err: Error) => errors.push(err.message));
  const client = counter.end();
  const server = diffCommandStats(before, await commandStats(admin));
  const ends = keys.map((k) => s.finishes.get(k));
  const wallMs = Math.max(...ends.map((f) => f?.at ?? NaN)) - t0;
  if (statuses.some((st) => st.status !== 'queued')) errors.push(`enqueueMany: ${fmtCounts(countBy(statuses, (st) => st.status))} (expected all queued)`);
  const outcomes = countBy(ends, (f) => (f?.error !== undefined ? `failed (${f.error})` : (f?.result?.outcome ?? 'not finished')));
  if (outcomes.get('sent') !== items.length) errors.push(`job outcomes: ${fmtCounts(outcomes)} (expected ${items.length} sent)`);
  const xCalls = s.proxy.forwarded() - forwarded;
  const expectedCalls = sum(items.map((i) => i.texts.length));
  if (xCalls !== expectedCalls) errors.push(`X got ${xCalls} requests for ${expectedCalls} parts and posts`);
  const tags = new Set(items.flatMap((i) => i.texts));
  const created = s.fake.created().filter((c) => tags.has(c.text));
  errors.push(...(await truth(s, items, created)));
  const byText = new Map(created.map((c) => [c.text, c]));
  const runs = items.map((item, i) => ({
    item,
    e2eMs: (ends[i]?.at ?? NaN) - t0,
    onX: item.texts.map((t) => (byText.get(t)?.createdAt ?? NaN) - t0),
  }));
  return { runs, client, server, wallMs, errors };
}

/** The ground truth of these keys: the ledger against what the fake X holds. */
async function truth(s: Stack, items: readonly Item[], created: readonly CreatedItem[]): Promise<string[]> {
  const records = await s.producer.ledger.getMany(items.map((i) => keyId(i.request)));
  const expected: ExpectedKey[] = items.map((item, i) => ({
    keyId: keyId(item.request),
    userId: item.account.userId,
    kind: item.request.kind,
    text: item.texts[0]!,
    ...(item.request.parts && { parts: item.request.parts }),
    scheduledAt: records[i]?.scheduledAt ?? 0,
  }));
  const v = verify(expected, records, created, RUN);
  const errors = v.violations.slice(0, 5).map((x) => `${x.keyId}: ${x.kind}: ${x.detail}`);
  if (v.violations.length > 5) errors.push(`... and ${v.violations.length - 5} more violations`);
  if (v.sent !== items.length) errors.push(`ledger: ${v.sent} of ${items.length} keys sent (${fmtCounts(countBy(records, (r) => r?.state ?? 'missing'))})`);
  const partless = records.filter((r) => r?.kind === 'thread' && (r.parts?.length !== P || r.parts.some((p) => !p.tweetId))).length;
  if (partless > 0) errors.push(`${partless} threads without an X id for every part in the ledger`);
  return errors;
}

/** Phases of one key at a time (`n` of them). */
async function oneByOne(s: Stack, admin: Redis, n: number, make: (i: number) => Item): Promise<Phase[]> {
  const out: Phase[] = [];
  for (let i = 0; i < n; i++) {
    const p = await phase(s, admin, [make(i)]);
    out.push(p);
    if (p.errors.length > 0) break;
  }
  return out;
}

// ------------------------------------------------------------------ figures

const ms = (v: number) => `${f0(v)} ms`;
const s2 = (v: number) => `${(v / 1000).toFixed(2)} s`;

interface Split {
  /** Enqueue → first part on X, minus the latency: enqueue, pickup, claim, the request out. */
  firstMs: number;
  /** Each gap between two parts on X minus the latency: settle, claim, the request out. */
  gapsMs: number[];
  /** Last part on X → the job completed: the answer back, settle, the job finished. */
  tailMs: number;
}

const splitOf = (r: KeyRun): Split => ({
  firstMs: r.onX[0]! - LATENCY,
  gapsMs: r.onX.slice(1).map((t, k) => t - r.onX[k]! - LATENCY),
  tailMs: r.e2eMs - r.onX.at(-1)!,
});

interface Traffic {
  perUnit: number;
  commandsPerUnit: number;
  ledgerPerUnit: number;
  serverPerUnit: number;
  byCommand: Map<string, number>;
}

/** Client-side round trips etc. over phases, per part (threads) or per post. */
function trafficOf(phases: readonly Phase[], units: number): Traffic {
  const byCommand = new Map<string, number>();
  for (const p of phases) for (const [k, v] of p.client.byCommand) byCommand.set(k, (byCommand.get(k) ?? 0) + v);
  const ledger = sum([...byCommand].filter(([k]) => isLedgerLabel(k)).map(([, v]) => v));
  return {
    perUnit: sum(phases.map((p) => p.client.roundTrips)) / units,
    commandsPerUnit: sum(phases.map((p) => p.client.commands)) / units,
    ledgerPerUnit: ledger / units,
    serverPerUnit: sum(phases.map((p) => totalCalls(p.server))) / units,
    byCommand,
  };
}

interface Concurrent {
  readonly round: number;
  readonly e2e: number[];
  readonly p50: number;
  readonly p99: number;
  readonly wallMs: number;
  readonly rtPerPart: number;
}

function concurrentOf(p: Phase, round: number): Concurrent {
  const e2e = p.runs.map((r) => r.e2eMs).sort((a, b) => a - b);
  return { round, e2e, p50: percentile(e2e, 50), p99: percentile(e2e, 99), wallMs: p.wallMs, rtPerPart: p.client.roundTrips / (p.runs.length * P) };
}

interface Results {
  threads: Phase[];
  posts: Phase[];
  concurrent: Concurrent[];
  concurrentPhases: Phase[];
  env: Row[];
  warmupMs: number;
}

// ------------------------------------------------------------------ report

interface Table {
  readonly header: Row;
  readonly rows: Row[];
}

interface Summary {
  readonly main: Table;
  readonly figures: Figure[];
  /** The verdict, round trips, concurrent and checks lines. */
  readonly lines: string[];
}

const perUnit = (r: Results) => ({
  thread: trafficOf(r.threads, r.threads.length * P),
  post: r.posts.length > 0 ? trafficOf(r.posts, r.posts.length) : undefined,
});

/** The headline table, the suite's figures and the verdict lines. */
function summaryOf(r: Results): Summary {
  const e2e = r.threads.map((p) => p.runs[0]!.e2eMs);
  const splits = r.threads.map((p) => splitOf(p.runs[0]!));
  const postRuns = r.posts.map((p) => p.runs[0]!);
  const postE2e = median(postRuns.map((k) => k.e2eMs));
  const { thread, post } = perUnit(r);
  const e2eMedian = median(e2e);
  const ratio = e2eMedian / IDEAL_MS;
  const ok = ratio <= TARGET_VS_IDEAL;
  const gaps = splits.flatMap((x) => x.gapsMs);
  const p = (v: string) => (post ? v : '');
  const rows: Row[] = [
    ['end-to-end, enqueue -> sent (median)', s2(e2eMedian), p(s2(postE2e)), `${s2(IDEAL_MS)} / ${s2(LATENCY)}`],
    ['end-to-end / ideal', `${f2(ratio)}×`, p(`${f2(postE2e / LATENCY)}×`), `<= ${TARGET_VS_IDEAL}× (target)`],
    ["xactly's share (end-to-end − ideal, median)", ms(e2eMedian - IDEAL_MS), p(ms(postE2e - LATENCY)), '0'],
    ['  enqueue -> first part on X, − latency (median)', ms(median(splits.map((x) => x.firstMs))), p(ms(median(postRuns.map((k) => splitOf(k).firstMs)))), ''],
    [`  between two parts, gap − latency (median / max of ${gaps.length})`, `${ms(median(gaps))} / ${ms(Math.max(...gaps))}`, '', ''],
    ['  last part on X -> job completed (median)', ms(median(splits.map((x) => x.tailMs))), p(ms(median(postRuns.map((k) => splitOf(k).tailMs)))), ''],
    ['Redis round trips per part / per post (worker, client side)', f2(thread.perUnit), p(f2(post?.perUnit ?? NaN)), ''],
    ['  of which ledger scripts (claim + settle)', f2(thread.ledgerPerUnit), p(f2(post?.ledgerPerUnit ?? NaN)), ''],
    ['  of which BullMQ and the rest', f2(thread.perUnit - thread.ledgerPerUnit), p(f2((post?.perUnit ?? NaN) - (post?.ledgerPerUnit ?? NaN))), ''],
    ['Redis round trips per thread / per post', f2(thread.perUnit * P), p(f2(post?.perUnit ?? NaN)), ''],
    ['commands per part / per post (worker, client side)', f2(thread.commandsPerUnit), p(f2(post?.commandsPerUnit ?? NaN)), ''],
    ['server-side commands per part / per post (all clients, incl. inside scripts)', f2(thread.serverPerUnit), p(f2(post?.serverPerUnit ?? NaN)), ''],
  ];
  const header = ['', `thread (${P} parts)`, 'single post', `ideal (${P} × ${LATENCY} ms / ${LATENCY} ms)`];

  const concP50 = median(r.concurrent.map((c) => c.p50));
  const concP99 = median(r.concurrent.map((c) => c.p99));
  const concIdeal = Math.ceil(CONCURRENT / C) * IDEAL_MS;
  const threadCount = r.threads.length + sum(r.concurrentPhases.map((c) => c.runs.length));
  const lines = [
    `${P}-part thread end-to-end ${s2(e2eMedian)} (median of ${e2e.length}) = ${f2(ratio)} × ideal ${s2(IDEAL_MS)} (target <= ${TARGET_VS_IDEAL} × ideal = ${s2(IDEAL_MS * TARGET_VS_IDEAL)}): ${verdict(ok)}`,
    post
      ? `Redis round trips: ${f2(thread.perUnit)} per part (${f2(thread.ledgerPerUnit)} ledger: claim + settle; ${f2(thread.perUnit - thread.ledgerPerUnit)} BullMQ's per-job work spread over ${P} parts) against ${f2(post.perUnit)} per single post; a ${P}-part thread costs ${f2(thread.perUnit * P)}, ${P} single posts ${f2(post.perUnit * P)}`
      : `Redis round trips: ${f2(thread.perUnit)} per part`,
    r.concurrent.length
      ? `${CONCURRENT} threads at once (worker concurrency ${C}; ideal ${s2(concIdeal)}): p50 ${s2(concP50)} (${f2(concP50 / concIdeal)}× ideal), p99 ${s2(concP99)} (${f2(concP99 / concIdeal)}× ideal), medians of ${r.concurrent.length} round(s)`
      : 'concurrent threads: skipped (--concurrent 0)',
    `Checks passed: ${threadCount} threads (${f0(threadCount * P)} parts) and ${r.posts.length} posts, after a warm-up of ${WARMUP} of each: every job completed \`sent\`, no job failed, the ledger holds every part's X id, the ground truth is clean (each part on the fake X once, in order, each replying to the part before; no strays), and X got exactly one request per part or post.`,
  ];
  const figures: Figure[] = [
    {
      name: `thread: end-to-end of a ${P}-part thread at ${LATENCY} ms X latency (median of ${e2e.length})`,
      value: `${s2(e2eMedian)} (${f2(ratio)} × ideal ${s2(IDEAL_MS)})`,
      target: `<= ${TARGET_VS_IDEAL} × ideal (${s2(IDEAL_MS * TARGET_VS_IDEAL)})`,
      verdict: verdict(ok),
    },
    {
      name: 'thread: Redis round trips per part (worker, client side)',
      value: post ? `${f2(thread.perUnit)} (ledger ${f2(thread.ledgerPerUnit)}); single post ${f2(post.perUnit)}` : f2(thread.perUnit),
      target: '',
      verdict: '',
    },
    { name: 'thread: between two parts, gap − X latency (median)', value: ms(median(gaps)), target: '', verdict: '' },
    ...(r.concurrent.length
      ? [
          {
            name: `thread: ${CONCURRENT} ${P}-part threads at once, p50 / p99 end-to-end (medians of rounds)`,
            value: `${s2(concP50)} / ${s2(concP99)} (ideal ${s2(concIdeal)})`,
            target: '',
            verdict: '' as const,
          },
        ]
      : []),
  ];
  return { main: { header, rows }, figures, lines };
}

/** Every thread run, the worker's commands, and the concurrent rounds. */
function detailsOf(r: Results): { perRun: Table; breakdown: Table; concurrent: Table } {
  const perRun = r.threads.map((p, i): Row => {
    const k = p.runs[0]!;
    const x = splitOf(k);
    return [
      String(i + 1),
      s2(k.e2eMs),
      `${f2(k.e2eMs / IDEAL_MS)}×`,
      ms(x.firstMs),
      ms(median(x.gapsMs)),
      ms(Math.max(...x.gapsMs)),
      ms(x.tailMs),
      String(p.client.roundTrips),
      f2(p.client.roundTrips / P),
    ];
  });
  const { thread, post } = perUnit(r);
  const names = [...new Set([...thread.byCommand.keys(), ...(post?.byCommand.keys() ?? [])])];
  const perThread = (n: string) => (thread.byCommand.get(n) ?? 0) / r.threads.length;
  const breakdown = names
    .sort((a, b) => perThread(b) - perThread(a) || a.localeCompare(b))
    .map((n): Row => [n, f2(perThread(n) / P), f2(perThread(n)), post ? f2((post.byCommand.get(n) ?? 0) / r.posts.length) : '']);
  const concurrent = r.concurrent.map((c): Row => [
    String(c.round),
    String(c.e2e.length),
    s2(c.p50),
    s2(c.p99),
    s2(c.e2e.at(-1)!),
    s2(c.wallMs),
    f2(c.rtPerPart),
  ]);
  return {
    perRun: {
      rows: perRun,
      header: ['run', 'end-to-end', '× ideal', 'first part − L', 'gap − L (median)', 'gap − L (max)', 'last part -> done', 'round trips', 'per part'],
    },
    breakdown: { rows: breakdown, header: ['command (worker, client side)', 'thread, per part', 'per thread', 'single post'] },
    concurrent: { rows: concurrent, header: ['round', 'threads', 'p50 end-to-end', 'p99 end-to-end', 'max', 'enqueue -> last done', 'round trips per part'] },
  };
}

function printReport(r: Results, summary: Summary, d: ReturnType<typeof detailsOf>): void {
  console.log('\n== environment');
  console.log(textTable(r.env));
  console.log(`\n== one ${P}-part thread at a time, against one post at a time (${r.threads.length} / ${r.posts.length} runs)`);
  console.log(textTable(summary.main.rows, summary.main.header));
  console.log('\n== every thread run (L = X latency; a gap is the time between two parts reaching X)');
  console.log(textTable(d.perRun.rows, d.perRun.header));
  console.log(
    `\n== Redis commands of the worker (client side; per part and per thread over ${r.threads.length} thread runs, per post over ${r.posts.length} post runs)`,
  );
  console.log(textTable(d.breakdown.rows, d.breakdown.header));
  if (d.concurrent.rows.length) {
    console.log(`\n== ${CONCURRENT} threads enqueued at once`);
    console.log(textTable(d.concurrent.rows, d.concurrent.header));
  }
  console.log(`\n${summary.lines.join('\n')}`);
}

function markdownOf(r: Results, summary: Summary, d: ReturnType<typeof detailsOf>): string {
  const md = (t: Table) => mdTable(t.rows, t.header);
  const standalone = COMMAND.replace(/^node dist\/bench\/thread\.js( |$)/, (_m: string, more: string) =>
    more ? 'npm run bench:thread -- ' : 'npm run bench:thread',
  );
  return `## Threads (\`bench/thread.ts\`)

Issue #13's benchmark: Redis round trips per part, and the end-to-end time of a ${P}-part thread at
${LATENCY} ms of X latency. A thread's parts go out one after the other (part k+1 replies to part k's
id), so the ideal is ${P} × ${LATENCY} ms = ${s2(IDEAL_MS)}; the target is within ${TARGET_VS_IDEAL}× of it. On its own:

\`\`\`sh
npm run build && ${standalone}
\`\`\`

One stack in the benchmark process, on its own random prefix: \`createProducer().enqueueMany\` and
\`createPublishWorker\` with the defaults of \`xactly worker\` (concurrency ${C}, lease, settle window,
budgets; a pino logger at info into a stream that drops the lines), the real \`TwitterXPort\` (OAuth 1.0a)
over HTTP to the latency proxy of test/support, which holds each request ${LATENCY} ms and then forwards
it to the fake X. The fake X rather than an in-process X port because threads are replies: the fake X
refuses a reply whose target it does not hold, so each part's reply target is checked by "X", the ground
truth checks every part once, in order, replying to the one before, and the adapter's own cost (signing,
HTTP, the proxy's hop) is in the figures. Each thread runs on an account of its own (default budget:
100 posts per 15 min per account). After a warm-up of ${WARMUP} thread(s) and ${WARMUP} post(s), ${r.threads.length} threads run one
at a time, then ${r.posts.length} single posts one at a time. End-to-end = the worker's \`completed\` event for the
key's job (outcome \`sent\`; the ledger is \`sent\` by then) − just before \`enqueueMany\`; the fake X's
\`createdAt\` of each part splits it up. Round trips are counted client side on the worker's connections
only (ioredis' \`sendCommand\` hooked, a pipeline counts once; the ledger shares the worker's connection as
\`xactly worker\` does, and BullMQ's blocking connection is counted too; the producer's is not).
Server-side commands come from \`INFO commandstats\` and include the producer's enqueue.

### Environment

${mdTable(r.env, ['', ''], true)}

### Figures

${md(summary.main)}

Every thread run (L = ${LATENCY} ms; a gap is the time between two parts reaching X):

${md(d.perRun)}

The worker's Redis commands (client side; EVALSHA named after its script). Per part the ledger costs
its claim and its settle; BullMQ's per-job work (fetching the job, finishing it, waiting for the next)
is paid once per thread:

${md(d.breakdown)}
${
  d.concurrent.rows.length
    ? `
${CONCURRENT} threads of ${P} parts enqueued at once (one \`enqueueMany\`), each on its own account, ${r.concurrent.length} round(s);
each thread's end-to-end from the start of the enqueue; p99 is the nearest rank (of ${CONCURRENT}: the slowest):

${md(d.concurrent)}
`
    : ''
}
${summary.lines.map((l) => `- ${l}`).join('\n')}
`;
}

// ------------------------------------------------------------------ main

async function main(): Promise<number> {
  const started = performance.now();
  const admin = newRedis();
  counter.ignore(admin);
  const version = await redisVersion(admin);
  console.log(
    `thread cost: ${P}-part threads at X latency ${LATENCY} ms (ideal ${s2(IDEAL_MS)}), ${RUNS} run(s) one at a time, ${POSTS} single post(s), ${CONCURRENT} threads at once × ${CONCURRENT_ROUNDS}; worker concurrency ${C}; Redis ${version} at ${REDIS_URL}`,
  );
  const s = await startStack(admin);
  const errors: string[] = [];
  const note = (label: string, phases: readonly Phase[]) => errors.push(...phases.flatMap((p) => p.errors.map((e) => `${label}: ${e}`)));
  try {
    const w0 = performance.now();
    note('warm-up thread', await oneByOne(s, admin, WARMUP, (i) => threadOf(`w${i}`, s.account())));
    note('warm-up post', await oneByOne(s, admin, WARMUP, (i) => postOf(`w${i}`, s.account())));
    const warmupMs = performance.now() - w0;
    if (errors.length > 0) return fail(errors);

    const threads = await oneByOne(s, admin, RUNS, (i) => threadOf(`r${i}`, s.account()));
    threads.forEach((p, i) =>
      console.log(`thread ${i + 1}: ${s2(p.runs[0]!.e2eMs)} (${f2(p.runs[0]!.e2eMs / IDEAL_MS)}× ideal), ${p.client.roundTrips} round trips`),
    );
    note('thread', threads);
    const postAccount = s.account();
    const posts = await oneByOne(s, admin, POSTS, (i) => postOf(`p${i}`, postAccount));
    posts.forEach((p, i) => console.log(`post ${i + 1}: ${ms(p.runs[0]!.e2eMs)}, ${p.client.roundTrips} round trips`));
    note('post', posts);
    const concurrentPhases: Phase[] = [];
    for (let round = 0; round < (CONCURRENT > 0 ? CONCURRENT_ROUNDS : 0) && errors.length === 0; round++) {
      const p = await phase(
        s,
        admin,
        Array.from({ length: CONCURRENT }, (_, i) => threadOf(`c${round}t${i}`, s.account())),
      );
      concurrentPhases.push(p);
      note(`concurrent round ${round + 1}`, [p]);
      const c = concurrentOf(p, round + 1);
      console.log(`${CONCURRENT} threads at once, round ${round + 1}: p50 ${s2(c.p50)}, p99 ${s2(c.p99)}, ${f2(c.rtPerPart)} round trips per part`);
    }
    if (errors.length > 0) return fail(errors);
    // Give a late duplicate the chance to show, then check the whole run at once.
    await sleep(300);
    const all = [...threads, ...posts, ...concurrentPhases].flatMap((p) => p.runs.map((k) => k.item));
    const late = await truth(s, all, s.fake.created());
    if (late.length > 0) return fail(late.map((e) => `whole run: ${e}`));

    const env: Row[] = [
      ['machine', machine()],
      ['Redis', `${version} at ${REDIS_URL.replace(/\/\/[^@]*@/, '//')}`],
      ['Node', process.version],
      ['libraries', `bullmq ${await versionOf('bullmq')}, ioredis ${await versionOf('ioredis')}, twitter-api-v2 ${await versionOf('twitter-api-v2')}`],
      ['date', new Date().toISOString()],
      ['X', `fake X behind the latency proxy, ${LATENCY} ms per request; TwitterXPort, OAuth 1.0a`],
      [
        'worker',
        `createPublishWorker in this process, concurrency ${C}, lease ${f0(leaseFor(CONFIG))} ms, budgets ${CONFIG.budget.post} posts / ${CONFIG.budget.windowMs / 60_000} min per account`,
      ],
      ['warm-up', `${WARMUP} thread(s) + ${WARMUP} post(s), ${s2(warmupMs)}`],
    ];
    const results: Results = { threads, posts, concurrent: concurrentPhases.map((p, i) => concurrentOf(p, i + 1)), concurrentPhases, env, warmupMs };
    const summary = summaryOf(results);
    const details = detailsOf(results);
    printReport(results, summary, details);
    await writeReport(args.report, {
      bench: 'thread',
      title: 'Threads',
      command: COMMAND,
      figures: summary.figures,
      markdown: markdownOf(results, summary, details),
      durationMs: performance.now() - started,
    });
    return 0;
  } finally {
    await s.close();
    await admin.quit();
  }
}

function fail(errors: readonly string[]): number {
  console.error('\nTHE FIGURES WOULD NOT MEASURE SUCCESSFUL WORK:');
  for (const e of errors) console.error(`  ${e}`);
  return 1;
}

run(main);
