import type { LimitHeaders } from '../domain/outcome.js';

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
export interface UrlEntity {
  readonly start: number;
  readonly end: number;
  readonly url: string;
  readonly expandedUrl?: string;
  readonly displayUrl?: string;
  /** Set on the link X appends for attached media. */
  readonly mediaKey?: string;
}

export interface TimelineTweet {
  readonly id: string;
  readonly text: string;
  readonly createdAt?: string;
  readonly urls?: readonly UrlEntity[];
  readonly displayTextRange?: readonly [number, number];
  readonly inReplyToTweetId?: string;
  /** The post this one quotes (`referenced_tweets` type `quoted`). */
  readonly quotedTweetId?: string;
  /** A long post's whole text (`note_tweet.text`) and its links. */
  readonly noteText?: string;
  readonly noteUrls?: readonly UrlEntity[];
  /** `edit_history_tweet_ids`: the original id first, this version last. */
  readonly editHistoryIds?: readonly string[];
}

export interface DmEvent {
  readonly id: string;
  readonly text: string;
  readonly createdAt?: string;
  readonly senderId?: string;
  /** Sent by the account itself (not by the participant). */
  readonly fromSelf: boolean;
  readonly urls?: readonly UrlEntity[];
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

export interface XPort {
  createPost(accountId: string, post: { text: string; inReplyToTweetId?: string }): Promise<CreatedPost>;
  /** Returns the DM event id as `id`. */
  sendDm(accountId: string, dm: { recipientId: string; text: string }): Promise<CreatedPost>;
  /** One page of the account's own timeline, newest first. */
  timeline(accountId: string, query: TimelineQuery): Promise<Page<TimelineTweet>>;
  /** One page of the DM events between the account and a participant, newest first. */
  dmEvents(accountId: string, participantId: string, query: { maxResults?: number; paginationToken?: string }): Promise<Page<DmEvent>>;
}
