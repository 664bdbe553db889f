import type { AuditEvent, PostRecord } from './state.js';

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

/** Fields of an outcome event that hold epoch ms, shown as ISO times. */
const EVENT_TIMES = new Set(['at', 'until', 'retryAt', 'recheckAt', 'scheduledAt', 'deadline']);

/**
 * An outcome event as readers outside see it (the HTTP API's /v1/events, webhooks):
 * `{id, type, slotId, postId, accountId, state, attempt, at, …its own fields}`,
 * times as ISO strings. The ledger's internal key id stays inside.
 */
export function eventView(e: { readonly id: string; readonly [field: string]: string | undefined }): Record<string, unknown> {
  const { id, key: _key, account, attempt, ...rest } = e;
  const out: Record<string, unknown> = { id, ...(account !== undefined && { accountId: account }), ...(attempt !== undefined && { attempt: Number(attempt) }) };
  for (const [k, v] of Object.entries(rest)) {
    if (v === undefined) continue;
    out[k] = EVENT_TIMES.has(k) && /^\d+$/.test(v) ? new Date(Number(v)).toISOString() : v;
  }
  return out;
}

/** A key's audit trail as readers outside see it: oldest first, times as ISO strings (`by` names who asked, never a secret). */
export function auditView(trail: readonly AuditEvent[]): Record<string, unknown>[] {
  return trail.map((e) =>
    Object.fromEntries(Object.entries(e).map(([k, v]) => [k, EVENT_TIMES.has(k) && typeof v === 'number' ? new Date(v).toISOString() : v])),
  );
}
