import type { PostRecord } from './state.js';

/**
 * What a reader outside the ledger sees of a key and of an account: the CLI's
 * --json lines, the HTTP API's bodies and the board's pages print these, so
 * the three never disagree. Times are ISO strings; nothing here carries a
 * credential.
 */
export interface PartView {
  part: number;
  state: string;
  tweetId?: string;
}

export function partViews(r: PostRecord): PartView[] | undefined {
  return r.parts?.map((p, i) => ({
    part: i + 1,
    state: p.tweetId ? 'sent' : i === (r.partIndex ?? 0) && r.state !== 'failed' && r.state !== 'cancelled' ? r.state : 'not started',
    ...(p.tweetId && { tweetId: p.tweetId }),
  }));
}

export function recordView(r: PostRecord): Record<string, unknown> {
  const parts = partViews(r);
  return {
    slotId: r.slotId,
    postId: r.postId,
    accountId: r.accountId,
    kind: r.kind,
    state: r.state,
    attempts: r.attempt,
    ...(r.tweetId && { tweetId: r.tweetId }),
    ...(r.reason && { reason: r.reason }),
    ...(r.detail && { detail: r.detail }),
    ...(parts && { parts }),
    ...(r.cancel && {
      cancel: { at: new Date(r.cancel.at).toISOString(), ...(r.cancel.by && { by: r.cancel.by }), ...(r.cancel.reason && { reason: r.cancel.reason }) },
    }),
    scheduledAt: new Date(r.scheduledAt).toISOString(),
    deadline: new Date(r.deadline).toISOString(),
    updatedAt: new Date(r.updatedAt).toISOString(),
  };
}

export interface Standing {
  paused?: string;
  blockedUntil?: number;
}

export interface AccountView {
  id: string;
  state: 'ok' | 'paused' | 'rate-limited';
  reason?: string;
  until?: string;
}

export function accountView(id: string, s: Standing | undefined): AccountView {
  const state = s?.paused ? 'paused' : s?.blockedUntil ? 'rate-limited' : 'ok';
  return { id, state, ...(s?.paused && { reason: s.paused }), ...(s?.blockedUntil && { until: new Date(s.blockedUntil).toISOString() }) };
}
