/**
 * Redis for tests and benchmarks: the shared server (REDIS_URL), fresh
 * prefixes on it and their clean-up, and redis-servers of a test's own
 * (restarts, crashes, AOF modes, Cluster nodes) as child processes.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile } from 'node:fs/promises';
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
        child!.kill('SIGKILL');
        await exited;
      }
    },
  };
  await server.start();
  return server;
}
