import { POST_STATES } from '../domain/state.js';

/**
 * The HTTP API's contract, OpenAPI 3.1 (JSON Schema 2020-12), served at
 * /v1/openapi.json. The test suite checks every answer of the API tests
 * against it (test/support/openapi.ts), so a body that drifts from it fails
 * there. Answer bodies are closed (`unevaluatedProperties: false`): a field
 * the server starts to send must be written here first.
 */
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: object) => ({ 'application/json': { schema } });
const answer = (description: string, schema: object, headers?: object) => ({ description, content: json(schema), ...(headers && { headers }) });
const response = (name: string) => ({ $ref: `#/components/responses/${name}` });

const str = { type: 'string' } as const;
const time = { type: 'string', format: 'date-time' } as const;
const keyPart = { type: ['string', 'null'], description: 'as the request gave it (null when it gave none)' } as const;
const state = { type: 'string', enum: [...POST_STATES] } as const;

const ERROR_RESPONSES = {
  '401': response('Unauthorized'),
  '429': response('RateLimited'),
  '500': response('InternalError'),
};

const keyParams = [
  { name: 'slotId', in: 'path', required: true, description: 'URL-encoded (a slot id may hold / or spaces)', schema: str },
  { name: 'postId', in: 'path', required: true, description: 'URL-encoded', schema: str },
];

/** One enqueue outcome (the fields every status carries, then its own). */
const outcome = (status: string, own: Record<string, object> = {}, required: string[] = []) => ({
  type: 'object',
  required: ['status', 'slotId', 'postId', ...required],
  properties: { status: { const: status }, slotId: keyPart, postId: keyPart, ...own },
});

const lifecycle = (status: string, own: Record<string, object> = {}, required: string[] = []) => ({
  type: 'object',
  required: ['status', 'slotId', 'postId', ...required],
  properties: { status: { const: status }, slotId: str, postId: str, ...own },
});

export const OPENAPI = {
  openapi: '3.1.0',
  info: {
    title: 'xactly HTTP API',
    version: '1',
    description:
      'Exactly-once scheduling of X posts, replies, DMs and threads. Every key (slotId, postId) takes effect on X at most once; ' +
      'a repeated request for the same key answers what is stored. Authenticate with `Authorization: Bearer <token>` ' +
      '(`xactly api-token create NAME`). Each token is rate-limited (429 with Retry-After) and may be scoped to accounts (403 otherwise).',
  },
  servers: [{ url: 'http://127.0.0.1:3001' }],
  security: [{ bearer: [] }],
  paths: {
    '/v1/posts': {
      post: {
        operationId: 'enqueue',
        summary: 'Enqueue one publish request (an object) or many (an array, answered per item in input order)',
        requestBody: {
          required: true,
          content: json({ oneOf: [ref('PublishRequest'), { type: 'array', items: ref('PublishRequest') }] }),
        },
        responses: {
          '200': answer('One request: the key was known (duplicate, or its stored outcome). An array: one result per item, in order.', {
            oneOf: [ref('EnqueueAnswer'), ref('BatchAnswer')],
          }),
          '201': answer('Queued: a new key', ref('EnqueueAnswer')),
          '400': response('BadBody'),
          '403': answer('The token may not touch this account', ref('EnqueueAnswer')),
          '409': answer('Conflict: the key was enqueued with another payload (its stored fingerprint and state)', ref('EnqueueAnswer')),
          '413': response('TooLarge'),
          '415': response('UnsupportedType'),
          '422': answer('Invalid: per-field errors', ref('EnqueueAnswer')),
          ...ERROR_RESPONSES,
        },
      },
      get: {
        operationId: 'listPosts',
        summary: 'Keys in creation order, filtered, one page at a time (follow `next`)',
        parameters: [
          { name: 'state', in: 'query', schema: state },
          { name: 'account', in: 'query', schema: str },
          { name: 'from', in: 'query', description: 'scheduledAt at or after', schema: time },
          { name: 'to', in: 'query', description: 'scheduledAt before', schema: time },
          { name: 'cursor', in: 'query', description: "a previous page's `next`", schema: str },
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 500, default: 100 } },
        ],
        responses: {
          '200': answer(
            'A page. It may hold fewer than `limit` posts while `next` is present (a selective filter looks at a bounded number of keys per page); no `next`: the end.',
            ref('PostsPage'),
          ),
          '403': response('Forbidden'),
          '422': response('InvalidQuery'),
          ...ERROR_RESPONSES,
        },
      },
    },
    '/v1/posts/{slotId}/{postId}': {
      parameters: keyParams,
      get: {
        operationId: 'getPost',
        summary: 'A key: its record, audit trail and thread parts',
        responses: {
          '200': answer('The key', ref('Post')),
          '400': response('BadRequest'),
          '403': answer('The token may not touch this account', ref('EnqueueAnswer')),
          '404': answer('No such key', ref('NotFound')),
          ...ERROR_RESPONSES,
        },
      },
      patch: {
        operationId: 'changePost',
        summary: 'Edit (text, inReplyToTweetId, recipientId, parts) or reschedule (scheduledAt, deadline?) a queued key',
        requestBody: { required: true, content: json(ref('Change')) },
        responses: {
          '200': answer('Edited or rescheduled', ref('LifecycleAnswer')),
          '400': response('BadBody'),
          '403': answer('The token may not touch this account', ref('EnqueueAnswer')),
          '404': answer('No such key', ref('LifecycleAnswer')),
          '409': answer('Refused: an attempt is in flight, or the key is already sent or final (with its state)', ref('LifecycleAnswer')),
          '413': response('TooLarge'),
          '415': response('UnsupportedType'),
          '422': answer('Invalid: per-field errors', { anyOf: [ref('LifecycleAnswer'), ref('EnqueueAnswer')] }),
          ...ERROR_RESPONSES,
        },
      },
      delete: {
        operationId: 'cancelPost',
        summary: 'Cancel a key: a queued key never goes out; one in doubt ends sent or cancelled',
        parameters: [{ name: 'reason', in: 'query', schema: { type: 'string', maxLength: 500 } }],
        responses: {
          '200': answer('Cancelled', ref('LifecycleAnswer')),
          '202': answer('Cancelling: an attempt was in doubt; it ends sent (it had gone out) or cancelled', ref('LifecycleAnswer')),
          '400': response('BadRequest'),
          '403': answer('The token may not touch this account', ref('EnqueueAnswer')),
          '404': answer('No such key', ref('LifecycleAnswer')),
          '409': answer('Already sent, or final (failed, or cancelled before): with its state', ref('LifecycleAnswer')),
          '422': answer('Invalid', { anyOf: [ref('LifecycleAnswer'), ref('EnqueueAnswer')] }),
          ...ERROR_RESPONSES,
        },
      },
    },
    '/v1/accounts/{accountId}/cancel-queued': {
      parameters: [{ name: 'accountId', in: 'path', required: true, schema: str }],
      post: {
        operationId: 'cancelAccount',
        summary: 'Cancel every key of an account that is not final yet (scheduled in [from, to) when given)',
        requestBody: {
          required: false,
          content: json({
            type: 'object',
            additionalProperties: false,
            properties: { from: time, to: time, reason: { type: 'string', maxLength: 500 } },
          }),
        },
        responses: {
          '200': answer('Counts', ref('BulkCancel')),
          '400': response('BadBody'),
          '403': response('Forbidden'),
          '413': response('TooLarge'),
          '415': response('UnsupportedType'),
          '422': response('InvalidQuery'),
          ...ERROR_RESPONSES,
        },
      },
    },
    '/v1/events': {
      get: {
        operationId: 'events',
        summary: 'Outcome events after a cursor, oldest first (poll with `from` = the last `next`)',
        parameters: [
          { name: 'from', in: 'query', description: "an event id (a previous page's `next`); 0 (default) for the oldest kept", schema: str },
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
        ],
        responses: {
          '200': answer('Events, and the cursor to go on from (the same `from` when there were none)', ref('EventsPage')),
          '422': response('InvalidQuery'),
          ...ERROR_RESPONSES,
        },
      },
    },
    '/v1/openapi.json': {
      get: {
        operationId: 'openapi',
        summary: 'This document',
        security: [],
        responses: { '200': answer('OpenAPI 3.1', { type: 'object', required: ['openapi', 'paths'] }) },
      },
    },
  },
  components: {
    securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'an API token; its SHA-256 is in XACTLY_API_TOKENS_FILE' } },
    responses: {
      Unauthorized: {
        description: 'No token, or an unknown one',
        headers: { 'WWW-Authenticate': { schema: str } },
        content: json(ref('Error')),
      },
      Forbidden: { description: 'The token may not touch this account', content: json(ref('Error')) },
      RateLimited: {
        description: "Over the token's rate limit",
        headers: { 'Retry-After': { description: 'seconds', schema: { type: 'integer' } } },
        content: json(ref('Error')),
      },
      BadBody: { description: 'The body is empty or not JSON', content: json(ref('Error')) },
      BadRequest: { description: 'A malformed request (a path segment that is not valid URL encoding)', content: json(ref('Error')) },
      TooLarge: { description: 'The body is over the size limit, or the batch over its item limit', content: json(ref('Error')) },
      UnsupportedType: { description: 'The body is not application/json', content: json(ref('Error')) },
      InvalidQuery: { description: 'Per-field errors', content: json(ref('Error')) },
      InternalError: { description: 'Something failed on our side; the request may be retried (every write is idempotent)', content: json(ref('Error')) },
    },
    schemas: {
      FieldError: {
        type: 'object',
        required: ['field', 'reason'],
        additionalProperties: false,
        properties: { field: str, reason: str },
      },
      Error: {
        type: 'object',
        required: ['error'],
        additionalProperties: false,
        properties: { status: { const: 'invalid' }, error: str, errors: { type: 'array', items: ref('FieldError') } },
      },
      PublishRequest: {
        type: 'object',
        description: 'See docs/requests.md: validated field by field, every error named (422).',
        required: ['slotId', 'postId', 'accountId', 'kind'],
        properties: {
          slotId: str,
          postId: str,
          accountId: str,
          kind: { type: 'string', enum: ['post', 'reply', 'dm', 'thread'] },
          text: str,
          parts: { type: 'array', items: { type: 'object' } },
          inReplyToTweetId: str,
          recipientId: str,
          quoteTweetId: str,
          poll: { type: 'object' },
          replySettings: str,
          media: { type: 'array', items: { type: 'object' } },
          scheduledAt: time,
          deadline: time,
        },
      },
      EnqueueOutcome: {
        oneOf: [
          outcome('queued'),
          outcome('duplicate', { state }, ['state']),
          outcome('sent', { tweetId: str }, ['tweetId']),
          outcome('failed', { reason: str, detail: str }, ['reason']),
          outcome('cancelled'),
          outcome('conflict', { state, fingerprint: str, error: str }, ['state', 'fingerprint', 'error']),
          outcome('invalid', { errors: { type: 'array', minItems: 1, items: ref('FieldError') } }, ['errors']),
          outcome('forbidden', { error: str }, ['error']),
          outcome('not-found', { error: str }, ['error']),
        ],
      },
      EnqueueAnswer: { allOf: [ref('EnqueueOutcome')], unevaluatedProperties: false },
      BatchAnswer: {
        type: 'object',
        required: ['results'],
        additionalProperties: false,
        properties: {
          results: {
            type: 'array',
            items: {
              allOf: [ref('EnqueueOutcome')],
              required: ['code', 'index'],
              properties: {
                code: { type: 'integer', description: 'the status code this item would have had alone' },
                index: { type: 'integer', description: "the item's position in the request" },
              },
              unevaluatedProperties: false,
            },
          },
        },
      },
      LifecycleAnswer: {
        oneOf: [
          lifecycle('cancelled'),
          lifecycle('cancelling', { attempt: { type: 'integer' }, since: time, state }, ['attempt', 'since']),
          lifecycle('edited', { fingerprint: str }, ['fingerprint']),
          lifecycle('rescheduled', { scheduledAt: time, deadline: time }, ['scheduledAt', 'deadline']),
          lifecycle('in-flight', { state, attempt: { type: 'integer' }, since: time }, ['state', 'attempt', 'since']),
          lifecycle('already-sent', { state: { const: 'sent' }, tweetId: str }, ['state', 'tweetId']),
          lifecycle('final', { state, reason: str }, ['state']),
          lifecycle('not-found', { error: str }, ['error']),
          lifecycle('invalid', { errors: { type: 'array', minItems: 1, items: ref('FieldError') } }, ['errors']),
        ],
        unevaluatedProperties: false,
      },
      Change: {
        type: 'object',
        description: 'Either changes (an edit) or new times (a reschedule), not both',
        properties: {
          text: str,
          inReplyToTweetId: str,
          recipientId: str,
          parts: { type: 'array', items: { type: 'object' } },
          scheduledAt: time,
          deadline: time,
        },
      },
      PostSummary: {
        type: 'object',
        required: ['slotId', 'postId', 'accountId', 'kind', 'state', 'attempts', 'scheduledAt', 'deadline', 'updatedAt'],
        properties: {
          slotId: str,
          postId: str,
          accountId: str,
          kind: { type: 'string', enum: ['post', 'reply', 'dm', 'thread'] },
          state,
          attempts: { type: 'integer', minimum: 0 },
          tweetId: str,
          reason: str,
          detail: str,
          parts: {
            type: 'array',
            items: {
              type: 'object',
              required: ['part', 'state'],
              additionalProperties: false,
              properties: { part: { type: 'integer', minimum: 1 }, state: str, tweetId: str },
            },
          },
          cancel: {
            type: 'object',
            required: ['at'],
            additionalProperties: false,
            properties: { at: time, by: str, reason: str },
          },
          scheduledAt: time,
          deadline: time,
          updatedAt: time,
        },
      },
      Post: {
        allOf: [ref('PostSummary')],
        required: ['audit'],
        properties: {
          text: { type: 'string', description: 'not for a thread: its texts are its parts' },
          audit: {
            type: 'array',
            description: 'oldest first; `by` names the API token (or CLI user) that asked',
            items: { type: 'object', required: ['at', 'event'], properties: { at: time, event: str, by: str, attempt: { type: 'integer' } } },
          },
        },
        unevaluatedProperties: false,
      },
      PostsPage: {
        type: 'object',
        required: ['posts'],
        additionalProperties: false,
        properties: {
          posts: { type: 'array', items: { allOf: [ref('PostSummary')], unevaluatedProperties: false } },
          next: { type: 'string', description: 'pass as `cursor` for the next page' },
        },
      },
      BulkCancel: {
        type: 'object',
        required: ['accountId', 'cancelled', 'cancelling', 'final'],
        additionalProperties: false,
        properties: {
          accountId: str,
          cancelled: { type: 'integer', minimum: 0 },
          cancelling: { type: 'integer', minimum: 0 },
          final: { type: 'integer', minimum: 0 },
        },
      },
      Event: {
        type: 'object',
        description: 'One transition. Key events carry slotId, postId, accountId, state and attempt; account events accountId; app events neither.',
        required: ['id', 'type', 'at'],
        properties: {
          id: str,
          type: str,
          at: time,
          slotId: str,
          postId: str,
          accountId: str,
          state,
          attempt: { type: 'integer', minimum: 0 },
          tweetId: str,
          reason: str,
          detail: str,
        },
        additionalProperties: { type: 'string' },
      },
      EventsPage: {
        type: 'object',
        required: ['events', 'next'],
        additionalProperties: false,
        properties: {
          events: { type: 'array', items: ref('Event') },
          next: str,
          gap: {
            type: 'boolean',
            const: true,
            description:
              'Present when `from` is older than the events retention and the oldest kept event is after it: events may have been trimmed before this reader saw them; re-read its keys with GET /v1/posts.',
          },
        },
      },
      NotFound: {
        type: 'object',
        required: ['status', 'slotId', 'postId', 'error'],
        additionalProperties: false,
        properties: { status: { const: 'not-found' }, slotId: str, postId: str, error: str },
      },
    },
  },
} as const;
