/**
 * X's v2 media upload, as the fake holds it: the simple upload
 * (POST /2/media/upload, an image), the chunked one (initialize, append
 * with segment_index, finalize), status with processing states and
 * `check_after_secs`, alt text (POST /2/media/metadata), and the expiry
 * of ids no post used in time. Bytes are counted and hashed as they come,
 * never kept: a 512 MB video costs the fake nothing but its segment.
 *
 * Ground truth: every upload with the bytes received (`uploads()`), and the
 * media each created post carries (`CreatedItem.media`, store.ts).
 */
import { createHash, type Hash } from 'node:crypto';

import { invalidRequest } from './problems.js';

export type MediaState = 'uploading' | 'pending' | 'in_progress' | 'succeeded' | 'failed';

export interface UploadedMedium {
  id: string;
  mediaKey: string;
  ownerId: string;
  category: string;
  mediaType: string;
  /** Bytes announced (initialize) or sent (simple upload). */
  totalBytes: number;
  /** Bytes received so far, over all segments. */
  receivedBytes: number;
  segments: number;
  /** Hex SHA-256 of the content, when the segments came in order 0, 1, 2, … (else undefined). */
  sha256?: string;
  state: MediaState;
  createdAt: number;
  expiresAt: number;
  altText?: string;
  /** Processing ends at (chunked GIFs and videos). */
  processingUntil?: number;
  /** Processing fails (a fault) instead of succeeding. */
  failProcessing?: boolean;
}

/** A medium attached to a created post, as ground truth keeps it. */
export interface AttachedMedium {
  mediaId: string;
  mediaKey: string;
  mediaType: string;
  bytes: number;
  sha256?: string;
  altText?: string;
}

export interface MediaOptions {
  /** `expires_after_secs` of a new id (X: a day). */
  mediaExpirySecs?: number;
  /** How long a chunked GIF or video processes after finalize (default 1.5 s; 0: done at finalize). */
  mediaProcessingMs?: number;
}

/** X takes segments of up to 5 MB on append. */
export const MAX_SEGMENT_BYTES = 5 * 1024 * 1024;
/** The simple upload takes images (5 MB; a little more for the form's framing). */
export const MAX_SIMPLE_BYTES = 5 * 1024 * 1024;
const CHUNK_CATEGORIES = new Set(['tweet_gif', 'tweet_video', 'tweet_image', 'dm_gif', 'dm_video', 'dm_image', 'amplify_video']);
const SIMPLE_CATEGORIES = new Set(['tweet_image', 'dm_image']);
const MAX_TOTAL: Record<string, number> = { image: 5 * 1024 * 1024, gif: 15 * 1024 * 1024, video: 512 * 1024 * 1024 };
/** X's words for ids a create cannot use. */
export const INVALID_MEDIA_IDS = 'Your media IDs are invalid.';

interface Progress {
  hash: Hash | undefined;
  nextIndex: number;
}

export class MediaStore {
  private readonly media = new Map<string, UploadedMedium>();
  private readonly progress = new Map<string, Progress>();
  private readonly expirySecs: number;
  private readonly processingMs: number;

  constructor(
    private readonly now: () => number,
    private readonly nextId: (at: number) => bigint,
    opts: MediaOptions,
  ) {
    this.expirySecs = opts.mediaExpirySecs ?? 86_400;
    this.processingMs = opts.mediaProcessingMs ?? 1_500;
  }

  /** Ground truth: copies of every upload, in order. */
  uploads(): UploadedMedium[] {
    return [...this.media.values()].map((m) => ({ ...m }));
  }

  /** Expire an id now (the fault "expired between upload and create"). */
  expire(id: string): void {
    const m = this.media.get(id);
    if (m) m.expiresAt = Math.min(m.expiresAt, this.now() - 1);
  }

  /** POST /2/media/upload: one image in one request. */
  simple(ownerId: string, fields: Record<string, Buffer>, now: number): Record<string, unknown> {
    const bytes = fields.media;
    const category = fields.media_category?.toString('utf8');
    if (!bytes || bytes.length === 0) throw invalidRequest('media is required.', 'media');
    if (!category || !SIMPLE_CATEGORIES.has(category))
      throw invalidRequest('media_category must be one of [tweet_image, dm_image, subtitles].', 'media_category');
    const mediaType = fields.media_type?.toString('utf8') ?? 'image/jpeg';
    if (bytes.length > MAX_SIMPLE_BYTES) throw invalidRequest('File size exceeds 5242880 bytes.', 'media');
    const m = this.create(ownerId, category, mediaType, bytes.length, now);
    m.receivedBytes = bytes.length;
    m.segments = 1;
    m.sha256 = createHash('sha256').update(bytes).digest('hex');
    m.state = 'succeeded';
    this.progress.delete(m.id);
    return { data: this.view(m, now) };
  }

  /** POST /2/media/upload/initialize. */
  initialize(ownerId: string, body: Record<string, unknown>, now: number): Record<string, unknown> {
    const category = body.media_category;
    const mediaType = body.media_type;
    const total = body.total_bytes;
    if (typeof category !== 'string' || !CHUNK_CATEGORIES.has(category)) throw invalidRequest('media_category is not valid.', 'media_category');
    if (typeof mediaType !== 'string' || !/^(image|video)\//.test(mediaType)) throw invalidRequest('media_type is not valid.', 'media_type');
    if (typeof total !== 'number' || !Number.isInteger(total) || total <= 0) throw invalidRequest('total_bytes must be a positive integer.', 'total_bytes');
    const kind = mediaType === 'image/gif' ? 'gif' : mediaType.startsWith('video/') ? 'video' : 'image';
    if (total > MAX_TOTAL[kind]!) throw invalidRequest(`File size exceeds ${MAX_TOTAL[kind]} bytes.`, 'total_bytes');
    const m = this.create(ownerId, category, mediaType, total, now);
    // No size yet, no processing: the session's id, key and expiry (2.167's InitializeMediaUploadResponseData).
    const { size: _size, ...session } = this.view(m, now);
    return { data: session };
  }

  /** POST /2/media/upload/{id}/append: one segment. */
  append(ownerId: string, id: string, fields: Record<string, Buffer>, now: number): Record<string, unknown> {
    const m = this.own(ownerId, id, now);
    if (m.state !== 'uploading') throw invalidRequest('Media is already finalized.', 'id');
    const raw = fields.segment_index?.toString('utf8');
    if (raw === undefined || !/^\d{1,3}$/.test(raw)) throw invalidRequest('segment_index must be an integer 0-999.', 'segment_index');
    const bytes = fields.media;
    if (!bytes || bytes.length === 0) throw invalidRequest('media is required.', 'media');
    if (bytes.length > MAX_SEGMENT_BYTES) throw invalidRequest(`Segment size exceeds ${MAX_SEGMENT_BYTES} bytes.`, 'media');
    if (m.receivedBytes + bytes.length > m.totalBytes) throw invalidRequest('Segments exceed total_bytes.', 'media');
    const index = Number(raw);
    const p = this.progress.get(id)!;
    if (p.hash && index === p.nextIndex) p.hash.update(bytes);
    else p.hash = undefined;
    p.nextIndex = index + 1;
    m.receivedBytes += bytes.length;
    m.segments++;
    return { data: { expires_at: Math.floor(m.expiresAt / 1000) } };
  }

  /** POST /2/media/upload/{id}/finalize; `fail`: processing will fail (a fault). */
  finalize(ownerId: string, id: string, now: number, fail = false): Record<string, unknown> {
    const m = this.own(ownerId, id, now);
    if (m.state !== 'uploading') return { data: this.view(m, now) };
    if (m.receivedBytes !== m.totalBytes) throw invalidRequest(`File size mismatch: received ${m.receivedBytes} of ${m.totalBytes} bytes.`, 'id');
    const p = this.progress.get(id);
    if (p?.hash) m.sha256 = p.hash.digest('hex');
    this.progress.delete(id);
    const processes = m.mediaType === 'image/gif' || m.mediaType.startsWith('video/');
    if (fail) m.failProcessing = true;
    if (processes && (this.processingMs > 0 || fail)) {
      m.state = 'pending';
      m.processingUntil = now + this.processingMs;
    } else {
      m.state = 'succeeded';
    }
    return { data: this.view(m, now) };
  }

  /** GET /2/media/upload?command=STATUS&media_id=… */
  status(ownerId: string, id: string, now: number): Record<string, unknown> {
    const m = this.own(ownerId, id, now);
    return { data: this.view(m, now) };
  }

  /** POST /2/media/metadata: alt text. */
  metadata(ownerId: string, body: Record<string, unknown>, now: number): Record<string, unknown> {
    const id = body.id;
    if (typeof id !== 'string') throw invalidRequest('id is required.', 'id');
    const m = this.own(ownerId, id, now);
    const alt = (body.metadata as { alt_text?: { text?: unknown } } | undefined)?.alt_text?.text;
    if (typeof alt !== 'string') throw invalidRequest('metadata.alt_text.text is required.', 'metadata.alt_text.text');
    if ([...alt].length > 1000) throw invalidRequest('alt_text.text must be at most 1000 characters.', 'metadata.alt_text.text');
    m.altText = alt;
    return { data: { id: m.id, associated_metadata: { alt_text: { text: alt } } } };
  }

  /**
   * The media a create names, as X checks `media.media_ids`: each known, the
   * caller's, not expired, processed; 4 images, or 1 GIF or video. Throws
   * X's 400 (`Your media IDs are invalid.`) otherwise.
   */
  attachable(ownerId: string, ids: unknown, now: number, dm = false): UploadedMedium[] {
    const list = Array.isArray(ids) ? (ids as unknown[]) : [];
    const invalid = () => invalidRequest(INVALID_MEDIA_IDS, dm ? 'attachments.media_id' : 'media.media_ids', list.map(String));
    // A DM message carries one attachment.
    if (list.length < 1 || list.length > (dm ? 1 : 4)) throw invalid();
    const media = list.map((id) => {
      const m = typeof id === 'string' ? this.media.get(id) : undefined;
      if (!m || m.ownerId !== ownerId || m.expiresAt <= now) throw invalid();
      this.advance(m, now);
      if (m.state !== 'succeeded') throw invalid();
      return m;
    });
    const single = media.some((m) => m.mediaType === 'image/gif' || m.mediaType.startsWith('video/'));
    if (single && media.length > 1) throw invalid();
    return media;
  }

  private create(ownerId: string, category: string, mediaType: string, totalBytes: number, now: number): UploadedMedium {
    const id = this.nextId(now).toString();
    const kindDigit = mediaType.startsWith('video/') ? 7 : mediaType === 'image/gif' ? 16 : 3;
    const m: UploadedMedium = {
      id,
      mediaKey: `${kindDigit}_${id}`,
      ownerId,
      category,
      mediaType,
      totalBytes,
      receivedBytes: 0,
      segments: 0,
      state: 'uploading',
      createdAt: now,
      expiresAt: now + this.expirySecs * 1000,
    };
    this.media.set(id, m);
    this.progress.set(id, { hash: createHash('sha256'), nextIndex: 0 });
    return m;
  }

  /** The caller's medium, unexpired: else X's 400 for a media id it does not know. */
  private own(ownerId: string, id: string, now: number): UploadedMedium {
    const m = this.media.get(id);
    if (!m || m.ownerId !== ownerId || m.expiresAt <= now) throw invalidRequest(`The media_id [${id}] is not valid or has expired.`, 'media_id', [id]);
    this.advance(m, now);
    return m;
  }

  /** Processing moves on with the clock. */
  private advance(m: UploadedMedium, now: number): void {
    if ((m.state === 'pending' || m.state === 'in_progress') && m.processingUntil !== undefined) {
      if (now >= m.processingUntil) m.state = m.failProcessing ? 'failed' : 'succeeded';
      else m.state = 'in_progress';
    }
  }

  private view(m: UploadedMedium, now: number): Record<string, unknown> {
    const out: Record<string, unknown> = {
      id: m.id,
      media_key: m.mediaKey,
      size: m.totalBytes,
      expires_after_secs: Math.max(0, Math.floor((m.expiresAt - now) / 1000)),
    };
    if (m.state === 'uploading' || m.processingUntil === undefined) return out;
    const left = Math.max(0, m.processingUntil - now);
    const info: Record<string, unknown> = { state: m.state };
    if (m.state === 'pending' || m.state === 'in_progress') {
      info.check_after_secs = Math.max(1, Math.ceil(left / 1000));
      info.progress_percent = Math.min(99, Math.floor(100 * (1 - left / Math.max(1, this.processingMs))));
    } else if (m.state === 'succeeded') info.progress_percent = 100;
    out.processing_info = info;
    return out;
  }
}

/**
 * A multipart/form-data body as fields (X's media requests: `media` the
 * bytes, `segment_index`, `media_category`, `media_type`).
 */
export function parseMultipart(contentType: string | undefined, body: Buffer): Record<string, Buffer> {
  const boundary = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(contentType ?? '');
  if (!boundary) throw invalidRequest('Request body must be multipart/form-data with a boundary.');
  const delimiter = Buffer.from(`--${boundary[1] ?? boundary[2]}`);
  const fields: Record<string, Buffer> = {};
  let pos = body.indexOf(delimiter);
  while (pos >= 0) {
    const start = pos + delimiter.length;
    if (body.subarray(start, start + 2).toString() === '--') break;
    const headerEnd = body.indexOf('\r\n\r\n', start);
    if (headerEnd < 0) break;
    const headers = body.subarray(start, headerEnd).toString('utf8');
    const next = body.indexOf(delimiter, headerEnd + 4);
    if (next < 0) break;
    const name = /name="([^"]*)"/i.exec(headers)?.[1];
    // The part's content ends before the CRLF that precedes the next delimiter.
    if (name) fields[name] = body.subarray(headerEnd + 4, next - 2);
    pos = next;
  }
  return fields;
}
