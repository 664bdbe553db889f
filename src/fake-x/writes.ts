/**
 * The two creates, POST /2/tweets and POST /2/dm_conversations/with/:id/messages,
 * in two steps: `prepare*` checks the request as X does (throwing X's
 * refusal) and returns a write that takes effect only when committed, so a
 * fault can strike before or after the commit.
 */
import type { FakeAccount } from './accounts.js';
import { isNumericId } from './lookup.js';
import {
  DELETED_TARGET_DETAIL,
  DM_REFUSED_DETAIL,
  DUPLICATE_DETAIL,
  RESTRICTED_REPLY_DETAIL,
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
    const text = body.text;
    if (typeof text !== 'string' || text.trim() === '') {
      // X refuses a post without content; whitespace-only text is no content.
      throw invalidRequest('Post text must not be empty.', 'text');
    }
    const target = body.reply === undefined ? undefined : this.replyTarget(author, body.reply);
    if (this.store.isDuplicate(author.userId, text, now)) throw forbidden(DUPLICATE_DETAIL);
    return {
      text,
      commit: (at) => {
        const { item, rendered } = this.store.addPost(author.userId, target, text, at);
        return { data: { id: item.id, text: rendered.text, edit_history_tweet_ids: [item.id] } };
      },
    };
  }

  prepareDm(sender: FakeAccount, participantId: string, body: Record<string, unknown>): PreparedWrite {
    if (!isNumericId(participantId)) throw invalidRequest(`The \`participant_id\` value [${participantId}] is not valid`, 'participant_id');
    if (participantId === sender.userId) throw invalidRequest('You cannot send a direct message to yourself.', 'participant_id');
    if (this.policy.refusesDms.has(participantId)) throw forbidden(DM_REFUSED_DETAIL);
    const text = body.text;
    if (typeof text !== 'string' || text.trim() === '') throw invalidRequest('Message text must not be empty.', 'text');
    return {
      text,
      commit: (at) => {
        const { item } = this.store.addDm(sender.userId, participantId, text, at);
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
    const mentioned = target.item.text.includes(`@${author.username}`);
    if (this.policy.replyRestriction && target.item.authorId !== author.userId && !mentioned) throw forbidden(RESTRICTED_REPLY_DETAIL);
    return target;
  }
}
