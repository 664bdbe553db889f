import { afterEach, describe, expect, it } from 'vitest';
import { openApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { keyId } from '../src/domain/key.js';
import { Ledger } from '../src/ledger/ledger.js';
import { type AuditEvent, encodeFields, encodeNewRecord, parseRecord, parseTrail, type StoredRecord, TRAIL_FIELD } from '../src/ledger/record.js';
import { staticCredentialStore } from '../src/x/credentials.js';
import { ACCOUNTS, post, REDIS_URL, type Stack, startStack, waitUntil } from './harness.js';

const NOW = 1_764_700_000_000;

/** A record with a field of every kind, and values that could trip an encoding (digits-only string, empty text, nulls in JSON). */
const stored: StoredRecord = {
  slotId: 's-1',
  postId: 'p1',
  accountId: 'acme',
  kind: 'thread',
  text: '',
  inReplyToTweetId: '1234567890123456789',
  quoteTweetId: '42',
  replySettings: 'following',
  poll: { options: ['yes', 'no'], durationMinutes: 60 },
  parts: [{ text: 'one\nwith a newline' }, { text: 'two', media: [{ path: '/m/a.png', sha256: 'ab', bytes: 3 }] }],
  partIndex: 1,
  scheduledAt: NOW,
  deadline: NOW + 3_600_000,
  notBefore: NOW + 5,
  fingerprint: 'sha256:ff',
  given: { scheduledAt: NOW, deadline: null },
  state: 'queued',
  attempt: 0,
  jobId: 'k.s-1.p1',
  createdAt: NOW,
  updatedAt: NOW,
  trail: [{ at: NOW, event: 'queued', jobId: 'k.s-1.p1', detail: 'a\nb' }],
};

describe('record storage: one hash per key, the trail as JSON lines', () => {
  it('encodes and decodes every kind of field as it was (strings of digits stay strings, newlines stay inside their line)', () => {
    const flat = encodeNewRecord(stored);
    const { trail, ...fields } = stored;
    expect(parseRecord('k', flat)).toEqual({ keyId: 'k', ...fields });
    const h = Object.fromEntries(Array.from({ length: flat.length / 2 }, (_, i) => [flat[2 * i], flat[2 * i + 1]]));
    expect(h[TRAIL_FIELD]!.split('\n')).toHaveLength(1);
    expect(parseTrail(h[TRAIL_FIELD])).toEqual(trail);
    expect(typeof parseRecord('k', flat)!.inReplyToTweetId).toBe('string');
  });

  it('refuses a field it does not know, or a value of the wrong kind, and turns null into a removal', () => {
    expect(() => encodeFields({ nope: 1 })).toThrow(/not a record field: nope/);
    expect(() => encodeFields({ attempt: '1' })).toThrow(/attempt must be a number/);
    expect(() => encodeFields({ text: 5 })).toThrow(/text must be a string/);
    expect(encodeFields({ poll: null, quoteTweetId: undefined, text: 'x' })).toEqual({ set: ['text', 'x'], del: ['poll', 'quoteTweetId'] });
  });
});

describe('record storage on Redis', () => {
  let stack: Stack | undefined;
  afterEach(async () => {
    await stack?.close();
    stack = undefined;
  });

  it("the trail is capped at auditMax and keeps its first ('queued') entry; each entry is one event", async () => {
    stack = await startStack({ startWorkers: false });
    const s = stack;
    await s.producer.enqueue(post('capped', 'hello'));
    const id = keyId({ slotId: 'capped', postId: 'p1' });
    const ledger = new Ledger(s.redis, { prefix: s.prefix, retentionMs: 3_600_000, auditMax: 4 });
    for (let i = 1; i <= 10; i++) await ledger.note(id, [{ event: 'upload', n: i, detail: `line\nbreak ${i}` }], NOW + i);
    const trail = await ledger.auditTrail(id);
    expect(trail.map((e) => e.event)).toEqual(['queued', 'upload', 'upload', 'upload']);
    expect(trail.slice(1).map((e) => e.n)).toEqual([8, 9, 10]);
    expect(trail[3]).toMatchObject({ at: NOW + 10, detail: 'line\nbreak 10' });
    expect(Number(await s.redis.hget(s.ledger.keys.record(id), 'trailN'))).toBe(4);
  });

  it('records stored by an older xactly (one JSON string each) are upgraded when a worker starts, TTL kept, and publish once', async () => {
    stack = await startStack({ startWorkers: false });
    const s = stack;
    for (const slot of ['old-1', 'old-2']) await s.producer.enqueue(post(slot, `from before the upgrade: ${slot}`));
    // Write them back as the older xactly stored them: the record as one JSON string, its trail inside.
    const ids = ['old-1', 'old-2'].map((slotId) => keyId({ slotId, postId: 'p1' }));
    const before = new Map<string, unknown>();
    for (const id of ids) {
      const key = s.ledger.keys.record(id);
      const record = (await s.ledger.get(id))!;
      const trail: AuditEvent[] = await s.ledger.auditTrail(id);
      const { keyId: _k, ...rest } = record;
      const ttl = await s.redis.pttl(key);
      await s.redis.del(key);
      await s.redis.set(key, JSON.stringify({ ...rest, trail }), 'PX', ttl);
      before.set(id, { record, trail, ttl });
    }
    expect(await s.redis.type(s.ledger.keys.record(ids[0]!))).toBe('string');

    const app = await openApp(loadConfig({ REDIS_URL, XACTLY_PREFIX: s.prefix }), s.logger, {
      redis: s.redis,
      x: s.x,
      credentials: staticCredentialStore(ACCOUNTS),
    });
    try {
      await app.publishWorker({ concurrency: 2 });
      await waitUntil(async () => (await Promise.all(ids.map((id) => s.ledger.get(id)))).every((r) => r?.state === 'sent'), 'both old keys sent');
      for (const id of ids) {
        const { record, trail, ttl } = before.get(id) as { record: Record<string, unknown>; trail: AuditEvent[]; ttl: number };
        expect(await s.redis.type(s.ledger.keys.record(id))).toBe('hash');
        const now = await s.ledger.get(id);
        expect(now).toMatchObject({ slotId: record.slotId, text: record.text, fingerprint: record.fingerprint, scheduledAt: record.scheduledAt, attempt: 1 });
        // The old trail comes first, then this worker's attempt.
        const after = await s.ledger.auditTrail(id);
        expect(after.slice(0, trail.length)).toEqual(trail);
        expect(after.slice(trail.length).map((e) => e.event)).toEqual(['claimed', 'x-answer', 'sent']);
        // A sent key's TTL is the retention from now; what matters is that it has one.
        expect(ttl).toBeGreaterThan(0);
        expect(await s.redis.pttl(s.ledger.keys.record(id))).toBeGreaterThan(0);
      }
      expect(
        s.fake
          .created()
          .map((c) => c.text)
          .sort(),
      ).toEqual(['from before the upgrade: old-1', 'from before the upgrade: old-2']);
      expect(s.logs.some((l) => l.includes('"records-upgraded"') && l.includes('"records":2'))).toBe(true);
      // Once per prefix: the marker makes later starts skip the scan.
      expect(await s.ledger.upgradeRecords()).toBe(0);
    } finally {
      await app.close();
    }
  });

  it("an upgrade keeps a queued old record's TTL, and converts nothing twice", async () => {
    stack = await startStack({ startWorkers: false });
    const s = stack;
    const key = s.ledger.keys.record('k.legacy.p1');
    await s.redis.set(key, JSON.stringify({ ...stored, jobId: 'k.legacy.p1' }), 'PX', 600_000);
    expect(await s.ledger.upgradeRecords()).toBe(1);
    const ttl = await s.redis.pttl(key);
    expect(ttl).toBeGreaterThan(590_000);
    expect(ttl).toBeLessThanOrEqual(600_000);
    const { trail, ...fields } = stored;
    expect(await s.ledger.get('k.legacy.p1')).toEqual({ keyId: 'k.legacy.p1', ...fields, jobId: 'k.legacy.p1' });
    expect(await s.ledger.auditTrail('k.legacy.p1')).toEqual(trail);
    await s.redis.del(s.ledger.keys.storage);
    expect(await s.ledger.upgradeRecords()).toBe(0);
  });
});
