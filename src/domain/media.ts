/**
 * Media on a post: what a request may attach, X's limits, and what a file
 * is by its first bytes. Pure: the file IO happens at the edge
 * (src/media/probe.ts), which hands these checks a `MediaProbe` per path.
 *
 * X takes up to 4 images, or 1 GIF, or 1 video per post: images up to 5 MB
 * (jpg, png, webp), a GIF up to 15 MB, a video up to 512 MB (mp4, mov);
 * alt text up to 1,000 characters. Uploading is not an effect (an unused
 * media id expires unseen); the create that names the ids is.
 */

export const MEDIA_TYPES = ['image/jpeg', 'image/png', 'image/webp', 'image/gif', 'video/mp4', 'video/quicktime'] as const;
export type MediaType = (typeof MEDIA_TYPES)[number];
export type MediaKind = 'image' | 'gif' | 'video';

const MB = 1024 * 1024;
export const MAX_BYTES: Readonly<Record<MediaKind, number>> = Object.freeze({ image: 5 * MB, gif: 15 * MB, video: 512 * MB });
export const MAX_IMAGES = 4;
export const MAX_ALT_TEXT_CHARS = 1_000;
/** How many leading bytes the sniffing needs. */
export const HEAD_BYTES = 16;

/** One medium as the producer gives it. */
export interface MediaInput {
  readonly path?: string;
  readonly url?: string;
  readonly altText?: string;
}

/**
 * One medium as the ledger keeps it. A file's type, size and content hash
 * are known from enqueue (the fingerprint covers the hash); a URL's once
 * the worker fetched it.
 */
export interface MediaRef extends MediaInput {
  readonly type?: MediaType;
  readonly bytes?: number;
  /** Hex SHA-256 of the content at enqueue. */
  readonly sha256?: string;
}

/** What the edge found at a path. */
export type MediaProbe =
  /** `type`: already known (a stored medium re-checked by an edit); else sniffed from `head`. */
  | { readonly ok: true; readonly bytes: number; readonly head: Uint8Array; readonly sha256: string; readonly type?: MediaType }
  | { readonly ok: false; readonly reason: string };

export function kindOf(type: MediaType): MediaKind {
  return type === 'image/gif' ? 'gif' : type.startsWith('video/') ? 'video' : 'image';
}

/** X's media_category for a create (`dm_*` for a DM, when DMs carry media). */
export function categoryOf(type: MediaType, dm = false): `${'tweet' | 'dm'}_${'image' | 'gif' | 'video'}` {
  const kind = kindOf(type);
  return `${dm ? 'dm' : 'tweet'}_${kind === 'image' ? 'image' : kind === 'gif' ? 'gif' : 'video'}`;
}

/** Whether a medium goes through the chunked upload (GIFs and videos) or the simple one (images). */
export function isChunked(type: MediaType): boolean {
  return kindOf(type) !== 'image';
}

const ascii = (b: Uint8Array, from: number, to: number) => String.fromCharCode(...b.subarray(from, to));

/** The type a file's first bytes say, whatever its name says; undefined for anything X does not take. */
export function sniff(head: Uint8Array): MediaType | undefined {
  if (head.length >= 8 && head[0] === 0x89 && ascii(head, 1, 4) === 'PNG' && head[4] === 0x0d && head[5] === 0x0a && head[6] === 0x1a && head[7] === 0x0a)
    return 'image/png';
  if (head.length >= 3 && head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return 'image/jpeg';
  if (head.length >= 6 && (ascii(head, 0, 6) === 'GIF87a' || ascii(head, 0, 6) === 'GIF89a')) return 'image/gif';
  if (head.length >= 12 && ascii(head, 0, 4) === 'RIFF' && ascii(head, 8, 12) === 'WEBP') return 'image/webp';
  if (head.length >= 12 && ascii(head, 4, 8) === 'ftyp') return ascii(head, 8, 12) === 'qt  ' ? 'video/quicktime' : 'video/mp4';
  if (head.length >= 8 && ['moov', 'mdat', 'wide', 'free'].includes(ascii(head, 4, 8))) return 'video/quicktime';
  return undefined;
}

const sizeText = (bytes: number) => `${(bytes / MB).toFixed(1)} MB`;
const KIND_WORDS: Record<MediaKind, string> = { image: 'images', gif: 'a GIF', video: 'a video' };

/** What a request's first bytes look like, for an error message (printable ASCII, else hex). */
function headText(head: Uint8Array): string {
  const b = head.subarray(0, 8);
  return [...b].every((c) => c >= 0x20 && c < 0x7f) ? JSON.stringify(ascii(b, 0, b.length)) : [...b].map((c) => c.toString(16).padStart(2, '0')).join(' ');
}

export interface FieldProblem {
  readonly field: string;
  readonly reason: string;
}

/**
 * Check a request's media (`at`: the field prefix, `media` or
 * `parts[2].media`) against X's rules, with what the edge found at each
 * path. Returns the refs to store when there is no problem.
 */
export function checkMedia(
  items: readonly MediaInput[],
  probeOf: (path: string) => MediaProbe | undefined,
  at = 'media',
): { readonly errors: FieldProblem[]; readonly media: MediaRef[] } {
  const errors: FieldProblem[] = [];
  const media: MediaRef[] = [];
  if (items.length === 0) errors.push({ field: at, reason: 'must not be empty (leave it out for a post without media)' });
  const kinds: MediaKind[] = [];
  items.forEach((m, i) => {
    const f = `${at}[${i}]`;
    if (m.altText !== undefined && [...m.altText].length > MAX_ALT_TEXT_CHARS)
      errors.push({ field: `${f}.altText`, reason: `is ${[...m.altText].length} characters; X allows ${MAX_ALT_TEXT_CHARS.toLocaleString('en-US')}` });
    const alt = m.altText !== undefined ? { altText: m.altText } : {};
    if ((m.path === undefined) === (m.url === undefined)) {
      errors.push({ field: f, reason: 'must give either path or url' });
      return;
    }
    if (m.url !== undefined) {
      const url = parseUrl(m.url);
      if (!url) errors.push({ field: `${f}.url`, reason: 'must be an absolute https:// URL' });
      else if (url.protocol !== 'https:') errors.push({ field: `${f}.url`, reason: `must be https (got ${url.protocol.replace(':', '')})` });
      else media.push({ url: m.url, ...alt });
      return;
    }
    const path = m.path!;
    if (!path.startsWith('/')) {
      errors.push({ field: `${f}.path`, reason: 'must be an absolute path (the worker reads it, from its own working directory)' });
      return;
    }
    const probe = probeOf(path);
    if (!probe) {
      errors.push({ field: `${f}.path`, reason: 'was not checked (internal: no probe for it)' });
      return;
    }
    if (!probe.ok) {
      errors.push({ field: `${f}.path`, reason: probe.reason });
      return;
    }
    const type = probe.type ?? sniff(probe.head);
    if (!type) {
      errors.push({ field: `${f}.path`, reason: `is not a jpg, png, webp, gif, mp4 or mov file by its content (it starts ${headText(probe.head)})` });
      return;
    }
    const kind = kindOf(type);
    kinds.push(kind);
    if (probe.bytes === 0) errors.push({ field: `${f}.path`, reason: 'is empty' });
    else if (probe.bytes > MAX_BYTES[kind])
      errors.push({ field: `${f}.path`, reason: `is ${sizeText(probe.bytes)} (${type}); X allows ${KIND_WORDS[kind]} up to ${sizeText(MAX_BYTES[kind])}` });
    media.push({ path, ...alt, type, bytes: probe.bytes, sha256: probe.sha256 });
  });
  const mix = mixError(kinds, items.length);
  if (mix) errors.push({ field: at, reason: mix });
  return { errors, media: errors.length ? [] : media };
}

/** X's combination rule: up to 4 images, or 1 GIF, or 1 video (URL media count toward the 4 until their type is known). */
export function mixError(kinds: readonly MediaKind[], count = kinds.length): string | undefined {
  const rule = `a post takes up to ${MAX_IMAGES} images, or 1 GIF, or 1 video`;
  const images = kinds.filter((k) => k === 'image').length;
  const others = kinds.filter((k) => k !== 'image');
  if (others.length > 0 && count > 1) {
    const what = others.includes('video')
      ? images > 0
        ? 'an image with a video'
        : 'a video with other media'
      : images > 0
        ? 'an image with a GIF'
        : 'a GIF with other media';
    return `mixes ${what}; ${rule}`;
  }
  if (count > MAX_IMAGES) return `has ${count} media; ${rule}`;
  return undefined;
}

function parseUrl(s: string): URL | undefined {
  try {
    return new URL(s);
  } catch {
    return undefined;
  }
}

/** The media in the fingerprint: content hashes (a URL by itself, its content unknown at enqueue) and alt texts, in order. */
export function canonicalMedia(media: readonly MediaRef[]): unknown[] {
  return media.map((m) => [m.sha256 ?? m.url ?? m.path ?? null, m.altText ?? null]);
}

/** The probes a key's stored media stand for (an edit re-checks a key without reading its files again). */
export function storedProbes(media: readonly MediaRef[]): (path: string) => MediaProbe | undefined {
  return (path) => {
    const m = media.find((x) => x.path === path);
    return m?.type && m.bytes !== undefined && m.sha256 ? { ok: true, bytes: m.bytes, head: new Uint8Array(), sha256: m.sha256, type: m.type } : undefined;
  };
}

/** A stored medium as a request gives it. */
export function inputOf(m: MediaRef): MediaInput {
  return { ...(m.path !== undefined && { path: m.path }), ...(m.url !== undefined && { url: m.url }), ...(m.altText !== undefined && { altText: m.altText }) };
}

/** What a key's record keeps of a medium (a copy). */
export function copyMedia(media: readonly MediaRef[]): MediaRef[] {
  return media.map((m) => ({ ...m }));
}

/**
 * What a failed upload means for the key. Nothing is created before the
 * create, so whatever is in doubt about an upload (a timeout, a reset, a
 * 5xx) is simply not sent: upload again. A refusal stays a refusal; with
 * OAuth 2.0 a 403 usually means the token lacks the `media.write` scope.
 */
export function uploadFailureOutcome<O extends { readonly kind: string; readonly cause: string; readonly status?: number }>(
  o: O,
): O | { readonly kind: 'not-sent'; readonly cause: string } {
  if (o.kind === 'ambiguous') return { kind: 'not-sent', cause: `media upload: ${o.cause}` };
  if (o.cause.startsWith('media-')) return o;
  const hint = o.kind === 'rejected' && o.status === 403 ? ' (with OAuth 2.0 the token needs the media.write scope)' : '';
  return { ...o, cause: `media upload: ${o.cause}${hint}` };
}

/** X refused a medium for good (processing failed, a file X cannot take): the key fails `rejected` with this cause. */
export class MediaRejectedError extends Error {
  override name = 'MediaRejectedError';
  readonly code = 'MEDIA_REJECTED';
  constructor(override readonly cause: string) {
    super(`media rejected: ${cause}`);
  }
}

/** A medium could not be had as enqueued (a URL that failed, a file that changed): the key fails `media-unavailable`. */
export class MediaUnavailableError extends Error {
  override name = 'MediaUnavailableError';
  readonly code = 'MEDIA_UNAVAILABLE';
  constructor(override readonly cause: string) {
    super(`media unavailable: ${cause}`);
  }
}

/** The ids a create named were unknown or expired on X (a 400 before anything was created): upload again. */
export class MediaExpiredError extends Error {
  override name = 'MediaExpiredError';
  readonly code = 'MEDIA_EXPIRED';
  constructor(override readonly cause: string) {
    super(`media ids refused: ${cause}`);
  }
}
