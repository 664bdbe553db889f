import http from 'node:http';
import https from 'node:https';
import { TwitterApi, type ITwitterApiClientPlugin } from 'twitter-api-v2';
import { MissingIdError, UnknownAccountError } from '../domain/outcome.js';
import type { Account, CredentialStore } from './credentials.js';
import type { CreatedPost, DmEvent, Page, TimelineQuery, TimelineTweet, XPort } from './port.js';

const X_ORIGIN = 'https://api.x.com';

export interface TwitterXPortOptions {
  readonly credentials: CredentialStore;
  /** Where X lives (`X_API_BASE_URL`); the client appends `/2/...`. */
  readonly baseUrl: string;
  /** Socket timeout for every request; twitter-api-v2 has none by default. */
  readonly timeoutMs: number;
}

/**
 * twitter-api-v2 has no base-URL setting: this plugin rewrites each request
 * before OAuth 1.0a signs it, and gives it a timeout.
 */
export function baseUrlPlugin(baseUrl: string, timeoutMs: number): ITwitterApiClientPlugin {
  const base = baseUrl.replace(/\/+$/, '');
  return {
    onBeforeRequestConfig({ params }) {
      if (base !== X_ORIGIN && params.url.startsWith(X_ORIGIN)) params.url = base + params.url.slice(X_ORIGIN.length);
      params.timeout = timeoutMs;
    },
  };
}

interface RawUrlEntity { start: number; end: number; url: string; expanded_url?: string }
const urlsOf = (entities: { urls?: RawUrlEntity[] } | undefined) =>
  entities?.urls?.map((u) => ({ start: u.start, end: u.end, url: u.url, expandedUrl: u.expanded_url }));

interface FullResponse {
  data: unknown;
  rateLimit?: { remaining: number; reset: number };
}

function createdFrom(res: FullResponse, pickId: (body: { data?: { id?: string; dm_event_id?: string }; dm_event_id?: string } | undefined) => string | undefined): CreatedPost {
  const id = pickId(res?.data as never);
  if (typeof id !== 'string' || id === '') throw new MissingIdError(201);
  const rl = res.rateLimit;
  return { id, ...(rl && Number.isFinite(rl.remaining) && Number.isFinite(rl.reset) && { rateLimit: { remaining: rl.remaining, reset: rl.reset * 1000 } }) };
}

/** The XPort over the real twitter-api-v2 client, one client per account. */
export class TwitterXPort implements XPort {
  private readonly clients = new Map<string, { client: TwitterApi; account: Account }>();
  private readonly agent: http.Agent;
  private readonly plugin: ITwitterApiClientPlugin;

  constructor(private readonly opts: TwitterXPortOptions) {
    this.agent = opts.baseUrl.startsWith('http:') ? new http.Agent({ keepAlive: true }) : new https.Agent({ keepAlive: true });
    this.plugin = baseUrlPlugin(opts.baseUrl, opts.timeoutMs);
  }

  private async clientFor(accountId: string): Promise<{ client: TwitterApi; account: Account }> {
    const cached = this.clients.get(accountId);
    if (cached) return cached;
    const account = await this.opts.credentials.get(accountId);
    if (!account) throw new UnknownAccountError(accountId);
    const settings = { httpAgent: this.agent, plugins: [this.plugin] };
    const auth = account.auth;
    const client =
      auth.type === 'oauth1'
        ? new TwitterApi({ appKey: auth.appKey, appSecret: auth.appSecret, accessToken: auth.accessToken, accessSecret: auth.accessSecret }, settings)
        : new TwitterApi(auth.accessToken, settings);
    const entry = { client, account };
    this.clients.set(accountId, entry);
    return entry;
  }

  /** Forget cached clients (after credentials changed). */
  reset(): void {
    this.clients.clear();
  }

  async createPost(accountId: string, post: { text: string; inReplyToTweetId?: string }): Promise<CreatedPost> {
    const { client } = await this.clientFor(accountId);
    const body = { text: post.text, ...(post.inReplyToTweetId && { reply: { in_reply_to_tweet_id: post.inReplyToTweetId } }) };
    return createdFrom(await client.v2.post('tweets', body, { fullResponse: true }), (d) => d?.data?.id);
  }

  async sendDm(accountId: string, dm: { recipientId: string; text: string }): Promise<CreatedPost> {
    const { client } = await this.clientFor(accountId);
    // X answers {data:{dm_conversation_id, dm_event_id}} whatever the typing says.
    const res = await client.v2.post(`dm_conversations/with/${dm.recipientId}/messages`, { text: dm.text }, { fullResponse: true });
    return createdFrom(res, (d) => d?.data?.dm_event_id ?? d?.dm_event_id);
  }

  async timeline(accountId: string, q: TimelineQuery): Promise<Page<TimelineTweet>> {
    const { client, account } = await this.clientFor(accountId);
    const query: Record<string, string | number> = {
      max_results: q.maxResults ?? 100,
      'tweet.fields': 'created_at,entities,display_text_range,referenced_tweets,note_tweet',
    };
    if (q.startTime) query.start_time = q.startTime;
    if (q.sinceId) query.since_id = q.sinceId;
    if (q.paginationToken) query.pagination_token = q.paginationToken;
    const body = await client.v2.get(`users/${account.userId}/tweets`, query);
    const data = (body?.data ?? []) as {
      id: string; text: string; created_at?: string; entities?: { urls?: RawUrlEntity[] };
      display_text_range?: [number, number]; referenced_tweets?: { type: string; id: string }[]; note_tweet?: { text?: string };
    }[];
    return {
      items: data.map((t) => ({
        id: t.id,
        text: t.text,
        createdAt: t.created_at,
        urls: urlsOf(t.entities),
        displayTextRange: t.display_text_range,
        inReplyToTweetId: t.referenced_tweets?.find((r) => r.type === 'replied_to')?.id,
        noteText: t.note_tweet?.text,
      })),
      nextToken: body?.meta?.next_token,
    };
  }

  async dmEvents(accountId: string, participantId: string, q: { maxResults?: number; paginationToken?: string }): Promise<Page<DmEvent>> {
    const { client, account } = await this.clientFor(accountId);
    const query: Record<string, string | number> = {
      max_results: q.maxResults ?? 100,
      'dm_event.fields': 'created_at,entities,sender_id',
    };
    if (q.paginationToken) query.pagination_token = q.paginationToken;
    const body = await client.v2.get(`dm_conversations/with/${participantId}/dm_events`, query);
    const data = (body?.data ?? []) as { id: string; text?: string; created_at?: string; sender_id?: string; entities?: { urls?: RawUrlEntity[] } }[];
    return {
      items: data.map((e) => ({ id: e.id, text: e.text ?? '', createdAt: e.created_at, senderId: e.sender_id, fromSelf: e.sender_id === account.userId, urls: urlsOf(e.entities) })),
      nextToken: body?.meta?.next_token,
    };
  }

  close(): void {
    this.agent.destroy();
  }
}
