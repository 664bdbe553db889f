import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Request, Response, Router } from 'express';
import { html, type Html, raw } from './html.js';

/**
 * The kit the board's own pages are built with: one layout with a nav bar,
 * the response headers, and the guard every write goes through.
 *
 * Extension point: a feature adds pages by handing the board a `BoardPages`
 * (its nav entries and a `mount` that adds its routes to the router behind
 * the board's auth), e.g. `createBoardServer({ ..., pages: [webhookPages(deps)] })`.
 * Its pages render through `kit.send` (same layout, nav, headers) and its
 * POST handlers start with `if (!kit.guardWrite(req, res)) return;` and put
 * `kit.csrfField(req)` in each form. See board-ledger.ts for an example.
 */
export interface NavItem {
  readonly path: string;
  readonly label: string;
}

export interface BoardPages {
  readonly nav: readonly NavItem[];
  mount(router: Router, kit: PageKit): void;
}

export interface Notice {
  readonly kind: 'ok' | 'refused';
  readonly text: string;
}

export interface Page {
  readonly title: string;
  /** The nav entry to highlight (its path). */
  readonly current?: string;
  readonly body: Html;
  readonly notice?: Notice;
  readonly status?: number;
}

export interface PageKit {
  /** No buttons, and every write is refused. */
  readonly readOnly: boolean;
  readonly clock: () => number;
  send(res: Response, page: Page): void;
  /** The hidden field each POST form carries; a page on another site cannot read it. */
  csrfField(req: Request): Html;
  /** For a POST handler: false (the refusal already sent) when read-only, cross-origin or without this board's token. */
  guardWrite(req: Request, res: Response): boolean;
}

const CSS = `
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1c2430;background:#f5f6f8}
nav{display:flex;gap:4px;align-items:center;padding:0 16px;background:#1f2937}
nav .brand{color:#fff;font-weight:600;margin-right:16px}
nav a{color:#cbd5e1;text-decoration:none;padding:12px 10px;display:inline-block}
nav a[aria-current=page]{color:#fff;box-shadow:inset 0 -3px 0 #60a5fa}
nav .ro{margin-left:auto;color:#fbbf24;font-size:12px}
main{padding:16px 24px;max-width:1400px}
h1{font-size:20px;margin:8px 0 16px}h2{font-size:16px;margin:24px 0 8px}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #d8dde3}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #e5e8ec;vertical-align:top}
th{background:#eef1f4;font-weight:600;font-size:12px;text-transform:uppercase;color:#475467}
td.text,.text{word-break:break-word;max-width:520px}.verbatim{white-space:pre-wrap;word-break:break-word}
code,.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;word-break:break-all}
.state{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;background:#e5e7eb}
.state-sent,.state-ok{background:#d1fae5;color:#065f46}
.state-failed,.state-paused{background:#fee2e2;color:#991b1b}
.state-ambiguous,.state-cancelling,.state-rate-limited{background:#fef3c7;color:#92400e}
.state-claimed,.state-queued{background:#dbeafe;color:#1e40af}
.state-cancelled,.state-not-started{background:#e5e7eb;color:#374151}
.notice{padding:10px 14px;border-radius:6px;margin:0 0 16px}
.notice-ok{background:#d1fae5;border:1px solid #6ee7b7}.notice-refused{background:#fee2e2;border:1px solid #fca5a5}
.card{background:#fff;border:1px solid #d8dde3;border-radius:6px;padding:12px 16px;margin:0 0 16px}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:0}dl.facts dt{color:#667085}dl.facts dd{margin:0}
form.filters{display:flex;gap:8px;align-items:end;flex-wrap:wrap;margin:0 0 12px}
form.filters label{display:flex;flex-direction:column;font-size:12px;color:#475467}
input,select,button{font:inherit;padding:4px 8px}
button{cursor:pointer;border:1px solid #9aa4b2;border-radius:4px;background:#fff}
button.danger{border-color:#dc2626;color:#991b1b}button.primary{border-color:#2563eb;color:#1e40af}
form.inline{display:inline}
ol.timeline{list-style:none;margin:0;padding:0 0 0 16px;border-left:2px solid #cbd5e1}
ol.timeline li{position:relative;margin:0 0 12px;padding-left:12px}
ol.timeline li::before{content:"";position:absolute;left:-23px;top:5px;width:12px;height:12px;border-radius:50%;background:#94a3b8}
ol.timeline li.ev-sent::before,ol.timeline li.ev-part-sent::before{background:#10b981}
ol.timeline li.ev-failed::before{background:#ef4444}ol.timeline li.ev-ambiguous::before,ol.timeline li.ev-cancelling::before{background:#f59e0b}
.when{color:#667085;font-size:12px}.evidence{background:#f8fafc;border:1px dashed #cbd5e1;padding:6px 10px;margin-top:4px;border-radius:4px}
.pager{display:flex;gap:16px;margin:12px 0}.muted{color:#667085}
`.trim();

/** The one stylesheet, allowed by its hash: the pages run no script and load nothing from elsewhere. */
const CSS_HASH = createHash('sha256').update(CSS, 'utf8').digest('base64');
const STYLE = raw(`<style>${CSS}</style>`);
const CSP = `default-src 'none'; style-src 'sha256-${CSS_HASH}'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`;

function layout(nav: readonly NavItem[], readOnly: boolean, page: Page): string {
  const links = nav.map((n) => html`<a href="${n.path}" ${raw(n.path === page.current ? ' aria-current="page"' : '')}>${n.label}</a>`);
  const notice = page.notice && html`<div class="notice notice-${page.notice.kind}" role="status">${page.notice.text}</div>`;
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>${page.title} · xactly</title>
        ${STYLE}
      </head>
      <body>
        <nav><span class="brand">xactly</span>${links}${readOnly && raw('<span class="ro">read-only</span>')}</nav>
        <main>${notice}${page.body}</main>
      </body>
    </html> `.value;
}

/** Basic auth's user, so a token is bound to who the board let in ('' when open). */
function userOf(req: Request): string {
  const m = /^Basic ([A-Za-z0-9+/=]+)$/i.exec(req.headers.authorization ?? '');
  if (!m) return '';
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  return decoded.slice(0, Math.max(0, decoded.indexOf(':')));
}

/**
 * Basic auth rides along on any request the browser makes, so a write needs
 * more than credentials: a token from this board's own page (a random key
 * per server, so a restart only means reloading the page), an Origin (when
 * the browser sends one) naming this host, and the Sec-Fetch-Site check the
 * board applies to every request.
 */
export function createPageKit(opts: { nav: () => readonly NavItem[]; readOnly: boolean; clock: () => number }): PageKit {
  const key = randomBytes(32);
  const tokenFor = (req: Request) =>
    createHmac('sha256', key)
      .update(`board-write:${userOf(req)}`)
      .digest('base64url');
  const refuse = (kit: PageKit, res: Response, status: number, text: string) =>
    kit.send(res, {
      title: 'Refused',
      status,
      notice: { kind: 'refused', text },
      body: html`<p><a href="${opts.nav()[0]?.path ?? '/'}">Back to the board</a></p>`,
    });

  const kit: PageKit = {
    readOnly: opts.readOnly,
    clock: opts.clock,
    send(res, page) {
      res
        .status(page.status ?? 200)
        .set({
          'Content-Type': 'text/html; charset=utf-8',
          'Content-Security-Policy': CSP,
          'X-Frame-Options': 'DENY',
          'X-Content-Type-Options': 'nosniff',
          'Referrer-Policy': 'same-origin',
          'Cache-Control': 'no-store',
        })
        .send(layout(opts.nav(), opts.readOnly, page));
    },
    csrfField(req) {
      return html`<input type="hidden" name="csrf" value="${tokenFor(req)}" />`;
    },
    guardWrite(req, res) {
      if (opts.readOnly) {
        refuse(kit, res, 405, 'The board is read-only (BOARD_READ_ONLY): nothing was changed.');
        return false;
      }
      const origin = req.headers.origin;
      if (origin !== undefined) {
        let host: string | undefined;
        try {
          host = new URL(origin).host;
        } catch {
          host = undefined;
        }
        if (host === undefined || host !== req.headers.host) {
          refuse(kit, res, 403, 'Refused: the request came from another site. Nothing was changed.');
          return false;
        }
      }
      const given = typeof req.body?.csrf === 'string' ? (req.body.csrf as string) : '';
      const expected = tokenFor(req);
      if (given.length !== expected.length || !timingSafeEqual(Buffer.from(given), Buffer.from(expected))) {
        refuse(kit, res, 403, 'Refused: the form is stale or did not come from this board (reload the page and try again). Nothing was changed.');
        return false;
      }
      return true;
    },
  };
  return kit;
}
