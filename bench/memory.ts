/**
 * Memory: does a publish worker's memory stay flat over many publishes?
 *
 *   npm run build && node --expose-gc dist/bench/memory.js [--batches 5] [--batch-size 10000]
 *     [--concurrency 50] [--report FILE]
 *
 * One long-lived publish worker (createPublishWorker: claim script -> X ->
 * settle script) runs in this process against an in-process X that answers
 * at once, with a pino logger at `info` writing to a stream that drops the
 * lines (the production log level, without the I/O). Batches of publishes
 * are enqueued through `enqueueMany` (the producer lives in this process
 * too) and run to completion; after each batch `global.gc()` runs and
 * `process.memoryUsage()` is sampled. Batch 1 is the warm-up; the growth is
 * measured from batch 2 to the last.
 *
 * BullMQ keeps completed jobs in Redis (removeOnComplete: the last 10,000),
 * and the ledger keeps every record in Redis: neither is in this heap.
 *
 * Checks (exit 1): every key `sent` in the ledger, X called once per key,
 * no job failed.
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { keyId } from '../src/domain/key.js';
import { createLogger } from '../src/log.js';
import { createProducer, createPublishWorker } from '../src/app.js';
import { dropPrefix, newRedis } from '../test/support/redis.js';
import {
  commandLine,
  countBy,
  f0,
  f2,
  type Figure,
  fmtCounts,
  instantX,
  intOption,
  mb,
  mdTable,
  nullStream,
  rand,
  type Row,
  run,
  secs,
  tallyOf,
  textTable,
  verdict,
  writeReport,
} from './common.js';

/** "Flat": what the heap may keep per 1,000 publishes after the warm-up (~100 bytes a publish). */
const TARGET_HEAP_PER_1000 = 0.1 * 1_048_576;
const TARGET_RSS_PER_1000 = 0.5 * 1_048_576;

const { values: args } = parseArgs({
  options: {
    batches: { type: 'string', default: '5' },
    'batch-size': { type: 'string', default: '10000' },
    concurrency: { type: 'string', default: '50' },
    accounts: { type: 'string', default: '100' },
    report: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log('usage: node --expose-gc dist/bench/memory.js [--batches 5] [--batch-size 10000] [--concurrency 50] [--accounts 100] [--report FILE]');
  process.exit(0);
}
const BATCHES = intOption('batches', args.batches, 3);
const SIZE = intOption('batch-size', args['batch-size'], 1);
const C = intOption('concurrency', args.concurrency, 1);
const ACCOUNTS = intOption('accounts', args.accounts, 1);
const CHUNK = 1_000;

const gc = (globalThis as { gc?: () => void }).gc;

interface Sample {
  label: string;
  published: number;
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  seconds?: number;
}

async function sample(label: string, published: number, seconds?: number): Promise<Sample> {
  // Twice, with a turn of the event loop between: finalizers and weak refs settle.
  gc!();
  await new Promise((r) => setImmediate(r));
  gc!();
  const m = process.memoryUsage();
  return { label, published, rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, ...(seconds !== undefined && { seconds }) };
}

async function main(): Promise<number> {
  if (typeof gc !== 'function') {
    console.error('memory.js needs the garbage collector exposed: node --expose-gc dist/bench/memory.js');
    return 2;
  }
  const started = Date.now();
  const prefix = `xb-mem-${rand()}`;
  const admin = newRedis();
  const producerRedis = newRedis();
  const workerRedis = newRedis();
  const errors: string[] = [];
  try {
    const producer = createProducer({ connection: producerRedis, prefix, retentionMs: 3_600_000 });
    await producer.queue.waitUntilReady();
    const x = instantX();
    const worker = createPublishWorker({
      connection: workerRedis,
      prefix,
      retentionMs: 3_600_000,
      x,
      logger: createLogger({ level: 'info' }, nullStream()),
      concurrency: C,
      leaseMs: 30_000,
      settleWindowMs: 60_000,
    });
    worker.on('error', (err) => console.error(`  worker error: ${err.message}`));
    const tally = tallyOf(worker);
    await worker.waitUntilReady();
    console.log(`memory: ${BATCHES} batches of ${f0(SIZE)} publishes, one worker at concurrency ${C}, ${ACCOUNTS} accounts`);

    const samples: Sample[] = [await sample('start (worker ready)', 0)];
    for (let b = 1; b <= BATCHES; b++) {
      const t0 = performance.now();
      const requests = Array.from({ length: SIZE }, (_, i) => ({
        slotId: `mem-${b}-${i}`,
        postId: 'p1',
        accountId: `acc-${i % ACCOUNTS}`,
        kind: 'post' as const,
        text: `Memory batch ${b} post #${i}: published once, then forgotten by the heap.`,
      }));
      const statuses = new Map<string, number>();
      for (let i = 0; i < SIZE; i += CHUNK)
        for (const r of await producer.enqueueMany(requests.slice(i, i + CHUNK))) statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      if (statuses.get('queued') !== SIZE) errors.push(`batch ${b}: enqueueMany ${fmtCounts(statuses)}`);
      await tally.until(b * SIZE, 300_000);
      const seconds = (performance.now() - t0) / 1000;
      const s = await sample(`after batch ${b}${b === 1 ? ' (warm-up)' : ''}`, b * SIZE, seconds);
      samples.push(s);
      console.log(`  ${s.label}: ${f0(s.published)} published in ${f2(seconds)} s; rss ${mb(s.rss)}, heapUsed ${mb(s.heapUsed)}`);
    }
    await worker.close();

    // Was the work right?
    const total = BATCHES * SIZE;
    if (tally.failed > 0) errors.push(`${tally.failed} jobs failed (first: ${tally.firstFailure})`);
    if (tally.outcomes.get('sent') !== total) errors.push(`job outcomes: ${fmtCounts(tally.outcomes)} (expected ${total} sent)`);
    if (x.calls() !== total) errors.push(`X was called ${x.calls()} times for ${total} keys`);
    const states = new Map<string, number>();
    for (let b = 1; b <= BATCHES; b++) {
      for (let i = 0; i < SIZE; i += CHUNK) {
        const ids = Array.from({ length: Math.min(CHUNK, SIZE - i) }, (_, j) => keyId({ slotId: `mem-${b}-${i + j}`, postId: 'p1' }));
        for (const [k, v] of countBy(await producer.ledger.getMany(ids), (r) => r?.state ?? 'missing')) states.set(k, (states.get(k) ?? 0) + v);
      }
    }
    if (states.get('sent') !== total) errors.push(`ledger: ${fmtCounts(states)} (expected ${total} sent)`);
    await producer.close();

    const header = ['sample', 'publishes', 'rss', 'heapUsed', 'heapTotal', 'external', 'batch time'];
    const rows: Row[] = samples.map((s) => [
      s.label,
      f0(s.published),
      mb(s.rss),
      mb(s.heapUsed),
      mb(s.heapTotal),
      mb(s.external),
      s.seconds !== undefined ? secs(s.seconds * 1000) : '',
    ]);
    const from = samples[2]!;
    const to = samples.at(-1)!;
    // Least-squares slope over batch 2..last: one noisy sample (RSS moves with
    // the allocator, not only with what is alive) cannot make or hide a trend.
    const measured = samples.slice(2);
    const per1000 = (k: 'rss' | 'heapUsed') => {
      const xs = measured.map((m) => m.published / 1000);
      const ys = measured.map((m) => m[k]);
      const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
      const my = ys.reduce((a, b) => a + b, 0) / ys.length;
      const num = xs.reduce((a, xv, i) => a + (xv - mx) * (ys[i]! - my), 0);
      const den = xs.reduce((a, xv) => a + (xv - mx) ** 2, 0);
      return den > 0 ? num / den : 0;
    };
    const heapPer = per1000('heapUsed');
    const rssPer = per1000('rss');
    const kb = (bytes: number) => `${bytes >= 0 ? '+' : ''}${f0(bytes / 1024)} KB`;
    const heapOk = heapPer <= TARGET_HEAP_PER_1000;
    const rssOk = rssPer <= TARGET_RSS_PER_1000;
    const span = `batch 2 -> batch ${BATCHES} (${f0(to.published - from.published)} publishes)`;
    const verdicts = [
      `heapUsed ${span}: ${kb(to.heapUsed - from.heapUsed)}; trend ${kb(heapPer)} per 1,000 publishes (least-squares slope; target <= +${f0(TARGET_HEAP_PER_1000 / 1024)} KB, ~100 bytes a publish): ${verdict(heapOk)}`,
      `rss ${span}: ${kb(to.rss - from.rss)}; trend ${kb(rssPer)} per 1,000 publishes (least-squares slope; target <= +${f0(TARGET_RSS_PER_1000 / 1024)} KB): ${verdict(rssOk)}`,
    ];
    console.log(`\n${textTable(rows, header)}\n`);
    for (const v of verdicts) console.log(v);
    if (errors.length > 0) {
      console.error('\nTHE FIGURES ABOVE DO NOT MEASURE SUCCESSFUL WORK:');
      for (const e of errors) console.error(`  ${e}`);
      return 1;
    }
    const figures: Figure[] = [
      {
        name: `memory: heapUsed trend per 1,000 publishes (${span})`,
        value: kb(heapPer),
        target: `<= +${f0(TARGET_HEAP_PER_1000 / 1024)} KB`,
        verdict: verdict(heapOk),
      },
      {
        name: `memory: rss trend per 1,000 publishes (${span})`,
        value: kb(rssPer),
        target: `<= +${f0(TARGET_RSS_PER_1000 / 1024)} KB`,
        verdict: verdict(rssOk),
      },
      { name: `memory: rss / heapUsed after ${f0(total)} publishes`, value: `${mb(to.rss)} / ${mb(to.heapUsed)}`, target: '', verdict: '' },
    ];
    const markdown = `## Memory (\`bench/memory.ts\`)

One long-lived publish worker (\`createPublishWorker\`, concurrency ${C}) in a process started with
\`--expose-gc\`, against an in-process X that answers at once, with a pino logger at \`info\` writing
to a stream that drops the lines. ${BATCHES} batches of ${f0(SIZE)} keys over ${ACCOUNTS} accounts go through
\`enqueueMany\` (the producer runs in the same process) and are published to completion; after each
batch \`global.gc()\` runs (twice) and \`process.memoryUsage()\` is sampled. Batch 1 is the warm-up; the
trend is the least-squares slope over batches 2 to ${BATCHES} (RSS moves with the allocator, not only with
what is alive, so one sample cannot make or hide a trend). No budgets (the default app cap of 10,000 a day
would stop the run at batch 1). BullMQ keeps the last 10,000 completed jobs in Redis and the ledger
keeps every record there: neither is in this process's heap.

${mdTable(rows, header)}

${verdicts.map((v) => `- ${v}`).join('\n')}
- Checks passed: ${f0(total)} keys \`sent\` in the ledger, X called ${f0(total)} times, no job failed.
`;
    await writeReport(args.report, {
      bench: 'memory',
      title: 'Memory',
      command: commandLine('memory.js'),
      figures,
      markdown,
      durationMs: Date.now() - started,
    });
    return 0;
  } finally {
    await dropPrefix(admin, prefix);
    await Promise.all([admin.quit(), producerRedis.quit(), workerRedis.quit()]);
  }
}

run(main);
