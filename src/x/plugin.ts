import type { ITwitterApiClientPlugin } from 'twitter-api-v2';

const X_ORIGIN = 'https://api.x.com';

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
