import { describe, expect, it } from 'vitest';
import { jobIdFor, keyId, parseJobId } from '../src/domain/key.js';

const adversarial: [string, string][] = [
  ['2026-01-31T09:00:00.000Z', 'post-1'],
  ['a:b', 'c'],
  ['a', 'b:c'],
  ['a.b', 'c'],
  ['a', 'b.c'],
  ['a-b', 'c'],
  ['a', 'b-c'],
  ['a%2E', 'b'],
  ['a.', 'b'],
  ['a', '.b'],
  ['k', 'k'],
  ['123', '456'],
  ['0', '0'],
  ['日本語', '😀'],
  ['e\u0301', 'x'],
  ['\u00e9', 'x'],
  ['a b', 'c'],
  ['a/b', 'c'],
  ['%', '%25'],
  ['%25', '%'],
];

describe('key -> job id', () => {
  it('is colon-free and never integer-like', () => {
    for (const [slotId, postId] of adversarial) {
      for (const gen of [0, 1, 7]) {
        const id = jobIdFor({ slotId, postId }, gen);
        expect(id).not.toContain(':');
        expect(/^\d+$/.test(id)).toBe(false);
      }
    }
  });

  it('is injective over adversarial pairs and generations', () => {
    const seen = new Map<string, string>();
    for (const [slotId, postId] of adversarial) {
      for (const gen of [0, 1, 2]) {
        const id = jobIdFor({ slotId, postId }, gen);
        const label = JSON.stringify([slotId, postId, gen]);
        expect(seen.get(id), `${label} collides`).toBeUndefined();
        seen.set(id, label);
      }
    }
    expect(seen.size).toBe(adversarial.length * 3);
  });

  it('round-trips through parseJobId', () => {
    for (const [slotId, postId] of adversarial) {
      expect(parseJobId(keyId({ slotId, postId }))).toEqual({ slotId, postId, generation: 0 });
      expect(parseJobId(jobIdFor({ slotId, postId }, 3))).toEqual({ slotId, postId, generation: 3 });
    }
  });

  it('rejects ids it could not have produced', () => {
    for (const bad of ['123', 'k.a', 'k.a.b.c', 'k.a:b.c', 'k..b', 'k.a.b.g0', 'x.a.b']) expect(parseJobId(bad)).toBeUndefined();
  });
});
