/**
 * Reconciliation cost: what one `reconcileOnce` pass costs for K ambiguous
 * keys over A accounts, and that it grows with the keys in doubt, not with
 * the ledger's size.
 *
 *   npm run build && node dist/bench/reconcile-cost.js [--accounts 50] [--ambiguous 1000]
 *     [--ledger-size 100000] [--growth 100,1000,5000] [--rounds 3] [--latency-ms 200] [--report FILE]
 *
 * Ambiguous keys are made for real: the fake X runs with fault rate 1 and
 * kind `commit-then-reset` (the post is created, then the connection is
 * reset), the keys go through `enqueueMany` and an in-process publish worker
 * calling the real TwitterXPort over HTTP, so every key ends `ambiguous` with
 * its post actually on X. Then the clock given to `reconcileOnce` is moved
 * past the settle window and one pass is timed. Figures per pass: lookups
 * (GET requests the fake X received, and the pass's own count), Redis round
 * trips (client side), duration (wall clock) and keys resolved.
 *
 * Scenarios, each on its own prefix and its own fake X:
 * - K keys, empty ledger otherwise;
 * - the same K keys with `--ledger-size` keys already `sent` in the ledger
 *   (written through the public Ledger API: registerMany + claim + settle);
 * - 100 / 1,000 / 5,000 keys in one pass (`batch` = K) to show the growth;
 * - more keys than the default batch (5,000 keys per pass): passes needed;
 * - K keys with the lookups through a latency proxy (X answering in L ms).
 *
 * Checks (exit 1): every key became ambiguous with exactly one post on X; the
 * pass(es) resolved every key to `sent` with that post's id; nothing released
 * or failed.
 */
import { performance } from 'node:perf_hooks';
import type { Ledger } from '../src/ledger/ledger.js';
import { parseArgs } from 'node:util';
import type { Redis } from 'ioredis';
import { jobIdFor, keyId } from '../src/domain/key.js';
import { validateRequest } from '../src/domain/request.js';
import { type FakeX, startFakeX } from '../src/fake-x/index.js';
import { createLogger } from '../src/log.js';
import { createProducer, createPublishWorker } from '../src/app.js';
import { type Producer } from '../src/queue/producer.js';
import { reconcileOnce, type ReconcileReport } from '../src/queue/reconciler.js';
import { type Account, staticCredentialStore } from '../src/x/credentials.js';
import { TwitterXPort } from '../src/x/twitter.js';
import { accountOf, fakeAccountOf, numberedAccounts } from '../test/support/accounts.js';
import { startLatencyProxy } from '../test/support/latency-proxy.js';
import { dropPrefix, newRedis } from '../test/support/redis.js';
import { median } from '../test/support/stats.js';
import {
  commandLine,
  countBy,
  f0,
  f2,
  type Figure,
  fmtCounts,
  intOption,
  mb,
  mdTable,
  rand,
  type Row,
  run,
  sum,
  tallyOf,
  textTable,
  verdict,
  writeReport,
} from './common.js';
import { installCommandCounter } from './redis-stats.js';

const { values: args } = parseArgs({
  options: {
    accounts: { type: 'string', default: '50' },
    ambiguous: { type: 'string', default: '1000' },
    'ledger-size': { type: 'string', default: '100000' },
    growth: { type: 'string', default: '100,1000,5000' },
    'overdue-queued': { type: 'string', default: '5000' },
    rounds: { type: 'string', default: '3' },
    'latency-ms': { type: 'string', default: '200' },
    'settle-window-ms': { type: 'string', default: '60000' },
    report: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log(
    'usage: node dist/bench/reconcile-cost.js [--accounts 50] [--ambiguous 1000] [--ledger-size 100000] [--growth 100,1000,5000] [--overdue-queued 5000 (0: skip)] [--rounds 3] [--latency-ms 200 (0: skip)] [--settle-window-ms 60000] [--report FILE]',
  );
  process.exit(0);
}
const ACCOUNTS = intOption('accounts', args.accounts, 1);
const K = intOption('ambiguous', args.ambiguous, 1);
const LEDGER_SIZE = intOption('ledger-size', args['ledger-size'], 0);
const BACKLOG = intOption('overdue-queued', args['overdue-queued'], 0);
const GROWTH = args.growth
  .split(',')
  .filter(Boolean)
  .map((g) => intOption('growth', g, 1));
const ROUNDS = intOption('rounds', args.rounds, 1);
const LATENCY = intOption('latency-ms', args['latency-ms'], 0);
const SETTLE = intOption('settle-window-ms', args['settle-window-ms'], 1);
const DEFAULT_BATCH = 5_000; // reconcileOnce's default `batch`
const CHUNK = 1_000;
/** Past the settle window, as `reconcileOnce` sees the time. */
const LATER = SETTLE + 5_000;

const silent = createLogger({ level: 'silent' });
const counter = installCommandCounter();

const accounts: Account[] = numberedAccounts(ACCOUNTS, { prefix: 'rc', userIdBase: 8_000_000 }).map((a) => accountOf(a));
const credentials = staticCredentialStore(accounts);
const fakeAccounts = accounts.map(fakeAccountOf);

interface Pass {
  report: ReconcileReport;
  /** GET requests the fake X received during the pass. */
  gets: number;
  roundTrips: number;
  wallMs: number;
}

interface ScenarioResult {
  label: string;
  keys: number;
  ledgerKeys: number;
  overdueQueued: number;
  batch: number;
  passes: Pass[];
  /** Seconds to make the keys ambiguous (enqueue + publish), and to write the sent history. */
  setupS: number;
  fillS?: number;
  redisBytes?: number;
  errors: string[];
}

const requestsFor = (tag: string, n: number) =>
  Array.from({ length: n }, (_, i) => ({
    slotId: `${tag}-${i}`,
    postId: 'p1',
    accountId: `rc-${i % ACCOUNTS}`,
    kind: 'post' as const,
    text: `Reconcile ${tag} #${i}: did this go out? The timeline will tell.`,
  }));

/**
 * Write `n` keys that are already `sent` through the public Ledger API:
 * registerMany (one pipeline per chunk), then claim and settle each key,
 * a chunk at a time (Promise.all: ioredis writes them back to back).
 */
async function fillSent(ledger: Ledger, n: number, tag: string): Promise<void> {
  const now = Date.now();
  for (let start = 0; start < n; start += CHUNK) {
    const entries = requestsFor(tag, Math.min(CHUNK, n - start)).map((raw, j) => {
      const r = { ...raw, slotId: `${tag}-${start + j}`, accountId: `rc-${(start + j) % ACCOUNTS}` };
      const v = validateRequest(r, { now, deadlineWindowMs: 15 * 60_000 });
      if (!v.ok) throw new Error(`invalid history request: ${JSON.stringify(v.errors)}`);
      return { request: v.request, keyId: keyId(r), jobId: jobIdFor(r) };
    });
    const registered = await ledger.registerMany(entries, now);
    if (registered.some((r) => r.verdict !== 'new')) throw new Error('history keys already existed');
    const claims = await Promise.all(
      entries.map((e) => ledger.claim({ keyId: e.keyId, jobId: e.jobId, leaseMs: 30_000, now, accountId: e.request.accountId })),
    );
    if (claims.some((c) => c.verdict !== 'claimed')) throw new Error(`history claims: ${fmtCounts(countBy(claims, (c) => c.verdict))}`);
    const settled = await Promise.all(entries.map((e, j) => ledger.settle(e.keyId, 1, { to: 'sent', tweetId: String(1_000_000_000_000 + start + j) }, now)));
    if (settled.some((s) => s.verdict !== 'ok')) throw new Error('history settle refused');
  }
}

/** Make `n` keys ambiguous for real: published through a worker against a fake X that commits, then resets. */
async function makeAmbiguous(redis: Redis, producer: Producer, prefix: string, fake: FakeX, tag: string, n: number): Promise<string[]> {
  const errors: string[] = [];
  const x = new TwitterXPort({ credentials, baseUrl: fake.url, timeoutMs: 5_000 });
  const worker = createPublishWorker({
    connection: redis,
    prefix,
    retentionMs: 3_600_000,
    x,
    logger: silent,
    concurrency: 50,
    leaseMs: 30_000,
    settleWindowMs: SETTLE,
  });
  worker.on('error', (err) => console.error(`  worker error: ${err.message}`));
  const tally = tallyOf(worker);
  try {
    const requests = requestsFor(tag, n);
    const statuses = new Map<string, number>();
    for (let i = 0; i < n; i += CHUNK)
      for (const r of await producer.enqueueMany(requests.slice(i, i + CHUNK))) statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
    if ((statuses.get('queued') ?? 0) !== n) errors.push(`enqueueMany: ${fmtCounts(statuses)}`);
    await tally.until(n, 120_000);
    if ((tally.outcomes.get('ambiguous') ?? 0) !== n)
      errors.push(`publish outcomes: ${fmtCounts(tally.outcomes)}, ${tally.failed} failed (${tally.firstFailure ?? ''}); expected ${n} ambiguous`);
    const states = countBy(await producer.ledger.getMany(requests.map((r) => keyId(r))), (r) => r?.state ?? 'missing');
    if (states.get('ambiguous') !== n) errors.push(`ledger after publishing: ${fmtCounts(states)}; expected ${n} ambiguous`);
    const created = fake.created().filter((c) => c.text.startsWith(`Reconcile ${tag} #`));
    if (created.length !== n) errors.push(`${created.length} posts on the fake X for ${n} keys`);
  } finally {
    await worker.close();
    x.close();
  }
  return errors;
}

interface ScenarioOptions {
  label: string;
  keys: number;
  ledgerKeys?: number;
  batch?: number;
  latencyMs?: number;
  rounds?: number;
  /** Queued keys past their due time whose jobs are alive (a backlog, or held back by budgets). */
  overdueQueued?: number;
}

async function scenario(admin: Redis, opts: ScenarioOptions): Promise<ScenarioResult> {
  const prefix = `xb-rc-${rand()}`;
  const redis = newRedis();
  const producer = createProducer({ connection: redis, prefix, retentionMs: 3_600_000 });
  const batch = opts.batch ?? Math.max(DEFAULT_BATCH, opts.keys);
  const result: ScenarioResult = {
    label: opts.label,
    keys: opts.keys,
    ledgerKeys: opts.ledgerKeys ?? 0,
    overdueQueued: opts.overdueQueued ?? 0,
    batch,
    passes: [],
    setupS: 0,
    errors: [],
  };
  try {
    if (opts.ledgerKeys) {
      const t = performance.now();
      await fillSent(producer.ledger, opts.ledgerKeys, 'hist');
      result.fillS = (performance.now() - t) / 1000;
      console.log(`  ${opts.label}: ${f0(opts.ledgerKeys)} sent keys written in ${f2(result.fillS)} s`);
    }
    for (let round = 0; round < (opts.rounds ?? 1); round++) {
      // A fresh fake X per round: each round's timeline holds only its own posts.
      const fake = await startFakeX({ accounts: fakeAccounts, faultRate: 1, faultKinds: ['commit-then-reset'] });
      const proxy = opts.latencyMs ? await startLatencyProxy(fake.url, opts.latencyMs) : undefined;
      const lookupX = new TwitterXPort({ credentials, baseUrl: proxy?.url ?? fake.url, timeoutMs: 10_000 });
      try {
        const tag = `r${round}`;
        const t = performance.now();
        const setupErrors = await makeAmbiguous(redis, producer, prefix, fake, tag, opts.keys);
        result.setupS += (performance.now() - t) / 1000;
        if (setupErrors.length) {
          result.errors.push(...setupErrors);
          return result;
        }
        if (opts.overdueQueued) {
          // Due for reconciliation's lost-job check a minute ago; their jobs wait (no worker runs now).
          const scheduledAt = new Date(Date.now() - 120_000).toISOString();
          const statuses = new Map<string, number>();
          const backlog = requestsFor(`q${round}`, opts.overdueQueued).map((r) => ({ ...r, scheduledAt }));
          for (let i = 0; i < backlog.length; i += CHUNK)
            for (const r of await producer.enqueueMany(backlog.slice(i, i + CHUNK))) statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
          if (statuses.get('queued') !== opts.overdueQueued) result.errors.push(`overdue backlog: ${fmtCounts(statuses)}`);
        }
        if (round === 0) result.redisBytes = await prefixBytes(admin);

        // Passes until nothing is due (one, when the batch covers every key).
        for (let p = 0; p < 20; p++) {
          const before = fake.requests().length;
          counter.begin();
          const t0 = performance.now();
          const report = await reconcileOnce({
            ledger: producer.ledger,
            x: lookupX,
            queue: producer.queue,
            logger: silent,
            clock: () => Date.now() + LATER,
            settleWindowMs: SETTLE,
            unresolvedGraceMs: 15 * 60_000,
            batch,
          });
          const wallMs = performance.now() - t0;
          const { roundTrips } = counter.end();
          const gets = fake
            .requests()
            .slice(before)
            .filter((r) => r.method === 'GET').length;
          if (!report.ran) {
            result.errors.push('reconcileOnce did not run (lock held)');
            break;
          }
          if (report.examined === 0) break;
          result.passes.push({ report, gets, roundTrips, wallMs });
          if (report.examined < batch) break;
        }

        // Every key must now be sent, with the id of its post on X.
        const requests = requestsFor(tag, opts.keys);
        const records = await producer.ledger.getMany(requests.map((r) => keyId(r)));
        const idOf = new Map(fake.created().map((c) => [c.text, c.id]));
        const states = countBy(records, (r) => r?.state ?? 'missing');
        if (states.get('sent') !== opts.keys) result.errors.push(`after reconciliation: ${fmtCounts(states)}; expected ${opts.keys} sent`);
        const wrong = records.filter((r, i) => r?.state === 'sent' && r.tweetId !== idOf.get(requests[i]!.text)).length;
        if (wrong > 0) result.errors.push(`${wrong} keys attributed to another post than their own`);
        const posts = fake.requests().filter((r) => r.method === 'POST').length;
        if (posts !== opts.keys) result.errors.push(`the fake X got ${posts} POSTs for ${opts.keys} keys (a key was published again)`);
      } finally {
        lookupX.close();
        await proxy?.close();
        await fake.close();
      }
    }
    const passes = result.passes;
    const resolved = sum(passes.map((p) => p.report.outcomes.sent));
    const odd = sum(
      passes.map(
        (p) => p.report.outcomes.released + p.report.outcomes.expired + p.report.outcomes.unresolved + p.report.outcomes.stale + p.report.outcomes.requeued,
      ),
    );
    if (resolved !== opts.keys * (opts.rounds ?? 1)) result.errors.push(`passes resolved ${resolved} keys to sent, expected ${opts.keys * (opts.rounds ?? 1)}`);
    if (odd > 0) result.errors.push(`passes released/failed/refused/re-enqueued ${odd} keys`);
    const mismatch = passes.filter((p) => p.gets !== p.report.lookups).length;
    if (mismatch > 0) result.errors.push(`${mismatch} pass(es) counted other lookups than the fake X received`);
    return result;
  } finally {
    await producer.close();
    await dropPrefix(admin, prefix);
    await redis.quit();
  }

  async function prefixBytes(r: Redis): Promise<number> {
    // MEMORY USAGE over every key of the prefix: the ledger's size in Redis.
    let cursor = '0';
    let bytes = 0;
    const pattern = `\\{${prefix}\\}*`;
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      const pipeline = r.pipeline();
      for (const k of keys) pipeline.memory('USAGE', k, 'SAMPLES', '0');
      for (const [, v] of (await pipeline.exec()) ?? []) bytes += Number(v ?? 0);
    } while (cursor !== '0');
    return bytes;
  }
}

// ------------------------------------------------------------------ report

const ms = (v: number) => `${f0(v)} ms`;

interface Line {
  label: string;
  keys: number;
  ledger: string;
  batch: number;
  passes: number;
  lookups: number;
  roundTrips: number;
  wallMs: number;
  /** Per pass, medians over rounds (single-pass scenarios). */
  perPass: boolean;
  resolved: number;
}

/** Single-pass scenarios over rounds: medians; multi-pass: totals. */
function lineOf(r: ScenarioResult, rounds: number): Line {
  const parts = [r.ledgerKeys ? `${f0(r.ledgerKeys)} sent` : '', f0(r.keys), r.overdueQueued ? `${f0(r.overdueQueued)} queued` : '']
    .filter(Boolean)
    .join(' + ');
  const ledger = `${parts}${r.redisBytes ? ` (${mb(r.redisBytes, r.redisBytes >= 100 * 1_048_576 ? 0 : 1)} in Redis)` : ''}`;
  const perRound = r.passes.length / rounds;
  if (perRound <= 1) {
    return {
      label: r.label,
      keys: r.keys,
      ledger,
      batch: r.batch,
      passes: 1,
      perPass: true,
      lookups: median(r.passes.map((p) => p.gets)),
      roundTrips: median(r.passes.map((p) => p.roundTrips)),
      wallMs: median(r.passes.map((p) => p.wallMs)),
      resolved: median(r.passes.map((p) => p.report.outcomes.sent)),
    };
  }
  return {
    label: r.label,
    keys: r.keys,
    ledger,
    batch: r.batch,
    passes: r.passes.length,
    perPass: false,
    lookups: sum(r.passes.map((p) => p.gets)),
    roundTrips: sum(r.passes.map((p) => p.roundTrips)),
    wallMs: sum(r.passes.map((p) => p.wallMs)),
    resolved: sum(r.passes.map((p) => p.report.outcomes.sent)),
  };
}

const HEADER = [
  'scenario',
  'ambiguous keys',
  'ledger keys',
  'batch',
  'passes',
  'lookups (GETs at X)',
  'Redis round trips',
  'duration',
  'resolved (sent)',
  'per key',
];
const rowOf = (l: Line): Row => [
  l.label,
  f0(l.keys),
  l.ledger,
  f0(l.batch),
  String(l.passes),
  f0(l.lookups),
  f0(l.roundTrips),
  ms(l.wallMs),
  f0(l.resolved),
  `${f2(l.wallMs / Math.max(1, l.keys))} ms`,
];

async function main(): Promise<number> {
  const started = Date.now();
  const admin = newRedis();
  counter.ignore(admin);
  try {
    console.log(
      `reconciliation cost: ${K} ambiguous keys over ${ACCOUNTS} accounts; ledger of ${f0(LEDGER_SIZE)} sent keys; growth ${GROWTH.join(' / ')}; ${ROUNDS} round(s)`,
    );
    const results: ScenarioResult[] = [];
    const runOne = async (o: ScenarioOptions) => {
      const r = await scenario(admin, o);
      results.push(r);
      const l = lineOf(r, o.rounds ?? 1);
      console.log(
        `  ${o.label}: ${l.passes} pass(es), ${l.lookups} lookups, ${l.roundTrips} Redis round trips, ${ms(l.wallMs)}, ${l.resolved} resolved` +
          ` (setup ${f2(r.setupS)} s${r.passes.length > 1 ? `; passes: ${r.passes.map((p) => `${f0(p.report.examined)} keys ${ms(p.wallMs)}`).join(', ')}` : ''})${r.errors.length ? ` — ${r.errors.join('; ')}` : ''}`,
      );
      return r;
    };
    // Warm-up (JIT, connections, scripts loaded): not reported.
    const warm = await scenario(admin, { label: 'warm-up', keys: K });
    if (warm.errors.length) results.push(warm);
    const base = await runOne({ label: `${f0(K)} keys`, keys: K, rounds: ROUNDS });
    const big =
      LEDGER_SIZE > 0
        ? await runOne({ label: `${f0(K)} keys + ${f0(LEDGER_SIZE)} sent in the ledger`, keys: K, ledgerKeys: LEDGER_SIZE, rounds: ROUNDS })
        : undefined;
    const growth: ScenarioResult[] = [];
    for (const g of GROWTH) growth.push(g === K ? base : await runOne({ label: `${f0(g)} keys, one pass`, keys: g }));
    const biggest = Math.max(...GROWTH);
    const capped = biggest > DEFAULT_BATCH ? await runOne({ label: `${f0(biggest)} keys, default batch`, keys: biggest, batch: DEFAULT_BATCH }) : undefined;
    const behind =
      BACKLOG > 0
        ? await runOne({
            label: `${f0(K)} keys behind ${f0(BACKLOG)} overdue queued keys, default batch`,
            keys: K,
            batch: DEFAULT_BATCH,
            overdueQueued: BACKLOG,
          })
        : undefined;
    const slow = LATENCY > 0 ? await runOne({ label: `${f0(K)} keys, X latency ${LATENCY} ms`, keys: K, latencyMs: LATENCY }) : undefined;

    const errors = results.flatMap((r) => r.errors.map((e) => `${r.label}: ${e}`));
    if (errors.length > 0) {
      console.error('\nTHE FIGURES DO NOT MEASURE SUCCESSFUL WORK:');
      for (const e of errors) console.error(`  ${e}`);
      return 1;
    }

    const lBase = lineOf(base, ROUNDS);
    const lBig = big ? lineOf(big, ROUNDS) : undefined;
    const rows: Row[] = [
      rowOf(lBase),
      ...(lBig ? [rowOf(lBig)] : []),
      ...growth.filter((g) => g !== base).map((g) => rowOf(lineOf(g, 1))),
      ...(capped ? [rowOf(lineOf(capped, 1))] : []),
      ...(behind ? [rowOf(lineOf(behind, 1))] : []),
      ...(slow ? [rowOf(lineOf(slow, 1))] : []),
    ];
    console.log(`\n${textTable(rows, HEADER)}`);

    // Same keys, 100x the ledger: lookups must be equal, duration about equal.
    const sizeRatio = lBig ? lBig.wallMs / lBase.wallMs : NaN;
    const lookupsEqual = lBig ? lBig.lookups === lBase.lookups : true;
    const rtEqual = lBig ? lBig.roundTrips === lBase.roundTrips : true;
    const SIZE_TOLERANCE = 1.5;
    const sizeOk = lookupsEqual && rtEqual && !(sizeRatio > SIZE_TOLERANCE);
    const gl = growth.map((g) => lineOf(g, g === base ? ROUNDS : 1)).sort((a, b) => a.keys - b.keys);
    const growthText = gl.map((l) => `${f0(l.keys)} keys: ${ms(l.wallMs)}, ${f0(l.lookups)} lookups, ${f0(l.roundTrips)} round trips`).join('; ');
    const behindText = (() => {
      if (!behind) return undefined;
      const resolvedIn = behind.passes.map((p, i) => (p.report.outcomes.sent > 0 ? i + 1 : 0)).filter(Boolean);
      const queuedOnly = behind.passes.filter((p) => p.report.outcomes.sent === 0);
      const rtPerQueued = sum(queuedOnly.map((p) => p.roundTrips)) / Math.max(1, sum(queuedOnly.map((p) => p.report.examined)));
      const first = resolvedIn[0] ?? 0;
      const last = resolvedIn.at(-1) ?? 0;
      return {
        first,
        last,
        text:
          `ambiguous keys share the due index and the ${f0(DEFAULT_BATCH)}-key batch with queued keys past their due time (whose jobs are alive: a backlog, or posts held back by budgets): ` +
          `with ${f0(BACKLOG)} of them due earlier, ${f0(K)} ambiguous keys are resolved in pass${first === last ? ` ${first}` : `es ${first}-${last}`} of ${behind.passes.length} ` +
          `(~${f0((first - 1) * 30)} s later at the default 30 s interval); each overdue queued key costs ${f2(rtPerQueued)} Redis round trips per pass (job lookup, one after the other) and is looked at again a minute later`,
      };
    })();
    const verdicts = [
      lBig
        ? `ledger size: ${f0(LEDGER_SIZE)} extra sent keys change lookups ${lBase.lookups} -> ${lBig.lookups}, Redis round trips ${lBase.roundTrips} -> ${lBig.roundTrips}, duration ${ms(lBase.wallMs)} -> ${ms(lBig.wallMs)} (x${f2(sizeRatio)}; target: same lookups and round trips, duration within x${SIZE_TOLERANCE}): ${verdict(sizeOk)}`
        : 'ledger size: not measured (--ledger-size 0)',
      `growth with keys in doubt: ${growthText}`,
      ...(capped
        ? [
            `with the default batch of ${f0(DEFAULT_BATCH)} keys per pass, ${f0(capped.keys)} ambiguous keys take ${lineOf(capped, 1).passes} passes (${f0(lineOf(capped, 1).lookups)} lookups in all, against ${f0(lineOf(growth.find((g) => g.keys === capped.keys) ?? capped, 1).lookups)} for one pass over all of them): at the default 30 s interval the last key waits ~${f0((lineOf(capped, 1).passes - 1) * 30)} s longer than the first`,
          ]
        : []),
      ...(behindText ? [behindText.text] : []),
      ...(slow
        ? [
            `lookups run one after the other: with X answering in ${LATENCY} ms, a pass over ${f0(K)} keys on ${ACCOUNTS} accounts takes ${ms(lineOf(slow, 1).wallMs)} (~${ACCOUNTS} × ${LATENCY} ms)`,
          ]
        : []),
    ];
    for (const v of verdicts) console.log(v);

    const figures: Figure[] = [
      {
        name: `reconcile: one pass over ${f0(K)} ambiguous keys / ${ACCOUNTS} accounts`,
        value: `${ms(lBase.wallMs)}, ${f0(lBase.lookups)} lookups, ${f0(lBase.roundTrips)} Redis round trips, ${f0(lBase.resolved)} resolved`,
        target: '',
        verdict: '',
      },
      ...(lBig
        ? [
            {
              name: `reconcile: same pass with ${f0(LEDGER_SIZE)} sent keys in the ledger`,
              value: `${ms(lBig.wallMs)} (x${f2(sizeRatio)}), ${f0(lBig.lookups)} lookups, ${f0(lBig.roundTrips)} round trips`,
              target: `same lookups and round trips, duration within x${SIZE_TOLERANCE}`,
              verdict: verdict(sizeOk),
            },
          ]
        : []),
      {
        name: 'reconcile: growth with ambiguous keys',
        value: gl.map((l) => `${f0(l.keys)}: ${ms(l.wallMs)} / ${f0(l.lookups)} lookups`).join('; '),
        target: '',
        verdict: '',
      },
      ...(capped
        ? [
            {
              name: `reconcile: ${f0(capped.keys)} keys at the default batch (${f0(DEFAULT_BATCH)})`,
              value: `${lineOf(capped, 1).passes} passes, ${f0(lineOf(capped, 1).lookups)} lookups`,
              target: '',
              verdict: '' as const,
            },
          ]
        : []),
      ...(behindText
        ? [
            {
              name: `reconcile: ${f0(K)} ambiguous keys behind ${f0(BACKLOG)} overdue queued keys`,
              value: `resolved in pass ${behindText.first}${behindText.last !== behindText.first ? `-${behindText.last}` : ''} (~${f0((behindText.first - 1) * 30)} s at the 30 s interval)`,
              target: '',
              verdict: '' as const,
            },
          ]
        : []),
      ...(slow
        ? [{ name: `reconcile: pass over ${f0(K)} keys with X latency ${LATENCY} ms`, value: ms(lineOf(slow, 1).wallMs), target: '', verdict: '' as const }]
        : []),
    ];
    const markdown = `## Reconciliation cost (\`bench/reconcile-cost.ts\`)

What one \`reconcileOnce\` pass costs, and what it grows with. Ambiguous keys are made for real:
the fake X runs with fault rate 1 and kind \`commit-then-reset\` (the post is created, then the
connection is reset), the keys go through \`enqueueMany\` and an in-process publish worker calling
the real \`TwitterXPort\` over HTTP, so each key ends \`ambiguous\` with its post on X, over
${ACCOUNTS} accounts. The pass gets a clock moved past the settle window (${f0(SETTLE / 1000)} s) and is timed with the
wall clock. Lookups = GET requests the fake X received during the pass (equal to the pass's own
count in every run); Redis round trips = commands and pipelines this process sent during the pass.
The ${f0(LEDGER_SIZE)} \`sent\` keys are written through the public Ledger API (\`registerMany\`, \`claim\`,
\`settle\`) on the same ${ACCOUNTS} accounts. Rows "${f0(K)} keys" are medians of ${ROUNDS} rounds, each on a fresh fake X.
"one pass" rows set \`batch\` to the number of keys; "default batch" rows keep \`reconcileOnce\`'s default
of ${f0(DEFAULT_BATCH)} keys per pass and run passes until nothing is due (durations and counts are totals).${
      BACKLOG > 0
        ? ` The
"overdue queued" row adds ${f0(BACKLOG)} keys enqueued with a \`scheduledAt\` two minutes ago and no worker running:
\`queued\` keys past their due time whose jobs are alive, as posts held back by a budget are (their
jobs are delayed to the next window; their due time for reconciliation stays \`scheduledAt\` + 1 min).`
        : ''
    }

${mdTable(rows, HEADER)}

${verdicts.map((v) => `- ${v}`).join('\n')}
- Checks passed: every key became \`ambiguous\` with exactly one post on the fake X, and the pass(es)
  resolved every key to \`sent\` with that post's id; no key was released, failed or published again.
- Why the ledger's size does not matter: a pass reads the \`due\` sorted set (\`ZRANGEBYSCORE … LIMIT
  batch\`), which holds only unresolved keys (a key leaves it when it becomes \`sent\` or \`failed\`),
  then \`MGET\`s those records; lookups are one paged timeline read per account with keys in doubt.
`;
    await writeReport(args.report, {
      bench: 'reconcile-cost',
      title: 'Reconciliation cost',
      command: commandLine('reconcile-cost.js'),
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
