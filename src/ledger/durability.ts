import type { Cluster, Redis } from 'ioredis';
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
 *
 * On Redis Cluster every key of a prefix is in one slot (keys.ts), so the
 * claim goes to the master serving that slot, on ioredis' connection to that
 * node; WAIT (or WAITAOF) must run on that same node connection. `mark()`
 * notes the slot's node as ioredis routes it (`cluster.slots[slot][0]`, the
 * master) and that node's connection; `confirm` says no when the slot moved
 * (a MOVED, a refreshed slot map), the node's connection was replaced or
 * closed since. The check is per shard: only the prefix's shard is asked.
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

/** What `mark()` saw: opaque to the caller, handed back to `confirm`. */
export type ClaimMark = number | object;

export interface ClaimDurability {
  readonly mode: ClaimDurabilityMode;
  /** Before a claim: which connection it is sent on (counts the connection's closes). */
  mark(): ClaimMark;
  /** After the claim: may X be called? Never throws (a failure to confirm is a "no"). */
  confirm(mark: ClaimMark): Promise<Confirmation>;
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

/** The connection a claim goes out on, and whether a mark still names it. */
interface Route {
  mark(): ClaimMark;
  /** The connection the claim after `mark` went out on, or why that is no longer known. */
  connection(mark: ClaimMark): { readonly conn: RedisClient } | { readonly why: string };
}

const RECONNECTED = 'the connection to Redis was lost between the claim and its confirmation';

/** One Redis (or one behind Sentinel): the ledger's connection, counted by its closes. */
function singleRoute(redis: Redis): Route {
  let closes = 0;
  redis.on('close', () => closes++);
  return { mark: () => closes, connection: (mark) => (closes === mark ? { conn: redis } : { why: RECONNECTED }) };
}

interface ClusterMark {
  /** ioredis' node list for the slot (a refreshed slot map puts new arrays in place). */
  readonly nodes: readonly string[] | undefined;
  /** Its master then (a MOVED rewrites `nodes[0]` in place). */
  readonly node: string | undefined;
  readonly conn: Redis | undefined;
  readonly closes: number;
}

/**
 * Redis Cluster: the connection to the master serving `slot`, as ioredis
 * routes a command with a key of that slot (`slots[slot][0]`, then the
 * pool's connection to that node, which `nodes()` lists).
 */
function clusterRoute(cluster: Cluster, slot: number): Route {
  const closes = new WeakMap<Redis, number>();
  const watch = (node: Redis) => {
    if (closes.has(node)) return;
    closes.set(node, 0);
    node.on('close', () => closes.set(node, (closes.get(node) ?? 0) + 1));
  };
  for (const node of cluster.nodes('all')) watch(node);
  cluster.on('+node', watch);
  const nodeFor = (key: string | undefined) =>
    key === undefined ? undefined : cluster.nodes('all').find((n) => `${n.options.host}:${n.options.port}` === key);
  const now = (): ClusterMark => {
    const nodes = cluster.slots[slot];
    const node = nodes?.[0];
    const conn = nodeFor(node);
    if (conn) watch(conn);
    return { nodes, node, conn, closes: conn ? (closes.get(conn) ?? 0) : 0 };
  };
  return {
    mark: now,
    connection(mark) {
      const then = mark as ClusterMark;
      if (!then.conn) return { why: `no connection to the node serving the ledger's slot ${slot} when the claim was sent` };
      const current = now();
      if (current.nodes !== then.nodes || current.node !== then.node || current.conn !== then.conn) {
        return { why: `the ledger's slot ${slot} moved (from ${then.node ?? '?'} to ${current.node ?? '?'}) between the claim and its confirmation` };
      }
      return current.closes === then.closes ? { conn: then.conn } : { why: RECONNECTED };
    },
  };
}

/**
 * The confirmation for `s.mode` on the ledger's connection. For `fsync` it
 * checks what the server can do first and refuses to start (DurabilityError)
 * when the claim could not be made durable on disk. On Redis Cluster `key`
 * (any key of the ledger's prefix) names the slot whose node is asked.
 */
export async function claimDurability(redis: RedisClient, s: ClaimDurabilitySettings, key?: string): Promise<ClaimDurability> {
  if (s.mode === 'local') return { mode: 'local', mark: () => 0, confirm: () => Promise.resolve(OK) };
  let route: Route;
  /** Where the startup checks go: the node of the prefix's slot on a Cluster. */
  let server: RedisClient = redis;
  if (redis.isCluster) {
    const cluster = redis as Cluster;
    if (key === undefined) throw new DurabilityError(`XACTLY_CLAIM_DURABILITY=${s.mode} on Redis Cluster needs a key of the ledger's prefix to find its shard`);
    const slot = (await cluster.call('CLUSTER', 'KEYSLOT', key)) as number;
    route = clusterRoute(cluster, slot);
    const first = route.connection(route.mark());
    if (!('conn' in first)) throw new DurabilityError(`XACTLY_CLAIM_DURABILITY=${s.mode}: ${first.why}`);
    server = first.conn;
  } else {
    route = singleRoute(redis as Redis);
  }
  /** Run `wait` (WAIT or WAITAOF) on the connection the claim sent after `mark` went out on. */
  const confirmed = async (mark: ClaimMark, wait: (conn: RedisClient) => Promise<Confirmation>, what: string): Promise<Confirmation> => {
    const before = route.connection(mark);
    if (!('conn' in before)) return { ok: false, why: before.why };
    let answer: Confirmation;
    try {
      answer = await wait(before.conn);
    } catch (err) {
      return { ok: false, why: `${what} failed: ${(err as Error).message}` };
    }
    const after = route.connection(mark);
    return 'conn' in after ? answer : { ok: false, why: after.why };
  };
  if (s.mode === 'replica') {
    return {
      mode: 'replica',
      mark: () => route.mark(),
      confirm: (mark) =>
        confirmed(
          mark,
          async (conn) => {
            const acked = (await conn.call('WAIT', s.replicas, s.timeoutMs)) as number;
            return acked >= s.replicas ? OK : { ok: false, why: `${acked} of ${s.replicas} replica(s) acknowledged the claim within ${s.timeoutMs} ms` };
          },
          'WAIT',
        ),
    };
  }
  const info = (await server.call('INFO', 'server')) as string;
  const version = /redis_version:([\d.]+)/.exec(info)?.[1] ?? '0';
  if (hasWaitAof(version)) {
    // WAITAOF with numlocal 1 is an error while appendonly is off: every claim would be given back, so refuse to start.
    try {
      await server.call('WAITAOF', 1, 0, s.timeoutMs);
    } catch (err) {
      throw new DurabilityError(`XACTLY_CLAIM_DURABILITY=fsync: Redis ${version} refuses WAITAOF 1 0 (${(err as Error).message}); it needs appendonly yes`);
    }
    return {
      mode: 'fsync',
      mark: () => route.mark(),
      confirm: (mark) =>
        confirmed(
          mark,
          async (conn) => {
            const [local] = (await conn.call('WAITAOF', 1, 0, s.timeoutMs)) as [number, number];
            return local >= 1 ? OK : { ok: false, why: `the claim was not fsynced to the AOF within ${s.timeoutMs} ms` };
          },
          'WAITAOF',
        ),
    };
  }
  let appendonly: string | undefined;
  let appendfsync: string | undefined;
  try {
    appendonly = await configValue(server, 'appendonly');
    appendfsync = await configValue(server, 'appendfsync');
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
