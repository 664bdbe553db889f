/**
 * What does exactly-once cost? Bare BullMQ against xactly, one run, same Redis.
 *
 *   npm run build && npm run bench:overhead -- [--jobs N] [--concurrency C] [--warmup W] [--rounds R] [--report FILE]
 *
 * docs/benchmarks.md belongs to the suite (bench/suite.ts, `npm run bench --
 * --write-docs`), which runs this with `--report FILE` and takes its section.
 *
 * Each side gets its own random prefix and the same job count, concurrency,
 * job options and job payload; jobs are enqueued first (timed on their own),
 * then a worker created with `autorun: false` is started and timed until N
 * `completed` events. xactly runs the real producer (validation + ledger
 * registration + addBulk) and the real publish processor (claim script ->
 * X -> settle script) against an in-process X that answers at once, so what
 * is left is the ledger's cost. Afterwards the ledger must say `sent` for all
 * N keys, and X must have been called N times — otherwise the figures
 * measure failures, and the run exits 1.
 *
 * A shared 2-core machine makes single wall-clock samples noisy, so the pair
 * runs R times (default 3, order alternating) and times are medians; Redis
 * command counts and CPU per job are summed over all rounds.
 *
 * This is a benchmark: it prints figures and ratios against the targets and
 * does not assert timings.
 */
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { hashTagged, QUEUE_NAMES } from '../src/ledger/keys.js';
import type { PostState } from '../src/ledger/record.js';
import { createLogger } from '../src/log.js';
import { PUBLISH_JOB_OPTIONS, type PublishJobData, type PublishJobResult } from '../src/queue/jobs.js';
import { createProducer, createPublishWorker } from '../src/app.js';
import { dropPrefix, newRedis, REDIS_URL } from '../test/support/redis.js';
import { median } from '../test/support/stats.js';
import {
  type BenchReport,
  commandLine,
  f0,
  f2,
  type Figure,
  fmtCounts,
  instantX,
  intOption,
  machine,
  mb,
  mdTable,
  rand,
  type Row,
  TARGET_CPU_RATIO,
  TARGET_PROCESSING_RATIO,
  textTable,
  verdict,
  versionOf,
  writeReport,
} from './common.js';
import {
  type ClientCounts,
  type CommandStat,
  commandStats,
  diffCommandStats,
  installCommandCounter,
  isLedgerLabel,
  isScriptLabel,
  redisCpuSeconds,
  scriptCallsAreCounted,
  serverInfo,
} from './redis-stats.js';

const TARGET_ENQUEUE_RATIO = 0.8;
const TARGET_EXTRA_ROUND_TRIPS = 2;
/** The outcome events may add at most this share of Redis CPU per publish (#14). */
const TARGET_EVENTS_SHARE = 0.1;
const CHUNK = 1_000;
const ACCOUNTS = 100;

// ------------------------------------------------------------------ options

const { values: args } = parseArgs({
  options: {
    jobs: { type: 'string', default: '20000' },
    concurrency: { type: 'string', default: '50' },
    warmup: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '3' },
    'timeout-s': { type: 'string', default: '600' },
    /** Write a JSON report (figures, Markdown section) for bench/suite.ts. */
    report: { type: 'string' },
    /** Moved to the suite: docs/benchmarks.md holds every benchmark. */
    'write-docs': { type: 'boolean', default: false },
    /** Time without the client-side command counter (to see what counting costs). */
    'no-client-count': { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log(
    'usage: node dist/bench/overhead.js [--jobs N=20000] [--concurrency C=50] [--warmup W=1000] [--rounds R=3] [--timeout-s S=600] [--report FILE] [--no-client-count]',
  );
  process.exit(0);
}
if (args['write-docs']) {
  console.error('docs/benchmarks.md is written by the suite, which runs this benchmark too: npm run build && npm run bench -- --write-docs');
  process.exit(2);
}
const N = intOption('jobs', args.jobs, 1);
const C = intOption('concurrency', args.concurrency, 1);
const WARMUP = intOption('warmup', args.warmup, 0);
const ROUNDS = intOption('rounds', args.rounds, 1);
const TIMEOUT_MS = intOption('timeout-s', args['timeout-s'], 1) * 1_000;
const COMMAND = commandLine('overhead.js');
const STARTED = performance.now();

// ------------------------------------------------------------------ helpers

const hook = installCommandCounter();
const CLIENT_COUNTED = !args['no-client-count'];
const counter = !CLIENT_COUNTED ? { begin: () => undefined, end: () => hook.end(), ignore: hook.ignore } : hook;
const mb0 = (bytes: number) => mb(bytes, 0);
const rss = () => process.memoryUsage().rss;

/** The publish requests both sides carry: N posts over 100 accounts. */
function requests(n: number) {
  return Array.from({ length: n }, (_, i) => ({
    slotId: `slot-${i}`,
    postId: 'p1',
    accountId: `acc-${i % ACCOUNTS}`,
    kind: 'post' as const,
    text: `Benchmark post #${i}: scheduled, published exactly once, or failed loudly with a reason.`,
  }));
}

interface Completion {
  completed: number;
  failed: number;
  firstFailure?: string;
  outcomes: Map<string, number>;
}

/**
 * Resolve once `n` jobs completed or failed; reject after the timeout. A
 * failed attempt counts too (BullMQ emits `failed` per attempt): any failure
 * means the figures are not about successful work, and the run reports it.
 */
function completions(worker: Worker, n: number): { done: Promise<Completion>; tally: Completion } {
  const tally: Completion = { completed: 0, failed: 0, outcomes: new Map() };
  const done = new Promise<Completion>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`timed out after ${TIMEOUT_MS / 1000}s: ${tally.completed} completed, ${tally.failed} failed of ${n}`)),
      TIMEOUT_MS,
    );
    const check = () => {
      if (tally.completed + tally.failed >= n) {
        clearTimeout(timer);
        resolve(tally);
      }
    };
    worker.on('completed', (_job, result: unknown) => {
      tally.completed++;
      const outcome = (result as Partial<PublishJobResult> | undefined)?.outcome ?? 'done';
      tally.outcomes.set(outcome, (tally.outcomes.get(outcome) ?? 0) + 1);
      check();
    });
    worker.on('failed', (_job, err) => {
      tally.failed++;
      tally.firstFailure ??= err.message;
      check();
    });
  });
  return { done, tally };
}

interface SideResult {
  enqueueMs: number;
  processMs: number;
  enqueueClient: ClientCounts;
  processClient: ClientCounts;
  processServer: Map<string, CommandStat>;
  /** CPU used while processing: this process, and the Redis server (all its clients). */
  nodeCpuMs: number;
  redisCpuMs: number;
  /** Redis clients connected when processing ended (ours: 4), a hint of foreign traffic. */
  connectedClients: number;
  completion: Completion;
  rssBefore: number;
  rssAfterEnqueue: number;
  rssAfter: number;
  /** Problems that make the figures meaningless. */
  errors: string[];
  /** xactly only: ledger states over the whole ledger, and X calls. */
  ledgerStates?: Map<PostState, number>;
  xCalls?: number;
}

/** Time `worker.run()` until n completions, with both Redis counters around it. */
async function processPhase(admin: Redis, worker: Worker, n: number) {
  worker.on('error', (err) => console.error(`  worker error: ${err.message}`));
  await worker.waitUntilReady();
  const { done } = completions(worker, n);
  const before = await commandStats(admin);
  const redisCpuBefore = await redisCpuSeconds(admin);
  const cpuBefore = process.cpuUsage();
  counter.begin();
  const started = performance.now();
  const running = worker.run().catch((err: Error) => console.error(`  worker.run: ${err.message}`));
  const completion = await done;
  const processMs = performance.now() - started;
  const processClient = counter.end();
  const cpu = process.cpuUsage(cpuBefore);
  const nodeCpuMs = (cpu.user + cpu.system) / 1000;
  const redisCpuMs = ((await redisCpuSeconds(admin)) - redisCpuBefore) * 1000;
  const processServer = diffCommandStats(before, await commandStats(admin));
  const { connectedClients } = await serverInfo(admin);
  const rssAfter = rss();
  await worker.close();
  await running;
  return { completion, processMs, processClient, processServer, rssAfter, nodeCpuMs, redisCpuMs, connectedClients };
}

// ------------------------------------------------------------------ bare BullMQ

async function runBare(admin: Redis, prefix: string, n: number, concurrency: number): Promise<SideResult> {
  const queueRedis = newRedis();
  const workerRedis = newRedis();
  const bullPrefix = hashTagged(prefix);
  try {
    const queue = new Queue<PublishJobData>(QUEUE_NAMES.publish, {
      connection: queueRedis as never,
      prefix: bullPrefix,
      defaultJobOptions: PUBLISH_JOB_OPTIONS,
    });
    await queue.waitUntilReady();
    const raw = requests(n);
    const rssBefore = rss();

    counter.begin();
    const t0 = performance.now();
    for (let i = 0; i < raw.length; i += CHUNK) {
      const scheduledAt = new Date().toISOString();
      await queue.addBulk(
        raw.slice(i, i + CHUNK).map((r) => {
          const keyId = `k.${r.slotId}.${r.postId}`;
          return { name: r.kind, data: { keyId, ...r, scheduledAt }, opts: { jobId: keyId } };
        }),
      );
    }
    const enqueueMs = performance.now() - t0;
    const enqueueClient = counter.end();
    const rssAfterEnqueue = rss();

    const worker = new Worker(QUEUE_NAMES.publish, async () => ({}), {
      connection: workerRedis as never,
      prefix: bullPrefix,
      concurrency,
      autorun: false,
    });
    const p = await processPhase(admin, worker, n);
    await queue.close();

    const errors: string[] = [];
    if (p.completion.failed > 0) errors.push(`${p.completion.failed} jobs failed (first: ${p.completion.firstFailure})`);
    if (p.completion.completed !== n) errors.push(`${p.completion.completed} of ${n} jobs completed`);
    return { enqueueMs, enqueueClient, rssBefore, rssAfterEnqueue, errors, ...p };
  } finally {
    await Promise.all([queueRedis.quit(), workerRedis.quit()]);
  }
}

// ------------------------------------------------------------------ xactly

async function runXactly(admin: Redis, prefix: string, n: number, concurrency: number): Promise<SideResult> {
  const producerRedis = newRedis();
  const workerRedis = newRedis();
  try {
    // Retention only sets the TTL of the records (which this bench deletes);
    // an hour keeps a crashed run from leaving 30 days of keys behind.
    const producer = createProducer({ connection: producerRedis, prefix, retentionMs: 3_600_000 });
    await producer.queue.waitUntilReady();
    const raw = requests(n);
    const rssBefore = rss();

    const statuses = new Map<string, number>();
    counter.begin();
    const t0 = performance.now();
    for (let i = 0; i < raw.length; i += CHUNK) {
      for (const r of await producer.enqueueMany(raw.slice(i, i + CHUNK))) statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
    }
    const enqueueMs = performance.now() - t0;
    const enqueueClient = counter.end();
    const rssAfterEnqueue = rss();

    const x = instantX();
    const worker = createPublishWorker({
      connection: workerRedis,
      // The ledger shares the worker's connection, as `xactly worker` does.
      prefix,
      retentionMs: 3_600_000,
      x,
      logger: createLogger({ level: 'silent' }),
      concurrency,
      leaseMs: 30_000,
      settleWindowMs: 60_000,
      workerOptions: { autorun: false },
    });
    const p = await processPhase(admin, worker as unknown as Worker, n);

    const ledgerStates = new Map<PostState, number>();
    for await (const record of producer.ledger.list()) ledgerStates.set(record.state, (ledgerStates.get(record.state) ?? 0) + 1);
    await producer.close();

    const errors: string[] = [];
    if ((statuses.get('queued') ?? 0) !== n) errors.push(`enqueueMany: ${fmtCounts(statuses)} (expected ${n} queued)`);
    if (p.completion.failed > 0) errors.push(`${p.completion.failed} jobs failed (first: ${p.completion.firstFailure})`);
    if ((p.completion.outcomes.get('sent') ?? 0) !== n) errors.push(`job outcomes: ${fmtCounts(p.completion.outcomes)} (expected ${n} sent)`);
    if ((ledgerStates.get('sent') ?? 0) !== n) errors.push(`ledger: ${fmtCounts(ledgerStates)} (expected ${n} sent)`);
    if (x.calls() !== n) errors.push(`X was called ${x.calls()} times for ${n} keys`);
    return { enqueueMs, enqueueClient, rssBefore, rssAfterEnqueue, errors, ledgerStates, xCalls: x.calls(), ...p };
  } finally {
    await Promise.all([producerRedis.quit(), workerRedis.quit()]);
  }
}

// ------------------------------------------------------------------ report

const f1 = (v: number) => v.toFixed(1);
/** A signed per-job difference, without "-0.00". */
const delta = (d: number) => (d <= -0.005 ? f2(d) : `+${f2(Math.max(0, d))}`);
const ratio = (a: number, b: number) => (b > 0 ? a / b : NaN);
const times = (a: number, b: number) => `x${f2(ratio(a, b))}`;
const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);
const serverPerJob = (r: SideResult) => sum([...r.processServer.values()].map((v) => v.calls)) / N;

/** All rounds of one side, added up (counts) or reduced to medians (times). */
interface Side {
  rounds: SideResult[];
  /** Jobs over all rounds: the denominator of every per-job figure. */
  jobs: number;
  processMs: number;
  enqueueMs: number;
  enqueueClient: ClientCounts;
  processClient: ClientCounts;
  processServer: Map<string, number>;
  /** Server time in XADD while processing (BullMQ's own event stream, and xactly's outcome events). */
  xaddUsec: number;
  /** Server time in Lua scripts while processing (BullMQ's and the ledger's; the commands they run included). */
  scriptUsec: number;
  nodeCpuMs: number;
  redisCpuMs: number;
}

function addCounts(into: Map<string, number>, from: ReadonlyMap<string, number>) {
  for (const [k, v] of from) into.set(k, (into.get(k) ?? 0) + v);
}

function sideOf(rounds: SideResult[]): Side {
  const clients = (pick: (r: SideResult) => ClientCounts): ClientCounts => {
    const byCommand = new Map<string, number>();
    for (const r of rounds) addCounts(byCommand, pick(r).byCommand);
    return {
      commands: sum(rounds.map((r) => pick(r).commands)),
      roundTrips: sum(rounds.map((r) => pick(r).roundTrips)),
      pipelinedCommands: sum(rounds.map((r) => pick(r).pipelinedCommands)),
      byCommand,
    };
  };
  const processServer = new Map<string, number>();
  for (const r of rounds) addCounts(processServer, new Map([...r.processServer].map(([k, v]) => [k, v.calls])));
  return {
    rounds,
    jobs: N * rounds.length,
    processMs: median(rounds.map((r) => r.processMs)),
    enqueueMs: median(rounds.map((r) => r.enqueueMs)),
    enqueueClient: clients((r) => r.enqueueClient),
    processClient: clients((r) => r.processClient),
    processServer,
    xaddUsec: sum(rounds.map((r) => r.processServer.get('xadd')?.usec ?? 0)),
    scriptUsec: sum(rounds.map((r) => (r.processServer.get('evalsha')?.usec ?? 0) + (r.processServer.get('eval')?.usec ?? 0))),
    nodeCpuMs: sum(rounds.map((r) => r.nodeCpuMs)),
    redisCpuMs: sum(rounds.map((r) => r.redisCpuMs)),
  };
}

interface Env {
  redisVersion: string;
  scriptCounted: boolean;
  clients: number;
  loadAvg: number[];
  libs: string;
}

interface Report {
  env: Row[];
  main: Row[];
  perRound: Row[];
  clientBreakdown: Row[];
  enqueueBreakdown: Row[];
  serverBreakdown: Row[];
  checks: string[];
  notes: string[];
  verdicts: string[];
  /** The headline figures with their targets, for the suite's summary. */
  figures: Figure[];
}

const breakdown = (b: ReadonlyMap<string, number>, x: ReadonlyMap<string, number>, jobs: number, minPerJob = 0): Row[] =>
  [...new Set([...b.keys(), ...x.keys()])]
    .map((k) => [k, b.get(k) ?? 0, x.get(k) ?? 0] as const)
    .filter(([, bv, xv]) => (bv + xv) / jobs >= minPerJob)
    .sort((p, q) => q[1] + q[2] - (p[1] + p[2]))
    .map(([k, bv, xv]) => [k, f2(bv / jobs), f2(xv / jobs), delta((xv - bv) / jobs)]);

function buildReport(env: Env, bareRounds: SideResult[], xaRounds: SideResult[], orders: string[]): Report {
  const bare = sideOf(bareRounds);
  const xa = sideOf(xaRounds);
  const J = bare.jobs;
  const envRows: Row[] = [
    ['machine', machine()],
    ['Redis', `${env.redisVersion} at ${REDIS_URL.replace(/\/\/[^@]*@/, '//')} (${env.clients} clients connected at start)`],
    ['Node', process.version],
    ['libraries', env.libs],
    ['load average at start (1/5/15 min)', env.loadAvg.map((l) => l.toFixed(2)).join(' / ')],
    ['date', new Date().toISOString()],
    ['jobs (N) / concurrency (C)', `${N} / ${C}`],
    ['rounds', `${ROUNDS} (each: both sides, order alternating; times are medians) + warm-up of ${WARMUP} jobs per side`],
  ];

  const procBare = N / (bare.processMs / 1000);
  const procXa = N / (xa.processMs / 1000);
  const enqBare = N / (bare.enqueueMs / 1000);
  const enqXa = N / (xa.enqueueMs / 1000);
  // Ratios are the median of each round's own ratio (both sides of a round ran back to back): a
  // ratio of the two sides' medians can pair a slow round of one side with a fast one of the other.
  const procRatio = median(bareRounds.map((b, i) => ratio(b.processMs, xaRounds[i]!.processMs)));
  const enqRatio = median(bareRounds.map((b, i) => ratio(b.enqueueMs, xaRounds[i]!.enqueueMs)));
  const eventsShare = Math.max(0, xa.xaddUsec - bare.xaddUsec) / 1000 / xa.redisCpuMs;
  const extraRt = (xa.processClient.roundTrips - bare.processClient.roundTrips) / J;
  const extraCmd = (xa.processClient.commands - bare.processClient.commands) / J;
  const ledgerCalls = sum([...xa.processClient.byCommand].filter(([k]) => isLedgerLabel(k)).map(([, v]) => v));
  const serverBare = sum([...bare.processServer.values()]);
  const serverXa = sum([...xa.processServer.values()]);
  const us = (ms: number) => `${f0((ms / J) * 1000)} us`;
  const rssOf = (s: Side) =>
    `${mb0(s.rounds[0]!.rssBefore)} -> ${mb0(Math.max(...s.rounds.map((r) => r.rssAfterEnqueue)))} -> ${mb0(s.rounds.at(-1)!.rssAfter)}`;

  const all: Row[] = [
    ['processing: time (median)', `${f2(bare.processMs / 1000)} s`, `${f2(xa.processMs / 1000)} s`, ''],
    ["processing: throughput (ratio: median of the rounds' ratios)", `${f0(procBare)} jobs/s`, `${f0(procXa)} jobs/s`, f2(procRatio)],
    ['enqueue: time (median)', `${f2(bare.enqueueMs / 1000)} s`, `${f2(xa.enqueueMs / 1000)} s`, ''],
    ["enqueue: throughput (ratio: median of the rounds' ratios)", `${f0(enqBare)} jobs/s`, `${f0(enqXa)} jobs/s`, f2(enqRatio)],
    ['processing: round trips / job (client)', f2(bare.processClient.roundTrips / J), f2(xa.processClient.roundTrips / J), delta(extraRt)],
    ['processing: commands / job (client)', f2(bare.processClient.commands / J), f2(xa.processClient.commands / J), delta(extraCmd)],
    ['processing: ledger script calls / job (client)', '0.00', f2(ledgerCalls / J), ''],
    ['processing: commands / job (server, incl. in scripts)', f2(serverBare / J), f2(serverXa / J), delta((serverXa - serverBare) / J)],
    ['processing: Node CPU / job (this process)', us(bare.nodeCpuMs), us(xa.nodeCpuMs), times(xa.nodeCpuMs, bare.nodeCpuMs)],
    ['processing: Redis CPU / job (server)', us(bare.redisCpuMs), us(xa.redisCpuMs), times(xa.redisCpuMs, bare.redisCpuMs)],
    // Time inside scripts by INFO commandstats: steadier than CPU on a shared machine, and where the ledger's cost lives.
    ['processing: Redis script time / job (server)', us(bare.scriptUsec / 1000), us(xa.scriptUsec / 1000), times(xa.scriptUsec, bare.scriptUsec)],
    [
      'processing: Node + Redis CPU / job',
      us(bare.nodeCpuMs + bare.redisCpuMs),
      us(xa.nodeCpuMs + xa.redisCpuMs),
      times(xa.nodeCpuMs + xa.redisCpuMs, bare.nodeCpuMs + bare.redisCpuMs),
    ],
    [`enqueue: round trips per ${CHUNK} jobs (client)`, f2((bare.enqueueClient.roundTrips / J) * CHUNK), f2((xa.enqueueClient.roundTrips / J) * CHUNK), ''],
    ['enqueue: commands / job (client)', f2(bare.enqueueClient.commands / J), f2(xa.enqueueClient.commands / J), ''],
    ['RSS: start -> max after enqueue -> end', rssOf(bare), rssOf(xa), ''],
  ];
  // Without the client-side counter, its rows would read 0: leave them out.
  const main = CLIENT_COUNTED ? all : all.filter((r) => !/client/.test(r[0]!));

  const perRound: Row[] = bareRounds.map((b, i) => {
    const x = xaRounds[i]!;
    return [
      `${i + 1} (${orders[i]})`,
      `${f0(N / (b.processMs / 1000))}`,
      `${f0(N / (x.processMs / 1000))}`,
      f2(ratio(b.processMs, x.processMs)),
      `${f0(N / (b.enqueueMs / 1000))}`,
      `${f0(N / (x.enqueueMs / 1000))}`,
      f2(ratio(b.enqueueMs, x.enqueueMs)),
      `${f2(serverPerJob(b))} / ${f2(serverPerJob(x))}`,
      `${b.connectedClients} / ${x.connectedClients}`,
    ];
  });

  const notes: string[] = [];
  for (const [side, rounds] of [
    ['bare', bareRounds],
    ['xactly', xaRounds],
  ] as const) {
    const perJob = rounds.map(serverPerJob);
    if (Math.max(...perJob) > Math.min(...perJob) * 1.02 + 0.1)
      notes.push(
        `${side}: server-side commands per job varied across rounds (${perJob.map(f2).join(', ')}): other clients' traffic is mixed into the server-side figures.`,
      );
  }
  for (const [side, r] of CLIENT_COUNTED
    ? ([
        ['bare', bare],
        ['xactly', xa],
      ] as const)
    : []) {
    const serverScripts = (r.processServer.get('evalsha') ?? 0) + (r.processServer.get('eval') ?? 0);
    const clientScripts = sum([...r.processClient.byCommand].filter(([k]) => isScriptLabel(k)).map(([, v]) => v));
    if (serverScripts > clientScripts * 1.01 + 20)
      notes.push(
        `${side}: Redis ran ${serverScripts} EVALSHA/EVAL while processing but this process sent ${clientScripts}: other clients were busy, so server-side figures include their traffic.`,
      );
  }
  notes.push(
    env.scriptCounted
      ? 'This Redis counts commands run inside Lua scripts under their own cmdstat entries (checked with a 3-ECHO script), so server-side counts include script-internal work; EVALSHA counts once per script call.'
      : 'This Redis does not count commands run inside Lua scripts in commandstats (checked with a 3-ECHO script).',
    'Wall-clock throughput on a shared machine swings with whatever else runs; the CPU-per-job rows (CPU time, not wall time) are steadier.',
  );

  const sentTotal = sum(xaRounds.map((r) => r.ledgerStates?.get('sent') ?? 0));
  const checks = [
    `xactly ledger after each round: ${xaRounds.map((r) => fmtCounts(r.ledgerStates ?? new Map())).join(' | ')}`,
    `xactly: ${sentTotal} of ${J} keys sent, X called ${sum(xaRounds.map((r) => r.xCalls ?? 0))} times; bare: ${sum(bareRounds.map((r) => r.completion.completed))} of ${J} jobs completed`,
  ];

  const verdicts = [
    `processing throughput xactly/bare = ${procRatio.toFixed(3)} (target >= ${TARGET_PROCESSING_RATIO}): ${verdict(procRatio >= TARGET_PROCESSING_RATIO)}`,
    `enqueue throughput enqueueMany/addBulk = ${enqRatio.toFixed(3)} (target >= ${TARGET_ENQUEUE_RATIO}): ${verdict(enqRatio >= TARGET_ENQUEUE_RATIO)}`,
    `Node + Redis CPU per publish xactly/bare = ${f2(ratio(xa.nodeCpuMs + xa.redisCpuMs, bare.nodeCpuMs + bare.redisCpuMs))} (target <= ${TARGET_CPU_RATIO}): ${verdict(ratio(xa.nodeCpuMs + xa.redisCpuMs, bare.nodeCpuMs + bare.redisCpuMs) <= TARGET_CPU_RATIO)}`,
    `outcome events = ${f1(eventsShare * 100)} % of Redis CPU per publish (target <= ${TARGET_EVENTS_SHARE * 100} %): ${verdict(eventsShare <= TARGET_EVENTS_SHARE)}`,
    CLIENT_COUNTED
      ? `extra round trips per publish = ${f2(extraRt)} (target <= ${TARGET_EXTRA_ROUND_TRIPS}: claim + settle): ${verdict(extraRt <= TARGET_EXTRA_ROUND_TRIPS + 0.005)}`
      : 'extra round trips per publish: not counted (--no-client-count)',
  ];
  const figures: Figure[] = [
    {
      name: 'overhead: processing throughput xactly / bare',
      value: `${f2(procRatio)} (${f0(procXa)} vs ${f0(procBare)} jobs/s)`,
      target: `>= ${TARGET_PROCESSING_RATIO}`,
      verdict: verdict(procRatio >= TARGET_PROCESSING_RATIO),
    },
    {
      name: `enqueue: ${f0(N)} keys, enqueueMany / addBulk`,
      value: `${f2(enqRatio)} (${f0(enqXa)} vs ${f0(enqBare)} jobs/s)`,
      target: `>= ${TARGET_ENQUEUE_RATIO}`,
      verdict: verdict(enqRatio >= TARGET_ENQUEUE_RATIO),
    },
    ...(CLIENT_COUNTED
      ? [
          {
            name: 'round trips: extra per publish (client side)',
            value: f2(extraRt),
            target: `<= ${TARGET_EXTRA_ROUND_TRIPS} (claim + settle)`,
            verdict: verdict(extraRt <= TARGET_EXTRA_ROUND_TRIPS + 0.005),
          },
        ]
      : []),
    {
      // Both sides XADD to BullMQ's own event stream; what xactly adds beyond that are its outcome events.
      name: 'events: Redis CPU of the outcome events per publish',
      value: `${f1(eventsShare * 100)} % of Redis CPU (${f1((xa.xaddUsec - bare.xaddUsec) / J)} of ${f0((xa.redisCpuMs / J) * 1000)} us per publish)`,
      target: `<= ${TARGET_EVENTS_SHARE * 100} %`,
      verdict: verdict(eventsShare <= TARGET_EVENTS_SHARE),
    },
    {
      name: 'overhead: Node + Redis CPU per publish, xactly / bare',
      value: `${times(xa.nodeCpuMs + xa.redisCpuMs, bare.nodeCpuMs + bare.redisCpuMs)} (${us(xa.nodeCpuMs + xa.redisCpuMs)} vs ${us(bare.nodeCpuMs + bare.redisCpuMs)})`,
      target: `<= x${TARGET_CPU_RATIO}`,
      verdict: verdict(ratio(xa.nodeCpuMs + xa.redisCpuMs, bare.nodeCpuMs + bare.redisCpuMs) <= TARGET_CPU_RATIO),
    },
  ];
  return {
    figures,
    env: envRows,
    main,
    perRound,
    clientBreakdown: breakdown(bare.processClient.byCommand, xa.processClient.byCommand, J),
    enqueueBreakdown: breakdown(bare.enqueueClient.byCommand, xa.enqueueClient.byCommand, J),
    serverBreakdown: breakdown(bare.processServer, xa.processServer, J, 0.01),
    checks,
    notes,
    verdicts,
  };
}

const PER_ROUND_HEADER = [
  'round (first side)',
  'bare jobs/s',
  'xactly jobs/s',
  'ratio',
  'bare enqueue/s',
  'xactly enqueue/s',
  'ratio',
  'server cmds/job (bare / xactly)',
  'Redis clients at end',
];

function printReport(r: Report): void {
  console.log('\n== environment');
  console.log(textTable(r.env));
  console.log('\n== figures (processing = worker start until N completed)');
  console.log(textTable(r.main, ['', 'bare BullMQ', 'xactly', 'xactly vs bare']));
  {
    console.log('\n== per round');
    console.log(textTable(r.perRound, PER_ROUND_HEADER));
  }
  if (CLIENT_COUNTED) {
    console.log('\n== client-side commands per job while processing (what this process sent to Redis)');
    console.log(textTable(r.clientBreakdown, ['command', 'bare', 'xactly', 'extra']));
    console.log('\n== client-side commands per job while enqueueing (each chunk goes out as one pipeline)');
    console.log(textTable(r.enqueueBreakdown, ['command', 'bare', 'xactly', 'extra']));
  }
  console.log('\n== server-side INFO commandstats per job while processing (includes commands run inside scripts)');
  console.log(textTable(r.serverBreakdown, ['command', 'bare', 'xactly', 'extra']));
  console.log('\n== checks');
  for (const c of r.checks) console.log(c);
  for (const v of r.verdicts) console.log(v);
  for (const note of r.notes) console.log(`note: ${note}`);
}

function docs(r: Report): string {
  const clientSection = CLIENT_COUNTED
    ? `Client side — every command this process wrote to Redis, counted by hooking
ioredis' \`Redis.prototype.sendCommand\` (BullMQ's connections included, the
ledger shares the worker's connection as \`xactly worker\` does; a pipeline or
MULTI counts as one round trip; EVALSHA is named after the script it runs):

${mdTable(r.clientBreakdown, ['command', 'bare', 'xactly', 'extra'])}

While enqueueing (each chunk of ${CHUNK} goes out as one pipeline):

${mdTable(r.enqueueBreakdown, ['command', 'bare', 'xactly', 'extra'])}`
    : 'Client side: not counted in this run (`--no-client-count`).';
  return `## Overhead, round trips and enqueue: xactly vs bare BullMQ (\`bench/overhead.ts\`)

What exactly-once costs on top of bare BullMQ. On its own:

\`\`\`sh
npm run build && ${COMMAND.replace(/^node dist\/bench\/overhead\.js( |$)/, (_m: string, more: string) => (more ? 'npm run bench:overhead -- ' : 'npm run bench:overhead'))}
\`\`\`

Both sides run in one process against the same Redis, each on its own random
prefix, with the same job count, concurrency, job payload and job options
(\`PUBLISH_JOB_OPTIONS\`). Jobs are enqueued first (timed separately, chunks of
${CHUNK}); then a worker created with \`autorun: false\` is started and timed
until N \`completed\` events.

- **bare BullMQ**: \`Queue.addBulk\` + a \`Worker\` whose processor returns \`{}\`.
- **xactly**: \`createProducer().enqueueMany\` (validation, ledger registration,
  \`addBulk\`) + \`createPublishWorker\` (claim script, X call, settle script)
  over ${ACCOUNTS} accounts, with an in-process X that answers immediately, so
  only the ledger's cost remains. After each round the ledger must hold N
  \`sent\` records and X must have been called N times, or the run fails.

### Environment

${mdTable(r.env, ['', ''], true)}

### Figures

${mdTable(r.main, ['', 'bare BullMQ', 'xactly', 'xactly vs bare'])}

Per round:

${mdTable(r.perRound, PER_ROUND_HEADER)}

${r.verdicts.map((v) => `- ${v}`).join('\n')}

### Redis traffic per job while processing

${clientSection}

Server side — \`INFO commandstats\` deltas around each processing phase. Redis
counts commands run inside Lua scripts too, and counts every client of the
server, so these show Redis' work rather than round trips:

${mdTable(r.serverBreakdown, ['command', 'bare', 'xactly', 'extra'])}

${[...r.checks, ...r.notes].map((n) => `- ${n}`).join('\n')}
`;
}

// ------------------------------------------------------------------ main

async function main(): Promise<number> {
  const admin = newRedis();
  counter.ignore(admin);
  const id = rand();
  const prefixes: string[] = [];
  const prefix = (side: string, round: number | 'warm') => {
    const p = round === 'warm' ? `xb-${side}-${id}-warm` : ROUNDS === 1 ? `xb-${side}-${id}` : `xb-${side}-${id}-${round + 1}`;
    prefixes.push(p);
    return p;
  };
  try {
    const loadAvg = os.loadavg();
    const { version, connectedClients } = await serverInfo(admin);
    const scriptCounted = await scriptCallsAreCounted(admin);
    console.log(`xactly overhead benchmark: N=${N} jobs, concurrency ${C}, ${ROUNDS} round(s), Redis ${version} at ${REDIS_URL}`);

    if (WARMUP > 0) {
      const t = performance.now();
      const w1 = await runBare(admin, prefix('bare', 'warm'), WARMUP, C);
      const w2 = await runXactly(admin, prefix('xactly', 'warm'), WARMUP, C);
      for (const p of prefixes) await dropPrefix(admin, p);
      const errors = [...w1.errors.map((e) => `bare: ${e}`), ...w2.errors.map((e) => `xactly: ${e}`)];
      if (errors.length > 0) {
        // Measuring a broken pipeline would only time its failures.
        console.error('warm-up failed, not measuring:');
        for (const e of errors) console.error(`  ${e}`);
        return 1;
      }
      console.log(`warm-up: ${WARMUP} jobs per side in ${f2((performance.now() - t) / 1000)} s`);
    }

    const bare: SideResult[] = [];
    const xa: SideResult[] = [];
    const orders: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const sides = round % 2 === 0 ? (['bare', 'xactly'] as const) : (['xactly', 'bare'] as const);
      orders.push(sides[0]);
      for (const side of sides) {
        const p = prefix(side, round);
        const r = side === 'bare' ? await runBare(admin, p, N, C) : await runXactly(admin, p, N, C);
        (side === 'bare' ? bare : xa).push(r);
        console.log(
          `round ${round + 1}, ${side.padEnd(6)} (${p}): enqueue ${f2(r.enqueueMs / 1000)} s, processing ${f2(r.processMs / 1000)} s` +
            (r.errors.length ? ` — ${r.errors.join('; ')}` : ''),
        );
        await dropPrefix(admin, p);
      }
    }

    const libs = `bullmq ${await versionOf('bullmq')}, ioredis ${await versionOf('ioredis')}`;
    const report = buildReport({ redisVersion: version, scriptCounted, clients: connectedClients, loadAvg, libs }, bare, xa, orders);
    printReport(report);

    const errors = [...bare.flatMap((r) => r.errors.map((e) => `bare: ${e}`)), ...xa.flatMap((r) => r.errors.map((e) => `xactly: ${e}`))];
    if (errors.length > 0) {
      console.error('\nTHE FIGURES ABOVE DO NOT MEASURE SUCCESSFUL WORK:');
      for (const e of errors) console.error(`  ${e}`);
      return 1;
    }
    await writeReport(args.report, {
      bench: 'overhead',
      title: 'Overhead, round trips and enqueue',
      command: COMMAND,
      figures: report.figures,
      markdown: docs(report),
      durationMs: performance.now() - STARTED,
    } satisfies BenchReport);
    return 0;
  } finally {
    for (const p of prefixes) await dropPrefix(admin, p).catch(() => 0);
    await admin.quit();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
    process.exit(1);
  },
);
