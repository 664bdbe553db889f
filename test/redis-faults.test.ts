/**
 * Redis going away under load: a graceful restart, a crash with
 * `appendfsync always`, and a power loss with `everysec` (emulated: the
 * crash plus the last second of the AOF cut off); then Redis Cluster.
 *
 * Every Redis here is a redis-server of the test's own on a free local port
 * with its own temp dir; afterAll stops them all and removes the dirs, pass
 * or fail.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Worker } from 'bullmq';
import { Cluster } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { type ChaosEvent, settleFor } from '../bench/chaos/options.js';
import { renderReport } from '../bench/chaos/report.js';
import { type ChaosReport, runChaos } from '../bench/chaos/run.js';
import { keyId } from '../src/domain/key.js';
import { type FakeX, startFakeX } from '../src/fake-x/index.js';
import { openLedger, createProducer, createPublishWorker, type Reconciler, startReconciler } from '../src/app.js';
import { type Producer } from '../src/queue/producer.js';
import { type Account, staticCredentialStore } from '../src/x/credentials.js';
import { TwitterXPort } from '../src/x/twitter.js';
import { captureLogs, waitUntil } from './harness.js';
import { fakeAccountOf } from './support/accounts.js';
import { freePort } from './support/ports.js';
import { type RedisServer, startRedisServer } from './support/redis.js';
import { nextEvent, sleep } from './support/wait.js';
import { CLI, spawnWorker } from './support/workers.js';

const pexecFile = promisify(execFile);
const servers: RedisServer[] = [];
afterAll(async () => {
  for (const s of servers) {
    await s.stop().catch(() => undefined);
    await rm(s.dir, { recursive: true, force: true });
  }
});

async function ownRedis(fsync: 'everysec' | 'always'): Promise<RedisServer> {
  const s = await startRedisServer({
    extraArgs: ['--appendonly', 'yes', '--appendfsync', fsync, '--auto-aof-rewrite-percentage', '0', '--maxmemory-policy', 'noeviction'],
  });
  servers.push(s);
  return s;
}

/** Run the CLI with some standard input; resolves with its standard output. */
function pexecFileInput(cli: string, args: string[], env: NodeJS.ProcessEnv, input: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(process.execPath, [cli, ...args], { env }, (err, stdout) =>
      err && err.code !== 0 && err.code !== 2 ? reject(err) : resolve(stdout),
    );
    child.stdin!.end(input);
  });
}

const lines: string[] = [];
/** A smaller chaos run (2 CLI workers, no worker kills: the fault under test is Redis). */
function chaosAgainst(
  server: RedisServer,
  event: ChaosEvent,
  timeoutS = 150,
  more: { keys?: number; workerEnv?: Record<string, string> } = {},
): Promise<ChaosReport> {
  const lagMaxMs = 2_000;
  const xTimeoutMs = 2_000;
  return runChaos({
    keys: more.keys ?? 200,
    accounts: 10,
    workers: 2,
    killEveryS: 0,
    termShare: 0,
    faultRate: 0.2,
    lagMaxMs,
    seed: Math.floor(Math.random() * 2 ** 31),
    timeoutS,
    xTimeoutMs,
    settleMs: settleFor(lagMaxMs, xTimeoutMs),
    reconcileMs: 1_000,
    concurrency: 20,
    spreadS: 10,
    deadlineS: 600,
    dupShare: 0.2,
    xDuplicateCheck: false,
    redisUrl: server.url,
    ...(more.workerEnv && { workerEnv: more.workerEnv }),
    allowWorkerCrashes: false,
    keepTemp: false,
    events: [event],
    log: (l) => lines.push(l),
  });
}

const show = (r: ChaosReport) => `${renderReport(r)}\n\n${lines.splice(0).join('\n')}`;

/** The fault ran, no worker crashed, and the run converged with every key once on X. */
function expectExactlyOnce(r: ChaosReport): void {
  expect(r.events[0]?.error).toBeUndefined();
  expect(r.kills.crashes).toEqual([]);
  expect({ duplicates: r.verdict.duplicates, lost: r.verdict.lost, stuck: r.verdict.stuck, timedOut: r.timedOut, violations: r.violations }).toEqual({
    duplicates: 0,
    lost: 0,
    stuck: 0,
    timedOut: false,
    violations: [],
  });
}

describe('Redis restarts mid-run (CLI workers, fake X with faults, AOF on)', () => {
  it.each([
    ['graceful restart (redis-cli shutdown, everysec)', 'everysec', 'redis-cli shutdown, 2 s down, start again', (srv: RedisServer) => srv.shutdown()],
    [
      'crash (SIGKILL redis-server) with appendfsync always',
      'always',
      'SIGKILL redis-server, 2 s down, start again (AOF always)',
      (srv: RedisServer) => srv.crash(),
    ],
  ] as const)(
    '%s: workers reconnect and resume; nothing acknowledged is lost; 0 duplicates, 0 lost',
    async (_label, fsync, name, stop) => {
      const server = await ownRedis(fsync);
      const r = await chaosAgainst(server, {
        atS: 6,
        name,
        run: async () => {
          await stop(server);
          // The fault itself: Redis stays away for 2 s.
          await sleep(2_000);
          await server.start();
        },
      });
      console.log(show(r));
      expectExactlyOnce(r);
    },
    240_000,
  );

  it('power loss with everysec (emulated: SIGKILL + the last 1 s of the AOF cut off): converges, nothing lost; duplicates measured', async () => {
    const server = await ownRedis('everysec');
    const aofDir = join(server.dir, 'appendonlydir');
    const incr = async () => {
      const files = (await readdir(aofDir)).filter((f) => f.endsWith('.incr.aof')).sort();
      return join(aofDir, files.at(-1)!);
    };
    // Size of the AOF over time, so the crash can cut it back to where it was 1 s earlier.
    const samples: { at: number; size: number }[] = [];
    let sampling = true;
    const sampler = (async () => {
      const file = await incr();
      while (sampling) {
        samples.push({ at: Date.now(), size: (await stat(file)).size });
        if (samples.length > 400) samples.shift();
        // A sample every 20 ms (a file size has no event to wait on).
        await sleep(20);
      }
    })();
    let cut = { bytes: 0, of: 0 };
    let orphanedLockMs = 0;
    const r = await chaosAgainst(
      server,
      {
        atS: 6,
        name: 'SIGKILL redis-server, cut the last 1 s of the AOF, start again (everysec worst case)',
        run: async (ctx) => {
          const crashAt = Date.now();
          sampling = false;
          await sampler;
          await server.crash();
          const file = await incr();
          const size = (await stat(file)).size;
          const keep = [...samples].reverse().find((s) => s.at <= crashAt - 1_000) ?? samples[0]!;
          await truncate(file, keep.size);
          cut = { bytes: size - keep.size, of: size };
          // The fault itself: Redis stays away for 1 s.
          await sleep(1_000);
          await server.start();
          // A reconciliation lock taken before the cut and released after it comes back held:
          // reconciliation then waits for its TTL (15 s). Measured, not hidden.
          orphanedLockMs = Math.max(0, await ctx.redis.pttl(`{${ctx.prefix}}:reconcile-lock`));
        },
        // Normally ~35 s; 420 s leaves room for an orphaned reconciliation lock (see above).
      },
      420,
    );
    console.log(show(r));
    // Duplicates make this run "not ok", which keeps its worker logs: they are expected here.
    if (r.tempDir) await rm(r.tempDir, { recursive: true, force: true });
    console.log(
      `everysec power loss: cut ${cut.bytes} of ${cut.of} AOF bytes; duplicates on X ${r.verdict.duplicates}, lost ${r.verdict.lost}, stuck ${r.verdict.stuck}, reconcile lock restored with ${orphanedLockMs} ms to live`,
    );
    expect(cut.bytes).toBeGreaterThan(0);
    expect(r.events[0]?.error).toBeUndefined();
    expect({ lost: r.verdict.lost, stuck: r.verdict.stuck, timedOut: r.timedOut }).toEqual({ lost: 0, stuck: 0, timedOut: false });
    // Duplicates are possible here by design (a claim from the lost second is gone), but a
    // lost claim can be won again only once: never more than two items on X for one key.
    const doubles = r.verdict.violations.filter((v) => v.kind === 'duplicate');
    expect(doubles).toHaveLength(r.verdict.duplicates);
    for (const d of doubles) expect(d.detail, d.keyId).toMatch(/^2 items on X: /);
  }, 540_000);

  it('power loss with appendfsync always and XACTLY_CLAIM_DURABILITY=fsync (Redis < 7.2: no WAITAOF): 0 duplicates, 0 lost', async () => {
    const server = await ownRedis('always');
    const aofDir = join(server.dir, 'appendonlydir');
    const files = async () => (await readdir(aofDir)).filter((f) => f.endsWith('.incr.aof')).sort();
    let kept = { size: 0, files: 0 };
    const r = await chaosAgainst(
      server,
      {
        atS: 6,
        // With `always` every write is fsynced before Redis answers it, so a power loss can take only writes nobody
        // was answered for; what the file holds at the kill is what the disk holds. The everysec case above cuts
        // the last second instead, which `always` never loses.
        name: 'SIGKILL redis-server mid-run (power loss: with appendfsync always nothing answered is lost), start again',
        run: async () => {
          await server.crash();
          const names = await files();
          kept = { size: (await stat(join(aofDir, names.at(-1)!))).size, files: names.length };
          // The fault itself: Redis stays away for 1 s.
          await sleep(1_000);
          await server.start();
        },
      },
      150,
      // The fsync mode is checked at each worker's start (CONFIG GET appendfsync): a worker that refused would fail the run.
      { keys: 100, workerEnv: { XACTLY_CLAIM_DURABILITY: 'fsync' } },
    );
    console.log(show(r));
    console.log(
      `always + fsync power loss: AOF ${kept.size} bytes kept; duplicates on X ${r.verdict.duplicates}, lost ${r.verdict.lost}, stuck ${r.verdict.stuck}`,
    );
    expect(kept.size).toBeGreaterThan(0);
    expectExactlyOnce(r);
  }, 200_000);
});

describe('Redis Cluster (3 masters, hash-tagged prefix)', () => {
  it('producer, 2 publish workers and reconciliation on an ioredis Cluster: every key once on X, faults resolved', async () => {
    // Three masters on free ports (their +10000 cluster bus ports free too).
    const nodes: RedisServer[] = [];
    for (let i = 0; i < 3; i++) {
      const port = await freePort({ max: 50_000, alsoFree: [10_000] });
      const s = await startRedisServer({
        port,
        cluster: true,
        extraArgs: ['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--appendonly', 'no'],
      });
      servers.push(s);
      nodes.push(s);
    }
    await pexecFile('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'], {
      timeout: 30_000,
    });
    for (const n of nodes) {
      await waitUntil(
        async () => (await pexecFile('redis-cli', ['-p', String(n.port), 'cluster', 'info'])).stdout.includes('cluster_state:ok'),
        `cluster_state:ok on ${n.port}`,
        30_000,
      );
    }

    const clusterOf = () => new Cluster([{ host: '127.0.0.1', port: nodes[0]!.port }], { redisOptions: { maxRetriesPerRequest: null } });
    const prefix = `{xt-cluster-${randomBytes(3).toString('hex')}}`;
    const accounts: Account[] = [0, 1, 2].map((i) => ({ id: `c${i}`, userId: String(8100 + i), auth: { type: 'oauth2', accessToken: `cluster-tok-${i}` } }));
    const fan = { id: 'fan', userId: '8199', token: 'cluster-fan' };
    const fake: FakeX = await startFakeX({
      accounts: [...accounts, fan].map(fakeAccountOf),
      timelineLagMs: 500,
      duplicateContentCheck: false,
      rateLimitResetSec: 1,
    });
    const root = (await (
      await fetch(`${fake.url}/2/tweets`, {
        method: 'POST',
        headers: { authorization: 'Bearer cluster-fan', 'content-type': 'application/json' },
        body: JSON.stringify({ text: 'root' }),
      })
    ).json()) as { data: { id: string } };
    const scripted = [
      'commit-then-reset',
      'hang-before-commit',
      'truncated-201',
      '5xx-with-commit',
      '5xx-without-commit',
      'commit-then-hang',
      'reset-before-commit',
      '429',
    ] as const;
    for (const f of scripted) fake.injectNext(f);
    fake.setFaultRate(0.15);

    const conns: Cluster[] = [];
    const workers: Worker[] = [];
    const ports: TwitterXPort[] = [];
    const { logger } = captureLogs('warn');
    const credentials = staticCredentialStore(accounts);
    const xFor = () => {
      const x = new TwitterXPort({ credentials, baseUrl: fake.url, timeoutMs: 1_000 });
      ports.push(x);
      return x;
    };
    const settleWindowMs = 3_000;
    let producer: Producer | undefined;
    let reconciler: Reconciler | undefined;
    const main = clusterOf();
    conns.push(main);
    try {
      producer = createProducer({ connection: main, prefix, knownAccount: (id) => accounts.some((a) => a.id === id) });
      for (let i = 0; i < 2; i++) {
        const c = clusterOf();
        conns.push(c);
        const w = createPublishWorker({
          connection: c,
          prefix,
          x: xFor(),
          logger,
          concurrency: 10,
          leaseMs: 13_000,
          settleWindowMs,
          retry: { baseMs: 100, maxMs: 1_000 },
        });
        w.on('error', () => undefined);
        workers.push(w);
      }
      const rc = clusterOf();
      conns.push(rc);
      reconciler = await startReconciler({
        connection: rc,
        ledger: openLedger(rc, { prefix, retentionMs: 3_600_000 }),
        x: xFor(),
        queue: producer.queue,
        logger,
        intervalMs: 500,
        settleWindowMs,
        unresolvedGraceMs: 60_000,
        skewMs: 2_000,
      });

      const reqs = Array.from({ length: 60 }, (_, i) => {
        const account = accounts[i % 3]!;
        const kind = i % 4 === 2 ? 'reply' : i % 4 === 3 ? 'dm' : 'post';
        return {
          slotId: `cl:${i}`,
          postId: 'p',
          accountId: account.id,
          kind,
          text: `cluster #${i} ${kind} ${prefix} https://example.com/${i}`,
          ...(kind === 'reply' && { inReplyToTweetId: root.data.id }),
          ...(kind === 'dm' && { recipientId: fan.userId }),
        };
      });
      const first = await producer.enqueueMany(reqs);
      expect(first.map((r) => r.status)).toEqual(reqs.map(() => 'queued'));
      const ids = reqs.map((r) => keyId({ slotId: r.slotId, postId: r.postId }));
      const records = await waitUntil(
        async () => {
          const rs = await producer!.ledger.getMany(ids);
          return rs.every((r) => r?.state === 'sent' || r?.state === 'failed') ? rs : undefined;
        },
        'every key final on the cluster',
        90_000,
      );

      // Ground truth: one item per key, and it is the one the ledger names.
      const created = fake.created();
      for (const [i, r] of records.entries()) {
        const live = created.filter((c) => c.text === reqs[i]!.text);
        expect(r, reqs[i]!.slotId).toMatchObject({ state: 'sent' });
        expect(
          live.map((c) => c.id),
          reqs[i]!.slotId,
        ).toEqual([r!.tweetId]);
      }
      expect(Object.values(fake.faultsInjected()).reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(scripted.length);
      const stats = await producer.ledger.stats();
      expect(stats['resolved:sent'] ?? 0).toBeGreaterThan(0);

      // The ledger outlives removed jobs on a cluster too.
      await producer.queue.clean(0, 1_000, 'completed');
      const pending = () => producer!.queue.getJobCountByTypes('wait', 'delayed', 'active', 'prioritized');
      const pendingBefore = await pending();
      const again = await producer.enqueueMany(reqs);
      expect(again.map((r) => r.status)).toEqual(reqs.map(() => 'sent'));
      // Nothing is published again: the ledger's answers add no job, and a whole
      // reconciliation pass after them (the only other way to a new attempt) starts none.
      expect(await pending()).toBeLessThanOrEqual(pendingBefore);
      for (let i = 0; i < 2; i++) await nextEvent(reconciler.worker, 'completed', 'a reconciliation pass after the re-enqueue', 10_000);
      expect(fake.created()).toHaveLength(created.length);

      // One prefix, one hash tag: every key of the prefix sits on a single shard.
      const holders: number[] = [];
      for (const n of main.nodes('master')) {
        const [, keys] = await n.scan('0', 'MATCH', `${prefix.replace(/[{}]/g, (c) => '\\' + c)}*`, 'COUNT', 10_000);
        if (keys.length > 0) holders.push(keys.length);
      }
      expect(holders).toHaveLength(1);

      // The CLI speaks Cluster too (REDIS_CLUSTER_NODES): enqueue, a worker process, the ledger listing.
      await Promise.all(workers.splice(0).map((w) => w.close()));
      const dir = await mkdtemp(join(tmpdir(), 'xactly-cluster-'));
      const accountsFile = join(dir, 'accounts.json');
      await writeFile(accountsFile, JSON.stringify({ accounts }));
      const env = {
        ...process.env,
        REDIS_CLUSTER_NODES: nodes.map((n) => `127.0.0.1:${n.port}`).join(','),
        XACTLY_PREFIX: prefix,
        XACTLY_ACCOUNTS_FILE: accountsFile,
        X_API_BASE_URL: fake.url,
        X_TIMEOUT_MS: '1000',
        XACTLY_SETTLE_WINDOW_MS: '3000',
        LOG_LEVEL: 'info',
      };
      fake.setFaultRate(0);
      const worker = spawnWorker(env);
      try {
        await worker.ready();
        const line = JSON.stringify({ slotId: 'cli-on-cluster', postId: 'p', accountId: 'c0', kind: 'post', text: `via the CLI ${prefix}` });
        const enq = await pexecFileInput(CLI, ['enqueue', '-', '--json'], env, line + '\n');
        expect(JSON.parse(enq)).toMatchObject({ status: 'queued' });
        await waitUntil(() => fake.created().some((c) => c.text === `via the CLI ${prefix}`), 'CLI worker published', 30_000);
        const posts = await waitUntil(async () => {
          const { stdout } = await pexecFile(process.execPath, [CLI, 'posts', '--state', 'sent', '--json'], { env });
          return stdout.includes('cli-on-cluster') ? stdout : undefined;
        }, 'posts lists it');
        expect(posts.trim().split('\n')).toHaveLength(reqs.length + 1);
      } finally {
        worker.child.kill('SIGKILL');
        await rm(dir, { recursive: true, force: true });
      }
    } finally {
      await Promise.all(workers.map((w) => w.close(true)));
      await reconciler?.close();
      await producer?.close();
      for (const x of ports) x.close();
      await fake.close();
      for (const c of conns) c.disconnect();
    }
  }, 150_000);
});
