import { createHash, randomBytes } from 'node:crypto';
import { open } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TwitterApi } from 'twitter-api-v2';
import { categoryOf, isChunked, MediaRejectedError, MediaUnavailableError, type MediaType } from '../domain/media.js';

/**
 * X's v2 media upload over twitter-api-v2's request methods (its own
 * `uploadMedia` wants the whole file as a Buffer). A file is read one
 * segment at a time straight into the multipart body that carries it, so a
 * 512 MB video costs one segment of memory; each request runs under the
 * caller's hard deadline (x/deadline.ts), with the account's auth.
 *
 * Images go in one request (POST /2/media/upload); GIFs and videos in
 * segments (initialize, append with segment_index, finalize), then status
 * is polled as `check_after_secs` says until processing succeeded or failed.
 */
export interface MediaSource {
  readonly path: string;
  readonly type: MediaType;
  readonly bytes: number;
  /** The content hash the key was enqueued with: a file that changed since is refused before X sees it whole. */
  readonly sha256?: string;
  /** For a DM (X's dm_image, dm_gif, dm_video categories). */
  readonly dm?: boolean;
}

export interface UploadedMedia {
  readonly mediaId: string;
  readonly mediaKey?: string;
  /** When X forgets the id if no post uses it (ms). */
  readonly expiresAt: number;
  readonly bytes: number;
  readonly segments: number;
}

export interface UploadOptions {
  /** Runs one request under the hard deadline (TwitterXPort's `withDeadline`). */
  readonly call: <T>(what: string, fn: () => Promise<T>) => Promise<T>;
  /** No status poll starts after this (ms): the key's deadline. */
  readonly until: number;
  readonly clock?: () => number;
  /** Bytes per append (X takes up to 5 MB). */
  readonly segmentBytes?: number;
}

/** 4 MiB: under X's 5 MB per segment, few enough requests for a 512 MB video (128). */
export const SEGMENT_BYTES = 4 * 1024 * 1024;
/** Status reads a cut answer or a timeout can spoil are asked again, this many times in a row. */
const STATUS_TRIES = 5;

interface MediaUploadBody {
  data?: {
    id?: string;
    media_key?: string;
    expires_after_secs?: number;
    processing_info?: { state?: string; check_after_secs?: number; error?: { message?: string; name?: string } };
  };
}

/** A multipart/form-data body with text fields and, last, `media` of `size` bytes, to be filled in at `offset`. */
function multipart(fields: Record<string, string>, size: number): { body: Buffer; offset: number; contentType: string } {
  const boundary = `----xactly${randomBytes(12).toString('hex')}`;
  let head = '';
  for (const [name, value] of Object.entries(fields)) head += `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
  head += `--${boundary}\r\nContent-Disposition: form-data; name="media"\r\nContent-Type: application/octet-stream\r\n\r\n`;
  const tail = `\r\n--${boundary}--\r\n`;
  const headBuf = Buffer.from(head);
  const body = Buffer.allocUnsafe(headBuf.length + size + Buffer.byteLength(tail));
  headBuf.copy(body, 0);
  body.write(tail, headBuf.length + size);
  return { body, offset: headBuf.length, contentType: `multipart/form-data; boundary=${boundary}` };
}

const raw = (contentType: string) => ({ forceBodyMode: 'raw' as const, headers: { 'content-type': contentType } });

export async function uploadMedia(client: TwitterApi, source: MediaSource, opts: UploadOptions): Promise<UploadedMedia> {
  const clock = opts.clock ?? Date.now;
  const fh = await open(source.path, 'r').catch((err: unknown) => {
    throw new MediaUnavailableError(`${source.path} cannot be read (${(err as { code?: string }).code ?? String(err)})`);
  });
  try {
    const size = (await fh.stat()).size;
    if (size !== source.bytes) throw new MediaUnavailableError(`${source.path} changed since enqueue (${source.bytes} bytes then, ${size} now)`);
    const hash = createHash('sha256');
    /** Read `length` bytes at `position` into `into` at `offset`, feeding the hash; the file must still hold them. */
    const readInto = async (into: Buffer, offset: number, length: number, position: number) => {
      const { bytesRead } = await fh.read(into, offset, length, position);
      if (bytesRead !== length) throw new MediaUnavailableError(`${source.path} changed since enqueue (shorter than ${source.bytes} bytes)`);
      hash.update(into.subarray(offset, offset + length));
    };
    const checkHash = () => {
      const got = hash.digest('hex');
      if (source.sha256 && got !== source.sha256) throw new MediaUnavailableError(`${source.path} changed since enqueue (its content hash differs)`);
    };

    if (!isChunked(source.type)) {
      const form = multipart({ media_category: categoryOf(source.type, source.dm), media_type: source.type }, size);
      await readInto(form.body, form.offset, size, 0);
      checkHash();
      const res = await opts.call('media upload', () => client.v2.post<MediaUploadBody>('media/upload', form.body, raw(form.contentType)));
      return uploaded(res, size, 1, clock());
    }

    const init = await opts.call('media initialize', () =>
      client.v2.post<MediaUploadBody>('media/upload/initialize', {
        media_category: categoryOf(source.type, source.dm),
        media_type: source.type,
        total_bytes: size,
      }),
    );
    const id = init?.data?.id;
    if (!id) throw new Error('media initialize answered without an id');
    const segment = opts.segmentBytes ?? SEGMENT_BYTES;
    let segments = 0;
    for (let position = 0; position < size; position += segment) {
      const length = Math.min(segment, size - position);
      const form = multipart({ segment_index: String(segments) }, length);
      await readInto(form.body, form.offset, length, position);
      const index = segments;
      await opts.call(`media append ${index}`, () => client.v2.post(`media/upload/${id}/append`, form.body, raw(form.contentType)));
      segments++;
    }
    // The last chance to refuse a changed file: X has the bytes but no usable id yet.
    checkHash();
    let res = await opts.call('media finalize', () => client.v2.post<MediaUploadBody>(`media/upload/${id}/finalize`, Buffer.alloc(0), raw('application/json')));
    for (let state = res?.data?.processing_info?.state; state === 'pending' || state === 'in_progress'; state = res?.data?.processing_info?.state) {
      const wait = Math.max(1, res.data?.processing_info?.check_after_secs ?? 1) * 1000;
      if (clock() + wait > opts.until) throw new ProcessingTimeoutError(id);
      await sleep(wait);
      res = await status(client, id, opts);
    }
    const info = res?.data?.processing_info;
    if (info?.state === 'failed') throw new MediaRejectedError(`processing failed on X: ${info.error?.message ?? info.error?.name ?? 'no reason given'}`);
    return uploaded(res, size, segments, clock(), id);
  } finally {
    await fh.close();
  }
}

/** One status read; a cut answer or a timeout is asked again (reading is safe to repeat). */
async function status(client: TwitterApi, id: string, opts: UploadOptions): Promise<MediaUploadBody> {
  for (let tries = 1; ; tries++) {
    try {
      return await opts.call('media status', () => client.v2.get<MediaUploadBody>('media/upload', { command: 'STATUS', media_id: id }));
    } catch (err) {
      if (tries >= STATUS_TRIES || (err as { code?: number }).code === 400) throw err;
    }
  }
}

function uploaded(res: MediaUploadBody, bytes: number, segments: number, now: number, fallbackId?: string): UploadedMedia {
  const id = res?.data?.id ?? fallbackId;
  if (!id) throw new Error('media upload answered without an id');
  const expiresIn = res?.data?.expires_after_secs ?? 86_400;
  return { mediaId: id, ...(res.data?.media_key && { mediaKey: res.data.media_key }), expiresAt: now + expiresIn * 1000, bytes, segments };
}

/** Processing did not end before the key's deadline: not sent (nothing was created). */
export class ProcessingTimeoutError extends Error {
  override name = 'ProcessingTimeoutError';
  constructor(readonly mediaId: string) {
    super(`media ${mediaId} still processing at the deadline`);
  }
}

/** POST /2/media/metadata: the alt text of an uploaded medium. */
export async function setAltText(client: TwitterApi, mediaId: string, text: string, opts: Pick<UploadOptions, 'call'>): Promise<void> {
  await opts.call('media metadata', () => client.v2.post('media/metadata', { id: mediaId, metadata: { alt_text: { text } } }));
}
