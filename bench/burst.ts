/**
 * Burst lateness: N posts due at the same instant over A accounts, X answering
 * in L ms, one worker process at concurrency C. How late does the last one
 * reach X, against the ideal N × L / C?
 *
 *   npm run build && node dist/bench/burst.js [--posts 5000] [--accounts 500] [--latency-ms 200]
 *     [--concurrency 200] [--lead-ms 3000] [--rounds 3] [--skip-bare] [--report FILE]
 *
 * xactly: the real `xactly worker` CLI as its own process (XACTLY_CONCURRENCY=C,
 * default budgets, reconciliation on), the real TwitterXPort over HTTP to a
 * latency proxy on 127.0.0.1 that holds each request L ms and then forwards
 * it to the fake X. All N requests are enqueued through `enqueueMany` with the
 * same `scheduledAt` (now + lead), so they become due together as BullMQ
 * delayed jobs. Lateness of a post = the fake X's `createdAt` (when the call
 * reached X) − scheduledAt.
 *
 * bare BullMQ, for reference: the same N delayed jobs through `addBulk`, one
 * Worker at concurrency C in this process whose processor sleeps L ms; its
 * "arrival" is the end of the sleep.
 *
 * R rounds (default 3, order alternating); the verdict is on the median p99,
 * the detailed table is the round with the median xactly p99.
 *
 * Checks (exit 1 when any fails): every post reached X exactly once, none
 * before its scheduledAt, the ledger says `sent` with X's id for every key,
 * the worker process drained and exited 0; bare: N jobs completed, none early.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { keyId } from '../src/domain/key.js';
import { startFakeX } from '../src/fake-x/index.js';
import { hashTagged, QUEUE_NAMES } from '../src/ledger/keys.js';
import { PUBLISH_JOB_OPTIONS, type PublishJobData } from '../src/queue/jobs.js';
import { createProducer } from '../src/app.js';
import { accountOf, fakeAccountOf, numberedAccounts } from '../test/support/accounts.js';
import { startLatencyProxy } from '../test/support/latency-proxy.js';
import { dropPrefix, newRedis, REDIS_URL } from '../test/support/redis.js';
import { median, percentile } from '../test/support/stats.js';
import { sleep, waitUntil } from '../test/support/wait.js';
import { logLines, spawnWorker, type WorkerChild } from '../test/support/workers.js';
import {
  commandLine,
  countBy,
  f0,
  f2,
  type Figure,
  fmtCounts,
  intOption,
  mdTable,
  rand,
  type Row,
  run,
  secs,
  textTable,
  verdict,
  writeReport,
} from './common.js';

const TARGET_P99_VS_IDEAL = 1.2;
/** p99 lateness against bare BullMQ's in the same run (#16): an absolute figure moves with the machine. */
const TARGET_P99_VS_BARE = 1.15;

const { values: args } = parseArgs({
  options: {
    posts: { type: 'string', default: '5000' },
    accounts: { type: 'string', default: '500' },
    'latency-ms': { type: 'string', default: '200' },
    concurrency: { type: 'string', default: '200' },
    'lead-ms': { type: 'string', default: '3000' },
    'timeout-s': { type: 'string', default: '180' },
    rounds: { type: 'string', default: '3' },
    'skip-bare': { type: 'boolean', default: false },
    report: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log(
    'usage: node dist/bench/burst.js [--posts 5000] [--accounts 500] [--latency-ms 200] [--concurrency 200] [--lead-ms 3000] [--timeout-s 180] [--rounds 3] [--skip-bare] [--report FILE]',
  );
  process.exit(0);
}
const N = intOption('posts', args.posts, 1);
const ACCOUNTS = intOption('accounts', args.accounts, 1);
const LATENCY = intOption('latency-ms', args['latency-ms'], 0);
const C = intOption('concurrency', args.concurrency, 1);
const LEAD = intOption('lead-ms', args['lead-ms'], 500);
const TIMEOUT_MS = intOption('timeout-s', args['timeout-s'], 1) * 1000;
const ROUNDS = intOption('rounds', args.rounds, 1);
const IDEAL_MS = (N * LATENCY) / C;
const CHUNK = 1_000;

interface Lateness {
  /** Sorted, ms after scheduledAt. */
  sorted: number[];
  first: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  /** Posts per second between the first and the last arrival. */
  rate: number;
}

function latenessOf(values: number[]): Lateness {
  const sorted = [...values].sort((a, b) => a - b);
  const first = sorted[0] ?? NaN;
  const max = sorted.at(-1) ?? NaN;
  return {
    sorted,
    first,
    max,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    rate: sorted.length > 1 && max > first ? (sorted.length - 1) / ((max - first) / 1000) : NaN,
  };
}

interface SideResult {
  lateness: Lateness;
  enqueueMs: number;
  /** CPU seconds of the worker process during the burst (Linux /proc), when known. */
  workerCpuS?: number;
  errors: string[];
  notes: string[];
}

/** user + system CPU seconds of a process, from /proc (Linux only). */
async function cpuSecondsOf(pid: number | undefined): Promise<number | undefined> {
  if (pid === undefined) return undefined;
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 (1-based), i.e. 11 and 12 after the state field.
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}

function requestsFor(prefix: string, scheduledAt: string) {
  return Array.from({ length: N }, (_, i) => ({
    slotId: `burst-${i}`,
    postId: 'p1',
    accountId: `acc-${i % ACCOUNTS}`,
    kind: 'post' as const,
    text: `Burst ${prefix} #${i}: due at the same instant as ${N - 1} others.`,
    scheduledAt,
  }));
}

// ------------------------------------------------------------------ xactly: the CLI worker process

async function runXactly(admin: Redis, prefix: string): Promise<SideResult> {
  const errors: string[] = [];
  const notes: string[] = [];
  const dir = await mkdtemp(join(os.tmpdir(), 'xactly-burst-'));
  const accounts = numberedAccounts(ACCOUNTS, { userIdBase: 6_000_000, token: (i) => `BURST-${i}-TOKEN` });
  const fake = await startFakeX({ accounts: accounts.map(fakeAccountOf) });
  const proxy = await startLatencyProxy(fake.url, LATENCY);
  const accountsFile = join(dir, 'accounts.json');
  await writeFile(
    accountsFile,
    JSON.stringify({
      accounts: accounts.map((a) => accountOf(a, { appKey: 'bench-app-key', appSecret: 'bench-app-secret', accessSecret: 'bench-access-secret' })),
    }),
  );
  const logPath = join(dir, 'worker.log');
  const producerRedis = newRedis();
  const producer = createProducer({ connection: producerRedis, prefix, retentionMs: 3_600_000 });
  let worker: WorkerChild | undefined;
  try {
    worker = spawnWorker(
      {
        ...process.env,
        REDIS_URL,
        XACTLY_PREFIX: prefix,
        X_API_BASE_URL: proxy.url,
        XACTLY_ACCOUNTS_FILE: accountsFile,
        XACTLY_CONCURRENCY: String(C),
        LOG_LEVEL: 'info',
      },
      { logFile: logPath },
    );
    const exitedEarly = worker.exited.then(({ code }): never => {
      throw new Error(`worker exited early (code ${code}); see ${logPath}`);
    });
    exitedEarly.catch(() => undefined);
    await worker.ready(30_000);
    await Promise.race([waitUntil(async () => (await producer.queue.getWorkers()).length > 0, 'the worker process to register', 30_000, 100), exitedEarly]);

    const scheduledAtMs = Date.now() + LEAD;
    const scheduledAt = new Date(scheduledAtMs).toISOString();
    const requests = requestsFor(prefix, scheduledAt);
    const t0 = Date.now();
    const statuses = new Map<string, number>();
    for (let i = 0; i < N; i += CHUNK) {
      for (const r of await producer.enqueueMany(requests.slice(i, i + CHUNK))) statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
    }
    const enqueueMs = Date.now() - t0;
    if ((statuses.get('queued') ?? 0) !== N) errors.push(`enqueueMany: ${fmtCounts(statuses)} (expected ${N} queued)`);
    if (Date.now() >= scheduledAtMs)
      notes.push(`enqueueing took ${secs(enqueueMs)}, longer than the ${LEAD} ms lead: posts were already due when the last went in`);
    console.log(`xactly: ${N} posts enqueued in ${secs(enqueueMs)}, due at ${scheduledAt}`);

    await sleep(Math.max(0, scheduledAtMs - Date.now()));
    const cpuAtDue = await cpuSecondsOf(worker.child.pid);
    const texts = new Set(requests.map((r) => r.text));
    const ours = () => fake.created().filter((c) => texts.has(c.text));
    await Promise.race([waitUntil(() => ours().length >= N, `${N} posts on the fake X`, TIMEOUT_MS, 100), exitedEarly]);
    const cpuAtEnd = await cpuSecondsOf(worker.child.pid);
    const ids = requests.map((r) => keyId(r));
    const records = await waitUntil(
      async () => {
        const rs = await producer.ledger.getMany(ids);
        return rs.every((r) => r?.state === 'sent') ? rs : undefined;
      },
      `all ${N} keys sent in the ledger`,
      30_000,
      100,
    ).catch(async (err: Error) => {
      errors.push(`${err.message}: ${fmtCounts(countBy(await producer.ledger.getMany(ids), (r) => r?.state ?? 'missing'))}`);
      return undefined;
    });

    // Give a duplicate the chance to show up before counting.
    await sleep(500);
    const created = ours();
    const byText = countBy(created, (c) => c.text);
    const dupes = [...byText.values()].filter((n) => n > 1).length;
    if (created.length !== N) errors.push(`${created.length} posts reached X for ${N} keys`);
    if (dupes > 0) errors.push(`${dupes} posts reached X more than once`);
    const early = created.filter((c) => c.createdAt < scheduledAtMs).length;
    if (early > 0) errors.push(`${early} posts reached X before their scheduledAt`);
    const posts = fake.requests().filter((r) => r.method === 'POST').length;
    if (posts !== N) notes.push(`the fake X got ${posts} POSTs for ${N} keys`);
    if (records) {
      const idOf = new Map(created.map((c) => [c.text, c.id]));
      const wrong = records.filter((r, i) => r!.tweetId !== idOf.get(requests[i]!.text)).length;
      if (wrong > 0) errors.push(`${wrong} ledger records name another X id than the post's`);
    }

    const code = await worker.stop(30_000);
    if (code !== 0) errors.push(`worker process exited ${code} after SIGTERM (log: ${logPath})`);
    // What the worker said: one "published" line per post, and nothing worse than info.
    const lines = logLines(await readFile(logPath, 'utf8'));
    const published = lines.filter((l) => l.msg === 'published').length;
    if (published !== N) notes.push(`the worker logged ${published} "published" lines for ${N} posts`);
    const loud = countBy(
      lines.filter((l) => (l.level ?? 0) >= 40),
      (l) => l.msg ?? '?',
    );
    if (loud.size > 0) notes.push(`worker warnings/errors: ${fmtCounts(loud)}`);
    const workerCpuS = cpuAtDue !== undefined && cpuAtEnd !== undefined ? cpuAtEnd - cpuAtDue : undefined;
    return { lateness: latenessOf(created.map((c) => c.createdAt - scheduledAtMs)), enqueueMs, errors, notes, ...(workerCpuS !== undefined && { workerCpuS }) };
  } catch (err) {
    errors.push((err as Error).message);
    return { lateness: latenessOf([]), enqueueMs: NaN, errors, notes };
  } finally {
    await worker?.stop(5_000);
    if (errors.length > 0) {
      const tail = (await readFile(logPath, 'utf8').catch(() => ''))
        .split('\n')
        .filter((l) => !/"msg":"published"/.test(l))
        .slice(-20);
      if (tail.length) console.error(`worker log (last lines, "published" lines left out):\n${tail.join('\n')}`);
    }
    await producer.close();
    await producerRedis.quit();
    await proxy.close();
    await fake.close();
    await dropPrefix(admin, prefix);
    await rm(dir, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------ bare BullMQ

async function runBare(admin: Redis, prefix: string): Promise<SideResult> {
  const errors: string[] = [];
  const queueRedis = newRedis();
  const workerRedis = newRedis();
  const bullPrefix = hashTagged(prefix);
  const arrivals: number[] = [];
  let early = 0;
  let failed = 0;
  try {
    const queue = new Queue<PublishJobData>(QUEUE_NAMES.publish, {
      connection: queueRedis as never,
      prefix: bullPrefix,
      defaultJobOptions: PUBLISH_JOB_OPTIONS,
    });
    await queue.waitUntilReady();
    let scheduledAtMs = 0;
    const worker = new Worker<PublishJobData>(
      QUEUE_NAMES.publish,
      async () => {
        if (Date.now() < scheduledAtMs) early++;
        await sleep(LATENCY);
        arrivals.push(Date.now());
        return {};
      },
      { connection: workerRedis as never, prefix: bullPrefix, concurrency: C },
    );
    worker.on('failed', () => failed++);
    worker.on('error', (err) => console.error(`  bare worker error: ${err.message}`));
    await worker.waitUntilReady();

    scheduledAtMs = Date.now() + LEAD;
    const scheduledAt = new Date(scheduledAtMs).toISOString();
    const requests = requestsFor(prefix, scheduledAt);
    const t0 = Date.now();
    for (let i = 0; i < N; i += CHUNK) {
      await queue.addBulk(
        requests.slice(i, i + CHUNK).map((r) => {
          const id = keyId(r);
          return { name: r.kind, data: { keyId: id, ...r }, opts: { jobId: id, delay: Math.max(0, scheduledAtMs - Date.now()) } };
        }),
      );
    }
    const enqueueMs = Date.now() - t0;
    console.log(`bare: ${N} jobs enqueued in ${secs(enqueueMs)}, due at ${scheduledAt}`);
    await waitUntil(() => arrivals.length + failed >= N, `${N} bare jobs`, TIMEOUT_MS, 50).catch((err: Error) => errors.push(err.message));
    await worker.close();
    await queue.close();
    if (failed > 0) errors.push(`${failed} bare jobs failed`);
    if (early > 0) errors.push(`${early} bare jobs ran before their due time`);
    if (arrivals.length !== N) errors.push(`${arrivals.length} of ${N} bare jobs ran`);
    return { lateness: latenessOf(arrivals.map((t) => t - scheduledAtMs)), enqueueMs, errors, notes: [] };
  } finally {
    await Promise.all([queueRedis.quit(), workerRedis.quit()]);
    await dropPrefix(admin, prefix);
  }
}

// ------------------------------------------------------------------ report

const s = (ms: number) => secs(ms, 2);
const x = (a: number, b: number) => (b > 0 && Number.isFinite(a) ? `${f2(a / b)}×` : 'n/a');

async function main(): Promise<number> {
  const started = Date.now();
  const admin = newRedis();
  const id = rand();
  try {
    console.log(
      `burst lateness: ${N} posts due at once over ${ACCOUNTS} accounts, X latency ${LATENCY} ms, one worker process at concurrency ${C}; ideal ${s(IDEAL_MS)}; ${ROUNDS} round(s)`,
    );
    const rounds: { xa: SideResult; bare?: SideResult }[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const order = args['skip-bare'] ? (['xactly'] as const) : r % 2 === 0 ? (['bare', 'xactly'] as const) : (['xactly', 'bare'] as const);
      let xaR: SideResult | undefined;
      let bareR: SideResult | undefined;
      for (const side of order) {
        if (side === 'bare') {
          bareR = await runBare(admin, `xb-burstbare-${id}-${r + 1}`);
          console.log(`round ${r + 1}, bare:   p50 ${s(bareR.lateness.p50)}, p99 ${s(bareR.lateness.p99)}, max ${s(bareR.lateness.max)}`);
        } else {
          xaR = await runXactly(admin, `xb-burst-${id}-${r + 1}`);
          console.log(`round ${r + 1}, xactly: p50 ${s(xaR.lateness.p50)}, p99 ${s(xaR.lateness.p99)}, max ${s(xaR.lateness.max)}`);
        }
      }
      rounds.push({ xa: xaR!, ...(bareR && { bare: bareR }) });
      // A broken run is not worth repeating.
      if (xaR!.errors.length > 0 || (bareR?.errors.length ?? 0) > 0) break;
    }
    // The round with the median xactly p99 gives the detailed table.
    const byP99 = [...rounds].sort((a, b) => a.xa.lateness.p99 - b.xa.lateness.p99);
    const { xa, bare } = byP99[Math.floor((byP99.length - 1) / 2)]!;
    const medianOf = (pick: (r: { xa: SideResult; bare?: SideResult }) => number) => median(rounds.map(pick));
    const p99Median = medianOf((r) => r.xa.lateness.p99);
    const bareP99Median = bare ? medianOf((r) => r.bare!.lateness.p99) : NaN;
    const perRound: Row[] = rounds.map((r, i) => [
      String(i + 1),
      s(r.xa.lateness.p50),
      s(r.xa.lateness.p99),
      s(r.xa.lateness.max),
      r.bare ? s(r.bare.lateness.p50) : '',
      r.bare ? s(r.bare.lateness.p99) : '',
      r.bare ? s(r.bare.lateness.max) : '',
    ]);
    const perRoundHeader = ['round', 'xactly p50', 'xactly p99', 'xactly max', 'bare p50', 'bare p99', 'bare max'];

    const L = xa.lateness;
    const B = bare?.lateness;
    const idealP = (p: number) => Math.ceil(((p / 100) * N) / C) * LATENCY;
    const rows = [
      ['first post reaches X', s(L.first), B ? s(B.first) : '', s(LATENCY), ''],
      ['p50 lateness', s(L.p50), B ? s(B.p50) : '', s(idealP(50)), B ? x(L.p50, B.p50) : ''],
      ['p90 lateness', s(L.p90), B ? s(B.p90) : '', s(idealP(90)), B ? x(L.p90, B.p90) : ''],
      ['p99 lateness', s(L.p99), B ? s(B.p99) : '', s(idealP(99)), B ? x(L.p99, B.p99) : ''],
      ['max lateness (last post)', s(L.max), B ? s(B.max) : '', s(IDEAL_MS), B ? x(L.max, B.max) : ''],
      ['throughput, first to last arrival', `${f0(L.rate)} posts/s`, B ? `${f0(B.rate)} jobs/s` : '', `${f0((C * 1000) / Math.max(1, LATENCY))} /s`, ''],
      ['enqueue (enqueueMany / addBulk)', s(xa.enqueueMs), bare ? s(bare.enqueueMs) : '', '', ''],
      ['worker process CPU during the burst', xa.workerCpuS !== undefined ? `${f2(xa.workerCpuS)} s` : 'n/a', '', '', ''],
    ];
    const header = ['', 'xactly (CLI worker, HTTP)', 'bare BullMQ (sleep)', 'ideal (N×L/C waves)', 'xactly vs bare'];
    const p99Ratio = p99Median / IDEAL_MS;
    const ok = p99Ratio <= TARGET_P99_VS_IDEAL;
    const verdictLine = `p99 lateness ${s(p99Median)} (median of ${rounds.length} round(s)) = ${f2(p99Ratio)} × ideal ${s(IDEAL_MS)} (target <= ${TARGET_P99_VS_IDEAL} × ideal = ${s(IDEAL_MS * TARGET_P99_VS_IDEAL)}): ${verdict(ok)}`;
    const vsBareLine = bare
      ? `\np99 lateness xactly / bare BullMQ (same run) = ${f2(p99Median / bareP99Median)} (target <= ${TARGET_P99_VS_BARE}): ${verdict(p99Median / bareP99Median <= TARGET_P99_VS_BARE)}`
      : '';
    console.log(`\n${textTable(rows, header)}\n\n${textTable(perRound, perRoundHeader)}\n\n${verdictLine}${vsBareLine}`);
    const errors = rounds.flatMap((r, i) => [
      ...r.xa.errors.map((e) => `round ${i + 1}, xactly: ${e}`),
      ...(r.bare?.errors ?? []).map((e) => `round ${i + 1}, bare: ${e}`),
    ]);
    const notes = [...new Set(rounds.flatMap((r) => [...r.xa.notes, ...(r.bare?.notes ?? [])]))];
    for (const n of notes) console.log(`note: ${n}`);
    if (errors.length > 0) {
      console.error('\nTHE FIGURES ABOVE DO NOT MEASURE SUCCESSFUL WORK:');
      for (const e of errors) console.error(`  ${e}`);
      return 1;
    }
    const checks = `Checks passed, every round: ${N} posts reached the fake X exactly once each, none before its scheduledAt; the ledger holds ${N} \`sent\` records with X's ids; the worker drained and exited 0 on SIGTERM${bare ? `; bare: ${N} jobs ran once, none early` : ''}.`;

    const figures: Figure[] = [
      {
        name: 'burst: p99 lateness (xactly, median of rounds)',
        value: `${s(p99Median)} (${f2(p99Ratio)} × ideal ${s(IDEAL_MS)})`,
        target: `<= ${TARGET_P99_VS_IDEAL} × ideal (${s(IDEAL_MS * TARGET_P99_VS_IDEAL)})`,
        verdict: verdict(ok),
      },
      {
        name: 'burst: p50 lateness (xactly, median of rounds)',
        value: `${s(medianOf((r) => r.xa.lateness.p50))} (ideal ${s(idealP(50))})`,
        target: '',
        verdict: '',
      },
      ...(bare
        ? [
            {
              name: 'burst: p50 / p99 lateness (bare BullMQ, medians)',
              value: `${s(medianOf((r) => r.bare!.lateness.p50))} / ${s(bareP99Median)}`,
              target: '',
              verdict: '' as const,
            },
            {
              name: 'burst: p99 lateness xactly / bare (medians, same run)',
              value: x(p99Median, bareP99Median),
              target: `<= ${TARGET_P99_VS_BARE}×`,
              verdict: verdict(p99Median / bareP99Median <= TARGET_P99_VS_BARE),
            },
          ]
        : []),
    ];
    const markdown = `## Burst lateness (\`bench/burst.ts\`)

${N} posts due at the same instant over ${ACCOUNTS} accounts (${N / ACCOUNTS} each, inside the default
per-account budget of 100 per 15 min and the app's 10,000 per day), X latency ${LATENCY} ms,
**one worker process at concurrency ${C}**. The ideal is N × latency / concurrency = ${s(IDEAL_MS)}
for the last post (${Math.ceil(N / C)} waves of ${C}).

- **xactly**: the real \`xactly worker\` CLI as a child process (\`XACTLY_CONCURRENCY=${C}\`,
  \`LOG_LEVEL=info\`, default budgets, reconciliation running), the real \`TwitterXPort\` (OAuth 1.0a)
  over HTTP to a latency proxy on 127.0.0.1 that holds each request ${LATENCY} ms, then forwards it
  to the fake X (which, with the proxy, runs in the benchmark process). All ${N} keys go through
  \`enqueueMany\` with one \`scheduledAt\` ${LEAD / 1000} s ahead, so they become due together as delayed
  jobs. Lateness = the fake X's \`createdAt\` (the call reached X) − \`scheduledAt\`.
- **bare BullMQ** (reference): the same ${N} delayed jobs through \`addBulk\`, one \`Worker\` at
  concurrency ${C} in the benchmark process whose processor sleeps ${LATENCY} ms; lateness = end of
  the sleep − due time.

${rounds.length} round(s), order alternating (bare first in odd rounds); the verdict is on the median p99. The round
with the median xactly p99 (round ${rounds.indexOf(byP99[Math.floor((byP99.length - 1) / 2)]!) + 1}):

${mdTable(rows, header)}

Every round:

${mdTable(perRound, perRoundHeader)}

- ${verdictLine}
- ${checks}
${notes.map((n) => `- ${n}\n`).join('')}`;
    await writeReport(args.report, {
      bench: 'burst',
      title: 'Burst lateness',
      command: commandLine('burst.js'),
      figures,
      markdown,
      durationMs: Date.now() - started,
    });
    return 0;
  } finally {
    await admin.quit();
  }
}

run(main);
