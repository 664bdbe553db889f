/**
 * The read endpoints' answers, computed from the store: a user's timeline
 * (GET /2/users/:id/tweets) and the DM events with one participant
 * (GET /2/dm_conversations/with/:id/dm_events). Query rules are checked in
 * the order X checks them; a bad one throws `BadRequest`.
 */
import type { Accounts, FakeAccount } from './accounts.js';
import {
  BadRequest,
  DM_EVENT_FIELDS,
  POST_FIELDS,
  TWEET_FIELDS,
  checkKnownParams,
  decodePageToken,
  isNumericId,
  paginate,
  parseFields,
  parseIdParam,
  parseMaxResults,
  parseTimeWindow,
} from './lookup.js';
import type { Store, StoredPost } from './store.js';
import { dmView, postView, postView2167 } from './views.js';

/** Which names the timeline speaks: spec 2.159's (`tweet.fields`, ...) or 2.167's (`post.fields`, ...). */
export type FieldNames = '2.159' | '2.167';

interface TimelineQuery {
  maxResults: number;
  fields: Set<string>;
  sinceId: bigint | undefined;
  untilId: bigint | undefined;
  from?: number;
  toExclusive?: number;
  excludeReplies: boolean;
  startAt: bigint | undefined;
}

export function timelineBody(store: Store, accounts: Accounts, names: FieldNames, userId: string, q: URLSearchParams, now: number): unknown {
  const query = parseTimelineQuery(q, userId, names);
  // X answers 200 with an errors array for an unknown user.
  if (!accounts.get(userId)) return unknownUser(userId);
  const matching = store.timeline(userId, now).filter((p) => matchesQuery(p, query));
  const { page, nextToken } = paginate(matching, query.maxResults, query.startAt);
  if (page.length === 0) return { meta: { result_count: 0 } };
  const meta: Record<string, unknown> = {
    result_count: page.length,
    newest_id: page[0]?.item.id,
    oldest_id: page[page.length - 1]?.item.id,
  };
  if (nextToken) meta.next_token = nextToken;
  const view = names === '2.167' ? postView2167 : postView;
  return { data: page.map((p) => view(p, query.fields)), meta };
}

function parseTimelineQuery(q: URLSearchParams, userId: string, names: FieldNames): TimelineQuery {
  const fieldsParam = names === '2.167' ? 'post.fields' : 'tweet.fields';
  checkKnownParams(q, [
    'since_id',
    'until_id',
    'max_results',
    'pagination_token',
    'exclude',
    'start_time',
    'end_time',
    'expansions',
    fieldsParam,
    'media.fields',
    'poll.fields',
    'place.fields',
    'user.fields',
  ]);
  if (!isNumericId(userId)) throw new BadRequest(`The \`id\` query parameter value [${userId}] is not valid`, 'id');
  const maxResults = parseMaxResults(q, 5, 100, 10);
  const fields = parseFields(q, fieldsParam, names === '2.167' ? POST_FIELDS : TWEET_FIELDS);
  const sinceId = parseIdParam(q, 'since_id');
  const untilId = parseIdParam(q, 'until_id');
  const window = parseTimeWindow(q);
  const exclude = new Set((q.get('exclude') ?? '').split(',').filter(Boolean));
  for (const e of exclude)
    if (e !== 'replies' && e !== 'retweets') throw new BadRequest(`The \`exclude\` query parameter value [${e}] is not one of [replies,retweets]`, 'exclude');
  const startAt = decodePageToken(q);
  return { maxResults, fields, sinceId, untilId, ...window, excludeReplies: exclude.has('replies'), startAt };
}

function matchesQuery(p: StoredPost, q: TimelineQuery): boolean {
  return (
    (q.sinceId === undefined || p.idBig > q.sinceId) &&
    (q.untilId === undefined || p.idBig < q.untilId) &&
    (q.from === undefined || p.item.createdAt >= q.from) &&
    (q.toExclusive === undefined || p.item.createdAt < q.toExclusive) &&
    !(q.excludeReplies && p.item.inReplyToTweetId !== undefined)
  );
}

function unknownUser(userId: string): unknown {
  return {
    errors: [
      {
        value: userId,
        detail: `Could not find user with id: [${userId}].`,
        title: 'Not Found Error',
        resource_type: 'user',
        parameter: 'id',
        resource_id: userId,
        type: 'https://api.twitter.com/2/problems/resource-not-found',
      },
    ],
  };
}

export function dmEventsBody(store: Store, caller: FakeAccount, participantId: string, q: URLSearchParams, now: number): unknown {
  checkKnownParams(q, ['dm_event.fields', 'event_types', 'expansions', 'max_results', 'media.fields', 'pagination_token', 'tweet.fields', 'user.fields']);
  if (!isNumericId(participantId)) throw new BadRequest(`The \`participant_id\` value [${participantId}] is not valid`, 'participant_id');
  const maxResults = parseMaxResults(q, 1, 100, 100);
  const fields = parseFields(q, 'dm_event.fields', DM_EVENT_FIELDS);
  const types = (q.get('event_types') ?? 'MessageCreate').split(',');
  const startAt = decodePageToken(q);
  const matching = types.includes('MessageCreate') ? store.conversation(caller.userId, participantId, now) : [];
  const { page, nextToken } = paginate(matching, maxResults, startAt);
  if (page.length === 0) return { meta: { result_count: 0 } };
  const meta: Record<string, unknown> = { result_count: page.length };
  if (nextToken) meta.next_token = nextToken;
  return { data: page.map((d) => dmView(d, fields)), meta };
}
