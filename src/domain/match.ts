import twitterText from 'twitter-text';

/**
 * Matching what we sent against what X shows, with three answers: `match`
 * (provably the post), `uncertain` (may be the post, cannot be proven) and
 * no match. X rewrites a post before showing it:
 *
 * - every URL becomes a 23-char t.co link, the original in
 *   `entities.urls[].expanded_url`; x.com status links come back on
 *   twitter.com (status links are compared by status id and path, across
 *   X's hosts);
 * - `& < >` come back HTML-escaped, in posts and DMs (undone exactly once);
 * - a reply's leading @handles (the target's, and those the text itself
 *   begins with) fold into a hidden prefix before `display_text_range`;
 * - a long post is cut at a word boundary without an ellipsis, the whole
 *   text in `note_tweet`;
 * - media and quotes append a t.co link the user did not write (outside
 *   `display_text_range`, or at its end);
 * - an edit makes a new id, `edit_history_tweet_ids[0]` the original;
 * - `created_at` is rounded down to whole seconds.
 *
 * Whatever X may rewrite beyond these exact rules (a link X did not expand,
 * a cut text without note_tweet, an edited text, whitespace or escaping
 * differences, more @handles in the prefix than X adds) is `uncertain`.
 *
 * A quote or a poll is part of what a post is: another quoted post, or a
 * poll on a key sent without one, is not the key's post; a quote or a poll
 * X does not show cannot be proven (`uncertain`).
 *
 * So are media: X appends one t.co link for them (`pic.x.com/…`, with a
 * `media_key`), stripped before the text is compared, and lists them in
 * `attachments.media_keys`. Another number of media, media on a key sent
 * without, or a text-only post for a key sent with media is not the key's
 * post; a media link without `attachments` to count is `uncertain`.
 */
export interface SentItem {
  readonly keyId: string;
  readonly text: string;
  readonly inReplyToTweetId?: string;
  /** The post it quotes (`quote_tweet_id`). */
  readonly quoteTweetId?: string;
  /** Sent with a poll. */
  readonly hasPoll?: boolean;
  /** How many media it was sent with (0 or absent: none). */
  readonly mediaCount?: number;
  /** Window in which X's created_at must fall (ms, skew margin included). */
  readonly windowStart: number;
  readonly windowEnd: number;
  /** Start of the attempt, for "oldest attempt first". */
  readonly attemptStartedAt: number;
}

export interface SeenUrl {
  readonly url: string;
  readonly expandedUrl?: string;
  readonly displayUrl?: string;
  /** Set on the t.co link X appends for attached media. */
  readonly mediaKey?: string;
}

/** A timeline post or DM event as X shows it (see `timelineTweetOf` / `dmEventOf` in src/x/twitter.ts). */
export interface SeenItem {
  readonly id: string;
  readonly text: string;
  readonly createdAt?: string;
  readonly urls?: readonly SeenUrl[];
  /** Code-point range of `text` that is displayed: after a reply's @handles, before appended links. */
  readonly displayTextRange?: readonly [number, number];
  readonly inReplyToTweetId?: string;
  /** The post this one quotes (X appends a link to it). */
  readonly quotedTweetId?: string;
  /** `attachments.poll_ids`: the post has a poll. */
  readonly pollIds?: readonly string[];
  /** `attachments.media_keys`: the post's media. */
  readonly mediaKeys?: readonly string[];
  /** The whole text of a long post (`note_tweet.text`), and its links. */
  readonly noteText?: string;
  readonly noteUrls?: readonly SeenUrl[];
  /** `edit_history_tweet_ids`: the original id first, this version last. */
  readonly editHistoryIds?: readonly string[];
}

export type Judgement =
  { readonly verdict: 'match'; readonly why?: string } | { readonly verdict: 'uncertain'; readonly why: string } | { readonly verdict: 'none' };

const NONE: Judgement = { verdict: 'none' };
const URL_MARK = '\u0001';
const TCO = /https?:\/\/t\.co\/[A-Za-z0-9]+/g;
const LEADING_HANDLE = /^@([A-Za-z0-9_]{1,15})(?![A-Za-z0-9_@])\s*/;
const HANDLE = /@([A-Za-z0-9_]{1,15})(?![A-Za-z0-9_])/g;
/** X's display length; a sent text above it may come back cut. */
const MAX_WEIGHTED = 280;
/** A cut this close to the limit may fall inside a word (X found no space to cut at). */
const HARD_CUT_WEIGHT = MAX_WEIGHTED - 2;
/** What a masked link weighs (X counts every URL as 23). */
const LINK_STANDIN = 'https://t.co/0000000000';
/** X's created_at is rounded down to the second. */
const CREATED_AT_ROUNDING_MS = 1000;
const SNOWFLAKE_EPOCH = 1288834974657n;
const X_HOSTS = new Set(['x.com', 'twitter.com', 'www.x.com', 'www.twitter.com', 'mobile.x.com', 'mobile.twitter.com']);

/** X escapes once: undo it once (single pass, so "&amp;lt;" stays "&lt;"). */
function unescapeHtml(s: string): string {
  return s.replace(/&(amp|lt|gt);/g, (_, e: string) => (e === 'amp' ? '&' : e === 'lt' ? '<' : '>'));
}

function unescapeAll(s: string): string {
  for (let prev = ''; prev !== s;) [prev, s] = [s, unescapeHtml(s)];
  return s;
}

/** The exact rules: Unicode NFC, line endings, surrounding whitespace. */
const exact = (s: string): string => s.normalize('NFC').replace(/\r\n?/g, '\n').trim();
/** Beyond them: compatibility forms, any escaping depth, no whitespace at all. */
const loose = (s: string): string => unescapeAll(s).normalize('NFKC').replace(/\s+/gu, '');

/** Creation time encoded in an X (snowflake) id; undefined for ids that are not snowflakes. */
export function snowflakeTime(id: string): number | undefined {
  if (!/^\d{15,20}$/.test(id)) return undefined;
  const ms = Number((BigInt(id) >> 22n) + SNOWFLAKE_EPOCH);
  return ms > 1_288_834_974_657 && ms < 8_640_000_000_000_000 ? ms : undefined;
}

interface UrlKey {
  readonly exact: string;
  readonly loose: string;
}

/**
 * Comparable forms of a URL: scheme-insensitive (X stores "example.com" as
 * http://example.com), host case and trailing slash ignored; X status links
 * by status id and what follows it, whatever the host or user name.
 */
function urlKey(u: string): UrlKey {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(u) ? u : `http://${u}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    return { exact: u, loose: u.toLowerCase() };
  }
  const host = url.host.toLowerCase();
  const path = url.pathname.replace(/\/+$/, '');
  if (X_HOSTS.has(url.hostname.toLowerCase())) {
    const status = /^\/(?:[A-Za-z0-9_]{1,15}|i\/web|i)\/status(?:es)?\/(\d+)(\/.*)?$/.exec(path);
    if (status) return { exact: `x-status:${status[1]}${status[2] ?? ''}${url.search}`, loose: `x-status:${status[1]}` };
    return { exact: `x.com${path}${url.search}${url.hash}`, loose: `x.com${path}`.toLowerCase() };
  }
  return { exact: `${host}${path}${url.search}${url.hash}`, loose: `${host}${path}`.toLowerCase() };
}

type UrlVerdict = 'exact' | 'loose' | 'unmapped' | 'differ';

function compareUrl(sent: string, expanded: string | undefined): UrlVerdict {
  if (expanded === undefined) return 'unmapped';
  const a = urlKey(sent);
  const b = urlKey(expanded);
  return a.exact === b.exact ? 'exact' : a.loose === b.loose ? 'loose' : 'differ';
}

/** Per-slot verdicts folded into one: a differing link decides, then an unprovable one. */
function compareUrls(sent: readonly string[], seen: readonly (string | undefined)[]): { verdict: UrlVerdict; why?: string } {
  let worst: { verdict: UrlVerdict; why?: string } = { verdict: 'exact' };
  for (let i = 0; i < sent.length; i++) {
    const v = compareUrl(sent[i]!, seen[i]);
    if (v === 'differ') return { verdict: 'differ' };
    if (v === 'unmapped' && worst.verdict === 'exact') worst = { verdict: v, why: `X did not give the expanded form of t.co link ${i + 1} (sent ${sent[i]})` };
    if (v === 'loose' && worst.verdict !== 'loose') worst = { verdict: v, why: `link ${i + 1} came back as ${seen[i]}, sent ${sent[i]}` };
  }
  return worst;
}

/** The text we sent, URLs masked, with its leading @handles peeled off one by one. */
interface SentForm {
  readonly urls: readonly string[];
  /** `rests[k]`: the masked body after its first k leading @handles. */
  readonly rests: readonly string[];
  /** Leading @handles, lower-cased. */
  readonly handles: readonly string[];
  readonly long: boolean;
}

export function sentForm(text: string): SentForm {
  const found = twitterText.extractUrlsWithIndices(text);
  let body = '';
  let pos = 0;
  for (const { indices } of found) {
    body += text.slice(pos, indices[0]) + URL_MARK;
    pos = indices[1];
  }
  body += text.slice(pos);
  return { urls: found.map((f) => f.url), ...peelHandles(body), long: twitterText.parseTweet(text).weightedLength > MAX_WEIGHTED };
}

function peelHandles(body: string): { rests: string[]; handles: string[] } {
  const rests = [body.trimStart()];
  const handles: string[] = [];
  for (let m = LEADING_HANDLE.exec(rests[0]!); m; m = LEADING_HANDLE.exec(rests.at(-1)!)) {
    handles.push(m[1]!.toLowerCase());
    rests.push(rests.at(-1)!.slice(m[0].length));
  }
  return { rests, handles };
}

/** One way to read what X shows: a text (t.co links masked) and the expanded form of each link, in order. */
interface SeenView {
  readonly body: string;
  readonly urls: readonly (string | undefined)[];
  readonly note: string;
}

interface SeenForm {
  readonly views: readonly SeenView[];
  /** @handles in the hidden reply prefix, lower-cased. */
  readonly prefixHandles: readonly string[];
  /** The visible text when X cut it and gave no note_tweet to compare with. */
  readonly cut?: SeenView;
}

function maskLinks(text: string, entities: readonly SeenUrl[] | undefined): { body: string; urls: (string | undefined)[]; links: SeenUrl[] } {
  const urls: (string | undefined)[] = [];
  const links: SeenUrl[] = [];
  const body = text.replace(TCO, (tco) => {
    const e = entities?.find((u) => u.url === tco);
    urls.push(e?.expandedUrl);
    links.push(e ?? { url: tco });
    return URL_MARK;
  });
  return { body, urls, links };
}

function isAppended(link: SeenUrl, item: SeenItem): boolean {
  if (link.mediaKey !== undefined || /^pic\.(x|twitter)\.com\//i.test(link.displayUrl ?? '')) return true;
  if (item.quotedTweetId === undefined || link.expandedUrl === undefined) return false;
  return urlKey(link.expandedUrl).loose === `x-status:${item.quotedTweetId}`;
}

/**
 * Where the displayed range ends in `text`. X counts display_text_range on
 * the escaped text, but clients have seen it counted on the unescaped one;
 * what lies past it can only be whitespace and t.co links, so the reading
 * that leaves such a tail (the shortest) wins.
 */
function displayEnd(cps: readonly string[], text: string, end: number): number {
  const unescaped = Array.from(unescapeHtml(text)).length;
  const hidden = [...new Set([cps.length - end, unescaped - end])].filter((n) => n >= 0).sort((a, b) => a - b);
  const n = hidden.find(
    (h) =>
      cps
        .slice(cps.length - h)
        .join('')
        .replace(TCO, '')
        .trim() === '',
  );
  return n === undefined ? Math.min(end, cps.length) : cps.length - n;
}

export function seenForm(item: SeenItem): SeenForm {
  const cps = Array.from(item.text);
  const start = item.displayTextRange?.[0] ?? 0;
  const end = item.displayTextRange ? displayEnd(cps, item.text, item.displayTextRange[1]) : cps.length;
  const prefixHandles = [...cps.slice(0, start).join('').matchAll(HANDLE)].map((m) => m[1]!.toLowerCase());
  const note = item.noteText !== undefined;
  const text = note ? item.noteText! : cps.slice(start, end).join('');
  const entities = note ? item.noteUrls : item.urls;
  const visible = maskLinks(text, entities);
  const views: SeenView[] = [{ body: visible.body, urls: visible.urls, note: 'as displayed' }];

  // Links past the displayed range: X's own (media, quote), or a link the
  // user ended with that X turned into a quote and hid.
  const tail = note ? '' : cps.slice(end).join('');
  if (tail.trim() !== '' && tail.replace(TCO, '').trim() === '') {
    const whole = maskLinks(text + tail, entities);
    views.push({ body: whole.body, urls: whole.urls, note: 'with the links X hid after the displayed text' });
  }
  // X's appended link inside the displayed range (media, the quoted post).
  let n = visible.links.length;
  let body = visible.body.trimEnd();
  while (n > 0 && body.endsWith(URL_MARK) && isAppended(visible.links[n - 1]!, item)) {
    n--;
    body = body.slice(0, -URL_MARK.length).trimEnd();
  }
  if (n < visible.links.length) views.push({ body, urls: visible.urls.slice(0, n), note: 'without the link X appended' });

  return { views, prefixHandles, ...(!note && { cut: views[0]! }) };
}

/**
 * Whether `sent` is the text X shows in `seen`, content only (no time
 * window, no reply target, no edits). The sent text's leading @handles may
 * have folded into X's hidden reply prefix; X adds at most one handle of its
 * own there (the reply target's).
 */
export function judgeContent(sent: string | SentForm, seen: SeenItem | SeenForm): Judgement {
  const a = typeof sent === 'string' ? sentForm(sent) : sent;
  const b = 'views' in seen ? seen : seenForm(seen);
  let uncertain: string | undefined;
  const prefix = new Set(b.prefixHandles);

  for (const view of b.views) {
    const seenBody = exact(unescapeHtml(view.body));
    for (let k = 0; k < a.rests.length; k++) {
      const folded = a.handles.slice(0, k);
      if (!folded.every((h) => prefix.has(h))) break;
      if (exact(a.rests[k]!) !== seenBody) continue;
      if (a.urls.length !== view.urls.length) continue;
      const extra = [...prefix].filter((h) => !folded.includes(h));
      const links = compareUrls(a.urls, view.urls);
      if (links.verdict === 'differ') continue;
      if (extra.length > 1) uncertain ??= `the reply prefix names @${extra.join(' @')}, more than the reply target X adds`;
      else if (links.verdict === 'exact') return { verdict: 'match', ...(view !== b.views[0] && { why: view.note }) };
      else uncertain ??= links.why!;
    }
  }
  if (uncertain) return { verdict: 'uncertain', why: uncertain };

  // Beyond the exact rules: whitespace, escaping depth, leading @handles.
  const sentRest = loose(a.rests.at(-1)!);
  for (const view of b.views) {
    const peeled = peelHandles(unescapeHtml(view.body));
    const seenHandles = new Set([...prefix, ...peeled.handles]);
    // X never drops an @handle the user wrote: a missing one is a different reply.
    if (!a.handles.every((h) => seenHandles.has(h))) continue;
    if (sentRest === '' || sentRest !== loose(peeled.rests.at(-1)!)) continue;
    if (a.urls.length !== view.urls.length || compareUrls(a.urls, view.urls).verdict === 'differ') continue;
    return { verdict: 'uncertain', why: 'the text differs from what was sent only in whitespace, HTML escaping or leading @handles' };
  }

  // Cut without note_tweet: the visible text is the start of ours, where X
  // cuts: at a word boundary, before a link, or (no space to cut at) at the limit.
  if (b.cut && a.long) {
    const shown = exact(unescapeHtml(b.cut.body)).replace(/…$/u, '').trimEnd();
    const atLimit = twitterText.parseTweet(shown.replaceAll(URL_MARK, LINK_STANDIN)).weightedLength >= HARD_CUT_WEIGHT;
    for (const rest of a.rests) {
      const ours = exact(rest);
      if (shown.length < 100 || !ours.startsWith(shown) || ours.length === shown.length) continue;
      const next = ours.charAt(shown.length);
      if (!/\s/u.test(next) && next !== URL_MARK && !atLimit && !b.cut.body.trimEnd().endsWith('…')) continue;
      const marks = shown.split(URL_MARK).length - 1;
      if (b.cut.urls.length !== marks || compareUrls(a.urls.slice(0, marks), b.cut.urls).verdict === 'differ') continue;
      return { verdict: 'uncertain', why: 'X shows the post cut short and gave no note_tweet with the whole text' };
    }
  }
  return NONE;
}

/** Content only, true for a `match`. */
export function sameContent(sent: string, seen: SeenItem): boolean {
  return judgeContent(sent, seen).verdict === 'match';
}

/** A created_at (whole seconds, rounded down) that may stand for a moment in [start, end]. */
function inWindow(createdAt: string | undefined, start: number, end: number): boolean {
  const at = Date.parse(createdAt ?? '');
  return Number.isFinite(at) && at > start - CREATED_AT_ROUNDING_MS && at <= end;
}

/**
 * One key against one item: reply target, time window, edits, content. An
 * edited post counts from its original (`edit_history_tweet_ids[0]`, its
 * time read from the snowflake id): created before our attempt, it is not
 * ours whatever its text now says; created in the window with a different
 * text, it may be ours, edited since.
 */
export function judge(key: SentItem, item: SeenItem, forms?: { sent?: SentForm; seen?: SeenForm }): Judgement {
  if ((item.inReplyToTweetId ?? undefined) !== (key.inReplyToTweetId ?? undefined)) return NONE;
  if (key.quoteTweetId !== undefined && item.quotedTweetId !== undefined && item.quotedTweetId !== key.quoteTweetId) return NONE;
  const polled = (item.pollIds?.length ?? 0) > 0;
  if (polled && !key.hasPoll) return NONE;
  const sentMedia = key.mediaCount ?? 0;
  const seenMedia = item.mediaKeys?.length ?? 0;
  const mediaLink = (item.urls ?? []).some((u) => u.mediaKey !== undefined);
  if (sentMedia === 0 && (seenMedia > 0 || mediaLink)) return NONE;
  if (sentMedia > 0 && (seenMedia > 0 ? seenMedia !== sentMedia : !mediaLink)) return NONE;
  // X did not say what the post quotes: read its appended link as the key's quote, but that proves nothing.
  const unsaidQuote = key.quoteTweetId !== undefined && item.quotedTweetId === undefined;
  const j = unsaidQuote
    ? judgePost(key, { ...item, quotedTweetId: key.quoteTweetId }, forms?.sent ? { sent: forms.sent } : undefined)
    : judgePost(key, item, forms);
  if (j.verdict !== 'match') return j;
  if (unsaidQuote) return { verdict: 'uncertain', why: `X does not say which post it quotes (sent quoting ${key.quoteTweetId})` };
  if (key.hasPoll && !polled) return { verdict: 'uncertain', why: 'X shows no poll on it (attachments.poll_ids); it was sent with one' };
  if (sentMedia > 0 && seenMedia === 0)
    return { verdict: 'uncertain', why: `X shows a media link but not its media (attachments.media_keys); it was sent with ${sentMedia}` };
  return j;
}

/** Time window, edits and content of one key against one item whose reply target, quote and poll fit. */
function judgePost(key: SentItem, item: SeenItem, forms?: { sent?: SentForm; seen?: SeenForm }): Judgement {
  const history = item.editHistoryIds ?? [];
  const original = history.length > 1 ? history[0]! : undefined;
  if (original !== undefined) {
    const born = snowflakeTime(original);
    if (born === undefined) {
      if (!inWindow(item.createdAt, key.windowStart, key.windowEnd)) return NONE;
      return { verdict: 'uncertain', why: `edited on X (original ${original}, of unknown time)` };
    }
    if (born < key.windowStart || born > key.windowEnd) return NONE;
    const content = judgeContent(forms?.sent ?? key.text, forms?.seen ?? item);
    if (content.verdict === 'match') return { verdict: 'match', why: `edited on X (original ${original}), text unchanged` };
    return { verdict: 'uncertain', why: `edited on X: the original ${original} was created in the attempt window, the current text differs` };
  }
  if (!inWindow(item.createdAt, key.windowStart, key.windowEnd)) return NONE;
  return judgeContent(forms?.sent ?? key.text, forms?.seen ?? item);
}

export interface Attribution {
  readonly verdict: 'match' | 'uncertain';
  readonly item: SeenItem;
  /** Why the item is not a plain match (always set for `uncertain`). */
  readonly why?: string;
}

/**
 * Attribute live items to keys: keyId → the item and how sure we are. Each
 * item goes to at most one key and each key gets at most one item. Exact
 * matches are handed out first (keys with the oldest attempt choose first,
 * taking the oldest matching item), then uncertain candidates to the keys
 * still without one. Items already attributed elsewhere (`taken`, by id or
 * by any id of their edit history) are never reused.
 */
export function attribute(keys: readonly SentItem[], seen: readonly SeenItem[], taken: ReadonlySet<string> = new Set()): Map<string, Attribution> {
  const used = new Set<string>();
  const free = seen.filter((item) => !taken.has(item.id) && !(item.editHistoryIds ?? []).some((id) => taken.has(id)));
  const oldestFirst = free.sort((a, b) => Date.parse(a.createdAt ?? '') - Date.parse(b.createdAt ?? '') || compareIds(a.id, b.id));
  const seenForms = new Map(oldestFirst.map((item) => [item, seenForm(item)]));
  const byAttempt = [...keys].sort((a, b) => a.attemptStartedAt - b.attemptStartedAt || (a.keyId < b.keyId ? -1 : 1));
  const sentForms = new Map(byAttempt.map((k) => [k, sentForm(k.text)]));
  const out = new Map<string, Attribution>();
  for (const pass of ['match', 'uncertain'] as const) {
    for (const key of byAttempt) {
      if (out.has(key.keyId)) continue;
      for (const item of oldestFirst) {
        if (used.has(item.id)) continue;
        const j = judge(key, item, { sent: sentForms.get(key)!, seen: seenForms.get(item)! });
        if (j.verdict !== pass) continue;
        used.add(item.id);
        out.set(key.keyId, { verdict: j.verdict, item, ...(j.why !== undefined && { why: j.why }) });
        break;
      }
    }
  }
  return out;
}

function compareIds(a: string, b: string): number {
  if (/^\d+$/.test(a) && /^\d+$/.test(b)) return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
  return a < b ? -1 : a > b ? 1 : 0;
}
