/**
 * What the worker and the reconciler need from X, and nothing more. The real
 * implementation speaks twitter-api-v2; benchmarks use an in-process one.
 * Methods throw on failure; `classifyXError` decides what a throw means.
 */
export interface CreatedPost {
  readonly id: string;
  /** X's rate-limit headers on the answer; reset in epoch ms. */
  readonly rateLimit?: { readonly remaining: number; readonly reset: number };
}

export interface TimelineTweet {
  readonly id: string;
  readonly text: string;
  readonly createdAt?: string;
  readonly urls?: readonly { start: number; end: number; url: string; expandedUrl?: string }[];
  readonly displayTextRange?: readonly [number, number];
  readonly inReplyToTweetId?: string;
  readonly noteText?: string;
}

export interface DmEvent {
  readonly id: string;
  readonly text: string;
  readonly createdAt?: string;
  readonly senderId?: string;
  /** Sent by the account itself (not by the participant). */
  readonly fromSelf: boolean;
  readonly urls?: readonly { start: number; end: number; url: string; expandedUrl?: string }[];
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
