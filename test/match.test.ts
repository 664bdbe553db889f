import { describe, expect, it } from 'vitest';
import { attribute, sameContent, type SeenItem, type SentItem } from '../src/domain/match.js';
import { renderBody, renderPost, tcoUrl } from '../src/fake-x/render.js';

let n = 0;
/** What X shows for a sent text, rendered by the same code as the fake X. */
function asX(text: string, replyPrefix = ''): SeenItem {
  const post = renderPost(renderBody(text, { escape: true, nextTco: () => tcoUrl(n++) }), replyPrefix);
  return {
    id: String(1000 + n),
    text: post.text,
    urls: post.urls.map((u) => ({ url: u.url, expandedUrl: u.expanded_url })),
    displayTextRange: post.displayTextRange,
    ...(post.noteTweet && { noteText: post.noteTweet.text }),
  };
}

describe('sameContent: matched despite X rewriting', () => {
  it.each([
    ['plain', 'hello world'],
    ['URL', 'read this https://example.com/a/very/long/path?x=1&y=2 now'],
    ['two URLs', 'a https://a.example/1 b https://b.example/2'],
    ['scheme-less URL', 'see example.com/page'],
    ['& < >', 'fish & chips <3 > all'],
    ['literal entity text', 'write &amp; to get &'],
    ['emoji', 'launch 🚀🚀 day 👩‍👩‍👧'],
    ['CJK', '新しい製品を発表します'],
    ['whitespace', 'line one\nline two\t\ttabbed'],
    ['long post (note_tweet)', 'x'.repeat(200) + ' https://example.com/long ' + 'y'.repeat(120)],
  ])('%s', (_label, text) => {
    expect(sameContent(text, asX(text))).toBe(true);
  });

  it('a reply with the @handle prefix outside display_text_range', () => {
    expect(sameContent('thanks!', asX('thanks!', '@acme '))).toBe(true);
  });

  it('unicode NFC vs NFD', () => {
    expect(sameContent('caf\u00e9', { id: '1', text: 'cafe\u0301' })).toBe(true);
  });

  it.each([
    ['different words', 'hello world', 'hello there'],
    ['different link', 'see https://example.com/a', 'see https://example.com/b'],
    ['link vs none', 'see https://example.com/a', 'see'],
    ['prefix of', 'hello', 'hello world'],
  ])('rejects %s', (_label, sent, other) => {
    expect(sameContent(sent, asX(other))).toBe(false);
  });
});

describe('attribute', () => {
  const t0 = Date.parse('2026-06-01T12:00:00Z');
  const key = (keyId: string, text: string, startOffset: number, extra: Partial<SentItem> = {}): SentItem => ({
    keyId, text, windowStart: t0 + startOffset - 60_000, windowEnd: t0 + startOffset + 120_000, attemptStartedAt: t0 + startOffset, ...extra,
  });
  const seen = (id: string, text: string, offset: number, extra: Partial<SeenItem> = {}): SeenItem => ({
    ...asX(text), id, createdAt: new Date(t0 + offset).toISOString(), ...extra,
  });

  it('two keys with the same text each get their own copy, oldest attempt first', () => {
    const m = attribute([key('later', 'gm', 5_000), key('earlier', 'gm', 0)], [seen('2', 'gm', 5_100), seen('1', 'gm', 100)]);
    expect(m.get('earlier')?.id).toBe('1');
    expect(m.get('later')?.id).toBe('2');
  });

  it('never attributes one live post to two keys', () => {
    const m = attribute([key('a', 'gm', 0), key('b', 'gm', 1_000)], [seen('1', 'gm', 100)]);
    expect([...m.values()].map((v) => v.id)).toEqual(['1']);
  });

  it('does not steal a post already attributed to another key', () => {
    const m = attribute([key('ambiguous', 'gm', 0)], [seen('1', 'gm', 100)], new Set(['1']));
    expect(m.size).toBe(0);
  });

  it('requires created_at inside the attempt window', () => {
    expect(attribute([key('k', 'gm', 0)], [seen('1', 'gm', -3_600_000)]).size).toBe(0);
    expect(attribute([key('k', 'gm', 0)], [seen('1', 'gm', 3_600_000)]).size).toBe(0);
    expect(attribute([key('k', 'gm', 0)], [seen('1', 'gm', 1_000)]).size).toBe(1);
  });

  it('requires the right reply target, and a post not to be a reply', () => {
    expect(attribute([key('k', 'yes', 0, { inReplyToTweetId: '77' })], [seen('1', 'yes', 10, { inReplyToTweetId: '78' })]).size).toBe(0);
    expect(attribute([key('k', 'yes', 0, { inReplyToTweetId: '77' })], [seen('1', 'yes', 10, { inReplyToTweetId: '77' })]).size).toBe(1);
    expect(attribute([key('k', 'yes', 0)], [seen('1', 'yes', 10, { inReplyToTweetId: '77' })]).size).toBe(0);
  });
});
