import type { NextPart, Transition } from './decide.js';
import type { ThreadPart } from './request.js';
import type { PostRecord } from './state.js';

/**
 * A thread is one key whose parts go out one at a time: the record's
 * `text` / `inReplyToTweetId` are those of the part in progress
 * (`partIndex`), so claim, call, settle and reconciliation see one post.
 * Part k+1 starts only once part k is sent, and it replies to part k's id.
 * This turns a part's transition into the key's:
 *
 * - sent, more parts to go → queued for the next part (no wait), the id kept;
 * - sent, last part → sent (the thread's first id as `tweetId`);
 * - rejected or out of time → failed `thread-broken`, the live parts listed
 *   (nothing is deleted behind the user's back); other failures keep their
 *   reason and list the live parts too.
 */
export function isThread(r: Pick<PostRecord, 'kind'>): boolean {
  return r.kind === 'thread';
}

const listLive = (parts: readonly ThreadPart[]) => {
  const live = parts.filter((p) => p.tweetId).map((p, i) => `${i + 1}: ${p.tweetId}`);
  return live.length ? `parts live (not deleted): ${live.join(', ')}` : 'no part is live';
};

export function threadTransition(r: PostRecord, t: Transition, now: number): Transition {
  if (!isThread(r) || !r.parts) return t;
  const k = r.partIndex ?? 0;
  const n = r.parts.length;
  const at = `part ${k + 1} of ${n}`;
  if (t.to === 'sent') {
    const parts = r.parts.map((p, i) => (i === k ? { ...p, tweetId: t.tweetId } : p));
    if (k + 1 >= n) return { to: 'sent', tweetId: parts[0]!.tweetId!, partId: t.tweetId, parts };
    const next: NextPart = { sentId: t.tweetId, partIndex: k + 1, text: parts[k + 1]!.text, inReplyToTweetId: t.tweetId, parts };
    return { to: 'queued', cause: `${at} sent as ${t.tweetId}`, retryAt: now, next };
  }
  if (t.to === 'failed') {
    const reason = t.reason === 'rejected' || t.reason === 'expired' ? 'thread-broken' : t.reason;
    return { ...t, reason, detail: `${at} ${t.reason}: ${t.detail}; ${listLive(r.parts)}`, parts: r.parts };
  }
  return t;
}
