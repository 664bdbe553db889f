/**
 * The chaos run behind `bench/chaos.ts`: the fake X in its own process with
 * every fault class, K real `xactly worker` processes that get SIGKILLed and
 * SIGTERMed while they publish, two producers that race and re-enqueue, and
 * at the end a check of every key against the fake X's ground truth.
 *
 * Everything runs on this machine: the fake X, its control port, the
 * workers and any redis-server started here listen on 127.0.0.1 only.
 * Every loop is bounded by the run's timeout; the run stops by itself.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import type { Ledger } from '../src/ledger/ledger.js';
import { randomBytes } from 'node:crypto';
import { existsSync, openSync, closeSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { renderTable } from '../src/cli/table.js';
import { jobIdFor, keyId as keyIdOf, parseJobId } from '../src/domain/key.js';
import { ALL_FAULT_KINDS, ALL_LOOKUP_FAULT_KINDS, type CreatedItem, type FakeAccount, type FaultKind, mulberry32 } from '../src/fake-x/index.js';
import { openLedger, createProducer } from '../src/app.js';
import type { PostRecord, PostState } from '../src/ledger/record.js';
import { type EnqueueResult, type Producer } from '../src/queue/producer.js';
import type { FakeXProcessConfig } from './fake-x-process.js';

const pexecFile = promisify(execFile);

// ------------------------------------------------------------------ options

export interface ChaosEventContext {
  /** The run's Redis connection (reconnects on its own) and its prefix. */
  readonly redis: Redis;
  readonly prefix: string;
  /** Signal every live worker at once and start as many replacements. */
  hitAllWorkers(signal: 'SIGKILL' | 'SIGTERM'): number;
}

export interface ChaosEvent {
  /** Seconds after the first enqueue. */
  readonly atS: number;
  readonly name: string;
  readonly run: (ctx: ChaosEventContext) => Promise<void>;
}

export interface ChaosOptions {
  readonly keys: number;
  readonly accounts: number;
  readonly workers: number;
  /** Seconds between two kills; 0 = no kills. */
  readonly killEveryS: number;
  /** Share of the kills that are a graceful SIGTERM (the rest are SIGKILL). */
  readonly termShare: number;
  /** Keep killing for this long after the first enqueue (undefined: until every key is final). */
  readonly chaosS?: number;
  readonly faultRate: number;
  readonly faultKinds?: readonly FaultKind[];
  /** The fake X's timeline lag moves at random within [0, lagMaxMs]. */
  readonly lagMaxMs: number;
  readonly seed: number;
  readonly timeoutS: number;
  readonly xTimeoutMs: number;
  /** Must exceed lagMaxMs + xTimeoutMs (default: lagMaxMs + xTimeoutMs + 3 s). */
  readonly settleMs: number;
  readonly reconcileMs: number;
  readonly concurrency: number;
  /** scheduledAt is spread over this many seconds after the run starts. */
  readonly spreadS: number;
  /** deadline = scheduledAt + this. */
  readonly deadlineS: number;
  /** Share of keys each producer re-enqueues as a duplicate while publishing goes on. */
  readonly dupShare: number;
  /** Keep X's duplicate-content 403 on (off: a double publish shows up on the fake instead of being refused). */
  readonly xDuplicateCheck: boolean;
  /**
   * X as it behaves in 2026 (default on): reads fail too (cut gzip bodies,
   * hangs, at a third of the fault rate), replies to a post that did not
   * mention the account and DMs to a user who refuses them are refused for
   * good, texts carry x.com status links and replies lead with @handles.
   */
  readonly realX?: boolean;
  readonly redisUrl: string;
  /** A worker that exits on its own is restarted (as PM2 would) and counted; with this, not a violation. */
  readonly allowWorkerCrashes: boolean;
  /** Timed things to do during the run (a Redis restart, ...). */
  readonly events?: readonly ChaosEvent[];
  /** Keep the temp dir (accounts file, worker logs) even on success. */
  readonly keepTemp: boolean;
  readonly log: (line: string) => void;
}

export const DEFAULTS = {
  keys: 300, accounts: 20, workers: 3, killEveryS: 3, termShare: 0.25, faultRate: 0.3, lagMaxMs: 20_000, timeoutS: 600,
  xTimeoutMs: 2_000, reconcileMs: 1_000, concurrency: 20, spreadS: 10, deadlineS: 600, dupShare: 0.2,
} as const;

/** The settle window must outlast the lag plus the request timeout. */
export const settleFor = (lagMaxMs: number, xTimeoutMs: number): number => lagMaxMs + xTimeoutMs + 3_000;

// ------------------------------------------------------------------ small helpers

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

/** Where the built CLI and helper live, whether we run from dist/bench or from bench/ (vitest). */
export function builtPaths(): { root: string; cli: string; fakeX: string; chaos: string } {
  const here = dirname(fileURLToPath(import.meta.url));
  const root = here.endsWith(join('dist', 'bench')) ? resolve(here, '..', '..') : resolve(here, '..');
  return {
    root,
    cli: join(root, 'dist', 'src', 'cli', 'main.js'),
    fakeX: join(root, 'dist', 'bench', 'fake-x-process.js'),
    chaos: join(root, 'dist', 'bench', 'chaos.js'),
  };
}

/** A TCP port nobody listens on right now on 127.0.0.1 (and, for Cluster, its +10000 bus port). */
export async function freePort(opts: { min?: number; max?: number; alsoFree?: number[] } = {}): Promise<number> {
  const min = opts.min ?? 20_000;
  const max = opts.max ?? 50_000;
  const isFree = (port: number) =>
    new Promise<boolean>((done) => {
      const s = net.createServer();
      s.once('error', () => done(false));
      s.listen(port, '127.0.0.1', () => s.close(() => done(true)));
    });
  for (let i = 0; i < 200; i++) {
    const port = min + Math.floor(Math.random() * (max - min));
    if (!(await isFree(port))) continue;
    if (opts.alsoFree && !(await Promise.all(opts.alsoFree.map((d) => isFree(port + d)))).every(Boolean)) continue;
    return port;
  }
  throw new Error('no free port found');
}

import { dropPrefix } from '../src/ledger/drop.js';

export { dropPrefix };

// ------------------------------------------------------------------ redis-server

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
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--daemonize', 'no', '--logfile', 'redis.log', ...(opts.extraArgs ?? [])];
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
    port, dir, args, url: `redis://127.0.0.1:${port}`,
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

// ------------------------------------------------------------------ fake X process

export interface FakeXControl {
  readonly url: string;
  created(): Promise<CreatedItem[]>;
  faults(): Promise<Record<string, number>>;
  requests(): Promise<Record<string, number>>;
  setLag(ms: number): Promise<void>;
  setFaultRate(rate: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startFakeXProcess(config: FakeXProcessConfig, dir: string): Promise<FakeXControl> {
  const { fakeX } = builtPaths();
  if (!existsSync(fakeX)) throw new Error(`${fakeX} is missing: run \`npm run build\` first`);
  const configPath = join(dir, 'fake-x.json');
  await writeFile(configPath, JSON.stringify(config), { mode: 0o600 });
  const child = spawn(process.execPath, [fakeX, configPath], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  const ready = await new Promise<{ url: string; controlUrl: string }>((resolveReady, reject) => {
    const timer = setTimeout(() => reject(new Error('fake X process did not start within 20 s')), 20_000);
    const lines = createInterface({ input: child.stdout! });
    lines.once('line', (line) => {
      clearTimeout(timer);
      try {
        resolveReady(JSON.parse(line) as { url: string; controlUrl: string });
      } catch (err) {
        reject(err as Error);
      }
    });
    child.once('exit', (code) => reject(new Error(`fake X process exited with ${code}`)));
  });
  const call = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const res = await fetch(`${ready.controlUrl}${path}`, {
      method,
      headers: { 'x-control-token': config.controlToken, 'content-type': 'application/json' },
      ...(body !== undefined && { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(30_000),
    });
    if (!res.ok) throw new Error(`fake X control ${method} ${path}: ${res.status} ${await res.text()}`);
    return (await res.json()) as T;
  };
  let stopped = false;
  return {
    url: ready.url,
    created: () => call<CreatedItem[]>('GET', '/created'),
    faults: () => call<Record<string, number>>('GET', '/faults'),
    requests: () => call<Record<string, number>>('GET', '/requests'),
    setLag: async (ms) => void (await call('POST', '/lag', { ms })),
    setFaultRate: async (rate) => void (await call('POST', '/fault-rate', { rate })),
    async stop() {
      if (stopped) return;
      stopped = true;
      await call('POST', '/shutdown').catch(() => undefined);
      child.stdin?.end();
      await Promise.race([exited, sleep(5_000)]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

// ------------------------------------------------------------------ worker processes

interface WorkerHandle {
  readonly n: number;
  readonly child: ChildProcess;
  readonly logPath: string;
  readonly startedAt: number;
  /** The signal we sent, if any: an exit without one is a crash. */
  sent?: NodeJS.Signals;
  exit?: { code: number | null; signal: NodeJS.Signals | null; at: number };
  readonly exited: Promise<void>;
}

export interface WorkerCrash {
  readonly worker: number;
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly afterS: number;
  /** The last lines of its log: what broke. */
  readonly tail: string;
}

/**
 * K `xactly worker` processes (the real CLI); logs go straight to files, so
 * this process spends nothing on them. A worker that exits without being
 * told to is recorded as a crash and replaced, as a supervisor would.
 */
class WorkerPool {
  private readonly handles: WorkerHandle[] = [];
  private next = 0;
  private stopping = false;
  readonly crashes: WorkerCrash[] = [];
  readonly graceful: { how: string; code: number | null; ms: number }[] = [];
  kills = 0;
  terms = 0;

  constructor(
    private readonly env: NodeJS.ProcessEnv,
    private readonly logDir: string,
    private readonly log: (line: string) => void,
  ) {}

  start(): WorkerHandle {
    const n = ++this.next;
    const logPath = join(this.logDir, `worker-${n}.log`);
    const fd = openSync(logPath, 'a');
    const child = spawn(process.execPath, [builtPaths().cli, 'worker'], { env: this.env, stdio: ['ignore', fd, fd] });
    closeSync(fd);
    const h: WorkerHandle = {
      n, child, logPath, startedAt: Date.now(),
      exited: new Promise<void>((done) => {
        child.once('exit', (code, signal) => {
          h.exit = { code, signal, at: Date.now() };
          if (!h.sent && !this.stopping) void this.onCrash(h);
          done();
        });
      }),
    };
    this.handles.push(h);
    return h;
  }

  private async onCrash(h: WorkerHandle): Promise<void> {
    const tail = (await readFile(h.logPath, 'utf8').catch(() => '')).trimEnd().split('\n').slice(-6).join('\n');
    const crash = { worker: h.n, code: h.exit!.code, signal: h.exit!.signal, afterS: (h.exit!.at - h.startedAt) / 1000, tail };
    this.crashes.push(crash);
    this.log(`worker ${h.n} exited on its own (code ${crash.code}, signal ${crash.signal}) after ${crash.afterS.toFixed(1)} s; restarting it. Last log lines:\n${tail}`);
    if (!this.stopping) this.start();
  }

  live(): WorkerHandle[] {
    return this.handles.filter((h) => !h.exit && !h.sent);
  }

  /** Wait until the initial workers logged that they started. */
  async ready(handles: readonly WorkerHandle[], timeoutMs = 30_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    for (const h of handles) {
      for (;;) {
        const text = await readFile(h.logPath, 'utf8').catch(() => '');
        if (text.includes('worker started')) break;
        if (h.exit) throw new Error(`worker ${h.n} exited before it started (code ${h.exit.code}): ${text.trim().split('\n').slice(-3).join(' | ')}`);
        if (Date.now() > until) throw new Error(`worker ${h.n} did not start within ${timeoutMs / 1000} s`);
        await sleep(100);
      }
    }
  }

  /** SIGKILL or SIGTERM one worker and start its replacement at once. */
  hit(h: WorkerHandle, signal: 'SIGKILL' | 'SIGTERM'): void {
    h.sent = signal;
    const sentAt = Date.now();
    h.child.kill(signal);
    if (signal === 'SIGKILL') this.kills++;
    else {
      this.terms++;
      void this.watchGraceful(h, sentAt);
    }
    this.start();
  }

  private async watchGraceful(h: WorkerHandle, sentAt: number): Promise<void> {
    // The drain window is 2 x X_TIMEOUT_MS + 5 s; far more than that means it hangs.
    const done = await Promise.race([h.exited.then(() => true), sleep(60_000).then(() => false)]);
    if (!done) {
      h.child.kill('SIGKILL');
      this.graceful.push({ how: 'hung (SIGKILLed after 60 s)', code: null, ms: Date.now() - sentAt });
      return;
    }
    const text = await readFile(h.logPath, 'utf8').catch(() => '');
    const how = /"how":"(drained|forced)"/.exec(text)?.[1] ?? 'no "stopped" line';
    this.graceful.push({ how, code: h.exit!.code, ms: h.exit!.at - sentAt });
  }

  /** Stop everyone gracefully (bounded), then SIGKILL stragglers. */
  async stopAll(graceMs: number): Promise<void> {
    this.stopping = true;
    const live = this.handles.filter((h) => !h.exit);
    for (const h of live) {
      if (!h.sent) {
        h.sent = 'SIGTERM';
        h.child.kill('SIGTERM');
      }
    }
    await Promise.race([Promise.all(live.map((h) => h.exited)), sleep(graceMs)]);
    for (const h of live) if (!h.exit) h.child.kill('SIGKILL');
    await Promise.all(live.map((h) => h.exited));
  }

  /** Synchronous last resort (process 'exit'): nothing may outlive the run. */
  killAllNow(): void {
    this.stopping = true;
    for (const h of this.handles) if (!h.exit) h.child.kill('SIGKILL');
  }
}

// ------------------------------------------------------------------ the schedule

export interface KeySpec {
  readonly keyId: string;
  readonly slotId: string;
  readonly postId: string;
  readonly accountId: string;
  readonly userId: string;
  readonly kind: 'post' | 'reply' | 'dm';
  readonly text: string;
  readonly inReplyToTweetId?: string;
  readonly recipientId?: string;
  readonly scheduledAt: number;
  readonly deadline: number;
  /** X refuses this one for good (a restricted reply, a DM to a user who refuses DMs): it must end failed/rejected. */
  readonly refusedByX?: boolean;
}

export interface ChaosAccount {
  readonly id: string;
  readonly userId: string;
  readonly token: string;
}

/**
 * N keys over M accounts: 60 % posts, 20 % replies, 20 % DMs. Every text is
 * unique (it carries the run id and the key's number), so the fake X's
 * ground truth maps back to keys by text; some texts carry what X rewrites
 * (URLs, x.com status links, `&`, `<`, emoji, a leading @handle in replies)
 * and some slot ids carry characters the job-ID mapping must escape.
 *
 * With `restrictedRootId` / `refuserUserId` (X as it is in 2026), half the
 * replies go to a post whose author did not mention the account (X refuses
 * them for good) and half the DMs to a user who refuses DMs.
 */
export function buildSchedule(o: {
  runId: string; keys: number; accounts: readonly ChaosAccount[]; rootTweetId: string; fanUserId: string; fanUsername?: string;
  start: number; spreadMs: number; deadlineMs: number; restrictedRootId?: string; refuserUserId?: string;
}): KeySpec[] {
  return Array.from({ length: o.keys }, (_, i) => {
    const account = o.accounts[i % o.accounts.length]!;
    const kind = i % 5 === 3 ? 'reply' : i % 5 === 4 ? 'dm' : 'post';
    const slotId = i % 3 === 0 ? `${new Date(o.start).toISOString()}/${i}` : `slot-${i}`;
    const postId = `${o.runId}.${i % 7 === 0 ? 'p:1' : 'p'}`;
    const extra = i % 4 === 1 ? ` https://example.com/c/${i}?a=1&b=2` : i % 4 === 2 ? ' <3 & ok' : i % 4 === 3 ? ' 🚀' : '';
    const status = o.restrictedRootId && i % 6 === 5 ? ` https://x.com/${o.fanUsername ?? 'fan'}/status/${o.rootTweetId}` : '';
    const lead = o.restrictedRootId && kind === 'reply' && i % 10 === 8 ? `@${o.fanUsername ?? 'fan'} ` : '';
    const text = `${lead}chaos ${o.runId} #${i} ${kind} by ${account.id}${extra}${status}`;
    const scheduledAt = o.start + Math.floor((i / Math.max(1, o.keys)) * o.spreadMs);
    const restricted = kind === 'reply' && o.restrictedRootId !== undefined && i % 10 === 3;
    const refused = kind === 'dm' && o.refuserUserId !== undefined && i % 10 === 4;
    return {
      keyId: keyIdOf({ slotId, postId }), slotId, postId, accountId: account.id, userId: account.userId, kind, text,
      ...(kind === 'reply' && { inReplyToTweetId: restricted ? o.restrictedRootId : o.rootTweetId }),
      ...(kind === 'dm' && { recipientId: refused ? o.refuserUserId : o.fanUserId }),
      scheduledAt, deadline: scheduledAt + o.deadlineMs,
      ...((restricted || refused) && { refusedByX: true }),
    };
  });
}

export function requestOf(k: KeySpec): Record<string, unknown> {
  return {
    slotId: k.slotId, postId: k.postId, accountId: k.accountId, kind: k.kind, text: k.text,
    ...(k.inReplyToTweetId && { inReplyToTweetId: k.inReplyToTweetId }),
    ...(k.recipientId && { recipientId: k.recipientId }),
    scheduledAt: new Date(k.scheduledAt).toISOString(), deadline: new Date(k.deadline).toISOString(),
  };
}

// ------------------------------------------------------------------ the check

export interface Violation {
  readonly keyId: string;
  readonly kind: 'duplicate' | 'lost' | 'stuck' | 'failed-but-live' | 'failed-without-reason' | 'misattributed' | 'enqueue' | 'refused-not-failed' | 'rejected-unexpectedly' | 'account-paused';
  readonly detail: string;
}

export interface Verdict {
  readonly duplicates: number;
  readonly lost: number;
  readonly stuck: number;
  readonly failedByReason: Record<string, number>;
  readonly sent: number;
  readonly failed: number;
  /** createdAt − scheduledAt of each sent key's live item, ms, sorted. */
  readonly liveAfterMs: number[];
  /** Created items with our run id that map to no key (should not exist). */
  readonly strays: number;
  readonly violations: Violation[];
}

/**
 * Compare the ledger with what X really holds. Pure: the ledger records (in
 * `keys` order, undefined when missing) and X's created items in, a verdict
 * out. Items are mapped to keys by their text (unique per key).
 */
export function verify(keys: readonly KeySpec[], records: readonly (PostRecord | undefined)[], created: readonly CreatedItem[], runId: string): Verdict {
  const byText = new Map<string, CreatedItem[]>();
  for (const c of created) {
    const list = byText.get(c.text);
    if (list) list.push(c);
    else byText.set(c.text, [c]);
  }
  const violations: Violation[] = [];
  const failedByReason: Record<string, number> = {};
  const liveAfterMs: number[] = [];
  let duplicates = 0;
  let lost = 0;
  let stuck = 0;
  let sent = 0;
  let failed = 0;
  const known = new Set<string>();
  keys.forEach((k, i) => {
    known.add(k.text);
    const r = records[i];
    const live = byText.get(k.text) ?? [];
    if (live.length > 1) {
      duplicates++;
      violations.push({ keyId: k.keyId, kind: 'duplicate', detail: `${live.length} items on X: ${live.map((c) => c.id).join(', ')}` });
    }
    for (const c of live) {
      const wrong =
        c.authorId !== k.userId ? `author ${c.authorId}, expected ${k.userId}`
          : (k.kind === 'dm') !== (c.kind === 'dm') ? `kind ${c.kind}, expected ${k.kind}`
            : k.inReplyToTweetId !== c.inReplyToTweetId ? `reply target ${c.inReplyToTweetId ?? '-'}, expected ${k.inReplyToTweetId ?? '-'}`
              : k.recipientId !== c.recipientId ? `recipient ${c.recipientId ?? '-'}, expected ${k.recipientId ?? '-'}`
                : undefined;
      if (wrong) violations.push({ keyId: k.keyId, kind: 'misattributed', detail: `item ${c.id}: ${wrong}` });
    }
    if (!r) {
      lost++;
      violations.push({ keyId: k.keyId, kind: 'lost', detail: 'no ledger record' });
      return;
    }
    const state: PostState = r.state;
    // X refused it for good: it must fail with X's reason; nothing else may be rejected.
    if (k.refusedByX && !(state === 'failed' && r.reason === 'rejected')) {
      violations.push({ keyId: k.keyId, kind: 'refused-not-failed', detail: `X refuses this key, but it is ${state}${r.reason ? ` (${r.reason}: ${r.detail ?? ''})` : ''}` });
    } else if (!k.refusedByX && state === 'failed' && r.reason === 'rejected') {
      violations.push({ keyId: k.keyId, kind: 'rejected-unexpectedly', detail: r.detail ?? '' });
    }
    if (state === 'sent') {
      sent++;
      const mine = live.find((c) => c.id === r.tweetId);
      if (!mine) {
        lost++;
        violations.push({
          keyId: k.keyId, kind: 'lost',
          detail: live.length === 0 ? `sent with id ${r.tweetId ?? '-'}, but nothing with its text is on X` : `sent with id ${r.tweetId ?? '-'}, but X holds its text under ${live.map((c) => c.id).join(', ')}`,
        });
      } else liveAfterMs.push(mine.createdAt - k.scheduledAt);
    } else if (state === 'failed') {
      failed++;
      const reason = r.reason ?? '(none)';
      failedByReason[reason] = (failedByReason[reason] ?? 0) + 1;
      if (!r.reason) violations.push({ keyId: k.keyId, kind: 'failed-without-reason', detail: r.detail ?? '' });
      if (live.length > 0) {
        lost++;
        violations.push({ keyId: k.keyId, kind: 'failed-but-live', detail: `failed (${reason}: ${r.detail ?? ''}) but live on X as ${live.map((c) => c.id).join(', ')}` });
      }
    } else {
      stuck++;
      violations.push({ keyId: k.keyId, kind: 'stuck', detail: `state ${state}, attempt ${r.attempt}${live.length ? `, live on X as ${live[0]!.id}` : ''}` });
    }
  });
  const strays = created.filter((c) => c.text.includes(` ${runId} `) && !known.has(c.text)).length;
  return { duplicates, lost, stuck, failedByReason, sent, failed, liveAfterMs: liveAfterMs.sort((a, b) => a - b), strays, violations };
}

// ------------------------------------------------------------------ the run

export interface EnqueueTally {
  queued: number;
  duplicate: number;
  sent: number;
  failed: number;
  /** Keys sent by both producers at the same moment. */
  racing: number;
  /** Re-enqueues of keys whose BullMQ job had been removed. */
  afterRemoval: number;
  /** ... of which the ledger already said `sent`: each must answer `sent` with the same id. */
  afterRemovalSent: number;
  jobsRemoved: number;
  /** Every key re-enqueued by both producers after convergence (answers must be final). */
  finalReplays: number;
}

export interface ChaosReport {
  readonly ok: boolean;
  readonly timedOut: boolean;
  readonly options: Omit<ChaosOptions, 'log' | 'events'>;
  readonly runId: string;
  readonly prefix: string;
  readonly kinds: Record<string, number>;
  readonly enqueue: EnqueueTally;
  readonly faults: Record<string, number>;
  readonly writes: number;
  readonly kills: { sigkill: number; sigterm: number; graceful: Record<string, number>; crashes: WorkerCrash[]; duringPass: number };
  /** Longest time one reconciliation lock token stayed in Redis (a pass that died keeps it until its TTL). */
  readonly longestLockHoldS: number;
  readonly verdict: Verdict;
  readonly convergeS: number;
  readonly events: { name: string; atS: number; tookS: number; error?: string }[];
  readonly stats: Record<string, number>;
  readonly lateWrites: number;
  readonly violations: Violation[];
  readonly tempDir?: string;
}

/** Run the whole thing; never throws for a violation (the report says), only for a broken setup. */
export async function runChaos(o: ChaosOptions): Promise<ChaosReport> {
  if (o.settleMs <= o.lagMaxMs + o.xTimeoutMs) {
    throw new Error(`settle window ${o.settleMs} ms must exceed lag ${o.lagMaxMs} ms + X timeout ${o.xTimeoutMs} ms, or "not on the timeline" is no proof`);
  }
  const { cli } = builtPaths();
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first`);
  const log = o.log;
  const rng = mulberry32(o.seed);
  const runId = `r${randomBytes(3).toString('hex')}`;
  const prefix = `chaos-${runId}`;
  const dir = await mkdtemp(join(tmpdir(), 'xactly-chaos-'));
  const logDir = join(dir, 'logs');
  await mkdir(logDir);

  const accounts: ChaosAccount[] = Array.from({ length: o.accounts }, (_, i) => ({
    id: `chaos-${String(i).padStart(3, '0')}`, userId: String(700_000 + i), token: `chaos-${runId}-${i}-${randomBytes(6).toString('hex')}`,
  }));
  const fan = { userId: '990001', username: 'fan', token: `fan-${runId}-${randomBytes(6).toString('hex')}` };
  const accountsFile = join(dir, 'accounts.json');
  await writeFile(accountsFile, JSON.stringify({ accounts: accounts.map((a) => ({ id: a.id, userId: a.userId, auth: { type: 'oauth2', accessToken: a.token } })) }), { mode: 0o600 });

  const monitor = new Redis(o.redisUrl, { maxRetriesPerRequest: null });
  monitor.on('error', () => undefined);
  const ledger = openLedger(monitor, { prefix, retentionMs: 24 * 3_600_000 });
  let fake: FakeXControl | undefined;
  let pool: WorkerPool | undefined;
  const producers: Producer[] = [];
  const onExit = () => pool?.killAllNow();
  process.once('exit', onExit);
  const tasks: Promise<unknown>[] = [];
  let stopChaos = false;
  let stopAll = false;
  const violations: Violation[] = [];
  const eventLog: ChaosReport['events'] = [];
  const tally: EnqueueTally = { queued: 0, duplicate: 0, sent: 0, failed: 0, racing: 0, afterRemoval: 0, afterRemovalSent: 0, jobsRemoved: 0, finalReplays: 0 };
  let timedOut = false;
  let convergeS = Number.NaN;
  let lateWrites = 0;
  let keys: KeySpec[] = [];
  let producerErrors = 0;
  let killsDuringPass = 0;
  let longestLockHoldMs = 0;

  try {
    // The fake X: faults off until the post to reply to exists.
    const realX = o.realX ?? true;
    const refuser = { userId: '990002', username: 'quiet', token: `quiet-${runId}-${randomBytes(6).toString('hex')}` };
    const fakeAccounts: FakeAccount[] = [
      ...accounts.map((a) => ({ userId: a.userId, username: a.id, tokens: [a.token] })),
      { userId: fan.userId, username: fan.username, tokens: [fan.token] },
      { userId: refuser.userId, username: refuser.username, tokens: [refuser.token] },
    ];
    fake = await startFakeXProcess({
      accounts: fakeAccounts, faultRate: 0, ...(o.faultKinds && { faultKinds: [...o.faultKinds] }), seed: o.seed,
      lagMs: 0, duplicateCheck: o.xDuplicateCheck, rateLimitResetSec: 2, controlToken: randomBytes(16).toString('hex'),
      ...(realX && { lookupFaultRate: o.faultRate / 3, replyRestriction: true, refusesDms: [refuser.userId] }),
    }, dir);
    const fanPost = async (text: string): Promise<string> => {
      const res = await fetch(`${fake!.url}/2/tweets`, {
        method: 'POST', headers: { authorization: `Bearer ${fan.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ text }), signal: AbortSignal.timeout(10_000),
      });
      if (res.status !== 201) throw new Error(`fake X refused the post to reply to: ${res.status} ${await res.text()}`);
      return ((await res.json()) as { data: { id: string } }).data.id;
    };
    // Replies are allowed to the post that mentions every account, refused to the other.
    const rootTweetId = await fanPost(`Who is launching something this week? ${realX ? accounts.map((a) => `@${a.id}`).join(' ') + ' ' : ''}(${runId})`);
    const restrictedRootId = realX ? await fanPost(`Nobody asked you (${runId})`) : undefined;
    await fake.setFaultRate(o.faultRate);
    await fake.setLag(Math.floor(rng() * o.lagMaxMs));

    // The workers: the real CLI, one prefix of our own.
    const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(XACTLY_|X_|REDIS_|BOARD_|LOG_LEVEL)/.test(k)));
    Object.assign(env, {
      REDIS_URL: o.redisUrl, XACTLY_PREFIX: prefix, XACTLY_ACCOUNTS_FILE: accountsFile, X_API_BASE_URL: fake.url,
      X_TIMEOUT_MS: String(o.xTimeoutMs), XACTLY_SETTLE_WINDOW_MS: String(o.settleMs), XACTLY_RECONCILE_INTERVAL_MS: String(o.reconcileMs),
      XACTLY_CONCURRENCY: String(o.concurrency), XACTLY_POST_LIMIT: '100000', XACTLY_DM_LIMIT: '100000', XACTLY_APP_DAILY_LIMIT: '0',
      LOG_LEVEL: 'info',
    });
    pool = new WorkerPool(env, logDir, log);
    const initial = Array.from({ length: o.workers }, () => pool!.start());
    await pool.ready(initial);
    log(`fake X ${fake.url} (lag <= ${o.lagMaxMs} ms, fault rate ${o.faultRate}), ${o.workers} workers on prefix ${prefix}, logs in ${logDir}`);

    // The schedule, enqueued by two producers on their own connections.
    const start = Date.now();
    keys = buildSchedule({
      runId, keys: o.keys, accounts, rootTweetId, fanUserId: fan.userId, fanUsername: fan.username, start: start + 2_000, spreadMs: o.spreadS * 1_000, deadlineMs: o.deadlineS * 1_000,
      ...(restrictedRootId && { restrictedRootId, refuserUserId: refuser.userId }),
    });
    const known = new Set(accounts.map((a) => a.id));
    for (let i = 0; i < 2; i++) {
      const p = createProducer({ connection: o.redisUrl, prefix, knownAccount: (id) => known.has(id) });
      // BullMQ prints a Queue's connection errors to stderr when no one listens (a Redis restart is an event of some runs).
      p.queue.on('error', (err) => {
        if (producerErrors++ === 0) log(`producer queue error (Redis away?): ${err.message}`);
      });
      producers.push(p);
    }
    const [pa, pb] = producers as [Producer, Producer];
    const deadlineAt = start + o.timeoutS * 1_000;
    const queuedAnswers = new Map<string, number>();
    const byKeyId = new Map(keys.map((k) => [k.keyId, k]));

    const count = (k: KeySpec, r: EnqueueResult, expectFinal: false | PostRecord | undefined) => {
      if (r.status === 'queued') {
        tally.queued++;
        queuedAnswers.set(k.keyId, (queuedAnswers.get(k.keyId) ?? 0) + 1);
      } else if (r.status === 'duplicate') tally.duplicate++;
      else if (r.status === 'sent') tally.sent++;
      else if (r.status === 'failed') tally.failed++;
      else {
        violations.push({ keyId: k.keyId, kind: 'enqueue', detail: `same payload answered ${r.status}: ${r.status === 'conflict' ? r.error.message : JSON.stringify(r.errors)}` });
        return;
      }
      if (expectFinal) {
        const want = expectFinal.state === 'sent' ? `sent ${expectFinal.tweetId}` : `failed ${expectFinal.reason}`;
        const got = r.status === 'sent' ? `sent ${r.tweetId}` : r.status === 'failed' ? `failed ${r.reason}` : r.status;
        if (want !== got) violations.push({ keyId: k.keyId, kind: 'enqueue', detail: `re-enqueue of a ${expectFinal.state} key answered ${got}, expected ${want}` });
      }
    };

    const chunk = 50;
    const enqueuer = async (mine: Producer, other: Producer, parity: number) => {
      for (let c = parity; c * chunk < keys.length; c += 2) {
        const batch = keys.slice(c * chunk, (c + 1) * chunk);
        // A share is sent by both producers at the same moment: one of them must get `queued`, the other `duplicate`.
        const racing = batch.filter(() => rng() < o.dupShare / 2);
        tally.racing += racing.length;
        const [own, raced] = await Promise.all([mine.enqueueMany(batch.map(requestOf)), other.enqueueMany(racing.map(requestOf))]);
        own.forEach((r, i) => count(batch[i]!, r, false));
        raced.forEach((r, i) => count(racing[i]!, r, false));
        // And a share of recent keys again, a little later, while they are being published.
        const earlier = keys.slice(Math.max(0, (c - 3) * chunk), (c + 1) * chunk).filter(() => rng() < o.dupShare / 4);
        (await mine.enqueueMany(earlier.map(requestOf))).forEach((r, i) => count(earlier[i]!, r, false));
      }
    };
    await Promise.all([enqueuer(pa, pb, 0), enqueuer(pb, pa, 1)]);
    log(`enqueued ${keys.length} keys in ${((Date.now() - start) / 1000).toFixed(1)} s (${tally.queued} queued, ${tally.duplicate} duplicate answers)`);

    // Kills, lag changes, job removal + re-enqueue, and timed events, all in the background.
    tasks.push((async () => {
      if (o.killEveryS <= 0) return;
      while (!stopChaos && !stopAll) {
        await sleep(o.killEveryS * 1_000);
        if (stopChaos || stopAll) break;
        if (o.chaosS !== undefined && Date.now() - start > o.chaosS * 1_000) break;
        const live = pool!.live();
        if (live.length === 0) continue;
        const victim = live[Math.floor(rng() * live.length)]!;
        const signal = rng() < o.termShare ? 'SIGTERM' : 'SIGKILL';
        // A SIGKILL while the reconciliation lock is held may hit the pass holding it.
        if (signal === 'SIGKILL' && (await monitor.exists(ledger.keys.reconcileLock).catch(() => 0))) killsDuringPass++;
        pool!.hit(victim, signal);
      }
    })());
    tasks.push((async () => {
      while (!stopAll) {
        await sleep(5_000);
        if (stopAll) break;
        await fake!.setLag(Math.floor(rng() * o.lagMaxMs)).catch(() => undefined);
      }
    })());
    tasks.push((async () => {
      // Remove completed jobs, then re-enqueue some of their keys: BullMQ's
      // dedupe is gone, only the ledger stands between them and X.
      while (!stopAll) {
        await sleep(4_000);
        if (stopAll) break;
        try {
          const removed = await pa.queue.clean(0, 2_000, 'completed');
          tally.jobsRemoved += removed.length;
          const sample = [...new Set(removed.map((id) => parseJobId(id)).filter((k) => k !== undefined).map((k) => keyIdOf(k)))]
            .filter(() => rng() < 0.5).slice(0, 100).map((id) => byKeyId.get(id)).filter((k): k is KeySpec => k !== undefined);
          if (sample.length === 0) continue;
          const before = await ledger.getMany(sample.map((k) => k.keyId));
          const answers = await pb.enqueueMany(sample.map(requestOf));
          answers.forEach((r, i) => {
            const b = before[i];
            const final = b && (b.state === 'sent' || b.state === 'failed') ? b : undefined;
            tally.afterRemoval++;
            if (final?.state === 'sent') tally.afterRemovalSent++;
            count(sample[i]!, r, final ?? false);
          });
        } catch (err) {
          // A Redis outage (an event of the run) may fail one round; the next one tries again.
          log(`job removal round failed: ${(err as Error).message}`);
        }
      }
    })());
    tasks.push((async () => {
      // How long one reconciliation lock is held: a pass takes milliseconds to
      // seconds; a lock held far longer belongs to a process that died mid-pass.
      let token: string | null = null;
      let since = 0;
      while (!stopAll) {
        const now = Date.now();
        const current = await monitor.get(ledger.keys.reconcileLock).catch(() => null);
        if (current !== token) {
          token = current;
          since = now;
        } else if (token !== null) {
          longestLockHoldMs = Math.max(longestLockHoldMs, now - since);
        }
        await sleep(250);
      }
    })());
    for (const e of o.events ?? []) {
      tasks.push((async () => {
        const wait = start + e.atS * 1_000 - Date.now();
        if (wait > 0) await sleep(wait);
        if (stopAll) return;
        const t0 = Date.now();
        log(`event: ${e.name}`);
        try {
          await e.run({
            redis: monitor, prefix,
            hitAllWorkers: (signal) => {
              const live = pool!.live();
              for (const h of live) pool!.hit(h, signal);
              return live.length;
            },
          });
          eventLog.push({ name: e.name, atS: (t0 - start) / 1000, tookS: (Date.now() - t0) / 1000 });
        } catch (err) {
          eventLog.push({ name: e.name, atS: (t0 - start) / 1000, tookS: (Date.now() - t0) / 1000, error: (err as Error).message });
          log(`event ${e.name} failed: ${(err as Error).message}`);
        }
      })());
    }

    // Wait until every key is final (bounded by the timeout).
    let lastProgress = 0;
    let records: (PostRecord | undefined)[] = [];
    for (;;) {
      records = await getAll(ledger, keys.map((k) => k.keyId));
      const counts: Record<string, number> = { queued: 0, claimed: 0, ambiguous: 0, sent: 0, failed: 0, missing: 0 };
      for (const r of records) counts[r?.state ?? 'missing']!++;
      const final = counts.sent! + counts.failed!;
      if (Date.now() - lastProgress > 5_000) {
        lastProgress = Date.now();
        log(`t+${Math.round((Date.now() - start) / 1000)}s ${Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(' ')} | workers ${pool.live().length} SIGKILL ${pool.kills} SIGTERM ${pool.terms} crashes ${pool.crashes.length}`);
      }
      const eventsDone = (o.events ?? []).every((e) => eventLog.some((l) => l.name === e.name));
      if (final === keys.length && eventsDone) {
        convergeS = (Date.now() - start) / 1000;
        break;
      }
      if (Date.now() > deadlineAt) {
        timedOut = true;
        log(`timed out after ${o.timeoutS} s with ${keys.length - final} key(s) not final`);
        break;
      }
      await sleep(500);
    }
    stopChaos = true;

    if (!timedOut) {
      // After the fact: clean every finished job, then both producers replay the
      // whole schedule. Every answer must be the ledger's final word, and X must
      // see no new write.
      const settled = await getAll(ledger, keys.map((k) => k.keyId));
      for (const state of ['completed', 'failed'] as const) tally.jobsRemoved += (await pa.queue.clean(0, 100_000, state)).length;
      const writesBefore = (await fake.created()).length;
      for (let c = 0; c < keys.length; c += 500) {
        const batch = keys.slice(c, c + 500);
        const [ra, rb] = await Promise.all([pa.enqueueMany(batch.map(requestOf)), pb.enqueueMany(batch.map(requestOf))]);
        for (const rs of [ra, rb]) rs.forEach((r, i) => count(batch[i]!, r, settled[c + i] ?? false));
        tally.finalReplays += batch.length * 2;
      }
      await sleep(Math.max(2_000, 2 * o.reconcileMs));
      lateWrites = (await fake.created()).length - writesBefore;
      if (lateWrites > 0) violations.push({ keyId: '-', kind: 'duplicate', detail: `${lateWrites} write(s) reached X after every key was final` });
    }
    stopAll = true;

    for (const k of keys) {
      const n = queuedAnswers.get(k.keyId) ?? 0;
      if (n !== 1) violations.push({ keyId: k.keyId, kind: 'enqueue', detail: `answered "queued" ${n} times (must be exactly once per key)` });
    }

    await pool.stopAll(3 * o.xTimeoutMs + 10_000);
    await Promise.all(tasks);
    records = await getAll(ledger, keys.map((k) => k.keyId));
    const created = await fake.created();
    const faults = await fake.faults();
    const requests = await fake.requests();
    const writes = Object.entries(requests).filter(([k]) => /^POST \/2\/(tweets|dm_conversations)/.test(k)).reduce((n, [, v]) => n + v, 0);
    const verdict = verify(keys, records, created, runId);
    violations.push(...verdict.violations);
    // A refusal of one post must never pause its account.
    for (const [id, s] of await ledger.accountStatus(accounts.map((a) => a.id))) {
      if (s.paused) violations.push({ keyId: '-', kind: 'account-paused', detail: `account ${id} paused: ${s.paused}` });
    }
    if (verdict.strays > 0) violations.push({ keyId: '-', kind: 'misattributed', detail: `${verdict.strays} item(s) on X carry this run's id but match no key's text` });
    if (!o.allowWorkerCrashes) for (const c of pool.crashes) violations.push({ keyId: '-', kind: 'stuck', detail: `worker ${c.worker} exited on its own (code ${c.code}, signal ${c.signal}): ${c.tail.split('\n').at(-1)}` });
    for (const e of eventLog) if (e.error) violations.push({ keyId: '-', kind: 'stuck', detail: `event "${e.name}" failed: ${e.error}` });
    const graceful: Record<string, number> = {};
    for (const g of pool.graceful) {
      const k = g.code === 0 ? g.how : `${g.how} exit ${g.code}`;
      graceful[k] = (graceful[k] ?? 0) + 1;
      if (g.code !== 0) violations.push({ keyId: '-', kind: 'stuck', detail: `SIGTERMed worker: ${k} after ${g.ms} ms` });
    }
    const stats = await ledger.stats();
    const kinds: Record<string, number> = {};
    for (const k of keys) kinds[k.kind] = (kinds[k.kind] ?? 0) + 1;
    const ok = violations.length === 0 && !timedOut;
    const { log: _log, events: _events, ...options } = o;
    if (!ok) {
      // The audit trails of the first violators, before the prefix goes away.
      const ids = [...new Set(violations.map((v) => v.keyId).filter((id) => id !== '-'))].slice(0, 5);
      for (const id of ids) log(`audit trail of ${id}:\n${(await ledger.auditTrail(id)).map((e) => `  ${new Date(e.at).toISOString()} ${JSON.stringify(e)}`).join('\n')}`);
    }
    return {
      ok, timedOut, options, runId, prefix, kinds, enqueue: tally, faults, writes,
      kills: { sigkill: pool.kills, sigterm: pool.terms, graceful, crashes: pool.crashes, duringPass: killsDuringPass },
      longestLockHoldS: longestLockHoldMs / 1000,
      verdict, convergeS, events: eventLog, stats, lateWrites, violations,
      ...((!ok || o.keepTemp) && { tempDir: dir }),
    };
  } finally {
    stopAll = true;
    stopChaos = true;
    await pool?.stopAll(5_000).catch(() => undefined);
    await fake?.stop().catch(() => undefined);
    for (const p of producers) await p.close().catch(() => undefined);
    await dropPrefix(monitor, prefix).catch((err: Error) => log(`could not drop prefix ${prefix}: ${err.message}`));
    monitor.disconnect();
    process.removeListener('exit', onExit);
    // Worker logs are kept when something went wrong (the report names the dir).
    if (!o.keepTemp && !(violations.length === 0 && !timedOut && keys.length > 0)) {
      await rm(join(dir, 'accounts.json'), { force: true });
      await rm(join(dir, 'fake-x.json'), { force: true });
    } else if (!o.keepTemp) {
      await rm(dir, { recursive: true, force: true });
    }
  }
}

async function getAll(ledger: Ledger, ids: readonly string[]): Promise<(PostRecord | undefined)[]> {
  const out: (PostRecord | undefined)[] = [];
  for (let i = 0; i < ids.length; i += 1_000) out.push(...(await ledger.getMany(ids.slice(i, i + 1_000))));
  return out;
}

// ------------------------------------------------------------------ output

const secs = (ms: number) => (Number.isFinite(ms) ? `${(ms / 1000).toFixed(1)} s` : '-');

export function renderReport(r: ChaosReport): string {
  const o = r.options;
  const v = r.verdict;
  const faultTotal = Object.entries(r.faults).filter(([k]) => !k.startsWith('lookup-')).reduce((a, [, b]) => a + b, 0);
  const rows: string[][] = [
    ['keys', `${o.keys} over ${o.accounts} accounts (${Object.entries(r.kinds).map(([k, n]) => `${n} ${k}`).join(', ')})`],
    ['enqueue answers', `${r.enqueue.queued} queued, ${r.enqueue.duplicate} duplicate, ${r.enqueue.sent} sent, ${r.enqueue.failed} failed`],
    ['  racing producers', `${r.enqueue.racing} keys sent by both producers at once`],
    ['  after job removal', `${r.enqueue.afterRemoval} re-enqueues (${r.enqueue.afterRemovalSent} of keys already sent); ${r.enqueue.jobsRemoved} jobs removed`],
    ['  final replay', `${r.enqueue.finalReplays} re-enqueues after convergence; writes to X after: ${r.lateWrites}`],
    ['X write calls', String(r.writes)],
    ...ALL_FAULT_KINDS.map((k) => [`  fault ${k}`, String(r.faults[k] ?? 0)]),
    ...ALL_LOOKUP_FAULT_KINDS.map((k) => [`  lookup fault ${k}`, String(r.faults[`lookup-${k}`] ?? 0)]),
    ['  faults total', `${faultTotal} (${r.writes ? ((100 * faultTotal) / r.writes).toFixed(1) : '0'} % of writes)`],
    ['workers', `${o.workers} (concurrency ${o.concurrency} each)`],
    ['kills', `SIGKILL ${r.kills.sigkill} (${r.kills.duringPass} while the reconciliation lock was held), SIGTERM ${r.kills.sigterm} (${Object.entries(r.kills.graceful).map(([k, n]) => `${n} ${k}`).join(', ') || '-'}), crashes ${r.kills.crashes.length}`],
    ['longest reconcile lock', `${r.longestLockHoldS.toFixed(1)} s${r.longestLockHoldS > 30 ? ' (ORPHANED: a worker died mid-pass; reconciliation waits for the lock TTL)' : ''}`],
    ...r.events.map((e) => [`event at ${e.atS.toFixed(1)} s`, `${e.name} (${e.tookS.toFixed(1)} s)${e.error ? ` FAILED: ${e.error}` : ''}`]),
    ['duplicates', String(v.duplicates)],
    ['lost', String(v.lost)],
    ['stuck (not final)', String(v.stuck)],
    ['sent', String(v.sent)],
    ['failed', `${v.failed}${v.failed ? ` (${Object.entries(v.failedByReason).map(([k, n]) => `${k} ${n}`).join(', ')})` : ''}`],
    ['time to converge', r.timedOut ? `TIMEOUT (${o.timeoutS} s)` : `${r.convergeS.toFixed(1)} s after the first enqueue`],
    ['scheduled -> live', `p50 ${secs(percentile(v.liveAfterMs, 50))}, p99 ${secs(percentile(v.liveAfterMs, 99))}, max ${secs(v.liveAfterMs.at(-1) ?? Number.NaN)}`],
    ['reconciliation', Object.entries(r.stats).filter(([k]) => k.startsWith('resolved:')).map(([k, n]) => `${k.slice(9)} ${n}`).join(', ') || '-'],
    ['attempt outcomes', Object.entries(r.stats).filter(([k]) => k.startsWith('attempts:')).map(([k, n]) => `${k.slice(9)} ${n}`).join(', ') || '-'],
    ['violations', String(r.violations.length)],
  ];
  const head = `xactly chaos — lag <= ${o.lagMaxMs} ms, settle ${o.settleMs} ms, X timeout ${o.xTimeoutMs} ms, fault rate ${o.faultRate}, kill every ${o.killEveryS} s, seed ${o.seed}, X duplicate check ${o.xDuplicateCheck ? 'on' : 'off'}, real X ${(o.realX ?? true) ? 'on' : 'off'}`;
  const lines = [head, '', renderTable(['', ''], rows).split('\n').slice(2).join('\n')];
  if (r.violations.length > 0) {
    lines.push('', 'VIOLATIONS:');
    for (const x of r.violations.slice(0, 50)) lines.push(`  ${x.kind.padEnd(22)} ${x.keyId}  ${x.detail}`);
    if (r.violations.length > 50) lines.push(`  ... and ${r.violations.length - 50} more`);
  }
  if (r.tempDir) lines.push('', `worker logs: ${r.tempDir}/logs`);
  return lines.join('\n');
}

/** One machine-readable line; `test/chaos.test.ts` parses it. */
export function summaryLine(r: ChaosReport): string {
  const v = r.verdict;
  return 'CHAOS-SUMMARY ' + JSON.stringify({
    ok: r.ok, keys: r.options.keys, workers: r.options.workers, duplicates: v.duplicates, lost: v.lost, stuck: v.stuck,
    sent: v.sent, failed: v.failed, failedByReason: v.failedByReason, violations: r.violations.length, timedOut: r.timedOut,
    convergeS: Number.isFinite(r.convergeS) ? Number(r.convergeS.toFixed(1)) : null,
    p50LiveS: Number((percentile(v.liveAfterMs, 50) / 1000).toFixed(2)), p99LiveS: Number((percentile(v.liveAfterMs, 99) / 1000).toFixed(2)),
    faults: Object.entries(r.faults).filter(([k]) => !k.startsWith('lookup-')).reduce((a, [, b]) => a + b, 0),
    lookupFaults: Object.entries(r.faults).filter(([k]) => k.startsWith('lookup-')).reduce((a, [, b]) => a + b, 0), writes: r.writes,
    sigkill: r.kills.sigkill, sigterm: r.kills.sigterm, killsDuringPass: r.kills.duringPass, crashes: r.kills.crashes.length, lateWrites: r.lateWrites,
    longestLockHoldS: Number(r.longestLockHoldS.toFixed(1)),
  });
}

// ------------------------------------------------------------------ appendfsync: what `always` costs

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
  const redis = new Redis(server.url, { maxRetriesPerRequest: null });
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
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const i = next++;
        const key = { slotId: `s${i}`, postId: 'p' };
        const id = keyIdOf(key);
        const s = performance.now();
        const c = await ledger.claim(id, jobIdFor(key), 30_000, Date.now());
        lat.push(performance.now() - s);
        if (c.verdict !== 'claimed') throw new Error(`fsync bench: claim of ${id} answered ${c.verdict}`);
        await ledger.settle(id, c.record.attempt, { to: 'sent', tweetId: String(1_000_000 + i) }, Date.now());
      }
    }));
    const claimMs = performance.now() - t1;
    lat.sort((a, b) => a - b);
    await producer.close();
    return { mode, keys: n, concurrency, enqueuePerS: n / (enqueueMs / 1000), claimsPerS: n / (claimMs / 1000), p50ClaimMs: percentile(lat, 50), p99ClaimMs: percentile(lat, 99) };
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
  const median = (xs: number[]) => percentile([...xs].sort((a, b) => a - b), 50);
  return modes.map((mode) => {
    const s = samples.get(mode)!;
    return {
      mode, keys: n, concurrency: s[0]!.concurrency,
      enqueuePerS: median(s.map((f) => f.enqueuePerS)), claimsPerS: median(s.map((f) => f.claimsPerS)),
      p50ClaimMs: median(s.map((f) => f.p50ClaimMs)), p99ClaimMs: median(s.map((f) => f.p99ClaimMs)),
    };
  });
}

export function renderFsync(figures: readonly FsyncFigure[]): string {
  const rows = figures.map((f) => {
    const base = figures.find((b) => b.mode === 'everysec' && b.concurrency === f.concurrency);
    return [
      f.mode, String(f.keys), String(f.concurrency), f.enqueuePerS.toFixed(0), f.claimsPerS.toFixed(0), f.p50ClaimMs.toFixed(2), f.p99ClaimMs.toFixed(2),
      base ? `${((f.claimsPerS / base.claimsPerS) * 100).toFixed(0)} %` : '',
    ];
  });
  return renderTable(['AOF', 'KEYS', 'IN FLIGHT', 'ENQUEUE/S', 'CLAIM+SETTLE/S', 'CLAIM P50 MS', 'CLAIM P99 MS', 'VS EVERYSEC'], rows);
}
