/**
 * The two creates, POST /2/tweets and POST /2/dm_conversations/with/:id/messages,
 * in two steps: `prepare*` checks the request as X does (throwing X's
 * refusal) and returns a write that takes effect only when committed, so a
 * fault can strike before or after the commit.
 */
import twitterText from 'twitter-text';
import { DEFAULT_TEXT_LENGTH, type FakeAccount } from './accounts.js';
import { isNumericId } from './lookup.js';
import {
  DELETED_QUOTE_DETAIL,
  DELETED_TARGET_DETAIL,
  DM_REFUSED_DETAIL,
  DUPLICATE_DETAIL,
  RESTRICTED_REPLY_DETAIL,
  TEXT_TOO_LONG,
  forbidden,
  invalidRequest,
} from './problems.js';
import type { Store, StoredPost } from './store.js';

export interface PreparedWrite {
  /** The text sent (what a fault's `match.text` is compared with). */
  text: string;
  /** Make the write take effect at `at`; returns the 201 body. */
  commit(at: number): unknown;
}

export interface WritePolicy {
  /** Self-serve tiers since 2026-02-23: a reply to another account's post needs a mention by that post. */
  replyRestriction: boolean;
  /** User ids whose settings refuse DMs. */
  refusesDms: ReadonlySet<string>;
}

export class Writes {
  constructor(
    private readonly store: Store,
    private readonly policy: WritePolicy,
  ) {}

  preparePost(author: FakeAccount, body: Record<string, unknown>, now: number): PreparedWrite {
    const mediaIds = (body.media as { media_ids?: unknown } | undefined)?.media_ids;
    const media = body.media === undefined ? undefined : this.store.media.attachable(author.userId, mediaIds, now);
    const text = body.text ?? (media ? '' : undefined);
    if (typeof text !== 'string' || (text.trim() === '' && !media)) {
      // X refuses a post without content; whitespace-only text is no content.
      throw invalidRequest('Post text must not be empty.', 'text');
    }
    if (media && (body.poll !== undefined || body.quote_tweet_id !== undefined))
      throw invalidRequest('media is mutually exclusive with poll and quote_tweet_id.', 'media');
    // X weighs the text as sent (twitter-text: a URL counts 23); over the author's limit it refuses the post.
    if (twitterText.parseTweet(text).weightedLength > (author.textLength ?? DEFAULT_TEXT_LENGTH)) throw invalidRequest(TEXT_TOO_LONG, 'text');
    const poll = body.poll === undefined ? undefined : pollOf(body.poll);
    if (poll && body.quote_tweet_id !== undefined) throw invalidRequest('poll and quote_tweet_id are mutually exclusive.', 'poll');
    const replySettings = replySettingsOf(body.reply_settings);
    const target = body.reply === undefined ? undefined : this.replyTarget(author, body.reply);
    const quote = body.quote_tweet_id === undefined ? undefined : this.quoteTarget(body.quote_tweet_id);
    if (this.store.isDuplicate(author.userId, text, now)) throw forbidden(DUPLICATE_DETAIL);
    const extras = { ...(quote && { quote }), ...(poll && { poll }), ...(replySettings && { replySettings }), ...(media && { media }) };
    return {
      text,
      commit: (at) => {
        const { item, rendered } = this.store.addPost(author.userId, target, text, at, extras);
        return { data: { id: item.id, text: rendered.text, edit_history_tweet_ids: [item.id] } };
      },
    };
  }

  prepareDm(sender: FakeAccount, participantId: string, body: Record<string, unknown>, now: number): PreparedWrite {
    if (!isNumericId(participantId)) throw invalidRequest(`The \`participant_id\` value [${participantId}] is not valid`, 'participant_id');
    if (participantId === sender.userId) throw invalidRequest('You cannot send a direct message to yourself.', 'participant_id');
    if (this.policy.refusesDms.has(participantId)) throw forbidden(DM_REFUSED_DETAIL);
    const attachments = body.attachments;
    const ids = Array.isArray(attachments) ? attachments.map((a) => (a as { media_id?: unknown } | null)?.media_id) : attachments;
    const media = attachments === undefined ? undefined : this.store.media.attachable(sender.userId, ids, now, true);
    const text = body.text ?? (media ? '' : undefined);
    if (typeof text !== 'string' || (text.trim() === '' && !media)) throw invalidRequest('Message text must not be empty.', 'text');
    return {
      text,
      commit: (at) => {
        const { item } = this.store.addDm(sender.userId, participantId, text, at, media);
        return { data: { dm_conversation_id: item.dmConversationId, dm_event_id: item.id } };
      },
    };
  }

  /** The post `reply.in_reply_to_tweet_id` names, if the author may reply to it. */
  private replyTarget(author: FakeAccount, reply: unknown): StoredPost {
    const targetId = (reply as { in_reply_to_tweet_id?: unknown } | null)?.in_reply_to_tweet_id;
    if (typeof targetId !== 'string' || !isNumericId(targetId)) {
      throw invalidRequest('reply.in_reply_to_tweet_id must be a numeric string.', 'reply.in_reply_to_tweet_id');
    }
    const target = this.store.replyTarget(targetId);
    if (!target) throw forbidden(DELETED_TARGET_DETAIL);
    // The 2026 rule: the author of the post replied to engaged the account (a mention or a quote of its post); self-replies (threads) pass.
    const mentioned = target.item.text.includes(`@${author.username}`);
    const quotedAuthor = target.item.quoteTweetId ? this.store.replyTarget(target.item.quoteTweetId)?.item.authorId : undefined;
    const engaged = mentioned || quotedAuthor === author.userId;
    if (this.policy.replyRestriction && target.item.authorId !== author.userId && !engaged) throw forbidden(RESTRICTED_REPLY_DETAIL);
    return target;
  }

  /** The post `quote_tweet_id` names, if it can be quoted (exists, not deleted). */
  private quoteTarget(id: unknown): StoredPost {
    if (typeof id !== 'string' || !isNumericId(id)) throw invalidRequest('quote_tweet_id must be a numeric string.', 'quote_tweet_id');
    const quoted = this.store.replyTarget(id);
    if (!quoted) throw forbidden(DELETED_QUOTE_DETAIL);
    return quoted;
  }
}

/** `poll` as X checks it: 2–4 options of 1–25 characters, 5–10,080 minutes. */
function pollOf(raw: unknown): { options: string[]; durationMinutes: number } {
  const p = (typeof raw === 'object' && raw !== null ? raw : {}) as { options?: unknown; duration_minutes?: unknown };
  const options = p.options;
  if (!Array.isArray(options) || options.length < 2 || options.length > 4) throw invalidRequest('poll.options must have 2 to 4 options.', 'poll.options');
  for (const o of options as unknown[]) {
    if (typeof o !== 'string' || [...o].length < 1 || [...o].length > 25) throw invalidRequest('Each poll option must be 1 to 25 characters.', 'poll.options');
  }
  const minutes = p.duration_minutes;
  if (typeof minutes !== 'number' || !Number.isInteger(minutes) || minutes < 5 || minutes > 10_080) {
    throw invalidRequest('poll.duration_minutes must be between 5 and 10080.', 'poll.duration_minutes');
  }
  return { options: options as string[], durationMinutes: minutes };
}

const REPLY_SETTINGS = new Set(['following', 'mentionedUsers', 'subscribers', 'verified']);

function replySettingsOf(raw: unknown): string | undefined {
  if (raw === undefined) return undefined;
  if (typeof raw !== 'string' || !REPLY_SETTINGS.has(raw)) {
    throw invalidRequest(`reply_settings must be one of [${[...REPLY_SETTINGS].join(', ')}].`, 'reply_settings');
  }
  return raw;
}
