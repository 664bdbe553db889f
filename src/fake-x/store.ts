/**
 * What X holds. Every post and DM as sent (the ground truth `created()`
 * reports, that exactly-once is checked against) and as rendered (what reads
 * return), edits, deletions, suspended users and the app's standing; the
 * clock, the timeline lag that hides new items from reads for a while, and
 * snowflake ids that encode their creation time.
 */
import type { Accounts } from './accounts.js';
import { MediaStore, type AttachedMedium, type MediaOptions, type UploadedMedium } from './media.js';
import { renderBody, renderPost, tcoUrl, type AppendedLink, type RenderedBody, type RenderedPost } from './render.js';

export interface CreatedItem {
  kind: 'post' | 'dm';
  id: string;
  authorId: string;
  /** As sent, before X's rewrites. */
  text: string;
  createdAt: number;
  inReplyToTweetId?: string;
  /** The post this one quotes (`quote_tweet_id`). */
  quoteTweetId?: string;
  /** The poll as sent (`poll`). */
  poll?: { options: string[]; durationMinutes: number };
  /** Who may reply, as sent (`reply_settings`); absent: everyone. */
  replySettings?: string;
  recipientId?: string;
  dmConversationId?: string;
  /** The media attached (`media.media_ids`), with the bytes X received for each. */
  media?: AttachedMedium[];
  /** Ids of the versions an edit on X made (`editPost`); still this one post. */
  edits?: string[];
}

export interface StoredPost {
  item: CreatedItem;
  idBig: bigint;
  rendered: RenderedPost;
  conversationId: string;
  inReplyToUserId?: string;
  /** `attachments.media_keys` of a post with media. */
  mediaKeys?: string[];
  /** The t.co link X appended for them. */
  mediaLink?: AppendedLink;
  /** `attachments.poll_ids[0]` of a post with a poll. */
  pollId?: string;
  /** `edit_history_tweet_ids` when edited: the original id first, this version last. */
  editHistory?: string[];
  /** When a later version replaced this one on the timeline. */
  supersededAt?: number;
}

export interface StoredDm {
  item: CreatedItem;
  idBig: bigint;
  rendered: RenderedBody;
  participants: [string, string];
  /** `attachments.media_keys` of a DM with a medium. */
  mediaKeys?: string[];
}

/** A medium as ground truth keeps it on the post or DM it went out with. */
function attachedOf(m: UploadedMedium): AttachedMedium {
  return {
    mediaId: m.id,
    mediaKey: m.mediaKey,
    mediaType: m.mediaType,
    bytes: m.receivedBytes,
    ...(m.sha256 && { sha256: m.sha256 }),
    ...(m.altText !== undefined && { altText: m.altText }),
  };
}

/** A DM body with X's media link after its text (a media-only DM is the link alone). */
function withAppendedLink(body: RenderedBody, link: AppendedLink): RenderedBody {
  const gap = body.text === '' ? '' : ' ';
  const start = Array.from(body.text).length + gap.length;
  return {
    text: `${body.text}${gap}${link.tco}`,
    urls: [
      ...body.urls,
      {
        start,
        end: start + Array.from(link.tco).length,
        url: link.tco,
        expanded_url: link.expanded,
        display_url: link.display ?? link.expanded,
        ...(link.mediaKey && { media_key: link.mediaKey }),
      },
    ],
  };
}

/** What a post carries beyond its text and reply target. */
export interface PostExtras {
  quote?: StoredPost;
  poll?: { options: string[]; durationMinutes: number };
  replySettings?: string;
  media?: UploadedMedium[];
}

export interface StoreOptions extends MediaOptions {
  clock?: () => number;
  timelineLagMs?: number;
  duplicateContentCheck?: boolean;
}

const DAY_MS = 24 * 60 * 60 * 1000;
/** Timelines reach back this many posts, no further. */
const TIMELINE_REACH = 3200;
/** Twitter's snowflake epoch; ids embed their creation time like real ones. */
const SNOWFLAKE_EPOCH = 1288834974657n;

export class Store {
  readonly now: () => number;
  private timelineLagMs: number;
  private duplicateCheck: boolean;
  private readonly posts: StoredPost[] = [];
  private readonly postsById = new Map<string, StoredPost>();
  private readonly dms: StoredDm[] = [];
  private readonly createdLog: CreatedItem[] = [];
  private readonly deleted = new Set<string>();
  private readonly suspended = new Set<string>();
  private appForbidden = false;
  private lastId = 0n;
  private tcoCounter = 0;
  /** Uploads and their ids (media.ts). */
  readonly media: MediaStore;

  constructor(
    private readonly accounts: Accounts,
    opts: StoreOptions,
  ) {
    this.now = opts.clock ?? Date.now;
    this.timelineLagMs = opts.timelineLagMs ?? 0;
    this.duplicateCheck = opts.duplicateContentCheck ?? true;
    this.media = new MediaStore(this.now, (at) => this.nextId(at), opts);
  }

  /** Ground truth: copies of every post and DM that took effect, in order. */
  created(): CreatedItem[] {
    return this.createdLog.map((i) => ({ ...i }));
  }

  setTimelineLag(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw new Error(`timeline lag must be >= 0, got ${ms}`);
    this.timelineLagMs = ms;
  }

  setDuplicateContentCheck(on: boolean): void {
    this.duplicateCheck = on;
  }

  deletePost(id: string): void {
    this.deleted.add(id);
  }

  suspend(userId: string): void {
    this.suspended.add(userId);
  }

  isSuspended(userId: string): boolean {
    return this.suspended.has(userId);
  }

  /** X refuses the whole app (client-not-enrolled) while forbidden. */
  setAppForbidden(on: boolean): void {
    this.appForbidden = on;
  }

  isAppForbidden(): boolean {
    return this.appForbidden;
  }

  /** A post that can still be replied to: any version, unless deleted. */
  replyTarget(id: string): StoredPost | undefined {
    return this.deleted.has(id) ? undefined : this.postsById.get(id);
  }

  /** X's duplicate-content rule (when on): the same text by the same author within 24 hours. */
  isDuplicate(authorId: string, text: string, now: number): boolean {
    // A media-only post has no text to repeat.
    if (!this.duplicateCheck || text.trim() === '') return false;
    return this.posts.some((p) => p.item.authorId === authorId && p.item.text === text && p.item.createdAt > now - DAY_MS);
  }

  addPost(authorId: string, target: StoredPost | undefined, text: string, at: number, extras: PostExtras = {}): StoredPost {
    const idBig = this.nextId(at);
    const id = idBig.toString();
    const mediaLink = extras.media ? this.mediaLink(authorId, id, extras.media) : undefined;
    const rendered = this.renderTweet(authorId, target, text, extras.quote, mediaLink);
    const item: CreatedItem = { kind: 'post', id, authorId, text, createdAt: at };
    if (extras.media) item.media = extras.media.map(attachedOf);
    if (target) item.inReplyToTweetId = target.item.id;
    if (extras.quote) item.quoteTweetId = extras.quote.item.id;
    if (extras.poll) item.poll = { options: [...extras.poll.options], durationMinutes: extras.poll.durationMinutes };
    if (extras.replySettings) item.replySettings = extras.replySettings;
    const stored: StoredPost = { item, idBig, rendered, conversationId: target?.conversationId ?? id };
    if (target) stored.inReplyToUserId = target.item.authorId;
    if (extras.poll) stored.pollId = this.nextId(at).toString();
    if (extras.media) stored.mediaKeys = extras.media.map((m) => m.mediaKey);
    if (mediaLink) stored.mediaLink = mediaLink;
    this.posts.push(stored);
    this.postsById.set(id, stored);
    this.createdLog.push(item);
    return stored;
  }

  /**
   * Edit a post as its author would on X: a new version with a new id and
   * the edit history (original first) replaces the old one on the timeline.
   * Ground truth still counts one post, its `edits` listing the new ids.
   */
  editPost(id: string, newText: string): { id: string; editHistoryIds: string[] } {
    const old = this.postsById.get(id);
    if (!old || old.supersededAt !== undefined) throw new Error(`fake X: no current post ${id} to edit`);
    const at = this.now();
    const idBig = this.nextId(at);
    const newId = idBig.toString();
    const history = [...(old.editHistory ?? [old.item.id]), newId];
    const target = old.item.inReplyToTweetId ? this.postsById.get(old.item.inReplyToTweetId) : undefined;
    const quote = old.item.quoteTweetId ? this.postsById.get(old.item.quoteTweetId) : undefined;
    const { edits: _edits, ...rest } = old.item;
    const item: CreatedItem = { ...rest, id: newId, text: newText, createdAt: at };
    const stored: StoredPost = {
      item,
      idBig,
      rendered: this.renderTweet(old.item.authorId, target, newText, quote, old.mediaLink),
      conversationId: old.conversationId,
      editHistory: history,
    };
    if (old.inReplyToUserId) stored.inReplyToUserId = old.inReplyToUserId;
    if (old.pollId) stored.pollId = old.pollId;
    if (old.mediaKeys) stored.mediaKeys = old.mediaKeys;
    if (old.mediaLink) stored.mediaLink = old.mediaLink;
    old.supersededAt = at;
    this.posts.push(stored);
    this.postsById.set(newId, stored);
    const original = this.createdLog.find((c) => c.kind === 'post' && c.id === history[0]);
    if (original) original.edits = [...(original.edits ?? []), newId];
    return { id: newId, editHistoryIds: [...history] };
  }

  /** A user's timeline at `now`, newest first: visible, not deleted, latest versions, within X's reach. */
  timeline(userId: string, now: number): StoredPost[] {
    return (
      this.posts
        .filter((p) => p.item.authorId === userId && !this.deleted.has(p.item.id) && this.visible(p.item.createdAt, now))
        // An edited post shows its latest version only, once that is visible.
        .filter((p) => !(p.supersededAt !== undefined && this.visible(p.supersededAt, now)))
        .sort((a, b) => compareBig(b.idBig, a.idBig))
        .slice(0, TIMELINE_REACH)
    );
  }

  addDm(senderId: string, recipientId: string, text: string, at: number, media?: UploadedMedium[]): StoredDm {
    const idBig = this.nextId(at);
    const id = idBig.toString();
    const participants = conversationParticipants(senderId, recipientId);
    const dmConversationId = participants.join('-');
    // DMs get t.co links and HTML escaping like posts; a medium, its t.co link after the text and attachments.media_keys.
    const body = renderBody(text, { escape: true, nextTco: () => this.nextTco() });
    const rendered = media ? withAppendedLink(body, { ...this.mediaLink(senderId, id, media), expanded: `https://x.com/messages/media/${id}` }) : body;
    const item: CreatedItem = { kind: 'dm', id, authorId: senderId, text, createdAt: at, recipientId, dmConversationId };
    if (media) item.media = media.map(attachedOf);
    const dm: StoredDm = { item, idBig, rendered, participants, ...(media && { mediaKeys: media.map((m) => m.mediaKey) }) };
    this.dms.push(dm);
    this.createdLog.push(item);
    return dm;
  }

  /** The visible DMs between two users at `now`, newest first. */
  conversation(userId: string, otherId: string, now: number): StoredDm[] {
    const pair = conversationParticipants(userId, otherId).join('-');
    return this.dms.filter((d) => d.item.dmConversationId === pair && this.visible(d.item.createdAt, now)).sort((a, b) => compareBig(b.idBig, a.idBig));
  }

  private visible(createdAt: number, now: number): boolean {
    return createdAt + this.timelineLagMs <= now;
  }

  /**
   * A reply to someone else gets their `@handle ` as hidden prefix; any
   * reply folds its own leading @handles. A quote gets a t.co link to the
   * quoted post (on twitter.com, as X expands it) after the displayed text.
   */
  private renderTweet(authorId: string, target: StoredPost | undefined, text: string, quote?: StoredPost, mediaLink?: AppendedLink): RenderedPost {
    const targetAuthor = target ? this.accounts.get(target.item.authorId) : undefined;
    const prefix = targetAuthor && targetAuthor.userId !== authorId ? `@${targetAuthor.username} ` : '';
    const body = renderBody(text, { escape: true, nextTco: () => this.nextTco() });
    const quoted = quote ? this.accounts.get(quote.item.authorId) : undefined;
    const appended = quote ? { tco: this.nextTco(), expanded: `https://twitter.com/${quoted?.username ?? 'i/web'}/status/${quote.item.id}` } : mediaLink;
    return renderPost(body, prefix, target !== undefined, appended);
  }

  /** The one t.co link X appends for a post's media: to the post's first photo or video, shown as pic.x.com/…, with its media_key. */
  private mediaLink(authorId: string, postId: string, media: UploadedMedium[]): AppendedLink {
    const first = media[0]!;
    const tco = this.nextTco();
    const what = first.mediaType.startsWith('video/') ? 'video' : 'photo';
    const user = this.accounts.get(authorId)?.username ?? 'i/web';
    return { tco, expanded: `https://x.com/${user}/status/${postId}/${what}/1`, display: `pic.x.com/${tco.slice(-10)}`, mediaKey: first.mediaKey };
  }

  /**
   * Snowflake-shaped so ids both increase and decode to their creation time,
   * like X's; bumped by one when the clock stalls or goes backwards.
   */
  private nextId(now: number): bigint {
    const fromClock = (BigInt(Math.floor(now)) - SNOWFLAKE_EPOCH) << 22n;
    this.lastId = fromClock > this.lastId ? fromClock : this.lastId + 1n;
    return this.lastId;
  }

  private nextTco(): string {
    return tcoUrl(++this.tcoCounter);
  }
}

/** The two users of a DM conversation in numeric order (string sort would put "10" before "9"). */
function conversationParticipants(a: string, b: string): [string, string] {
  return [a, b].sort((x, y) => compareBig(BigInt(x), BigInt(y))) as [string, string];
}

function compareBig(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
