import type { ITwitterApiClientPlugin } from 'twitter-api-v2';
import { attachDeadlineSignal } from './deadline.js';

const X_ORIGIN = 'https://api.x.com';

/**
 * twitter-api-v2 has no base-URL setting: this plugin rewrites each request
 * before OAuth 1.0a signs it, gives it a socket timeout, and lets a
 * surrounding `withDeadline` abort it.
 */
export function baseUrlPlugin(baseUrl: string, timeoutMs: number): ITwitterApiClientPlugin {
  const base = baseUrl.replace(/\/+$/, '');
  return {
    onBeforeRequestConfig({ params }) {
      if (base !== X_ORIGIN && params.url.startsWith(X_ORIGIN)) params.url = base + params.url.slice(X_ORIGIN.length);
      params.timeout = timeoutMs;
    },
    onBeforeRequest({ requestOptions }) {
      attachDeadlineSignal(requestOptions as { signal?: AbortSignal });
    },
  };
}
