/**
 * What does exactly-once cost? Bare BullMQ against xactly, one run, same Redis.
 *
 *   npm run build && npm run bench -- [--jobs N] [--concurrency C] [--warmup W] [--write-docs]
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
 * This is a benchmark: it prints figures and ratios against the targets and
 * does not assert timings.
 */
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { hashTagged, QUEUE_NAMES } from '../src/ledger/keys.js';
import { Ledger } from '../src/ledger/ledger.js';
import type { PostState } from '../src/ledger/record.js';
import { createLogger } from '../src/log.js';
import { PUBLISH_JOB_OPTIONS, type PublishJobData, type PublishJobResult } from '../src/queue/jobs.js';
import { createProducer } from '../src/queue/producer.js';
import { createPublishWorker } from '../src/queue/publisher.js';
import type { XPort } from '../src/x/port.js';
import {
  type ClientCounts, type CommandStat, commandStats, diffCommandStats, installCommandCounter, isLedgerLabel,
  isScriptLabel, redisCpuSeconds, scriptCallsAreCounted, serverInfo, totalCalls,
} from './redis-stats.js';

const TARGET_PROCESSING_RATIO = 0.75;
const TARGET_ENQUEUE_RATIO = 0.8;
const TARGET_EXTRA_ROUND_TRIPS = 2;
const CHUNK = 1_000;
const ACCOUNTS = 100;

// ------------------------------------------------------------------ options

const { values: args } = parseArgs({
  options: {
    jobs: { type: 'string', default: '20000' },
    concurrency: { type: 'string', default: '50' },
    warmup: { type: 'string', default: '1000' },
    'timeout-s': { type: 'string', default: '600' },
    'write-docs': { type: 'boolean', default: false },
    /** Time without the client-side command counter (to see what counting costs). */
    'no-client-count': { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log('usage: node dist/bench/overhead.js [--jobs N=20000] [--concurrency C=50] [--warmup W=1000] [--timeout-s S=600] [--write-docs] [--no-client-count]');
  process.exit(0);
}
const positiveInt = (name: string, raw: string, min: number) => {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) {
    console.error(`--${name} must be an integer >= ${min} (got ${raw})`);
    process.exit(2);
  }
  return n;
};
const N = positiveInt('jobs', args.jobs, 1);
const C = positiveInt('concurrency', args.concurrency, 1);
const WARMUP = positiveInt('warmup', args.warmup, 0);
const TIMEOUT_MS = positiveInt('timeout-s', args['timeout-s'], 1) * 1_000;
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const COMMAND = ['node dist/bench/overhead.js', ...process.argv.slice(2)].join(' ');

// ------------------------------------------------------------------ helpers

const hook = installCommandCounter();
const CLIENT_COUNTED = !args['no-client-count'];
const counter = !CLIENT_COUNTED ? { begin: () => undefined, end: () => hook.end(), ignore: hook.ignore } : hook;
const newRedis = () => new Redis(REDIS_URL, { maxRetriesPerRequest: null });
const rand = () => randomBytes(4).toString('hex');
const mb = (bytes: number) => `${(bytes / 1_048_576).toFixed(0)} MB`;
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

/** Delete every key of a prefix (ledger and BullMQ keys share the hash tag). */
async function dropPrefix(redis: Redis, prefix: string): Promise<number> {
  const pattern = `${hashTagged(prefix).replace(/[{}]/g, (c) => '\\' + c)}*`;
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    if (keys.length) deleted += await redis.del(...keys);
  } while (cursor !== '0');
  return deleted;
}

interface Completion {
  completed: number;
  failed: number;
  firstFailure?: string;
  outcomes: Map<string, number>;
}

/** Resolve once `n` jobs completed or failed; reject after the timeout. */
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
  const rssAfter = rss();
  await worker.close();
  await running;
  return { completion, processMs, processClient, processServer, rssAfter, nodeCpuMs, redisCpuMs };
}

// ------------------------------------------------------------------ bare BullMQ

async function runBare(admin: Redis, prefix: string, n: number, concurrency: number): Promise<SideResult> {
  const queueRedis = newRedis();
  const workerRedis = newRedis();
  const bullPrefix = hashTagged(prefix);
  try {
    const queue = new Queue<PublishJobData>(QUEUE_NAMES.publish, {
      connection: queueRedis as never, prefix: bullPrefix, defaultJobOptions: PUBLISH_JOB_OPTIONS,
    });
    await queue.waitUntilReady();
    const raw = requests(n);
    const rssBefore = rss();

    counter.begin();
    const t0 = performance.now();
    for (let i = 0; i < raw.length; i += CHUNK) {
      const scheduledAt = new Date().toISOString();
      await queue.addBulk(raw.slice(i, i + CHUNK).map((r) => {
        const keyId = `k.${r.slotId}.${r.postId}`;
        return { name: r.kind, data: { keyId, ...r, scheduledAt }, opts: { jobId: keyId } };
      }));
    }
    const enqueueMs = performance.now() - t0;
    const enqueueClient = counter.end();
    const rssAfterEnqueue = rss();

    const worker = new Worker(QUEUE_NAMES.publish, async () => ({}), {
      connection: workerRedis as never, prefix: bullPrefix, concurrency, autorun: false,
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

/** An X that answers at once: only the ledger's cost remains. */
function instantX(): XPort & { calls: () => number } {
  let next = 1;
  let calls = 0;
  return {
    calls: () => calls,
    async createPost() {
      calls++;
      return { id: String(next++) };
    },
    async sendDm() {
      calls++;
      return { id: String(next++) };
    },
    async timeline() {
      return { items: [] };
    },
    async dmEvents() {
      return { items: [] };
    },
  };
}

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
      // Shares the worker's connection, as `xactly worker` does.
      ledger: new Ledger(workerRedis, { prefix, retentionMs: 3_600_000 }),
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

const fmtCounts = (m: ReadonlyMap<string, number>) => [...m].map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
const f0 = (v: number) => Math.round(v).toLocaleString('en-US');
const f2 = (v: number) => v.toFixed(2);
const perJob = (v: number, n: number) => f2(v / n);
const ratio = (a: number, b: number) => (b > 0 ? a / b : NaN);
const verdict = (ok: boolean) => (ok ? 'meets target' : 'BELOW TARGET');

type Row = readonly string[];

function textTable(rows: readonly Row[], header?: Row): string {
  const all = header ? [header, ...rows] : rows;
  const widths = (header ?? rows[0] ?? []).map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  // Without a header it is a key/value list: everything left-aligned.
  const line = (r: Row) => r.map((c, i) => (i === 0 || !header ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  const head = header ? [line(header), widths.map((w) => '-'.repeat(w)).join('  ')] : [];
  return [...head, ...rows.map(line)].join('\n');
}

function mdTable(rows: readonly Row[], header: Row): string {
  const line = (r: Row) => `| ${r.join(' | ')} |`;
  return [line(header), line(header.map((_, i) => (i === 0 ? '---' : '---:'))), ...rows.map(line)].join('\n');
}

interface Report {
  env: Row[];
  main: Row[];
  clientBreakdown: Row[];
  serverBreakdown: Row[];
  notes: string[];
  verdicts: string[];
}

function buildReport(env: { redisVersion: string; scriptCounted: boolean; clients: number }, bare: SideResult, xa: SideResult): Report {
  const cpus = os.cpus();
  const envRows: Row[] = [
    ['machine', `${cpus.length} cores, ${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${os.platform()} ${os.arch()}, ${mb(os.totalmem())} RAM`],
    ['Redis', `${env.redisVersion} at ${REDIS_URL.replace(/\/\/[^@]*@/, '//')} (${env.clients} clients connected at start)`],
    ['Node', process.version],
    ['BullMQ / ioredis', 'bullmq 6.7.0, ioredis 6.0.0'],
    ['load average (1/5/15 min)', os.loadavg().map((l) => l.toFixed(2)).join(' / ')],
    ['date', new Date().toISOString()],
    ['jobs (N) / concurrency (C)', `${N} / ${C} (warm-up ${WARMUP} per side, not measured)`],
  ];

  const procBare = N / (bare.processMs / 1000);
  const procXa = N / (xa.processMs / 1000);
  const enqBare = N / (bare.enqueueMs / 1000);
  const enqXa = N / (xa.enqueueMs / 1000);
  const procRatio = ratio(procXa, procBare);
  const enqRatio = ratio(enqXa, enqBare);
  const extraRt = (xa.processClient.roundTrips - bare.processClient.roundTrips) / N;
  const extraCmd = (xa.processClient.commands - bare.processClient.commands) / N;
  const ledgerCalls = totalCalls(new Map([...xa.processClient.byCommand].map(([k, v]) => [k, { calls: v }])), isLedgerLabel);
  const serverBare = totalCalls(bare.processServer);
  const serverXa = totalCalls(xa.processServer);

  const all: Row[] = [
    ['processing: time', `${f2(bare.processMs / 1000)} s`, `${f2(xa.processMs / 1000)} s`, ''],
    ['processing: throughput', `${f0(procBare)} jobs/s`, `${f0(procXa)} jobs/s`, f2(procRatio)],
    ['enqueue: time', `${f2(bare.enqueueMs / 1000)} s`, `${f2(xa.enqueueMs / 1000)} s`, ''],
    ['enqueue: throughput', `${f0(enqBare)} jobs/s`, `${f0(enqXa)} jobs/s`, f2(enqRatio)],
    ['processing: round trips / job (client)', perJob(bare.processClient.roundTrips, N), perJob(xa.processClient.roundTrips, N), `+${f2(extraRt)}`],
    ['processing: commands / job (client)', perJob(bare.processClient.commands, N), perJob(xa.processClient.commands, N), `+${f2(extraCmd)}`],
    ['processing: ledger script calls / job', '0.00', perJob(ledgerCalls, N), ''],
    ['processing: commands / job (server, incl. in scripts)', perJob(serverBare, N), perJob(serverXa, N), `+${f2((serverXa - serverBare) / N)}`],
    ['processing: Node CPU / job (this process)', `${f0((bare.nodeCpuMs / N) * 1000)} us`, `${f0((xa.nodeCpuMs / N) * 1000)} us`, f2(ratio(xa.nodeCpuMs, bare.nodeCpuMs))],
    ['processing: Redis CPU / job (server)', `${f0((bare.redisCpuMs / N) * 1000)} us`, `${f0((xa.redisCpuMs / N) * 1000)} us`, f2(ratio(xa.redisCpuMs, bare.redisCpuMs))],
    [`enqueue: round trips (total, chunks of ${CHUNK})`, f0(bare.enqueueClient.roundTrips), f0(xa.enqueueClient.roundTrips), ''],
    ['enqueue: commands / job (client)', perJob(bare.enqueueClient.commands, N), perJob(xa.enqueueClient.commands, N), ''],
    ['RSS: before enqueue -> after enqueue -> after processing', `${mb(bare.rssBefore)} -> ${mb(bare.rssAfterEnqueue)} -> ${mb(bare.rssAfter)}`, `${mb(xa.rssBefore)} -> ${mb(xa.rssAfterEnqueue)} -> ${mb(xa.rssAfter)}`, ''],
  ];

  // Without the client-side counter, its rows would read 0: leave them out.
  const main = CLIENT_COUNTED ? all : all.filter((r) => !/client|ledger script/.test(r[0]!));

  const labels = [...new Set([...bare.processClient.byCommand.keys(), ...xa.processClient.byCommand.keys()])];
  const clientBreakdown: Row[] = labels
    .map((l) => [l, bare.processClient.byCommand.get(l) ?? 0, xa.processClient.byCommand.get(l) ?? 0] as const)
    .sort((a, b) => b[2] + b[1] - (a[2] + a[1]))
    .map(([l, b, x]) => [l, perJob(b, N), perJob(x, N), `${x - b >= 0 ? '+' : ''}${perJob(x - b, N)}`]);

  const names = [...new Set([...bare.processServer.keys(), ...xa.processServer.keys()])];
  const serverBreakdown: Row[] = names
    .map((name) => [name, bare.processServer.get(name)?.calls ?? 0, xa.processServer.get(name)?.calls ?? 0] as const)
    .filter(([, b, x]) => b + x >= N / 100)
    .sort((a, b) => b[2] + b[1] - (a[2] + a[1]))
    .map(([name, b, x]) => [name, perJob(b, N), perJob(x, N), `${x - b >= 0 ? '+' : ''}${perJob(x - b, N)}`]);

  const notes: string[] = [];
  for (const [side, r] of CLIENT_COUNTED ? ([['bare', bare], ['xactly', xa]] as const) : []) {
    const serverScripts = totalCalls(r.processServer, (n) => n === 'evalsha' || n === 'eval');
    const clientScripts = totalCalls(new Map([...r.processClient.byCommand].map(([k, v]) => [k, { calls: v }])), isScriptLabel);
    if (serverScripts > clientScripts * 1.01 + 20)
      notes.push(`${side}: Redis ran ${serverScripts} EVALSHA/EVAL but this process sent ${clientScripts}: other clients were busy, server-side figures include their traffic.`);
  }
  notes.push(
    env.scriptCounted
      ? 'This Redis counts commands run inside Lua scripts under their own cmdstat entries (checked with a 3-ECHO script), so server-side figures include script-internal work.'
      : 'This Redis does not count commands run inside Lua scripts in commandstats (checked with a 3-ECHO script).',
  );

  const verdicts = [
    `processing throughput xactly/bare = ${f2(procRatio)} (target >= ${TARGET_PROCESSING_RATIO}): ${verdict(procRatio >= TARGET_PROCESSING_RATIO)}`,
    `enqueue throughput enqueueMany/addBulk = ${f2(enqRatio)} (target >= ${TARGET_ENQUEUE_RATIO}): ${verdict(enqRatio >= TARGET_ENQUEUE_RATIO)}`,
    CLIENT_COUNTED
      ? `extra round trips per publish = ${f2(extraRt)} (target <= ${TARGET_EXTRA_ROUND_TRIPS}: claim + settle): ${verdict(extraRt <= TARGET_EXTRA_ROUND_TRIPS + 0.005)}`
      : 'extra round trips per publish: not counted (--no-client-count)',
  ];
  return { env: envRows, main, clientBreakdown, serverBreakdown, notes, verdicts };
}

function printReport(r: Report, xa: SideResult): void {
  console.log('\n== environment');
  console.log(textTable(r.env));
  console.log('\n== figures (processing = worker start until N completed)');
  console.log(textTable(r.main, ['', 'bare BullMQ', 'xactly', 'xactly vs bare']));
  console.log('\n== client-side commands per job while processing (what this process sent to Redis)');
  console.log(CLIENT_COUNTED ? textTable(r.clientBreakdown, ['command', 'bare', 'xactly', 'extra']) : '(not counted: --no-client-count)');
  console.log('\n== server-side INFO commandstats per job while processing (includes commands run inside scripts)');
  console.log(textTable(r.serverBreakdown, ['command', 'bare', 'xactly', 'extra']));
  console.log('\n== checks');
  console.log(`xactly ledger states after the run: ${fmtCounts(xa.ledgerStates ?? new Map())}; X calls: ${xa.xCalls}`);
  for (const v of r.verdicts) console.log(v);
  for (const note of r.notes) console.log(`note: ${note}`);
}

function docs(r: Report): string {
  return `# Benchmarks

What exactly-once costs on top of bare BullMQ. Generated by \`bench/overhead.ts\`:

\`\`\`sh
npm run build && ${COMMAND.replace('node dist/bench/overhead.js', 'npm run bench --')}
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
  only the ledger's cost remains. After the run the ledger must hold N \`sent\`
  records and X must have been called N times, or the run fails.

## Environment

${mdTable(r.env, ['', ''])}

## Figures

${mdTable(r.main, ['', 'bare BullMQ', 'xactly', 'xactly vs bare'])}

${r.verdicts.map((v) => `- ${v}`).join('\n')}

## Redis traffic per job while processing

Client side — every command this process wrote to Redis, counted by hooking
ioredis' \`Redis.prototype.sendCommand\` (BullMQ's connections included; a
pipeline or MULTI counts as one round trip; scripts are named after the
script that EVALSHA runs):

${mdTable(r.clientBreakdown, ['command', 'bare', 'xactly', 'extra'])}

Server side — \`INFO commandstats\` deltas around the processing phase. Redis
counts commands run inside Lua scripts too, and counts every client of the
server, so these show Redis' work rather than round trips:

${mdTable(r.serverBreakdown, ['command', 'bare', 'xactly', 'extra'])}

${r.notes.map((n) => `- ${n}`).join('\n')}

Numbers move with the machine and with whatever else uses the Redis; compare
ratios, not absolute rates.
`;
}

// ------------------------------------------------------------------ main

async function main(): Promise<number> {
  const admin = newRedis();
  counter.ignore(admin);
  const id = rand();
  const prefixes = {
    bare: `xb-bare-${id}`, xactly: `xb-xactly-${id}`, warmBare: `xb-warm-bare-${id}`, warmXactly: `xb-warm-xactly-${id}`,
  };
  try {
    const { version, connectedClients } = await serverInfo(admin);
    const scriptCounted = await scriptCallsAreCounted(admin);
    console.log(`xactly overhead benchmark: N=${N} jobs, concurrency ${C}, Redis ${version} at ${REDIS_URL}`);
    console.log(`prefixes: ${prefixes.bare}, ${prefixes.xactly}`);

    if (WARMUP > 0) {
      const t = performance.now();
      const w1 = await runBare(admin, prefixes.warmBare, WARMUP, C);
      const w2 = await runXactly(admin, prefixes.warmXactly, WARMUP, C);
      await dropPrefix(admin, prefixes.warmBare);
      await dropPrefix(admin, prefixes.warmXactly);
      for (const e of [...w1.errors, ...w2.errors]) console.error(`warm-up: ${e}`);
      console.log(`warm-up: ${WARMUP} jobs per side in ${f2((performance.now() - t) / 1000)} s`);
    }

    console.log(`bare BullMQ: enqueueing ${N} jobs...`);
    const bare = await runBare(admin, prefixes.bare, N, C);
    console.log(`bare BullMQ: enqueue ${f2(bare.enqueueMs / 1000)} s, processing ${f2(bare.processMs / 1000)} s`);
    await dropPrefix(admin, prefixes.bare);

    console.log(`xactly: enqueueing ${N} posts...`);
    const xa = await runXactly(admin, prefixes.xactly, N, C);
    console.log(`xactly: enqueue ${f2(xa.enqueueMs / 1000)} s, processing ${f2(xa.processMs / 1000)} s`);
    await dropPrefix(admin, prefixes.xactly);

    const report = buildReport({ redisVersion: version, scriptCounted, clients: connectedClients }, bare, xa);
    printReport(report, xa);

    const errors = [...bare.errors.map((e) => `bare: ${e}`), ...xa.errors.map((e) => `xactly: ${e}`)];
    if (errors.length > 0) {
      console.error('\nTHE FIGURES ABOVE DO NOT MEASURE SUCCESSFUL WORK:');
      for (const e of errors) console.error(`  ${e}`);
      return 1;
    }
    if (args['write-docs']) {
      await writeFile(new URL('../../docs/benchmarks.md', import.meta.url), docs(report));
      console.log('\nwrote docs/benchmarks.md');
    }
    return 0;
  } finally {
    for (const p of Object.values(prefixes)) await dropPrefix(admin, p).catch(() => 0);
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
