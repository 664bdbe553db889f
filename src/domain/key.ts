/**
 * The identity of one scheduled action and its mapping to BullMQ job IDs.
 *
 * BullMQ job IDs may not contain ':' nor look like an integer, and the
 * mapping must be injective: slot "a.b" + post "c" must never share an ID
 * with slot "a" + post "b.c". Each part is escaped so that only
 * [A-Za-z0-9_-] and '%XX' remain, then the parts are joined with '.', which
 * the escaping never produces. The leading 'k' keeps the ID non-numeric.
 */
export interface PostKey {
  readonly slotId: string;
  readonly postId: string;
}

const SAFE = /^[A-Za-z0-9_-]$/;

function escapePart(part: string): string {
  let out = '';
  for (const ch of part) {
    if (SAFE.test(ch)) {
      out += ch;
      continue;
    }
    for (const byte of Buffer.from(ch, 'utf8')) {
      out += '%' + byte.toString(16).toUpperCase().padStart(2, '0');
    }
  }
  return out;
}

function unescapePart(part: string): string {
  return decodeURIComponent(part);
}

/** The stable, colon-free identifier of a key (ledger records and the first job). */
export function keyId(key: PostKey): string {
  return `k.${escapePart(key.slotId)}.${escapePart(key.postId)}`;
}

/**
 * The BullMQ job ID for an attempt. The producer's job is the plain key ID, so
 * producer duplicates collide; a retry after an ambiguous attempt needs a
 * fresh ID because the first one may still be held by BullMQ's dedupe.
 */
export function jobIdFor(key: PostKey, generation = 0): string {
  return generation === 0 ? keyId(key) : `${keyId(key)}.g${generation}`;
}

/**
 * A second carrier for a rescheduled key whose job could not be moved (it
 * was running, or gone): its own ID, so that it never collides with the
 * IDs of later attempts. The claim keeps the two from both calling X.
 */
export function movedJobId(jobId: string, at: number): string {
  return `${jobId.replace(/\.m\d+$/, '')}.m${at}`;
}

/** Inverse of keyId / jobIdFor / movedJobId; undefined for anything they cannot produce. */
export function parseJobId(id: string): (PostKey & { generation: number }) | undefined {
  const m = /^k\.((?:[A-Za-z0-9_-]|%[0-9A-F]{2})+)\.((?:[A-Za-z0-9_-]|%[0-9A-F]{2})+)(?:\.g([1-9]\d*))?(?:\.m\d+)?$/.exec(id);
  if (!m) return undefined;
  try {
    return {
      slotId: unescapePart(m[1]!),
      postId: unescapePart(m[2]!),
      generation: m[3] ? Number(m[3]) : 0,
    };
  } catch {
    return undefined;
  }
}
