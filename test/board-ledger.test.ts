import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { keyId } from '../src/domain/key.js';
import type { PostRecord } from '../src/domain/state.js';
import { type BoardServer, createBoardServer } from '../src/ops/board.js';
import { fileCredentialStore } from '../src/x/credentials.js';
import { ACCOUNTS, captureLogs, post, REDIS_URL, SECRETS, type Stack, startStack, testClock, waitUntil } from './harness.js';
import { ARTIFACTS, launchChromium, skipBrowser } from './support/browser.js';

/**
 * The ledger's pages in the board, in headless Chromium, against a stack
 * with a post in every state: what each page shows is what the ledger
 * holds; filters and paging reach every key once; cancel and resume work
 * when the board is writable and are neither shown nor accepted when it is
 * read-only; a write from another origin, without the page's token or
 * from another site is refused; no credential appears in any page.
 */

const USER = 'operator';
const PASSWORD = 'b0ard-PASSWORD-s3cr3t-ledger';
const SETTLE = 5_000;
const ACC0_TOKEN = 'ACC-0-TOKEN';
const AUTH = { authorization: `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}` };

const SENT = Array.from({ length: 12 }, (_, i) => `sent-${i + 1}`);
const GLOBEX_SENT = ['globex-1', 'globex-2'];
const XSS_SLOT = `x<script>alert(1)</script>/"&'`;
const XSS_TEXT = `<img src=x onerror=alert(2)> & "quotes" <b>not bold</b>`;
const key = (slotId: string, postId = 'p1') => keyId({ slotId, postId });

describe.skipIf(skipBrowser)('board: the ledger pages', () => {
  let clock: ReturnType<typeof testClock>;
  let stack: Stack;
  let writable: BoardServer;
  let readOnly: BoardServer;
  let w: string;
  let ro: string;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let dir: string;
  let accountsFileText: string;
  let candidates: Record<string, string>;
  /** Every page body the tests saw, for the credential check. */
  const seen: { url: string; html: string }[] = [];
  const dialogs: string[] = [];

  const records = async () => {
    const out: PostRecord[] = [];
    for await (const r of stack.ledger.list()) out.push(r);
    return out;
  };
  const recordOf = async (slotId: string, postId = 'p1') => (await stack.ledger.get(key(slotId, postId)))!;

  async function visit(p: Page, url: string, status = 200) {
    const res = await p.goto(url);
    expect(res?.status(), url).toBe(status);
    seen.push({ url, html: await p.content() });
    return res;
  }
  async function snap(p: Page, name: string) {
    seen.push({ url: p.url(), html: await p.content() });
    await p.screenshot({ path: join(ARTIFACTS, `ledger-${name}.png`), fullPage: true });
  }

  beforeAll(async () => {
    await mkdir(ARTIFACTS, { recursive: true });
    clock = testClock();
    stack = await startStack({ clock: clock.now, timeoutMs: 300, settleWindowMs: SETTLE, extraAccounts: 1 });
    const s = stack;

    // The accounts file the board reads its account ids from (and nothing else).
    dir = await mkdtemp(join(tmpdir(), 'xactly-board-ledger-'));
    const file = join(dir, 'accounts.json');
    await writeFile(file, JSON.stringify({ accounts: [...ACCOUNTS, { id: 'acc-0', userId: '5000', auth: { type: 'oauth2', accessToken: ACC0_TOKEN } }] }));
    accountsFileText = await readFile(file, 'utf8');
    const store = await fileCredentialStore(file);
    const config = loadConfig({ REDIS_URL, XACTLY_PREFIX: s.prefix, BOARD_USER: USER, BOARD_PASSWORD: PASSWORD });
    const common = { redis: s.redis, config, clock: clock.now, accountIds: () => store.ids() };
    writable = createBoardServer({ ...common, logger: captureLogs().logger, readOnly: false });
    readOnly = createBoardServer({ ...common, logger: captureLogs().logger });
    ({ url: w } = await writable.listen(0));
    ({ url: ro } = await readOnly.listen(0));

    const later = new Date(clock.now() + 3_600_000).toISOString();
    s.fake.injectNext('commit-then-reset', { text: 'launch at noon (doubt)' });
    s.fake.injectNext('commit-then-reset', { text: 'launch at noon (unresolved)' });
    const results = await s.producer.enqueueMany([
      ...SENT.map((slot) => post(slot, `hello from ${slot}`)),
      ...GLOBEX_SENT.map((slot) => post(slot, `globex says ${slot}`, { accountId: 'globex' })),
      post('acc0-1', 'from acc-0', { accountId: 'acc-0' }),
      post(XSS_SLOT, XSS_TEXT),
      post('failed-1', 'a reply to a post that is gone', { kind: 'reply', inReplyToTweetId: '999999999999' }),
      post('doubt-1', 'launch at noon (doubt)', { deadline: later }),
      post('unresolved-1', 'launch at noon (unresolved)', { deadline: new Date(clock.now() + 30_000).toISOString() }),
      post('cancelled-1', 'never mind', { scheduledAt: later }),
      post('queued-1', 'cancel me on the board', { scheduledAt: later }),
      post('queued-2', 'nobody else may cancel me', { scheduledAt: later }),
      { slotId: 'thread-1', postId: 'p1', accountId: 'acme', kind: 'thread', parts: [1, 2, 3].map((i) => ({ text: `thread part ${i} of 3` })) },
    ]);
    expect(results.every((r) => r.status === 'queued')).toBe(true);
    expect((await s.producer.cancel({ slotId: 'cancelled-1', postId: 'p1' })).status).toBe('cancelled');

    const want: Record<string, string> = {
      ...Object.fromEntries([...SENT, ...GLOBEX_SENT, 'acc0-1', XSS_SLOT, 'thread-1'].map((slot) => [slot, 'sent'])),
      'failed-1': 'failed',
      'doubt-1': 'ambiguous',
      'unresolved-1': 'ambiguous',
    };
    await waitUntil(async () => {
      for (const [slot, state] of Object.entries(want)) if ((await s.stateOf(slot, 'p1')) !== state) return false;
      return true;
    }, 'every post sent, failed or ambiguous');

    // The two in doubt went out, then were edited on X: candidates that cannot be proven to be them.
    candidates = {};
    for (const slot of ['doubt-1', 'unresolved-1']) {
      const live = s.fake.created().find((c) => c.text === `launch at noon (${slot.split('-')[0]})`)!;
      candidates[slot] = s.fake.editPost(live.id, `launch at 1pm (${slot}, moved)`).id;
    }
    for (let look = 0; look < 2; look++) {
      clock.advance(SETTLE + 1);
      expect((await s.reconcile()).outcomes).toMatchObject({ deferred: 2, released: 0, sent: 0 });
    }
    clock.advance(30_000);
    expect((await s.reconcile()).outcomes).toMatchObject({ unresolved: 1, deferred: 1, released: 0 });
    expect(await recordOf('unresolved-1')).toMatchObject({ state: 'failed', reason: 'unresolved' });

    await s.ledger.pauseAccount('globex', 'http-401: credentials revoked or expired (re-authorize the account)');
    await s.ledger.blockAccount('acc-0', clock.now() + 15 * 60_000, clock.now());

    browser = await launchChromium();
    context = await browser.newContext({ httpCredentials: { username: USER, password: PASSWORD }, viewport: { width: 1400, height: 900 } });
    page = await context.newPage();
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await writable?.close();
    await readOnly?.close();
    await stack?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('Posts: every key shows the state the ledger holds, linked from Bull Board', async () => {
    await visit(page, `${w}/board`);
    // Bull Board's header menu (the last action) links to the ledger's pages.
    await page.locator('header ul[class^=actions] > li').last().locator('button').click();
    expect(await page.getByRole('menuitem').allInnerTexts()).toEqual(['Ledger: Posts', 'Ledger: In doubt', 'Ledger: Accounts']);
    await page.getByRole('menuitem', { name: 'Ledger: Posts' }).click();
    await page.waitForURL(`${w}/ledger`);
    expect(await page.locator('nav a[aria-current=page]').innerText()).toBe('Posts');

    await visit(page, `${w}/ledger?limit=200`);
    await snap(page, 'posts');
    const all = await records();
    expect(new Set(all.map((r) => r.state))).toEqual(new Set(['sent', 'failed', 'ambiguous', 'cancelled', 'queued']));
    expect(await page.locator('table.posts tbody tr[data-key]').count()).toBe(all.length);
    for (const r of all) {
      const row = page.locator(`tr[data-key="${r.keyId}"]`);
      expect(await row.getAttribute('data-state'), r.slotId).toBe(r.state);
      expect(await row.locator('.state').innerText()).toBe(r.state);
      if (r.tweetId) expect(await row.locator('a.x-link').getAttribute('href')).toBe(`https://x.com/i/status/${r.tweetId}`);
    }
    // The reason a post failed is on the page, with X's words.
    expect(await page.locator(`tr[data-key="${key('failed-1')}"]`).innerText()).toContain('rejected');
  });

  it('Posts: filters by state, account and key, and pages through every key once, in order', async () => {
    const all = await records();
    const keysOnPage = () => page.locator('table.posts tbody tr[data-key]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-key')!));

    await visit(page, `${w}/ledger`);
    await page.selectOption('select[name=state]', 'sent');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.waitForURL(/state=sent/);
    expect(await keysOnPage()).toEqual(all.filter((r) => r.state === 'sent').map((r) => r.keyId));

    await page.selectOption('select[name=state]', '');
    await page.selectOption('select[name=account]', 'globex');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.waitForURL(/account=globex/);
    expect(await keysOnPage()).toEqual(all.filter((r) => r.accountId === 'globex').map((r) => r.keyId));
    expect(await keysOnPage()).toHaveLength(GLOBEX_SENT.length);

    await page.selectOption('select[name=account]', '');
    await page.fill('input[name=q]', 'SENT-1');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.waitForURL(/q=SENT-1/);
    const hits = all.filter((r) => r.slotId.toLowerCase().includes('sent-1')).map((r) => r.keyId);
    expect(hits).toEqual([key('sent-1'), key('sent-10'), key('sent-11'), key('sent-12')]);
    expect(await keysOnPage()).toEqual(hits);
    await snap(page, 'posts-search');

    // Paging: 5 a page over the sent keys, following "Next page" to the end.
    await visit(page, `${w}/ledger?state=sent&limit=5`);
    const paged: string[] = [];
    for (let pages = 1; ; pages++) {
      const onPage = await keysOnPage();
      expect(onPage.length).toBeLessThanOrEqual(5);
      paged.push(...onPage);
      if (pages > 1) expect(await page.locator('a[rel=first]').count()).toBe(1);
      const next = page.locator('a[rel=next]');
      if ((await next.count()) === 0) break;
      expect(pages).toBeLessThan(10);
      await next.click();
      await page.waitForLoadState();
      seen.push({ url: page.url(), html: await page.content() });
    }
    expect(paged).toEqual(all.filter((r) => r.state === 'sent').map((r) => r.keyId));
  });

  it('A post: its timeline with the evidence, the thread parts with their ids, the live link on X', async () => {
    const thread = await recordOf('thread-1');
    await visit(page, `${w}/ledger/posts/thread-1/p1`);
    await snap(page, 'post-thread');
    expect(await page.locator('.card[data-key]').getAttribute('data-state')).toBe('sent');
    const parts = page.locator('table.parts tbody tr');
    expect(await parts.count()).toBe(3);
    const ids = new Set(stack.fake.created().map((c) => c.id));
    for (let i = 0; i < 3; i++) {
      const id = thread.parts![i]!.tweetId!;
      expect(ids.has(id)).toBe(true);
      expect(await parts.nth(i).getAttribute('data-state')).toBe('sent');
      expect(await parts.nth(i).locator('a.x-link').getAttribute('href')).toBe(`https://x.com/i/status/${id}`);
      expect(await parts.nth(i).innerText()).toContain(`thread part ${i + 1} of 3`);
    }
    const events = await page.locator('ol.timeline li').evaluateAll((lis) => lis.map((li) => li.getAttribute('data-event')));
    expect(events).toEqual((await stack.ledger.auditTrail(thread.keyId)).map((e) => e.event));

    const sent = await recordOf('sent-3');
    await visit(page, `${w}/ledger/posts/sent-3/p1`);
    expect(await page.locator('.card[data-key] a.x-link').getAttribute('href')).toBe(`https://x.com/i/status/${sent.tweetId}`);
    expect(stack.fake.created().find((c) => c.id === sent.tweetId)?.text).toBe('hello from sent-3');
    expect(await page.locator('form[action$="/cancel"]').count()).toBe(0);

    // Unresolved: the reconciliation that failed it names the candidate, linked on X; no button marks it anything.
    await visit(page, `${w}/ledger/posts/unresolved-1/p1`);
    await snap(page, 'post-unresolved');
    expect(await page.locator('.card[data-key]').getAttribute('data-state')).toBe('failed');
    const reconciled = page.locator('ol.timeline li[data-event=reconciled]');
    expect(await reconciled.locator('[data-evidence=uncertain] a.x-link').getAttribute('href')).toBe(`https://x.com/i/status/${candidates['unresolved-1']}`);
    expect(await page.locator('form[method=post]').count()).toBe(0);

    // Still in doubt: the last pass's evidence, and the cancel it can still take.
    await visit(page, `${w}/ledger/posts/doubt-1/p1`);
    expect(await page.locator('.card[data-key]').getAttribute('data-state')).toBe('ambiguous');
    expect(await page.getByText('Last reconciliation').count()).toBe(1);
    expect(await page.locator('[data-evidence=uncertain] a.x-link').first().getAttribute('href')).toBe(`https://x.com/i/status/${candidates['doubt-1']}`);
    expect(await page.locator('form[action$="/cancel"] button').count()).toBe(1);

    // User data is text, never markup: the slot id and the post text show as typed, and nothing runs.
    await visit(page, `${w}/ledger/posts/${encodeURIComponent(XSS_SLOT)}/p1`);
    await snap(page, 'post-escaped');
    expect(await page.locator('h1 code').first().innerText()).toBe(XSS_SLOT);
    expect(await page.locator('.post-text').innerText()).toBe(XSS_TEXT);
    expect(await page.locator('main script, main img, main b').count()).toBe(0);
    expect(dialogs).toEqual([]);

    expect((await page.goto(`${w}/ledger/posts/no-such-slot/p1`))?.status()).toBe(404);
  });

  it('In doubt: the ambiguous and the unresolved post with their candidates; cancel starts no new attempt', async () => {
    await visit(page, `${w}/ledger/in-doubt`);
    await snap(page, 'in-doubt');
    const doubt = page.locator(`table.doubtful tr[data-key="${key('doubt-1')}"]`);
    expect(await doubt.getAttribute('data-state')).toBe('ambiguous');
    expect(await doubt.locator('[data-evidence=uncertain] a.x-link').getAttribute('href')).toBe(`https://x.com/i/status/${candidates['doubt-1']}`);
    expect(await page.locator('table.doubtful tbody tr[data-key]').count()).toBe(1);
    const unresolved = page.locator(`table.unresolved tr[data-key="${key('unresolved-1')}"]`);
    expect(await unresolved.getAttribute('data-reason')).toBe('unresolved');
    expect(await unresolved.locator('[data-evidence=uncertain] a.x-link').getAttribute('href')).toBe(`https://x.com/i/status/${candidates['unresolved-1']}`);
    expect(await page.locator('table.unresolved tbody tr[data-key]').count()).toBe(1);

    await doubt.getByRole('button', { name: /Cancel/ }).click();
    await page.waitForURL(`${w}/ledger/posts/doubt-1/p1/cancel`);
    expect(await page.locator('.notice').innerText()).toContain('Cancelling');
    await snap(page, 'cancelling');
    expect(await recordOf('doubt-1')).toMatchObject({ state: 'cancelling', attempt: 1 });
    expect(await page.locator('.card[data-key]').getAttribute('data-state')).toBe('cancelling');

    await visit(page, `${w}/ledger/in-doubt`);
    expect(await page.locator(`table.doubtful tr[data-key="${key('doubt-1')}"]`).getAttribute('data-state')).toBe('cancelling');
    expect(await page.locator('table.doubtful form').count()).toBe(0);
  });

  it('Cancel a queued post from its page: cancelled in the ledger, its job gone; a second click is refused', async () => {
    const before = await recordOf('queued-1');
    expect(await stack.producer.queue.getJob(before.jobId)).toBeDefined();
    await visit(page, `${w}/ledger/posts/queued-1/p1`);
    await page.getByRole('button', { name: 'Cancel' }).click();
    await page.waitForURL(/\/cancel$/);
    expect(await page.locator('.notice-ok').innerText()).toContain('Cancelled');
    expect(await page.locator('.card[data-key]').getAttribute('data-state')).toBe('cancelled');
    expect(await page.locator('form[action$="/cancel"]').count()).toBe(0);
    expect(await recordOf('queued-1')).toMatchObject({ state: 'cancelled' });
    expect(await stack.producer.queue.getJob(before.jobId)).toBeUndefined();
    // A reload resubmits the form: the ledger answers that it is final.
    const again = await page.reload();
    expect(again?.status()).toBe(409);
    expect(await page.locator('.notice-refused').innerText()).toContain('already final (cancelled)');
  });

  it('Accounts: ok, paused with its reason and a Resume button, rate-limited until T; the app paused and resumed', async () => {
    await stack.ledger.pauseApp('client-forbidden: the app is not allowed on this endpoint');
    await visit(page, `${w}/ledger/accounts`);
    await snap(page, 'accounts');
    const row = (id: string) => page.locator(`table.accounts tr[data-account="${id}"]`);
    expect(await row('acme').getAttribute('data-state')).toBe('ok');
    expect(await row('globex').getAttribute('data-state')).toBe('paused');
    expect(await row('globex').innerText()).toContain('http-401: credentials revoked or expired');
    const until = (await stack.ledger.accountStatus(['acc-0'], clock.now())).get('acc-0')!.blockedUntil!;
    expect(await row('acc-0').getAttribute('data-state')).toBe('rate-limited');
    expect(await row('acc-0').innerText()).toContain(new Date(until).toISOString());
    expect(await row('acme').locator('button').count()).toBe(0);
    expect(await row('acc-0').locator('button').count()).toBe(0);
    expect(await page.locator('.card.app').getAttribute('data-state')).toBe('paused');

    await page.getByRole('button', { name: 'Resume the app' }).click();
    await page.waitForURL(`${w}/ledger/app/resume`);
    expect(await page.locator('.notice-ok').innerText()).toContain('The app resumed');
    expect(await stack.ledger.appStatus(clock.now())).toEqual({});
    expect(await page.locator('.card.app').getAttribute('data-state')).toBe('ok');

    await row('globex').getByRole('button', { name: 'Resume' }).click();
    await page.waitForURL(`${w}/ledger/accounts/globex/resume`);
    expect(await page.locator('.notice-ok').innerText()).toContain('Account globex resumed');
    expect(await row('globex').getAttribute('data-state')).toBe('ok');
    expect((await stack.ledger.accountStatus(['globex'])).get('globex')).toBeUndefined();
    await snap(page, 'accounts-resumed');
  });

  it('read-only: no button on any page, and a write is refused (405) with nothing changed', async () => {
    await stack.ledger.pauseAccount('globex', 'http-401: paused again for the read-only check');
    const roContext = await browser.newContext({ httpCredentials: { username: USER, password: PASSWORD } });
    try {
      const p = await roContext.newPage();
      for (const path of ['/ledger', '/ledger/in-doubt', '/ledger/accounts', '/ledger/posts/queued-2/p1', '/ledger/posts/doubt-1/p1']) {
        await visit(p, ro + path);
        expect(await p.locator('form[method=post]').count(), path).toBe(0);
        expect(await p.locator('nav .ro').innerText()).toBe('read-only');
      }
      await snap(p, 'accounts-read-only');
      // The form a writable board would have shown, posted anyway (same origin, with the read-only board's own page as referrer).
      const token = /name="csrf" value="([^"]+)"/.exec(await (await fetch(`${w}/ledger/posts/queued-2/p1`, { headers: AUTH })).text())![1]!;
      for (const path of ['/ledger/posts/queued-2/p1/cancel', '/ledger/accounts/globex/resume', '/ledger/app/resume']) {
        const res = await fetch(ro + path, {
          method: 'POST',
          headers: { ...AUTH, 'content-type': 'application/x-www-form-urlencoded' },
          body: `csrf=${token}`,
        });
        expect(res.status, path).toBe(405);
        expect(await res.text()).toContain('read-only');
      }
      expect(await recordOf('queued-2')).toMatchObject({ state: 'queued' });
      expect((await stack.ledger.accountStatus(['globex'])).get('globex')?.paused).toContain('paused again');
    } finally {
      await roContext.close();
    }
  });

  it('a write from another origin, without the page token, or with a foreign Origin is refused', async () => {
    // A page on another site with a form aimed at the board (the operator's browser has the credentials).
    const evil: Server = createServer((_req, res) => {
      res.setHeader('content-type', 'text/html');
      res.end(
        `<form method="post" action="${w}/ledger/posts/queued-2/p1/cancel"><input type="hidden" name="csrf" value="guess"><button type="submit">win a prize</button></form>`,
      );
    });
    await new Promise<void>((resolve) => evil.listen(0, '127.0.0.1', resolve));
    try {
      const evilUrl = `http://localhost:${(evil.address() as AddressInfo).port}/`;
      const p = await context.newPage();
      await p.goto(evilUrl);
      const [response] = await Promise.all([p.waitForResponse((r) => r.url().endsWith('/cancel')), p.getByRole('button', { name: 'win a prize' }).click()]);
      expect(response.status()).toBe(403);
      expect(await response.request().headerValue('sec-fetch-site')).toBe('cross-site');
      await p.close();
      expect(await recordOf('queued-2')).toMatchObject({ state: 'queued' });

      // Each layer on its own, from a client that sends no Sec-Fetch-Site.
      const postForm = (body: string, headers: Record<string, string> = {}) =>
        fetch(`${w}/ledger/posts/queued-2/p1/cancel`, {
          method: 'POST',
          headers: { ...AUTH, 'content-type': 'application/x-www-form-urlencoded', ...headers },
          body,
        });
      const noToken = await postForm('');
      expect(noToken.status).toBe(403);
      expect(await noToken.text()).toContain('did not come from this board');
      expect((await postForm('csrf=guess')).status).toBe(403);
      const token = /name="csrf" value="([^"]+)"/.exec(await (await fetch(`${w}/ledger/posts/queued-2/p1`, { headers: AUTH })).text())![1]!;
      const badOrigin = await postForm(`csrf=${token}`, { origin: 'http://evil.example' });
      expect(badOrigin.status).toBe(403);
      expect(await badOrigin.text()).toContain('from another site');
      expect(await recordOf('queued-2')).toMatchObject({ state: 'queued' });

      // The same request from the board's own origin goes through.
      const ok = await postForm(`csrf=${token}`, { origin: new URL(w).origin });
      expect(ok.status).toBe(200);
      expect(await ok.text()).toContain('Cancelled: this post will never go out.');
      expect(await recordOf('queued-2')).toMatchObject({ state: 'cancelled' });
    } finally {
      await new Promise((resolve) => evil.close(resolve));
    }
  });

  it('no credential appears in any page: account tokens, app secrets, the accounts file, the board password', async () => {
    for (const base of [w, ro]) {
      for (const path of [
        '/ledger',
        '/ledger?limit=200',
        '/ledger/in-doubt',
        '/ledger/accounts',
        '/ledger/posts/thread-1/p1',
        '/ledger/posts/unresolved-1/p1',
      ]) {
        const res = await fetch(base + path, { headers: AUTH });
        expect(res.status, path).toBe(200);
        seen.push({ url: base + path, html: await res.text() });
      }
    }
    const all = seen.map((s) => s.html).join('\n');
    // Not vacuous: the pages did show the keys, the accounts and the X ids.
    expect(all).toContain(key('sent-1'));
    expect(all).toContain('acc-0');
    expect(all).toContain((await recordOf('sent-1')).tweetId);
    const secrets = [...Object.values(SECRETS), ACC0_TOKEN, PASSWORD, AUTH.authorization.slice('Basic '.length)];
    for (const { url, html } of seen) {
      for (const secret of secrets) expect(html.includes(secret), `${secret} in ${url}`).toBe(false);
      expect(html.includes(accountsFileText), url).toBe(false);
    }
    expect(seen.length).toBeGreaterThan(20);
  });
});

describe('board pages: the html template', () => {
  it('escapes every interpolated value once, keeps Html fragments, drops null/undefined/false', async () => {
    const { html, raw, verbatim, queryOf, pathOf } = await import('../src/ops/html.js');
    const evil = `<script>alert("x")</script>&'\``;
    expect(html`<p title="${evil}">${evil}</p>`.value).toBe(
      '<p title="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;&#96;">&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;&#96;</p>',
    );
    const inner = html`<b>${'a&b'}</b>`;
    expect(html`<i>${inner}${[inner, 'c<d']}${undefined}${null}${false}${0}</i>`.value).toBe('<i><b>a&amp;b</b><b>a&amp;b</b>c&lt;d0</i>');
    expect(html`${raw('<br>')}`.value).toBe('<br>');
    expect(verbatim('line 1\n<line 2>').value).toBe('<div class="verbatim">line 1\n&lt;line 2&gt;</div>');
    expect(pathOf('/ledger/posts', 'a/b?c#d', 'p 1')).toBe('/ledger/posts/a%2Fb%3Fc%23d/p%201');
    expect(queryOf({ state: 'sent', q: '', after: undefined, limit: 5 })).toBe('?state=sent&limit=5');
    expect(queryOf({})).toBe('');
  });
});
