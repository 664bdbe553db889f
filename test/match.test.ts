import { describe, expect, it } from 'vitest';
import { attribute, judge, sameContent, snowflakeTime, type Judgement, type SeenItem, type SentItem } from '../src/domain/match.js';
import { renderBody, renderPost, tcoUrl } from '../src/fake-x/render.js';
import { dmEventOf, timelineTweetOf, type RawTweet } from '../src/x/twitter.js';

/*
 * X's side is written out as X API v2 returns it (timeline `data[]` and DM
 * event entries), mapped by the adapter's own mapping. Only the last block
 * uses the fake X's renderer, to check that the fake and the matcher agree.
 */

const T0 = Date.parse('2026-12-01T10:00:00.400Z');
/** Snowflake ids (they encode their creation time, as X's do). */
const ID = {
  before: '2127699222328246272', // 09:40:00.000, before the attempt
  at0400: '2127704257170767872', // 10:00:00.400
  at1250: '2127704260735926272', // 10:00:01.250
  at2000: '2127704263881654272', // 10:00:02.000
  edit: '2127705387955126272', // 10:04:30.000, after the window
  target: '2127311668638646272', // 2026-11-30, the post replied to
};
const key = (text: string, extra: Partial<SentItem> = {}): SentItem => ({
  keyId: 'k',
  text,
  windowStart: T0,
  windowEnd: T0 + 120_000,
  attemptStartedAt: T0,
  ...extra,
});
const tweet = (raw: RawTweet): SeenItem => timelineTweetOf(raw);
const verdictOf = (sent: string | SentItem, raw: RawTweet): Judgement => judge(typeof sent === 'string' ? key(sent) : sent, tweet(raw));

describe('snowflake ids', () => {
  it('decode to their creation time (X docs example: 1212092628029698048 at 2019-12-31T19:26:16Z)', () => {
    expect(new Date(snowflakeTime('1212092628029698048')!).toISOString()).toBe('2019-12-31T19:26:16.771Z');
    expect(snowflakeTime(ID.at1250)).toBe(Date.parse('2026-12-01T10:00:01.250Z'));
    expect(snowflakeTime('42')).toBeUndefined();
  });
});

describe('match: X renderings undone', () => {
  it('a URL comes back as a 23-char t.co link, the original in expanded_url', () => {
    const raw: RawTweet = {
      id: ID.at1250,
      text: 'new blog post https://t.co/AbC123xYz0 read it',
      created_at: '2026-12-01T10:00:01.000Z',
      entities: {
        urls: [
          {
            start: 14,
            end: 37,
            url: 'https://t.co/AbC123xYz0',
            expanded_url: 'https://example.com/posts/2026/exactly-once?utm=x&y=1',
            display_url: 'example.com/posts/2026/ex…',
          },
        ],
      },
      display_text_range: [0, 45],
      edit_history_tweet_ids: [ID.at1250],
    };
    expect(verdictOf('new blog post https://example.com/posts/2026/exactly-once?utm=x&y=1 read it', raw)).toEqual({ verdict: 'match' });
    // A scheme-less link is stored as http://.
    const bare = { ...raw, entities: { urls: [{ ...raw.entities!.urls![0]!, expanded_url: 'http://example.com/page' }] } };
    expect(verdictOf('new blog post example.com/page read it', bare).verdict).toBe('match');
    expect(verdictOf('new blog post https://example.com/other read it', raw).verdict).toBe('none');
    expect(verdictOf('new blog post read it', raw).verdict).toBe('none');
  });

  it.each([
    'https://twitter.com/acme/status/2127311668638646272',
    'https://www.twitter.com/acme/status/2127311668638646272',
    'https://mobile.twitter.com/acme/status/2127311668638646272',
    'https://x.com/ACME/status/2127311668638646272/',
    'https://www.x.com/i/web/status/2127311668638646272',
  ])('an x.com status link comes back as %s', (expanded) => {
    const raw: RawTweet = {
      id: ID.at1250,
      text: 'worth reading https://t.co/StAtUs0001',
      created_at: '2026-12-01T10:00:01.000Z',
      entities: { urls: [{ start: 14, end: 37, url: 'https://t.co/StAtUs0001', expanded_url: expanded, display_url: 'x.com/acme/status/2127…' }] },
      display_text_range: [0, 37],
      edit_history_tweet_ids: [ID.at1250],
    };
    expect(verdictOf('worth reading https://x.com/acme/status/2127311668638646272', raw).verdict).toBe('match');
    // Another status id, or another path after it, is another link.
    expect(verdictOf('worth reading https://x.com/acme/status/2127311668638646273', raw).verdict).toBe('none');
    // The same status with another path after its id: maybe, not proven.
    expect(verdictOf('worth reading https://x.com/acme/status/2127311668638646272/photo/1', raw).verdict).toBe('uncertain');
  });

  it('& < > come back HTML-escaped, and are undone exactly once', () => {
    const raw: RawTweet = {
      id: ID.at1250,
      text: 'fish &amp; chips &lt;3 &gt; all',
      created_at: '2026-12-01T10:00:01.000Z',
      display_text_range: [0, 31],
      edit_history_tweet_ids: [ID.at1250],
    };
    expect(verdictOf('fish & chips <3 > all', raw).verdict).toBe('match');
    // display_text_range counted on the unescaped text, as some clients saw it.
    expect(verdictOf('fish & chips <3 > all', { ...raw, display_text_range: [0, 21] }).verdict).toBe('match');
    expect(verdictOf('fish & chips <3 > al', raw).verdict).toBe('none');
    const literal: RawTweet = {
      id: ID.at1250,
      text: 'write &amp;amp; to get &amp;',
      created_at: '2026-12-01T10:00:01.000Z',
      edit_history_tweet_ids: [ID.at1250],
    };
    expect(verdictOf('write &amp; to get &', literal).verdict).toBe('match');
    expect(verdictOf('write & to get &', literal).verdict).not.toBe('match');
  });

  it('DMs come back HTML-escaped with t.co links', () => {
    const dm = dmEventOf(
      {
        id: ID.at1250,
        text: 'terms &amp; prices: https://t.co/DmLiNk0001',
        created_at: '2026-12-01T10:00:01.000Z',
        sender_id: '1001',
        entities: {
          urls: [{ start: 20, end: 43, url: 'https://t.co/DmLiNk0001', expanded_url: 'https://example.com/terms', display_url: 'example.com/terms' }],
        },
      },
      '1001',
    );
    expect(dm.fromSelf).toBe(true);
    expect(judge(key('terms & prices: https://example.com/terms'), dm).verdict).toBe('match');
    expect(judge(key('terms & prices: https://example.com/other'), dm).verdict).toBe('none');
  });

  describe("a reply's leading @handles fold into the hidden prefix", () => {
    const reply = (text: string, start: number): RawTweet => ({
      id: ID.at1250,
      text,
      created_at: '2026-12-01T10:00:01.000Z',
      display_text_range: [start, Array.from(text).length],
      referenced_tweets: [{ type: 'replied_to', id: ID.target }],
      edit_history_tweet_ids: [ID.at1250],
    });
    const to = (text: string) => key(text, { inReplyToTweetId: ID.target });

    it.each([
      ['the user wrote the handles', '@bob @carol thanks!'],
      ['X added the target, the user wrote @carol', '@carol thanks!'],
      ['handles in another case', '@Bob @CAROL thanks!'],
    ])('%s', (_label, sent) => {
      expect(verdictOf(to(sent), reply('@bob @carol thanks!', 12)).verdict).toBe('match');
    });

    it('X added only the target handle', () => {
      expect(verdictOf(to('thanks!'), reply('@bob thanks!', 5)).verdict).toBe('match');
      // Old style: X folded the target only, the user's own handle stays visible.
      expect(verdictOf(to('@carol thanks!'), reply('@bob @carol thanks!', 5)).verdict).toBe('match');
    });

    it('a different reply is not matched', () => {
      // The user named @dave: X never drops a handle the user wrote.
      expect(verdictOf(to('@dave thanks!'), reply('@bob @carol thanks!', 12)).verdict).toBe('none');
      expect(verdictOf(to('@bob thanks a lot!'), reply('@bob thanks!', 5)).verdict).toBe('none');
      // The reply target decides too.
      expect(verdictOf(to('thanks!'), { ...reply('@bob thanks!', 5), referenced_tweets: [{ type: 'replied_to', id: ID.before }] }).verdict).toBe('none');
      expect(verdictOf('thanks!', reply('@bob thanks!', 5)).verdict).toBe('none');
    });

    it('more handles than X adds → uncertain', () => {
      const j = verdictOf(to('thanks!'), reply('@bob @carol thanks!', 12));
      expect(j).toMatchObject({ verdict: 'uncertain', why: expect.stringContaining('@bob @carol') });
    });

    it('no display_text_range and an extra @handle → uncertain', () => {
      const raw = reply('@bob thanks!', 0);
      delete raw.display_text_range;
      expect(verdictOf(to('thanks!'), raw).verdict).toBe('uncertain');
      expect(verdictOf(to('@bob thanks!'), raw).verdict).toBe('match');
    });
  });

  describe('a long post is cut at a word boundary, the whole text in note_tweet', () => {
    const A = 'We rebuilt our scheduler so that every post goes out exactly once, even when the network drops the answer halfway.';
    const B =
      'The long version: every attempt is fenced, every ambiguous call is checked against the timeline before anything is retried, and a post that cannot be proven either way is handed to a person instead of being sent twice. Read the whole story.';
    const sent = `${A} https://example.com/whitepaper ${B}`;
    const shown =
      'We rebuilt our scheduler so that every post goes out exactly once, even when the network drops the answer halfway. https://t.co/LoNgPoSt01 The long version: every attempt is fenced, every ambiguous call is checked against the timeline before anything is retried, and a post that';
    const link = { url: 'https://t.co/LoNgPoSt01', expanded_url: 'https://example.com/whitepaper', display_url: 'example.com/whitepaper' };
    const raw: RawTweet = {
      id: ID.at1250,
      text: shown,
      created_at: '2026-12-01T10:00:01.000Z',
      display_text_range: [0, 278],
      entities: { urls: [{ start: 115, end: 138, ...link }] },
      note_tweet: { text: `${A} https://t.co/LoNgPoSt01 ${B}`, entities: { urls: [{ start: 115, end: 138, ...link }] } },
      edit_history_tweet_ids: [ID.at1250],
    };

    it('matched by note_tweet', () => {
      expect(Array.from(shown)).toHaveLength(278);
      expect(verdictOf(sent, raw).verdict).toBe('match');
      expect(verdictOf(`${A} https://example.com/whitepaper ${B} PS.`, raw).verdict).toBe('none');
      expect(verdictOf(shown, raw).verdict).toBe('none');
    });

    it('cut without note_tweet → uncertain; a short post that starts the same is not', () => {
      const { note_tweet: _, ...cut } = raw;
      expect(verdictOf(sent, cut)).toMatchObject({ verdict: 'uncertain', why: expect.stringContaining('note_tweet') });
      expect(verdictOf(`${A} https://example.com/elsewhere ${B}`, cut).verdict).toBe('none');
      const short: RawTweet = { id: ID.at1250, text: 'We rebuilt our scheduler', created_at: '2026-12-01T10:00:01.000Z', edit_history_tweet_ids: [ID.at1250] };
      expect(verdictOf(sent, short).verdict).toBe('none');
    });

    it('cut without note_tweet where X cuts without a space (before a link, inside a long word): uncertain, never not found', () => {
      const at = (text: string): RawTweet => ({ id: ID.at1250, text, created_at: '2026-12-01T10:00:01.000Z', edit_history_tweet_ids: [ID.at1250] });
      const beforeLink = `${'a'.repeat(265)}(https://example.com/x) ${'b'.repeat(20)}`;
      expect(verdictOf(beforeLink, at(`${'a'.repeat(265)}(`))).toMatchObject({ verdict: 'uncertain', why: expect.stringContaining('note_tweet') });
      const word = `${'x'.repeat(150)} ${'y'.repeat(300)}`;
      expect(verdictOf(word, at(`${'x'.repeat(150)} ${'y'.repeat(129)}`)).verdict).toBe('uncertain');
      // CJK weighs 2: X cuts at 140 characters.
      const cjk = '新しい製品を発表します。'.repeat(20);
      expect(verdictOf(cjk, at(Array.from(cjk).slice(0, 140).join(''))).verdict).toBe('uncertain');
    });
  });

  describe('media and quotes append a t.co link the user did not write', () => {
    const media = {
      start: 11,
      end: 34,
      url: 'https://t.co/MeDiA00001',
      expanded_url: `https://x.com/acme/status/${ID.at1250}/photo/1`,
      display_url: 'pic.x.com/MeDiA00001',
      media_key: '3_2127704260735926271',
    };

    it('media: outside display_text_range', () => {
      const raw: RawTweet & { attachments: unknown } = {
        id: ID.at1250,
        text: 'launch day https://t.co/MeDiA00001',
        created_at: '2026-12-01T10:00:01.000Z',
        display_text_range: [0, 10],
        entities: { urls: [media] },
        attachments: { media_keys: ['3_2127704260735926271'] },
        edit_history_tweet_ids: [ID.at1250],
      };
      // The key was sent with one image; X lists one media key.
      expect(verdictOf(key('launch day', { mediaCount: 1 }), raw).verdict).toBe('match');
      expect(verdictOf(key('launch night', { mediaCount: 1 }), raw).verdict).toBe('none');
      // The same post is not a text-only key's post.
      expect(verdictOf('launch day', raw).verdict).toBe('none');
    });

    it('media: at the end of the displayed text', () => {
      const raw: RawTweet = {
        id: ID.at1250,
        text: 'launch day https://t.co/MeDiA00001',
        created_at: '2026-12-01T10:00:01.000Z',
        display_text_range: [0, 34],
        entities: { urls: [{ ...media, media_key: undefined } as never] },
        edit_history_tweet_ids: [ID.at1250],
      };
      expect(verdictOf('launch day', raw).verdict).toBe('match');
    });

    it('a quote: the quoted post linked after the displayed text', () => {
      const raw: RawTweet = {
        id: ID.at1250,
        text: 'so true https://t.co/QuOtE00001',
        created_at: '2026-12-01T10:00:01.000Z',
        display_text_range: [0, 7],
        referenced_tweets: [{ type: 'quoted', id: ID.target }],
        entities: {
          urls: [
            {
              start: 8,
              end: 31,
              url: 'https://t.co/QuOtE00001',
              expanded_url: `https://twitter.com/bob/status/${ID.target}`,
              display_url: `x.com/bob/status/212…`,
            },
          ],
        },
        edit_history_tweet_ids: [ID.at1250],
      };
      expect(verdictOf('so true', raw).verdict).toBe('match');
      // The user pasted the link themselves; X turned it into the quote and hid it.
      expect(verdictOf(`so true https://x.com/bob/status/${ID.target}`, raw).verdict).toBe('match');
      expect(verdictOf(`so true https://x.com/bob/status/${ID.before}`, raw).verdict).toBe('none');
      // Quoting, with the link inside the displayed range.
      expect(verdictOf('so true', { ...raw, display_text_range: [0, 31] }).verdict).toBe('match');
    });
  });

  describe('a key sent as a quote, or with a poll', () => {
    const quoting = (target: string, extra: Partial<RawTweet> = {}): RawTweet => ({
      id: ID.at1250,
      text: 'so true https://t.co/QuOtE00001',
      created_at: '2026-12-01T10:00:01.000Z',
      display_text_range: [0, 7],
      referenced_tweets: [{ type: 'quoted', id: target }],
      entities: {
        urls: [
          {
            start: 8,
            end: 31,
            url: 'https://t.co/QuOtE00001',
            expanded_url: `https://twitter.com/bob/status/${target}`,
            display_url: 'twitter.com/bob/status/2…',
          },
        ],
      },
      edit_history_tweet_ids: [ID.at1250],
      ...extra,
    });

    it('a quote matches the post quoting the same post, never one quoting another', () => {
      expect(verdictOf(key('so true', { quoteTweetId: ID.target }), quoting(ID.target)).verdict).toBe('match');
      expect(verdictOf(key('so true', { quoteTweetId: ID.target }), quoting(ID.before)).verdict).toBe('none');
    });

    it('a quote X shows without referenced_tweets: its link is read as the quote, uncertain', () => {
      const { referenced_tweets: _, ...silent } = quoting(ID.target);
      expect(verdictOf(key('so true', { quoteTweetId: ID.target }), silent)).toMatchObject({
        verdict: 'uncertain',
        why: expect.stringContaining('which post it quotes'),
      });
    });

    it('a poll: matched with poll_ids; a poll X does not show is uncertain; a poll on a key sent without one is not ours', () => {
      const plain: RawTweet = { id: ID.at1250, text: 'tabs or spaces?', created_at: '2026-12-01T10:00:01.000Z', edit_history_tweet_ids: [ID.at1250] };
      const polled: RawTweet = { ...plain, attachments: { poll_ids: ['1199786642468413448'] } };
      expect(verdictOf(key('tabs or spaces?', { hasPoll: true }), polled).verdict).toBe('match');
      expect(verdictOf(key('tabs or spaces?', { hasPoll: true }), plain)).toMatchObject({ verdict: 'uncertain', why: expect.stringContaining('no poll') });
      expect(verdictOf(key('tabs or spaces?'), polled).verdict).toBe('none');
      expect(verdictOf(key('tabs or spaces?'), plain).verdict).toBe('match');
    });
  });

  describe('an edit makes a new id; edit_history_tweet_ids[0] is the original', () => {
    const edited = (text: string, original: string): RawTweet => ({
      id: ID.edit,
      text,
      created_at: '2026-12-01T10:04:30.000Z',
      edit_history_tweet_ids: [original, ID.edit],
    });

    it('original in the window, text unchanged → match (the current id)', () => {
      expect(verdictOf('gm everyone', edited('gm everyone', ID.at1250))).toMatchObject({ verdict: 'match', why: expect.stringContaining(ID.at1250) });
    });

    it('original in the window, text edited → uncertain, naming the original', () => {
      expect(verdictOf('gm everyone', edited('gm everyone! (edited)', ID.at1250))).toMatchObject({
        verdict: 'uncertain',
        why: expect.stringContaining(ID.at1250),
      });
    });

    it('original before the window → not ours, whatever it says now', () => {
      expect(verdictOf('gm everyone', edited('gm everyone', ID.before)).verdict).toBe('none');
      // Without the history it would have been judged on its own created_at (outside the window too).
      expect(verdictOf('gm everyone', { ...edited('gm everyone', ID.before), edit_history_tweet_ids: [ID.edit] }).verdict).toBe('none');
    });
  });

  it('created_at has whole seconds: rounded down by up to 1 s below the window start', () => {
    const at = (created_at: string): RawTweet => ({ id: ID.at0400, text: 'on time', created_at, edit_history_tweet_ids: [ID.at0400] });
    // The attempt started at 10:00:00.400; X says 10:00:00.
    expect(verdictOf('on time', at('2026-12-01T10:00:00.000Z')).verdict).toBe('match');
    expect(verdictOf('on time', at('2026-12-01T09:59:59.000Z')).verdict).toBe('none');
    expect(verdictOf('on time', at('2026-12-01T10:02:00.000Z')).verdict).toBe('match');
    expect(verdictOf('on time', at('2026-12-01T10:02:01.000Z')).verdict).toBe('none');
  });

  it('Unicode NFC vs NFD', () => {
    expect(sameContent('caf\u00e9', { id: '1', text: 'cafe\u0301' })).toBe(true);
  });
});

describe('uncertain: may be ours, cannot be proven', () => {
  const base: RawTweet = {
    id: ID.at1250,
    text: 'docs at https://t.co/UnMaPpEd01',
    created_at: '2026-12-01T10:00:01.000Z',
    display_text_range: [0, 31],
    edit_history_tweet_ids: [ID.at1250],
  };

  it('a t.co link X did not expand', () => {
    expect(verdictOf('docs at https://example.com/docs', base)).toMatchObject({ verdict: 'uncertain', why: expect.stringContaining('expanded') });
    const noExpanded = { ...base, entities: { urls: [{ start: 8, end: 31, url: 'https://t.co/UnMaPpEd01' }] } };
    expect(verdictOf('docs at https://example.com/docs', noExpanded).verdict).toBe('uncertain');
    // Still the other words decide.
    expect(verdictOf('api at https://example.com/docs', base).verdict).toBe('none');
  });

  it('an expanded link that differs only in letter case', () => {
    const raw = { ...base, entities: { urls: [{ start: 8, end: 31, url: 'https://t.co/UnMaPpEd01', expanded_url: 'https://example.com/Docs' }] } };
    expect(verdictOf('docs at https://example.com/docs', raw).verdict).toBe('uncertain');
  });

  it('whitespace and escaping beyond the exact rules', () => {
    const raw: RawTweet = { id: ID.at1250, text: 'two  spaces &amp;amp; more', created_at: '2026-12-01T10:00:01.000Z', edit_history_tweet_ids: [ID.at1250] };
    expect(verdictOf('two spaces & more', raw).verdict).toBe('uncertain');
    expect(verdictOf('two spaces and more', raw).verdict).toBe('none');
  });

  it('only inside the window and with the same reply target', () => {
    expect(verdictOf('docs at https://example.com/docs', { ...base, created_at: '2026-12-01T11:00:00.000Z' }).verdict).toBe('none');
    expect(verdictOf(key('docs at https://example.com/docs', { inReplyToTweetId: ID.target }), base).verdict).toBe('none');
  });
});

describe('attribute', () => {
  const k = (keyId: string, text: string, offset: number): SentItem => ({
    keyId,
    text,
    windowStart: T0 + offset - 60_000,
    windowEnd: T0 + offset + 120_000,
    attemptStartedAt: T0 + offset,
  });
  const seenAt = (id: string, text: string, createdAt: string, extra: Partial<RawTweet> = {}) =>
    tweet({ id, text, created_at: createdAt, edit_history_tweet_ids: [id], ...extra });

  it('same text on two keys: each gets its own post, oldest attempt first', () => {
    const m = attribute(
      [k('later', 'gm', 1_000), k('earlier', 'gm', 0)],
      [seenAt(ID.at2000, 'gm', '2026-12-01T10:00:02.000Z'), seenAt(ID.at0400, 'gm', '2026-12-01T10:00:00.000Z')],
    );
    expect(m.get('earlier')).toMatchObject({ verdict: 'match', item: { id: ID.at0400 } });
    expect(m.get('later')).toMatchObject({ verdict: 'match', item: { id: ID.at2000 } });
  });

  it('never gives one live post to two keys', () => {
    const m = attribute([k('a', 'gm', 0), k('b', 'gm', 1_000)], [seenAt(ID.at0400, 'gm', '2026-12-01T10:00:00.000Z')]);
    expect([...m.entries()].map(([keyId, a]) => [keyId, a.item.id])).toEqual([['a', ID.at0400]]);
  });

  it('an exact match beats an uncertain one, even for a later key', () => {
    // "gm  all" (two spaces) is only uncertainly "gm all"; the later key sent "gm all".
    const m = attribute([k('older', 'gm  all', 0), k('newer', 'gm all', 1_000)], [seenAt(ID.at1250, 'gm all', '2026-12-01T10:00:01.000Z')]);
    expect(m.get('newer')).toMatchObject({ verdict: 'match', item: { id: ID.at1250 } });
    expect(m.has('older')).toBe(false);
  });

  it('an uncertain candidate goes to a key with no exact match, with the reason', () => {
    const m = attribute([k('k', 'gm  all', 0)], [seenAt(ID.at1250, 'gm all', '2026-12-01T10:00:01.000Z')]);
    expect(m.get('k')).toMatchObject({ verdict: 'uncertain', item: { id: ID.at1250 }, why: expect.any(String) });
  });

  it('does not reuse a post already attributed elsewhere, by its id or an id of its edit history', () => {
    expect(attribute([k('k', 'gm', 0)], [seenAt(ID.at0400, 'gm', '2026-12-01T10:00:00.000Z')], new Set([ID.at0400])).size).toBe(0);
    const edited = seenAt(ID.edit, 'gm', '2026-12-01T10:04:30.000Z', { edit_history_tweet_ids: [ID.at0400, ID.edit] });
    expect(attribute([k('k', 'gm', 0)], [edited]).get('k')).toMatchObject({ verdict: 'match', item: { id: ID.edit } });
    expect(attribute([k('k', 'gm', 0)], [edited], new Set([ID.at0400])).size).toBe(0);
  });
});

describe("the fake X's renderer agrees with the matcher", () => {
  let n = 0;
  /** What the fake X shows for a sent text, through the adapter's mapping. */
  function asFake(text: string, replyPrefix = '', quote?: string): SeenItem {
    const appended = quote ? { tco: tcoUrl(n++), expanded: `https://twitter.com/bob/status/${quote}` } : undefined;
    const post = renderPost(renderBody(text, { escape: true, nextTco: () => tcoUrl(n++) }), replyPrefix, replyPrefix !== '', appended);
    return timelineTweetOf({
      id: String(1000 + n),
      text: post.text,
      entities: { urls: post.urls },
      display_text_range: post.displayTextRange,
      created_at: '2026-12-01T10:00:01.000Z',
      ...(quote && { referenced_tweets: [{ type: 'quoted', id: quote }] }),
      ...(post.noteTweet && { note_tweet: { text: post.noteTweet.text, entities: { urls: post.noteTweet.urls } } }),
    });
  }
  const withoutNote = ({ noteText: _t, noteUrls: _u, ...item }: SeenItem): SeenItem => item;

  it('quotes, and long posts (weighted) with and without note_tweet', () => {
    const k = (text: string, extra: Partial<SentItem> = {}) => key(text, extra);
    const quoted = asFake('so true', '', ID.target);
    expect(judge(k('so true', { quoteTweetId: ID.target }), quoted).verdict).toBe('match');
    expect(judge(k('so true', { quoteTweetId: ID.before }), quoted).verdict).toBe('none');
    for (const long of [
      `${'word '.repeat(60)}https://example.com/long ${'more '.repeat(30)}`.trim(),
      '新しい製品を発表します。'.repeat(20),
      `${'fish & chips '.repeat(30)}`.trim(),
    ]) {
      const item = asFake(long);
      expect(item.noteText, long).toBeDefined();
      expect(judge(k(long), item).verdict, long).toBe('match');
      expect(judge(k(long), withoutNote(item)).verdict, long).toBe('uncertain');
      const quotedLong = asFake(long, '', ID.target);
      expect(judge(k(long, { quoteTweetId: ID.target }), quotedLong).verdict, long).toBe('match');
      expect(judge(k(long, { quoteTweetId: ID.target }), withoutNote(quotedLong)).verdict, long).toBe('uncertain');
    }
  });

  it.each([
    ['plain', 'hello world'],
    ['URL', 'read this https://example.com/a/very/long/path?x=1&y=2 now'],
    ['two URLs', 'a https://a.example/1 b https://b.example/2'],
    ['scheme-less URL', 'see example.com/page'],
    ['x.com status link', 'see https://x.com/acme/status/2127311668638646272'],
    ['& < >', 'fish & chips <3 > all'],
    ['literal entity text', 'write &amp; to get &'],
    ['emoji', 'launch 🚀🚀 day 👩‍👩‍👧'],
    ['CJK', '新しい製品を発表します'],
    ['whitespace', 'line one\nline two\t\ttabbed'],
    ['long post (note_tweet)', `${'word '.repeat(60)}https://example.com/long ${'more '.repeat(30)}`.trim()],
  ])('%s', (_label, text) => {
    expect(sameContent(text, asFake(text))).toBe(true);
  });

  it('replies, with and without the user writing the handles', () => {
    expect(sameContent('thanks!', asFake('thanks!', '@acme '))).toBe(true);
    expect(sameContent('@acme @carol thanks!', asFake('@acme @carol thanks!', '@acme '))).toBe(true);
    expect(sameContent('@carol thanks!', asFake('@carol thanks!', '@acme '))).toBe(true);
  });

  it.each([
    ['different words', 'hello world', 'hello there'],
    ['different link', 'see https://example.com/a', 'see https://example.com/b'],
    ['link vs none', 'see https://example.com/a', 'see'],
    ['prefix of', 'hello', 'hello world'],
  ])('rejects %s', (_label, sent, other) => {
    expect(sameContent(sent, asFake(other))).toBe(false);
  });
});
