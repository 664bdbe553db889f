import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { HEAD_BYTES, kindOf, MAX_BYTES, MediaUnavailableError, sniff, type MediaType } from '../domain/media.js';

/**
 * A URL medium, fetched by the worker to a temporary file (streamed, never
 * whole in memory) under a size and a time limit, its type read from its
 * first bytes. Any failure is `MediaUnavailableError`: the key fails
 * `media-unavailable` with the reason.
 */
export interface FetchedMedium {
  readonly path: string;
  readonly type: MediaType;
  readonly bytes: number;
  readonly sha256: string;
  /** Remove the temporary file. */
  cleanup(): Promise<void>;
}

export interface FetchLimits {
  /** Whole fetch, headers to last byte. */
  readonly timeoutMs: number;
  /** Past this many bytes the fetch is cut (default: X's largest, a 512 MB video). */
  readonly maxBytes?: number;
}

export async function fetchMedium(url: string, limits: FetchLimits): Promise<FetchedMedium> {
  if (!url.startsWith('https://')) throw new MediaUnavailableError(`${url}: only https URLs are fetched`);
  const maxBytes = limits.maxBytes ?? MAX_BYTES.video;
  const path = join(tmpdir(), `xactly-media-${randomUUID()}`);
  const cleanup = () => rm(path, { force: true });
  // A plain timeout signal, held by this frame to the end (read in the catch):
  // it survives GC (checked under --expose-gc against a hanging server, in
  // both the headers and the body). Not AbortSignal.any([...]): fetch follows
  // a composite weakly and loses its timeout (nodejs/node#55428, deliverer.ts).
  const signal = AbortSignal.timeout(limits.timeoutMs);
  try {
    const res = await fetch(url, { signal, redirect: 'follow' });
    if (!res.ok || !res.body) throw new MediaUnavailableError(`${url}: HTTP ${res.status}`);
    const announced = Number(res.headers.get('content-length') ?? NaN);
    if (announced > maxBytes) throw new MediaUnavailableError(`${url}: ${announced} bytes, more than the ${maxBytes} allowed`);
    const hash = createHash('sha256');
    let bytes = 0;
    let head = Buffer.alloc(0);
    const meter = new Transform({
      transform(chunk: Buffer, _enc, done) {
        bytes += chunk.length;
        if (bytes > maxBytes) return done(new MediaUnavailableError(`${url}: more than the ${maxBytes} bytes allowed`));
        if (head.length < HEAD_BYTES) head = Buffer.concat([head, chunk.subarray(0, HEAD_BYTES - head.length)]);
        hash.update(chunk);
        done(null, chunk);
      },
    });
    await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), meter, createWriteStream(path), { signal });
    const type = sniff(head);
    if (!type) throw new MediaUnavailableError(`${url}: not a jpg, png, webp, gif, mp4 or mov file by its content`);
    if (bytes > MAX_BYTES[kindOf(type)]) throw new MediaUnavailableError(`${url}: ${bytes} bytes, more than X takes for ${type}`);
    return { path, type, bytes, sha256: hash.digest('hex'), cleanup };
  } catch (err) {
    await cleanup();
    if (err instanceof MediaUnavailableError) throw err;
    const why = signal.aborted ? `no complete answer within ${limits.timeoutMs} ms` : ((err as { cause?: { code?: string } }).cause?.code ?? String(err));
    throw new MediaUnavailableError(`${url}: ${why}`);
  }
}
