/**
 * The processes of a chaos run: the fake X in a process of its own (its
 * control port hands out the ground truth), and a pool of real `xactly
 * worker` processes that get SIGKILLed and SIGTERMed, with crashes
 * recorded and replaced as a supervisor would.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { CreatedItem } from '../../src/fake-x/index.js';
import { sleep } from '../../test/support/wait.js';
import { CLI, logLines, ROOT, spawnWorker, WORKER_READY, type WorkerChild } from '../../test/support/workers.js';
import type { FakeXProcessConfig } from '../fake-x-process.js';

/** Where the built CLI and helpers live, whether we run from dist/bench or from bench/ (vitest). */
export function builtPaths(): { root: string; cli: string; fakeX: string; chaos: string } {
  return {
    root: ROOT,
    cli: CLI,
    fakeX: join(ROOT, 'dist', 'bench', 'fake-x-process.js'),
    chaos: join(ROOT, 'dist', 'bench', 'chaos.js'),
  };
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
  readonly proc: WorkerChild;
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
/** How a SIGTERMed worker ended when the signal came while it was still loading. */
export const BEFORE_START = 'killed while loading';

export class WorkerPool {
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
    const proc = spawnWorker(this.env, { logFile: logPath });
    const { child } = proc;
    const h: WorkerHandle = {
      n,
      proc,
      child,
      logPath,
      startedAt: Date.now(),
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
    this.log(
      `worker ${h.n} exited on its own (code ${crash.code}, signal ${crash.signal}) after ${crash.afterS.toFixed(1)} s; restarting it. Last log lines:\n${tail}`,
    );
    if (!this.stopping) this.start();
  }

  live(): WorkerHandle[] {
    return this.handles.filter((h) => !h.exit && !h.sent);
  }

  /** Wait until the initial workers logged their worker-ready event. */
  async ready(handles: readonly WorkerHandle[], timeoutMs = 30_000): Promise<void> {
    await Promise.all(handles.map((h) => h.proc.ready(timeoutMs)));
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
    // Killed by the signal itself, before it logged worker-ready: it was still loading, before
    // its handlers (installed before any job is taken), so it had taken nothing.
    const beforeStart = h.exit!.signal === 'SIGTERM' && !logLines(text).some((l) => l.event === WORKER_READY);
    const how = /"how":"(drained|forced)"/.exec(text)?.[1] ?? (beforeStart ? BEFORE_START : 'no "stopped" line');
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
