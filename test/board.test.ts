import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../src/config.js';
import { keyId } from '../src/domain/key.js';
import { ledgerKeys } from '../src/ledger/keys.js';
import { type BoardServer, createBoardServer } from '../src/ops/board.js';
import { startWorkerProcess } from '../src/ops/worker-process.js';
import { staticCredentialStore } from '../src/x/credentials.js';
import { ACCOUNTS, captureLogs, dropPrefix, newRedis, post, REDIS_URL, SECRETS, type Stack, startStack, uniquePrefix, waitUntil } from './harness.js';
import { freePort } from './support/ports.js';
import { CLI } from './support/workers.js';

const USER = 'operator';
const PASSWORD = 'b0ard-PASSWORD-s3cr3t-fff';
const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = join(import.meta.dirname, '..', 'test-artifacts');

const configFor = (prefix: string, extra: Record<string, string> = {}): Config =>
  loadConfig({ REDIS_URL, XACTLY_PREFIX: prefix, BOARD_USER: USER, BOARD_PASSWORD: PASSWORD, X_TIMEOUT_MS: '1000', XACTLY_SETTLE_WINDOW_MS: '5000', ...extra });

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const AUTH = { authorization: basic(USER, PASSWORD) };

async function get(base: string, path: string, headers: Record<string, string> = AUTH) {
  const res = await fetch(base + path, { headers });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parse Prometheus text exposition format (0.0.4); throws on any line that is not valid. */
function parseExposition(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('# HELP ')) continue;
    const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (type) {
      types.set(type[1]!, type[2]!);
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not Prometheus exposition format: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    const value = m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : Number(m[3]);
    if (Number.isNaN(value)) throw new Error(`bad sample value: ${JSON.stringify(line)}`);
    samples.push({ name: m[1]!, labels, value });
  }
  return { samples, types };
}

/** The value of the one sample with exactly these labels. */
function valueOf(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const want = Object.entries(labels);
  const hit = samples.filter((s) => s.name === name && Object.keys(s.labels).length === want.length && want.every(([k, v]) => s.labels[k] === v));
  if (hit.length > 1) throw new Error(`${name} ${JSON.stringify(labels)} appears ${hit.length} times`);
  return hit[0]?.value;
}

describe('board: start-up rules', () => {
  const redis = newRedis();
  const prefix = uniquePrefix('board-start');
  afterAll(async () => {
    await dropPrefix(redis, prefix);
    await redis.quit();
  });

  it('refuses to start without credentials, and starts open with open: true', async () => {
    const { logger } = captureLogs();
    const bare = loadConfig({ REDIS_URL, XACTLY_PREFIX: prefix });
    expect(() => createBoardServer({ redis, config: bare, logger })).toThrow(/BOARD_USER and BOARD_PASSWORD/);
    expect(() => createBoardServer({ redis, config: { ...bare, boardUser: 'only-user' }, logger })).toThrow(/BOARD_PASSWORD/);
    // Half-configured credentials are a mistake even when running open.
    expect(() => createBoardServer({ redis, config: { ...bare, boardPassword: 'x' }, logger, open: true })).toThrow(/BOARD_USER/);

    const open = createBoardServer({ redis, config: bare, logger, open: true });
    try {
      const { url } = await open.listen(0);
      expect((await get(url, '/board', {})).status).toBe(200);
      expect((await get(url, '/metrics', {})).status).toBe(200);
    } finally {
      await open.close();
    }

    // metricsOpen: scrapers without credentials get /metrics, and only /metrics.
    const scrape = createBoardServer({ redis, config: configFor(prefix), logger, metricsOpen: true });
    try {
      const { url } = await scrape.listen(0);
      expect((await get(url, '/metrics', {})).status).toBe(200);
      expect((await get(url, '/board', {})).status).toBe(401);
      expect((await get(url, '/api/posts/s/p', {})).status).toBe(401);
    } finally {
      await scrape.close();
    }
  });

  it('CLI: exits 1 naming the variables without credentials; serves and exits 0 on SIGTERM', async () => {
    const env = { ...process.env, REDIS_URL, XACTLY_PREFIX: prefix, BOARD_USER: '', BOARD_PASSWORD: '', LOG_LEVEL: 'silent' };
    const refused = spawn(process.execPath, [CLI, 'board'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    refused.stderr.on('data', (d) => (stderr += d));
    expect(await new Promise((resolve) => refused.on('exit', resolve))).toBe(1);
    expect(stderr).toContain('BOARD_USER and BOARD_PASSWORD');

    const port = await freePort();
    const child = spawn(process.execPath, [CLI, 'board'], {
      env: { ...env, BOARD_USER: USER, BOARD_PASSWORD: PASSWORD, BOARD_PORT: String(port), LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const exited = new Promise((resolve) => child.on('exit', resolve));
    try {
      await waitUntil(() => out.includes('board on '), 'the board to listen');
      const url = `http://127.0.0.1:${port}`;
      expect(out).toContain(`${url}/board`);
      expect((await get(url, '/board', {})).status).toBe(401);
      expect((await get(url, '/board')).status).toBe(200);
      // The Webhooks page is mounted (no deliverer has run on this prefix yet).
      const hooks = await get(url, '/ledger/webhooks');
      expect(hooks.status).toBe(200);
      expect(hooks.text).toContain('No webhook URL served yet');
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(out).not.toContain(PASSWORD);
    } finally {
      child.kill('SIGKILL');
    }
  });
});

describe('board: /healthz', () => {
  const redis = newRedis();
  const prefix = uniquePrefix('board-health');
  let board: BoardServer;
  let url: string;
  beforeAll(async () => {
    board = createBoardServer({ redis, config: configFor(prefix), logger: captureLogs().logger });
    ({ url } = await board.listen(0));
  });
  afterAll(async () => {
    await board.close();
    await dropPrefix(redis, prefix);
    await redis.quit();
  });

  const health = async () => {
    const r = await get(url, '/healthz', {});
    return { status: r.status, body: JSON.parse(r.text) as { status: string; redis: string; workers: { seen: number; lastSeenAgoMs: number | null } } };
  };

  it('is 503 without a live worker, 200 while a worker process beats, 503 after it stops; needs no credentials', async () => {
    expect(await health()).toEqual({ status: 503, body: { status: 'unavailable', redis: 'ok', workers: { seen: 0, lastSeenAgoMs: null } } });

    // A heartbeat three intervals old is a dead worker, even if its key is still there.
    await redis.set(ledgerKeys(prefix).heartbeat('ghost-1'), String(Date.now() - 20_000), 'PX', 15_000);
    const stale = await health();
    expect(stale.status).toBe(503);
    expect(stale.body.workers.seen).toBe(0);
    expect(stale.body.workers.lastSeenAgoMs).toBeGreaterThanOrEqual(20_000);

    const { logger } = captureLogs();
    const stack = await startStack({ startWorkers: false });
    try {
      const proc = await startWorkerProcess(configFor(prefix, { LOG_LEVEL: 'silent' }), logger, { credentials: staticCredentialStore(ACCOUNTS), x: stack.x });
      try {
        const live = await waitUntil(async () => {
          const h = await health();
          return h.status === 200 ? h : undefined;
        }, 'a 200 from /healthz');
        expect(live.body.status).toBe('ok');
        expect(live.body.workers.seen).toBe(1);
        expect(live.body.workers.lastSeenAgoMs).toBeLessThan(15_000);
        const metrics = parseExposition((await get(url, '/metrics')).text).samples;
        expect(valueOf(metrics, 'xactly_workers_live')).toBe(1);
      } finally {
        await proc.stop();
      }
      // The worker removed its heartbeat on the way out.
      expect((await health()).status).toBe(503);
    } finally {
      await stack.close();
    }
  });

  it('says redis: down (503, quickly) when Redis is unreachable', async () => {
    const dead = new Redis('redis://127.0.0.1:1', { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    dead.on('error', () => undefined);
    const b = createBoardServer({ redis: dead, config: configFor(prefix), logger: captureLogs().logger });
    try {
      const { url: u } = await b.listen(0);
      const r = await get(u, '/healthz', {});
      expect(r.status).toBe(503);
      expect(JSON.parse(r.text)).toMatchObject({ status: 'unavailable', redis: 'down', workers: { seen: 0 } });
      expect((await get(u, '/metrics')).status).toBe(503);
    } finally {
      await b.close().catch(() => undefined);
      dead.disconnect();
    }
  });
});

describe('board on a stack with real publishes', () => {
  let stack: Stack;
  let board: BoardServer;
  let url: string;
  let boardLogs: string[];
  const SENT = ['metrics-1', 'metrics-2', 'metrics-2026-06-01T09:00'];
  const AMBIGUOUS = 'metrics-ambiguous';
  const DELAYED = ['later-1', 'later-2', 'later-3'];

  beforeAll(async () => {
    stack = await startStack({ timeoutMs: 500 });
    const logs = captureLogs();
    boardLogs = logs.lines;
    board = createBoardServer({ redis: stack.redis, config: configFor(stack.prefix), logger: logs.logger });
    ({ url } = await board.listen(0));

    stack.fake.injectNext('commit-then-reset', { text: 'metrics: the ambiguous one' });
    const later = new Date(Date.now() + 3_600_000).toISOString();
    const results = await stack.producer.enqueueMany([
      ...SENT.map((s) => post(s, `metrics: ${s}`)),
      post(AMBIGUOUS, 'metrics: the ambiguous one'),
      ...DELAYED.map((s) => post(s, `scheduled for later: ${s}`, { scheduledAt: later })),
    ]);
    expect(results.map((r) => r.status)).toEqual(Array(SENT.length + 1 + DELAYED.length).fill('queued'));
    await waitUntil(async () => {
      const states = await Promise.all([...SENT, AMBIGUOUS].map((s) => stack.stateOf(s, 'p1')));
      return states.every((st, i) => st === (i < SENT.length ? 'sent' : 'ambiguous'));
    }, 'three sent and one ambiguous');
    // A job completes just after its ledger transition.
    await waitUntil(async () => (await stack.producer.queue.getJobCounts('completed')).completed === SENT.length + 1, 'jobs completed');
  });
  afterAll(async () => {
    await board?.close();
    await stack?.close();
  });

  it('asks for credentials on everything but /healthz, and never echoes them', async () => {
    const paths = ['/board', '/board/api/queues', '/metrics', `/api/posts/${SENT[0]}/p1`];
    const wrong: Record<string, string>[] = [
      {},
      { authorization: basic(USER, 'not-the-password') },
      { authorization: basic('someone', PASSWORD) },
      { authorization: basic(USER, PASSWORD + 'x') },
      { authorization: `Bearer ${PASSWORD}` },
      { authorization: `Basic ${Buffer.from(USER + PASSWORD).toString('base64')}` },
    ];
    for (const path of paths) {
      for (const headers of wrong) {
        const r = await get(url, path, headers);
        expect(r.status, `${path} with ${JSON.stringify(headers)}`).toBe(401);
        expect(r.headers.get('www-authenticate')).toBe('Basic realm="xactly", charset="UTF-8"');
        expect(r.text).not.toContain(PASSWORD);
        expect(r.text).not.toContain(USER);
      }
      expect((await get(url, path)).status, path).toBe(200);
    }
    expect((await get(url, '/healthz', {})).status).not.toBe(401);
    expect(boardLogs.join('')).not.toContain(PASSWORD);
  });

  it('/metrics: valid exposition format with the counts of what happened', async () => {
    const res = await get(url, '/metrics');
    expect(res.headers.get('content-type')).toContain('text/plain');
    const { samples, types } = parseExposition(res.text);

    expect(types.get('xactly_posts_final_total')).toBe('counter');
    expect(valueOf(samples, 'xactly_posts_final_total', { state: 'sent' })).toBe(SENT.length);
    expect(valueOf(samples, 'xactly_posts_final_total', { state: 'failed', reason: 'rejected' })).toBe(0);
    expect(types.get('xactly_x_attempts_total')).toBe('counter');
    expect(valueOf(samples, 'xactly_x_attempts_total', { outcome: 'ambiguous' })).toBe(1);
    expect(valueOf(samples, 'xactly_x_attempts_total', { outcome: 'sent' })).toBe(SENT.length);
    expect(valueOf(samples, 'xactly_x_attempts_total', { outcome: 'not-sent' })).toBe(0);

    // Histogram: cumulative buckets in seconds ending with +Inf = _count = attempts.
    const h = 'xactly_x_call_duration_seconds';
    expect(types.get(h)).toBe('histogram');
    const buckets = samples.filter((s) => s.name === `${h}_bucket`).map((s) => ({ le: Number(s.labels.le === '+Inf' ? Infinity : s.labels.le), n: s.value }));
    expect(buckets.map((b) => b.le)).toEqual([0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, Infinity]);
    for (let i = 1; i < buckets.length; i++) expect(buckets[i]!.n).toBeGreaterThanOrEqual(buckets[i - 1]!.n);
    const attempts = SENT.length + 1;
    expect(valueOf(samples, `${h}_count`)).toBe(attempts);
    expect(buckets.at(-1)!.n).toBe(attempts);
    // The ambiguous call ended with a reset right after X committed: well under the 500 ms timeout.
    expect(buckets.find((b) => b.le === 1)!.n).toBe(attempts);
    const sum = valueOf(samples, `${h}_sum`)!;
    expect(sum).toBeGreaterThan(0);
    expect(sum).toBeLessThan(attempts * 1);

    expect(valueOf(samples, 'xactly_queue_jobs', { queue: 'publish', state: 'completed' })).toBe(attempts);
    expect(valueOf(samples, 'xactly_queue_jobs', { queue: 'publish', state: 'delayed' })).toBe(DELAYED.length);
    expect(valueOf(samples, 'xactly_queue_jobs', { queue: 'reconcile', state: 'failed' })).toBe(0);
    // Unresolved: the ambiguous key and the three scheduled for later; none of them overdue.
    expect(valueOf(samples, 'xactly_unresolved_keys')).toBe(1 + DELAYED.length);
    expect(valueOf(samples, 'xactly_oldest_unresolved_age_seconds')).toBe(0);
    expect(valueOf(samples, 'xactly_ambiguous_resolved_total', { outcome: 'sent' })).toBe(0);
    expect(types.get('xactly_workers_live')).toBe('gauge');
    expect(valueOf(samples, 'xactly_workers_live')).toBe(0);
  });

  it('/metrics: the oldest unresolved age counts from when reconciliation was due', async () => {
    const keys = ledgerKeys(stack.prefix);
    const id = keyId({ slotId: AMBIGUOUS, postId: 'p1' });
    const original = await stack.redis.zscore(keys.due, id);
    await stack.redis.zadd(keys.due, Date.now() - 90_000, id);
    try {
      const age = valueOf(parseExposition((await get(url, '/metrics')).text).samples, 'xactly_oldest_unresolved_age_seconds')!;
      expect(age).toBeGreaterThanOrEqual(90);
      expect(age).toBeLessThan(120);
    } finally {
      await stack.redis.zadd(keys.due, Number(original), id);
    }
  });

  it('/api/posts/:slotId/:postId returns the record and its audit trail; 404 for an unknown key', async () => {
    const slot = SENT[2]!; // contains ':' — must survive URL encoding
    const r = await get(url, `/api/posts/${encodeURIComponent(slot)}/p1`);
    expect(r.status).toBe(200);
    const body = JSON.parse(r.text) as { record: Record<string, unknown>; audit: { event: string }[] };
    const tweet = stack.fake.created().find((c) => c.text === `metrics: ${slot}`)!;
    expect(body.record).toMatchObject({ slotId: slot, postId: 'p1', accountId: 'acme', state: 'sent', attempt: 1, tweetId: tweet.id });
    expect(body.audit.map((e) => e.event)).toEqual(['queued', 'claimed', 'x-answer', 'sent']);

    const amb = JSON.parse((await get(url, `/api/posts/${AMBIGUOUS}/p1`)).text) as { record: Record<string, unknown> };
    expect(amb.record).toMatchObject({ state: 'ambiguous', detail: 'econnreset' });

    const missing = await get(url, '/api/posts/no-such-slot/p1');
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-type')).toContain('application/json');
    expect(JSON.parse(missing.text)).toEqual({ error: 'no such key', slotId: 'no-such-slot', postId: 'p1' });
  });

  it('is read-only by default; a writable board still refuses cross-site writes', async () => {
    const pause = (u: string, headers: Record<string, string> = {}) =>
      fetch(`${u}/board/api/queues/publish/pause`, { method: 'PUT', headers: { ...AUTH, ...headers } });
    expect((await pause(url)).status).toBe(405);
    expect(await stack.producer.queue.isPaused()).toBe(false);

    const writable = createBoardServer({ redis: stack.redis, config: configFor(stack.prefix), logger: captureLogs().logger, readOnly: false });
    try {
      const { url: w } = await writable.listen(0);
      expect((await pause(w, { 'sec-fetch-site': 'cross-site' })).status).toBe(403);
      expect(await stack.producer.queue.isPaused()).toBe(false);
      expect((await pause(w, { 'sec-fetch-site': 'same-origin' })).status).toBe(200);
      expect(await stack.producer.queue.isPaused()).toBe(true);
    } finally {
      await stack.producer.queue.resume();
      await writable.close();
    }
  });

  it('never shows account secrets or the board password (board, its API, metrics, ledger API)', async () => {
    const pages = [
      '/board',
      '/board/api/queues?activeQueue=publish&status=latest&page=1&jobsPerPage=50',
      '/board/api/queues?activeQueue=publish&status=delayed&page=1&jobsPerPage=50',
      '/metrics',
      `/api/posts/${SENT[0]}/p1`,
      `/api/posts/${AMBIGUOUS}/p1`,
      '/healthz',
    ];
    const bodies = await Promise.all(
      pages.map(async (p) => {
        const r = await get(url, p);
        expect(r.status, p).toBe(p === '/healthz' ? 503 : 200); // no worker process on this stack
        return r.text;
      }),
    );
    const all = bodies.join('\n');
    // Not vacuous: the queue API did list the jobs.
    expect(all).toContain(keyId({ slotId: DELAYED[0]!, postId: 'p1' }));
    expect(all).toContain(keyId({ slotId: SENT[0]!, postId: 'p1' }));
    for (const secret of [...Object.values(SECRETS), PASSWORD]) expect(all).not.toContain(secret);
  });

  const haveChromium = existsSync(CHROMIUM);
  const skipBrowser = !haveChromium && !process.env.CI;
  it.skipIf(skipBrowser)(
    skipBrowser
      ? `browser: SKIPPED — ${CHROMIUM} is not installed (apt-get install chromium; required when CI is set)`
      : 'browser: logs in and sees the publish queue with its jobs',
    async () => {
      if (!haveChromium) throw new Error(`${CHROMIUM} is not installed; CI must provide Debian's chromium for the board's browser test`);
      await mkdir(ARTIFACTS, { recursive: true });
      const browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: [
          '--headless',
          '--no-sandbox',
          '--disable-gpu',
          '--disable-quic',
          '--no-first-run',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
        ],
      });
      try {
        const anonymous = await browser.newContext();
        await expect((await anonymous.newPage()).goto(`${url}/board`)).rejects.toThrow(/ERR_INVALID_AUTH_CREDENTIALS/);
        await anonymous.close();

        const context = await browser.newContext({ httpCredentials: { username: USER, password: PASSWORD }, viewport: { width: 1400, height: 900 } });
        const page = await context.newPage();
        const home = await page.goto(`${url}/board`);
        expect(home?.status()).toBe(200);
        await page.getByText('publish', { exact: true }).first().waitFor({ timeout: 15_000 });
        await page.getByText('reconcile', { exact: true }).first().waitFor({ timeout: 15_000 });

        await page.goto(`${url}/board/queue/publish?status=delayed`);
        for (const slot of DELAYED)
          await page
            .getByText(keyId({ slotId: slot, postId: 'p1' }))
            .first()
            .waitFor({ timeout: 15_000 });
        const html = await page.content();
        for (const secret of [...Object.values(SECRETS), PASSWORD]) expect(html).not.toContain(secret);
        await page.screenshot({ path: join(ARTIFACTS, 'board.png'), fullPage: true });
        await context.close();
      } finally {
        await browser.close();
      }
    },
  );
});
