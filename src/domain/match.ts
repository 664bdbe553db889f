import twitterText from 'twitter-text';

/**
 * Matching what we sent against what X shows. X rewrites a post: every URL
 * becomes a 23-char t.co link, `& < >` come back HTML-escaped, a reply may
 * gain a leading "@handle " (outside display_text_range), a long post is cut
 * with the whole text in note_tweet. Both sides are brought to one canonical
 * form; URLs are compared separately, by their expanded form when X gives it.
 */
export interface SentItem {
  readonly keyId: string;
  readonly text: string;
  readonly inReplyToTweetId?: string;
  /** Window in which X's created_at must fall (ms, skew margin included). */
  readonly windowStart: number;
  readonly windowEnd: number;
  /** Start of the attempt, for "oldest attempt first". */
  readonly attemptStartedAt: number;
}

export interface SeenItem {
  readonly id: string;
  readonly text: string;
  readonly createdAt?: string;
  readonly urls?: readonly { url: string; expandedUrl?: string }[];
  readonly displayTextRange?: readonly [number, number];
  readonly inReplyToTweetId?: string;
  readonly noteText?: string;
}

const URL_MARK = '\u0001';
const TCO = /https?:\/\/t\.co\/[A-Za-z0-9]+/g;

function unescapeHtml(s: string): string {
  return s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

function canonical(s: string): string {
  return s.normalize('NFC').replace(/\s+/gu, ' ').trim();
}

function canonicalUrl(u: string): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(u) ? u : `http://${u}`;
  return withScheme.replace(/^https?:\/\//i, '').replace(/\/+$/, '').toLowerCase();
}

/** The text we sent, URLs masked, and the URLs themselves. */
export function canonicalSent(text: string): { body: string; urls: string[] } {
  const found = twitterText.extractUrlsWithIndices(text);
  let body = '';
  let pos = 0;
  for (const { indices } of found) {
    body += text.slice(pos, indices[0]) + URL_MARK;
    pos = indices[1];
  }
  body += text.slice(pos);
  return { body: canonical(body), urls: found.map((f) => canonicalUrl(f.url)) };
}

/** What X shows, brought back to the same form. */
export function canonicalSeen(item: SeenItem): { body: string; urls?: string[] } {
  let text: string;
  if (item.noteText !== undefined) text = item.noteText;
  else if (item.displayTextRange) text = Array.from(item.text).slice(item.displayTextRange[0]).join('');
  else text = item.text;
  const body = canonical(unescapeHtml(text.replace(TCO, URL_MARK)));
  const expanded = item.noteText === undefined ? item.urls?.map((u) => u.expandedUrl) : undefined;
  const urls = expanded && expanded.every((u): u is string => typeof u === 'string') ? expanded.map(canonicalUrl) : undefined;
  return { body, ...(urls && { urls }) };
}

export function sameContent(sent: string, seen: SeenItem): boolean {
  const a = canonicalSent(sent);
  const b = canonicalSeen(seen);
  if (a.body !== b.body) return false;
  if (!b.urls) return true;
  return a.urls.length === b.urls.length && a.urls.every((u, i) => u === b.urls![i]);
}

/**
 * Attribute live items to keys: each item to at most one key, each key to at
 * most one item. Keys with the oldest attempt choose first and take the
 * oldest matching item in their window; items already attributed elsewhere
 * (`taken`) are never reused.
 */
export function attribute(
  keys: readonly SentItem[],
  seen: readonly SeenItem[],
  taken: ReadonlySet<string> = new Set(),
): Map<string, SeenItem> {
  const used = new Set(taken);
  const out = new Map<string, SeenItem>();
  const oldestFirst = [...seen].sort((a, b) => Date.parse(a.createdAt ?? '') - Date.parse(b.createdAt ?? '') || (BigInt(a.id) < BigInt(b.id) ? -1 : 1));
  for (const key of [...keys].sort((a, b) => a.attemptStartedAt - b.attemptStartedAt)) {
    const hit = oldestFirst.find((item) => {
      if (used.has(item.id)) return false;
      const at = Date.parse(item.createdAt ?? '');
      if (!Number.isFinite(at) || at < key.windowStart || at > key.windowEnd) return false;
      if ((item.inReplyToTweetId ?? undefined) !== (key.inReplyToTweetId ?? undefined)) return false;
      return sameContent(key.text, item);
    });
    if (hit) {
      used.add(hit.id);
      out.set(key.keyId, hit);
    }
  }
  return out;
}
