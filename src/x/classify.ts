import { ApiPartialResponseError, ApiRequestError, ApiResponseError } from 'twitter-api-v2';
import { classifyXFailure, type XFailure, type XOutcome } from '../domain/outcome.js';

/** The network cause of an ApiRequestError: the library hides it in `_options.error`. */
function requestCause(err: ApiRequestError): { code?: string; message: string } {
  const inner = (err as unknown as { _options?: { error?: { code?: unknown; message?: unknown } } })._options?.error;
  const code = typeof inner?.code === 'string' ? inner.code : undefined;
  const message = typeof inner?.message === 'string' ? inner.message : 'unknown request error';
  return { code, message };
}

/** twitter-api-v2's error, described without the library for the domain to decide on. */
export function describeXError(err: unknown): XFailure {
  if (err instanceof ApiResponseError) return { kind: 'response', status: err.code, body: err.data, headers: err.headers };
  if (err instanceof ApiPartialResponseError) return { kind: 'partial', status: err.response?.statusCode ?? 0, headers: err.response?.headers };
  if (err instanceof ApiRequestError) {
    const { code, message } = requestCause(err);
    return { kind: 'network', ...(code && { code }), timedOut: message === 'Request timeout.' };
  }
  return { kind: 'thrown', error: err };
}

/** What a failed call to X means for the key (see the table in domain/outcome.ts). */
export function classifyXError(err: unknown, now: number): Exclude<XOutcome, { kind: 'sent' }> {
  return classifyXFailure(describeXError(err), now);
}
