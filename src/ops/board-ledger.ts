import express, { type Request, type Response, type Router } from 'express';
import type { Evidence } from '../domain/reconcile.js';
import { inDoubt } from '../domain/reconcile.js';
import { keyId, type PostKey } from '../domain/key.js';
import { POST_STATES, type PostState } from '../domain/state.js';
import { accountView } from '../domain/view.js';
import type { Ledger } from '../ledger/ledger.js';
import type { Lifecycle, LifecycleResult } from '../queue/lifecycle.js';
import type { BoardPages, Notice, PageKit } from './board-kit.js';
import { accountsPage, inDoubtPage, LEDGER_PATHS, postPage, postsPage, type Writes } from './board-pages.js';
import { html } from './html.js';

/**
 * The ledger in the board: Posts, one post, Accounts, In doubt, and the two
 * writes an operator may make here (cancel a key, resume an account or the
 * app), each one the ledger's own operation. Nothing here marks a post sent
 * or failed by hand: only X's evidence does that.
 */
export interface LedgerPagesDeps {
  readonly ledger: Ledger;
  readonly lifecycle: Lifecycle;
  /** Account ids the deployment knows (the accounts file's ids; never its contents). */
  readonly accountIds?: () => Promise<readonly string[]>;
}

const DEFAULT_LIMIT = 50;
const MAX_LIMIT = 200;
/** How many unresolved keys the In doubt page reads to find those in doubt. */
const DUE_SCAN = 5_000;
const MAX_DOUBTFUL = 200;
/** How long the list of accounts with a recorded pause or rate limit is reused (the page still reads each one's standing fresh). */
const STANDING_SCAN_TTL_MS = 30_000;

const one = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

type Cursor = { keyId: string; score: number };
const encodeCursor = (c: Cursor) => Buffer.from(JSON.stringify([c.keyId, c.score])).toString('base64url');
function decodeCursor(s: string | undefined): Cursor | undefined {
  if (!s) return undefined;
  try {
    const [k, score] = JSON.parse(Buffer.from(s, 'base64url').toString('utf8')) as unknown[];
    return typeof k === 'string' && typeof score === 'number' ? { keyId: k, score } : undefined;
  } catch {
    return undefined;
  }
}

function cancelNotice(r: LifecycleResult): { notice: Notice; status: number } {
  switch (r.status) {
    case 'cancelled':
      return { status: 200, notice: { kind: 'ok', text: 'Cancelled: this post will never go out.' } };
    case 'cancelling':
      return {
        status: 200,
        notice: {
          kind: 'ok',
          text: `Cancelling: attempt ${r.attempt} is in doubt; no new attempt starts, and the key ends sent if X has it, cancelled if not.`,
        },
      };
    case 'already-sent':
      return { status: 409, notice: { kind: 'refused', text: `Not cancelled: it is already on X (${r.tweetId}).` } };
    case 'final':
      return { status: 409, notice: { kind: 'refused', text: `Not cancelled: it is already final (${r.state}${r.reason ? `, ${r.reason}` : ''}).` } };
    case 'in-flight':
      return { status: 409, notice: { kind: 'refused', text: `Not cancelled: attempt ${r.attempt} is in flight (${r.state}); try again in a moment.` } };
    case 'not-found':
      return { status: 404, notice: { kind: 'refused', text: 'No such key.' } };
    default:
      return { status: 409, notice: { kind: 'refused', text: `Not cancelled (${r.status}).` } };
  }
}

interface Ctx {
  readonly ledger: Ledger;
  readonly lifecycle: Lifecycle;
  knownAccounts(): Promise<string[]>;
}

type Result = { notice: Notice; status: number };

const writesFor = (kit: PageKit, req: Request): Writes => ({ enabled: !kit.readOnly, csrf: kit.csrfField(req) });

async function sendPost(c: Ctx, kit: PageKit, req: Request, res: Response, key: PostKey, result?: Result) {
  const id = keyId(key);
  const [record, trail, notes] = await Promise.all([c.ledger.get(id), c.ledger.auditTrail(id), c.ledger.evidenceNotes([id])]);
  if (!record) {
    kit.send(res, {
      title: 'No such post',
      current: LEDGER_PATHS.posts,
      status: 404,
      notice: result?.notice,
      body: html`<h1>No such post</h1>
        <p>The ledger has no key <code>${key.slotId}</code> / <code>${key.postId}</code> (never enqueued, or past retention).</p>`,
    });
    return;
  }
  const note = notes.get(id);
  kit.send(res, {
    title: `${key.slotId} / ${key.postId}`,
    current: LEDGER_PATHS.posts,
    status: result?.status,
    notice: result?.notice,
    body: postPage({ record, trail, ...(note && { note }), writes: writesFor(kit, req) }),
  });
}

async function sendAccounts(c: Ctx, kit: PageKit, req: Request, res: Response, result?: Result) {
  const now = kit.clock();
  const ids = await c.knownAccounts();
  const [app, status] = await Promise.all([c.ledger.appStatus(now), c.ledger.accountStatus(ids, now)]);
  kit.send(res, {
    title: 'Accounts',
    current: LEDGER_PATHS.accounts,
    status: result?.status,
    notice: result?.notice,
    body: accountsPage({ app, accounts: ids.map((id) => accountView(id, status.get(id))), writes: writesFor(kit, req) }),
  });
}

async function sendPosts(c: Ctx, kit: PageKit, req: Request, res: Response) {
  const q = req.query;
  const stateQ = one(q['state']);
  const state = stateQ && (POST_STATES as readonly string[]).includes(stateQ) ? (stateQ as PostState) : undefined;
  const account = one(q['account']);
  const search = one(q['q'])?.trim() || undefined;
  const n = Number(one(q['limit']) ?? DEFAULT_LIMIT);
  const limit = Number.isInteger(n) && n >= 1 ? Math.min(n, MAX_LIMIT) : DEFAULT_LIMIT;
  const after = decodeCursor(one(q['after']));
  const [page, accounts] = await Promise.all([
    c.ledger.listPage(
      { ...(state && { state }), ...(account && { accountId: account }), ...(search && { keyContains: search }) },
      { limit, ...(after && { after }) },
    ),
    c.knownAccounts(),
  ]);
  kit.send(res, {
    title: 'Posts',
    current: LEDGER_PATHS.posts,
    body: postsPage({
      filter: { state, account, q: search, limit },
      accounts,
      records: page.records,
      ...(page.last && { next: encodeCursor(page.last) }),
      paged: after !== undefined,
    }),
  });
}

async function sendInDoubt(c: Ctx, kit: PageKit, req: Request, res: Response) {
  const { ledger } = c;
  const now = kit.clock();
  const due = await ledger.unresolvedKeys(DUE_SCAN);
  const scanned = { keys: due.length, capped: due.length === DUE_SCAN };
  const records = await ledger.getMany(due.map((d) => d.keyId));
  const doubtful = records.flatMap((r, i) => (r && inDoubt(r, now) ? [{ record: r, nextLookAt: due[i]!.at }] : [])).slice(0, MAX_DOUBTFUL);
  const notes = await ledger.evidenceNotes(doubtful.map((d) => d.record.keyId));
  const after = decodeCursor(one(req.query['after']));
  const page = await ledger.listPage({ state: 'failed', reason: 'unresolved' }, { limit: DEFAULT_LIMIT, ...(after && { after }) });
  const trails = await Promise.all(page.records.map((r) => ledger.auditTrail(r.keyId)));
  const unresolved = page.records.map((record, i) => {
    const evidence = trails[i]!.findLast((e) => e.event === 'reconciled' && e['evidence'] !== undefined)?.['evidence'] as Evidence | undefined;
    return { record, ...(evidence && { evidence }) };
  });
  kit.send(res, {
    title: 'In doubt',
    current: LEDGER_PATHS.inDoubt,
    body: inDoubtPage({
      doubtful: doubtful.map((d) => {
        const note = notes.get(d.record.keyId);
        return { ...d, ...(note && { note }) };
      }),
      unresolved,
      ...(page.last && { unresolvedNext: encodeCursor(page.last) }),
      unresolvedPaged: after !== undefined,
      scanned,
      writes: writesFor(kit, req),
    }),
  });
}

const resumed = (ok: boolean, done: string, nothing: string): Result =>
  ok ? { status: 200, notice: { kind: 'ok', text: done } } : { status: 409, notice: { kind: 'refused', text: nothing } };

/** The writes. Registered on a read-only board too: a POST then answers 405 with a page that says so, not a bare 404. */
function mountWrites(c: Ctx, router: Router, kit: PageKit) {
  const form = express.urlencoded({ extended: false, limit: '4kb' });

  router.post('/ledger/posts/:slotId/:postId/cancel', form, async (req, res) => {
    if (!kit.guardWrite(req, res)) return;
    const { slotId, postId } = req.params as { slotId: string; postId: string };
    const result = await c.lifecycle.cancel({ slotId, postId }, { by: 'board', reason: 'cancelled on the board' });
    await sendPost(c, kit, req, res, { slotId, postId }, cancelNotice(result));
  });

  router.post('/ledger/accounts/:accountId/resume', form, async (req, res) => {
    if (!kit.guardWrite(req, res)) return;
    const { accountId } = req.params as { accountId: string };
    const ok = await c.ledger.resumeAccount(accountId);
    const r = resumed(
      ok,
      `Account ${accountId} resumed: its due posts go out again (their deadlines allowing).`,
      `Account ${accountId} was not paused: nothing changed.`,
    );
    await sendAccounts(c, kit, req, res, r);
  });

  router.post(LEDGER_PATHS.resumeApp, form, async (req, res) => {
    if (!kit.guardWrite(req, res)) return;
    const ok = await c.ledger.resumeApp();
    await sendAccounts(c, kit, req, res, resumed(ok, 'The app resumed: every account publishes again.', 'The app was not paused: nothing changed.'));
  });
}

export function ledgerPages(deps: LedgerPagesDeps): BoardPages {
  // Finding accounts with a standing is a SCAN of the keyspace: at most once per STANDING_SCAN_TTL_MS, not per page.
  let standing: { at: number; ids: Promise<string[]> } | undefined;
  const standingIds = () => {
    const now = Date.now();
    if (!standing || now - standing.at > STANDING_SCAN_TTL_MS) {
      const ids = deps.ledger.standingAccountIds();
      standing = { at: now, ids };
      ids.catch(() => (standing = undefined));
    }
    return standing.ids;
  };
  const c: Ctx = {
    ledger: deps.ledger,
    lifecycle: deps.lifecycle,
    async knownAccounts() {
      const [configured, standing] = await Promise.all([deps.accountIds?.() ?? [], standingIds()]);
      return [...new Set([...configured, ...standing])].sort();
    },
  };
  return {
    nav: [
      { path: LEDGER_PATHS.posts, label: 'Posts' },
      { path: LEDGER_PATHS.inDoubt, label: 'In doubt' },
      { path: LEDGER_PATHS.accounts, label: 'Accounts' },
    ],
    mount(router, kit) {
      router.get(LEDGER_PATHS.posts, (req, res) => sendPosts(c, kit, req, res));
      router.get('/ledger/posts/:slotId/:postId', (req, res) => sendPost(c, kit, req, res, req.params as { slotId: string; postId: string }));
      router.get(LEDGER_PATHS.accounts, (req, res) => sendAccounts(c, kit, req, res));
      router.get(LEDGER_PATHS.inDoubt, (req, res) => sendInDoubt(c, kit, req, res));
      mountWrites(c, router, kit);
    },
  };
}
