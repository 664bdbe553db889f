/**
 * The fake's error answers: `HttpProblem` (what handlers throw, written as
 * X's problem JSON) and one maker per refusal, in X's own words, so every
 * endpoint refuses a case the same way.
 */
import { BadRequest } from './lookup.js';

const INVALID_REQUEST_TYPE = 'https://api.twitter.com/2/problems/invalid-request';
const CLIENT_FORBIDDEN_TYPE = 'https://api.twitter.com/2/problems/client-forbidden';
const USAGE_CAPPED_TYPE = 'https://api.twitter.com/2/problems/usage-capped';

// X's own words for the 403s that concern one post, one account or the app.
export const DUPLICATE_DETAIL = 'You are not allowed to create a Tweet with duplicate content.';
/** X's message for a post over the author's length limit (280 weighted characters without Premium). */
export const TEXT_TOO_LONG = 'Your Tweet text is too long. For more information on how X determines text length see https://github.com/twitter/twitter-text.';
export const RESTRICTED_REPLY_DETAIL =
  'Reply to this conversation is not allowed because you have not been mentioned or otherwise engaged by the author of the post you are replying to.';
export const DELETED_TARGET_DETAIL = 'You attempted to reply to a Tweet that is deleted or not visible to you.';
// Modelled on the reply refusal: a post-level 403 (X's exact words for a quote are not documented).
export const DELETED_QUOTE_DETAIL = 'You attempted to quote a Tweet that is deleted or not visible to you.';
export const DM_REFUSED_DETAIL = 'You cannot send messages to this user.';
export const SUSPENDED_DETAIL = 'Your account is suspended and is not permitted to access this feature.';
const CLIENT_FORBIDDEN_DETAIL =
  'When authenticating requests to the Twitter API v2 endpoints, you must use keys and tokens from a Twitter developer App that is attached to a Project. You can create a project via the developer portal.';

export class HttpProblem extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string,
    readonly type = 'about:blank',
    readonly errors?: { message: string; parameters?: Record<string, string[]> }[],
    /** Members X adds after the standard ones (`reason`, `period`, ...). */
    readonly extra?: Record<string, unknown>,
  ) {
    super(detail);
  }

  /** The JSON body: the standard members in X's order, then `errors`, then the extras. */
  body(): Record<string, unknown> {
    const body: Record<string, unknown> = { title: this.title, detail: this.detail, type: this.type, status: this.status };
    if (this.errors) body.errors = this.errors;
    return Object.assign(body, this.extra);
  }
}

/** X's 400; `values`: the parameter's values it refused (`{"media.media_ids": ["123"]}`). */
export function invalidRequest(message: string, parameter?: string, values: string[] = []): HttpProblem {
  const parameters = parameter ? { [parameter]: values } : undefined;
  return new HttpProblem(400, 'Invalid Request', 'One or more parameters to your request was invalid.', INVALID_REQUEST_TYPE, [
    parameters ? { message, parameters } : { message },
  ]);
}

/** A handler's error as X's answer, or undefined for a bug (a 500). */
export function asProblem(err: unknown): HttpProblem | undefined {
  if (err instanceof HttpProblem) return err;
  if (err instanceof BadRequest) return invalidRequest(err.message, err.parameter);
  return undefined;
}

export function forbidden(detail: string): HttpProblem {
  return new HttpProblem(403, 'Forbidden', detail);
}

export function clientForbidden(): HttpProblem {
  return new HttpProblem(403, 'Client Forbidden', CLIENT_FORBIDDEN_DETAIL, CLIENT_FORBIDDEN_TYPE, undefined, {
    reason: 'client-not-enrolled',
    registration_url: 'https://developer.twitter.com/en/docs/projects/overview',
    required_enrollment: 'Appropriate Level of API Access',
    client_id: '27431570',
  });
}

/** An OAuth 2.0 token without the scope the endpoint needs (`media.write` for uploads): X's bare 403. */
export function missingScope(): HttpProblem {
  return new HttpProblem(403, 'Forbidden', 'Forbidden');
}

export function tooManyRequests(): HttpProblem {
  return new HttpProblem(429, 'Too Many Requests', 'Too Many Requests');
}

export function usageCapped(): HttpProblem {
  return new HttpProblem(429, 'UsageCapExceeded', 'Usage cap exceeded: Monthly product cap', USAGE_CAPPED_TYPE, undefined, {
    period: 'Monthly',
    scope: 'Product',
  });
}

export function serviceUnavailable(): HttpProblem {
  return new HttpProblem(503, 'Service Unavailable', 'Service Unavailable');
}

export function unauthorized(): HttpProblem {
  return new HttpProblem(401, 'Unauthorized', 'Unauthorized');
}

export function unknownRoute(method: string, path: string): HttpProblem {
  return new HttpProblem(404, 'Not Found Error', `Unknown route ${method} ${path}`, 'about:blank');
}

export function payloadTooLarge(): HttpProblem {
  return new HttpProblem(413, 'Payload Too Large', 'Request body too large');
}
