/**
 * `xactly worker` processes (the real, built CLI) for tests and benchmarks:
 * spawn one, know when it is ready, stop it.
 *
 * Ready means the worker logged its `worker-ready` event: a pino JSON line
 * with `"event":"worker-ready"` (src/ops/worker-process.ts), written once its
 * publish worker and reconciler are up. It is read from the worker's stdout,
 * or from its log file when its output goes straight to a file (so the
 * parent spends nothing on it). Needs LOG_LEVEL info or lower (the default
 * here) and JSON logs (set here).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { sleep } from './wait.js';

const here = dirname(fileURLToPath(import.meta.url));
/** The repository root, whether this runs from test/support (vitest) or dist/test/support (a built benchmark). */
export const ROOT = here.includes(`${sep}dist${sep}`) ? resolve(here, '..', '..', '..') : resolve(here, '..', '..');
/** The built CLI (`npm run build`). */
export const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');

/** The `event` of the log line a worker writes when it is ready. */
export const WORKER_READY = 'worker-ready';

/** One pino JSON line (level, msg, event and whatever else it carries). */
export interface LogLine {
  readonly level?: number;
  readonly msg?: string;
  readonly event?: string;
  readonly [field: string]: unknown;
}

/** The JSON lines of a log; anything else (a stack trace, a partial last line) is skipped. */
export function logLines(text: string): LogLine[] {
  return text.split('\n').flatMap((l) => {
    if (!l.startsWith('{')) return [];
    try {
      return [JSON.parse(l) as LogLine];
    } catch {
      return [];
    }
  });
}

export interface WorkerChild {
  readonly child: ChildProcess;
  /** Where its output goes, when it goes to a file. */
  readonly logFile?: string;
  /** What it wrote to stdout and stderr so far ('' when its output goes to a file). */
  output(): string;
  /** Resolves once it logged `worker-ready`; rejects if it exits first or after `timeoutMs`. */
  ready(timeoutMs?: number): Promise<void>;
  /** Its exit (code and signal), once its output is read to the end. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM (it drains), SIGKILL after `timeoutMs`; resolves with the exit code. */
  stop(timeoutMs?: number): Promise<number | null>;
}

/**
 * Spawn `xactly worker` with `env` (give it the whole environment: nothing
 * of this process's is added). With `logFile` its stdout and stderr go to
 * that file (appended), otherwise to pipes that `output()` collects.
 */
export function spawnWorker(env: NodeJS.ProcessEnv, opts: { logFile?: string } = {}): WorkerChild {
  const fullEnv = { ...env, LOG_LEVEL: env.LOG_LEVEL ?? 'info', LOG_FORMAT: 'json' };
  let child: ChildProcess;
  let out = '';
  let readyNow = false;
  const readyWaiters: (() => void)[] = [];
  const becameReady = () => {
    readyNow = true;
    for (const w of readyWaiters.splice(0)) w();
  };
  if (opts.logFile) {
    const fd = openSync(opts.logFile, 'a');
    child = spawn(process.execPath, [CLI, 'worker'], { env: fullEnv, stdio: ['ignore', fd, fd] });
    closeSync(fd);
  } else {
    child = spawn(process.execPath, [CLI, 'worker'], { env: fullEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stderr!.on('data', (d) => (out += d));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      out += line + '\n';
      if (!readyNow && logLines(line)[0]?.event === WORKER_READY) becameReady();
    });
  }
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  // 'close': exited, and its output read to the end.
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
    child.once('close', (code, signal) => {
      exit = { code, signal };
      done(exit);
    }),
  );
  const tail = async () => (opts.logFile ? await readFile(opts.logFile, 'utf8').catch(() => '') : out).trim().split('\n').slice(-3).join(' | ');

  // From a file there is no line event: look at the file until the line is there.
  const readyFromFile = async (until: number) => {
    for (;;) {
      if (logLines(await readFile(opts.logFile!, 'utf8').catch(() => '')).some((l) => l.event === WORKER_READY)) return becameReady();
      if (exit || Date.now() > until) return;
      await sleep(100);
    }
  };

  return {
    child,
    ...(opts.logFile && { logFile: opts.logFile }),
    output: () => out,
    async ready(timeoutMs = 30_000) {
      if (readyNow) return;
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), timeoutMs)));
      const became = new Promise<'ready'>((r) => readyWaiters.push(() => r('ready')));
      if (opts.logFile) void readyFromFile(Date.now() + timeoutMs);
      const how = await Promise.race([became, exited.then(() => 'exited' as const), timedOut]);
      clearTimeout(timer);
      if (how === 'ready' || readyNow) return;
      if (how === 'exited') throw new Error(`worker ${child.pid} exited before it was ready (code ${exit?.code}, signal ${exit?.signal}): ${await tail()}`);
      throw new Error(`worker ${child.pid} not ready within ${timeoutMs / 1000} s: ${await tail()}`);
    },
    exited,
    async stop(timeoutMs = 30_000) {
      if (exit) return exit.code;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const { code } = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}
