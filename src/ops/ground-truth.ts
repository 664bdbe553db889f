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
export type AccountLike = { readonly id: string; readonly userId: string; readonly limits?: { readonly textLength?: number } } & (
  { readonly auth: { readonly accessToken: string } } | { readonly token: string }
);

export function fakeAccountOf(a: AccountLike): FakeAccount {
  // An account whose accounts file allows long posts is a Premium account on this X.
  const textLength = a.limits?.textLength;
  return { userId: a.userId, username: a.id, tokens: ['auth' in a ? a.auth.accessToken : a.token], ...(textLength !== undefined && { textLength }) };
}

/** What one key should have become on X. Texts are unique per key: X's items map back to keys by text. */
export interface ExpectedKey {
  readonly keyId: string;
  /** The user id of the account that posts it. */
  readonly userId: string;
  readonly kind: 'post' | 'reply' | 'dm' | 'thread';
  /** A thread's first part's text (its parts in `parts`). */
  readonly text: string;
  /** A thread's parts: each must be live once, in order, each replying to the one before. */
  readonly parts?: readonly { readonly text: string }[];
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
  'duplicate',
  'lost',
  'stuck',
  'failed-but-live',
  'cancelled-but-live',
  'failed-without-reason',
  'misattributed',
  'refused-not-failed',
  'rejected-unexpectedly',
  'edited-but-old-live',
  'ended-against-answer',
  'before-its-time',
  'broken-chain',
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
  /** Thread keys, and those of them sent: every part live once, in order, each replying to the one before. */
  readonly threads: number;
  readonly threadsSent: number;
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
  let threads = 0;
  let threadsSent = 0;
  const known = new Set<string>();
  keys.forEach((k, i) => {
    known.add(k.text);
    const r = records[i];
    lifecycleChecks(k, byText, known, violations);
    if (k.kind === 'thread') {
      for (const p of k.parts ?? []) known.add(p.text);
      const t = verifyThread(k, r, byText, violations);
      threads++;
      if (r?.state === 'sent' && !t.duplicate && !t.lost) threadsSent++;
      duplicates += t.duplicate ? 1 : 0;
      lost += t.lost ? 1 : 0;
      stuck += t.stuck ? 1 : 0;
      if (r?.state === 'sent') sent++;
      else if (r?.state === 'failed') {
        failed++;
        failedByReason[r.reason ?? '(none)'] = (failedByReason[r.reason ?? '(none)'] ?? 0) + 1;
      } else if (r?.state === 'cancelled') cancelled++;
      if (t.firstLiveAt !== undefined) liveAfterMs.push(t.firstLiveAt - k.scheduledAt);
      return;
    }
    const live = byText.get(k.text) ?? [];
    if (live.length > 1) {
      duplicates++;
      violations.push({ keyId: k.keyId, kind: 'duplicate', detail: `${live.length} items on X: ${ids(live)}` });
    }
    for (const c of live) {
      const wrong = misattribution(k, c);
      if (wrong) violations.push({ keyId: k.keyId, kind: 'misattributed', detail: `item ${c.id}: ${wrong}` });
    }
    if (r && k.mustEndIn && !k.mustEndIn.includes(r.state)) {
      violations.push({
        keyId: k.keyId,
        kind: 'ended-against-answer',
        detail: `ended ${r.state}; the lifecycle answer allows only ${k.mustEndIn.join(' or ')}`,
      });
    }
    if (!r) {
      lost++;
      violations.push({ keyId: k.keyId, kind: 'lost', detail: 'no ledger record' });
      return;
    }
    const state: PostState = r.state;
    // X refused it for good: it must fail with X's reason; nothing else may be rejected.
    if (k.refusedByX && !(state === 'failed' && r.reason === 'rejected')) {
      violations.push({
        keyId: k.keyId,
        kind: 'refused-not-failed',
        detail: `X refuses this key, but it is ${state}${r.reason ? ` (${r.reason}: ${r.detail ?? ''})` : ''}`,
      });
    } else if (!k.refusedByX && state === 'failed' && r.reason === 'rejected') {
      violations.push({ keyId: k.keyId, kind: 'rejected-unexpectedly', detail: r.detail ?? '' });
    }
    if (state === 'sent') {
      sent++;
      const mine = live.find((c) => c.id === r.tweetId);
      if (!mine) {
        lost++;
        violations.push({
          keyId: k.keyId,
          kind: 'lost',
          detail:
            live.length === 0
              ? `sent with id ${r.tweetId ?? '-'}, but nothing with its text is on X`
              : `sent with id ${r.tweetId ?? '-'}, but X holds its text under ${ids(live)}`,
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
  return {
    duplicates,
    lost,
    stuck,
    failedByReason,
    sent,
    failed,
    cancelled,
    threads,
    threadsSent,
    liveAfterMs: liveAfterMs.sort((a, b) => a - b),
    strays,
    violations,
  };
}

/** An acknowledged edit's old texts never on X; an acknowledged reschedule's key (a thread: its first part) not before its new time. */
function lifecycleChecks(k: ExpectedKey, byText: ReadonlyMap<string, CreatedItem[]>, known: Set<string>, violations: Violation[]): void {
  for (const old of k.formerTexts ?? []) {
    known.add(old);
    const stale = byText.get(old) ?? [];
    if (stale.length)
      violations.push({ keyId: k.keyId, kind: 'edited-but-old-live', detail: `the edit was acknowledged, but the old text is on X as ${ids(stale)}` });
  }
  if (k.notBefore === undefined) return;
  const early = (byText.get(k.text) ?? []).filter((c) => c.createdAt < k.notBefore!);
  if (early.length)
    violations.push({
      keyId: k.keyId,
      kind: 'before-its-time',
      detail: `on X at ${early.map((c) => new Date(c.createdAt).toISOString()).join(', ')}, rescheduled to ${new Date(k.notBefore).toISOString()}`,
    });
}

/**
 * A thread against X: no part twice; the parts live are a prefix of the
 * thread, in order, each replying to the one before (the first to the
 * thread's target); they are the ids the ledger lists; a sent thread has
 * every part live, a failed or cancelled one lists what is.
 */
function verifyThread(
  k: ExpectedKey,
  r: PostRecord | undefined,
  byText: ReadonlyMap<string, CreatedItem[]>,
  violations: Violation[],
): { duplicate: boolean; lost: boolean; stuck: boolean; firstLiveAt?: number } {
  const parts = k.parts ?? [];
  const live = parts.map((p) => byText.get(p.text) ?? []);
  const duplicate = live.some((l) => l.length > 1);
  if (duplicate) {
    // The same form as a post's ("N items on X: ..."), N the most copies of one part.
    const most = Math.max(...live.map((l) => l.length));
    violations.push({
      keyId: k.keyId,
      kind: 'duplicate',
      detail: `${most} items on X: ${live
        .map((l, i) => (l.length > 1 ? `part ${i + 1} (${ids(l)})` : ''))
        .filter(Boolean)
        .join(', ')}`,
    });
  }
  const prefix = live.findIndex((l) => l.length === 0);
  const liveCount = prefix === -1 ? parts.length : prefix;
  if (live.slice(liveCount).some((l) => l.length > 0))
    violations.push({ keyId: k.keyId, kind: 'broken-chain', detail: `part ${liveCount + 1} is not on X, but a later part is` });
  const firstLiveAt = live[0]?.[0]?.createdAt;
  if (!r) {
    violations.push({ keyId: k.keyId, kind: 'lost', detail: 'no ledger record' });
    return { duplicate, lost: true, stuck: false, ...(firstLiveAt !== undefined && { firstLiveAt }) };
  }
  // The chain the ledger names (with a duplicate, X holds two copies of a part; the ledger's must be one of them).
  const listed = (r.parts ?? []).map((p) => p.tweetId);
  let lost = false;
  const chain: CreatedItem[] = [];
  for (let i = 0; i < liveCount; i++) {
    const item = listed[i] === undefined ? live[i]![0]! : live[i]!.find((c) => c.id === listed[i]);
    if (!item) {
      lost = true;
      violations.push({ keyId: k.keyId, kind: 'lost', detail: `part ${i + 1} is live as ${ids(live[i]!)}, the ledger lists ${listed[i]}` });
      break;
    }
    const want = i === 0 ? k.inReplyToTweetId : chain[i - 1]!.id;
    if (item.inReplyToTweetId !== want)
      violations.push({
        keyId: k.keyId,
        kind: 'broken-chain',
        detail: `part ${i + 1} (${item.id}) replies to ${item.inReplyToTweetId ?? '-'}, expected ${want ?? '-'}`,
      });
    if (item.authorId !== k.userId)
      violations.push({ keyId: k.keyId, kind: 'misattributed', detail: `part ${i + 1} (${item.id}): author ${item.authorId}, expected ${k.userId}` });
    chain.push(item);
  }
  const unlisted = live.slice(0, liveCount).findIndex((_, i) => listed[i] === undefined);
  if (unlisted !== -1 && r.state !== 'claimed' && r.state !== 'ambiguous' && r.state !== 'cancelling') {
    lost = true;
    violations.push({ keyId: k.keyId, kind: 'lost', detail: `part ${unlisted + 1} is live as ${ids(live[unlisted]!)}, the ledger lists nothing` });
  }
  const stuck = !['sent', 'failed', 'cancelled'].includes(r.state);
  if (stuck)
    violations.push({ keyId: k.keyId, kind: 'stuck', detail: `state ${r.state}, part ${(r.partIndex ?? 0) + 1} of ${parts.length}, attempt ${r.attempt}` });
  if (r.state === 'sent' && liveCount !== parts.length) {
    lost = true;
    violations.push({ keyId: k.keyId, kind: 'lost', detail: `sent, but only ${liveCount} of ${parts.length} parts are on X` });
  }
  if (k.mustEndIn && !k.mustEndIn.includes(r.state))
    violations.push({ keyId: k.keyId, kind: 'ended-against-answer', detail: `ended ${r.state}; the lifecycle answer allows only ${k.mustEndIn.join(' or ')}` });
  return { duplicate, lost, stuck, ...(firstLiveAt !== undefined && { firstLiveAt }) };
}

/**
 * Audit-trail entries that are transitions, as the outcome event each one
 * writes (src/ledger/scripts.ts writes both in the same script). An
 * `unresolved` event is the trail's `failed` with reason unresolved.
 */
export const TRAIL_EVENTS: Readonly<Record<string, string>> = Object.freeze({
  queued: 'queued',
  sent: 'sent',
  failed: 'failed',
  ambiguous: 'ambiguous',
  released: 'released',
  cancelled: 'cancelled',
  'cancel-requested': 'cancelling',
  edited: 'edited',
  rescheduled: 'rescheduled',
  'part-sent': 'part-sent',
});

/** A key's transitions as its audit trail tells them, and as its events do: the two lists must be equal. */
export function transitionsOf(
  trail: readonly { readonly event: string }[],
  events: readonly { readonly type: string }[],
): { trail: string[]; events: string[] } {
  return {
    trail: trail.map((e) => TRAIL_EVENTS[e.event]).filter((t): t is string => t !== undefined),
    events: events.map((e) => (e.type === 'unresolved' ? 'failed' : e.type)),
  };
}

/**
 * One key's outcome events held against its audit trail: exactly one event
 * per transition, in the trail's order, and none without its transition. A
 * trail the ledger cut to its newest `auditMax` entries is compared with
 * the newest events.
 */
export function eventsViolation(
  trail: readonly { readonly event: string }[],
  events: readonly { readonly type: string }[],
  auditMax: number,
): string | undefined {
  const t = transitionsOf(trail, events);
  const got = trail.length >= auditMax ? t.events.slice(-t.trail.length) : t.events;
  if (got.length === t.trail.length && got.every((e, i) => e === t.trail[i])) return undefined;
  return `events [${t.events.join(', ')}], audit trail [${t.trail.join(', ')}]`;
}
