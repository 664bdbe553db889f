/**
 * Redis for tests and benchmarks: the shared server (REDIS_URL), fresh
 * prefixes on it and their clean-up, and redis-servers of a test's own
 * (restarts, crashes, AOF modes, Cluster nodes) as child processes.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { dropPrefix, keysOf } from '../../src/ledger/drop.js';
import { freePort } from './ports.js';
import { sleep } from './wait.js';

export { dropPrefix };

const pexecFile = promisify(execFile);

/** The Redis every test and benchmark shares (a local one: `redis-server --daemonize yes`); an empty REDIS_URL is unset. */
export const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';

/** A connection as xactly's workers use it (commands wait out a reconnect instead of failing). */
export function newRedis(url = REDIS_URL): Redis {
  return new Redis(url, { maxRetriesPerRequest: null });
}

/** A prefix nobody else uses, so tests can share one Redis; drop it with `dropPrefix`. */
export const uniquePrefix = (label = 't'): string => `xt-${label}-${randomBytes(4).toString('hex')}`;

/** Every string value stored under a prefix (hashes, lists, strings, zsets, streams). */
export async function dumpPrefix(redis: Redis, prefix: string): Promise<string> {
  const out: string[] = [];
  for await (const keys of keysOf(redis, prefix)) {
    for (const key of keys) {
      const type = await redis.type(key);
      if (type === 'hash') out.push(JSON.stringify(await redis.hgetall(key)));
      else if (type === 'list') out.push(JSON.stringify(await redis.lrange(key, 0, -1)));
      else if (type === 'string') out.push(String(await redis.get(key)));
      else if (type === 'zset') out.push(JSON.stringify(await redis.zrange(key, '0', '-1')));
      else if (type === 'stream') out.push(JSON.stringify(await redis.xrange(key, '-', '+')));
    }
  }
  return out.join('\n');
}

// ------------------------------------------------------------------ a redis-server of our own

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  readonly dir: string;
  readonly args: readonly string[];
  /** Graceful: `redis-cli shutdown` (AOF is fsynced), then wait for the exit. */
  shutdown(): Promise<void>;
  /** A crash: SIGKILL, no chance to fsync. */
  crash(): Promise<void>;
  /** Start again on the same port and dir (the AOF is loaded). */
  start(): Promise<void>;
  /** Stop for good (SIGKILL if needed); idempotent. */
  stop(): Promise<void>;
  /** SIGSTOP: the process freezes (its sockets stay open, nothing is answered) until `resume()`. */
  pause(): void;
  /** SIGCONT after `pause()`. */
  resume(): void;
  readonly running: boolean;
}

/**
 * A redis-server of our own on 127.0.0.1 (a child process, not daemonized,
 * so it dies with a SIGKILL and `stop()` always finds it).
 */
export async function startRedisServer(opts: { port?: number; dir?: string; extraArgs?: readonly string[]; cluster?: boolean } = {}): Promise<RedisServer> {
  const port = opts.port ?? (await freePort({ alsoFree: opts.cluster ? [10_000] : [] }));
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), `xactly-redis-${port}-`)));
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--dir',
    dir,
    '--save',
    '',
    '--daemonize',
    'no',
    '--logfile',
    'redis.log',
    ...(opts.extraArgs ?? []),
  ];
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  const waitReady = async () => {
    const until = Date.now() + 20_000;
    for (;;) {
      const probe = new Redis({ host: '127.0.0.1', port, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, connectTimeout: 1_000 });
      probe.on('error', () => undefined);
      try {
        await probe.connect();
        // While the AOF loads Redis answers -LOADING; wait for real readiness.
        const info = await probe.info('persistence');
        if (/loading:0/.test(info)) return;
      } catch {
        // not up yet
      } finally {
        probe.disconnect();
      }
      if (child?.exitCode !== null && child?.exitCode !== undefined) {
        const log = await readFile(join(dir, 'redis.log'), 'utf8').catch(() => '');
        throw new Error(`redis-server on ${port} exited with ${child.exitCode}: ${log.split('\n').slice(-5).join(' | ')}`);
      }
      if (Date.now() > until) throw new Error(`redis-server on ${port} not ready after 20 s`);
      await sleep(50);
    }
  };

  const server: RedisServer = {
    port,
    dir,
    args,
    url: `redis://127.0.0.1:${port}`,
    get running() {
      return child !== undefined && child.exitCode === null && child.signalCode === null;
    },
    async start() {
      if (server.running) return;
      const c = spawn('redis-server', args, { stdio: 'ignore' });
      child = c;
      exited = new Promise<void>((done) => c.once('exit', () => done()));
      await waitReady();
    },
    async shutdown() {
      if (!server.running) return;
      // SHUTDOWN closes the connection instead of answering: a non-zero exit of redis-cli is expected.
      await pexecFile('redis-cli', ['-h', '127.0.0.1', '-p', String(port), 'shutdown'], { timeout: 20_000 }).catch(() => undefined);
      await Promise.race([exited, sleep(20_000)]);
      if (server.running) throw new Error(`redis-server on ${port} did not shut down`);
    },
    async crash() {
      if (!server.running) return;
      child!.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (server.running) {
        // A stopped process still dies of SIGKILL.
        child!.kill('SIGKILL');
        await exited;
      }
    },
    pause() {
      if (server.running) child!.kill('SIGSTOP');
    },
    resume() {
      if (server.running) child!.kill('SIGCONT');
    },
  };
  await server.start();
  return server;
}

/** `redis-cli -p port args…` (its stdout, trimmed). */
export async function redisCli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await pexecFile('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 10_000 });
  return stdout.trim();
}

/**
 * A replica of the redis-server on `primaryPort` (`--replicaof`), resolved
 * once its link is up and the initial sync is done. `primaryPort` may be a
 * `startLink` in front of the primary (a replication link the test can cut).
 */
export async function startReplica(primaryPort: number, opts: { port?: number; extraArgs?: readonly string[] } = {}): Promise<RedisServer> {
  const replica = await startRedisServer({
    ...(opts.port !== undefined && { port: opts.port }),
    extraArgs: ['--replicaof', '127.0.0.1', String(primaryPort), ...(opts.extraArgs ?? [])],
  });
  await waitReplicating(replica.port);
  return replica;
}

/** Until the redis-server on `port` is a replica whose link to its primary is up and synced. */
export async function waitReplicating(port: number, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const info = await redisCli(port, 'info', 'replication').catch(() => '');
    if (/master_link_status:up/.test(info) && /master_sync_in_progress:0/.test(info)) return;
    if (Date.now() > until) throw new Error(`redis-server on ${port} not replicating after ${timeoutMs / 1000} s: ${info.replace(/\r?\n/g, ' ')}`);
    await sleep(50);
  }
}

export interface Sentinel {
  readonly port: number;
  readonly dir: string;
  /** The primary this Sentinel names now (`SENTINEL get-master-addr-by-name`). */
  primaryPort(): Promise<number | undefined>;
  stop(): Promise<void>;
}

/**
 * A Sentinel (`redis-server <conf> --sentinel`) on a free loopback port,
 * watching the primary on `primaryPort` as `name`, with short timings so a
 * test's failover takes seconds: down after `downAfterMs` (default 1,000),
 * failover timeout `failoverTimeoutMs` (default 5,000). Its config file is
 * its own (Sentinel rewrites it).
 */
export async function startSentinel(opts: {
  primaryPort: number;
  name?: string;
  quorum?: number;
  downAfterMs?: number;
  failoverTimeoutMs?: number;
}): Promise<Sentinel> {
  const name = opts.name ?? 'mymaster';
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), `xactly-sentinel-${port}-`));
  const conf = join(dir, 'sentinel.conf');
  await writeFile(
    conf,
    [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      'logfile sentinel.log',
      'daemonize no',
      `sentinel monitor ${name} 127.0.0.1 ${opts.primaryPort} ${opts.quorum ?? 2}`,
      `sentinel down-after-milliseconds ${name} ${opts.downAfterMs ?? 1_000}`,
      `sentinel failover-timeout ${name} ${opts.failoverTimeoutMs ?? 5_000}`,
      `sentinel parallel-syncs ${name} 1`,
      '',
    ].join('\n'),
  );
  const child = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  const until = Date.now() + 20_000;
  for (;;) {
    if ((await redisCli(port, 'ping').catch(() => '')) === 'PONG') break;
    if (child.exitCode !== null) {
      const log = await readFile(join(dir, 'sentinel.log'), 'utf8').catch(() => '');
      throw new Error(`sentinel on ${port} exited with ${child.exitCode}: ${log.split('\n').slice(-5).join(' | ')}`);
    }
    if (Date.now() > until) throw new Error(`sentinel on ${port} not ready after 20 s`);
    await sleep(50);
  }
  return {
    port,
    dir,
    async primaryPort() {
      const out = await redisCli(port, 'sentinel', 'get-master-addr-by-name', name).catch(() => '');
      const p = Number(out.split('\n')[1]);
      return Number.isInteger(p) && p > 0 ? p : undefined;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
}

/** Until every Sentinel knows the others and `replicas` replica(s) of the primary (a failover needs both). */
export async function waitSentinelsAgree(sentinels: readonly Sentinel[], replicas: number, name = 'mymaster', timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const seen = await Promise.all(
      sentinels.map(async (s) => {
        const lines = (await redisCli(s.port, 'sentinel', 'master', name).catch(() => '')).split('\n');
        const field = (f: string) => (lines.includes(f) ? Number(lines[lines.indexOf(f) + 1]) : 0);
        return field('num-other-sentinels') >= sentinels.length - 1 && field('num-slaves') >= replicas;
      }),
    );
    if (seen.every(Boolean)) return;
    if (Date.now() > until) throw new Error(`Sentinels do not know each other and ${replicas} replica(s) after ${timeoutMs / 1000} s`);
    await sleep(100);
  }
}

export interface Link {
  readonly port: number;
  /** Stop passing bytes on to the target (they are held, as on a stalled network path). */
  hold(): void;
  /** Pass on what was held and go on. */
  release(): void;
  /** Drop every connection and what was held with it (the bytes in flight are lost). */
  cut(): void;
  close(): Promise<void>;
}

/**
 * A TCP link on a free loopback port to `targetPort` (a replica's way to
 * its primary): bytes from the target to the client can be held and then
 * dropped, so a replica falls behind its primary by exactly what the test
 * held back. Forwards only to 127.0.0.1.
 */
export async function startLink(targetPort: number): Promise<Link> {
  let holding = false;
  const pairs = new Set<{ client: Socket; upstream: Socket; held: Buffer[] }>();
  const server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    const pair = { client, upstream, held: [] as Buffer[] };
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.on('data', (b: Buffer) => upstream.write(b));
    upstream.on('data', (b: Buffer) => (holding ? pair.held.push(b) : client.write(b)));
  });
  const port = await freePort();
  await new Promise<void>((done) => server.listen(port, '127.0.0.1', done));
  const cut = () => {
    for (const p of [...pairs]) {
      p.held.length = 0;
      p.client.destroy();
      p.upstream.destroy();
    }
    holding = false;
  };
  return {
    port,
    hold() {
      holding = true;
    },
    release() {
      holding = false;
      for (const p of pairs) for (const b of p.held.splice(0)) p.client.write(b);
    },
    cut,
    async close() {
      cut();
      await new Promise<void>((done) => server.close(() => done()));
    },
  };
}

/**
 * A Redis Cluster of redis-servers of our own: `masters` masters (3 at
 * least, as `redis-cli --cluster create` wants) with `replicasPer`
 * replica(s) each, on free ports whose +10000 bus ports are free too;
 * resolved when every node says cluster_state:ok and every replica is
 * synced. The caller stops `nodes` (they are plain RedisServers).
 */
export async function startCluster(opts: { masters?: number; replicasPer?: number; extraArgs?: readonly string[] } = {}): Promise<{ nodes: RedisServer[] }> {
  const total = (opts.masters ?? 3) * (1 + (opts.replicasPer ?? 0));
  const nodes: RedisServer[] = [];
  try {
    for (let i = 0; i < total; i++) {
      const port = await freePort({ max: 50_000, alsoFree: [10_000] });
      nodes.push(
        await startRedisServer({
          port,
          cluster: true,
          extraArgs: ['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--appendonly', 'no', ...(opts.extraArgs ?? [])],
        }),
      );
    }
    await pexecFile(
      'redis-cli',
      ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', String(opts.replicasPer ?? 0), '--cluster-yes'],
      { timeout: 30_000 },
    );
    const until = Date.now() + 30_000;
    for (const n of nodes) {
      for (;;) {
        const state = await redisCli(n.port, 'cluster', 'info').catch(() => '');
        const role = await redisCli(n.port, 'info', 'replication').catch(() => '');
        const synced = !/role:slave/.test(role) || (/master_link_status:up/.test(role) && /master_sync_in_progress:0/.test(role));
        // Every node knows every replica (CLUSTER SLOTS lists them), not only its own.
        const known = (await redisCli(n.port, 'cluster', 'nodes').catch(() => '')).split('\n').filter((l) => / (myself,)?slave /.test(l)).length;
        if (state.includes('cluster_state:ok') && synced && known === total - (opts.masters ?? 3)) break;
        if (Date.now() > until) throw new Error(`cluster node ${n.port} not ok after 30 s: ${state.replace(/\r?\n/g, ' ')}`);
        await sleep(50);
      }
    }
  } catch (err) {
    for (const n of nodes) await n.stop();
    throw err;
  }
  return { nodes };
}
