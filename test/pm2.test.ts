/**
 * ecosystem.config.js under the project's own PM2, against real Redis and the
 * fake X over HTTP: N worker processes register with BullMQ, publish every
 * post exactly once, and a `pm2 stop` in the middle of publishing drains
 * in-flight calls (exit 0, nothing left claimed) so a restart finishes the
 * rest with no duplicate and nothing lost.
 *
 * PM2 runs with PM2_HOME in a temp dir (its own daemon, sockets and logs), so
 * a developer's own PM2 is never touched. Needs `npm run build` (pretest).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyId } from '../src/domain/key.js';
import { startFakeX, type FakeX } from '../src/fake-x/index.js';
import type { Ledger } from '../src/ledger/ledger.js';
import { openLedger, createProducer } from '../src/app.js';
import type { PostRecord } from '../src/ledger/record.js';
import { type Producer } from '../src/queue/producer.js';
import type { Account } from '../src/x/credentials.js';
import { ACCOUNTS, dropPrefix, FAKE_ACCOUNTS, newRedis, REDIS_URL, uniquePrefix, waitUntil } from './harness.js';
import { accountOf, fakeAccountOf, numberedAccounts } from './support/accounts.js';
import { type LatencyProxy, startLatencyProxy } from './support/latency-proxy.js';

const ROOT = join(import.meta.dirname, '..');
const PM2_BIN = join(ROOT, 'node_modules', 'pm2', 'bin', 'pm2');
const ECOSYSTEM = join(ROOT, 'ecosystem.config.js');
const APP = 'xactly-worker';
const X_TIMEOUT_MS = 2_000;
/** What ecosystem.config.js must compute: graceful window (2 × timeout + 5 s) + 5 s. */
const KILL_TIMEOUT_MS = 2 * X_TIMEOUT_MS + 5_000 + 5_000;

// Two accounts beyond acme/globex keep every account far below X's
// 100-posts-per-15-min budget even with 200 posts.
const EXTRA = numberedAccounts(2, { prefix: 'pm2', userIdBase: 7000 });
const accounts: Account[] = [...ACCOUNTS, ...EXTRA.map((a) => accountOf(a))];
const fakeAccounts = [...FAKE_ACCOUNTS, ...EXTRA.map(fakeAccountOf)];

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

let dir: string;
let pm2Home: string;
let accountsFile: string;
const redis = newRedis();
const prefixes: string[] = [];

/** One PM2 CLI call, as an operator would type it, bounded in time. */
function pm2(args: string[], env: Record<string, string> = {}, timeoutMs = 60_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [PM2_BIN, ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env, PM2_HOME: pm2Home, FORCE_COLOR: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`pm2 ${args.join(' ')} took over ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

async function pm2Ok(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const r = await pm2(args, env);
  if (r.code !== 0) throw new Error(`pm2 ${args.join(' ')} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r;
}

interface Proc {
  name: string;
  pm_id: number;
  pid: number;
  pm2_env: { status: string; exec_mode: string; kill_timeout: number; instances: number; restart_time: number; pm_out_log_path: string };
}

async function jlist(): Promise<Proc[]> {
  const { stdout } = await pm2Ok(['jlist']);
  return (JSON.parse(stdout.slice(stdout.indexOf('['))) as Proc[]).filter((p) => p.name === APP);
}

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Read a log file from a byte offset (PM2 appends; earlier runs stay in it). */
async function readFrom(file: string, offset: number): Promise<string> {
  return (await readFile(file)).subarray(offset).toString('utf8');
}
const sizeOf = async (file: string) => (existsSync(file) ? (await stat(file)).size : 0);

interface Scenario {
  prefix: string;
  env: Record<string, string>;
  fake: FakeX;
  producer: Producer;
  ledger: Ledger;
  ids: string[];
  texts: Set<string>;
  requests: Record<string, string>[];
}

async function scenario(
  label: string,
  posts: number,
  xBaseUrl: (fake: FakeX) => Promise<string> | string,
  extraEnv: Record<string, string> = {},
): Promise<Scenario> {
  const prefix = uniquePrefix(label);
  prefixes.push(prefix);
  const fake = await startFakeX({ accounts: fakeAccounts });
  const env = {
    REDIS_URL,
    XACTLY_PREFIX: prefix,
    X_API_BASE_URL: await xBaseUrl(fake),
    XACTLY_ACCOUNTS_FILE: accountsFile,
    X_TIMEOUT_MS: String(X_TIMEOUT_MS),
    XACTLY_SETTLE_WINDOW_MS: '5000',
    XACTLY_WORKERS: '3',
    LOG_LEVEL: 'info',
    ...extraEnv,
  };
  const producer = createProducer({ connection: redis, prefix, knownAccount: (id) => accounts.some((a) => a.id === id) });
  const ledger = openLedger(redis, { prefix, retentionMs: 3_600_000 });
  const requests = Array.from({ length: posts }, (_, i) => ({
    slotId: `pm2-${i}`,
    postId: 'p',
    accountId: accounts[i % accounts.length]!.id,
    kind: 'post',
    text: `pm2 ${prefix} #${i}`,
  }));
  return {
    prefix,
    env,
    fake,
    producer,
    ledger,
    requests,
    ids: requests.map((r) => keyId(r)),
    texts: new Set(requests.map((r) => r.text)),
  };
}

/** Start only the worker app and wait until its N processes are BullMQ workers on the publish queue. */
async function startWorkers(s: Scenario, expected: number, notPids: number[] = []): Promise<Proc[]> {
  await pm2Ok(['start', ECOSYSTEM, '--only', APP], s.env);
  const procs = await waitUntil(
    async () => {
      const list = await jlist();
      return list.length === expected && list.every((p) => p.pm2_env.status === 'online' && p.pid > 0 && !notPids.includes(p.pid)) ? list : undefined;
    },
    `${expected} online ${APP} processes`,
    30_000,
  );
  await waitUntil(async () => (await s.producer.queue.getWorkers()).length === expected, `${expected} workers registered in Redis`, 30_000);
  return procs;
}

const records = async (s: Scenario) => (await s.ledger.getMany(s.ids)) as PostRecord[];

async function waitAllSent(s: Scenario, timeoutMs: number): Promise<PostRecord[]> {
  return waitUntil(
    async () => {
      const rs = await records(s);
      return rs.every((r) => r?.state === 'sent') ? rs : undefined;
    },
    `all ${s.ids.length} keys sent`,
    timeoutMs,
  );
}

/**
 * `pm2 stop`, then prove every process drained: exit code 0 (not SIGKILL),
 * pid gone, and its own record of the stop in Redis says "drained". (Not the
 * out log: PM2 may close it before a worker's last stdout line arrives.)
 */
async function stopAndCheckDrained(s: Scenario, procs: Proc[], verb: 'stop' | 'delete'): Promise<{ stoppingAt: number[]; ms: number }> {
  const pm2Log = join(pm2Home, 'pm2.log');
  const pm2LogAt = await sizeOf(pm2Log);
  const t0 = Date.now();
  await pm2Ok([verb, APP]);
  const ms = Date.now() - t0;

  for (const p of procs) expect(isAlive(p.pid), `pid ${p.pid} still running after pm2 ${verb}`).toBe(false);
  if (verb === 'stop') for (const p of await jlist()) expect(p.pm2_env.status).toBe('stopped');
  const exits = await waitUntil(
    async () => {
      const text = await readFrom(pm2Log, pm2LogAt);
      const found = procs.map((p) => new RegExp(`App \\[${APP}:${p.pm_id}\\] exited with code \\[(\\w+)\\] via signal \\[(\\w+)\\]`).exec(text));
      return found.every(Boolean) ? found.map((m) => `${m![1]}/${m![2]}`) : undefined;
    },
    'PM2 to log every exit',
    10_000,
  );
  expect(exits).toEqual(procs.map(() => '0/SIGINT'));
  // Written before each worker exited, so it is there now that every pid is gone.
  const stops = await Promise.all(
    procs.map(async (p) => {
      const raw = await redis.get(s.ledger.keys.workerStopped(`${hostname()}-${p.pid}`));
      expect(raw, `worker ${p.pid} recorded no stop`).not.toBeNull();
      return JSON.parse(raw!) as { how: string; stoppingAt: number; stoppedAt: number };
    }),
  );
  for (const [i, st] of stops.entries()) expect(st.how, `worker ${procs[i]!.pid}`).toBe('drained');
  return { stoppingAt: stops.map((st) => st.stoppingAt), ms };
}

function expectExactlyOnce(s: Scenario, rs: PostRecord[]): void {
  const created = s.fake.created().filter((c) => c.kind === 'post');
  const texts = created.map((c) => c.text);
  expect(new Set(texts).size, 'duplicate posts on X').toBe(texts.length);
  expect(texts.length).toBe(s.ids.length);
  expect(new Set(texts)).toEqual(s.texts);
  const byId = new Map(created.map((c) => [c.id, c.text]));
  for (const [i, r] of rs.entries()) expect(byId.get(r.tweetId!), `key ${s.ids[i]}`).toBe(s.requests[i]!.text);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'xactly-pm2-'));
  pm2Home = join(dir, 'pm2');
  accountsFile = join(dir, 'accounts.json');
  await writeFile(accountsFile, JSON.stringify({ accounts }));
});

afterAll(async () => {
  let daemonPid: number | undefined;
  try {
    daemonPid = Number(await readFile(join(pm2Home, 'pm2.pid'), 'utf8'));
  } catch {
    /* never started */
  }
  const leftover = await jlist().catch(() => []);
  await pm2(['kill'], {}, 60_000).catch(() => undefined);
  // Only our own processes, by pid, if `pm2 kill` left any behind.
  for (const pid of [daemonPid, ...leftover.map((p) => p.pid)]) if (pid && isAlive(pid)) process.kill(pid, 'SIGKILL');
  for (const p of prefixes) await dropPrefix(redis, p);
  await redis.quit();
  await rm(dir, { recursive: true, force: true });
}, 90_000);

describe('ecosystem.config.js', () => {
  it('loads the way PM2 loads it (require of an ES module) with the documented defaults', async () => {
    const load = (env: Record<string, string>) =>
      new Promise<Run>((resolve) => {
        const child: ChildProcess = spawn(
          process.execPath,
          [
            '-e',
            `
        const { apps } = require(${JSON.stringify(ECOSYSTEM)});
        console.log(JSON.stringify(apps.map(({ name, args, exec_mode, instances, kill_timeout, autorestart }) => ({ name, args, exec_mode, instances, kill_timeout, autorestart }))));
      `,
          ],
          { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
        );
        let stdout = '';
        let stderr = '';
        child.stdout!.on('data', (d) => (stdout += d));
        child.stderr!.on('data', (d) => (stderr += d));
        child.on('close', (code) => resolve({ code, stdout, stderr }));
      });
    const dflt = await load({});
    expect(dflt.code, dflt.stderr).toBe(0);
    expect(JSON.parse(dflt.stdout)).toEqual([
      { name: 'xactly-worker', args: 'worker', exec_mode: 'fork', instances: 2, kill_timeout: 30_000, autorestart: true },
      { name: 'xactly-board', args: 'board', exec_mode: 'fork', instances: 1, kill_timeout: 5_000, autorestart: true },
    ]);
    const [worker] = JSON.parse((await load({ XACTLY_WORKERS: '7', X_TIMEOUT_MS: '20000' })).stdout);
    expect(worker).toMatchObject({ instances: 7, kill_timeout: 50_000 });
    const bad = await load({ XACTLY_WORKERS: 'lots' });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('XACTLY_WORKERS must be a positive integer (got "lots")');
  });
});

describe('PM2 running the worker app', () => {
  it('starts N workers that register with Redis, restarts a killed one, publishes 50 posts exactly once and stops them gracefully', async () => {
    const s = await scenario('pm2', 50, (fake) => fake.url);
    try {
      const t0 = Date.now();
      const procs = await startWorkers(s, 3);
      const startedMs = Date.now() - t0;
      for (const p of procs) expect(p.pm2_env).toMatchObject({ exec_mode: 'fork_mode', kill_timeout: KILL_TIMEOUT_MS });

      // autorestart: a crashed process comes back and registers again.
      const victim = procs[0]!;
      process.kill(victim.pid, 'SIGKILL');
      const after = await waitUntil(
        async () => {
          const list = await jlist();
          const back = list.find((p) => p.pm_id === victim.pm_id);
          return back && back.pid > 0 && back.pid !== victim.pid && back.pm2_env.status === 'online' ? list : undefined;
        },
        'PM2 to restart the killed worker',
        30_000,
      );
      expect(after.find((p) => p.pm_id === victim.pm_id)!.pm2_env.restart_time).toBe(1);
      await waitUntil(async () => (await s.producer.queue.getWorkers()).length === 3, '3 workers registered again', 30_000);

      const results = await s.producer.enqueueMany(s.requests);
      expect(results.map((r) => r.status)).toEqual(s.requests.map(() => 'queued'));
      const t1 = Date.now();
      const rs = await waitAllSent(s, 60_000);
      const publishMs = Date.now() - t1;
      expectExactlyOnce(s, rs);
      expect(rs.map((r) => r.attempt)).toEqual(rs.map(() => 1));

      const { ms: stopMs } = await stopAndCheckDrained(s, after, 'delete');
      expect(await jlist()).toEqual([]);
      expect(await s.producer.queue.getWorkers()).toEqual([]);
      // Nothing moved after the stop.
      expect(s.fake.created().length).toBe(50);
      console.log(`pm2 50 posts: start+register ${startedMs} ms, publish ${publishMs} ms, delete ${stopMs} ms`);
    } finally {
      await pm2(['delete', APP]).catch(() => undefined);
      await s.producer.close();
      await s.fake.close();
    }
  }, 120_000);

  it('pm2 stop in the middle of publishing drains in-flight calls; a restart finishes the rest with no duplicate and nothing lost', async () => {
    let proxy: LatencyProxy | undefined;
    // X answers after 300 ms, so publishing is still in flight when PM2 stops
    // the workers: 3 processes × 2 jobs × 300 ms per X call ≈ 20 posts/s, and
    // 200 posts take ~10 s.
    const s = await scenario('pm2stop', 200, async (fake) => (proxy = await startLatencyProxy(fake.url, 300)).url, { XACTLY_CONCURRENCY: '2' });
    try {
      const procs = await startWorkers(s, 3);
      await s.producer.enqueueMany(s.requests);
      await waitUntil(() => s.fake.created().length >= 20, '20 posts on X', 30_000);

      const { stoppingAt, ms: stopMs } = await stopAndCheckDrained(s, procs, 'stop');
      expect(stoppingAt).toHaveLength(3);
      // The stop really came mid-publish: X calls were open when workers got the signal.
      const open = proxy!.calls.filter((p) => p.method === 'POST' && stoppingAt.some((t) => p.start < t && p.end > t));
      expect(open.length, 'X calls in flight when the workers were signalled').toBeGreaterThan(0);

      // Drained: every call that went out was recorded, none is left claimed or ambiguous.
      const mid = await records(s);
      const states = new Map<string, number>();
      for (const r of mid) states.set(r.state, (states.get(r.state) ?? 0) + 1);
      expect([...states.keys()].sort()).toEqual(['queued', 'sent']);
      expect(states.get('sent')).toBe(s.fake.created().length);
      const sentAtStop = states.get('sent')!;
      expect(await s.producer.queue.getWorkers()).toEqual([]);
      // Nothing is published while the workers are down: no worker process is
      // left, and once no call is left in flight on the way to X, X holds
      // exactly what the ledger says was sent.
      await proxy!.idle();
      expect(s.fake.created().length).toBe(sentAtStop);

      const restarted = await startWorkers(
        s,
        3,
        procs.map((p) => p.pid),
      );
      const rs = await waitAllSent(s, 60_000);
      expectExactlyOnce(s, rs);
      expect(rs.map((r) => r.attempt)).toEqual(rs.map(() => 1));
      await stopAndCheckDrained(s, restarted, 'delete');
      console.log(`pm2 stop mid-publish: ${sentAtStop}/200 sent at stop, ${open.length} X calls in flight, stop took ${stopMs} ms`);
    } finally {
      await pm2(['delete', APP]).catch(() => undefined);
      await s.producer.close();
      await proxy?.close();
      await s.fake.close();
    }
  }, 120_000);
});
