/**
 * HTTP API throughput (issue #14): `POST /v1/posts` with 100-item batches
 * against `producer.enqueueMany` of the same batches, in the same run, on
 * the same Redis. Target: the API sustains at least 0.7× enqueueMany's
 * posts per second.
 *
 *   npm run build && npm run bench:api -- [--batch 100] [--requests 200] [--connections 8] [--rounds 5] [--report FILE]
 *
 * - API: the shipped `xactly api` (a process of its own, as deployed, a
 *   token made with `xactly api-token create`'s code path), loaded by
 *   autocannon from this process with `--connections` keep-alive connections,
 *   `--requests` requests of `--batch` new keys each (every key new, so each
 *   request does the full work: validation, ledger registration, BullMQ
 *   addBulk). Each answer must be 200 with every item `queued` (201).
 * - enqueueMany: the same number of batches through `createProducer().enqueueMany`
 *   in this process, `--connections` at a time.
 * Rounds alternate (enqueueMany, API, enqueueMany, ...) after one warm-up of
 * each, so both see the same Redis as it fills; the figure is the median of
 * the rounds' ratios (each pair runs back to back, under the same load). Posts are scheduled a day ahead: nothing is published. Afterwards
 * the ledger must hold exactly the keys sent, else the run is void (exit 1).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { createToken } from '../src/api/tokens.js';
import { createProducer } from '../src/app.js';
import { ledgerKeys } from '../src/ledger/keys.js';
import { freePort } from '../test/support/ports.js';
import { dropPrefix, newRedis, REDIS_URL, uniquePrefix } from '../test/support/redis.js';
import { median } from '../test/support/stats.js';
import { CLI } from '../test/support/workers.js';
import { commandLine, f0, f2, type Figure, intOption, mdTable, rand, type Row, run, textTable, verdict, writeReport } from './common.js';

const TARGET = 0.7;

const { values: args } = parseArgs({
  options: {
    batch: { type: 'string', default: '100' },
    requests: { type: 'string', default: '200' },
    connections: { type: 'string', default: '8' },
    rounds: { type: 'string', default: '5' },
    report: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log('usage: node dist/bench/api.js [--batch 100] [--requests 200] [--connections 8] [--rounds 5] [--report FILE]');
  process.exit(0);
}
const BATCH = intOption('batch', args.batch, 1);
const REQUESTS = intOption('requests', args.requests, 1);
const CONNECTIONS = intOption('connections', args.connections, 1);
const ROUNDS = intOption('rounds', args.rounds, 1);
const COMMAND = commandLine('api.js');
const RUN = rand();
const DAY_AHEAD = new Date(Date.now() + 24 * 3_600_000).toISOString();

/** `REQUESTS` batches of `BATCH` new keys, labelled so that no two rounds share one. */
function batchesOf(label: string): object[][] {
  return Array.from({ length: REQUESTS }, (_, r) =>
    Array.from({ length: BATCH }, (_, i) => ({
      slotId: `${label}-${r}`,
      postId: `p${i}`,
      accountId: `acc-${i % 20}`,
      kind: 'post',
      text: `api bench ${RUN} ${label} ${r}/${i} https://example.com/a/${r}-${i}`,
      scheduledAt: DAY_AHEAD,
    })),
  );
}

interface Round {
  readonly side: 'enqueueMany' | 'api';
  readonly ms: number;
  readonly posts: number;
  readonly p50Ms?: number;
  readonly p99Ms?: number;
}

const postsPerSec = (r: Round) => (r.posts * 1000) / r.ms;

async function startApiProcess(prefix: string, tokensFile: string): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn(process.execPath, [CLI, 'api'], {
    env: {
      ...process.env,
      REDIS_URL,
      XACTLY_PREFIX: prefix,
      XACTLY_API_TOKENS_FILE: tokensFile,
      XACTLY_ACCOUNTS_FILE: '',
      API_PORT: String(port),
      API_RATE_LIMIT: String(1_000_000_000),
      API_MAX_BATCH: String(Math.max(1_000, BATCH)),
      API_BODY_LIMIT_BYTES: String(64 * 1_048_576),
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const first = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`xactly api exited (${code}) before listening; is dist/ built (npm run build)?`)));
  });
  if (!first.startsWith('api on ')) throw new Error(`xactly api said ${first}`);
  return { url: `http://127.0.0.1:${port}`, child };
}

async function main(): Promise<number> {
  const started = performance.now();
  const prefix = uniquePrefix('bench-api');
  const redis = newRedis();
  const producer = createProducer({ connection: redis, prefix });
  const dir = await mkdtemp(join(tmpdir(), 'xactly-bench-api-'));
  let api: { url: string; child: ChildProcess } | undefined;
  const errors: string[] = [];
  let expectedKeys = 0;
  try {
    const token = await createToken(join(dir, 'tokens.json'), 'bench');
    api = await startApiProcess(prefix, join(dir, 'tokens.json'));
    const { url } = api;

    const direct = async (label: string): Promise<Round> => {
      const batches = batchesOf(label);
      let next = 0;
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: CONNECTIONS }, async () => {
          for (let b = next++; b < batches.length; b = next++) {
            const results = await producer.enqueueMany(batches[b]!);
            const notQueued = results.filter((x) => x.status !== 'queued');
            if (notQueued.length) errors.push(`enqueueMany ${label}: ${notQueued.length} not queued (${notQueued[0]!.status})`);
          }
        }),
      );
      expectedKeys += REQUESTS * BATCH;
      return { side: 'enqueueMany', ms: performance.now() - t0, posts: REQUESTS * BATCH };
    };

    const overHttp = async (label: string): Promise<Round> => {
      const bodies = batchesOf(label).map((b) => JSON.stringify(b));
      let next = 0;
      let bad = 0;
      let firstBad: string | undefined;
      // autocannon notices it is done only at its next sample tick (whole seconds by default): time the run to its last answer instead.
      let lastAnswerAt = 0;
      const t0 = performance.now();
      const result = await autocannon({
        url,
        connections: CONNECTIONS,
        amount: REQUESTS,
        timeout: 60,
        requests: [
          {
            method: 'POST',
            path: '/v1/posts',
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
            setupRequest: (req) => ({ ...req, body: bodies[next++ % bodies.length] }),
            onResponse: (status, body) => {
              lastAnswerAt = performance.now();
              const queued = body.split('"code":201').length - 1;
              if (status !== 200 || queued !== BATCH) {
                bad++;
                firstBad ??= `${status} ${body.slice(0, 200)}`;
              }
            },
          },
        ],
      });
      const ms = (lastAnswerAt || performance.now()) - t0;
      if (result.errors || result.timeouts || result.non2xx || bad) {
        errors.push(
          `API ${label}: ${result.errors} errors, ${result.timeouts} timeouts, ${result.non2xx} non-2xx, ${bad} answers not all queued (${firstBad ?? '-'})`,
        );
      }
      if (next !== REQUESTS) errors.push(`API ${label}: ${next} requests sent, expected ${REQUESTS}`);
      expectedKeys += REQUESTS * BATCH;
      return { side: 'api', ms, posts: REQUESTS * BATCH, p50Ms: result.latency.p50, p99Ms: result.latency.p99 };
    };

    console.log(`warm-up: ${REQUESTS} batches of ${BATCH} each way`);
    await direct('warm-direct');
    await overHttp('warm-api');
    const rounds: Round[] = [];
    for (let i = 1; i <= ROUNDS; i++) {
      rounds.push(await direct(`d${i}`));
      rounds.push(await overHttp(`a${i}`));
      const [d, a] = rounds.slice(-2) as [Round, Round];
      console.log(
        `round ${i}: enqueueMany ${f0(postsPerSec(d))} posts/s, API ${f0(postsPerSec(a))} posts/s (p50 ${a.p50Ms} ms, p99 ${a.p99Ms} ms per request)`,
      );
    }

    const held = await redis.zcard(ledgerKeys(prefix).index);
    if (held !== expectedKeys) errors.push(`the ledger holds ${held} keys, expected ${expectedKeys}`);
    if (errors.length) {
      console.error('\nTHE FIGURES WOULD NOT MEASURE SUCCESSFUL WORK:');
      for (const e of errors.slice(0, 10)) console.error(`  ${e}`);
      return 1;
    }

    const directRate = median(rounds.filter((r) => r.side === 'enqueueMany').map(postsPerSec));
    const apiRounds = rounds.filter((r) => r.side === 'api');
    const apiRate = median(apiRounds.map(postsPerSec));
    // Each round's pair ran back to back under the same load; the median of their ratios is the figure.
    const ratios = apiRounds.map((a, i) => postsPerSec(a) / postsPerSec(rounds.filter((r) => r.side === 'enqueueMany')[i]!));
    const ratio = median(ratios);
    const p50 = median(apiRounds.map((r) => r.p50Ms!));
    const p99 = median(apiRounds.map((r) => r.p99Ms!));
    const figures: Figure[] = [
      {
        name: `api: POST /v1/posts, ${BATCH}-item batches, vs enqueueMany`,
        value: `${f2(ratio)} (median round: ${f0(apiRate)} vs ${f0(directRate)} posts/s)`,
        target: `>= ${TARGET}`,
        verdict: verdict(ratio >= TARGET),
      },
      { name: `api: request latency p50 / p99 (${BATCH} items, ${CONNECTIONS} connections)`, value: `${p50} ms / ${p99} ms`, target: '', verdict: '' },
    ];
    const rows: Row[] = rounds.map((r, i) => [
      String(Math.floor(i / 2) + 1),
      r.side,
      f0(postsPerSec(r)),
      `${(r.ms / 1000).toFixed(2)} s`,
      r.p50Ms === undefined ? '' : `${r.p50Ms} / ${r.p99Ms} ms`,
      r.side === 'api' ? f2(ratios[Math.floor(i / 2)]!) : '',
    ]);
    const header = ['round', 'side', 'posts/s', 'time', 'request p50 / p99', 'API / enqueueMany'];
    console.log(`\n${textTable(rows, header)}\n`);
    console.log(textTable(figures.map((f) => [f.name, f.value, f.target, f.verdict])));
    const markdown = `## HTTP API: POST /v1/posts vs enqueueMany (\`bench/api.ts\`)

\`${COMMAND}\`

The shipped \`xactly api\` in a process of its own, loaded by autocannon with ${CONNECTIONS} keep-alive
connections: ${REQUESTS} requests of ${BATCH} new keys each per round (every item must come back
\`queued\`). Against it, the same number of ${BATCH}-key batches through \`createProducer().enqueueMany\`
in the benchmark process, ${CONNECTIONS} at a time. Rounds alternate after one warm-up of each; the
figure is the median of the rounds' ratios (each pair ran back to back, under the same load). Posts are scheduled a day ahead (nothing is published); the ledger must
hold exactly the keys sent. Both sides share this 2-core machine with Redis (and the API side with
autocannon).

${mdTable(
  figures.map((f) => [f.name, f.value, f.target || '—', f.verdict || 'context']),
  ['figure', 'value', 'target', 'verdict'],
  true,
)}

${mdTable(rows, header)}
`;
    await writeReport(args.report, {
      bench: 'api',
      title: 'HTTP API',
      command: COMMAND,
      figures,
      markdown,
      durationMs: performance.now() - started,
    });
    return 0;
  } finally {
    if (api && api.child.exitCode === null) {
      const exited = new Promise((resolve) => api!.child.once('exit', resolve));
      api.child.kill('SIGTERM');
      await exited;
    }
    await producer.close();
    await dropPrefix(redis, prefix);
    await redis.quit();
    await rm(dir, { recursive: true, force: true });
  }
}

run(main);
