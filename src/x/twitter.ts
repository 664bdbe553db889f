import http from 'node:http';
import https from 'node:https';
import { ApiResponseError, TwitterApi, type ITwitterApiClientPlugin } from 'twitter-api-v2';
import { MediaExpiredError } from '../domain/media.js';
import { MissingIdError, NotSentError, UnknownAccountError } from '../domain/outcome.js';
import type { Account, CredentialStore } from './credentials.js';
import { deadlineFor, withDeadline } from './deadline.js';
import { baseUrlPlugin } from './plugin.js';
import { RefreshUnavailableError, type TokenRefresher } from './refresh.js';
import type { CreatedPost, DmEvent, MediaSource, Page, PostCreate, TimelineQuery, TimelineTweet, UploadedMedia, XPort } from './port.js';
import { setAltText, uploadMedia } from './upload.js';

export interface TwitterXPortOptions {
  readonly credentials: CredentialStore;
  /** Where X lives (`X_API_BASE_URL`); the client appends `/2/...`. */
  readonly baseUrl: string;
  /**
   * Hard deadline of every call to X (and its socket timeout): past it the
   * socket is destroyed and the call fails, whatever the library waits for.
   */
  readonly timeoutMs: number;
  /** Refreshes expiring OAuth 2.0 tokens; without it a refused token is an account error. */
  readonly refresher?: TokenRefresher;
}

export { baseUrlPlugin };

const isUnauthorized = (err: unknown) => err instanceof ApiResponseError && err.code === 401;

interface RawUrlEntity {
  start: number;
  end: number;
  url: string;
  expanded_url?: string;
  display_url?: string;
  media_key?: string;
}
const urlsOf = (entities: { urls?: RawUrlEntity[] } | undefined) =>
  entities?.urls?.map((u) => ({
    start: u.start,
    end: u.end,
    url: u.url,
    expandedUrl: u.expanded_url,
    ...(u.display_url !== undefined && { displayUrl: u.display_url }),
    ...(u.media_key !== undefined && { mediaKey: u.media_key }),
  }));

/** One entry of X's timeline `data[]`, as far as reconciliation reads it. */
export interface RawTweet {
  id: string;
  text: string;
  created_at?: string;
  entities?: { urls?: RawUrlEntity[] };
  display_text_range?: [number, number];
  referenced_tweets?: { type: string; id: string }[];
  attachments?: { poll_ids?: string[]; media_keys?: string[] };
  note_tweet?: { text?: string; entities?: { urls?: RawUrlEntity[] } };
  edit_history_tweet_ids?: string[];
  /** The same fields in spec 2.167's names. */
  referenced_posts?: { type: string; id: string }[];
  note_post?: { text?: string; entities?: { urls?: RawUrlEntity[] } };
  edit_history_post_ids?: string[];
}

/** Which names X's timeline speaks: spec 2.159's (`tweet.fields`, what clients send today) or 2.167's (`post.fields`). */
export type FieldNames = '2.159' | '2.167';

const TIMELINE_FIELDS: Record<FieldNames, Record<string, string>> = {
  '2.159': { 'tweet.fields': 'created_at,entities,display_text_range,referenced_tweets,note_tweet,edit_history_tweet_ids,attachments' },
  // References and the edit history are default fields in 2.167.
  '2.167': { 'post.fields': 'created_at,entities,display_text_range,note_post,attachments' },
};

/**
 * A 400 that names our fields parameter as unknown means X speaks the other
 * spec's names: which ones to switch to, or undefined for any other error.
 */
export function otherFieldNames(err: unknown, current: FieldNames): FieldNames | undefined {
  if (!(err instanceof ApiResponseError) || err.code !== 400) return undefined;
  const param = Object.keys(TIMELINE_FIELDS[current])[0]!;
  const errors = (err.data as { errors?: { message?: unknown; parameters?: Record<string, unknown> }[] } | undefined)?.errors ?? [];
  const named = errors.some((e) => (e.parameters && param in e.parameters) || (typeof e.message === 'string' && e.message.includes(`[${param}]`)));
  return named ? (current === '2.159' ? '2.167' : '2.159') : undefined;
}

/** X's timeline entry → TimelineTweet (pure; the matcher's tests feed it X-shaped JSON). */
export function timelineTweetOf(t: RawTweet): TimelineTweet {
  return {
    id: t.id,
    text: t.text,
    createdAt: t.created_at,
    urls: urlsOf(t.entities),
    displayTextRange: t.display_text_range,
    inReplyToTweetId: (t.referenced_tweets ?? t.referenced_posts)?.find((r) => r.type === 'replied_to')?.id,
    quotedTweetId: (t.referenced_tweets ?? t.referenced_posts)?.find((r) => r.type === 'quoted')?.id,
    ...(t.attachments?.poll_ids?.length && { pollIds: [...t.attachments.poll_ids] }),
    ...(t.attachments?.media_keys?.length && { mediaKeys: [...t.attachments.media_keys] }),
    noteText: (t.note_tweet ?? t.note_post)?.text,
    noteUrls: urlsOf((t.note_tweet ?? t.note_post)?.entities),
    editHistoryIds: t.edit_history_tweet_ids ?? t.edit_history_post_ids,
  };
}

/** One entry of X's DM events `data[]`. */
export interface RawDmEvent {
  id: string;
  text?: string;
  created_at?: string;
  sender_id?: string;
  entities?: { urls?: RawUrlEntity[] };
  attachments?: { media_keys?: string[] };
}

/** X's DM event → DmEvent, `selfId` being the account's own user id. */
export function dmEventOf(e: RawDmEvent, selfId: string): DmEvent {
  return {
    id: e.id,
    text: e.text ?? '',
    createdAt: e.created_at,
    senderId: e.sender_id,
    fromSelf: e.sender_id === selfId,
    urls: urlsOf(e.entities),
    ...(e.attachments?.media_keys?.length && { mediaKeys: [...e.attachments.media_keys] }),
  };
}

/** The body of POST /2/tweets, in the names of X's spec (TweetCreateRequest). */
export function createBodyOf(post: PostCreate): Record<string, unknown> {
  const media = post.mediaIds && post.mediaIds.length > 0 ? { media_ids: [...post.mediaIds] } : undefined;
  return {
    // A media-only post goes without text.
    ...(!(media && post.text === '') && { text: post.text }),
    ...(media && { media }),
    ...(post.inReplyToTweetId && { reply: { in_reply_to_tweet_id: post.inReplyToTweetId } }),
    ...(post.quoteTweetId && { quote_tweet_id: post.quoteTweetId }),
    ...(post.poll && { poll: { options: [...post.poll.options], duration_minutes: post.poll.durationMinutes } }),
    ...(post.replySettings && { reply_settings: post.replySettings }),
  };
}

interface FullResponse {
  data: unknown;
  headers?: Record<string, string | string[] | undefined>;
}

const LIMIT_HEADER = /^x-(rate-limit|user-limit-24hour|app-limit-24hour)-/;

function createdFrom(
  res: FullResponse,
  pickId: (body: { data?: { id?: string; dm_event_id?: string }; dm_event_id?: string } | undefined) => string | undefined,
): CreatedPost {
  const id = pickId(res?.data as never);
  if (typeof id !== 'string' || id === '') throw new MissingIdError(201);
  const limits = Object.fromEntries(Object.entries(res.headers ?? {}).filter(([name]) => LIMIT_HEADER.test(name)));
  return { id, ...(Object.keys(limits).length > 0 && { limits }) };
}

/** X's 400 for media ids it does not know (expired, or never uploaded): its message, else undefined. */
export function mediaIdsRefused(err: unknown): string | undefined {
  if (!(err instanceof ApiResponseError) || err.code !== 400) return undefined;
  const errors = (err.data as { errors?: { message?: unknown; parameters?: Record<string, unknown> }[] } | undefined)?.errors ?? [];
  // A post names them in media.media_ids, a DM in attachments.
  const e = errors.find((x) => x.parameters && ('media.media_ids' in x.parameters || 'attachments.media_id' in x.parameters));
  return e ? (typeof e.message === 'string' ? e.message : 'media ids refused') : undefined;
}

/** The XPort over the real twitter-api-v2 client, one client per account. */
export class TwitterXPort implements XPort {
  private readonly clients = new Map<string, { client: TwitterApi; account: Account }>();
  private readonly agent: http.Agent;
  private readonly plugin: ITwitterApiClientPlugin;

  /**
   * A little past the socket timeout: a silent socket still ends as a plain
   * timeout; the deadline catches what the socket timeout cannot see (a
   * response that started and never finished).
   */
  private readonly deadlineMs: number;

  constructor(private readonly opts: TwitterXPortOptions) {
    this.deadlineMs = deadlineFor(opts.timeoutMs);
    this.agent = opts.baseUrl.startsWith('http:') ? new http.Agent({ keepAlive: true }) : new https.Agent({ keepAlive: true });
    this.plugin = baseUrlPlugin(opts.baseUrl, opts.timeoutMs);
  }

  /**
   * A client for the account's current credentials. An OAuth 2.0 token that
   * is about to expire is refreshed first (once across all processes).
   */
  private async clientFor(accountId: string): Promise<{ client: TwitterApi; account: Account }> {
    let account = await this.opts.credentials.get(accountId);
    if (!account) throw new UnknownAccountError(accountId);
    if (this.opts.refresher?.due(account)) account = await this.renewBeforeIo(accountId, account.auth.accessToken);
    const cacheKey = `${accountId}\u0000${account.auth.accessToken}`;
    const cached = this.clients.get(cacheKey);
    if (cached) return cached;
    const settings = { httpAgent: this.agent, plugins: [this.plugin] };
    const auth = account.auth;
    const client =
      auth.type === 'oauth1'
        ? new TwitterApi({ appKey: auth.appKey, appSecret: auth.appSecret, accessToken: auth.accessToken, accessSecret: auth.accessSecret }, settings)
        : new TwitterApi(auth.accessToken, settings);
    for (const key of this.clients.keys()) if (key.startsWith(`${accountId}\u0000`)) this.clients.delete(key);
    const entry = { client, account };
    this.clients.set(cacheKey, entry);
    return entry;
  }

  /** Refresh before any byte of the request left: failures here cannot have published. */
  private async renewBeforeIo(accountId: string, stale: string): Promise<Account> {
    try {
      return await this.opts.refresher!.renew(accountId, stale);
    } catch (err) {
      if (err instanceof RefreshUnavailableError) throw new NotSentError(`token-refresh-unavailable: ${err.cause}`);
      throw err;
    }
  }

  /**
   * A publish refused with 401 was not executed. If the account can refresh,
   * renew the token and report "not sent": the key gets a new, fenced attempt
   * with the new token. The publish itself is never replayed here.
   */
  private async publish(accountId: string, call: (client: TwitterApi) => Promise<CreatedPost>): Promise<CreatedPost> {
    const { client, account } = await this.clientFor(accountId);
    try {
      return await withDeadline(this.deadlineMs, 'publish', () => call(client));
    } catch (err) {
      if (!isUnauthorized(err) || !this.opts.refresher?.canRefresh(account)) throw err;
      await this.renewBeforeIo(accountId, account.auth.accessToken);
      throw new NotSentError('http-401: access token expired; refreshed for the next attempt');
    }
  }

  /** Lookups are safe to repeat: after a 401 and a refresh, ask once more. */
  private async lookup<T>(accountId: string, call: (client: TwitterApi, account: Account) => Promise<T>): Promise<T> {
    const { client, account } = await this.clientFor(accountId);
    try {
      return await withDeadline(this.deadlineMs, 'lookup', () => call(client, account));
    } catch (err) {
      if (!isUnauthorized(err) || !this.opts.refresher?.canRefresh(account)) throw err;
      await this.renewBeforeIo(accountId, account.auth.accessToken);
      const again = await this.clientFor(accountId);
      return withDeadline(this.deadlineMs, 'lookup', () => call(again.client, again.account));
    }
  }

  /** Forget cached clients (after credentials changed). */
  reset(): void {
    this.clients.clear();
  }

  async createPost(accountId: string, post: PostCreate): Promise<CreatedPost> {
    const body = createBodyOf(post);
    try {
      return await this.publish(accountId, async (client) => createdFrom(await client.v2.post('tweets', body, { fullResponse: true }), (d) => d?.data?.id));
    } catch (err) {
      const refused = mediaIdsRefused(err);
      if (refused) throw new MediaExpiredError(refused);
      throw err;
    }
  }

  async uploadMedia(accountId: string, source: MediaSource, opts: { until: number }): Promise<UploadedMedia> {
    return this.uploading(accountId, (client) =>
      uploadMedia(client, source, { until: opts.until, call: (what, fn) => withDeadline(this.deadlineMs, what, fn) }),
    );
  }

  async setAltText(accountId: string, mediaId: string, text: string): Promise<void> {
    return this.uploading(accountId, (client) => setAltText(client, mediaId, text, { call: (what, fn) => withDeadline(this.deadlineMs, what, fn) }));
  }

  /** An upload publishes nothing: after a 401 and a refresh it is simply not done yet. */
  private async uploading<T>(accountId: string, call: (client: TwitterApi) => Promise<T>): Promise<T> {
    const { client, account } = await this.clientFor(accountId);
    try {
      return await call(client);
    } catch (err) {
      if (!isUnauthorized(err) || !this.opts.refresher?.canRefresh(account)) throw err;
      await this.renewBeforeIo(accountId, account.auth.accessToken);
      throw new NotSentError('http-401 on a media upload: access token expired; refreshed for the next attempt');
    }
  }

  async sendDm(accountId: string, dm: { recipientId: string; text: string; mediaIds?: readonly string[] }): Promise<CreatedPost> {
    const media = dm.mediaIds && dm.mediaIds.length > 0 ? dm.mediaIds.map((id) => ({ media_id: id })) : undefined;
    const body = { ...(!(media && dm.text === '') && { text: dm.text }), ...(media && { attachments: media }) };
    try {
      // X answers {data:{dm_conversation_id, dm_event_id}} whatever the typing says.
      return await this.publish(accountId, async (client) =>
        createdFrom(
          await client.v2.post(`dm_conversations/with/${dm.recipientId}/messages`, body, { fullResponse: true }),
          (d) => d?.data?.dm_event_id ?? d?.dm_event_id,
        ),
      );
    } catch (err) {
      const refused = mediaIdsRefused(err);
      if (refused) throw new MediaExpiredError(refused);
      throw err;
    }
  }

  /** The timeline's field names as X last accepted them; switched (and kept) when X refuses them. */
  private fieldNames: FieldNames = '2.159';

  get timelineFieldNames(): FieldNames {
    return this.fieldNames;
  }

  async timeline(accountId: string, q: TimelineQuery): Promise<Page<TimelineTweet>> {
    return this.lookup(accountId, async (client, account) => {
      const names = this.fieldNames;
      try {
        return await this.timelinePage(client, account, q, names);
      } catch (err) {
        const other = otherFieldNames(err, names);
        if (!other) throw err;
        this.fieldNames = other;
        return this.timelinePage(client, account, q, other);
      }
    });
  }

  private async timelinePage(client: TwitterApi, account: Account, q: TimelineQuery, names: FieldNames): Promise<Page<TimelineTweet>> {
    const query: Record<string, string | number> = { max_results: q.maxResults ?? 100, ...TIMELINE_FIELDS[names] };
    if (q.startTime) query.start_time = q.startTime;
    if (q.sinceId) query.since_id = q.sinceId;
    if (q.paginationToken) query.pagination_token = q.paginationToken;
    const body = await client.v2.get(`users/${account.userId}/tweets`, query);
    const data = (body?.data ?? []) as RawTweet[];
    return {
      items: data.map(timelineTweetOf),
      nextToken: body?.meta?.next_token,
    };
  }

  async dmEvents(accountId: string, participantId: string, q: { maxResults?: number; paginationToken?: string }): Promise<Page<DmEvent>> {
    return this.lookup(accountId, (client, account) => this.dmPage(client, account, participantId, q));
  }

  private async dmPage(
    client: TwitterApi,
    account: Account,
    participantId: string,
    q: { maxResults?: number; paginationToken?: string },
  ): Promise<Page<DmEvent>> {
    const query: Record<string, string | number> = {
      max_results: q.maxResults ?? 100,
      'dm_event.fields': 'created_at,entities,sender_id,attachments',
    };
    if (q.paginationToken) query.pagination_token = q.paginationToken;
    const body = await client.v2.get(`dm_conversations/with/${participantId}/dm_events`, query);
    const data = (body?.data ?? []) as RawDmEvent[];
    return {
      items: data.map((e) => dmEventOf(e, account.userId)),
      nextToken: body?.meta?.next_token,
    };
  }

  close(): void {
    this.agent.destroy();
    this.opts.refresher?.close();
  }
}
