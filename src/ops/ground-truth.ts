/**
 * The fake X as ground truth, for the demo, the chaos runs and the tests:
 *
 * - `fakeAccountOf`: the fake X account behind an xactly account (the same
 *   user id, its handle is the account id, its access token authenticates);
 * - `verify`: the ledger's records held against the items X really holds.
 *   Exactly once means: every key `sent` has exactly one item on X, the one
 *   the ledger names, by the right author to the right target; every key
 *   `failed` has a reason and nothing on X, every key `cancelled` nothing on
 *   X; no key is left in between.
 *
 * Pure: nothing here talks to Redis or X. It lives in src/ because the demo
 * (`xactly demo`, shipped in the image) uses it; test/support re-exports it.
 */
import type { PostRecord, PostState } from '../domain/state.js';
import type { CreatedItem, FakeAccount } from '../fake-x/index.js';

/** An xactly account (its access token), or a test's `{ id, userId, token }`. */
export type AccountLike = { readonly id: string; readonly userId: string } & ({ readonly auth: { readonly accessToken: string } } | { readonly token: string });

export function fakeAccountOf(a: AccountLike): FakeAccount {
  return { userId: a.userId, username: a.id, tokens: ['auth' in a ? a.auth.accessToken : a.token] };
}

/** What one key should have become on X. Texts are unique per key: X's items map back to keys by text. */
export interface ExpectedKey {
  readonly keyId: string;
  /** The user id of the account that posts it. */
  readonly userId: string;
  readonly kind: 'post' | 'reply' | 'dm';
  readonly text: string;
  readonly inReplyToTweetId?: string;
  readonly recipientId?: string;
  readonly scheduledAt: number;
  /** X refuses this one for good (a restricted reply, a DM to a user who refuses DMs): it must end failed/rejected. */
  readonly refusedByX?: boolean;
  /** Texts an acknowledged edit replaced: never on X. */
  readonly formerTexts?: readonly string[];
  /** The states the key may end in (a cancel answered `cancelled`: only cancelled; `cancelling`: sent or cancelled). */
  readonly mustEndIn?: readonly PostState[];
  /** Not on X before this (an acknowledged reschedule, epoch ms). */
  readonly notBefore?: number;
}

export const TRUTH_VIOLATIONS = [
  'duplicate', 'lost', 'stuck', 'failed-but-live', 'cancelled-but-live', 'failed-without-reason', 'misattributed', 'refused-not-failed',
  'rejected-unexpectedly', 'edited-but-old-live', 'ended-against-answer', 'before-its-time',
] as const;
export type TruthViolationKind = (typeof TRUTH_VIOLATIONS)[number];

export interface Violation<K extends string = TruthViolationKind> {
  readonly keyId: string;
  readonly kind: K;
  readonly detail: string;
}

export interface Verdict {
  /** Keys with more than one item on X. */
  readonly duplicates: number;
  /** Keys with no record, `sent` but not on X under their id, or `failed` / `cancelled` but live. */
  readonly lost: number;
  /** Keys not final (queued, claimed, ambiguous, cancelling). */
  readonly stuck: number;
  readonly failedByReason: Record<string, number>;
  readonly sent: number;
  readonly failed: number;
  readonly cancelled: number;
  /** createdAt − scheduledAt of each sent key's live item, ms, sorted. */
  readonly liveAfterMs: number[];
  /** Created items that map to no key (with a run id: only those that carry it). Should not exist. */
  readonly strays: number;
  readonly violations: Violation[];
}

const ids = (items: readonly CreatedItem[]) => items.map((c) => c.id).join(', ');

/** What is wrong with one item X holds for `k`, if anything. */
function misattribution(k: ExpectedKey, c: CreatedItem): string | undefined {
  if (c.authorId !== k.userId) return `author ${c.authorId}, expected ${k.userId}`;
  if ((k.kind === 'dm') !== (c.kind === 'dm')) return `kind ${c.kind}, expected ${k.kind}`;
  if (k.inReplyToTweetId !== c.inReplyToTweetId) return `reply target ${c.inReplyToTweetId ?? '-'}, expected ${k.inReplyToTweetId ?? '-'}`;
  if (k.recipientId !== c.recipientId) return `recipient ${c.recipientId ?? '-'}, expected ${k.recipientId ?? '-'}`;
  return undefined;
}

/**
 * Compare the ledger with what X really holds: the ledger records (in `keys`
 * order, undefined when missing) and X's created items in, a verdict out.
 * With `runId`, only created items whose text carries ` runId ` can be
 * strays (X holds other things too); without, every unmatched item is one.
 */
export function verify(keys: readonly ExpectedKey[], records: readonly (PostRecord | undefined)[], created: readonly CreatedItem[], runId?: string): Verdict {
  const byText = new Map<string, CreatedItem[]>();
  for (const c of created) {
    const list = byText.get(c.text);
    if (list) list.push(c);
    else byText.set(c.text, [c]);
  }
  const violations: Violation[] = [];
  const failedByReason: Record<string, number> = {};
  const liveAfterMs: number[] = [];
  let duplicates = 0;
  let lost = 0;
  let stuck = 0;
  let sent = 0;
  let failed = 0;
  let cancelled = 0;
  const known = new Set<string>();
  keys.forEach((k, i) => {
    known.add(k.text);
    const r = records[i];
    const live = byText.get(k.text) ?? [];
    if (live.length > 1) {
      duplicates++;
      violations.push({ keyId: k.keyId, kind: 'duplicate', detail: `${live.length} items on X: ${ids(live)}` });
    }
    for (const c of live) {
      const wrong = misattribution(k, c);
      if (wrong) violations.push({ keyId: k.keyId, kind: 'misattributed', detail: `item ${c.id}: ${wrong}` });
    }
    for (const old of k.formerTexts ?? []) {
      known.add(old);
      const stale = byText.get(old) ?? [];
      if (stale.length) violations.push({ keyId: k.keyId, kind: 'edited-but-old-live', detail: `the edit was acknowledged, but the old text is on X as ${ids(stale)}` });
    }
    if (k.notBefore !== undefined) {
      const early = live.filter((c) => c.createdAt < k.notBefore!);
      if (early.length) violations.push({ keyId: k.keyId, kind: 'before-its-time', detail: `on X at ${early.map((c) => new Date(c.createdAt).toISOString()).join(', ')}, rescheduled to ${new Date(k.notBefore).toISOString()}` });
    }
    if (r && k.mustEndIn && !k.mustEndIn.includes(r.state)) {
      violations.push({ keyId: k.keyId, kind: 'ended-against-answer', detail: `ended ${r.state}; the lifecycle answer allows only ${k.mustEndIn.join(' or ')}` });
    }
    if (!r) {
      lost++;
      violations.push({ keyId: k.keyId, kind: 'lost', detail: 'no ledger record' });
      return;
    }
    const state: PostState = r.state;
    // X refused it for good: it must fail with X's reason; nothing else may be rejected.
    if (k.refusedByX && !(state === 'failed' && r.reason === 'rejected')) {
      violations.push({ keyId: k.keyId, kind: 'refused-not-failed', detail: `X refuses this key, but it is ${state}${r.reason ? ` (${r.reason}: ${r.detail ?? ''})` : ''}` });
    } else if (!k.refusedByX && state === 'failed' && r.reason === 'rejected') {
      violations.push({ keyId: k.keyId, kind: 'rejected-unexpectedly', detail: r.detail ?? '' });
    }
    if (state === 'sent') {
      sent++;
      const mine = live.find((c) => c.id === r.tweetId);
      if (!mine) {
        lost++;
        violations.push({
          keyId: k.keyId, kind: 'lost',
          detail: live.length === 0 ? `sent with id ${r.tweetId ?? '-'}, but nothing with its text is on X` : `sent with id ${r.tweetId ?? '-'}, but X holds its text under ${ids(live)}`,
        });
      } else liveAfterMs.push(mine.createdAt - k.scheduledAt);
    } else if (state === 'failed') {
      failed++;
      const reason = r.reason ?? '(none)';
      failedByReason[reason] = (failedByReason[reason] ?? 0) + 1;
      if (!r.reason) violations.push({ keyId: k.keyId, kind: 'failed-without-reason', detail: r.detail ?? '' });
      if (live.length > 0) {
        lost++;
        violations.push({ keyId: k.keyId, kind: 'failed-but-live', detail: `failed (${reason}: ${r.detail ?? ''}) but live on X as ${ids(live)}` });
      }
    } else if (state === 'cancelled') {
      cancelled++;
      if (live.length > 0) {
        lost++;
        violations.push({ keyId: k.keyId, kind: 'cancelled-but-live', detail: `cancelled but live on X as ${ids(live)}` });
      }
    } else {
      stuck++;
      violations.push({ keyId: k.keyId, kind: 'stuck', detail: `state ${state}, attempt ${r.attempt}${live.length ? `, live on X as ${live[0]!.id}` : ''}` });
    }
  });
  const strays = created.filter((c) => (runId === undefined || c.text.includes(` ${runId} `)) && !known.has(c.text)).length;
  return { duplicates, lost, stuck, failedByReason, sent, failed, cancelled, liveAfterMs: liveAfterMs.sort((a, b) => a - b), strays, violations };
}
