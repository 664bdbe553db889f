import express, { type Request, type Response } from 'express';
import type { RedisClient } from '../ledger/ledger.js';
import type { LedgerKeys } from '../ledger/keys.js';
import { deadLetters, retryDeadLetters, type WebhookEntryView, type WebhookStatus, webhookStatus } from '../webhooks/store.js';
import type { BoardPages, Notice, PageKit } from './board-kit.js';
import { LEDGER_PATHS, type Writes } from './board-pages.js';
import { html, type Html } from './html.js';

/**
 * The board's Webhooks page: each URL a deliverer has served (by its id and
 * safe label, never the URL: its userinfo or query may hold a token), its
 * counts and pending entries, its latest deliveries, and the dead letters
 * with a Retry button each and a Retry all. The reads and the retry are the
 * ones `xactly webhooks status|failed|retry` use (src/webhooks/store.ts):
 * the page and the CLI cannot disagree. Only Redis is read, so the board
 * needs neither the URLs nor the signing secret.
 */
export interface WebhookPagesDeps {
  readonly redis: RedisClient;
  readonly keys: LedgerKeys;
}

export const WEBHOOK_PATHS = Object.freeze({
  page: '/ledger/webhooks',
  retry: '/ledger/webhooks/retry',
});

/** Dead letters listed on the page (newest first per URL); the count above says how many there are in all. */
const DEAD_SHOWN = 200;
/** Latest outcomes shown per URL. */
const RECENT_SHOWN = 20;
/** Soonest pending entries shown per URL. */
const PENDING_SHOWN = 10;

const STREAM_ID = /^\d{1,20}-\d{1,20}$/;
const URL_ID = /^[0-9a-f]{12}$/;

type DeadLetter = WebhookEntryView & { urlId: string; host: string };

export interface WebhooksPageData {
  readonly urls: readonly WebhookStatus[];
  readonly dead: readonly DeadLetter[];
  readonly writes: Writes;
}

function keyCell(e: WebhookEntryView): Html {
  if (e.slotId === undefined || e.postId === undefined) return html`<span class="muted">${e.accountId ?? 'the app'}</span>`;
  return html`<a class="key" href="${LEDGER_PATHS.post(e.slotId, e.postId)}"><code>${e.slotId}</code> / <code>${e.postId}</code></a>`;
}

function retryForm(w: Writes, fields: { url?: string; event?: string }, label: string, className = 'primary'): Html {
  if (!w.enabled) return html``;
  return html`<form class="inline" method="post" action="${WEBHOOK_PATHS.retry}">
    ${w.csrf}${fields.url && html`<input type="hidden" name="url" value="${fields.url}" />`}${
      fields.event && html`<input type="hidden" name="event" value="${fields.event}" />`
    }<button class="${className}" type="submit">${label}</button>
  </form>`;
}

function urlsTable(urls: readonly WebhookStatus[], w: Writes): Html {
  return html`<table class="webhook-urls">
    <thead>
      <tr>
        <th>URL</th>
        <th>Id</th>
        <th>Delivered</th>
        <th>Retried tries</th>
        <th>Dead-lettered</th>
        <th>Skipped</th>
        <th>Pending</th>
        <th>Dead now</th>
        <th></th>
      </tr>
    </thead>
    <tbody>
      ${urls.map(
        (u) =>
          html`<tr data-url-id="${u.urlId}" data-pending="${u.pending}" data-dead="${u.dead}">
            <td><code>${u.label}</code></td>
            <td><code>${u.urlId}</code></td>
            <td>${u.counts.delivered}</td>
            <td>${u.counts.retried}</td>
            <td>${u.counts.deadLettered}</td>
            <td>${u.counts.skipped}</td>
            <td class="pending">${u.pending}</td>
            <td class="dead">${u.dead}</td>
            <td>${u.dead > 0 && retryForm(w, { url: u.urlId }, `Retry all of ${u.urlId}`, '')}</td>
          </tr>`,
      )}
    </tbody>
  </table>`;
}

function deadTable(dead: readonly DeadLetter[], labels: ReadonlyMap<string, string>, w: Writes): Html {
  return html`<table class="dead-letters">
    <thead>
      <tr>
        <th>Event</th>
        <th>Type</th>
        <th>Key</th>
        <th>Account</th>
        <th>URL</th>
        <th>Tries</th>
        <th>Dead since</th>
        <th>Last error</th>
        <th></th>
      </tr>
    </thead>
    <tbody>
      ${dead.map(
        (d) =>
          html`<tr data-event="${d.id}" data-url-id="${d.urlId}" data-type="${d.type}">
            <td><code>${d.id}</code></td>
            <td>${d.type}</td>
            <td>${keyCell(d)}</td>
            <td>${d.accountId}</td>
            <td><code>${labels.get(d.urlId) ?? d.host}</code></td>
            <td>${d.tries}</td>
            <td class="when">${d.deadAt}</td>
            <td class="text error">${d.error}</td>
            <td>${retryForm(w, { url: d.urlId, event: d.id }, 'Retry')}</td>
          </tr>`,
      )}
    </tbody>
  </table>`;
}

function pendingTable(u: WebhookStatus): Html {
  const shown = u.pendingEntries.slice(0, PENDING_SHOWN);
  return html`<table class="pending-entries" data-url-id="${u.urlId}">
      <thead>
        <tr>
          <th>Event</th>
          <th>Type</th>
          <th>Key</th>
          <th>Tries so far</th>
          <th>Next try</th>
          <th>Last error</th>
        </tr>
      </thead>
      <tbody>
        ${shown.map(
          (e) =>
            html`<tr data-event="${e.id}">
              <td><code>${e.id}</code></td>
              <td>${e.type}</td>
              <td>${keyCell(e)}</td>
              <td>${e.tries}</td>
              <td class="when">${e.dueAt}</td>
              <td class="text">${e.error}</td>
            </tr>`,
        )}
      </tbody>
    </table>
    ${u.pending > shown.length && html`<p class="muted">The soonest ${shown.length} of ${u.pending} pending.</p>`}`;
}

function recentTable(u: WebhookStatus): Html {
  return html`<table class="deliveries" data-url-id="${u.urlId}">
    <thead>
      <tr>
        <th>When</th>
        <th>Event</th>
        <th>Type</th>
        <th>Try</th>
        <th>Outcome</th>
        <th>HTTP</th>
        <th>ms</th>
        <th>Error</th>
      </tr>
    </thead>
    <tbody>
      ${u.recent.slice(0, RECENT_SHOWN).map(
        (o) =>
          html`<tr data-event="${o.id}" data-outcome="${o.outcome}">
            <td class="when">${o.at}</td>
            <td><code>${o.id}</code></td>
            <td>${o.type}</td>
            <td>${o.try}</td>
            <td><span class="state state-${o.outcome === 'delivered' ? 'sent' : o.outcome === 'dead' ? 'failed' : 'ambiguous'}">${o.outcome}</span></td>
            <td>${o.status || 'none'}</td>
            <td>${o.ms}</td>
            <td class="text">${o.error}</td>
          </tr>`,
      )}
    </tbody>
  </table>`;
}

export function webhooksPage(d: WebhooksPageData): Html {
  if (d.urls.length === 0) {
    return html`<h1>Webhooks</h1>
      <div class="card">
        No webhook URL served yet. A deliverer (<code>xactly worker</code> or <code>xactly webhooks</code>, with <code>XACTLY_WEBHOOK_URLS</code> set) lists its
        URLs here once it starts.
      </div>`;
  }
  const totalDead = d.urls.reduce((n, u) => n + u.dead, 0);
  const labels = new Map(d.urls.map((u) => [u.urlId, u.label]));
  return html`<h1>Webhooks</h1>
    ${urlsTable(d.urls, d.writes)}
    <h2>Dead letters (<span class="dead-total">${totalDead}</span>)</h2>
    ${
      totalDead === 0
        ? html`<p class="muted">None: every event was delivered or is still being tried.</p>`
        : html`<p>
              Events given up on after their last try. Retry puts one back for delivery with a fresh count of tries (a running deliverer takes it within a
              second). ${retryForm(d.writes, {}, 'Retry all', 'primary retry-all')}
            </p>
            ${deadTable(d.dead, labels, d.writes)}
            ${totalDead > d.dead.length && html`<p class="muted">The newest ${d.dead.length} of ${totalDead} (see <code>xactly webhooks failed</code>).</p>`}`
    }
    ${d.urls.map(
      (u) =>
        html`<h2>${u.label} <span class="muted">(${u.urlId})</span></h2>
          <h3>Pending (${u.pending})</h3>
          ${u.pending === 0 ? html`<p class="muted">Nothing pending.</p>` : pendingTable(u)}
          <h3>Latest deliveries</h3>
          ${u.recent.length === 0 ? html`<p class="muted">No try yet.</p>` : recentTable(u)}`,
    )}`;
}

const one = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

export function webhookPages(deps: WebhookPagesDeps): BoardPages {
  const { redis, keys } = deps;

  async function send(kit: PageKit, req: Request, res: Response, result?: { notice: Notice; status: number }) {
    const urls = await webhookStatus(redis, keys, { limit: Math.max(RECENT_SHOWN, PENDING_SHOWN) });
    const dead: DeadLetter[] = [];
    for await (const d of deadLetters(redis, keys, undefined, DEAD_SHOWN)) {
      dead.push(d);
      if (dead.length === DEAD_SHOWN) break;
    }
    kit.send(res, {
      title: 'Webhooks',
      current: WEBHOOK_PATHS.page,
      status: result?.status,
      notice: result?.notice,
      body: webhooksPage({ urls, dead, writes: { enabled: !kit.readOnly, csrf: kit.csrfField(req) } }),
    });
  }

  return {
    nav: [{ path: WEBHOOK_PATHS.page, label: 'Webhooks' }],
    mount(router, kit) {
      router.get(WEBHOOK_PATHS.page, (req, res) => send(kit, req, res));
      // Registered on a read-only board too: a POST then answers 405 with a page that says so.
      router.post(WEBHOOK_PATHS.retry, express.urlencoded({ extended: false, limit: '4kb' }), async (req, res) => {
        if (!kit.guardWrite(req, res)) return;
        const body = req.body as Record<string, unknown>;
        const eventId = one(body['event']);
        const urlId = one(body['url']);
        if ((eventId !== undefined && !STREAM_ID.test(eventId)) || (urlId !== undefined && !URL_ID.test(urlId))) {
          await send(kit, req, res, { status: 422, notice: { kind: 'refused', text: 'Not an event id or URL id this board shows: nothing was put back.' } });
          return;
        }
        const done = await retryDeadLetters(redis, keys, { ...(eventId ? { eventId } : { all: true }), ...(urlId && { urlId }) }, kit.clock());
        const total = [...done.values()].reduce((a, b) => a + b, 0);
        const notice: { notice: Notice; status: number } =
          total > 0
            ? { status: 200, notice: { kind: 'ok', text: `Put back for delivery: ${total} event(s)${urlId ? ` of URL ${urlId}` : ''}.` } }
            : eventId
              ? { status: 404, notice: { kind: 'refused', text: `No dead letter ${eventId}${urlId ? ` for URL ${urlId}` : ''}: nothing was put back.` } }
              : { status: 200, notice: { kind: 'ok', text: 'No dead letters: nothing to put back.' } };
        await send(kit, req, res, notice);
      });
    },
  };
}
