/**
 * The statistics benchmarks and chaos runs report, defined once.
 *
 * - `percentile(sorted, p)` is the nearest-rank percentile: the smallest
 *   value with at least p % of the values at or below it (p in 0..100;
 *   p = 0 gives the minimum, NaN for no values). It is always one of the
 *   values, never an interpolation.
 * - `median(xs)` is the middle value, and for an even count the mean of the
 *   two middle values. (So it can differ from `percentile(sorted, 50)`, which
 *   is the lower middle value for an even count; use `median` for "the
 *   median of rounds" and `percentile` for latency distributions.)
 */

/** Nearest-rank percentile (p in 0..100) of an already sorted array; NaN when empty. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

/** The median of any array (not necessarily sorted): the mean of the two middle values for an even count; NaN when empty. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}
