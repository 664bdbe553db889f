import type { RedisClient } from './ledger.js';

/**
 * Where a claim must be durable before X may be called
 * (`XACTLY_CLAIM_DURABILITY`):
 *
 * - `local`: the primary's answer is enough (a primary that dies before its
 *   replica or its disk caught up can forget a claim whose post went out).
 * - `replica`: `WAIT n timeout` after the claim; X is called only when n
 *   replicas acknowledged it.
 * - `fsync`: `WAITAOF 1 0 timeout` (Redis ≥ 7.2); on older Redis only with
 *   `appendfsync always`, where every write is on disk before its reply.
 *
 * A claim that is not confirmed is given back as not-sent: nothing reached
 * X, so giving it back is safe whether or not the give-back survives. The
 * settle needs no wait: a lost `sent` falls back to `claimed`, whose lease
 * runs out, and reconciliation finds the post (docs/failure-modes.md).
 *
 * WAIT counts the writes of the connection it runs on, so `confirm` runs on
 * the connection the claim script ran on (the ledger's). A WAIT that ran on
 * another connection than the claim proves nothing: after a reconnect (a
 * failover) ioredis sends the unanswered WAIT again on the new connection,
 * which has written nothing, so it returns at once with every replica of
 * the new primary, whether or not the claim ever reached it. So the caller
 * takes a `mark()` before the claim, and `confirm(mark)` says no when the
 * connection closed since.
 */
export const CLAIM_DURABILITY_MODES = ['local', 'replica', 'fsync'] as const;
export type ClaimDurabilityMode = (typeof CLAIM_DURABILITY_MODES)[number];

export interface ClaimDurabilitySettings {
  readonly mode: ClaimDurabilityMode;
  /** Replicas that must acknowledge (replica mode). */
  readonly replicas: number;
  /** How long to wait for them (or for the fsync) before giving the claim back. */
  readonly timeoutMs: number;
}

export type Confirmation = { readonly ok: true } | { readonly ok: false; readonly why: string };

export interface ClaimDurability {
  readonly mode: ClaimDurabilityMode;
  /** Before a claim: which connection it is sent on (counts the connection's closes). */
  mark(): number;
  /** After the claim: may X be called? Never throws (a failure to confirm is a "no"). */
  confirm(mark: number): Promise<Confirmation>;
}

export class DurabilityError extends Error {
  override name = 'DurabilityError';
  readonly code = 'CLAIM_DURABILITY_UNAVAILABLE';
}

const OK: Confirmation = Object.freeze({ ok: true });

/** Redis ≥ 7.2 has WAITAOF. */
function hasWaitAof(version: string): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return major > 7 || (major === 7 && minor >= 2);
}

async function configValue(redis: RedisClient, name: string): Promise<string | undefined> {
  const reply = (await redis.call('CONFIG', 'GET', name)) as string[];
  return reply[1];
}

/**
 * The confirmation for `s.mode` on the ledger's connection. For `fsync` it
 * checks what the server can do first and refuses to start (DurabilityError)
 * when the claim could not be made durable on disk.
 */
export async function claimDurability(redis: RedisClient, s: ClaimDurabilitySettings): Promise<ClaimDurability> {
  if (s.mode === 'local') return { mode: 'local', mark: () => 0, confirm: () => Promise.resolve(OK) };
  if (redis.isCluster) {
    throw new DurabilityError(
      `XACTLY_CLAIM_DURABILITY=${s.mode} is not supported with REDIS_CLUSTER_NODES yet: use local, or a primary with replicas behind Sentinel`,
    );
  }
  let closes = 0;
  redis.on('close', () => closes++);
  const RECONNECTED: Confirmation = Object.freeze({ ok: false, why: 'the connection to Redis was lost between the claim and its confirmation' });
  /** Run `wait` (WAIT or WAITAOF) for the claim sent after `mark`. */
  const confirmed = async (mark: number, wait: () => Promise<Confirmation>, what: string): Promise<Confirmation> => {
    if (closes !== mark) return RECONNECTED;
    let answer: Confirmation;
    try {
      answer = await wait();
    } catch (err) {
      return { ok: false, why: `${what} failed: ${(err as Error).message}` };
    }
    return closes !== mark ? RECONNECTED : answer;
  };
  if (s.mode === 'replica') {
    return {
      mode: 'replica',
      mark: () => closes,
      confirm: (mark) =>
        confirmed(
          mark,
          async () => {
            const acked = (await redis.call('WAIT', s.replicas, s.timeoutMs)) as number;
            return acked >= s.replicas ? OK : { ok: false, why: `${acked} of ${s.replicas} replica(s) acknowledged the claim within ${s.timeoutMs} ms` };
          },
          'WAIT',
        ),
    };
  }
  const info = (await redis.call('INFO', 'server')) as string;
  const version = /redis_version:([\d.]+)/.exec(info)?.[1] ?? '0';
  if (hasWaitAof(version)) {
    // WAITAOF with numlocal 1 is an error while appendonly is off: every claim would be given back, so refuse to start.
    try {
      await redis.call('WAITAOF', 1, 0, s.timeoutMs);
    } catch (err) {
      throw new DurabilityError(`XACTLY_CLAIM_DURABILITY=fsync: Redis ${version} refuses WAITAOF 1 0 (${(err as Error).message}); it needs appendonly yes`);
    }
    return {
      mode: 'fsync',
      mark: () => closes,
      confirm: (mark) =>
        confirmed(
          mark,
          async () => {
            const [local] = (await redis.call('WAITAOF', 1, 0, s.timeoutMs)) as [number, number];
            return local >= 1 ? OK : { ok: false, why: `the claim was not fsynced to the AOF within ${s.timeoutMs} ms` };
          },
          'WAITAOF',
        ),
    };
  }
  let appendonly: string | undefined;
  let appendfsync: string | undefined;
  try {
    appendonly = await configValue(redis, 'appendonly');
    appendfsync = await configValue(redis, 'appendfsync');
  } catch (err) {
    throw new DurabilityError(
      `XACTLY_CLAIM_DURABILITY=fsync: Redis ${version} has no WAITAOF (7.2+) and CONFIG GET is refused (${(err as Error).message}), so "appendfsync always" cannot be checked`,
    );
  }
  if (appendonly !== 'yes' || appendfsync !== 'always') {
    throw new DurabilityError(
      `XACTLY_CLAIM_DURABILITY=fsync: Redis ${version} has no WAITAOF (7.2+); it needs appendonly yes and appendfsync always (found appendonly ${appendonly ?? '?'}, appendfsync ${appendfsync ?? '?'})`,
    );
  }
  // Every write is on disk before Redis answers it: the claim's answer is the confirmation.
  return { mode: 'fsync', mark: () => 0, confirm: () => Promise.resolve(OK) };
}
