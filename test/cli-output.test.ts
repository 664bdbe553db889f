import { spawn } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyId } from '../src/domain/key.js';
import { validateRequest } from '../src/domain/request.js';
import { openLedger } from '../src/app.js';
import { ACCOUNTS, dropPrefix, newRedis, REDIS_URL, uniquePrefix } from './harness.js';

const CLI = join(import.meta.dirname, '..', 'dist', 'src', 'cli', 'main.js');

interface SlowRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the CLI with its stdout on a pipe whose reader is slow: it reads
 * nothing for `pauseMs` (longer than the command needs for its work), then
 * pauses `stepMs` after every 16 KB it gets, so the command's last lines
 * are written while the reader is away. A pause ends early when the command
 * exits; with `process.exit` the lines still in its buffer are then gone.
 */
function runThroughSlowPipe(args: string[], env: Record<string, string>, opts: { pauseMs?: number; stepMs?: number } = {}): Promise<SlowRun> {
  const pauseMs = opts.pauseMs ?? 1_500;
  const stepMs = opts.stepMs ?? 25;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let exited = false;
    let wake: (() => void) | undefined;
    let stderr = '';
    const chunks: Buffer[] = [];
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('exit', () => {
      exited = true;
      wake?.();
    });
    const pause = (ms: number) =>
      new Promise<void>((r) => {
        if (exited) return r();
        child.stdout.pause();
        const timer = setTimeout(r, ms);
        wake = () => {
          clearTimeout(timer);
          r();
        };
      }).then(() => {
        wake = undefined;
        child.stdout.resume();
      });
    child.stdout.pause();
    void pause(pauseMs);
    let sincePause = 0;
    child.stdout.on('data', (d: Buffer) => {
      chunks.push(d);
      sincePause += d.length;
      if (sincePause >= 16_384) {
        sincePause = 0;
        void pause(stepMs);
      }
    });
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(chunks).toString('utf8'), stderr }));
  });
}

const lines = (s: string) => s.split('\n').filter((l) => l !== '');

const redis = newRedis();
let dir: string;
let env: Record<string, string>;
const prefix = uniquePrefix('out');

function schedule(n: number, label: string): string {
  return (
    Array.from({ length: n }, (_, i) =>
      JSON.stringify({
        slotId: `${label}-${i}`,
        postId: 'p',
        accountId: 'acme',
        kind: 'post',
        text: `scheduled post ${label} number ${i}`,
        scheduledAt: '2099-01-01T00:00:00Z',
      }),
    ).join('\n') + '\n'
  );
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'xactly-out-'));
  const accountsFile = join(dir, 'accounts.json');
  await writeFile(accountsFile, JSON.stringify({ accounts: ACCOUNTS }));
  env = { REDIS_URL, XACTLY_PREFIX: prefix, XACTLY_ACCOUNTS_FILE: accountsFile, LOG_LEVEL: 'warn' };
});
afterAll(async () => {
  await dropPrefix(redis, prefix);
  await redis.quit();
});

/** Exited by itself: nothing (a connection, a timer) was left holding the process open. */
function expectCleanExit(r: SlowRun): void {
  expect(r.stderr).not.toContain('left open');
}

describe('CLI output through a slow pipe', () => {
  it('enqueue prints one line per input line, in text and --json', async () => {
    const file = join(dir, 'text.jsonl');
    await writeFile(file, schedule(3_000, 'text'));
    const text = await runThroughSlowPipe(['enqueue', file], env);
    expect(text.code, text.stderr).toBe(0);
    const out = lines(text.stdout);
    expect(out).toHaveLength(3_000);
    expect(out.every((l, i) => l === `line ${i + 1}: queued text-${i}/p`)).toBe(true);
    expectCleanExit(text);

    const json = await runThroughSlowPipe(['enqueue', '--json', file], env);
    expect(json.code, json.stderr).toBe(0);
    const results = lines(json.stdout).map((l) => JSON.parse(l));
    expect(results.map((r) => r.line)).toEqual(Array.from({ length: 3_000 }, (_, i) => i + 1));
    expect(new Set(results.map((r) => r.status))).toEqual(new Set(['duplicate']));
    expectCleanExit(json);
  }, 60_000);

  it('two concurrent enqueue runs of the same 1,000 lines print 1,000 lines each; each key is queued by exactly one', async () => {
    const file = join(dir, 'race.jsonl');
    await writeFile(file, schedule(1_000, 'race'));
    const [a, b] = await Promise.all([
      runThroughSlowPipe(['enqueue', '--json', file], env, { pauseMs: 1_000 }),
      runThroughSlowPipe(['enqueue', '--json', file], env, { pauseMs: 1_000 }),
    ]);
    for (const r of [a, b]) {
      expect(r.code, r.stderr).toBe(0);
      expectCleanExit(r);
    }
    const ra = lines(a!.stdout).map((l) => JSON.parse(l));
    const rb = lines(b!.stdout).map((l) => JSON.parse(l));
    expect(ra).toHaveLength(1_000);
    expect(rb).toHaveLength(1_000);
    for (let i = 0; i < 1_000; i++) {
      expect([ra[i].line, rb[i].line]).toEqual([i + 1, i + 1]);
      expect([ra[i].status, rb[i].status].sort()).toEqual(['duplicate', 'queued']);
    }
  }, 60_000);

  it('posts --json lists 10,000 keys in full; post prints the whole audit trail', async () => {
    const listed = uniquePrefix('out-posts');
    const ledger = openLedger(redis, { prefix: listed, retentionMs: 3_600_000 });
    const now = Date.now();
    try {
      for (let start = 0; start < 10_000; start += 1_000) {
        const entries = Array.from({ length: 1_000 }, (_, i) => {
          const v = validateRequest(
            { slotId: `s${start + i}`, postId: 'p', accountId: 'acme', kind: 'post', text: `post ${start + i}` },
            { now, deadlineWindowMs: 60_000 },
          );
          if (!v.ok) throw new Error('bad seed');
          return { request: v.request, keyId: keyId(v.request), jobId: keyId(v.request) };
        });
        await ledger.registerMany(entries, now);
      }
      const r = await runThroughSlowPipe(['posts', '--json'], { ...env, XACTLY_PREFIX: listed });
      expect(r.code, r.stderr).toBe(0);
      const records = lines(r.stdout).map((l) => JSON.parse(l));
      expect(records).toHaveLength(10_000);
      expect(new Set(records.map((x) => x.slotId)).size).toBe(10_000);
      expectCleanExit(r);

      const table = await runThroughSlowPipe(['posts'], { ...env, XACTLY_PREFIX: listed });
      expect(table.code, table.stderr).toBe(0);
      expect(lines(table.stdout)).toHaveLength(10_002); // header, rule, rows
      expectCleanExit(table);

      for (const args of [
        ['post', 's9999', 'p'],
        ['post', 's9999', 'p', '--json'],
      ]) {
        const one = await runThroughSlowPipe(args, { ...env, XACTLY_PREFIX: listed }, { pauseMs: 500 });
        expect(one.code, one.stderr).toBe(0);
        expect(one.stdout).toContain('s9999');
        expect(one.stdout).toContain('queued');
        expectCleanExit(one);
      }
    } finally {
      await dropPrefix(redis, listed);
    }
  }, 90_000);

  it('a reader that leaves early (`| head -1`) ends the command quietly with its own exit code', async () => {
    const file = join(dir, 'head.jsonl');
    await writeFile(file, schedule(2_000, 'head'));
    const r = await new Promise<{ code: number | null; first: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [CLI, 'enqueue', file], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let first = '';
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      child.stdout.once('data', (d: Buffer) => {
        first = d.toString('utf8').split('\n')[0]!;
        child.stdout.destroy();
      });
      child.on('close', (code) => resolve({ code, first, stderr }));
    });
    expect(r.first).toBe('line 1: queued head-0/p');
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    // The reader left, the work did not stop: every line went in.
    const ledger = openLedger(redis, { prefix, retentionMs: 60_000 });
    expect((await ledger.get(keyId({ slotId: 'head-1999', postId: 'p' })))?.state).toBe('queued');
  });
});
