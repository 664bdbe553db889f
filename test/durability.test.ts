/**
 * Claim durability (#15) against redis-servers of the test's own on
 * loopback ports: a primary with a replica (`replica` mode: WAIT), a Redis
 * 7.0 AOF (`fsync` mode: `appendfsync always`, or a refusal to start), and
 * a primary + replica + 3 Sentinels whose primary is SIGKILLed mid-run.
 *
 * Every process here is built by the composition root (openApp) from a
 * config parsed like the environment's, so the Sentinel connection, the
 * durability check and the X adapter are the shipped ones; X is the fake,
 * over HTTP. afterAll stops every server and removes its dir, pass or fail.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Cluster } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { type App, createProducer, openApp, StartupError } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { jobIdFor, keyId } from '../src/domain/key.js';
import { claimDurability } from '../src/ledger/durability.js';
import { hashTagged } from '../src/ledger/keys.js';
import { type FakeX, startFakeX } from '../src/fake-x/index.js';
import type { PostRecord } from '../src/ledger/record.js';
import { type ExpectedKey, verify } from '../src/ops/ground-truth.js';
import { staticCredentialStore } from '../src/x/credentials.js';
import { captureLogs, waitUntil } from './harness.js';
import { accountOf, fakeAccountOf, numberedAccounts } from './support/accounts.js';
import {
  dropPrefix,
  type Link,
  newRedis,
  type RedisServer,
  redisCli,
  type Sentinel,
  startLink,
  startCluster,
  startRedisServer,
  startReplica,
  startSentinel,
  uniquePrefix,
  waitReplicating,
  waitSentinelsAgree,
} from './support/redis.js';
import { nextEvent, sleep } from './support/wait.js';
import { CLI, spawnWorker } from './support/workers.js';

const pexecFile = promisify(execFile);
const servers: RedisServer[] = [];
const sentinels: Sentinel[] = [];
const links: Link[] = [];
const apps: App[] = [];
const fakes: FakeX[] = [];
afterAll(async () => {
  for (const a of apps.splice(0)) await a.close().catch(() => undefined);
  for (const f of fakes.splice(0)) await f.close().catch(() => undefined);
  for (const s of sentinels.splice(0)) {
    await s.stop();
    await rm(s.dir, { recursive: true, force: true });
  }
  for (const l of links.splice(0)) await l.close();
  for (const s of servers.splice(0)) {
    s.resume();
    await s.stop();
    await rm(s.dir, { recursive: true, force: true });
  }
});

const own = <T extends RedisServer>(s: T): T => (servers.push(s), s);

const test = numberedAccounts(3, { prefix: 'dur', userIdBase: 61_000, token: (i) => `dur-token-${i}` });
const accounts = test.map((a) => accountOf(a));

async function fakeX(opts: { faultRate?: number } = {}): Promise<FakeX> {
  const fake = await startFakeX({
    accounts: accounts.map(fakeAccountOf),
    timelineLagMs: 200,
    // A double publish must show up on X, not be refused as duplicate content.
    duplicateContentCheck: false,
    rateLimitResetSec: 1,
    faultRate: opts.faultRate ?? 0,
  });
  fakes.push(fake);
  return fake;
}

type Mode = 'local' | 'replica' | 'fsync';

/** One process of xactly as `xactly worker` builds it, from an environment. */
async function appFor(
  fake: FakeX,
  prefix: string,
  mode: Mode,
  redis: { url: string } | { sentinels: readonly number[] } | { cluster: readonly number[] },
  logLevel = 'info',
) {
  const config = loadConfig({
    ...('url' in redis
      ? { REDIS_URL: redis.url }
      : 'cluster' in redis
        ? { REDIS_CLUSTER_NODES: redis.cluster.map((p) => `127.0.0.1:${p}`).join(',') }
        : { REDIS_SENTINELS: redis.sentinels.map((p) => `127.0.0.1:${p}`).join(',') }),
    XACTLY_PREFIX: prefix,
    XACTLY_CLAIM_DURABILITY: mode,
    XACTLY_CLAIM_WAIT_MS: '300',
    X_API_BASE_URL: fake.url,
    X_TIMEOUT_MS: '1000',
    XACTLY_SETTLE_WINDOW_MS: '2000',
    XACTLY_RECONCILE_INTERVAL_MS: '500',
    XACTLY_UNRESOLVED_GRACE_MS: '60000',
    XACTLY_POST_LIMIT: '100000',
    XACTLY_DM_LIMIT: '100000',
    XACTLY_APP_DAILY_LIMIT: '0',
    LOG_LEVEL: logLevel,
  });
  const logs = captureLogs(logLevel);
  // The lease outlasts the slowest X call (1 s timeout); short, so a claim whose settle a failover lost is reconciled soon.
  // Reconciliation re-creates a queued key's lost job after a grace (60 s by default), short here: after a failover
  // a job fetched on the old primary can run once more on the new one, complete there as a skip, and leave its key
  // given back (not durable) with no live job.
  const app = await openApp(config, logs.logger, {
    credentials: staticCredentialStore(accounts),
    retry: { baseMs: 100, maxMs: 500 },
    leaseMs: 3_000,
    lostJobGraceMs: 2_000,
  });
  apps.push(app);
  return { app, lines: logs.lines };
}

/** Create requests X received (answered or not). */
const creates = (fake: FakeX) => fake.requests().filter((r) => r.method === 'POST' && r.path.startsWith('/2/tweets')).length;
const liveWith = (fake: FakeX, text: string) => fake.created().filter((c) => c.text === text);
const logged = (lines: readonly string[], event: string) => lines.filter((l) => l.includes(`"event":"${event}"`)).length;

describe('replica mode: a replica that stops acknowledging', () => {
  let primary: RedisServer;
  let replica: RedisServer;

  it.each([
    ['stopped (SIGSTOP)', (r: RedisServer) => Promise.resolve(r.pause()), (r: RedisServer) => Promise.resolve(r.resume())],
    [
      'paused (CLIENT PAUSE WRITE)',
      (r: RedisServer) => redisCli(r.port, 'client', 'pause', '60000', 'write').then(() => undefined),
      (r: RedisServer) => redisCli(r.port, 'client', 'unpause').then(() => undefined),
    ],
  ] as const)(
    'replica %s: claims are given back as not-sent without calling X, and counted; once it acknowledges again every key is sent once',
    async (_how, stall, unstall) => {
      primary ??= own(await startRedisServer());
      replica ??= own(await startReplica(primary.port));
      const fake = await fakeX();
      const prefix = uniquePrefix('dur-rep');
      const { app, lines } = await appFor(fake, prefix, 'replica', { url: primary.url });
      const producer = app.producer({ knownAccount: (id) => accounts.some((a) => a.id === id) });
      await app.publishWorker({ concurrency: 3 });
      const req = (i: number) => ({ slotId: `dur:${i}`, postId: 'p', accountId: accounts[i % 3]!.id, kind: 'post', text: `durable ${prefix} #${i}` });

      // With the replica acknowledging, a claim goes out.
      expect((await producer.enqueue(req(0))).status).toBe('queued');
      await waitUntil(async () => (await app.ledger.get(keyId({ slotId: 'dur:0', postId: 'p' })))?.state === 'sent', 'the first key sent');
      const createsBefore = creates(fake);

      await stall(replica);
      const stalled = [1, 2, 3, 4, 5, 6];
      try {
        const answers = await producer.enqueueMany(stalled.map(req));
        expect(answers.map((a) => a.status)).toEqual(stalled.map(() => 'queued'));
        // Every key claimed and given back, and X asked for nothing.
        const givenBack = async (i: number) =>
          (await app.ledger.auditTrail(keyId({ slotId: `dur:${i}`, postId: 'p' }))).some((e) => e.event === 'claim-not-durable');
        await waitUntil(async () => (await Promise.all(stalled.map(givenBack))).every(Boolean), 'every stalled key given back', 30_000);
        expect((await app.ledger.stats())['claims:not-durable']).toBeGreaterThanOrEqual(stalled.length);
        expect(logged(lines, 'claim-not-durable')).toBeGreaterThanOrEqual(stalled.length);
        expect(creates(fake)).toBe(createsBefore);
        for (const i of stalled) {
          const id = keyId({ slotId: `dur:${i}`, postId: 'p' });
          const r = await app.ledger.get(id);
          expect(r?.state, id).toMatch(/^(queued|claimed)$/);
          const given = (await app.ledger.auditTrail(id)).filter((e) => e.event === 'claim-not-durable');
          expect(given.length, id).toBeGreaterThanOrEqual(1);
          expect(given[0]).toMatchObject({
            outcome: 'not-sent',
            cause: expect.stringMatching(/^claim-not-durable: 0 of 1 replica\(s\) acknowledged the claim within 300 ms$/),
          });
        }
        const line = lines.find((l) => l.includes('"event":"claim-not-durable"'))!;
        expect(JSON.parse(line)).toMatchObject({ level: 40, msg: 'claim not durable; given back without calling X', why: expect.stringContaining('replica') });
      } finally {
        await unstall(replica);
      }

      // Acknowledging again: every key is published, once.
      const records = await waitUntil(
        async () => {
          const rs = await app.ledger.getMany(stalled.map((i) => keyId({ slotId: `dur:${i}`, postId: 'p' })));
          return rs.every((r) => r?.state === 'sent') ? rs : undefined;
        },
        'every stalled key sent after the replica is back',
        30_000,
      );
      for (const [n, i] of stalled.entries()) {
        expect(liveWith(fake, req(i).text).map((c) => c.id)).toEqual([records[n]!.tweetId]);
      }
      expect(creates(fake)).toBe(createsBefore + stalled.length);
      await app.close();
    },
    60_000,
  );

  it('a WAIT answered on another connection than the claim does not confirm it (a reconnect between the claim and its WAIT)', async () => {
    primary ??= own(await startRedisServer());
    replica ??= own(await startReplica(primary.port));
    const redis = newRedis(primary.url);
    const prefix = uniquePrefix('dur-conn');
    const producer = createProducer({ connection: redis, prefix });
    try {
      const durability = await claimDurability(redis, { mode: 'replica', replicas: 1, timeoutMs: 300 });
      const claim = async (slotId: string) => {
        expect((await producer.enqueue({ slotId, postId: 'p', accountId: 'a', kind: 'post', text: `${prefix} ${slotId}` })).status).toBe('queued');
        const key = { slotId, postId: 'p' };
        const c = await producer.ledger.claim({ keyId: keyId(key), jobId: jobIdFor(key), leaseMs: 30_000, now: Date.now() });
        expect(c.verdict).toBe('claimed');
      };
      const mark = durability.mark();
      await claim('conn:1');
      // The connection the claim went out on dies; ioredis reconnects, and a WAIT there has nothing of its own to wait for.
      const closed = nextEvent(redis, 'close', 'the connection closing');
      await redisCli(primary.port, 'client', 'kill', 'id', String(await redis.client('ID')));
      await closed;
      expect(await durability.confirm(mark)).toEqual({ ok: false, why: 'the connection to Redis was lost between the claim and its confirmation' });
      // A claim on the new connection is confirmed as usual.
      const again = durability.mark();
      await claim('conn:2');
      expect(await durability.confirm(again)).toEqual({ ok: true });
    } finally {
      await producer.close();
      await dropPrefix(redis, prefix);
      redis.disconnect();
    }
  });
});

describe('fsync mode on Redis < 7.2 (no WAITAOF)', () => {
  it('refuses to start unless appendfsync always; with it, publishes', async () => {
    const server = own(await startRedisServer({ extraArgs: ['--appendonly', 'yes', '--appendfsync', 'everysec'] }));
    const version = /redis_version:([\d.]+)/.exec(await redisCli(server.port, 'info', 'server'))![1]!;
    const [major, minor] = version.split('.').map(Number) as [number, number];
    if (major > 7 || (major === 7 && minor >= 2)) {
      console.log(`Redis ${version} has WAITAOF: the appendfsync check does not apply`);
      return;
    }
    const fake = await fakeX();
    const prefix = uniquePrefix('dur-fsync');
    const refused = await appFor(fake, prefix, 'fsync', { url: server.url });
    const err = await refused.app.publishWorker().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StartupError);
    expect((err as Error).message).toBe(
      `XACTLY_CLAIM_DURABILITY=fsync: Redis ${version} has no WAITAOF (7.2+); it needs appendonly yes and appendfsync always (found appendonly yes, appendfsync everysec)`,
    );
    await refused.app.close();

    // The CLI says so and exits 1 (when it is built).
    if (existsSync(CLI)) {
      const dir = await mkdtemp(join(tmpdir(), 'xactly-dur-'));
      const accountsFile = join(dir, 'accounts.json');
      await writeFile(accountsFile, JSON.stringify({ accounts }), { mode: 0o600 });
      const worker = spawnWorker({
        PATH: process.env.PATH,
        REDIS_URL: server.url,
        XACTLY_PREFIX: prefix,
        XACTLY_CLAIM_DURABILITY: 'fsync',
        XACTLY_ACCOUNTS_FILE: accountsFile,
        X_API_BASE_URL: fake.url,
      });
      const exit = await worker.exited;
      await rm(dir, { recursive: true, force: true });
      expect(exit.code, worker.output()).toBe(1);
      expect(worker.output()).toContain(`xactly: ${(err as Error).message}`);
    }

    await redisCli(server.port, 'config', 'set', 'appendfsync', 'always');
    const { app } = await appFor(fake, prefix, 'fsync', { url: server.url });
    await app.publishWorker({ concurrency: 2 });
    const producer = app.producer({ knownAccount: () => true });
    const text = `fsync always ${prefix}`;
    expect((await producer.enqueue({ slotId: 'fs:1', postId: 'p', accountId: accounts[0]!.id, kind: 'post', text })).status).toBe('queued');
    const r = await waitUntil(async () => {
      const rec = await app.ledger.get(keyId({ slotId: 'fs:1', postId: 'p' }));
      return rec?.state === 'sent' ? rec : undefined;
    }, 'the key sent with appendfsync always');
    expect(liveWith(fake, text).map((c) => c.id)).toEqual([r.tweetId]);
    await app.close();
  }, 30_000);
});

/** From CLUSTER NODES (`id host:port@bus flags master-id …`): the port of a replica of the master at `master` (host:port). */
function replicaPortOf(clusterNodes: string, master: string): number {
  const rows = clusterNodes.split('\n').map((l) => l.trim().split(' '));
  const addr = (row: string[]) => row[1]!.split('@')[0]!;
  const id = rows.find((row) => addr(row) === master)![0];
  return Number(addr(rows.find((row) => row[3] === id)!).split(':')[1]);
}

describe('replica mode on Redis Cluster (3 masters with a replica each): WAIT on the shard of the prefix', () => {
  let cluster: Promise<{ nodes: RedisServer[] }> | undefined;
  const ownCluster = () =>
    (cluster ??= startCluster({ masters: 3, replicasPer: 1 }).then((c) => {
      for (const n of c.nodes) own(n);
      return c;
    }));

  it("claims are confirmed by the prefix's shard; its replica stopped: claims given back without calling X; another shard's replica stopped: no effect", async () => {
    const { nodes } = await ownCluster();
    const fake = await fakeX();
    const prefix = uniquePrefix('dur-cl');
    // Which master serves the prefix's slot (every key of it is hash-tagged {prefix}), its replica, and another shard's replica.
    const slot = Number(await redisCli(nodes[0]!.port, 'cluster', 'keyslot', prefix));
    // CLUSTER NODES: `id host:port@bus flags master-id ... slot-ranges` (CLUSTER SLOTS lists a replica only once it has data).
    const table = (await redisCli(nodes[0]!.port, 'cluster', 'nodes')).split('\n').map((l) => l.trim().split(' '));
    const portOf = (row: string[]) => Number(row[1]!.split('@')[0]!.split(':')[1]);
    const serves = (row: string[]) =>
      row.slice(8).some((r) => {
        const [a, b = a] = r.split('-').map(Number) as [number, number?];
        return a <= slot && slot <= b!;
      });
    const ourMaster = table.find((row) => row[2]!.includes('master') && serves(row))!;
    const otherMaster = table.find((row) => row[2]!.includes('master') && row !== ourMaster)!;
    const replicaOf = (master: string[]) => nodes.find((n) => n.port === portOf(table.find((row) => row[3] === master[0])!))!;
    const ourReplica = replicaOf(ourMaster);
    const otherReplica = replicaOf(otherMaster);

    const { app, lines } = await appFor(fake, prefix, 'replica', { cluster: nodes.map((n) => n.port) });
    const producer = app.producer({ knownAccount: (id) => accounts.some((a) => a.id === id) });
    await app.publishWorker({ concurrency: 3 });
    const req = (i: number) => ({ slotId: `cl:${i}`, postId: 'p', accountId: accounts[i % 3]!.id, kind: 'post', text: `cluster durable ${prefix} #${i}` });
    const id = (i: number) => keyId({ slotId: `cl:${i}`, postId: 'p' });
    const sent = (is: readonly number[], what: string) =>
      waitUntil(
        async () => {
          const rs = await app.ledger.getMany(is.map(id));
          return rs.every((r) => r?.state === 'sent') ? rs : undefined;
        },
        what,
        20_000,
      );

    // Every replica acknowledging: claims go out.
    await producer.enqueueMany([0, 1].map(req));
    await sent([0, 1], 'the first keys sent');
    // Another shard's replica stopped: the prefix's shard still acknowledges, claims go out.
    otherReplica.pause();
    try {
      await producer.enqueue(req(2));
      await sent([2], "a key sent while another shard's replica is stopped");
    } finally {
      otherReplica.resume();
    }
    expect(logged(lines, 'claim-not-durable')).toBe(0);
    const createsBefore = creates(fake);

    // The prefix shard's replica stopped: every claim given back, X asked for nothing.
    const stalled = [3, 4, 5, 6];
    ourReplica.pause();
    try {
      await producer.enqueueMany(stalled.map(req));
      const givenBack = async (i: number) => (await app.ledger.auditTrail(id(i))).some((e) => e.event === 'claim-not-durable');
      await waitUntil(async () => (await Promise.all(stalled.map(givenBack))).every(Boolean), 'every stalled key given back', 20_000);
      expect(creates(fake)).toBe(createsBefore);
      for (const i of stalled) {
        const given = (await app.ledger.auditTrail(id(i))).filter((e) => e.event === 'claim-not-durable');
        expect(given[0], id(i)).toMatchObject({
          outcome: 'not-sent',
          cause: expect.stringMatching(/^claim-not-durable: 0 of 1 replica\(s\) acknowledged the claim within 300 ms$/),
        });
      }
      expect((await app.ledger.stats())['claims:not-durable']).toBeGreaterThanOrEqual(stalled.length);
    } finally {
      ourReplica.resume();
    }

    // Acknowledging again: every key published, once.
    const records = await sent(stalled, 'every stalled key sent after the replica is back');
    for (const [n, i] of stalled.entries()) expect(liveWith(fake, req(i).text).map((c) => c.id)).toEqual([records[n]!.tweetId]);
    expect(creates(fake)).toBe(createsBefore + stalled.length);
    await app.close();
  }, 60_000);

  it("fsync mode on Cluster checks the master of the prefix's slot (Redis < 7.2: appendfsync always there, not elsewhere)", async () => {
    const { nodes } = await ownCluster();
    const version = /redis_version:([\d.]+)/.exec(await redisCli(nodes[0]!.port, 'info', 'server'))![1]!;
    const [major, minor] = version.split('.').map(Number) as [number, number];
    if (major > 7 || (major === 7 && minor >= 2)) {
      console.log(`Redis ${version} has WAITAOF: the appendfsync check does not apply`);
      return;
    }
    const prefix = hashTagged(uniquePrefix('dur-clfs'));
    const redis = new Cluster([{ host: '127.0.0.1', port: nodes[0]!.port }], { redisOptions: { maxRetriesPerRequest: null } });
    const producer = createProducer({ connection: redis, prefix });
    const settings = { mode: 'fsync', replicas: 1, timeoutMs: 300 } as const;
    const fsyncOf = (port: number, on: boolean) =>
      Promise.all([
        redisCli(port, 'config', 'set', 'appendonly', on ? 'yes' : 'no'),
        redisCli(port, 'config', 'set', 'appendfsync', on ? 'always' : 'everysec'),
      ]);
    try {
      const slot = Number(await redis.cluster('KEYSLOT', prefix));
      await redis.ping();
      const ours = Number(redis.slots[slot]![0]!.split(':')[1]);
      const others = redis
        .nodes('master')
        .map((n) => n.options.port!)
        .filter((p) => p !== ours);
      // Every other master fsyncs each write; the prefix's does not: refused.
      for (const p of others) await fsyncOf(p, true);
      await expect(claimDurability(redis, settings, producer.ledger.keys.due)).rejects.toThrow(
        `XACTLY_CLAIM_DURABILITY=fsync: Redis ${version} has no WAITAOF (7.2+); it needs appendonly yes and appendfsync always (found appendonly no, appendfsync everysec)`,
      );
      // Only the prefix's master fsyncs each write: accepted.
      for (const p of others) await fsyncOf(p, false);
      await fsyncOf(ours, true);
      const durability = await claimDurability(redis, settings, producer.ledger.keys.due);
      expect(await durability.confirm(durability.mark())).toEqual({ ok: true });
      await fsyncOf(ours, false);
    } finally {
      await producer.close();
      redis.disconnect();
    }
  });

  it("a claim whose slot moved to another node before its WAIT is not confirmed (a failover of the prefix's shard)", async () => {
    const { nodes } = await ownCluster();
    const prefix = hashTagged(uniquePrefix('dur-clmv'));
    const redis = new Cluster([{ host: '127.0.0.1', port: nodes[0]!.port }], { redisOptions: { maxRetriesPerRequest: null } });
    const producer = createProducer({ connection: redis, prefix });
    try {
      const slot = Number(await redis.cluster('KEYSLOT', prefix));
      const durability = await claimDurability(redis, { mode: 'replica', replicas: 1, timeoutMs: 1_000 }, producer.ledger.keys.due);
      const claim = async (slotId: string) => {
        expect((await producer.enqueue({ slotId, postId: 'p', accountId: 'a', kind: 'post', text: `${prefix} ${slotId}` })).status).toBe('queued');
        const key = { slotId, postId: 'p' };
        const c = await producer.ledger.claim({ keyId: keyId(key), jobId: jobIdFor(key), leaseMs: 30_000, now: Date.now() });
        expect(c.verdict).toBe('claimed');
      };
      const first = durability.mark();
      await claim('mv:1');
      expect(await durability.confirm(first)).toEqual({ ok: true });

      // The shard's replica takes over (CLUSTER FAILOVER); the client learns the new slot map.
      const master = redis.slots[slot]![0]!;
      const mark = durability.mark();
      await claim('mv:2');
      await redisCli(replicaPortOf(await redisCli(nodes[0]!.port, 'cluster', 'nodes'), master), 'cluster', 'failover');
      await waitUntil(
        async () => {
          await new Promise<void>((done) => redis.refreshSlotsCache(() => done()));
          return redis.slots[slot]?.[0] !== master;
        },
        'the client seeing the new master of the slot',
        20_000,
        100,
      );
      // WAIT on the new master's connection (which wrote nothing) would answer 1 at once; the mark says the slot moved.
      const moved = await durability.confirm(mark);
      expect(moved).toEqual({
        ok: false,
        why: expect.stringMatching(
          new RegExp(`^the ledger's slot ${slot} moved \\(from ${master} to 127\\.0\\.0\\.1:\\d+\\) between the claim and its confirmation$`),
        ),
      });
      // A claim on the new master is confirmed as usual (the old master, now its replica, acknowledges).
      const again = durability.mark();
      await claim('mv:3');
      expect(await durability.confirm(again)).toEqual({ ok: true });
    } finally {
      await producer.close();
      await dropPrefix(redis, prefix).catch(() => undefined);
      redis.disconnect();
    }
  }, 40_000);
});

interface FailoverRun {
  readonly keys: number;
  readonly duplicates: number;
  readonly lost: number;
  readonly stuck: number;
  readonly failed: number;
  readonly notDurable: number;
  /** Keys `xactly posts --state sent` listed through REDIS_SENTINELS after the failover (-1: CLI not built). */
  readonly cliSent: number;
  readonly failoverMs: number;
  readonly convergeMs: number;
  readonly violations: readonly { keyId: string; kind: string; detail: string }[];
}

/**
 * Primary + replica (through a link the test can stall) + 3 Sentinels; two
 * worker processes (one reconciling) and a producer, all through Sentinel;
 * the fake X with faults. Mid-run the replica's link stalls for 800 ms
 * (it falls behind, as a replica does on a slow network), then the primary
 * is SIGKILLed: what it had not passed on is lost with it. Sentinel
 * promotes the replica; the old primary comes back as its replica.
 */
async function failoverRun(mode: 'local' | 'replica'): Promise<FailoverRun> {
  const primary = own(await startRedisServer());
  const link = await startLink(primary.port);
  links.push(link);
  const replica = own(await startReplica(link.port));
  const ss: Sentinel[] = [];
  for (let i = 0; i < 3; i++) ss.push(await startSentinel({ primaryPort: primary.port, downAfterMs: 1_000, failoverTimeoutMs: 5_000 }));
  sentinels.push(...ss);
  await waitSentinelsAgree(ss, 1);

  const fake = await fakeX({ faultRate: 0.15 });
  const prefix = uniquePrefix(`dur-fo-${mode}`);
  const via = { sentinels: ss.map((s) => s.port) };
  const workers = [await appFor(fake, prefix, mode, via), await appFor(fake, prefix, mode, via)];
  for (const w of workers) await w.app.publishWorker({ concurrency: 5, workerOptions: { lockDuration: 4_000, stalledInterval: 1_000 } });
  await workers[0]!.app.reconciler();
  const front = await appFor(fake, prefix, mode, via);
  const producer = front.app.producer({ knownAccount: (id) => accounts.some((a) => a.id === id) });

  const n = 90;
  const start = Date.now();
  const reqs = Array.from({ length: n }, (_, i) => ({
    slotId: `fo:${i}`,
    postId: 'p',
    accountId: accounts[i % 3]!.id,
    kind: 'post',
    text: `failover ${prefix} #${i}`,
    // Spread over 5 s, so the failover lands in the middle of publishing.
    scheduledAt: new Date(start + 300 + Math.floor((i * 5_000) / n)).toISOString(),
  }));
  const answers = await producer.enqueueMany(reqs);
  expect(answers.map((a) => a.status)).toEqual(reqs.map(() => 'queued'));
  // The registrations are on the replica before anything fails (a lost enqueue is not what this measures).
  expect(Number(await redisCli(primary.port, 'wait', '1', '2000'))).toBe(1);

  await sleep(Math.max(0, start + 1_800 - Date.now()));
  link.hold();
  await sleep(800);
  const killedAt = Date.now();
  await primary.crash();
  link.cut();
  await waitUntil(async () => (await ss[0]!.primaryPort()) === replica.port, 'Sentinel promoting the replica', 30_000, 100);
  const failoverMs = Date.now() - killedAt;
  // The killed primary comes back (as a process manager restarts it), as a replica of the new one.
  const back = own(await startRedisServer({ port: primary.port, extraArgs: ['--replicaof', '127.0.0.1', String(replica.port)] }));
  await waitReplicating(back.port);

  const ids = reqs.map((r) => keyId({ slotId: r.slotId, postId: r.postId }));
  const final = (r: PostRecord | undefined) => r?.state === 'sent' || r?.state === 'failed';
  let records: (PostRecord | undefined)[] = [];
  await waitUntil(
    async () => {
      records = await front.app.ledger.getMany(ids).catch(() => records);
      return records.length === n && records.every(final);
    },
    'every key final after the failover',
    45_000,
    200,
  ).catch(() => undefined);
  const convergeMs = Date.now() - start;
  const expected: ExpectedKey[] = reqs.map((r, i) => ({
    keyId: ids[i]!,
    userId: accounts[i % 3]!.userId,
    kind: 'post',
    text: r.text,
    scheduledAt: Date.parse(r.scheduledAt),
  }));
  const verdict = verify(expected, records, fake.created(), prefix);
  const notDurable = workers.reduce((s, w) => s + logged(w.lines, 'claim-not-durable'), 0);
  // A key left in between says how: its job's state and its audit trail.
  for (const v of verdict.violations.filter((x) => x.kind === 'stuck')) {
    const job = await producer.queue.getJob(v.keyId);
    const trail = await front.app.ledger.auditTrail(v.keyId);
    console.log(
      `${v.keyId} ${v.kind}: job ${job ? await job.getState() : 'missing'} ${job?.failedReason ?? ''} stalled ${JSON.stringify(job?.stalledCounter)}; trail ${JSON.stringify(trail)}`,
    );
  }
  // The CLI finds the new primary through the Sentinels too.
  let cliSent = -1;
  if (existsSync(CLI)) {
    const env = { PATH: process.env.PATH, REDIS_SENTINELS: via.sentinels.map((p) => `127.0.0.1:${p}`).join(','), XACTLY_PREFIX: prefix };
    const { stdout } = await pexecFile(process.execPath, [CLI, 'posts', '--state', 'sent', '--json'], { env, timeout: 20_000 });
    cliSent = stdout.trim().split('\n').filter(Boolean).length;
  }
  for (const a of [...workers, front]) await a.app.close();
  return {
    keys: n,
    duplicates: verdict.duplicates,
    lost: verdict.lost,
    stuck: verdict.stuck,
    failed: verdict.failed,
    notDurable,
    cliSent,
    failoverMs,
    convergeMs,
    violations: verdict.violations,
  };
}

const show = (mode: string, r: FailoverRun) =>
  `Sentinel failover, ${mode} claims: ${r.keys} keys, duplicates on X ${r.duplicates}, lost ${r.lost}, stuck ${r.stuck}; ` +
  `claims given back as not durable ${r.notDurable}; failover ${r.failoverMs} ms; all final ${r.convergeMs} ms after the first enqueue`;

describe('Sentinel failover: the primary SIGKILLed mid-run while its replica lags', () => {
  it('replica mode: 0 duplicates, 0 lost, 0 stuck; workers ride through the failover', async () => {
    const r = await failoverRun('replica');
    console.log(show('replica', r));
    expect({ duplicates: r.duplicates, lost: r.lost, stuck: r.stuck, violations: r.violations }).toEqual({ duplicates: 0, lost: 0, stuck: 0, violations: [] });
    // The stall happened while claims were in flight: some were given back instead of reaching X.
    expect(r.notDurable).toBeGreaterThan(0);
    if (r.cliSent >= 0) expect(r.cliSent).toBe(r.keys - r.failed);
  }, 90_000);

  it('local mode: the duplicates a failover causes, measured (not asserted zero)', async () => {
    const r = await failoverRun('local');
    console.log(show('local', r));
    expect(r.stuck).toBe(0);
    expect(r.notDurable).toBe(0);
  }, 90_000);
});
