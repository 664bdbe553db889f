import { afterEach, describe, expect, it } from 'vitest';
import { keyId } from '../src/domain/key.js';
import { Ledger } from '../src/ledger/ledger.js';
import { post, type Stack, startStack } from './harness.js';

const NOW = 1_764_700_000_000;

describe('audit trail', () => {
  let stack: Stack | undefined;
  afterEach(async () => {
    await stack?.close();
    stack = undefined;
  });

  it("is capped at auditMax, keeps its first ('queued') entry and drops the oldest after it", async () => {
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
    // The cap is the ledger's, not the record's: a ledger with the default keeps more.
    await s.ledger.note(id, [{ event: 'upload', n: 11 }], NOW + 11);
    expect((await s.ledger.auditTrail(id)).map((e) => e.n ?? e.event)).toEqual(['queued', 8, 9, 10, 11]);
  });
});
