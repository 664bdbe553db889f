import { spawn } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyId } from '../src/domain/key.js';
import { startFakeX, type FakeX } from '../src/fake-x/index.js';
import { openLedger } from '../src/app.js';
import { ACCOUNTS, dropPrefix, FAKE_ACCOUNTS, newRedis, REDIS_URL, SECRETS, uniquePrefix, waitUntil } from './harness.js';
import { freePort } from './support/ports.js';
import { CLI, spawnWorker, type WorkerChild } from './support/workers.js';

function run(args: string[], env: Record<string, string>, stdin?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(stdin ?? '');
  });
}

const redis = newRedis();
let dir: string;
let accountsFile: string;
const prefix = uniquePrefix('cli');
let env: Record<string, string>;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'xactly-cli-'));
  accountsFile = join(dir, 'accounts.json');
  await writeFile(accountsFile, JSON.stringify({ accounts: ACCOUNTS }));
  env = { REDIS_URL, XACTLY_PREFIX: prefix, XACTLY_ACCOUNTS_FILE: accountsFile, LOG_LEVEL: 'info' };
});
afterAll(async () => {
  await dropPrefix(redis, prefix);
  await redis.quit();
});

describe('xactly enqueue', () => {
  it('prints one result per input line, keeps good lines, exits 2 on bad ones', async () => {
    const lines = [
      JSON.stringify({ slotId: 's1', postId: 'p', accountId: 'acme', kind: 'post', text: 'one', scheduledAt: '2099-01-01T00:00:00Z' }),
      '{not json',
      JSON.stringify({ slotId: 's2', postId: 'p', accountId: 'acme', kind: 'post', text: 'x'.repeat(281) }),
      JSON.stringify({ slotId: 's1', postId: 'p', accountId: 'acme', kind: 'post', text: 'one', scheduledAt: '2099-01-01T00:00:00Z' }),
      JSON.stringify({ slotId: 's1', postId: 'p', accountId: 'acme', kind: 'post', text: 'changed', scheduledAt: '2099-01-01T00:00:00Z' }),
      JSON.stringify({ slotId: 's3', postId: 'p', accountId: 'ghost', kind: 'post', text: 'who' }),
      JSON.stringify({ slotId: 's4', postId: 'p', accountId: 'globex', kind: 'dm', text: 'hi', recipientId: '2001', scheduledAt: '2099-01-01T00:00:00Z' }),
    ];
    const file = join(dir, 'batch.jsonl');
    await writeFile(file, lines.join('\n') + '\n');
    const r = await run(['enqueue', file, '--json'], env);
    expect(r.code).toBe(2);
    const out = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(out.map((o) => [o.line, o.status])).toEqual([
      [1, 'queued'],
      [2, 'invalid'],
      [3, 'invalid'],
      [4, 'duplicate'],
      [5, 'conflict'],
      [6, 'invalid'],
      [7, 'queued'],
    ]);
    expect(out[1].reason).toContain('not valid JSON');
    expect(out[2]).toMatchObject({ slotId: 's2', postId: 'p' });
    expect(out[2].reason).toContain('text: is 281 weighted characters');
    expect(out[5].reason).toContain('accountId: unknown account "ghost"');

    const human = await run(['enqueue', '-'], env, lines[0] + '\n');
    expect(human.code).toBe(0);
    expect(human.stdout.trim()).toBe('line 1: duplicate s1/p — already queued');
  });

  it('exits 1 with a hint when Redis is unreachable', async () => {
    const r = await run(['enqueue', '-'], { ...env, REDIS_URL: 'redis://127.0.0.1:1' }, '{}\n');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('cannot reach Redis at 127.0.0.1:1');
    expect(r.stderr).toContain('redis-server');
  });

  it('exits 1 naming the variable on bad config, 2 on bad usage', async () => {
    const bad = await run(['posts'], { ...env, X_TIMEOUT_MS: 'soon' });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('X_TIMEOUT_MS must be a positive integer (got "soon")');
    // A worker that cannot start closes its Redis connection and exits at once (no "handle left open").
    const broken = join(dir, 'broken-accounts.json');
    await writeFile(broken, '{not json');
    const worker = await run(['worker'], { ...env, XACTLY_ACCOUNTS_FILE: broken });
    expect(worker.code).toBe(1);
    expect(worker.stderr).toContain('is not valid JSON');
    expect(worker.stderr).not.toContain('still running');
    const usage = await run(['frobnicate'], env);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('unknown command "frobnicate"');
    const help = await run(['enqueue', '--help'], env);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('one result per input line');
  });
});

describe('xactly demo', () => {
  it('runs the main job end to end and reports no duplicates and nothing lost', async () => {
    const demoPrefix = uniquePrefix('demo');
    const r = await run(['demo', '--no-board-wait'], { REDIS_URL, XACTLY_PREFIX: demoPrefix, BOARD_PORT: String(await freePort()) });
    await dropPrefix(redis, `${demoPrefix}-demo`);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/sent\s+16\n/);
    expect(r.stdout).toMatch(/slot-19\/photo +initech +post +sent +\d+ /);
    expect(r.stdout).toMatch(/with media on X\s+1 \(1 with exactly the image enqueued, 1 upload\)\n/);
    expect(r.stdout).toMatch(/slot-18\/thread +globex +thread +sent +\d+ /);
    expect(r.stdout).toMatch(/cancelled\s+1 \(cancelled or replaced text on X: 0\)\n/);
    expect(r.stdout).toContain('cancel slot-15/promo (the client pulled it): cancelled');
    expect(r.stdout).toContain('edit slot-16/promo (typo: "offce"): edited');
    expect(r.stdout).toContain('reschedule slot-17/promo from +1 h to +2 s: rescheduled');
    expect(r.stdout).toMatch(/edit slot-08\/hello to 330 weighted characters: invalid — text: is 330 weighted characters/);
    expect(r.stdout).toMatch(/duplicates on X\s+0\n/);
    expect(r.stdout).toMatch(/lost\s+0\n/);
    expect(r.stdout).toMatch(/ambiguous resolved\s+[1-9]\d* by reconciliation/);
    expect(r.stdout).toContain('line 14: conflict');
    // X refuses one reply for good: it fails with X's words, nothing else does.
    expect(r.stdout).toMatch(/failed\s+1 \(rejected\)\n/);
    expect(r.stdout).toContain('not been mentioned or otherwise engaged');
    expect(r.stdout).toMatch(/Board: http:\/\/127\.0\.0\.1:\d+\/board/);
  }, 120_000);
});

describe('xactly worker + posts', () => {
  let fake: FakeX;
  let worker: WorkerChild | undefined;
  afterAll(async () => {
    worker?.child.kill('SIGKILL');
    await fake?.close();
  });

  it('publishes what was enqueued, lists it, and drains on SIGTERM', async () => {
    fake = await startFakeX({ accounts: FAKE_ACCOUNTS });
    const wenv = { ...env, X_API_BASE_URL: fake.url, X_TIMEOUT_MS: '2000', XACTLY_SETTLE_WINDOW_MS: '5000', XACTLY_RECONCILE_INTERVAL_MS: '600000' };
    worker = spawnWorker({ ...process.env, ...wenv });
    await worker.ready();

    const r = await run(['enqueue', '-'], wenv, JSON.stringify({ slotId: 'live', postId: 'p', accountId: 'acme', kind: 'post', text: 'from the CLI' }) + '\n');
    expect(r.code).toBe(0);
    await waitUntil(() => fake.created().length === 1, 'the post');
    const posts = await waitUntil(async () => {
      const p = await run(['posts', '--state', 'sent', '--json'], wenv);
      return p.stdout.includes('"live"') ? p : undefined;
    }, 'ledger to show sent');
    const rec = posts.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .find((o) => o.slotId === 'live');
    expect(rec).toMatchObject({ slotId: 'live', postId: 'p', accountId: 'acme', kind: 'post', state: 'sent', attempts: 1, tweetId: fake.created()[0]!.id });

    const one = await run(['post', 'live', 'p'], wenv);
    expect(one.stdout).toContain('audit trail');
    expect(one.stdout).toMatch(/claimed[\s\S]*x-answer[\s\S]*sent/);

    // An ambiguous post, resolved by `xactly reconcile --once`.
    fake.injectNext('commit-then-reset');
    await run(['enqueue', '-'], wenv, JSON.stringify({ slotId: 'amb', postId: 'p', accountId: 'acme', kind: 'post', text: 'maybe posted' }) + '\n');
    const ledger = openLedger(redis, { prefix, retentionMs: 60_000 });
    await waitUntil(async () => (await ledger.get(keyId({ slotId: 'amb', postId: 'p' })))?.state === 'ambiguous', 'ambiguous');
    await ledger.reschedule([{ keyId: keyId({ slotId: 'amb', postId: 'p' }), at: Date.now() - 10_000 }]);
    const rec2 = await run(['reconcile', '--once', '--json'], { ...wenv, XACTLY_SETTLE_WINDOW_MS: '2001' });
    expect(rec2.code).toBe(0);
    expect(JSON.parse(rec2.stdout)).toMatchObject({ ran: true, outcomes: { sent: 1 } });
    expect(await ledger.get(keyId({ slotId: 'amb', postId: 'p' }))).toMatchObject({ state: 'sent', tweetId: fake.created()[1]!.id });

    // Accounts: a paused account is listed and can be resumed.
    await ledger.pauseAccount('globex', 'X refused the credentials (http-401)');
    const acc = await run(['accounts', '--json'], wenv);
    expect(
      acc.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l)),
    ).toEqual([
      { id: 'acme', state: 'ok' },
      { id: 'globex', state: 'paused', reason: 'X refused the credentials (http-401)' },
    ]);
    expect((await run(['accounts', 'resume', 'globex'], wenv)).stdout).toContain('account globex resumed');
    expect((await ledger.accountStatus(['globex'])).size).toBe(0);

    expect(await worker.stop()).toBe(0);
    const logs = worker.output();
    expect(logs).toContain('"how":"drained"');
    for (const secret of Object.values(SECRETS)) expect(logs).not.toContain(secret);
    worker = undefined;
  });
});

describe('xactly cancel, edit and reschedule', () => {
  it('apply the good lines of a file, name the field of each bad one, and exit 2 when any line was refused', async () => {
    const at = '2099-03-01T09:00:00Z';
    const enq = (slot: string, extra: Record<string, unknown> = {}) =>
      JSON.stringify({ slotId: slot, postId: 'p', accountId: 'acme', kind: 'post', text: `cal ${slot}`, scheduledAt: at, ...extra });
    const enqueued = await run(['enqueue', '-', '--json'], env, ['lc-1', 'lc-2', 'lc-3', 'lc-4'].map((s) => enq(s)).join('\n') + '\n');
    expect(enqueued.code).toBe(0);

    const edits = [
      JSON.stringify({ slotId: 'lc-1', postId: 'p', text: 'cal lc-1, fixed' }),
      JSON.stringify({ slotId: 'lc-2', postId: 'p', text: 'x'.repeat(281) }),
      JSON.stringify({ slotId: 'nope', postId: 'p', text: 'who' }),
      JSON.stringify({ slotId: 'lc-3', postId: 'p', accountId: 'globex' }),
      '{broken',
    ];
    const edited = await run(['edit', '-', '--json'], env, edits.join('\n') + '\n');
    expect(edited.code).toBe(2);
    const e = edited.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(e.map((o) => [o.line, o.status])).toEqual([
      [1, 'edited'],
      [2, 'invalid'],
      [3, 'not-found'],
      [4, 'invalid'],
      [5, 'invalid'],
    ]);
    expect(e[1].reason).toMatch(/^text: is 281 weighted characters/);
    expect(e[3].reason).toMatch(/^accountId: cannot be edited/);

    const moves = [
      JSON.stringify({ slotId: 'lc-2', postId: 'p', scheduledAt: '2099-03-02T09:00:00Z' }),
      JSON.stringify({ slotId: 'lc-3', postId: 'p', scheduledAt: 'next tuesday' }),
      JSON.stringify({ slotId: 'lc-4', postId: 'p', scheduledAt: at, deadline: '2020-01-01T00:00:00Z' }),
    ];
    const moved = await run(['reschedule', '-', '--json'], env, moves.join('\n') + '\n');
    expect(moved.code).toBe(2);
    const m = moved.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(m.map((o) => o.status)).toEqual(['rescheduled', 'invalid', 'invalid']);
    expect(m[0]).toMatchObject({ slotId: 'lc-2', scheduledAt: '2099-03-02T09:00:00.000Z' });
    expect(m[1].reason).toMatch(/^scheduledAt: must be an ISO-8601/);
    expect(m[2].reason).toMatch(/^deadline: is in the past/);

    const one = await run(['cancel', 'lc-1', 'p', '--reason', 'client left', '--json'], env);
    expect(one.code).toBe(0);
    expect(JSON.parse(one.stdout)).toMatchObject({ slotId: 'lc-1', postId: 'p', status: 'cancelled' });
    // Cancelling what is already final is a no-op, not a refusal.
    const again = await run(['cancel', 'lc-1', 'p'], env);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/final lc-1\/p — state cancelled/);

    const bulk = await run(['cancel', '--account', 'acme', '--from', '2099-03-01T00:00:00Z', '--json'], env);
    expect(bulk.code).toBe(0);
    expect(JSON.parse(bulk.stdout)).toEqual({ accountId: 'acme', cancelled: 3, cancelling: 0, final: 1 });
    const listed = await run(['posts', '--state', 'cancelled', '--account', 'acme', '--json'], env);
    const cancelled = listed.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { slotId: string });
    expect(
      cancelled
        .map((r) => r.slotId)
        .filter((s) => s.startsWith('lc-'))
        .sort(),
    ).toEqual(['lc-1', 'lc-2', 'lc-3', 'lc-4']);
    expect(cancelled.find((r) => r.slotId === 'lc-1')).toMatchObject({ cancel: { by: 'cli', reason: 'client left' } });
    const ledger = openLedger(redis, { prefix });
    expect((await ledger.get(keyId({ slotId: 'lc-1', postId: 'p' })))?.text).toBe('cal lc-1, fixed');
  });
});
