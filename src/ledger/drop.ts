import type { Cluster, Redis } from 'ioredis';
import { hashTagged } from './keys.js';

type RedisClient = Redis | Cluster;

/** Glob-escape a literal for SCAN MATCH (the prefix's hash-tag braces, mostly). */
export function globEscape(literal: string): string {
  return literal.replace(/[*?[\]\\{}]/g, (c) => '\\' + c);
}

/**
 * SCAN for a pattern, in batches. On a Cluster every master is scanned (a
 * prefix's keys all live on the one shard that owns its hash tag).
 */
export async function* scanMatch(redis: RedisClient, pattern: string): AsyncGenerator<string[]> {
  const nodes = 'nodes' in redis && typeof redis.nodes === 'function' && (redis as Cluster).isCluster ? (redis as Cluster).nodes('master') : [redis as Redis];
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      if (keys.length) yield keys;
    } while (cursor !== '0');
  }
}

/** Every key of a prefix: the ledger's and BullMQ's (they share the hash tag). */
export function keysOf(redis: RedisClient, prefix: string): AsyncGenerator<string[]> {
  return scanMatch(redis, `${globEscape(hashTagged(prefix))}*`);
}

/** Delete every key of a prefix. For demos, tests and benchmarks; never used on a live prefix. */
export async function dropPrefix(redis: RedisClient, prefix: string): Promise<number> {
  let deleted = 0;
  for await (const keys of keysOf(redis, prefix)) deleted += await redis.del(...keys);
  return deleted;
}
