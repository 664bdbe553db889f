/**
 * Webhooks: every outcome event POSTed, signed, at least once to every URL,
 * through real receivers (test/support/receiver.ts) that answer 500, hang,
 * reset the connection or are down, while real transitions happen (the
 * producer and a publish worker against the fake X).
 */
import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, type WebhookConfig } from '../src/config.js';
import { afterFailure, backoffMs } from '../src/domain/webhook.js';
import { eventView } from '../src/domain/view.js';
import type { OutcomeEvent } from '../src/ledger/ledger.js';
import { createMetrics } from '../src/ops/metrics.js';
import { type Deliverer, endpointOf, startDeliverer } from '../src/webhooks/deliverer.js';
import { sign, verify } from '../src/webhooks/signing.js';
import { webhookStatus, webhookTarget, type WebhookStatus } from '../src/webhooks/store.js';
import { newRedis, post, REDIS_URL, SECRETS, type Stack, startStack, waitUntil } from './harness.js';
import { type Receiver, startReceiver } from './support/receiver.js';
import { CLI } from './support/workers.js';

const SECRET = 'whsec-test-0123456789abcdef';

let stack: Stack | undefined;
const deliverers: Deliverer[] = [];
const receivers: Receiver[] = [];
const connections: ReturnType<typeof newRedis>[] = [];
afterEach(async () => {
  await Promise.all(deliverers.splice(0).map((d) => d.stop(0)));
  await Promise.all(receivers.splice(0).map((r) => r.close()));
  await Promise.all(connections.splice(0).map((c) => c.quit()));
  await stack?.close();
  stack = undefined;
});

function hookConfig(urls: string[], over: Partial<WebhookConfig> = {}): WebhookConfig {
  return {
    urls,
    secret: SECRET,
    events: undefined,
    accounts: undefined,
    maxTries: 1_000,
    backoffBaseMs: 50,
    backoffMaxMs: 400,
    timeoutMs: 500,
    concurrency: 4,
    ...over,
  };
}

/** A deliverer as one process would run it: a Redis connection of its own. */
async function deliverer(s: Stack, config: WebhookConfig, opts: { leaseMarginMs?: number } = {}): Promise<Deliverer> {
  const redis = newRedis();
  connections.push(redis);
  const d = await startDeliverer({ redis, keys: s.ledger.keys, config, logger: s.logger, leaseMarginMs: opts.leaseMarginMs ?? 300, pollMs: 200 });
  deliverers.push(d);
  return d;
}

async function receiver(): Promise<Receiver> {
  const r = await startReceiver(SECRET);
  receivers.push(r);
  return r;
}

async function allEvents(s: Stack): Promise<OutcomeEvent[]> {
  const out: OutcomeEvent[] = [];
  for (let from = '0'; ;) {
    const batch = await s.ledger.readEvents(from, 100);
    if (batch.length === 0) return out;
    out.push(...batch);
    from = batch.at(-1)!.id;
  }
}

const statusOf = async (s: Stack, url: string): Promise<WebhookStatus> => (await webhookStatus(s.redis, s.ledger.keys, { urlId: webhookTarget(url).id }))[0]!;

const posts = (label: string, n: number, account = 'acme') =>
  Array.from({ length: n }, (_, i) => post(`${label}-${i}`, `${label} post ${i} text`, { accountId: account }));

/** Every enqueued key is sent (each has its queued and sent events). */
async function allSent(s: Stack, n: number): Promise<void> {
  await waitUntil(async () => (await allEvents(s)).filter((e) => e.type === 'sent').length === n, `${n} posts sent`, 60_000);
}

const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

function cli(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('webhook signing and policy', () => {
  it('signs t.body with HMAC-SHA256; verify refuses a changed body, another secret, an old timestamp', () => {
    const body = '{"id":"1-0","type":"sent"}';
    const now = 1_800_000_000_000;
    const header = sign(SECRET, body, now);
    expect(header).toMatch(/^t=1800000000,v1=[0-9a-f]{64}$/);
    expect(verify(SECRET, body, header, { now })).toEqual({ ok: true, t: 1_800_000_000 });
    expect(verify(SECRET, body.replace('sent', 'failed'), header, { now })).toEqual({ ok: false, why: 'mismatch' });
    expect(verify('another-secret-0123456789', body, header, { now })).toEqual({ ok: false, why: 'mismatch' });
    expect(verify(SECRET, body, header, { now: now + 301_000 })).toEqual({ ok: false, why: 'too-old' });
    expect(verify(SECRET, body, 'v1=abc', { now })).toEqual({ ok: false, why: 'malformed' });
  });

  it("a URL's userinfo is sent as Basic auth, not in the URL (fetch refuses it); its query stays", () => {
    expect(endpointOf('https://hooks.example.com/in?token=zzz')).toEqual({ url: 'https://hooks.example.com/in?token=zzz', headers: {} });
    expect(endpointOf('https://us%40er:p%3Ass@hooks.example.com/in?token=zzz')).toEqual({
      url: 'https://hooks.example.com/in?token=zzz',
      headers: { Authorization: `Basic ${Buffer.from('us@er:p:ss').toString('base64')}` },
    });
  });

  it('backs off exponentially with a cap, and gives up after the last try', () => {
    const policy = { maxTries: 5, baseMs: 1_000, maxMs: 5_000 };
    expect([1, 2, 3, 4, 10].map((t) => backoffMs(t, policy, () => 1))).toEqual([1_000, 2_000, 4_000, 5_000, 5_000]);
    expect(backoffMs(3, policy, () => 0)).toBe(2_000);
    expect(afterFailure(4, policy, 100, () => 1)).toEqual({ verdict: 'retry', at: 5_100 });
    expect(afterFailure(5, policy, 100)).toEqual({ verdict: 'dead' });
  });

  it('config: URLs need a secret; bad URLs, event types and backoffs are refused, naming the variable and hiding secrets', () => {
    const base = { XACTLY_WEBHOOK_URLS: 'https://hooks.example.com/a?token=zzz, http://127.0.0.1:9999/b' };
    expect(() => loadConfig(base)).toThrow(
      new ConfigError('XACTLY_WEBHOOK_SECRET is required when XACTLY_WEBHOOK_URLS is set (at least 16 characters; receivers check the signature with it)'),
    );
    const ok = loadConfig({ ...base, XACTLY_WEBHOOK_SECRET: SECRET, XACTLY_WEBHOOK_EVENTS: 'sent,failed', XACTLY_WEBHOOK_ACCOUNTS: 'acme' });
    expect(ok.webhooks).toMatchObject({
      urls: ['https://hooks.example.com/a?token=zzz', 'http://127.0.0.1:9999/b'],
      events: ['sent', 'failed'],
      accounts: ['acme'],
      maxTries: 15,
    });
    expect(ok.webhooks!.secret).toBe(SECRET);
    expect(JSON.stringify(ok)).not.toContain(SECRET);
    expect(loadConfig({}).webhooks).toBeUndefined();
    expect(() => loadConfig({ XACTLY_WEBHOOK_URLS: 'ftp://x/token-abc', XACTLY_WEBHOOK_SECRET: SECRET })).toThrow(
      /XACTLY_WEBHOOK_URLS must be a comma-separated list of http\(s\) URLs \(got \(hidden\)\)/,
    );
    expect(() => loadConfig({ ...base, XACTLY_WEBHOOK_SECRET: 'short' })).toThrow(/XACTLY_WEBHOOK_SECRET must be at least 16 characters \(got \(hidden\)\)/);
    expect(() => loadConfig({ ...base, XACTLY_WEBHOOK_SECRET: SECRET, XACTLY_WEBHOOK_EVENTS: 'sent,posted' })).toThrow(
      /XACTLY_WEBHOOK_EVENTS must be a comma-separated list of queued, sent/,
    );
    expect(() => loadConfig({ ...base, XACTLY_WEBHOOK_SECRET: SECRET, XACTLY_WEBHOOK_BACKOFF_MAX_MS: '10' })).toThrow(
      /XACTLY_WEBHOOK_BACKOFF_MAX_MS must be at least/,
    );
    expect(webhookTarget('https://hooks.example.com/a?token=zzz')).toMatchObject({ host: 'hooks.example.com', label: 'https://hooks.example.com/…' });
  });
});

describe('webhook delivery', () => {
  it('through 500s, hangs, resets and an outage every event arrives, signed; a receiver deduping by id processes each exactly once', async () => {
    stack = await startStack();
    const s = stack;
    const r = await receiver();
    await deliverer(s, hookConfig([r.url], { timeoutMs: 300 }));
    let enqueued = 0;
    const phase = async (label: string, faults: () => Promise<boolean>) => {
      await s.producer.enqueueMany(posts(label, 4));
      enqueued += 4;
      await waitUntil(faults, `faults of phase ${label}`, 60_000);
    };
    const answered = (a: string) => r.received.filter((x) => x.answer === a).length;
    r.behaviour = '500';
    await phase('err', async () => answered('500') >= 8);
    r.behaviour = 'hang';
    await phase('hang', async () => answered('hang') >= 8);
    r.behaviour = 'reset';
    await phase('reset', async () => answered('reset') >= 8);
    // Down: the port refuses connections while keys keep being published.
    await r.down();
    const retriedBefore = (await statusOf(s, r.url)).counts.retried;
    await phase('down', async () => (await statusOf(s, r.url)).counts.retried >= retriedBefore + 8);
    await allSent(s, enqueued);
    const downFor = (await statusOf(s, r.url)).pending;
    expect(downFor).toBeGreaterThan(0);
    r.behaviour = 'ok';
    await r.up();

    const events = await allEvents(s);
    expect(events).toHaveLength(enqueued * 2);
    await waitUntil(() => events.every((e) => r.processed.has(e.id)), 'every event processed', 60_000);
    // Exactly once after dedupe: the processed ids are the stream's, no more.
    expect([...r.processed.keys()].sort()).toEqual(events.map((e) => e.id).sort());
    expect(r.received.every((x) => x.valid)).toBe(true);
    for (const e of events) expect(r.processed.get(e.id)!.event).toEqual(eventView(e));
    for (const x of r.received) {
      expect(x.event).toMatchObject({
        id: expect.any(String),
        type: expect.any(String),
        slotId: expect.any(String),
        postId: 'p1',
        accountId: 'acme',
        state: expect.any(String),
      });
      expect(x.body).not.toMatch(/post \d text/);
      for (const secret of [SECRET, ...Object.values(SECRETS)]) expect(x.body).not.toContain(secret);
    }
    const st = await statusOf(s, r.url);
    expect(st).toMatchObject({ pending: 0, dead: 0, counts: { delivered: events.length, deadLettered: 0, skipped: 0 } });
    console.log(
      `faults: ${answered('500')} × 500, ${answered('hang')} hangs, ${answered('reset')} resets, ${downFor} events pending while down; ` +
        `${r.received.length} requests for ${events.length} events, ${r.duplicates} duplicate 200s, ${st.counts.retried} retried tries`,
    );
  }, 120_000);

  it('a receiver down for good fills its dead-letter list; a healthy URL gets every event as promptly as alone, and publishing does not slow', async () => {
    const N = 20;
    const run = async (bad: boolean) => {
      stack = await startStack({ concurrency: 10 });
      const s = stack;
      const healthy = await receiver();
      const hanging = await receiver();
      hanging.behaviour = 'hang';
      const gone = await receiver();
      await gone.down();
      const urls = bad ? [hanging.url, gone.url, healthy.url] : [healthy.url];
      await deliverer(s, hookConfig(urls, { maxTries: 2, timeoutMs: 5_000, concurrency: 40, backoffBaseMs: 50, backoffMaxMs: 100 }));
      const t0 = Date.now();
      await s.producer.enqueueMany(posts('load', N));
      await allSent(s, N);
      const publishMs = Date.now() - t0;
      const events = await allEvents(s);
      await waitUntil(() => events.every((e) => healthy.processed.has(e.id)), 'the healthy URL got every event', 30_000);
      const delays = events.map((e) => healthy.processed.get(e.id)!.at - Number(e.id.split('-')[0]));
      if (bad) {
        await waitUntil(
          async () => (await statusOf(s, hanging.url)).dead === events.length && (await statusOf(s, gone.url)).dead === events.length,
          'both dead-letter lists full',
          60_000,
        );
        for (const url of [hanging.url, gone.url]) {
          const st = await statusOf(s, url);
          expect(st).toMatchObject({ pending: 0, dead: events.length, counts: { delivered: 0, deadLettered: events.length } });
          expect(new Set(st.deadLetters.map((d) => d.id))).toEqual(new Set(events.slice(0, 50).map((e) => e.id)));
          expect(st.deadLetters.every((d) => d.tries === 2 && d.error === (url === gone.url ? 'ECONNREFUSED' : 'timeout after 5000 ms'))).toBe(true);
        }
        const metrics = await createMetrics({ ledger: s.ledger, queues: [], redis: s.redis }).registry.metrics();
        expect(metrics).toContain(`xactly_webhook_dead_lettered_total{host="127.0.0.1:${gone.port}"} ${events.length}`);
        expect(metrics).toContain(`xactly_webhook_delivered_total{host="127.0.0.1:${healthy.port}"} ${events.length}`);
        expect(metrics).toContain(`xactly_webhook_retried_total{host="127.0.0.1:${hanging.port}"} ${events.length}`);
      }
      await Promise.all(deliverers.splice(0).map((d) => d.stop(0)));
      await Promise.all(receivers.splice(0).map((x) => x.close()));
      await stack.close();
      stack = undefined;
      return { publishMs, p50: percentile(delays, 50), max: Math.max(...delays) };
    };
    const alone = await run(false);
    const withDead = await run(true);
    console.log(
      `healthy URL alone: publish ${alone.publishMs} ms, delivery delay p50 ${alone.p50} ms, max ${alone.max} ms; ` +
        `next to a hanging and a refusing URL: publish ${withDead.publishMs} ms, p50 ${withDead.p50} ms, max ${withDead.max} ms`,
    );
    // A healthy URL waiting behind the hanging one would wait out its 5 s timeout at least once.
    expect(withDead.max).toBeLessThan(2_500);
    expect(withDead.publishMs).toBeLessThan(Math.max(3 * alone.publishMs, alone.publishMs + 2_000));
  }, 180_000);

  it('two deliverers share a URL without doubles; a deliverer killed mid-try leaves leases that the other takes over', async () => {
    stack = await startStack();
    const s = stack;
    const r = await receiver();
    const config = hookConfig([r.url], { timeoutMs: 500 });
    const a = await deliverer(s, config);
    const b = await deliverer(s, config);
    await s.producer.enqueueMany(posts('pair', 15));
    await allSent(s, 15);
    let events = await allEvents(s);
    await waitUntil(() => events.every((e) => r.processed.has(e.id)), 'every event processed', 30_000);
    // Both healthy: every event POSTed exactly once, whichever deliverer took it.
    expect(r.received).toHaveLength(events.length);
    expect(r.duplicates).toBe(0);

    // A holds tries in flight (the receiver hangs), then dies without recording them.
    await b.stop();
    r.behaviour = 'hang';
    await s.producer.enqueueMany(posts('crash', 5));
    await allSent(s, 20);
    await waitUntil(() => r.received.filter((x) => x.answer === 'hang').length >= 4, 'tries in flight', 30_000);
    await a.stop(0);
    const heldAtCrash = new Set(r.received.filter((x) => x.answer === 'hang').map((x) => x.id));
    r.behaviour = 'ok';
    await deliverer(s, config);
    events = await allEvents(s);
    await waitUntil(() => events.every((e) => r.processed.has(e.id)), 'every event processed after the crash', 30_000);
    expect([...r.processed.keys()].sort()).toEqual(events.map((e) => e.id).sort());
    expect(r.duplicates).toBe(0);
    // Doubles only within at-least-once: an id POSTed twice had a try that was never answered.
    const count = new Map<string, number>();
    for (const x of r.received) count.set(x.id, (count.get(x.id) ?? 0) + 1);
    const doubled = [...count].filter(([, n]) => n > 1).map(([id]) => id);
    expect(doubled.every((id) => heldAtCrash.has(id))).toBe(true);
    expect(doubled.length).toBeGreaterThan(0);
    expect(await statusOf(s, r.url)).toMatchObject({ pending: 0, dead: 0 });
    console.log(`two deliverers: ${events.length} events, ${heldAtCrash.size} held at the crash, ${doubled.length} POSTed again after it`);
  }, 120_000);

  it('events trimmed before a URL took them are counted and logged, not lost silently; the rest still go out', async () => {
    stack = await startStack({ startWorkers: false });
    const s = stack;
    const r = await receiver();
    const config = hookConfig([r.url]);
    const first = await deliverer(s, config);
    await s.producer.enqueueMany(posts('before', 2));
    await waitUntil(() => r.processed.size === 2, 'the first events delivered');
    await first.stop();
    // No deliverer runs while 5 more events come and the stream loses its head.
    await s.producer.enqueueMany(posts('unseen', 5));
    const events = await allEvents(s);
    await s.redis.xtrim(s.ledger.keys.events, 'MINID', events[5]!.id);
    await deliverer(s, config);
    await waitUntil(() => r.processed.has(events[6]!.id), 'the kept events delivered');
    expect([...r.processed.keys()].sort()).toEqual([events[0]!, events[1]!, events[5]!, events[6]!].map((e) => e.id).sort());
    const st = await statusOf(s, r.url);
    expect(st.counts).toMatchObject({ delivered: 4, skipped: 3 });
    const line = s.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.event === 'webhook-events-skipped');
    expect(line).toMatchObject({ skipped: 3, after: events[1]!.id, before: events[5]!.id });
    const metrics = await createMetrics({ ledger: s.ledger, queues: [], redis: s.redis }).registry.metrics();
    expect(metrics).toContain(`xactly_webhook_skipped_total{host="127.0.0.1:${r.port}"} 3`);
  }, 60_000);

  it('filters by event type and account', async () => {
    stack = await startStack();
    const s = stack;
    const r = await receiver();
    await deliverer(s, hookConfig([r.url], { events: ['sent', 'account-paused'], accounts: ['globex'] }));
    await s.producer.enqueueMany([...posts('acme', 2), ...posts('globex', 2, 'globex')]);
    await allSent(s, 4);
    await s.ledger.pauseAccount('globex', 'test pause');
    await s.ledger.pauseAccount('acme', 'test pause');
    const want = (await allEvents(s)).filter((e) => (e.type === 'sent' || e.type === 'account-paused') && e.account === 'globex');
    expect(want).toHaveLength(3);
    await waitUntil(() => want.every((e) => r.processed.has(e.id)), 'the filtered events');
    // The others were never taken in: the cursor is past them and nothing is pending.
    await waitUntil(async () => (await statusOf(s, r.url)).cursor === (await allEvents(s)).at(-1)!.id, 'the cursor at the end');
    expect([...r.processed.keys()].sort()).toEqual(want.map((e) => e.id).sort());
  }, 60_000);

  it('CLI: `webhooks failed` lists the dead letters, `webhooks retry <id>` and `--all` put them back', async () => {
    stack = await startStack();
    const s = stack;
    const r = await receiver();
    await r.down();
    await deliverer(s, hookConfig([r.url], { maxTries: 2, backoffBaseMs: 20, backoffMaxMs: 40 }));
    await s.producer.enqueueMany(posts('dl', 3));
    await allSent(s, 3);
    const events = await allEvents(s);
    // On a timeout the error gives the state it ended in: the events then and now, the URL's status.
    const state = async () => {
      const st = await statusOf(s, r.url);
      const now = (await allEvents(s)).map((e) => `${e.id} ${e.type}`);
      return `every event dead-lettered; events ${JSON.stringify(now)} (${events.length} at the start); status ${JSON.stringify({
        ...st,
        pendingEntries: st.pendingEntries.map(({ id, tries, dueAt, error }) => ({ id, tries, dueAt, error })),
        deadLetters: st.deadLetters.map((d) => d.id),
        recent: st.recent.slice(0, 12),
      })}; warnings ${JSON.stringify(s.logs.filter((l) => /"level":(40|50)/.test(l)).slice(-10))}`;
    };
    await waitUntil(async () => (await statusOf(s, r.url)).dead === events.length, state, 60_000);
    const env = { REDIS_URL, XACTLY_PREFIX: s.prefix, XACTLY_WEBHOOK_URLS: '', XACTLY_WEBHOOK_SECRET: '' };
    const urlId = webhookTarget(r.url).id;

    const listed = await cli(['webhooks', 'failed', '--json'], env);
    expect(listed.stderr).toBe('');
    const rows = listed.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(rows.map((x) => x.id).sort()).toEqual(events.map((e) => e.id).sort());
    expect(rows[0]).toMatchObject({ urlId, host: `127.0.0.1:${r.port}`, tries: 2, error: 'ECONNREFUSED', event: expect.objectContaining({ postId: 'p1' }) });
    const table = await cli(['webhooks', 'failed'], env);
    expect(table.stdout).toContain('ECONNREFUSED');
    expect(table.stdout.split('\n')[0]).toMatch(/^EVENT\s+URL\s+TYPE\s+KEY\s+TRIES\s+DEAD SINCE\s+LAST ERROR/);

    await r.up();
    const one = events[2]!.id;
    expect(await cli(['webhooks', 'retry', one], env)).toMatchObject({ code: 0, stdout: `URL ${urlId}: 1 event(s) put back for delivery\n` });
    await waitUntil(() => r.processed.has(one), 'the event put back delivered');
    expect(r.processed.size).toBe(1);
    expect((await statusOf(s, r.url)).dead).toBe(events.length - 1);
    expect(await cli(['webhooks', 'retry', one], env)).toMatchObject({ code: 1, stdout: `no dead letter ${one}\n` });

    expect(await cli(['webhooks', 'retry', '--all'], env)).toMatchObject({
      code: 0,
      stdout: `URL ${urlId}: ${events.length - 1} event(s) put back for delivery\n`,
    });
    await waitUntil(() => events.every((e) => r.processed.has(e.id)), 'every event delivered');
    expect(r.duplicates).toBe(0);
    expect(await statusOf(s, r.url)).toMatchObject({ pending: 0, dead: 0, counts: { delivered: events.length, deadLettered: events.length } });
    expect((await cli(['webhooks', 'failed'], env)).stdout).toBe('no dead letters\n');
    const status = await cli(['webhooks', 'status', '--json'], env);
    expect(JSON.parse(status.stdout)).toMatchObject({ urlId, delivered: events.length, dead: 0, pending: 0 });
    // The deliverer alone needs its URLs.
    expect(await cli(['webhooks'], env)).toMatchObject({ code: 1, stderr: expect.stringContaining('XACTLY_WEBHOOK_URLS is not set') });
  }, 150_000);
});
