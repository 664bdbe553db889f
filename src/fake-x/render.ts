/**
 * How X rewrites the text it was sent. The fake applies these rewrites so the
 * publisher's matcher is tested against the same differences it meets on X:
 * t.co-wrapped URLs, HTML-escaped `& < >` (posts and DMs), a reply's
 * leading @handles folded into the hidden prefix before display_text_range,
 * and long posts cut at a word boundary (no ellipsis) with the whole text in
 * `note_tweet`.
 */
import twitterText from 'twitter-text';

/** Weighted length (twitter-text) after which X truncates `text` and carries the whole post in `note_tweet`. */
export const MAX_POST_CHARS = 280;
/** Every t.co link X hands out is exactly this long (what twitter-text weighs URLs at). */
export const TCO_URL_LENGTH = 23;

export interface UrlEntity {
  /** Code-point indices into the text the entity is returned with. */
  start: number;
  end: number;
  url: string;
  expanded_url: string;
  display_url: string;
  /** On the link X appends for a post's media. */
  media_key?: string;
}

export interface RenderedBody {
  text: string;
  /** Indices relative to `text`. */
  urls: UrlEntity[];
}

/** A link X appends after the displayed text (a quote's link to the quoted post). */
export interface AppendedLink {
  tco: string;
  expanded: string;
  /** As shown (`pic.x.com/…` for media); default: from `expanded`. */
  display?: string;
  mediaKey?: string;
}

export interface RenderedPost {
  text: string;
  displayTextRange: [number, number];
  /** Indices relative to `text` (only entities still visible after truncation). */
  urls: UrlEntity[];
  /** Present only when `text` was truncated; holds the whole rendered body without the reply prefix. */
  noteTweet?: RenderedBody;
}

export function codePointLength(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const TCO_PREFIX = 'https://t.co/';
const TCO_SLUG_LENGTH = TCO_URL_LENGTH - TCO_PREFIX.length;

/** Deterministic t.co link for the n-th URL the server has wrapped. */
export function tcoUrl(n: number): string {
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`bad t.co counter: ${n}`);
  let slug = '';
  let rest = n;
  do {
    slug = BASE62.charAt(rest % 62) + slug;
    rest = Math.floor(rest / 62);
  } while (rest > 0);
  return TCO_PREFIX + slug.padStart(TCO_SLUG_LENGTH, '0');
}

export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function unescapeHtml(s: string): string {
  return s.replace(/&(amp|lt|gt);/g, (_, e: string) => (e === 'amp' ? '&' : e === 'lt' ? '<' : '>'));
}

/** What X counts of a rendered body: twitter-text's weight of the text as sent (t.co links count 23, like the URLs they stand for). */
function weightOf(rendered: string): number {
  return twitterText.parseTweet(unescapeHtml(rendered)).weightedLength;
}

/** X stores scheme-less links ("example.com") as http:// links. */
export function expandUrl(url: string): string {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(url) ? url : `http://${url}`;
}

export function displayUrl(url: string): string {
  const bare = url.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '');
  const cps = Array.from(bare);
  return cps.length > 26 ? `${cps.slice(0, 25).join('')}…` : bare;
}

/**
 * Rewrite a post or DM body: URLs → t.co, then (optionally) HTML-escape the
 * rest. Escaping happens after URL extraction so `&` inside a query string
 * neither breaks the URL nor shifts the entity indices.
 */
export function renderBody(sent: string, opts: { escape: boolean; nextTco: () => string }): RenderedBody {
  // twitter-text reports UTF-16 indices; X reports code points, so the output
  // indices are counted while building the text.
  const found = twitterText.extractUrlsWithIndices(sent);
  const urls: UrlEntity[] = [];
  let text = '';
  let cpLen = 0;
  let pos = 0;
  const append = (piece: string): void => {
    text += piece;
    cpLen += codePointLength(piece);
  };
  for (const { url, indices } of found) {
    const [from, to] = indices;
    const plain = sent.slice(pos, from);
    append(opts.escape ? escapeHtml(plain) : plain);
    const tco = opts.nextTco();
    const start = cpLen;
    append(tco);
    const expanded = expandUrl(url);
    urls.push({ start, end: cpLen, url: tco, expanded_url: expanded, display_url: displayUrl(expanded) });
    pos = to;
  }
  const tail = sent.slice(pos);
  append(opts.escape ? escapeHtml(tail) : tail);
  return { text, urls };
}

const LEADING_HANDLES = /^(?:@[A-Za-z0-9_]{1,15}(?![A-Za-z0-9_@])\s*)+/;

/**
 * Assemble the text X returns for a post. A reply's leading @handles are the
 * hidden reply prefix: the target's `@handle ` (unless the text already
 * starts with it) and any @handles the text itself begins with;
 * display_text_range starts after them. A body over MAX_POST_CHARS weighted
 * characters is cut at the last word boundary before the limit, without an
 * ellipsis, the whole body in note_tweet. An `appended` link (a quote's)
 * follows the displayed text, outside display_text_range.
 */
export function renderPost(body: RenderedBody, replyPrefix = '', isReply = replyPrefix !== '', appended?: AppendedLink): RenderedPost {
  const leading = isReply ? (LEADING_HANDLES.exec(body.text)?.[0] ?? '') : '';
  const target = replyPrefix.trim().toLowerCase();
  const named = leading.toLowerCase().split(/\s+/).filter(Boolean);
  const prefix = target !== '' && named.includes(target) ? '' : replyPrefix;
  const prefixLen = codePointLength(prefix);
  const hiddenLen = prefixLen + codePointLength(leading);
  const bodyCps = Array.from(body.text);
  const truncated = weightOf(body.text) > MAX_POST_CHARS;
  const keep = truncated ? cutAt(bodyCps, body.urls) : bodyCps.length;
  const visibleBody = truncated ? bodyCps.slice(0, keep).join('') : body.text;
  const shown = prefix + visibleBody;
  const urls = body.urls.filter((u) => !truncated || u.end <= keep).map((u) => ({ ...u, start: u.start + prefixLen, end: u.end + prefixLen }));
  const shownLen = codePointLength(shown);
  let text = shown;
  if (appended) {
    // A media-only post is its link alone.
    const gap = shown === '' ? '' : ' ';
    text = `${shown}${gap}${appended.tco}`;
    urls.push({
      start: shownLen + gap.length,
      end: shownLen + gap.length + codePointLength(appended.tco),
      url: appended.tco,
      expanded_url: appended.expanded,
      display_url: appended.display ?? displayUrl(appended.expanded),
      ...(appended.mediaKey && { media_key: appended.mediaKey }),
    });
  }
  const post: RenderedPost = { text, displayTextRange: [Math.min(hiddenLen, shownLen), shownLen], urls };
  if (truncated) post.noteTweet = { text: body.text, urls: body.urls.map((u) => ({ ...u })) };
  return post;
}

/** The longest prefix of `cps` (in code points) within X's weighted limit (an escaped `&amp;` is 5 code points weighing 1). */
function withinLimit(cps: readonly string[]): number {
  let lo = 0;
  let hi = Math.min(cps.length, MAX_POST_CHARS * '&amp;'.length);
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (weightOf(cps.slice(0, mid).join('')) <= MAX_POST_CHARS) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** Code points kept of a long body: up to the last whitespace within the limit (trailing whitespace dropped), never inside a link. */
function cutAt(cps: readonly string[], urls: readonly UrlEntity[]): number {
  const limit = withinLimit(cps);
  let cut = limit;
  const space = cps.slice(0, limit + 1).findLastIndex((c) => /\s/u.test(c));
  if (space > 0) cut = space;
  for (const u of urls) if (u.start < cut && u.end > cut) cut = u.start;
  // Nor inside an escaped character.
  const amp = cps.slice(Math.max(0, cut - 4), cut).lastIndexOf('&');
  if (amp >= 0) {
    const at = Math.max(0, cut - 4) + amp;
    const entity = /^&(amp|lt|gt);/.exec(cps.slice(at, at + 5).join(''));
    if (entity && at + entity[0].length > cut) cut = at;
  }
  while (cut > 0 && /\s/u.test(cps[cut - 1]!)) cut--;
  return cut;
}
