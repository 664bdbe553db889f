/**
 * Chaos suite: exactly-once under every X fault class, worker kills and
 * restarts, racing producers and re-enqueues, checked against the fake X's
 * ground truth. Everything runs on 127.0.0.1.
 *
 *   npm run build && node dist/bench/chaos.js [--keys 300] [--accounts 20] [--workers 3]
 *     [--kill-every-s 3] [--term-share 0.25] [--chaos-s S] [--fault-rate 0.3] [--lag-max-ms 20000]
 *     [--settle-ms lag+timeout+3000] [--x-timeout-ms 2000] [--reconcile-ms 1000] [--concurrency 20]
 *     [--spread-s 10] [--deadline-s 600] [--dup-share 0.2] [--calendar-share 0.15] [--seed S] [--timeout-s 600]
 *     [--x-duplicate-check] [--fsync-bench N] [--keep-temp]
 *
 * Exit 0 when every key is `sent` once on X or `failed` with a reason and
 * nothing live; 1 on any violation (printed with the keys), 3 on timeout,
 * 2 on bad arguments. The last line is `CHAOS-SUMMARY {json}`.
 */
import { parseArgs } from 'node:util';
import { REDIS_URL } from '../test/support/redis.js';
import { fsyncCompare, renderFsync } from './chaos/fsync.js';
import { DEFAULTS, settleFor } from './chaos/options.js';
import { renderReport, summaryLine } from './chaos/report.js';
import { runChaos } from './chaos/run.js';

const USAGE = `usage: node dist/bench/chaos.js [--keys N=${DEFAULTS.keys}] [--accounts M=${DEFAULTS.accounts}] [--workers K=${DEFAULTS.workers}]
  [--kill-every-s T=${DEFAULTS.killEveryS}] [--term-share F=${DEFAULTS.termShare}] [--chaos-s S (default: until converged)]
  [--fault-rate R=${DEFAULTS.faultRate}] [--fault-kinds k1,k2] [--lag-max-ms L=${DEFAULTS.lagMaxMs}] [--settle-ms W=L+timeout+3000]
  [--x-timeout-ms ${DEFAULTS.xTimeoutMs}] [--reconcile-ms ${DEFAULTS.reconcileMs}] [--concurrency ${DEFAULTS.concurrency}]
  [--spread-s ${DEFAULTS.spreadS}] [--deadline-s ${DEFAULTS.deadlineS}] [--dup-share ${DEFAULTS.dupShare}] [--calendar-share ${DEFAULTS.calendarShare}] [--seed S] [--timeout-s ${DEFAULTS.timeoutS}]
  [--x-duplicate-check] [--kind-x (X without its 2026 behaviours)] [--allow-worker-crashes] [--fsync-bench N=0] [--keep-temp]
Environment: REDIS_URL (default redis://127.0.0.1:6379; must be a local Redis).`;

const { values: a } = parseArgs({
  options: {
    keys: { type: 'string' },
    accounts: { type: 'string' },
    workers: { type: 'string' },
    'kill-every-s': { type: 'string' },
    'term-share': { type: 'string' },
    'chaos-s': { type: 'string' },
    'fault-rate': { type: 'string' },
    'fault-kinds': { type: 'string' },
    'lag-max-ms': { type: 'string' },
    'settle-ms': { type: 'string' },
    'x-timeout-ms': { type: 'string' },
    'reconcile-ms': { type: 'string' },
    concurrency: { type: 'string' },
    'spread-s': { type: 'string' },
    'deadline-s': { type: 'string' },
    'dup-share': { type: 'string' },
    'calendar-share': { type: 'string' },
    seed: { type: 'string' },
    'timeout-s': { type: 'string' },
    'x-duplicate-check': { type: 'boolean' },
    'kind-x': { type: 'boolean' },
    'allow-worker-crashes': { type: 'boolean' },
    'fsync-bench': { type: 'string' },
    'keep-temp': { type: 'boolean' },
    help: { type: 'boolean' },
  },
});
if (a.help) {
  console.log(USAGE);
  process.exit(0);
}

function num(name: string, raw: string | undefined, dflt: number, check: (n: number) => boolean, what: string): number {
  if (raw === undefined) return dflt;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n) || !check(n)) {
    console.error(`--${name} must be ${what} (got "${raw}")\n\n${USAGE}`);
    process.exit(2);
  }
  return n;
}
const int = (min: number) => (n: number) => Number.isInteger(n) && n >= min;
const share = (n: number) => n >= 0 && n <= 1;

const redisUrl = REDIS_URL;
const host = new URL(redisUrl).hostname;
if (host !== '127.0.0.1' && host !== 'localhost' && host !== '::1') {
  console.error(`chaos runs against a local Redis only (REDIS_URL host is ${host})`);
  process.exit(2);
}
const lagMaxMs = num('lag-max-ms', a['lag-max-ms'], DEFAULTS.lagMaxMs, int(0), 'an integer >= 0');
const xTimeoutMs = num('x-timeout-ms', a['x-timeout-ms'], DEFAULTS.xTimeoutMs, int(100), 'an integer >= 100');
const kinds = a['fault-kinds']
  ?.split(',')
  .map((s) => s.trim())
  .filter(Boolean);

const options = {
  keys: num('keys', a.keys, DEFAULTS.keys, int(1), 'an integer >= 1'),
  accounts: num('accounts', a.accounts, DEFAULTS.accounts, int(1), 'an integer >= 1'),
  workers: num('workers', a.workers, DEFAULTS.workers, int(1), 'an integer >= 1'),
  killEveryS: num('kill-every-s', a['kill-every-s'], DEFAULTS.killEveryS, (n) => n >= 0, 'a number >= 0 (0 = no kills)'),
  termShare: num('term-share', a['term-share'], DEFAULTS.termShare, share, 'within 0..1'),
  ...(a['chaos-s'] !== undefined && { chaosS: num('chaos-s', a['chaos-s'], 0, (n) => n >= 0, 'a number >= 0') }),
  faultRate: num('fault-rate', a['fault-rate'], DEFAULTS.faultRate, share, 'within 0..1'),
  ...(kinds && { faultKinds: kinds as never }),
  lagMaxMs,
  xTimeoutMs,
  settleMs: num(
    'settle-ms',
    a['settle-ms'],
    settleFor(lagMaxMs, xTimeoutMs),
    (n) => int(1)(n) && n > lagMaxMs + xTimeoutMs,
    `an integer > lag + timeout (${lagMaxMs + xTimeoutMs})`,
  ),
  reconcileMs: num('reconcile-ms', a['reconcile-ms'], DEFAULTS.reconcileMs, int(100), 'an integer >= 100'),
  concurrency: num('concurrency', a.concurrency, DEFAULTS.concurrency, int(1), 'an integer >= 1'),
  spreadS: num('spread-s', a['spread-s'], DEFAULTS.spreadS, (n) => n >= 0, 'a number >= 0'),
  deadlineS: num('deadline-s', a['deadline-s'], DEFAULTS.deadlineS, (n) => n > 0, 'a number > 0'),
  dupShare: num('dup-share', a['dup-share'], DEFAULTS.dupShare, share, 'within 0..1'),
  calendarShare: num('calendar-share', a['calendar-share'], DEFAULTS.calendarShare, share, 'within 0..1'),
  seed: num('seed', a.seed, Math.floor(Math.random() * 2 ** 31), int(0), 'an integer >= 0'),
  timeoutS: num('timeout-s', a['timeout-s'], DEFAULTS.timeoutS, (n) => n > 0, 'a number > 0'),
  xDuplicateCheck: a['x-duplicate-check'] ?? false,
  realX: !(a['kind-x'] ?? false),
  allowWorkerCrashes: a['allow-worker-crashes'] ?? false,
  keepTemp: a['keep-temp'] ?? false,
  redisUrl,
  log: (line: string) => console.log(`[chaos ${new Date().toISOString().slice(11, 19)}] ${line}`),
};
const fsyncKeys = num('fsync-bench', a['fsync-bench'], 0, int(0), 'an integer >= 0 (0 = skip)');

// Interrupted: exit at once; runChaos's exit hook SIGKILLs the workers and the
// fake X exits when its stdin closes. The run's Redis prefix is left behind
// (chaos-r…; delete it with redis-cli --scan --pattern '{chaos-r…}*').
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    console.error(`chaos: ${sig}: killing the workers and exiting`);
    process.exit(130);
  });
}

try {
  options.log(`seed ${options.seed} (replay with --seed ${options.seed})`);
  // Overall bound, cleanup included: a run that cannot even clean up is killed.
  const hardStop = setTimeout(
    () => {
      console.error('chaos: hard timeout (run + 120 s); exiting');
      process.exit(3);
    },
    (options.timeoutS + 120) * 1_000,
  );
  hardStop.unref();
  const report = await runChaos(options);
  console.log('\n' + renderReport(report));
  if (fsyncKeys > 0) {
    console.log(`\nappendfsync cost: fresh local redis-servers, ${fsyncKeys} keys enqueued, then claimed + settled (medians of 3 rounds):`);
    console.log(
      renderFsync([...(await fsyncCompare(fsyncKeys, { concurrency: 20 })), ...(await fsyncCompare(Math.min(fsyncKeys, 1_000), { concurrency: 1 }))]),
    );
  }
  console.log('\n' + summaryLine(report));
  process.exit(report.ok ? 0 : report.timedOut ? 3 : 1);
} catch (err) {
  console.error(`chaos: ${(err as Error)?.stack ?? String(err)}`);
  process.exit(1);
}
