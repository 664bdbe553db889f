/**
 * The benchmark suite: every benchmark in sequence, each as its own process,
 * then one summary of every figure against its target.
 *
 *   npm run build && npm run bench -- [--write-docs] [--only overhead,burst,reconcile-cost,memory,thread,floor,api,durability,media] [--quick]
 *
 * Each child gets `--report FILE` and writes its figures and its Markdown
 * section there; with `--write-docs` the suite writes docs/benchmarks.md from
 * them (the suite owns that file), with the command, the machine, the date
 * and every figure with its target and verdict. A benchmark that exits
 * non-zero measured broken work: the suite then reports it, writes nothing
 * and exits 1. `--quick` runs small sizes for a smoke test (not for docs).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { newRedis, REDIS_URL } from '../test/support/redis.js';
import { type BenchReport, type Figure, machine, mdTable, redisVersion, type Row, run, secs, shellLine, textTable, versionOf } from './common.js';

interface Bench {
  readonly name: string;
  readonly script: string;
  readonly nodeFlags: readonly string[];
  readonly args: readonly string[];
  readonly quickArgs: readonly string[];
  /** Items of the benchmark list that it covers. */
  readonly items: string;
}

/** The sides of manual-processing.js that measure the floor (the suite runs only those). */
const FLOOR_SIDES = ['bare', 'xactly', 'xactly, empty scripts', 'xactly, no ledger calls'].flatMap((side) => ['--side', side]);

const BENCHES: readonly Bench[] = [
  {
    name: 'overhead',
    script: 'overhead.js',
    nodeFlags: [],
    args: [],
    quickArgs: ['--jobs', '2000', '--warmup', '200', '--rounds', '1'],
    items: '1, 2, 4, #16',
  },
  { name: 'burst', script: 'burst.js', nodeFlags: [], args: [], quickArgs: ['--posts', '1000', '--accounts', '100', '--rounds', '1'], items: '3, #16' },
  {
    name: 'reconcile-cost',
    script: 'reconcile-cost.js',
    nodeFlags: [],
    args: [],
    quickArgs: ['--ambiguous', '200', '--ledger-size', '5000', '--growth', '100,200,1500', '--rounds', '1', '--latency-ms', '50'],
    items: '5',
  },
  { name: 'memory', script: 'memory.js', nodeFlags: ['--expose-gc'], args: [], quickArgs: ['--batch-size', '2000'], items: '6' },
  {
    name: 'thread',
    script: 'thread.js',
    nodeFlags: [],
    args: [],
    quickArgs: ['--runs', '2', '--concurrent', '5', '--concurrent-rounds', '1'],
    items: '#13',
  },
  {
    name: 'floor',
    script: 'manual-processing.js',
    nodeFlags: [],
    args: ['--jobs', '5000', '--rounds', '3', ...FLOOR_SIDES],
    quickArgs: ['--jobs', '500', '--rounds', '1', ...FLOOR_SIDES],
    items: '#16',
  },
  { name: 'api', script: 'api.js', nodeFlags: [], args: [], quickArgs: ['--requests', '20', '--rounds', '1'], items: '#14' },
  { name: 'durability', script: 'durability.js', nodeFlags: [], args: ['--rounds', '5'], quickArgs: ['--quick'], items: '#15' },
  { name: 'media', script: 'media.js', nodeFlags: ['--expose-gc'], args: [], quickArgs: ['--mb', '32', '--rounds', '1'], items: '#17' },
];

/**
 * Issue item of a figure, from its name ("burst: ..."): the items of "Proof
 * under faults and at scale" in their order, then issue #13's and #14's benchmarks.
 */
const ITEMS: readonly (readonly [prefix: string, item: string])[] = [
  ['overhead', '1'],
  ['round trips', '2'],
  ['burst', '3'],
  ['enqueue', '4'],
  ['floor', '#16'],
  ['reconcile', '5'],
  ['memory', '6'],
  ['thread', '#13'],
  ['api', '#14'],
  ['events', '#14'],
  ['durability', '#15'],
  ['media', '#17'],
];
const itemIndex = (f: Figure) => {
  const i = ITEMS.findIndex(([prefix]) => prefix === f.name.slice(0, f.name.indexOf(':')));
  return i < 0 ? ITEMS.length : i;
};
const itemOf = (f: Figure) => ITEMS[itemIndex(f)]?.[1] ?? '?';

const { values: args } = parseArgs({
  options: {
    'write-docs': { type: 'boolean', default: false },
    only: { type: 'string' },
    quick: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log(`usage: node dist/bench/suite.js [--write-docs] [--only ${BENCHES.map((b) => b.name).join(',')}] [--quick]`);
  process.exit(0);
}
const only = args.only?.split(',').filter(Boolean);
const unknown = only?.filter((n) => !BENCHES.some((b) => b.name === n)) ?? [];
if (unknown.length) {
  console.error(`--only: unknown benchmark(s) ${unknown.join(', ')}; known: ${BENCHES.map((b) => b.name).join(', ')}`);
  process.exit(2);
}
if (args['write-docs'] && (args.quick || only)) {
  console.error('--write-docs needs the whole suite at full size (no --quick, no --only): docs/benchmarks.md holds every figure of one run');
  process.exit(2);
}
const selected = BENCHES.filter((b) => !only || only.includes(b.name));
const DIST = fileURLToPath(new URL('.', import.meta.url));
const CHILD_TIMEOUT_MS = 15 * 60_000;

interface Outcome {
  bench: Bench;
  code: number | null;
  report?: BenchReport;
  ms: number;
  command: string;
}

function runChild(b: Bench, reportFile: string): Promise<Outcome> {
  const childArgs = [...(args.quick ? b.quickArgs : b.args), '--report', reportFile];
  const command = shellLine(['node', ...b.nodeFlags, `dist/bench/${b.script}`, ...childArgs.slice(0, -2)]);
  console.log(`\n======== ${b.name}: ${command}\n`);
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...b.nodeFlags, join(DIST, b.script), ...childArgs], { stdio: 'inherit' });
    const timer = setTimeout(() => {
      console.error(`${b.name}: still running after ${CHILD_TIMEOUT_MS / 60_000} min; stopping it`);
      child.kill('SIGTERM');
    }, CHILD_TIMEOUT_MS);
    child.on('exit', (code) => {
      clearTimeout(timer);
      const done = (report?: BenchReport) => resolve({ bench: b, code, ms: Date.now() - started, command, ...(report && { report }) });
      // No report file means no report; a report that does not parse is logged and counts as none.
      void readFile(reportFile, 'utf8')
        .then(
          (t) => JSON.parse(t) as BenchReport,
          () => undefined,
        )
        .then(done, (err: unknown) => {
          console.error(`${b.name}: unreadable report ${reportFile}:`, err);
          done();
        });
    });
  });
}

const minutes = (ms: number) => `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;

async function main(): Promise<number> {
  const started = Date.now();
  const startedAt = new Date().toISOString();
  const loadAvg = os.loadavg();
  const redis = newRedis();
  let version: string;
  try {
    version = await redisVersion(redis);
  } finally {
    await redis.quit();
  }
  const dir = await mkdtemp(join(os.tmpdir(), 'xactly-bench-'));
  const outcomes: Outcome[] = [];
  try {
    for (const b of selected) outcomes.push(await runChild(b, join(dir, `${b.name}.json`)));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const totalMs = Date.now() - started;

  const failed = outcomes.filter((o) => o.code !== 0 || !o.report);
  const figures = outcomes
    .flatMap((o) => o.report?.figures ?? [])
    .map((f, i) => ({ f, i }))
    .sort((a, b) => itemIndex(a.f) - itemIndex(b.f) || a.i - b.i)
    .map(({ f }) => f);
  const rows: Row[] = figures.map((f) => [itemOf(f), f.name, f.value, f.target || '—', f.verdict || 'context']);
  const header = ['#', 'figure', 'value', 'target', 'verdict'];
  console.log(`\n======== summary (${minutes(totalMs)})\n`);
  console.log(
    textTable(
      outcomes.map((o) => [o.bench.name, o.code === 0 && o.report ? 'ok' : `FAILED (exit ${o.code})`, secs(o.ms, 1)]),
      ['benchmark', 'result', 'time'],
    ),
  );
  console.log(`\n${textTable(rows, header, true)}`);
  if (failed.length > 0) {
    console.error(
      `\n${failed.map((o) => o.bench.name).join(', ')} failed: their work was wrong or they did not finish; see their output above.${args['write-docs'] ? ' docs/benchmarks.md not written.' : ''}`,
    );
    return 1;
  }
  if (!args['write-docs']) return 0;

  const cmd = `node dist/bench/suite.js --write-docs`;
  const libs = `bullmq ${await versionOf('bullmq')}, ioredis ${await versionOf('ioredis')}, twitter-api-v2 ${await versionOf('twitter-api-v2')}`;
  const env: Row[] = [
    ['machine', machine()],
    ['Redis', `${version} at ${REDIS_URL.replace(/\/\/[^@]*@/, '//')}`],
    ['Node', process.version],
    ['libraries', libs],
    ['date', startedAt],
    ['load average at start (1/5/15 min)', loadAvg.map((l) => l.toFixed(2)).join(' / ')],
    ['suite run time', minutes(totalMs)],
  ];
  const commands: Row[] = outcomes.map((o) => [o.bench.name, o.bench.items, `\`${o.report!.command}\``, secs(o.ms, 1)]);
  const doc = `# Benchmarks

Every figure on this page comes from one run of the benchmark suite:

\`\`\`sh
npm run build && npm run bench -- --write-docs    # ${cmd}
\`\`\`

The suite runs each benchmark as its own process, one after the other. Each uses its own random
Redis prefixes and deletes their keys afterwards, talks only to 127.0.0.1, and checks its own work:
a benchmark whose work was wrong (a key not sent, a post published twice or early, a job failed)
exits 1, and then the suite writes nothing. Benchmarks print figures against targets; they do not
assert timings. This is a shared 2-core machine: wall-clock figures move with whatever else runs.

## Machine

${mdTable(env, ['', ''], true)}

## Summary

Items 1–6 are those of the benchmark list in the issue "Proof under faults and at scale"; #13 is the
benchmark of issue #13 (threads), #14 that of issue #14's HTTP API, #15 that of issue #15's claim durability, #16 the targets of issue #16 (speed against bare BullMQ), #17 that of issue #17's media uploads. "context" figures have no target of their own.
Where xactly's CPU goes, what was tried to cut it and why the #16 targets are out of reach: [performance.md](performance.md).

${mdTable(rows, header, true)}

## Commands

${mdTable(commands, ['benchmark', 'items', 'command', 'run time'], true)}

${outcomes.map((o) => o.report!.markdown.trim()).join('\n\n')}
`;
  await writeFile(new URL('../../docs/benchmarks.md', import.meta.url), doc);
  console.log('\nwrote docs/benchmarks.md');
  return 0;
}

run(main);
