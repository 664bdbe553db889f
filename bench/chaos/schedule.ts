/**
 * The keys of a chaos run: N keys over M accounts (posts, replies, DMs),
 * each with a unique text that X's ground truth maps back to the key, and
 * the request the producers enqueue for each.
 */
import { keyId as keyIdOf } from '../../src/domain/key.js';
import type { TestAccount } from '../../test/support/accounts.js';
import type { ExpectedKey } from '../../test/support/verify.js';

/** One key of the run: what the ground-truth check expects of it (ExpectedKey), and its request. */
export interface KeySpec extends ExpectedKey {
  readonly slotId: string;
  readonly postId: string;
  readonly accountId: string;
  readonly deadline: number;
}

/** The run's accounts: an id, X's user id, one OAuth 2.0 token. */
export type ChaosAccount = TestAccount;

/**
 * N keys over M accounts: 40 % posts, 20 % 3-part threads, 20 % replies, 20 % DMs. Every text is
 * unique (it carries the run id and the key's number), so the fake X's
 * ground truth maps back to keys by text; some texts carry what X rewrites
 * (URLs, x.com status links, `&`, `<`, emoji, a leading @handle in replies)
 * and some slot ids carry characters the job-ID mapping must escape.
 *
 * With `restrictedRootId` / `refuserUserId` (X as it is in 2026), half the
 * replies go to a post whose author did not mention the account (X refuses
 * them for good) and half the DMs to a user who refuses DMs.
 */
export function buildSchedule(o: {
  runId: string;
  keys: number;
  accounts: readonly ChaosAccount[];
  rootTweetId: string;
  fanUserId: string;
  fanUsername?: string;
  start: number;
  spreadMs: number;
  deadlineMs: number;
  restrictedRootId?: string;
  refuserUserId?: string;
}): KeySpec[] {
  return Array.from({ length: o.keys }, (_, i) => {
    const account = o.accounts[i % o.accounts.length]!;
    // A fifth of the keys are 3-part threads (parts reply to each other).
    const kind = i % 5 === 3 ? 'reply' : i % 5 === 4 ? 'dm' : i % 10 === 6 || i % 10 === 0 ? 'thread' : 'post';
    const slotId = i % 3 === 0 ? `${new Date(o.start).toISOString()}/${i}` : `slot-${i}`;
    const postId = `${o.runId}.${i % 7 === 0 ? 'p:1' : 'p'}`;
    const extra = i % 4 === 1 ? ` https://example.com/c/${i}?a=1&b=2` : i % 4 === 2 ? ' <3 & ok' : i % 4 === 3 ? ' 🚀' : '';
    const status = o.restrictedRootId && i % 6 === 5 ? ` https://x.com/${o.fanUsername ?? 'fan'}/status/${o.rootTweetId}` : '';
    const lead = o.restrictedRootId && kind === 'reply' && i % 10 === 8 ? `@${o.fanUsername ?? 'fan'} ` : '';
    const text = `${lead}chaos ${o.runId} #${i} ${kind} by ${account.id}${extra}${status}`;
    const scheduledAt = o.start + Math.floor((i / Math.max(1, o.keys)) * o.spreadMs);
    const restricted = kind === 'reply' && o.restrictedRootId !== undefined && i % 10 === 3;
    const refused = kind === 'dm' && o.refuserUserId !== undefined && i % 10 === 4;
    const parts = kind === 'thread' ? [1, 2, 3].map((j) => ({ text: `${text} [${j}/3]` })) : undefined;
    return {
      keyId: keyIdOf({ slotId, postId }),
      slotId,
      postId,
      accountId: account.id,
      userId: account.userId,
      kind,
      text: parts ? parts[0]!.text : text,
      ...(parts && { parts }),
      ...(kind === 'reply' && { inReplyToTweetId: restricted ? o.restrictedRootId : o.rootTweetId }),
      ...(kind === 'dm' && { recipientId: refused ? o.refuserUserId : o.fanUserId }),
      scheduledAt,
      deadline: scheduledAt + o.deadlineMs,
      ...((restricted || refused) && { refusedByX: true }),
    };
  });
}

export function requestOf(k: KeySpec): Record<string, unknown> {
  return {
    slotId: k.slotId,
    postId: k.postId,
    accountId: k.accountId,
    kind: k.kind,
    ...(k.parts ? { parts: k.parts.map((p) => ({ text: p.text })) } : { text: k.text }),
    ...(k.inReplyToTweetId && { inReplyToTweetId: k.inReplyToTweetId }),
    ...(k.recipientId && { recipientId: k.recipientId }),
    scheduledAt: new Date(k.scheduledAt).toISOString(),
    deadline: new Date(k.deadline).toISOString(),
  };
}
