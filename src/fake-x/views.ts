/**
 * The JSON objects reads return for a stored post or DM: X's default
 * members plus the ones the request's `*.fields` asked for, in spec 2.159's
 * names or 2.167's.
 */
import { isoMs } from './lookup.js';
import type { UrlEntity } from './render.js';
import type { StoredDm, StoredPost } from './store.js';

export function postView(p: StoredPost, fields: Set<string>): Record<string, unknown> {
  const { item, rendered } = p;
  const out: Record<string, unknown> = { id: item.id, text: rendered.text, edit_history_tweet_ids: p.editHistory ?? [item.id] };
  if (fields.has('created_at')) out.created_at = isoMs(item.createdAt);
  if (fields.has('author_id')) out.author_id = item.authorId;
  if (fields.has('conversation_id')) out.conversation_id = p.conversationId;
  if (fields.has('in_reply_to_user_id') && p.inReplyToUserId) out.in_reply_to_user_id = p.inReplyToUserId;
  if (fields.has('entities') && rendered.urls.length > 0) out.entities = { urls: rendered.urls };
  if (fields.has('display_text_range')) out.display_text_range = rendered.displayTextRange;
  const refs = referencesOf(p);
  if (fields.has('referenced_tweets') && refs.length > 0) out.referenced_tweets = refs;
  if (fields.has('attachments') && (p.pollId || p.mediaKeys))
    out.attachments = { ...(p.mediaKeys && { media_keys: [...p.mediaKeys] }), ...(p.pollId && { poll_ids: [p.pollId] }) };
  if (fields.has('reply_settings')) out.reply_settings = item.replySettings ?? 'everyone';
  if (fields.has('note_tweet') && rendered.noteTweet) out.note_tweet = withEntities({ text: rendered.noteTweet.text }, rendered.noteTweet.urls);
  return out;
}

/** `referenced_tweets`: the post replied to, then the one quoted. */
function referencesOf(p: StoredPost): { type: 'replied_to' | 'quoted'; id: string }[] {
  return [
    ...(p.item.inReplyToTweetId ? [{ type: 'replied_to' as const, id: p.item.inReplyToTweetId }] : []),
    ...(p.item.quoteTweetId ? [{ type: 'quoted' as const, id: p.item.quoteTweetId }] : []),
  ];
}

/** The same post in spec 2.167's names. */
export function postView2167(p: StoredPost, fields: Set<string>): Record<string, unknown> {
  const {
    edit_history_tweet_ids: history,
    referenced_tweets: _refs,
    note_tweet: _note,
    ...rest
  } = postView(p, new Set([...fields].filter((f) => f !== 'note_post')));
  const out: Record<string, unknown> = { ...rest, edit_history_post_ids: history };
  const refs = referencesOf(p);
  if (refs.length > 0) out.referenced_posts = refs;
  if (fields.has('note_post') && p.rendered.noteTweet) out.note_post = withEntities({ text: p.rendered.noteTweet.text }, p.rendered.noteTweet.urls);
  return out;
}

export function dmView(d: StoredDm, fields: Set<string>): Record<string, unknown> {
  const { item, rendered } = d;
  const out: Record<string, unknown> = { id: item.id, event_type: 'MessageCreate', text: rendered.text };
  if (fields.has('created_at')) out.created_at = isoMs(item.createdAt);
  if (fields.has('sender_id')) out.sender_id = item.authorId;
  if (fields.has('dm_conversation_id')) out.dm_conversation_id = item.dmConversationId;
  if (fields.has('participant_ids')) out.participant_ids = [...d.participants];
  if (fields.has('entities') && rendered.urls.length > 0) out.entities = { urls: rendered.urls };
  if (fields.has('attachments') && d.mediaKeys) out.attachments = { media_keys: [...d.mediaKeys] };
  return out;
}

function withEntities(o: Record<string, unknown>, urls: UrlEntity[]): Record<string, unknown> {
  return urls.length > 0 ? { ...o, entities: { urls } } : o;
}
