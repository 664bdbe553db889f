import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type WebhookConfig } from '../src/config.js';
import type { OutcomeEvent } from '../src/ledger/ledger.js';
import { type BoardServer, createBoardServer } from '../src/ops/board.js';
import { webhookPages } from '../src/ops/board-webhooks.js';
import { type Deliverer, startDeliverer } from '../src/webhooks/deliverer.js';
import { deadLetters, webhookStatus, webhookTarget } from '../src/webhooks/store.js';
import { captureLogs, newRedis, post, REDIS_URL, SECRETS, type Stack, startStack, waitUntil } from './harness.js';
import { ARTIFACTS, launchChromium, skipBrowser } from './support/browser.js';
import { type Receiver, startReceiver } from './support/receiver.js';

/**
 * The board's Webhooks page, in headless Chromium: a receiver that always
 * answers 500 fills its URL's dead-letter list, a hanging one keeps its
 * events pending; the page lists both URLs with their counts and every dead
 * letter (as `xactly webhooks failed` does: the same functions); Retry puts
 * one back and Retry all the rest, and they arrive; a read-only board shows
 * no button and refuses the POST; a form without the page's token or from
 * another origin is refused; no page shows the signing secret, nor the
 * URL's userinfo or query.
 */

const USER = 'operator';
const PASSWORD = 'b0ard-PASSWORD-s3cr3t-webhooks';
const AUTH = { authorization: `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}` };
const SECRET = 'whsec-board-0123456789abcdef';
const HOOK_USER = 'hookuser';
const HOOK_PASS = 'HOOK-PASS-s3cret';
const QUERY_TOKEN = 'QUERY-TOKEN-s3cret';
const N = 3;

describe.skipIf(skipBrowser)('board: the Webhooks page', () => {
  let stack: Stack;
  let failing: Receiver;
  let hanging: Receiver;
  let failingUrl: string;
  let deliverer: Deliverer;
  let delivererRedis: ReturnType<typeof newRedis>;
  let writable: BoardServer;
  let readOnly: BoardServer;
  let w: string;
  let ro: string;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let events: OutcomeEvent[];
  const seen: { url: string; html: string }[] = [];

  const failingId = () => webhookTarget(failingUrl).id;
  const statusOf = async (url: string) => (await webhookStatus(stack.redis, stack.ledger.keys, { urlId: webhookTarget(url).id, limit: 0 }))[0]!;
  const tokenOf = async (base: string) => /name="csrf" value="([^"]+)"/.exec(await (await fetch(`${base}/ledger/webhooks`, { headers: AUTH })).text())?.[1];

  async function visit(p: Page, url: string, status = 200) {
    const res = await p.goto(url);
    expect(res?.status(), url).toBe(status);
    seen.push({ url, html: await p.content() });
  }
  const deadOnPage = () => page.locator('table.dead-letters tbody tr[data-event]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-event')!));

  beforeAll(async () => {
    await mkdir(ARTIFACTS, { recursive: true });
    stack = await startStack();
    const s = stack;
    failing = await startReceiver(SECRET);
    failing.behaviour = '500';
    hanging = await startReceiver(SECRET);
    hanging.behaviour = 'hang';
    // Basic auth in the URL's userinfo and a token in its query: neither may reach a page.
    failingUrl = `http://${HOOK_USER}:${HOOK_PASS}@127.0.0.1:${failing.port}/hook?token=${QUERY_TOKEN}`;
    const config: WebhookConfig = {
      urls: [failingUrl, hanging.url],
      secret: SECRET,
      events: undefined,
      accounts: undefined,
      maxTries: 2,
      backoffBaseMs: 20,
      backoffMaxMs: 40,
      timeoutMs: 60_000,
      concurrency: 4,
    };
    delivererRedis = newRedis();
    deliverer = await startDeliverer({ redis: delivererRedis, keys: s.ledger.keys, config, logger: s.logger, pollMs: 200, leaseMarginMs: 300 });

    await s.producer.enqueueMany(Array.from({ length: N }, (_, i) => post(`hook-${i}`, `webhook post ${i}`)));
    await waitUntil(async () => (await s.ledger.readEvents('0', 100)).filter((e) => e.type === 'sent').length === N, 'every post sent', 60_000);
    events = await s.ledger.readEvents('0', 100);
    expect(events).toHaveLength(2 * N);
    await waitUntil(async () => (await statusOf(failingUrl)).dead === events.length, 'every event dead-lettered for the failing URL', 30_000);
    await waitUntil(async () => (await statusOf(hanging.url)).pending === events.length, 'every event pending for the hanging URL', 30_000);

    const boardConfig = loadConfig({ REDIS_URL, XACTLY_PREFIX: s.prefix, BOARD_USER: USER, BOARD_PASSWORD: PASSWORD });
    const common = { redis: s.redis, config: boardConfig, pages: [webhookPages({ redis: s.redis, keys: s.ledger.keys })] };
    writable = createBoardServer({ ...common, logger: captureLogs().logger, readOnly: false });
    readOnly = createBoardServer({ ...common, logger: captureLogs().logger });
    ({ url: w } = await writable.listen(0));
    ({ url: ro } = await readOnly.listen(0));
    browser = await launchChromium();
    context = await browser.newContext({ httpCredentials: { username: USER, password: PASSWORD }, viewport: { width: 1400, height: 900 } });
    page = await context.newPage();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await writable?.close();
    await readOnly?.close();
    await deliverer?.stop(0);
    await delivererRedis?.quit();
    await failing?.close();
    await hanging?.close();
    await stack?.close();
  });

  it('lists each URL with its counts and every dead letter (as `webhooks failed` does), linked from the nav', async () => {
    await visit(page, `${w}/ledger`);
    await page.locator('nav a', { hasText: 'Webhooks' }).click();
    await page.waitForURL(`${w}/ledger/webhooks`);
    seen.push({ url: page.url(), html: await page.content() });
    expect(await page.locator('nav a[aria-current=page]').innerText()).toBe('Webhooks');
    await page.screenshot({ path: join(ARTIFACTS, 'webhooks-dead-letters.png'), fullPage: true });

    const urlRow = (url: string) => page.locator(`table.webhook-urls tr[data-url-id="${webhookTarget(url).id}"]`);
    expect(await urlRow(failingUrl).getAttribute('data-dead')).toBe(String(events.length));
    expect(await urlRow(failingUrl).getAttribute('data-pending')).toBe('0');
    expect(await urlRow(failingUrl).locator('code').first().innerText()).toBe(`http://127.0.0.1:${failing.port}/…`);
    expect(await urlRow(hanging.url).getAttribute('data-pending')).toBe(String(events.length));
    expect(await urlRow(hanging.url).getAttribute('data-dead')).toBe('0');
    expect(await page.locator(`table.pending-entries[data-url-id="${webhookTarget(hanging.url).id}"] tbody tr`).count()).toBe(events.length);

    // The same dead letters, in the same order, as the CLI's listing.
    const cli: string[] = [];
    for await (const d of deadLetters(stack.redis, stack.ledger.keys)) cli.push(d.id);
    expect(await deadOnPage()).toEqual(cli);
    expect(new Set(cli)).toEqual(new Set(events.map((e) => e.id)));
    for (const e of events) {
      const row = page.locator(`table.dead-letters tr[data-event="${e.id}"]`);
      expect(await row.getAttribute('data-type')).toBe(e.type);
      expect(await row.getAttribute('data-url-id')).toBe(failingId());
      const cells = await row.locator('td').allInnerTexts();
      expect(cells[1]).toBe(e.type);
      expect(cells[2]).toBe(`${e.slotId} / ${e.postId}`);
      expect(cells[5]).toBe('2');
      expect(cells[7]).toBe('HTTP 500');
      expect(await row.locator('a.key').getAttribute('href')).toBe(`/ledger/posts/${encodeURIComponent(e.slotId!)}/${encodeURIComponent(e.postId!)}`);
      expect(await row.getByRole('button', { name: 'Retry' }).count()).toBe(1);
    }
    expect(await page.locator('.dead-total').innerText()).toBe(String(events.length));
    expect(await page.locator(`table.deliveries[data-url-id="${failingId()}"] tr[data-outcome=dead]`).count()).toBe(events.length);

    // The URL's userinfo went out as Basic auth (fetch refuses a URL with credentials), signed.
    expect(failing.received.length).toBeGreaterThanOrEqual(2 * events.length);
    const basic = `Basic ${Buffer.from(`${HOOK_USER}:${HOOK_PASS}`).toString('base64')}`;
    expect(failing.received.every((r) => r.valid && r.authorization === basic)).toBe(true);
  });

  it('read-only: no Retry button, and a retry POST is refused (405); without the token or from another origin 403; nothing changes', async () => {
    const p = await context.newPage();
    try {
      await visit(p, `${ro}/ledger/webhooks`);
      expect(await p.locator('table.dead-letters tbody tr[data-event]').count()).toBe(events.length);
      expect(await p.locator('form[method=post]').count()).toBe(0);
      expect(await p.locator('nav .ro').innerText()).toBe('read-only');
    } finally {
      await p.close();
    }
    const token = (await tokenOf(w))!;
    expect(token).toBeTruthy();
    const postRetry = (base: string, body: string, headers: Record<string, string> = {}) =>
      fetch(`${base}/ledger/webhooks/retry`, { method: 'POST', headers: { ...AUTH, 'content-type': 'application/x-www-form-urlencoded', ...headers }, body });
    const readOnlyAnswer = await postRetry(ro, `csrf=${token}`);
    expect(readOnlyAnswer.status).toBe(405);
    expect(await readOnlyAnswer.text()).toContain('read-only');
    const noToken = await postRetry(w, '');
    expect(noToken.status).toBe(403);
    expect(await noToken.text()).toContain('did not come from this board');
    expect((await postRetry(w, `csrf=${token}`, { origin: 'http://evil.example' })).status).toBe(403);
    expect((await postRetry(w, `csrf=${token}`, { 'sec-fetch-site': 'cross-site' })).status).toBe(403);
    expect((await postRetry(w, `csrf=${token}&event=not-an-id`)).status).toBe(422);
    expect((await postRetry(w, `csrf=${token}&event=1-1`)).status).toBe(404);
    expect(await statusOf(failingUrl)).toMatchObject({ dead: events.length, pending: 0 });
  });

  it('Retry puts one dead letter back and it arrives; Retry all puts back the rest; each arrives once', async () => {
    failing.behaviour = 'ok';
    await visit(page, `${w}/ledger/webhooks`);
    const one = events[1]!;
    await page.locator(`table.dead-letters tr[data-event="${one.id}"]`).getByRole('button', { name: 'Retry' }).click();
    await page.waitForURL(`${w}/ledger/webhooks/retry`);
    seen.push({ url: page.url(), html: await page.content() });
    expect(await page.locator('.notice-ok').innerText()).toBe(`Put back for delivery: 1 event(s) of URL ${failingId()}.`);
    expect(await deadOnPage()).not.toContain(one.id);
    expect(await deadOnPage()).toHaveLength(events.length - 1);
    await waitUntil(() => failing.processed.has(one.id), 'the event put back delivered');
    expect(failing.processed.size).toBe(1);
    expect(await statusOf(failingUrl)).toMatchObject({ dead: events.length - 1, counts: { delivered: 1 } });

    await visit(page, `${w}/ledger/webhooks`);
    expect(await page.locator(`table.deliveries[data-url-id="${failingId()}"] tr[data-outcome=delivered][data-event="${one.id}"]`).count()).toBe(1);
    await page.getByRole('button', { name: 'Retry all', exact: true }).click();
    await page.waitForURL(`${w}/ledger/webhooks/retry`);
    expect(await page.locator('.notice-ok').innerText()).toBe(`Put back for delivery: ${events.length - 1} event(s).`);
    await waitUntil(() => events.every((e) => failing.processed.has(e.id)), 'every event delivered');
    expect(failing.duplicates).toBe(0);
    expect(await statusOf(failingUrl)).toMatchObject({ dead: 0, pending: 0, counts: { delivered: events.length, deadLettered: events.length } });
    await visit(page, `${w}/ledger/webhooks`);
    expect(await page.locator('.dead-total').innerText()).toBe('0');
    expect(await page.locator('form[action="/ledger/webhooks/retry"]').count()).toBe(0);
    await page.screenshot({ path: join(ARTIFACTS, 'webhooks-retried.png'), fullPage: true });
    // The hanging URL is untouched: its events are still pending.
    expect(await statusOf(hanging.url)).toMatchObject({ pending: events.length, dead: 0 });
  });

  it('no page shows the signing secret, the URL’s userinfo or query, or the board’s credentials', async () => {
    for (const base of [w, ro]) {
      const res = await fetch(`${base}/ledger/webhooks`, { headers: AUTH });
      expect(res.status).toBe(200);
      seen.push({ url: `${base}/ledger/webhooks`, html: await res.text() });
    }
    const all = seen.map((s) => s.html).join('\n');
    // Not vacuous: the pages named the URLs and the events.
    expect(all).toContain(failingId());
    expect(all).toContain(events[0]!.id);
    expect(all).toContain('hook-0');
    const secrets = [
      SECRET,
      HOOK_PASS,
      encodeURIComponent(HOOK_PASS),
      `${HOOK_USER}:`,
      QUERY_TOKEN,
      'token=',
      Buffer.from(`${HOOK_USER}:${HOOK_PASS}`).toString('base64'),
      PASSWORD,
      AUTH.authorization.slice('Basic '.length),
      ...Object.values(SECRETS),
    ];
    for (const { url, html } of seen) for (const secret of secrets) expect(html.includes(secret), `${secret} in ${url}`).toBe(false);
    expect(seen.length).toBeGreaterThanOrEqual(7);
  });
});
