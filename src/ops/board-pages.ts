import type { Evidence } from '../domain/reconcile.js';
import { type AuditEvent, isFinal, POST_STATES, type PostRecord } from '../domain/state.js';
import { type AccountView, partViews, recordView } from '../domain/view.js';
import type { EvidenceNote } from '../ledger/ledger.js';
import { html, type Html, pathOf, queryOf, raw, verbatim } from './html.js';

/**
 * The ledger's pages as HTML, from what the ledger answered: pure
 * functions of their data (board-ledger.ts loads it and wires the routes).
 * What a key shows comes from recordView/partViews, as in the CLI and the
 * API, so the three never disagree. Every value goes through `html`.
 */
export const LEDGER_PATHS = Object.freeze({
  posts: '/ledger',
  inDoubt: '/ledger/in-doubt',
  accounts: '/ledger/accounts',
  post: (slotId: string, postId: string) => pathOf('/ledger/posts', slotId, postId),
  cancel: (slotId: string, postId: string) => `${pathOf('/ledger/posts', slotId, postId)}/cancel`,
  resume: (accountId: string) => `${pathOf('/ledger/accounts', accountId)}/resume`,
  resumeApp: '/ledger/app/resume',
});

/** What a write form needs: whether writes are on, and this request's token field. */
export interface Writes {
  readonly enabled: boolean;
  readonly csrf: Html;
}

const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

export function stateBadge(state: string): Html {
  return html`<span class="state state-${state.replace(/[^a-z-]/g, '-')}" data-state="${state}">${state}</span>`;
}

/** A live link on X for a post id (DM event ids have no public page). */
export function xLink(id: string | undefined, kind?: string): Html {
  if (!id) return html``;
  if (kind === 'dm' || !/^\d+$/.test(id)) return html`<code>${id}</code>`;
  return html`<a class="x-link mono" href="${`https://x.com/i/status/${id}`}" target="_blank" rel="noopener noreferrer">${id}</a>`;
}

function keyLink(r: Pick<PostRecord, 'slotId' | 'postId'>): Html {
  return html`<a class="key" href="${LEDGER_PATHS.post(r.slotId, r.postId)}"><code>${r.slotId}</code> / <code>${r.postId}</code></a>`;
}

function cancelButton(r: PostRecord, w: Writes, label = 'Cancel'): Html {
  if (!w.enabled || isFinal(r.state) || r.state === 'cancelling') return html``;
  return html`<form class="inline" method="post" action="${LEDGER_PATHS.cancel(r.slotId, r.postId)}">
    ${w.csrf}<button class="danger" type="submit" name="cancel" value="1">${label}</button>
  </form>`;
}

// ---------------------------------------------------------------------------
// Posts

export interface PostsFilter {
  readonly state?: string;
  readonly account?: string;
  readonly q?: string;
  readonly limit: number;
}

export interface PostsPageData {
  readonly filter: PostsFilter;
  readonly accounts: readonly string[];
  readonly records: readonly PostRecord[];
  /** The cursor of the next page, when there may be one. */
  readonly next?: string;
  /** This page did not start at the beginning. */
  readonly paged: boolean;
}

function filterForm(f: PostsFilter, accounts: readonly string[]): Html {
  const option = (value: string, label: string, selected: boolean) => html`<option value="${value}" ${raw(selected ? ' selected' : '')}>${label}</option>`;
  return html`<form class="filters" method="get" action="${LEDGER_PATHS.posts}">
    <label
      >State<select name="state">
        ${option('', 'any', !f.state)}${POST_STATES.map((s) => option(s, s, f.state === s))}
      </select></label
    >
    <label
      >Account<select name="account">
        ${option('', 'any', !f.account)}${accounts.map((a) => option(a, a, f.account === a))}
      </select></label
    >
    <label>Key contains<input type="search" name="q" value="${f.q ?? ''}" placeholder="slot or post id" /></label>
    <label>Per page<input type="number" name="limit" min="1" max="200" value="${f.limit}" /></label>
    <button type="submit" class="primary">Filter</button>
    <a href="${LEDGER_PATHS.posts}">Clear</a>
  </form>`;
}

function postRow(r: PostRecord): Html {
  const v = recordView(r) as { state: string; attempts: number; reason?: string; detail?: string; tweetId?: string; scheduledAt: string; updatedAt: string };
  const parts = partViews(r);
  return html`<tr data-key="${r.keyId}" data-state="${v.state}">
    <td>${keyLink(r)}</td>
    <td><a href="${LEDGER_PATHS.posts + queryOf({ account: r.accountId })}">${r.accountId}</a></td>
    <td>${r.kind}${parts && html` <span class="muted">(${parts.length} parts)</span>`}</td>
    <td>${stateBadge(v.state)}</td>
    <td>${v.attempts}</td>
    <td>${xLink(v.tweetId, r.kind)}</td>
    <td class="when">${v.scheduledAt}</td>
    <td class="text">${v.reason && html`<strong>${v.reason}</strong>: `}${v.detail}</td>
  </tr>`;
}

export function postsPage(d: PostsPageData): Html {
  const f = d.filter;
  const rows = d.records.map(postRow);
  const base = { state: f.state, account: f.account, q: f.q, limit: f.limit === 50 ? undefined : f.limit };
  return html`<h1>Posts</h1>
    ${filterForm(f, d.accounts)}
    <table class="posts">
      <thead>
        <tr>
          <th>Key (slot / post)</th>
          <th>Account</th>
          <th>Kind</th>
          <th>State</th>
          <th>Attempts</th>
          <th>X id</th>
          <th>Scheduled</th>
          <th>Reason / detail</th>
        </tr>
      </thead>
      <tbody>
        ${
          rows.length
            ? rows
            : html`<tr>
                <td colspan="8" class="muted">No posts match.</td>
              </tr>`
        }
      </tbody>
    </table>
    <div class="pager">
      ${d.paged && html`<a rel="first" href="${LEDGER_PATHS.posts + queryOf(base)}">« First page</a>`}
      ${d.next && html`<a rel="next" href="${LEDGER_PATHS.posts + queryOf({ ...base, after: d.next })}">Next page »</a>`}
      <span class="muted">${d.records.length} shown, oldest first</span>
    </div>`;
}

// ---------------------------------------------------------------------------
// One post

/** Trail fields that hold an id on X. */
const X_ID_FIELDS = new Set(['tweetId', 'xId', 'lastPartId']);
/** Trail fields that hold epoch ms (leaseUntil, recheckAt, retryAt...). */
const isTimeField = (k: string, v: unknown) => typeof v === 'number' && /(At|Until)$/.test(k);

function fieldValue(k: string, v: unknown): Html {
  if (isTimeField(k, v)) return html`<span class="when">${iso(v as number)}</span>`;
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return html`${String(v)}`;
  return html`<code>${JSON.stringify(v)}</code>`;
}

export function evidenceBlock(e: Evidence, kind?: string): Html {
  switch (e.kind) {
    case 'found':
      return html`<div class="evidence" data-evidence="found">
        Found on X: ${xLink(e.id, kind)}${e.createdAt && html` <span class="when">created ${e.createdAt}</span>`}
      </div>`;
    case 'uncertain':
      return html`<div class="evidence" data-evidence="uncertain">
        Candidate ${xLink(e.id, kind)} may be this post but cannot be proven: ${e.why}${e.createdAt && html` <span class="when">created ${e.createdAt}</span>`}
      </div>`;
    case 'not-found':
      return html`<div class="evidence" data-evidence="not-found">Not on X: ${e.scanned} item(s) looked at between ${iso(e.from)} and ${iso(e.to)}</div>`;
    case 'lookup-failed':
      return html`<div class="evidence" data-evidence="lookup-failed">
        Could not look on X: ${e.cause}${e.retryAt !== undefined && html` (next try ${iso(e.retryAt)})`}
      </div>`;
  }
}

/** The timeline: each event with its time, attempt and fields; a reconciliation's evidence spelled out. */
function timeline(trail: readonly AuditEvent[], kind: string): Html {
  const items = trail.map(({ at, event, attempt, evidence, ...rest }) => {
    const fields = Object.entries(rest).filter(([, v]) => v !== undefined && v !== '');
    return html`<li class="ev-${event.replace(/[^a-z-]/g, '-')}" data-event="${event}">
      <span class="when">${iso(at)}</span> <strong>${event}</strong>${attempt !== undefined && html` <span class="muted">attempt ${attempt}</span>`}
      ${fields.length > 0 && html`<div>${fields.map(([k, v]) => html`<span class="muted">${k}</span> ${X_ID_FIELDS.has(k) ? xLink(String(v), kind) : fieldValue(k, v)} `)}</div>`}
      ${evidence !== undefined && evidenceBlock(evidence as Evidence, kind)}
    </li>`;
  });
  return html`<ol class="timeline">
    ${items}
  </ol>`;
}

export interface PostPageData {
  readonly record: PostRecord;
  readonly trail: readonly AuditEvent[];
  /** The last deferred reconciliation's evidence for the attempt in doubt. */
  readonly note?: EvidenceNote;
  readonly writes: Writes;
}

function partsTable(r: PostRecord): Html {
  const views = partViews(r);
  if (!views || !r.parts) return html``;
  return html`<h2>Thread parts</h2>
    <table class="parts">
      <thead>
        <tr>
          <th>#</th>
          <th>Text</th>
          <th>State</th>
          <th>X id</th>
        </tr>
      </thead>
      <tbody>
        ${views.map(
          (p) =>
            html`<tr data-part="${p.part}" data-state="${p.state}">
              <td>${p.part}</td>
              <td>${verbatim(r.parts![p.part - 1]?.text ?? '')}</td>
              <td>${stateBadge(p.state)}</td>
              <td>${xLink(p.tweetId)}</td>
            </tr>`,
        )}
      </tbody>
    </table>`;
}

/** What an operator can do about a key, in words, and the button when writes are on. */
function actions(r: PostRecord, w: Writes): Html {
  switch (r.state) {
    case 'queued':
      return html`<p>Not attempted yet. Cancelling makes sure it never goes out.</p>
        ${cancelButton(r, w)}`;
    case 'claimed':
    case 'ambiguous':
      return html`<p>
          An attempt is in flight or in doubt; reconciliation decides whether it went out. Cancelling starts no new attempt: the key then ends <em>sent</em> if
          X has it, <em>cancelled</em> if not.
        </p>
        ${cancelButton(r, w)}`;
    case 'cancelling':
      return html`<p>Cancelled while an attempt was in doubt: no new attempt starts; reconciliation ends it sent or cancelled.</p>`;
    case 'failed':
      return r.reason === 'unresolved'
        ? html`<p>
            Reconciliation could not prove whether attempt ${r.attempt} went out. Check the candidate (or the account's timeline) on X; if the post is not
            there, publish it again under a new key. Nothing here marks it sent or not: the ledger only records what X showed.
          </p>`
        : html`<p>Final: ${r.reason}.</p>`;
    case 'sent':
      return html`<p>Final: it is on X.</p>`;
    default:
      return html`<p>Final: it never goes out.</p>`;
  }
}

export function postPage(d: PostPageData): Html {
  const r = d.record;
  const v = recordView(r) as Record<string, string | number | undefined> & { state: string };
  const facts: [string, Html][] = [
    ['State', stateBadge(v.state)],
    ['Account', html`<a href="${LEDGER_PATHS.posts + queryOf({ account: r.accountId })}">${r.accountId}</a>`],
    ['Kind', html`${r.kind}`],
    ['Attempts', html`${v.attempts}`],
    ['Scheduled', html`${v.scheduledAt}`],
    ['Deadline', html`${v.deadline}`],
    ['Updated', html`${v.updatedAt}`],
  ];
  if (r.tweetId) facts.push(['On X', html`${xLink(r.tweetId, r.kind)}${r.parts && html` <span class="muted">(the first part)</span>`}`]);
  if (r.inReplyToTweetId && !r.parts) facts.push(['In reply to', xLink(r.inReplyToTweetId)]);
  if (r.quoteTweetId) facts.push(['Quotes', xLink(r.quoteTweetId)]);
  if (r.recipientId) facts.push(['Recipient', html`<code>${r.recipientId}</code>`]);
  if (r.reason) facts.push(['Reason', html`<strong>${r.reason}</strong>`]);
  if (r.detail) facts.push(['Detail', html`<span class="text">${r.detail}</span>`]);
  if (r.cancel)
    facts.push(['Cancel asked', html`${iso(r.cancel.at)}${r.cancel.by && html` by ${r.cancel.by}`}${r.cancel.reason && html`: ${r.cancel.reason}`}`]);
  const note = d.note && d.note.attempt === r.attempt && !isFinal(r.state) ? d.note : undefined;
  return html`<h1>Post <code>${r.slotId}</code> / <code>${r.postId}</code></h1>
    <div class="card" data-key="${r.keyId}" data-state="${v.state}">
      <dl class="facts">
        ${facts.map(
          ([k, val]) =>
            html`<dt>${k}</dt>
              <dd>${val}</dd>`,
        )}
      </dl>
    </div>
    ${
      !r.parts &&
      html`<h2>Text</h2>
        ${verbatim(r.text, 'div', 'card post-text')}`
    }
    ${partsTable(r)}
    ${
      note &&
      html`<h2>Last reconciliation</h2>
        <div class="card">Looked at ${iso(note.at)}: ${note.why}${evidenceBlock(note.evidence, r.kind)}</div>`
    }
    <h2>What you can do</h2>
    <div class="card actions">${actions(r, d.writes)}</div>
    <h2>Audit trail</h2>
    ${timeline(d.trail, r.kind)}`;
}

// ---------------------------------------------------------------------------
// Accounts

export interface AccountsPageData {
  readonly app: { readonly paused?: string; readonly blockedUntil?: number };
  readonly accounts: readonly AccountView[];
  readonly writes: Writes;
}

export function accountsPage(d: AccountsPageData): Html {
  const w = d.writes;
  const appState = d.app.paused ? 'paused' : d.app.blockedUntil ? 'rate-limited' : 'ok';
  const resume = (action: string, label: string) =>
    w.enabled && html`<form class="inline" method="post" action="${action}">${w.csrf}<button class="primary" type="submit">${label}</button></form>`;
  const rows = d.accounts.map(
    (a) =>
      html`<tr data-account="${a.id}" data-state="${a.state}">
        <td><code>${a.id}</code></td>
        <td>${stateBadge(a.state)}</td>
        <td class="text">
          ${a.state === 'paused' ? a.reason : a.state === 'rate-limited' ? html`publishes wait until <span class="when">${a.until}</span>` : ''}
        </td>
        <td><a href="${LEDGER_PATHS.posts + queryOf({ account: a.id })}">posts</a></td>
        <td>${a.state === 'paused' && resume(LEDGER_PATHS.resume(a.id), 'Resume')}</td>
      </tr>`,
  );
  return html`<h1>Accounts</h1>
    <div class="card app" data-state="${appState}">
      <strong>The X app</strong> ${stateBadge(appState)}
      ${
        d.app.paused &&
        html`<p class="text">X refused the app: ${d.app.paused}. No account publishes until it is resumed.</p>
          ${resume(LEDGER_PATHS.resumeApp, 'Resume the app')}`
      }
      ${!d.app.paused && d.app.blockedUntil && html`<p>The app's cap is reached: every account waits until <span class="when">${iso(d.app.blockedUntil)}</span>.</p>`}
    </div>
    <p class="muted">
      A paused account's due posts fail with <code>account-paused</code> until it is resumed: fix its credentials (or the account on X) first. Rate limits end
      by themselves.
    </p>
    <table class="accounts">
      <thead>
        <tr>
          <th>Account</th>
          <th>State</th>
          <th>Detail</th>
          <th></th>
          <th></th>
        </tr>
      </thead>
      <tbody>
        ${
          rows.length
            ? rows
            : html`<tr>
                <td colspan="5" class="muted">No accounts known.</td>
              </tr>`
        }
      </tbody>
    </table>`;
}

// ---------------------------------------------------------------------------
// In doubt

export interface InDoubtPageData {
  /** Claimed past their lease, ambiguous or cancelling: reconciliation is on them. */
  readonly doubtful: readonly { readonly record: PostRecord; readonly note?: EvidenceNote; readonly nextLookAt?: number }[];
  /** Failed as unresolved: the operator decides. */
  readonly unresolved: readonly { readonly record: PostRecord; readonly evidence?: Evidence }[];
  readonly unresolvedNext?: string;
  readonly unresolvedPaged: boolean;
  /** How many unresolved keys (by next look, soonest first) were looked through, and whether that was the cap. */
  readonly scanned?: { readonly keys: number; readonly capped: boolean };
  readonly writes: Writes;
}

function doubtfulRows(d: InDoubtPageData): Html[] {
  return d.doubtful.map(({ record: r, note, nextLookAt }) => {
    const seen = note && note.attempt === r.attempt ? note : undefined;
    return html`<tr data-key="${r.keyId}" data-state="${r.state}">
      <td>${keyLink(r)}</td>
      <td>${r.accountId}</td>
      <td>${stateBadge(r.state)}</td>
      <td>${r.attempt}</td>
      <td class="text">${r.detail}</td>
      <td>
        ${seen ? html`<span class="when">${iso(seen.at)}</span> ${evidenceBlock(seen.evidence, r.kind)}` : html`<span class="muted">not looked at yet</span>`}
      </td>
      <td class="when">${iso(nextLookAt)}</td>
      <td>${r.state === 'cancelling' ? html`<span class="muted">cancel pending</span>` : cancelButton(r, d.writes, 'Cancel (no new attempt)')}</td>
    </tr>`;
  });
}

function unresolvedRows(d: InDoubtPageData): Html[] {
  return d.unresolved.map(
    ({ record: r, evidence }) =>
      html`<tr data-key="${r.keyId}" data-state="${r.state}" data-reason="${r.reason}">
        <td>${keyLink(r)}</td>
        <td>${r.accountId}</td>
        <td>${r.attempt}</td>
        <td>${evidence ? evidenceBlock(evidence, r.kind) : html`<span class="muted">none</span>`}</td>
        <td class="text">${r.detail}</td>
      </tr>`,
  );
}

export function inDoubtPage(d: InDoubtPageData): Html {
  const doubtful = doubtfulRows(d);
  const unresolved = unresolvedRows(d);
  return html`<h1>In doubt</h1>
    <h2>Being reconciled</h2>
    <p class="muted">
      X may or may not have these. Reconciliation looks at the account's timeline until it can tell, and never starts a new attempt while a candidate might be
      the post. Cancel stops any new attempt; what went out is still reported as sent.
    </p>
    <table class="doubtful">
      <thead>
        <tr>
          <th>Key</th>
          <th>Account</th>
          <th>State</th>
          <th>Attempt</th>
          <th>Cause</th>
          <th>Last look on X</th>
          <th>Next look</th>
          <th>Action</th>
        </tr>
      </thead>
      <tbody>
        ${
          doubtful.length
            ? doubtful
            : html`<tr>
                <td colspan="8" class="muted">Nothing in doubt.</td>
              </tr>`
        }
      </tbody>
    </table>
    ${
      d.scanned?.capped &&
      html`<p class="muted capped">
        Looked through the ${d.scanned.keys} unresolved keys due soonest (queued ones included); keys in doubt due later are not listed yet.
      </p>`
    }
    <h2>Unresolved</h2>
    <p class="muted">
      Failed as <code>unresolved</code>: reconciliation could not prove whether the post went out, so it was never retried. Check the candidate on X; if it is
      not the post, publish it again under a new key. The board marks nothing by hand: the ledger records only what X showed.
    </p>
    <table class="unresolved">
      <thead>
        <tr>
          <th>Key</th>
          <th>Account</th>
          <th>Attempt</th>
          <th>Candidate</th>
          <th>Detail</th>
        </tr>
      </thead>
      <tbody>
        ${
          unresolved.length
            ? unresolved
            : html`<tr>
                <td colspan="5" class="muted">None.</td>
              </tr>`
        }
      </tbody>
    </table>
    <div class="pager">
      ${d.unresolvedPaged && html`<a rel="first" href="${LEDGER_PATHS.inDoubt}">« First page</a>`}
      ${d.unresolvedNext && html`<a rel="next" href="${LEDGER_PATHS.inDoubt + queryOf({ after: d.unresolvedNext })}">More unresolved »</a>`}
    </div>`;
}
