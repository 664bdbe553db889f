import type { SeenItem, SeenUrl } from '../domain/match.js';
import type { LimitHeaders } from '../domain/outcome.js';
import type { PostExtras } from '../domain/request.js';
import type { MediaSource, UploadedMedia } from './upload.js';

export type { MediaSource, UploadedMedia };

/**
 * What the worker and the reconciler need from X, and nothing more. The real
 * implementation speaks twitter-api-v2; benchmarks use an in-process one.
 * Methods throw on failure; `classifyXError` (x/classify.ts) decides what a throw means.
 */
export interface CreatedPost {
  readonly id: string;
  /** X's limit headers on the answer (`x-rate-limit-*`, `x-user-limit-24hour-*`, `x-app-limit-24hour-*`). */
  readonly limits?: LimitHeaders;
}

/** A t.co link as X reports it (`entities.urls[]`); indices in code points. */
export interface UrlEntity extends SeenUrl {
  readonly start: number;
  readonly end: number;
}

/** A post as the adapter reads it from a timeline: what the matcher sees (domain/match.ts), its links with their indices. */
export interface TimelineTweet extends Omit<SeenItem, 'urls' | 'noteUrls'> {
  readonly urls?: readonly UrlEntity[];
  readonly noteUrls?: readonly UrlEntity[];
}

export interface DmEvent {
  readonly id: string;
  readonly text: string;
  readonly createdAt?: string;
  readonly senderId?: string;
  /** Sent by the account itself (not by the participant). */
  readonly fromSelf: boolean;
  readonly urls?: readonly UrlEntity[];
  /** `attachments.media_keys`: the message's medium. */
  readonly mediaKeys?: readonly string[];
}

export interface Page<T> {
  readonly items: readonly T[];
  readonly nextToken?: string;
}

export interface TimelineQuery {
  readonly startTime?: string;
  readonly sinceId?: string;
  readonly maxResults?: number;
  readonly paginationToken?: string;
}

/** A post to create: its text, the post it replies to, and its extras (domain/request.ts `PostExtras`). */
export interface PostCreate extends PostExtras {
  readonly text: string;
  readonly inReplyToTweetId?: string;
  /** Uploaded media to attach (`media.media_ids`); `media` (the refs) is not sent. */
  readonly mediaIds?: readonly string[];
}

export interface XPort {
  createPost(accountId: string, post: PostCreate): Promise<CreatedPost>;
  /** A DM; returns the DM event id as `id`. `mediaIds`: its uploaded medium (`attachments`), the text may then be empty. */
  sendDm(accountId: string, dm: { recipientId: string; text: string; mediaIds?: readonly string[] }): Promise<CreatedPost>;
  /**
   * Upload one medium (streamed from its file; an adapter without it takes
   * no media). Nothing is published by it: a failure is never in doubt.
   * `until`: no status poll starts after it (the key's deadline).
   */
  uploadMedia?(accountId: string, source: MediaSource, opts: { until: number }): Promise<UploadedMedia>;
  /** Alt text for an uploaded medium (POST /2/media/metadata). */
  setAltText?(accountId: string, mediaId: string, text: string): Promise<void>;
  /** One page of the account's own timeline, newest first. */
  timeline(accountId: string, query: TimelineQuery): Promise<Page<TimelineTweet>>;
  /** One page of the DM events between the account and a participant, newest first. */
  dmEvents(accountId: string, participantId: string, query: { maxResults?: number; paginationToken?: string }): Promise<Page<DmEvent>>;
}
