/**
 * What claim durability costs (#15): claim latency and processing throughput
 * per XACTLY_CLAIM_DURABILITY mode, as ratios to `local`, in one run.
 *
 *   npm run build && node dist/bench/durability.js [--keys N=2000] [--concurrency C=20] [--rounds R=3]
 *
 * Every mode gets fresh redis-servers of its own on loopback (temp dirs on
 * this machine's disk):
 * - `local`: a primary (AOF everysec) with a replica attached; no wait;
 * - `replica`: the same pair; WAIT 1 after each claim;
 * - `fsync`: one redis-server with `appendfsync always` (Redis < 7.2: the
 *   claim's answer is the confirmation; with WAITAOF, WAITAOF 1 0).
 *
 * Claim latency: N claims with C in flight on one connection, each timed from
 * the claim's call to the end of its confirmation (when X may be called),
 * then settled. Throughput: N jobs through the real publish worker
 * (`createPublishWorker`, concurrency C, durability from `claimDurability`)
 * against an in-process X that answers at once, timed until N `completed`.
 * Rounds alternate the order of the modes; figures are medians, and the
 * ratios to `local` are medians of each round's own ratio. The ledger
 * must say `sent` for every key and X must have been called N times, or the
 * run exits 1. Prints figures; asserts no timing.
 */
import { rm } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import type { Redis } from 'ioredis';
import { createProducer, createPublishWorker } from '../src/app.js';
import { jobIdFor, keyId as keyIdOf } from '../src/domain/key.js';
import { type ClaimDurabilityMode, claimDurability } from '../src/ledger/durability.js';
import { createLogger } from '../src/log.js';
import { newRedis, type RedisServer, redisCli, startRedisServer, startReplica } from '../test/support/redis.js';
import { median, percentile } from '../test/support/stats.js';
import { f0, f2, instantX, intOption, machine, nullStream, textTable } from './common.js';

const { values: a } = parseArgs({
  options: {
    keys: { type: 'string', default: '2000' },
    concurrency: { type: 'string', default: '20' },
    rounds: { type: 'string', default: '3' },
    help: { type: 'boolean' },
  },
});
if (a.help) {
  console.log('usage: node dist/bench/durability.js [--keys N=2000] [--concurrency C=20] [--rounds R=3]');
  process.exit(0);
}
const N = intOption('keys', a.keys!, 10);
const C = intOption('concurrency', a.concurrency!, 1);
const ROUNDS = intOption('rounds', a.rounds!, 1);
const MODES: ClaimDurabilityMode[] = ['local', 'replica', 'fsync'];

interface Sample {
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly claimsPerS: number;
  readonly jobsPerS: number;
}

async function serversFor(mode: ClaimDurabilityMode): Promise<RedisServer[]> {
  const aof = (fsync: string) => ['--appendonly', 'yes', '--appendfsync', fsync, '--auto-aof-rewrite-percentage', '0', '--maxmemory-policy', 'noeviction'];
  if (mode === 'fsync') return [await startRedisServer({ extraArgs: aof('always') })];
  const primary = await startRedisServer({ extraArgs: aof('everysec') });
  return [primary, await startReplica(primary.port, { extraArgs: aof('everysec') })];
}

const reqs = (tag: string) =>
  Array.from({ length: N }, (_, i) => ({ slotId: `${tag}${i}`, postId: 'p', accountId: 'a', kind: 'post', text: `durability bench ${tag} ${i}` }));

async function enqueue(redis: Redis, prefix: string, tag: string): Promise<void> {
  const producer = createProducer({ connection: redis, prefix });
  const all = reqs(tag);
  for (let i = 0; i < N; i += 500) {
    const answers = await producer.enqueueMany(all.slice(i, i + 500));
    if (answers.some((r) => r.status !== 'queued')) throw new Error(`durability bench: an enqueue was not queued`);
  }
  await producer.close();
}

async function round(mode: ClaimDurabilityMode): Promise<Sample> {
  const servers = await serversFor(mode);
  const redis = newRedis(servers[0]!.url);
  try {
    const settings = { mode, replicas: 1, timeoutMs: 1_000 };
    // Claim latency: claim + confirmation, C in flight on one connection (as in a worker).
    const prefix = 'dur-bench';
    await enqueue(redis, `${prefix}-c`, 'c');
    const producer = createProducer({ connection: redis, prefix: `${prefix}-c` });
    const ledger = producer.ledger;
    const durability = await claimDurability(redis, settings);
    const lat: number[] = [];
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: C }, async () => {
        while (next < N) {
          const i = next++;
          const key = { slotId: `c${i}`, postId: 'p' };
          const id = keyIdOf(key);
          const s = performance.now();
          const mark = durability.mark();
          const c = await ledger.claim({ keyId: id, jobId: jobIdFor(key), leaseMs: 30_000, now: Date.now() });
          if (c.verdict !== 'claimed') throw new Error(`durability bench: claim of ${id} answered ${c.verdict}`);
          const ok = await durability.confirm(mark);
          lat.push(performance.now() - s);
          if (!ok.ok) throw new Error(`durability bench: claim of ${id} not confirmed: ${ok.why}`);
          await ledger.settle(id, c.record.attempt, { to: 'sent', tweetId: String(1_000_000 + i) }, Date.now());
        }
      }),
    );
    const claimMs = performance.now() - t0;
    await producer.close();
    lat.sort((x, y) => x - y);

    // Throughput: the publish worker end to end (claim -> confirm -> X -> settle -> BullMQ).
    const wprefix = `${prefix}-w`;
    await enqueue(redis, wprefix, 'w');
    const x = instantX();
    const connection = newRedis(servers[0]!.url);
    const worker = createPublishWorker({
      connection,
      prefix: wprefix,
      x,
      logger: createLogger({ level: 'warn' }, nullStream()),
      concurrency: C,
      leaseMs: 30_000,
      settleWindowMs: 60_000,
      durability: await claimDurability(connection, settings),
      workerOptions: { autorun: false },
    });
    let completed = 0;
    const done = new Promise<void>((resolve) =>
      worker.on('completed', () => {
        if (++completed === N) resolve();
      }),
    );
    const t1 = performance.now();
    void worker.run();
    await done;
    const workMs = performance.now() - t1;
    await worker.close();
    const check = createProducer({ connection: redis, prefix: wprefix });
    const records = await check.ledger.getMany(reqs('w').map((r) => keyIdOf(r)));
    await check.close();
    connection.disconnect();
    // The waits really ran: one WAIT per claim, in both parts.
    const waits = Number(/cmdstat_wait:calls=(\d+)/.exec(await redisCli(servers[0]!.port, 'info', 'commandstats'))?.[1] ?? 0);
    if (mode === 'replica' && waits < 2 * N) throw new Error(`durability bench (replica): ${waits} WAIT calls for ${2 * N} claims`);
    if (records.some((r) => r?.state !== 'sent') || x.calls() !== N) {
      throw new Error(`durability bench (${mode}): ${records.filter((r) => r?.state === 'sent').length} of ${N} sent, X called ${x.calls()} times`);
    }
    return { p50Ms: percentile(lat, 50), p99Ms: percentile(lat, 99), claimsPerS: N / (claimMs / 1000), jobsPerS: N / (workMs / 1000) };
  } finally {
    redis.disconnect();
    for (const s of servers.reverse()) {
      await s.stop();
      await rm(s.dir, { recursive: true, force: true });
    }
  }
}

async function main(): Promise<number> {
  const started = Date.now();
  const probe = await startRedisServer();
  const version = /redis_version:([\d.]+)/.exec(await redisCli(probe.port, 'info', 'server'))![1]!;
  await probe.stop();
  await rm(probe.dir, { recursive: true, force: true });
  const [major = 0, minor = 0] = version.split('.').map(Number);
  const hasWaitAof = major > 7 || (major === 7 && minor >= 2);
  const samples = new Map<ClaimDurabilityMode, Sample[]>(MODES.map((m) => [m, []]));
  for (let r = 0; r < ROUNDS; r++) {
    for (const mode of r % 2 === 0 ? MODES : [...MODES].reverse()) samples.get(mode)!.push(await round(mode));
  }
  const med = (mode: ClaimDurabilityMode, f: (s: Sample) => number) => median(samples.get(mode)!.map(f));
  // Ratios per round (the three modes of a round run back to back, under the same load), then their median:
  // this shared machine's load drifts between rounds more than the modes differ.
  const ratio = (mode: ClaimDurabilityMode, f: (s: Sample) => number) => median(samples.get(mode)!.map((s, r) => f(s) / f(samples.get('local')![r]!)));
  const rows = MODES.map((mode) => [
    mode,
    f2(med(mode, (s) => s.p50Ms)),
    f2(med(mode, (s) => s.p99Ms)),
    `x${f2(ratio(mode, (s) => s.p50Ms))}`,
    f0(med(mode, (s) => s.claimsPerS)),
    f0(med(mode, (s) => s.jobsPerS)),
    f2(ratio(mode, (s) => s.jobsPerS)),
  ]);
  console.log(
    `claim durability: ${N} keys, ${C} in flight, medians of ${ROUNDS} rounds; Redis ${version} (fsync: ${hasWaitAof ? 'WAITAOF' : 'appendfsync always'}); ${machine()}\n`,
  );
  console.log(textTable(rows, ['MODE', 'CLAIM P50 MS', 'CLAIM P99 MS', 'P50 VS LOCAL', 'CLAIM+SETTLE/S', 'PUBLISHES/S', 'PUBLISHES VS LOCAL']));
  console.log(`\nrun time ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`durability bench: ${(err as Error)?.stack ?? String(err)}`);
    process.exit(1);
  },
);
