/**
 * Query-string handling for the fake's read endpoints. X is strict about its
 * query parameters (unknown names, out-of-range max_results and bad
 * timestamps are 400s), and a fake that silently accepted them would let a
 * broken reconciliation query pass the tests and fail in production.
 */

export class BadRequest extends Error {
  constructor(
    message: string,
    readonly parameter?: string,
  ) {
    super(message);
    this.name = 'BadRequest';
  }
}

export const TWEET_FIELDS = [
  'article',
  'attachments',
  'author_id',
  'card_uri',
  'community_id',
  'context_annotations',
  'conversation_id',
  'created_at',
  'display_text_range',
  'edit_controls',
  'edit_history_tweet_ids',
  'entities',
  'geo',
  'id',
  'in_reply_to_user_id',
  'lang',
  'media_metadata',
  'non_public_metrics',
  'note_tweet',
  'organic_metrics',
  'possibly_sensitive',
  'promoted_metrics',
  'public_metrics',
  'referenced_tweets',
  'reply_settings',
  'scopes',
  'source',
  'text',
  'withheld',
] as const;

/** `post.fields` of spec 2.167, which renamed `tweet.fields` (`note_tweet` → `note_post`; references and edit history became default fields). */
export const POST_FIELDS = [
  'article',
  'article_title',
  'attachments',
  'card_uri',
  'community_id',
  'context_annotations',
  'conversation_id',
  'created_at',
  'display_text_range',
  'edit_controls',
  'entities',
  'geo',
  'id',
  'lang',
  'matched_media_notes',
  'media_metadata',
  'non_public_metrics',
  'note_post',
  'note_request_suggestions',
  'organic_metrics',
  'paid_partnership',
  'possibly_sensitive',
  'promoted_metrics',
  'public_metrics',
  'reply_settings',
  'scopes',
  'source',
  'suggested_source_links',
  'suggested_source_links_with_counts',
  'text',
  'withheld',
] as const;

export const DM_EVENT_FIELDS = [
  'attachments',
  'created_at',
  'dm_conversation_id',
  'entities',
  'event_type',
  'id',
  'participant_ids',
  'referenced_tweets',
  'sender_id',
  'text',
] as const;

/** Reject parameters X does not know for this endpoint. */
export function checkKnownParams(q: URLSearchParams, known: readonly string[]): void {
  for (const name of q.keys()) {
    if (!known.includes(name)) {
      throw new BadRequest(`The query parameter [${name}] is not one of [${known.join(',')}]`, name);
    }
  }
}

export function parseMaxResults(q: URLSearchParams, min: number, max: number, dflt: number): number {
  const raw = q.get('max_results');
  if (raw === null) return dflt;
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new BadRequest(`The \`max_results\` query parameter value [${raw}] is not between ${min} and ${max}`, 'max_results');
  }
  return n;
}

export function parseFields(q: URLSearchParams, name: string, allowed: readonly string[]): Set<string> {
  const raw = q.get(name);
  const out = new Set<string>();
  if (raw === null || raw === '') return out;
  for (const f of raw.split(',')) {
    if (!allowed.includes(f)) {
      throw new BadRequest(`The \`${name}\` query parameter value [${f}] is not one of [${allowed.join(',')}]`, name);
    }
    out.add(f);
  }
  return out;
}

/**
 * X's start_time/end_time have second granularity and are inclusive, so the
 * window is widened to whole seconds (a post at 12:00:01.700 matches
 * end_time=12:00:01Z).
 */
export function parseTimeWindow(q: URLSearchParams): { from?: number; toExclusive?: number } {
  const out: { from?: number; toExclusive?: number } = {};
  const start = parseIso(q, 'start_time');
  const end = parseIso(q, 'end_time');
  if (start !== undefined) out.from = Math.floor(start / 1000) * 1000;
  if (end !== undefined) out.toExclusive = Math.floor(end / 1000) * 1000 + 1000;
  if (start !== undefined && end !== undefined && start >= end) {
    throw new BadRequest('Invalid Request: end_time must be after start_time', 'end_time');
  }
  return out;
}

function parseIso(q: URLSearchParams, name: string): number | undefined {
  const raw = q.get(name);
  if (raw === null) return undefined;
  // RFC 3339 with an explicit zone; Date.parse alone would accept "2026" or local times.
  const ok = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/.test(raw);
  const ms = ok ? Date.parse(raw) : NaN;
  if (!Number.isFinite(ms)) {
    throw new BadRequest(`Invalid '${name}':'${raw}'. '${name}' must be a valid RFC 3339 date-time`, name);
  }
  return ms;
}

export function parseIdParam(q: URLSearchParams, name: string): bigint | undefined {
  const raw = q.get(name);
  if (raw === null) return undefined;
  if (!/^\d{1,19}$/.test(raw)) throw new BadRequest(`The \`${name}\` query parameter value [${raw}] is not valid`, name);
  return BigInt(raw);
}

export function isNumericId(s: string): boolean {
  return /^\d{1,19}$/.test(s);
}

const TOKEN_PREFIX = 'fx1:';

/** Opaque page token: the id the next page starts at (inclusive), so new items arriving between pages don't shift pages. */
export function encodePageToken(id: bigint): string {
  return Buffer.from(TOKEN_PREFIX + id.toString()).toString('base64url');
}

export function decodePageToken(q: URLSearchParams): bigint | undefined {
  const raw = q.get('pagination_token');
  if (raw === null) return undefined;
  const decoded = Buffer.from(raw, 'base64url').toString();
  const id = decoded.startsWith(TOKEN_PREFIX) ? decoded.slice(TOKEN_PREFIX.length) : '';
  if (!isNumericId(id)) throw new BadRequest(`The \`pagination_token\` query parameter value [${raw}] is not valid`, 'pagination_token');
  return BigInt(id);
}

/** Page through items sorted newest (largest id) first. */
export function paginate<T extends { idBig: bigint }>(
  newestFirst: readonly T[],
  maxResults: number,
  startAt: bigint | undefined,
): { page: T[]; nextToken?: string } {
  const from = startAt === undefined ? 0 : newestFirst.findIndex((x) => x.idBig <= startAt);
  if (from < 0) return { page: [] };
  const page = newestFirst.slice(from, from + maxResults);
  const next = newestFirst[from + maxResults];
  return next ? { page, nextToken: encodePageToken(next.idBig) } : { page };
}

/** X's `created_at`: whole seconds, rounded down ("2026-12-01T10:00:00.000Z"). */
export function isoMs(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString();
}
