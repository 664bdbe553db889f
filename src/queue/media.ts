import { createHash } from 'node:crypto';
import { MediaUnavailableError, mixError, kindOf, uploadFailureOutcome, type MediaKind, type MediaRef } from '../domain/media.js';
import type { XOutcome } from '../domain/outcome.js';
import { extrasOf } from '../domain/request.js';
import type { PostRecord } from '../domain/state.js';
import type { Ledger } from '../ledger/ledger.js';
import { fetchMedium, type FetchedMedium } from '../media/fetch.js';
import { classifyXError } from '../x/classify.js';
import type { MediaSource, XPort } from '../x/port.js';

/**
 * The media of a key's post (a thread's: the part in progress), uploaded
 * before the create. Uploading is not an effect, so everything that goes
 * wrong here is either not sent (upload again, with the usual backoff) or
 * a definitive refusal (processing failed, a URL that cannot be had, a
 * file changed since enqueue). Each upload is remembered per key until X
 * forgets its id, so a later attempt reuses it; each is written to the
 * key's audit trail with the attempt's settle.
 */
export interface MediaDeps {
  readonly ledger: Ledger;
  readonly x: XPort;
  readonly clock: () => number;
  /** Fetch limits for URL media. */
  readonly urlFetchTimeoutMs?: number;
  readonly urlFetchMaxBytes?: number;
}

export type PreparedMedia =
  | { readonly ok: true; readonly mediaIds: string[]; readonly contentIds: string[]; readonly events: Record<string, unknown>[] }
  | { readonly ok: false; readonly outcome: Exclude<XOutcome, { kind: 'sent' }>; readonly events: Record<string, unknown>[] };

/** An id reused must outlive the create by this much. */
const REUSE_MARGIN_MS = 60_000;
const DEFAULT_URL_TIMEOUT_MS = 60_000;

/** The media the record's next create carries. */
export function mediaOf(r: PostRecord): readonly MediaRef[] {
  return extrasOf(r).media ?? [];
}

/** What identifies one medium of one part, for reuse: its place and its content (a URL's by itself). */
export function contentIdsOf(r: PostRecord): string[] {
  const part = r.partIndex ?? 0;
  return mediaOf(r).map(
    (m, i) =>
      `${part}.${i}.${(
        m.sha256 ??
        createHash('sha256')
          .update(m.url ?? m.path ?? '')
          .digest('hex')
      ).slice(0, 32)}`,
  );
}

export async function prepareMedia(deps: MediaDeps, r: PostRecord): Promise<PreparedMedia> {
  const media = mediaOf(r);
  const events: Record<string, unknown>[] = [];
  const contentIds = contentIdsOf(r);
  if (media.length === 0) return { ok: true, mediaIds: [], contentIds, events };
  const x = deps.x;
  if (!x.uploadMedia) {
    return { ok: false, outcome: { kind: 'rejected', cause: 'media-rejected: this X adapter does not upload media', scope: 'post' }, events };
  }
  const part = r.parts ? { part: (r.partIndex ?? 0) + 1 } : {};
  const reusable = await deps.ledger.mediaUploads(r.keyId, contentIds, deps.clock() + REUSE_MARGIN_MS);
  const mediaIds: string[] = [];
  const fetched: FetchedMedium[] = [];
  try {
    const kinds: MediaKind[] = [];
    for (const [i, m] of media.entries()) {
      const note = reusable[i];
      if (note) {
        mediaIds.push(note.mediaId);
        events.push({ event: 'media-reused', ...part, index: i, mediaId: note.mediaId, expiresAt: note.expiresAt });
        continue;
      }
      const source = { ...(await sourceOf(m, deps, fetched)), ...(r.kind === 'dm' && { dm: true }) };
      kinds.push(kindOf(source.type));
      if (m.url) {
        // A URL's type is known only now: X's combination rule once more.
        const mix = mixError(kinds, media.length);
        if (mix) throw new MediaUnavailableError(`media[${i}] ${m.url}: the post ${mix}`);
      }
      const started = deps.clock();
      const up = await x.uploadMedia(r.accountId, source, { until: r.deadline });
      if (m.altText) await x.setAltText?.(r.accountId, up.mediaId, m.altText);
      await deps.ledger.rememberMediaUpload(r.keyId, contentIds[i]!, { mediaId: up.mediaId, expiresAt: up.expiresAt, bytes: up.bytes }, deps.clock());
      mediaIds.push(up.mediaId);
      events.push({
        event: 'media-upload',
        ...part,
        index: i,
        mediaId: up.mediaId,
        expiresAt: up.expiresAt,
        bytes: up.bytes,
        segments: up.segments,
        ms: deps.clock() - started,
      });
    }
    return { ok: true, mediaIds, contentIds, events };
  } catch (err) {
    const outcome = uploadFailureOutcome(classifyXError(err, deps.clock()));
    events.push({ event: 'media-upload-failed', ...part, index: mediaIds.length, outcome: outcome.kind, cause: outcome.cause });
    return { ok: false, outcome: outcome as Exclude<XOutcome, { kind: 'sent' }>, events };
  } finally {
    await Promise.all(fetched.map((f) => f.cleanup()));
  }
}

/** Forget a key's uploads (X refused their ids): the next attempt uploads again. */
export async function forgetMedia(ledger: Ledger, r: PostRecord, now: number): Promise<void> {
  await Promise.all(contentIdsOf(r).map((c) => ledger.rememberMediaUpload(r.keyId, c, undefined, now)));
}

async function sourceOf(m: MediaRef, deps: MediaDeps, fetched: FetchedMedium[]): Promise<MediaSource> {
  if (m.path !== undefined && m.type && m.bytes !== undefined) return { path: m.path, type: m.type, bytes: m.bytes, ...(m.sha256 && { sha256: m.sha256 }) };
  if (m.url === undefined) throw new MediaUnavailableError('a medium without a path or a URL');
  const f = await fetchMedium(m.url, {
    timeoutMs: deps.urlFetchTimeoutMs ?? DEFAULT_URL_TIMEOUT_MS,
    ...(deps.urlFetchMaxBytes && { maxBytes: deps.urlFetchMaxBytes }),
  });
  fetched.push(f);
  return { path: f.path, type: f.type, bytes: f.bytes, sha256: f.sha256 };
}

/**
 * Uploads in flight per account in this process: one account's video must
 * not take every worker slot. A job over the cap steps aside (delayed,
 * without a claim and without holding its slot).
 */
export class UploadSlots {
  private readonly inFlight = new Map<string, number>();
  constructor(readonly perAccount: number) {}

  tryTake(accountId: string): boolean {
    const n = this.inFlight.get(accountId) ?? 0;
    if (n >= this.perAccount) return false;
    this.inFlight.set(accountId, n + 1);
    return true;
  }

  release(accountId: string): void {
    const n = (this.inFlight.get(accountId) ?? 1) - 1;
    if (n <= 0) this.inFlight.delete(accountId);
    else this.inFlight.set(accountId, n);
  }
}
