/**
 * appendfsync: what `always` costs. The same ledger work against fresh
 * redis-servers without AOF, with `everysec` and with `always`
 * (`node dist/bench/chaos.js --fsync-bench N`).
 */
import { rm } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { renderTable } from '../../src/cli/table.js';
import { jobIdFor, keyId as keyIdOf } from '../../src/domain/key.js';
import { createProducer } from '../../src/app.js';
import { newRedis, startRedisServer } from '../../test/support/redis.js';
import { median, percentile } from '../../test/support/stats.js';

export type FsyncMode = 'no-aof' | 'everysec' | 'always';

export interface FsyncFigure {
  readonly mode: FsyncMode;
  readonly keys: number;
  readonly concurrency: number;
  /** Enqueues (ledger registration + BullMQ addBulk, 500 per call) per second. */
  readonly enqueuePerS: number;
  /** Claim + settle `sent` (2 ledger transitions) per second. */
  readonly claimsPerS: number;
  readonly p50ClaimMs: number;
  readonly p99ClaimMs: number;
}

async function fsyncRound(mode: FsyncMode, n: number, concurrency: number): Promise<FsyncFigure> {
  const aof = mode === 'no-aof' ? ['--appendonly', 'no'] : ['--appendonly', 'yes', '--appendfsync', mode, '--auto-aof-rewrite-percentage', '0'];
  const server = await startRedisServer({ extraArgs: aof });
  const redis = newRedis(server.url);
  try {
    const producer = createProducer({ connection: redis, prefix: `fsync-${mode}` });
    const ledger = producer.ledger;
    const reqs = Array.from({ length: n }, (_, i) => ({ slotId: `s${i}`, postId: 'p', accountId: 'a', kind: 'post', text: `fsync bench ${i}` }));
    const t0 = performance.now();
    for (let i = 0; i < n; i += 500) await producer.enqueueMany(reqs.slice(i, i + 500));
    const enqueueMs = performance.now() - t0;
    const lat: number[] = [];
    let next = 0;
    const t1 = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < n) {
          const i = next++;
          const key = { slotId: `s${i}`, postId: 'p' };
          const id = keyIdOf(key);
          const s = performance.now();
          const c = await ledger.claim({ keyId: id, jobId: jobIdFor(key), leaseMs: 30_000, now: Date.now() });
          lat.push(performance.now() - s);
          if (c.verdict !== 'claimed') throw new Error(`fsync bench: claim of ${id} answered ${c.verdict}`);
          await ledger.settle(id, c.record.attempt, { to: 'sent', tweetId: String(1_000_000 + i) }, Date.now());
        }
      }),
    );
    const claimMs = performance.now() - t1;
    lat.sort((a, b) => a - b);
    await producer.close();
    return {
      mode,
      keys: n,
      concurrency,
      enqueuePerS: n / (enqueueMs / 1000),
      claimsPerS: n / (claimMs / 1000),
      p50ClaimMs: percentile(lat, 50),
      p99ClaimMs: percentile(lat, 99),
    };
  } finally {
    redis.disconnect();
    await server.stop();
    await rm(server.dir, { recursive: true, force: true });
  }
}

/**
 * The same ledger work against fresh redis-servers without AOF, with
 * `appendfsync everysec` and with `always` (temp dir on this machine's disk):
 * enqueue N keys, then claim and settle each with `concurrency` callers in
 * flight. Rounds alternate the modes; figures are medians.
 */
export async function fsyncCompare(n: number, opts: { concurrency?: number; rounds?: number } = {}): Promise<FsyncFigure[]> {
  const modes: FsyncMode[] = ['no-aof', 'everysec', 'always'];
  const rounds = opts.rounds ?? 3;
  const samples = new Map<FsyncMode, FsyncFigure[]>(modes.map((m) => [m, []]));
  for (let r = 0; r < rounds; r++) {
    for (const mode of r % 2 === 0 ? modes : [...modes].reverse()) samples.get(mode)!.push(await fsyncRound(mode, n, opts.concurrency ?? 20));
  }
  return modes.map((mode) => {
    const s = samples.get(mode)!;
    return {
      mode,
      keys: n,
      concurrency: s[0]!.concurrency,
      enqueuePerS: median(s.map((f) => f.enqueuePerS)),
      claimsPerS: median(s.map((f) => f.claimsPerS)),
      p50ClaimMs: median(s.map((f) => f.p50ClaimMs)),
      p99ClaimMs: median(s.map((f) => f.p99ClaimMs)),
    };
  });
}

export function renderFsync(figures: readonly FsyncFigure[]): string {
  const rows = figures.map((f) => {
    const base = figures.find((b) => b.mode === 'everysec' && b.concurrency === f.concurrency);
    return [
      f.mode,
      String(f.keys),
      String(f.concurrency),
      f.enqueuePerS.toFixed(0),
      f.claimsPerS.toFixed(0),
      f.p50ClaimMs.toFixed(2),
      f.p99ClaimMs.toFixed(2),
      base ? `${((f.claimsPerS / base.claimsPerS) * 100).toFixed(0)} %` : '',
    ];
  });
  return renderTable(['AOF', 'KEYS', 'IN FLIGHT', 'ENQUEUE/S', 'CLAIM+SETTLE/S', 'CLAIM P50 MS', 'CLAIM P99 MS', 'VS EVERYSEC'], rows);
}
