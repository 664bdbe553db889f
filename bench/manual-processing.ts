/**
 * Would BullMQ's manual processing pay (#16)? A prototype measured side by
 * side in one run; the product still uses a processor. And where does the
 * product's extra cost go: its two script calls, or the work inside them?
 *
 *   npm run build && node dist/bench/manual-processing.js [--jobs N=5000] [--concurrency C=20] [--rounds R=3] [--side NAME]…
 *
 * Eight ways to drain N jobs already in the queue, on the same Redis:
 * - bare: a BullMQ Worker whose processor returns at once;
 * - bare manual: a Worker without processor, C loops of
 *   `moveToCompleted(…, fetchNext)` (the completion fetches the next job);
 * - xactly: the product's publish worker (claim → X → settle, then BullMQ
 *   completes the job: three round trips in a row per job);
 * - xactly manual: C loops of claim → X → settle, with the settle and the
 *   job's completion (which fetches the next job) sent together, without
 *   waiting for the settle's answer in between: two round trips per job.
 *   X answers at once (in-process); the ledger must say `sent` for every key;
 * - xactly, empty scripts: the product's publish worker with its claim and
 *   settle scripts replaced by ones that do no work (the claim answers
 *   'claimed' with the record as it is, the settle 'ok'): the same calls,
 *   arguments, round trips and Node code, none of the ledger's Redis work.
 *   What it saves against `xactly` is the scripts' work; what is left
 *   against `bare` is the price of the calls themselves. Its ledger is not
 *   updated (it is a measurement, not a publish);
 * - xactly, no ledger calls: the same worker with the claim and the settle
 *   answered in this process (the claim with each key's record, read
 *   before the clock starts), so no call reaches ioredis or Redis. What is
 *   left against `bare` is xactly's own code per job (and this stub's
 *   lookup); what `empty scripts` adds to it is the price of the two
 *   calls. It is the floor of any design that keeps xactly's processor,
 *   even one whose ledger calls cost nothing (docs/performance.md);
 * - bare, auto-pipelining and xactly, auto-pipelining: bare and xactly on
 *   a connection with ioredis's `enableAutoPipelining` (the commands of
 *   one tick share one socket write): whether a call's price is its
 *   syscalls.
 *
 * What the prototype skips, and a product version must not: lock renewal
 * for long X calls, stalled-job handling, a settle that is refused (stale,
 * cancelling) arriving after the job was completed, graceful close.
 * Figures are medians over rounds (order rotating); CPU is Node (this
 * process) + Redis (the server) per job. Prints figures; asserts nothing.
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { type Job, Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { createProducer, createPublishWorker, openLedger } from '../src/app.js';
import { keyId } from '../src/domain/key.js';
import { hashTagged, ledgerKeys, QUEUE_NAMES } from '../src/ledger/keys.js';
import { CLAIM, SETTLE } from '../src/ledger/scripts.js';
import { createLogger } from '../src/log.js';
import { PUBLISH_JOB_OPTIONS, type PublishJobData } from '../src/queue/jobs.js';
import { dropPrefix, newRedis, REDIS_URL } from '../test/support/redis.js';
import { median } from '../test/support/stats.js';
import {
  type BenchReport,
  commandLine,
  f0,
  f2,
  type Figure,
  instantX,
  intOption,
  machine,
  mdTable,
  type Row,
  run,
  TARGET_CPU_RATIO,
  TARGET_PROCESSING_RATIO,
  textTable,
  verdict,
  writeReport,
} from './common.js';
import { redisCpuSeconds } from './redis-stats.js';

const { values: a } = parseArgs({
  options: {
    jobs: { type: 'string', default: '5000' },
    concurrency: { type: 'string', default: '20' },
    rounds: { type: 'string', default: '3' },
    side: { type: 'string', multiple: true },
    report: { type: 'string' },
    help: { type: 'boolean' },
  },
});
const N = intOption('jobs', a.jobs!, 100);
const C = intOption('concurrency', a.concurrency!, 1);
const ROUNDS = intOption('rounds', a.rounds!, 1);
const SIDES = [
  'bare',
  'bare manual',
  'bare, auto-pipelining',
  'xactly',
  'xactly manual',
  'xactly, empty scripts',
  'xactly, no ledger calls',
  'xactly, auto-pipelining',
] as const;
type Side = (typeof SIDES)[number];
/** The sides that run the product's publish worker. */
const PRODUCT_WORKER: readonly Side[] = ['xactly', 'xactly, empty scripts', 'xactly, no ledger calls', 'xactly, auto-pipelining'];
/** `--side NAME` (repeatable) runs only those sides, for a profile of one (`node --cpu-prof …`); the ratios need `bare`. */
const only = a.side?.map((name) => {
  if (!(SIDES as readonly string[]).includes(name)) throw new Error(`--side: one of ${SIDES.map((x) => `"${x}"`).join(', ')}`);
  return name as Side;
});
const RUN: readonly Side[] = only ?? SIDES;

interface Result {
  ms: number;
  /** CPU per job: this process, and the Redis server. */
  nodeUs: number;
  redisUs: number;
}

/** Scripts with the ledger's names and calling conventions that do no work: what the calls cost on their own. */
const EMPTY_SCRIPTS = [
  { name: CLAIM.name, keyCount: CLAIM.keyCount, lua: `return {'claimed', redis.call('GET', KEYS[1])}` },
  { name: SETTLE.name, keyCount: SETTLE.keyCount, lua: `return {'ok', 'sent', '0'}` },
];

const requests = (label: string) =>
  Array.from({ length: N }, (_, i) => ({
    slotId: `${label}-${i}`,
    postId: 'p1',
    accountId: `acc-${i % 100}`,
    kind: 'post' as const,
    text: `Benchmark post #${i}: scheduled, published exactly once, or failed loudly with a reason.`,
  }));

/** Time `drain` with both CPU counters around it. */
async function timed(admin: Redis, drain: () => Promise<void>): Promise<Result> {
  const redis0 = await redisCpuSeconds(admin);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await drain();
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const redisMs = ((await redisCpuSeconds(admin)) - redis0) * 1000;
  return { ms, nodeUs: (cpu.user + cpu.system) / N, redisUs: (redisMs / N) * 1000 };
}

/** Run a processor worker (autorun off) until N jobs completed, timed. */
async function runUntilDrained(admin: Redis, w: Worker): Promise<Result> {
  await w.waitUntilReady();
  let n = 0;
  const done = new Promise<void>((resolve) => w.on('completed', () => ++n === N && resolve()));
  const r = await timed(admin, async () => {
    void w.run();
    await done;
  });
  await w.close();
  return r;
}

/** C loops; each completes its job and takes the next one in the same call. */
async function manualLoops(
  worker: Worker,
  each: (job: Job<PublishJobData>, token: string) => Promise<{ done: Promise<unknown>; next: Promise<void | unknown[]> }>,
) {
  let completed = 0;
  const loop = async (token: string) => {
    let job: Job<PublishJobData> | undefined = await worker.getNextJob(token, { block: false });
    while (job) {
      const { done, next } = await each(job, token);
      const [, raw] = await Promise.all([done, next]);
      completed++;
      const [data, id] = (raw as [unknown, string] | undefined) ?? [];
      const nextJob = data
        ? await (worker as unknown as { nextJobFromJobData(d: unknown, id: string, t: string): Promise<Job<PublishJobData> | undefined> }).nextJobFromJobData(
            data,
            id!,
            token,
          )
        : undefined;
      job = nextJob ?? (completed < N ? await worker.getNextJob(token, { block: false }) : undefined);
    }
  };
  await Promise.all(Array.from({ length: C }, (_, i) => loop(`manual-${i}`)));
  if (completed !== N) throw new Error(`manual loops completed ${completed} of ${N} jobs`);
}

/**
 * The claim and the settle answered without a call: the claim with the key's
 * record as stored (every record read now, before the clock starts), the
 * settle with 'ok'. Own properties of the connection, where the ledger
 * looks for its scripts.
 */
async function answerInProcess(connection: Redis, prefix: string): Promise<void> {
  const keys = ledgerKeys(prefix);
  const recordKeys = requests('k').map((r) => keys.record(keyId(r)));
  const records = new Map<string, string | null>();
  for (let i = 0; i < recordKeys.length; i += 1000) {
    const batch = recordKeys.slice(i, i + 1000);
    (await connection.mget(...batch)).forEach((raw, j) => records.set(batch[j]!, raw));
  }
  if ([...records.values()].some((raw) => !raw)) throw new Error('a record is missing');
  const own = connection as unknown as Record<string, (...args: string[]) => Promise<unknown>>;
  own[CLAIM.name] = (recordKey: string) => Promise.resolve(['claimed', records.get(recordKey)]);
  own[SETTLE.name] = () => Promise.resolve(['ok', 'sent', '0']);
}

/** The N jobs a side drains: through xactly's producer (its ledger too) or a bare addBulk. */
async function fill(side: Side, connection: Redis, prefix: string): Promise<void> {
  const reqs = requests('k');
  if (side.startsWith('xactly')) {
    const producer = createProducer({ connection, prefix });
    for (let i = 0; i < N; i += 1000) await producer.enqueueMany(reqs.slice(i, i + 1000));
    await producer.close();
    return;
  }
  const queue = new Queue<PublishJobData>(QUEUE_NAMES.publish, {
    connection: connection as never,
    prefix: hashTagged(prefix),
    defaultJobOptions: PUBLISH_JOB_OPTIONS,
  });
  for (let i = 0; i < N; i += 1000) {
    const scheduledAt = new Date().toISOString();
    await queue.addBulk(reqs.slice(i, i + 1000).map((r) => ({ name: r.kind, data: { keyId: keyId(r), ...r, scheduledAt }, opts: { jobId: keyId(r) } })));
  }
  await queue.close();
}

async function runSide(side: Side, admin: Redis, round: number): Promise<Result> {
  const prefix = `bench-mp-${round}-${side.replace(/\W+/g, '-')}-${Date.now()}`;
  // Auto-pipelining: commands issued in one tick of the event loop go out in one write.
  const connection = side.endsWith('auto-pipelining') ? new Redis(REDIS_URL, { maxRetriesPerRequest: null, enableAutoPipelining: true }) : newRedis();
  const logger = createLogger({ level: 'silent' });
  try {
    await fill(side, connection, prefix);
    const x = instantX();
    // The ledger defines its scripts only where the connection has none of that name.
    if (side === 'xactly, empty scripts') for (const e of EMPTY_SCRIPTS) connection.defineCommand(e.name, { numberOfKeys: e.keyCount, lua: e.lua });
    if (side === 'xactly, no ledger calls') await answerInProcess(connection, prefix);
    if (PRODUCT_WORKER.includes(side)) {
      const worker = createPublishWorker({
        connection,
        prefix,
        retentionMs: 3_600_000,
        x,
        logger,
        concurrency: C,
        leaseMs: 30_000,
        settleWindowMs: 60_000,
        workerOptions: { autorun: false },
      });
      return await runUntilDrained(admin, worker as unknown as Worker);
    }
    if (side === 'bare' || side === 'bare, auto-pipelining') {
      const w = new Worker(QUEUE_NAMES.publish, async () => ({}), {
        connection: connection as never,
        prefix: hashTagged(prefix),
        concurrency: C,
        autorun: false,
      });
      return await runUntilDrained(admin, w);
    }
    // Manual: no processor; the ledger shares the worker's connection.
    const w = new Worker(QUEUE_NAMES.publish, null, { connection: connection as never, prefix: hashTagged(prefix), autorun: false });
    await w.waitUntilReady();
    const ledger = openLedger(connection, { prefix, retentionMs: 3_600_000 });
    const r = await timed(admin, () =>
      manualLoops(w, async (job, token) => {
        if (side === 'bare manual') return { done: Promise.resolve(), next: job.moveToCompleted({}, token, true) };
        const now = Date.now();
        const claim = await ledger.claim({ keyId: job.data.keyId, jobId: job.id!, leaseMs: 30_000, now, accountId: job.data.accountId });
        if (claim.verdict !== 'claimed') throw new Error(`claim: ${claim.verdict}`);
        const created = await x.createPost(job.data.accountId, { text: claim.record.text });
        const attempt = claim.record.attempt;
        // Sent together: the settle, then the completion that fetches the next job.
        const done = ledger.settle(
          job.data.keyId,
          attempt,
          { to: 'sent', tweetId: created.id },
          Date.now(),
          [{ event: 'x-answer', attempt, outcome: 'sent' }],
          {
            fields: ['attempts:sent', 'final:sent'],
          },
        );
        const next = job.moveToCompleted({ outcome: 'sent', tweetId: created.id, attempt }, token, true);
        return { done, next };
      }),
    );
    await w.close();
    if (side === 'xactly manual') {
      const sent = (await ledger.stats())['final:sent'] ?? 0;
      if (sent !== N) throw new Error(`ledger: ${sent} of ${N} sent`);
    }
    return r;
  } finally {
    await dropPrefix(connection, prefix);
    connection.disconnect();
  }
}

/** A side's medians over its rounds: drain time, and Node and Redis CPU per job (µs). */
interface Medians {
  ms: number;
  node: number;
  redis: number;
}

const cpu = (m: Medians) => m.node + m.redis;

/** The suite's report: the floor against #16's targets, and both tables (each given with its header first). */
function floorReport(
  m: { bare: Medians; xa: Medians; empty: Medians; none: Medians },
  sides: readonly Row[],
  split: readonly Row[],
  started: number,
): BenchReport {
  const noneCpu = cpu(m.none) / cpu(m.bare);
  const noneThroughput = m.bare.ms / m.none.ms;
  const figures: Figure[] = [
    {
      name: 'floor: Node + Redis CPU per publish with no ledger calls, xactly / bare',
      value: `x${f2(noneCpu)} (${f0(cpu(m.none))} us vs ${f0(cpu(m.bare))} us)`,
      target: `<= x${TARGET_CPU_RATIO} (#16)`,
      verdict: verdict(noneCpu <= TARGET_CPU_RATIO),
    },
    {
      name: 'floor: processing throughput with no ledger calls, xactly / bare',
      value: f2(noneThroughput),
      target: `>= ${TARGET_PROCESSING_RATIO} (#16)`,
      verdict: verdict(noneThroughput >= TARGET_PROCESSING_RATIO),
    },
    { name: 'floor: Node + Redis CPU per publish with empty scripts, xactly / bare', value: `x${f2(cpu(m.empty) / cpu(m.bare))}`, target: '', verdict: '' },
    { name: 'floor: Node + Redis CPU per publish, the product, xactly / bare', value: `x${f2(cpu(m.xa) / cpu(m.bare))}`, target: '', verdict: '' },
  ];
  const command = commandLine('manual-processing.js');
  const table = ([header, ...rows]: readonly Row[]) => mdTable(rows, header!, true);
  const markdown = `## The floor: xactly with no ledger calls (\`bench/manual-processing.ts\`)

\`${command}\`

The product's publish worker drains ${f0(N)} queued jobs (an in-process X, ${C} in flight) against bare
BullMQ, and two more ways: with its claim and settle scripts doing no work ("empty scripts"), and with
both answered inside the process so that no ledger call is made at all ("no ledger calls"). The last
is the floor of any design that keeps xactly's processor: even a ledger that cost nothing would be
measured against #16's targets at that figure. Medians of ${ROUNDS} rounds, order rotating; CPU is this
process's plus the Redis server's. [performance.md](performance.md) reads these figures.

${table(sides)}

${table(split)}

${mdTable(
  figures.map((f) => [f.name, f.value, f.target || '—', f.verdict || 'context']),
  ['figure', 'value', 'target', 'verdict'],
  true,
)}
`;
  return { bench: 'floor', title: 'The floor: xactly with no ledger calls', command, figures, markdown, durationMs: performance.now() - started };
}

run(async () => {
  const started = performance.now();
  if (a.help) {
    console.log(`node dist/bench/manual-processing.js [--jobs N] [--concurrency C] [--rounds R] [--side NAME]… (sides: ${SIDES.join('; ')})`);
    return 0;
  }
  const admin = newRedis();
  const results = new Map<Side, Result[]>(RUN.map((s) => [s, []]));
  for (let round = 0; round < ROUNDS; round++) {
    const order = [...RUN.slice(round % RUN.length), ...RUN.slice(0, round % RUN.length)];
    for (const side of order) results.get(side)!.push(await runSide(side, admin, round));
  }
  admin.disconnect();
  const med = (s: Side): Medians | undefined => {
    const rs = results.get(s);
    if (!rs) return undefined;
    return { ms: median(rs.map((r) => r.ms)), node: median(rs.map((r) => r.nodeUs)), redis: median(rs.map((r) => r.redisUs)) };
  };
  const bare = med('bare');
  const ratio = (x: number | undefined, of: number | undefined) => (x === undefined || of === undefined ? '-' : f2(x / of));
  console.log(`${machine()} · Redis at ${REDIS_URL} · ${f0(N)} jobs, concurrency ${C}, ${ROUNDS} rounds (medians)`);
  const sideRows = RUN.map((s) => {
    const m = med(s)!;
    return [
      s,
      `${f0(N / (m.ms / 1000))} jobs/s`,
      ratio(bare?.ms, m.ms),
      `${f0(m.node)} us`,
      `${f0(m.redis)} us`,
      `${f0(cpu(m))} us`,
      `x${ratio(cpu(m), bare && cpu(bare))}`,
    ];
  });
  const sideHeader = ['side', 'throughput', 'vs bare', 'Node CPU / job', 'Redis CPU / job', 'Node + Redis', 'vs bare'];
  console.log(textTable(sideRows, sideHeader));
  const xa = med('xactly');
  const empty = med('xactly, empty scripts');
  const none = med('xactly, no ledger calls');
  if (!bare || !xa || !empty || !none) {
    if (a.report) throw new Error("--report needs the sides 'bare', 'xactly', 'xactly, empty scripts' and 'xactly, no ledger calls'");
    return 0;
  }
  // xactly's extra CPU over bare, split: the scripts' work (xactly - empty scripts), the two calls
  // themselves (empty scripts - no ledger calls) and xactly's own code (no ledger calls - bare).
  const split = (pick: (m: Medians) => number) => [f0(pick(xa) - pick(empty)), f0(pick(empty) - pick(none)), f0(pick(none) - pick(bare))];
  const splitRows = [
    ['Node', ...split((m) => m.node)],
    ['Redis', ...split((m) => m.redis)],
    ['both', ...split(cpu)],
  ];
  const splitHeader = ["xactly's extra CPU / job (us)", "the scripts' work", 'the two calls themselves', "xactly's own code"];
  console.log(textTable(splitRows, splitHeader));
  await writeReport(a.report, floorReport({ bare, xa, empty, none }, [sideHeader, ...sideRows], [splitHeader, ...splitRows], started));
  return 0;
});
