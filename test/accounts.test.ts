import type { ChildProcess } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { budgetFor } from '../src/domain/budget.js';
import { keyId } from '../src/domain/key.js';
import { ACCOUNTS, REDIS_URL, type Stack, startStack, waitUntil } from './harness.js';
import { spawnWorker } from './support/workers.js';

let stack: Stack | undefined;
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  await stack?.close();
  stack = undefined;
});

const req = (slotId: string, accountId: string, text = `${accountId} ${slotId}`) => ({ slotId, postId: 'p', accountId, kind: 'post', text });
const allSent = (s: Stack, slots: string[]) =>
  waitUntil(
    async () => (await s.ledger.getMany(slots.map((slotId) => keyId({ slotId, postId: 'p' })))).every((r) => r?.state === 'sent'),
    `${slots.length} keys sent`,
    60_000,
  );
/** Wait for the start of a budget window, so that a test's first window is a whole one. */
const windowStart = (windowMs: number) => new Promise((r) => setTimeout(r, windowMs - (Date.now() % windowMs) + 5));

describe("one account's trouble is not everyone's", () => {
  it('a 429 for account A blocks only A until the reset; B keeps publishing; nothing lost or doubled', async () => {
    stack = await startStack({ concurrency: 1, fake: { rateLimitResetSec: 2 } });
    const s = stack;
    s.fake.injectNext('429', { text: 'acme a0' });
    const a = ['a0', 'a1', 'a2', 'a3'];
    const b = ['b0', 'b1', 'b2', 'b3'];
    await s.producer.enqueueMany([...a.map((k) => req(k, 'acme')), ...b.map((k) => req(k, 'globex'))]);
    await allSent(s, [...a, ...b]);
    const posts = s.fake.requests().filter((r) => r.method === 'POST');
    // A's 429, then B's four, then A's four: A's queued jobs waited without calling X.
    expect(posts.map((r) => [r.userId, r.status])).toEqual([
      ['1001', 429],
      ['1002', 201],
      ['1002', 201],
      ['1002', 201],
      ['1002', 201],
      ['1001', 201],
      ['1001', 201],
      ['1001', 201],
      ['1001', 201],
    ]);
    expect(s.fake.created()).toHaveLength(8);
    expect(new Set(s.fake.created().map((c) => c.text)).size).toBe(8);
    expect((await s.ledger.stats()).throttled).toBeGreaterThanOrEqual(3);
  });

  it("fairness: 500 posts due for A and 5 each for B–K: all of B–K go out before A's budget-limited tail", async () => {
    const budget = { post: 100, dm: 100, windowMs: 2_000, appDaily: 0 };
    stack = await startStack({ concurrency: 20, extraAccounts: 11, budget });
    const s = stack;
    const others = Array.from({ length: 10 }, (_, i) => `acc-${i + 1}`);
    const aSlots = Array.from({ length: 500 }, (_, i) => `a${i}`);
    const otherReqs = others.flatMap((acc) => Array.from({ length: 5 }, (_, i) => req(`${acc}-${i}`, acc)));
    await windowStart(budget.windowMs);
    await s.producer.enqueueMany([...aSlots.map((k) => req(k, 'acc-0')), ...otherReqs]);
    await allSent(s, [...aSlots, ...otherReqs.map((r) => r.slotId)]);

    const created = s.fake.created();
    expect(created).toHaveLength(550);
    expect(new Set(created.map((c) => c.text)).size).toBe(550);
    const aTimes = created
      .filter((c) => c.text.startsWith('acc-0 '))
      .map((c) => c.createdAt)
      .sort((x, y) => x - y);
    const otherLast = Math.max(...created.filter((c) => !c.text.startsWith('acc-0 ')).map((c) => c.createdAt));
    expect(otherLast).toBeLessThan(aTimes[budget.post]!); // the 101st of A's posts starts its tail
    // A's budget held: never more than 100 claims in one window.
    const records = await s.ledger.getMany(aSlots.map((slotId) => keyId({ slotId, postId: 'p' })));
    const perWindow = new Map<number, number>();
    for (const r of records) {
      const w = Math.floor(r!.attemptStartedAt! / budget.windowMs);
      perWindow.set(w, (perWindow.get(w) ?? 0) + 1);
    }
    expect(Math.max(...perWindow.values())).toBeLessThanOrEqual(budget.post);
    expect(perWindow.size).toBeGreaterThanOrEqual(5);
  });

  it("revoked credentials fail that account's posts with a reason and pause only it", async () => {
    stack = await startStack({ concurrency: 1, credentialOverrides: { globex: { auth: { type: 'oauth2', accessToken: 'REVOKED' } } } });
    const s = stack;
    const g = ['g0', 'g1', 'g2'];
    const a = ['a0', 'a1', 'a2'];
    await s.producer.enqueueMany([...g.map((k) => req(k, 'globex')), ...a.map((k) => req(k, 'acme'))]);
    await allSent(s, a);
    const gRecords = await waitUntil(async () => {
      const rs = await s.ledger.getMany(g.map((slotId) => keyId({ slotId, postId: 'p' })));
      return rs.every((r) => r?.state === 'failed') ? rs : undefined;
    }, 'globex posts failed');
    expect(gRecords[0]).toMatchObject({ reason: 'rejected', attempt: 1 });
    expect(gRecords[0]!.detail).toMatch(/^http-401/);
    for (const r of gRecords.slice(1)) {
      expect(r).toMatchObject({ reason: 'account-paused', attempt: 0 });
      expect(r!.detail).toContain('xactly accounts resume globex');
    }
    // Only the first globex post reached X; acme was untouched.
    expect(s.fake.requests().filter((r) => r.method === 'POST' && r.status === 401)).toHaveLength(1);
    expect(
      s.fake
        .created()
        .map((c) => c.text)
        .sort(),
    ).toEqual(a.map((k) => `acme ${k}`));
    expect((await s.ledger.accountStatus(['acme', 'globex'])).get('globex')?.paused).toContain('http-401');
    expect(await s.ledger.resumeAccount('globex')).toBe(true);
    expect((await s.ledger.accountStatus(['globex'])).size).toBe(0);
  });
});

describe('budget bookkeeping', () => {
  it('a throttled key is not looked at by reconciliation before its budget frees', async () => {
    const budget = { post: 1, dm: 1, windowMs: 60_000, appDaily: 0 };
    stack = await startStack({ startWorkers: false });
    const s = stack;
    await s.producer.enqueueMany([req('t0', 'acme'), req('t1', 'acme')]);
    const now = Date.now();
    const b = budgetFor('post', now, budget);
    const ids = ['t0', 't1'].map((slotId) => keyId({ slotId, postId: 'p' }));
    expect((await s.ledger.claim({ keyId: ids[0]!, jobId: 'j0', leaseMs: 30_000, now, accountId: 'acme', budget: b })).verdict).toBe('claimed');
    const second = await s.ledger.claim({ keyId: ids[1]!, jobId: 'j1', leaseMs: 30_000, now, accountId: 'acme', budget: b });
    expect(second).toMatchObject({ verdict: 'throttled', retryAt: b.windowEnd });
    // Due for reconciliation only after the retry time plus the lost-job grace.
    expect(Number(await s.redis.zscore(s.ledger.keys.due, ids[1]!))).toBe(b.windowEnd + 60_000);
    expect(await s.ledger.dueKeys(b.windowEnd, 10)).not.toContain(ids[1]);
  });
});

describe('budgets are shared by every worker process', () => {
  it("3 `xactly worker` processes together stay within an account's budget per window", async () => {
    stack = await startStack({ startWorkers: false });
    const s = stack;
    const dir = await mkdtemp(join(tmpdir(), 'xactly-budget-'));
    const accountsFile = join(dir, 'accounts.json');
    await writeFile(accountsFile, JSON.stringify({ accounts: ACCOUNTS }));
    const windowMs = 1_000;
    const limit = 8;
    const env = {
      ...process.env,
      REDIS_URL,
      XACTLY_PREFIX: s.prefix,
      XACTLY_ACCOUNTS_FILE: accountsFile,
      X_API_BASE_URL: s.fake.url,
      X_TIMEOUT_MS: '2000',
      XACTLY_SETTLE_WINDOW_MS: '5000',
      XACTLY_POST_LIMIT: String(limit),
      XACTLY_LIMIT_WINDOW_MS: String(windowMs),
      LOG_LEVEL: 'info',
    };
    const processes = [0, 1, 2].map(() => spawnWorker(env));
    children.push(...processes.map((w) => w.child));
    await Promise.all(processes.map((w) => w.ready()));
    const slots = Array.from({ length: 40 }, (_, i) => `k${i}`);
    await s.producer.enqueueMany(slots.map((k) => req(k, 'acme')));
    await allSent(s, slots);

    const records = await s.ledger.getMany(slots.map((slotId) => keyId({ slotId, postId: 'p' })));
    const perWindow = new Map<number, number>();
    for (const r of records) perWindow.set(Math.floor(r!.attemptStartedAt! / windowMs), (perWindow.get(Math.floor(r!.attemptStartedAt! / windowMs)) ?? 0) + 1);
    expect(Math.max(...perWindow.values())).toBeLessThanOrEqual(limit);
    expect(perWindow.size).toBeGreaterThanOrEqual(Math.ceil(slots.length / limit));
    // At X: one call per key, and the calls span at least the windows the budget demands.
    expect(s.fake.created()).toHaveLength(40);
    const times = s.fake.created().map((c) => c.createdAt);
    expect(Math.max(...times) - Math.min(...times)).toBeGreaterThanOrEqual((Math.ceil(slots.length / limit) - 2) * windowMs);
    const workers = await s.producer.queue.getWorkers();
    expect(workers.length).toBeGreaterThanOrEqual(3);
  });
});
