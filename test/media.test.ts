/**
 * Media: images, a GIF and a video uploaded through X's v2 media API
 * (simple and chunked, streamed) before the create, and every post on X
 * exactly once with exactly its media, under upload and create faults.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { keyId } from '../src/domain/key.js';
import { isFinal, type PostRecord } from '../src/domain/state.js';
import { type Stack, startStack, testClock, waitUntil } from './harness.js';
import { gif, mediaDir, png, sha256File, writeMedia } from './support/media.js';

let stack: Stack | undefined;
let dir: string;
beforeAll(() => {
  dir = mediaDir();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

const SETTLE = 3_000;

async function untilFinal(s: Stack, clock: ReturnType<typeof testClock>, slots: readonly string[], postId = 'm'): Promise<PostRecord[]> {
  return waitUntil(
    async () => {
      const rs = await s.ledger.getMany(slots.map((slotId) => keyId({ slotId, postId })));
      if (rs.every((r) => r && isFinal(r.state))) return rs as PostRecord[];
      if (rs.some((r) => r?.state === 'ambiguous' || r?.state === 'claimed')) {
        clock.advance(SETTLE + 1);
        await s.reconcile();
      }
      return undefined;
    },
    'every media post to be final',
    120_000,
  );
}

describe('media posts go out once with exactly their media', () => {
  it('two images with alt text, and a GIF: uploaded, attached, rendered as X does', async () => {
    const clock = testClock();
    stack = await startStack({ clock: clock.now, settleWindowMs: SETTLE, fake: { mediaProcessingMs: 500 } });
    const a = writeMedia(dir, 'a.png', png(64, 48, { seed: 1 }));
    const b = writeMedia(dir, 'b.png', png(64, 48, { seed: 2 }));
    const g = writeMedia(dir, 'c.gif', gif(3));
    const results = await stack.producer.enqueueMany([
      { slotId: 'img', postId: 'm', accountId: 'acme', kind: 'post', text: 'two images', media: [{ path: a, altText: 'a gradient' }, { path: b }] },
      { slotId: 'gif', postId: 'm', accountId: 'acme', kind: 'post', media: [{ path: g }] },
    ]);
    expect(results.map((r) => r.status)).toEqual(['queued', 'queued']);
    const rs = await untilFinal(stack, clock, ['img', 'gif']);
    expect(rs.map((r) => r.state)).toEqual(['sent', 'sent']);
    const created = stack.fake.created();
    expect(created).toHaveLength(2);
    const img = created.find((c) => c.text === 'two images')!;
    expect(img.media?.map((m) => m.sha256)).toEqual([sha256File(a), sha256File(b)]);
    expect(img.media?.[0]?.altText).toBe('a gradient');
    const gp = created.find((c) => c.text === '')!;
    expect(gp.media?.map((m) => [m.mediaType, m.sha256])).toEqual([['image/gif', sha256File(g)]]);
    const page = await stack.x.timeline('acme', { maxResults: 10 });
    const shown = page.items.find((t) => t.id === img.id)!;
    expect(shown.text).toMatch(/^two images https:\/\/t\.co\/\w+$/);
    expect(shown.mediaKeys).toHaveLength(2);
    expect(shown.urls?.[0]?.mediaKey).toBe(img.media?.[0]?.mediaKey);
  });
});
