/**
 * Helpers shared by the benchmarks (bench/*.ts) and the suite that runs them.
 *
 * Every benchmark can be run on its own (`node dist/bench/<name>.js`) and
 * prints its figures; with `--report FILE` it also writes a JSON report
 * (figures with targets and verdicts, and its Markdown section) that
 * bench/suite.ts collects into docs/benchmarks.md. Benchmarks never assert
 * timings; they exit 1 only when the work they measured was wrong.
 *
 * Redis, statistics, waits, the latency proxy, accounts and `xactly worker`
 * processes come from the test kit (test/support/), shared with the tests.
 */
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import type { XPort } from '../src/x/port.js';

export const rand = (): string => randomBytes(4).toString('hex');

/** An X that answers at once: only xactly's own cost remains. */
export function instantX(): XPort & { calls: () => number } {
  let next = 1;
  let calls = 0;
  return {
    calls: () => calls,
    async createPost() {
      calls++;
      return { id: String(next++) };
    },
    async sendDm() {
      calls++;
      return { id: String(next++) };
    },
    async timeline() {
      return { items: [] };
    },
    async dmEvents() {
      return { items: [] };
    },
  };
}

/** A stream that drops what it is given (a logger at a production level, without the I/O). */
export const nullStream = (): Writable =>
  new Writable({
    write(_chunk, _enc, cb) {
      cb();
    },
  });

// ------------------------------------------------------------------ numbers and tables

export const f0 = (v: number): string => Math.round(v).toLocaleString('en-US');
export const f2 = (v: number): string => v.toFixed(2);
export const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0);
export const mb = (bytes: number, digits = 1): string => `${(bytes / 1_048_576).toFixed(digits)} MB`;
export const secs = (ms: number, digits = 2): string => `${(ms / 1000).toFixed(digits)} s`;

export type Row = readonly string[];

/**
 * A plain-text table; numbers (every column but the first) right-aligned
 * unless `left`. Without a header it is a left-aligned key/value list.
 */
export function textTable(rows: readonly Row[], header?: Row, left = false): string {
  const all = header ? [header, ...rows] : rows;
  const widths = (header ?? rows[0] ?? []).map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  const line = (r: Row) =>
    r
      .map((c, i) => (i === 0 || !header || left ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  const head = header ? [line(header), widths.map((w) => '-'.repeat(w)).join('  ')] : [];
  return [...head, ...rows.map(line)].join('\n');
}

/** A Markdown table; numbers (every column but the first) right-aligned unless `left`. */
export function mdTable(rows: readonly Row[], header: Row, left = false): string {
  const line = (r: Row) => `| ${r.join(' | ')} |`;
  return [line(header), line(header.map((_, i) => (i === 0 || left ? '---' : '---:'))), ...rows.map(line)].join('\n');
}

// ------------------------------------------------------------------ options

/** Parse an integer option or exit 2 with a message naming it. */
export function intOption(name: string, raw: string, min: number): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) {
    console.error(`--${name} must be an integer >= ${min} (got ${raw})`);
    process.exit(2);
  }
  return n;
}

// ------------------------------------------------------------------ environment

/** The installed version of a dependency, read from its package.json. */
export async function versionOf(pkg: string): Promise<string> {
  try {
    const json = await readFile(new URL(`../../node_modules/${pkg}/package.json`, import.meta.url), 'utf8');
    return (JSON.parse(json) as { version?: string }).version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

export function machine(): string {
  const cpus = os.cpus();
  return `${cpus.length} cores, ${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${os.platform()} ${os.arch()}, ${mb(os.totalmem(), 0)} RAM`;
}

export async function redisVersion(redis: Redis): Promise<string> {
  return /redis_version:([^\r\n]+)/.exec(await redis.info('server'))?.[1] ?? 'unknown';
}

// ------------------------------------------------------------------ reports

export type Verdict = 'meets target' | 'BELOW TARGET' | '';

/** #16: processing throughput against bare BullMQ (overhead.ts; its floor in manual-processing.ts). */
export const TARGET_PROCESSING_RATIO = 0.75;
/** #16: Node + Redis CPU per publish against bare BullMQ. */
export const TARGET_CPU_RATIO = 1.3;

export const verdict = (ok: boolean): Verdict => (ok ? 'meets target' : 'BELOW TARGET');

/** One figure of a benchmark, as the suite's summary table shows it. */
export interface Figure {
  readonly name: string;
  readonly value: string;
  /** What it is held against ('' for a figure given as context). */
  readonly target: string;
  readonly verdict: Verdict;
}

/** What a benchmark hands to the suite (`--report FILE`). */
export interface BenchReport {
  /** Short name, e.g. 'burst'. */
  readonly bench: string;
  readonly title: string;
  /** The command as typed (node dist/bench/<name>.js ...). */
  readonly command: string;
  readonly figures: readonly Figure[];
  /** This benchmark's section of docs/benchmarks.md (starts with a `## ` heading). */
  readonly markdown: string;
  readonly durationMs: number;
}

export async function writeReport(path: string | undefined, report: BenchReport): Promise<void> {
  if (!path) return;
  await writeFile(path, JSON.stringify(report, null, 2));
  console.log(`\nreport written to ${path}`);
}

/** A command line as a shell reads it: an argument with a space (or another character the shell reads) in quotes. */
export function shellLine(args: readonly string[]): string {
  return args.map((a) => (/[\s'"$`\\|&;<>()*?]/.test(a) ? `'${a.replace(/'/g, `'\\''`)}'` : a)).join(' ');
}

/** The command line of this process, as `node dist/bench/...`. */
export function commandLine(script: string): string {
  const flags = process.execArgv.filter((a) => a === '--expose-gc');
  return shellLine(['node', ...flags, `dist/bench/${script}`, ...process.argv.slice(2).filter((a, i, all) => a !== '--report' && all[i - 1] !== '--report')]);
}

/** Run main(); exit with its code, or 1 on a throw. */
export function run(main: () => Promise<number>): void {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(err instanceof Error ? (err.stack ?? err.message) : err);
      process.exit(1);
    },
  );
}

export const fmtCounts = (m: ReadonlyMap<string, number>): string => [...m].map(([k, v]) => `${k} ${v}`).join(', ') || 'none';

export function countBy<T>(items: Iterable<T>, key: (t: T) => string): Map<string, number> {
  const out = new Map<string, number>();
  for (const t of items) {
    const k = key(t);
    out.set(k, (out.get(k) ?? 0) + 1);
  }
  return out;
}

// ------------------------------------------------------------------ waiting for a worker

export interface Tally {
  completed: number;
  failed: number;
  firstFailure?: string;
  /** `outcome` of the job results (PublishJobResult), 'done' for others. */
  readonly outcomes: Map<string, number>;
}

/**
 * Count a worker's `completed` and `failed` events. `until(total)` resolves
 * once `total` jobs have finished since the tally was made (failed attempts
 * count: any failure means the figures are not about successful work), and
 * rejects after the timeout.
 */
export function tallyOf(worker: {
  on(event: 'completed' | 'failed', cb: (...args: never[]) => void): unknown;
}): Tally & { until(total: number, timeoutMs: number): Promise<void> } {
  const tally: Tally = { completed: 0, failed: 0, outcomes: new Map() };
  const waiters: { at: number; resolve: () => void }[] = [];
  const check = () => {
    const done = tally.completed + tally.failed;
    for (let i = waiters.length - 1; i >= 0; i--) if (done >= waiters[i]!.at) waiters.splice(i, 1)[0]!.resolve();
  };
  (worker.on as (e: string, cb: (...a: unknown[]) => void) => void)('completed', (_job, result) => {
    tally.completed++;
    const outcome = (result as { outcome?: string } | undefined)?.outcome ?? 'done';
    tally.outcomes.set(outcome, (tally.outcomes.get(outcome) ?? 0) + 1);
    check();
  });
  (worker.on as (e: string, cb: (...a: unknown[]) => void) => void)('failed', (_job, err) => {
    tally.failed++;
    tally.firstFailure ??= (err as Error | undefined)?.message;
    check();
  });
  return Object.assign(tally, {
    until(total: number, timeoutMs: number) {
      const at = total;
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`timed out after ${timeoutMs / 1000} s: ${tally.completed} completed, ${tally.failed} failed`)),
          timeoutMs,
        );
        waiters.push({
          at,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
        check();
      });
    },
  });
}
