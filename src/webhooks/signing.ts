import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * The signature of a webhook POST, in the style of Stripe's:
 * `X-Xactly-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
 * Signing the timestamp with the body lets a receiver refuse a replayed
 * request once it is older than its tolerance.
 */
export const SIGNATURE_HEADER = 'X-Xactly-Signature';

/** How old a signature a receiver accepts by default (seconds). */
export const DEFAULT_TOLERANCE_S = 300;

const hmac = (secret: string, t: number, body: string) => createHmac('sha256', secret).update(`${t}.${body}`, 'utf8').digest('hex');

/** The header value for `body` signed at `now` (ms). */
export function sign(secret: string, body: string, now: number = Date.now()): string {
  const t = Math.floor(now / 1000);
  return `t=${t},v1=${hmac(secret, t, body)}`;
}

export type Verification =
  { readonly ok: true; readonly t: number } | { readonly ok: false; readonly why: 'malformed' | 'mismatch' | 'too-old' | 'in-the-future' };

/**
 * Check a header against the raw body (the bytes as received, before any
 * JSON parsing). Any one of several `v1=` values may match, so that a
 * sender rotating its secret can send one signature per secret.
 */
export function verify(
  secret: string,
  body: string,
  header: string | undefined,
  opts: { readonly toleranceS?: number; readonly now?: number } = {},
): Verification {
  if (!header) return { ok: false, why: 'malformed' };
  const parts = header.split(',').map((p) => p.trim().split('=') as [string, string | undefined]);
  const t = Number(parts.find(([k]) => k === 't')?.[1]);
  const v1s = parts.filter(([k, v]) => k === 'v1' && v && /^[0-9a-f]{64}$/.test(v)).map(([, v]) => v!);
  if (!Number.isSafeInteger(t) || v1s.length === 0) return { ok: false, why: 'malformed' };
  const expected = Buffer.from(hmac(secret, t, body), 'hex');
  if (!v1s.some((v) => timingSafeEqual(Buffer.from(v, 'hex'), expected))) return { ok: false, why: 'mismatch' };
  const tolerance = opts.toleranceS ?? DEFAULT_TOLERANCE_S;
  const nowS = Math.floor((opts.now ?? Date.now()) / 1000);
  if (t < nowS - tolerance) return { ok: false, why: 'too-old' };
  if (t > nowS + tolerance) return { ok: false, why: 'in-the-future' };
  return { ok: true, t };
}
