/**
 * What claim durability costs (#15): claim latency and processing throughput
 * per XACTLY_CLAIM_DURABILITY mode, as ratios to `local`, in one run.
 *
 *   npm run build && node dist/bench/durability.js [--keys N=2000] [--concurrency C=20] [--rounds R=3] [--quick] [--report FILE]
 *
 * `--quick` is a smoke-test size (300 keys, 1 round; not for docs). With
 * `--report FILE` it writes its figures and its section of
 * docs/benchmarks.md there, for the suite (bench/suite.ts).
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
import { commandLine, f0, f2, type Figure, instantX, intOption, machine, mdTable, nullStream, run, textTable, writeReport } from './common.js';

const { values: a } = parseArgs({
  options: {
    keys: { type: 'string', default: '2000' },
    concurrency: { type: 'string', default: '20' },
    rounds: { type: 'string', default: '3' },
    quick: { type: 'boolean', default: false },
    report: { type: 'string' },
    help: { type: 'boolean' },
  },
});
if (a.help) {
  console.log('usage: node dist/bench/durability.js [--keys N=2000] [--concurrency C=20] [--rounds R=3] [--quick] [--report FILE]');
  process.exit(0);
}
const N = a.quick ? 300 : intOption('keys', a.keys!, 10);
const C = intOption('concurrency', a.concurrency!, 1);
const ROUNDS = a.quick ? 1 : intOption('rounds', a.rounds!, 1);
const COMMAND = commandLine('durability.js');
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
  const startedAt = new Date().toISOString();
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
  const fsyncHow = hasWaitAof ? 'WAITAOF 1 0' : 'appendfsync always';
  const header = ['MODE', 'CLAIM P50 MS', 'CLAIM P99 MS', 'P50 VS LOCAL', 'CLAIM+SETTLE/S', 'PUBLISHES/S', 'PUBLISHES VS LOCAL'];
  console.log(`claim durability: ${N} keys, ${C} in flight, medians of ${ROUNDS} rounds; Redis ${version} (fsync: ${fsyncHow}); ${machine()}\n`);
  console.log(textTable(rows, header));
  const figures: Figure[] = MODES.filter((m) => m !== 'local').flatMap((mode): Figure[] => [
    {
      name: `durability: claim p50, ${mode === 'replica' ? 'replica (WAIT 1, loopback)' : `fsync (${fsyncHow})`} vs local`,
      value: `x${f2(ratio(mode, (s) => s.p50Ms))} (${f2(med(mode, (s) => s.p50Ms))} vs ${f2(med('local', (s) => s.p50Ms))} ms)`,
      target: '',
      verdict: '',
    },
    {
      name: `durability: publishes/s, ${mode} vs local`,
      value: `${f2(ratio(mode, (s) => s.jobsPerS))} (${f0(med(mode, (s) => s.jobsPerS))} vs ${f0(med('local', (s) => s.jobsPerS))}/s)`,
      target: '',
      verdict: '',
    },
  ]);
  const label = (mode: string) => (mode === 'replica' ? 'replica (WAIT 1, loopback)' : mode === 'fsync' ? `fsync (${fsyncHow})` : mode);
  const markdown = `## Claim durability (\`bench/durability.ts\`)

\`${COMMAND}\` (${startedAt.slice(0, 16).replace('T', ' ')} UTC, Redis ${version}). Each mode gets fresh
redis-servers on loopback: \`local\` and \`replica\` a primary (AOF everysec) with one replica, \`fsync\`
one server with \`appendfsync always\`${hasWaitAof ? ' and WAITAOF 1 0 after each claim' : " (no WAITAOF before Redis 7.2: the claim's answer is the confirmation)"}.
Claim latency: ${N} claims with ${C} in flight on one connection, each from the claim's call to the end of
its confirmation (when X may be called). Publishes: ${N} jobs through the real publish worker
(concurrency ${C}) against an in-process X that answers at once. Figures are medians of ${ROUNDS}
round(s); ratios to \`local\` are medians of each round's own ratio (the three modes of a round run
back to back, under the same load). The run checks its work: every key \`sent\`, X called once per
key, a WAIT per claim in \`replica\` mode. The fsync figures move with the disk of this shared machine.

${mdTable(
  rows.map(([mode, ...rest]) => [label(mode!), ...rest.map((v, i) => (i < 2 ? `${v} ms` : v))]),
  ['mode', 'claim p50', 'claim p99', 'claim p50 vs local', 'claim+settle/s', 'publishes/s', 'publishes vs local'],
)}
`;
  await writeReport(a.report, { bench: 'durability', title: 'Claim durability', command: COMMAND, figures, markdown, durationMs: Date.now() - started });
  console.log(`\nrun time ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return 0;
}

run(main);
