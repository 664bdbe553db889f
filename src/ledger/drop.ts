import type { Redis } from 'ioredis';
import { hashTagged } from './keys.js';

/** Every key of a prefix: the ledger's and BullMQ's (they share the hash tag), in SCAN batches. */
export async function* keysOf(redis: Redis, prefix: string): AsyncGenerator<string[]> {
  const pattern = `${hashTagged(prefix).replace(/[{}]/g, (c) => '\\' + c)}*`;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    if (keys.length) yield keys;
  } while (cursor !== '0');
}

/** Delete every key of a prefix. For demos, tests and benchmarks; never used on a live prefix. */
export async function dropPrefix(redis: Redis, prefix: string): Promise<number> {
  let deleted = 0;
  for await (const keys of keysOf(redis, prefix)) deleted += await redis.del(...keys);
  return deleted;
}
