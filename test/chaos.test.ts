import { type ChildProcess, spawn } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { BEFORE_START, builtPaths } from '../bench/chaos/processes.js';
import type { KeySpec } from '../bench/chaos/schedule.js';
import { answerViolation, queuedOnceViolations, runViolations } from '../bench/chaos/verify.js';
import type { CreatedItem } from '../src/fake-x/index.js';
import type { PostRecord } from '../src/ledger/record.js';
import { eventsViolation } from '../src/ops/ground-truth.js';
import { REDIS_URL } from './harness.js';
import { verify } from './support/verify.js';

const children: ChildProcess[] = [];
afterAll(() => {
  // SIGTERM lets the chaos run kill its workers and the fake X on its way out.
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
});

function runChaosCli(args: string[], timeoutMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [builtPaths().chaos, ...args], { env: { ...process.env, REDIS_URL }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

describe('chaos suite (CI size)', () => {
  it('300 keys, 20 accounts, 3 workers SIGKILLed/SIGTERMed every 3 s, 30 % X faults, X as in 2026 (cut gzip bodies, failing lookups, restricted replies, refused DMs, x.com links, @-led replies), racing producers, cancels/edits/reschedules: 0 duplicates, 0 lost', async () => {
    const seed = process.env.CHAOS_SEED ?? String(Math.floor(Math.random() * 2 ** 31));
    const { code, out } = await runChaosCli(
      [
        '--keys',
        '300',
        '--accounts',
        '20',
        '--workers',
        '3',
        '--kill-every-s',
        '3',
        '--fault-rate',
        '0.3',
        '--lag-max-ms',
        '3000',
        '--settle-ms',
        '8000',
        '--seed',
        seed,
        // Normally ~50 s. A SIGKILL in the middle of a reconciliation pass holds the lock for at
        // most its 15 s TTL (docs/chaos.md); the bound is a safety net for a loaded machine.
        '--timeout-s',
        '300',
      ],
      420_000,
    );
    const line = out.split('\n').find((l) => l.startsWith('CHAOS-SUMMARY '));
    // On failure, show the table and the violating keys (replay with CHAOS_SEED).
    expect(line, `seed ${seed}\n${out.slice(-6000)}`).toBeDefined();
    const summary = JSON.parse(line!.slice('CHAOS-SUMMARY '.length)) as Record<string, unknown>;
    expect({ code, ...summary }, `seed ${seed}\n${out.slice(-6000)}`).toMatchObject({
      code: 0,
      ok: true,
      duplicates: 0,
      lost: 0,
      stuck: 0,
      violations: 0,
      timedOut: false,
      lateWrites: 0,
      crashes: 0,
    });
    expect(summary.sent as number).toBe(300 - (summary.failed as number) - (summary.cancelled as number));
    // 60 of the keys are 3-part threads; those the calendar did not cancel went out whole, each part once, in order (checked part by part above).
    expect(summary.threads).toBe(60);
    expect(summary.threadsSent as number).toBeGreaterThanOrEqual(40);
    // The calendar stream cancelled, edited and rescheduled keys during the faults and kills (its answers are checked above).
    expect(
      Object.values(summary.calendar as Record<string, number>).reduce((a, b) => a + b, 0),
      JSON.stringify(summary.calendar),
    ).toBeGreaterThan(10);
    // Exactly the keys X refuses for good (30 restricted replies, 30 refused DMs) failed, with X's reason; no account was paused.
    expect(summary.failedByReason).toEqual({ rejected: 60 });
    // The run really was chaotic.
    expect(summary.faults as number).toBeGreaterThan(50);
    expect(summary.sigkill as number).toBeGreaterThan(0);
  }, 600_000);
});

describe('the chaos check itself can fail', () => {
  const key = (i: number, over: Partial<KeySpec> = {}): KeySpec => ({
    keyId: `k.s${i}.p`,
    slotId: `s${i}`,
    postId: 'p',
    accountId: 'a',
    userId: '7',
    kind: 'post',
    text: `chaos r1 #${i} post`,
    scheduledAt: 1_000,
    deadline: 100_000,
    ...over,
  });
  const item = (id: string, text: string, over: Partial<CreatedItem> = {}): CreatedItem => ({
    kind: 'post',
    id,
    authorId: '7',
    text,
    createdAt: 1_500,
    ...over,
  });
  const rec = (k: KeySpec, over: Partial<PostRecord>): PostRecord => ({
    keyId: k.keyId,
    slotId: k.slotId,
    postId: k.postId,
    accountId: k.accountId,
    kind: k.kind,
    text: k.text,
    scheduledAt: k.scheduledAt,
    deadline: k.deadline,
    fingerprint: 'f',
    state: 'sent',
    attempt: 1,
    jobId: k.keyId,
    createdAt: 0,
    updatedAt: 0,
    ...over,
  });

  it('passes a clean run and measures scheduled -> live', () => {
    const k = [key(0), key(1)];
    const v = verify(k, [rec(k[0]!, { tweetId: '10' }), rec(k[1]!, { state: 'failed', reason: 'expired' })], [item('10', k[0]!.text)], 'r1');
    expect(v).toMatchObject({ duplicates: 0, lost: 0, stuck: 0, sent: 1, failed: 1, failedByReason: { expired: 1 }, liveAfterMs: [500], violations: [] });
  });

  it('flags two items for one key as a duplicate', () => {
    const k = [key(0)];
    const v = verify(k, [rec(k[0]!, { tweetId: '10' })], [item('10', k[0]!.text), item('11', k[0]!.text)], 'r1');
    expect(v.duplicates).toBe(1);
    expect(v.violations.map((x) => x.kind)).toEqual(['duplicate']);
  });

  it('flags sent-but-not-on-X, failed-but-live, a missing record and a key left in doubt', () => {
    const k = [key(0), key(1), key(2), key(3)];
    const v = verify(
      k,
      [rec(k[0]!, { tweetId: '99' }), rec(k[1]!, { state: 'failed', reason: 'expired' }), undefined, rec(k[3]!, { state: 'ambiguous' })],
      [item('20', k[1]!.text)],
      'r1',
    );
    expect(v.violations.map((x) => x.kind).sort()).toEqual(['failed-but-live', 'lost', 'lost', 'stuck']);
    expect(v.lost).toBe(3);
    expect(v.stuck).toBe(1);
  });

  it('flags a key X refuses that did not fail as rejected, and a rejection of a key X accepts', () => {
    const k = [key(0, { refusedByX: true }), key(1, { refusedByX: true }), key(2), key(3)];
    const v = verify(
      k,
      [
        rec(k[0]!, { state: 'failed', reason: 'rejected', detail: 'http-403: Reply to this conversation is not allowed' }),
        rec(k[1]!, { state: 'failed', reason: 'expired' }),
        rec(k[2]!, { state: 'failed', reason: 'rejected' }),
        rec(k[3]!, { tweetId: '30' }),
      ],
      [item('30', k[3]!.text)],
      'r1',
    );
    expect(v.violations.map((x) => [x.keyId, x.kind])).toEqual([
      [k[1]!.keyId, 'refused-not-failed'],
      [k[2]!.keyId, 'rejected-unexpectedly'],
    ]);
  });

  it('flags a wrong author or reply target, a failure without reason and stray items', () => {
    const k = [key(0, { kind: 'reply', inReplyToTweetId: '5' }), key(1)];
    const v = verify(
      k,
      [rec(k[0]!, { tweetId: '10' }), rec(k[1]!, { state: 'failed' })],
      [item('10', k[0]!.text, { authorId: '8', inReplyToTweetId: '5' }), item('12', 'chaos r1 #9 post')],
      'r1',
    );
    expect(v.violations.map((x) => x.kind).sort()).toEqual(['failed-without-reason', 'misattributed']);
    expect(v.strays).toBe(1);
  });

  it("flags a key whose events are not its audit trail's transitions: one missing, one twice, one without its transition", () => {
    const trail = ['queued', 'claimed', 'ambiguous', 'released', 'claimed', 'sent'].map((event) => ({ event }));
    const ev = (...types: string[]) => types.map((type) => ({ type }));
    expect(eventsViolation(trail, ev('queued', 'ambiguous', 'released', 'sent'), 50)).toBeUndefined();
    expect(eventsViolation(trail, ev('queued', 'ambiguous', 'sent'), 50)).toBe(
      'events [queued, ambiguous, sent], audit trail [queued, ambiguous, released, sent]',
    );
    expect(eventsViolation(trail, ev('queued', 'ambiguous', 'released', 'sent', 'sent'), 50)).toBeDefined();
    expect(eventsViolation(trail, ev('queued', 'ambiguous', 'released', 'cancelled', 'sent'), 50)).toBeDefined();
    // A trail cut to its newest entries is held against the newest events.
    expect(eventsViolation(trail.slice(2), ev('queued', 'ambiguous', 'released', 'sent'), 4)).toBeUndefined();
    expect(eventsViolation(trail.slice(2), ev('queued', 'ambiguous', 'sent'), 4)).toBeDefined();
  });

  it('flags a cancelled key that is live on X as lost', () => {
    const k = [key(0), key(1)];
    const v = verify(k, [rec(k[0]!, { state: 'cancelled' }), rec(k[1]!, { state: 'cancelled' })], [item('10', k[1]!.text)], 'r1');
    expect(v).toMatchObject({ cancelled: 2, lost: 1, stuck: 0 });
    expect(v.violations.map((x) => [x.keyId, x.kind])).toEqual([[k[1]!.keyId, 'cancelled-but-live']]);
  });

  it('checks a thread part by part: a part twice, a part replying to the wrong post, a gap, a live part the ledger does not list', () => {
    const parts = (i: number) => [1, 2, 3].map((j) => ({ text: `chaos r1 #${i} thread [${j}/3]` }));
    const k = [0, 1, 2, 3].map((i) => key(i, { kind: 'thread', parts: parts(i), text: parts(i)[0]!.text }));
    const listed = (ids: (string | undefined)[], i: number) => parts(i).map((p, j) => ({ ...p, ...(ids[j] && { tweetId: ids[j] }) }));
    const v = verify(
      k,
      [
        rec(k[0]!, { tweetId: '10', parts: listed(['10', '11', '12'], 0) }),
        rec(k[1]!, { tweetId: '20', parts: listed(['20', '21', '22'], 1) }),
        rec(k[2]!, { state: 'failed', reason: 'thread-broken', parts: listed(['30'], 2) }),
        rec(k[3]!, { state: 'cancelled', parts: listed([], 3) }),
      ],
      [
        item('10', parts(0)[0]!.text),
        item('11', parts(0)[1]!.text, { inReplyToTweetId: '10' }),
        item('12', parts(0)[2]!.text, { inReplyToTweetId: '11' }),
        item('13', parts(0)[2]!.text, { inReplyToTweetId: '11' }),
        item('20', parts(1)[0]!.text),
        item('21', parts(1)[1]!.text, { inReplyToTweetId: '20' }),
        item('22', parts(1)[2]!.text, { inReplyToTweetId: '20' }),
        item('30', parts(2)[0]!.text),
        item('32', parts(2)[2]!.text, { inReplyToTweetId: '30' }),
        item('40', parts(3)[0]!.text),
      ],
      'r1',
    );
    expect(v.violations.map((x) => [x.keyId, x.kind])).toEqual([
      [k[0]!.keyId, 'duplicate'],
      [k[1]!.keyId, 'broken-chain'],
      [k[2]!.keyId, 'broken-chain'],
      [k[3]!.keyId, 'lost'],
    ]);
  });

  it("holds each key to its lifecycle answer: an edit's old text, an end the answer rules out, a post before its new time", () => {
    const k = [
      key(0, { text: 'chaos r1 #0 post (edited)', formerTexts: ['chaos r1 #0 post'] }),
      key(1, { mustEndIn: ['cancelled'] }),
      key(2, { mustEndIn: ['sent', 'cancelled'] }),
      key(3, { scheduledAt: 2_000, notBefore: 2_000 }),
    ];
    const v = verify(
      k,
      [rec(k[0]!, { tweetId: '10' }), rec(k[1]!, { state: 'sent', tweetId: '11' }), rec(k[2]!, { state: 'cancelled' }), rec(k[3]!, { tweetId: '13' })],
      [item('10', k[0]!.text), item('9', 'chaos r1 #0 post'), item('11', k[1]!.text), item('13', k[3]!.text)],
      'r1',
    );
    expect(v.violations.map((x) => [x.keyId, x.kind])).toEqual([
      [k[0]!.keyId, 'edited-but-old-live'],
      [k[1]!.keyId, 'ended-against-answer'],
      [k[3]!.keyId, 'before-its-time'],
    ]);
    expect(v.strays).toBe(0);
  });

  it('flags what the run saw: a key queued twice or never, a refused payload, a wrong final answer, a paused account, crashes, failed events, a hung SIGTERM', () => {
    const k = [key(0), key(1), key(2)];
    expect(
      queuedOnceViolations(
        k,
        new Map([
          [k[0]!.keyId, 1],
          [k[1]!.keyId, 2],
        ]),
      ).map((x) => x.keyId),
    ).toEqual([k[1]!.keyId, k[2]!.keyId]);
    const sent = rec(k[0]!, { tweetId: '10' });
    expect(answerViolation(k[0]!, { status: 'sent', key: k[0]!, tweetId: '10' }, sent)).toBeUndefined();
    expect(answerViolation(k[0]!, { status: 'duplicate', key: k[0]!, state: 'queued' }, sent)?.detail).toBe(
      're-enqueue of a sent key answered duplicate, expected sent 10',
    );
    expect(answerViolation(k[0]!, { status: 'invalid', errors: [] }, false)?.kind).toBe('enqueue');
    const verdict = verify(k.slice(0, 1), [sent], [item('10', k[0]!.text), item('11', 'chaos r1 #9 post')], 'r1');
    const { violations, graceful } = runViolations({
      verdict,
      accountStatus: new Map([
        ['a', { paused: 'http-401' }],
        ['b', {}],
      ]),
      crashes: [{ worker: 2, code: 1, signal: null, afterS: 3, tail: 'boom' }],
      allowWorkerCrashes: false,
      events: [{ name: 'restart', error: 'refused' }, { name: 'ok' }],
      graceful: [
        { how: 'drained', code: 0, ms: 10 },
        { how: 'hung (SIGKILLed after 60 s)', code: null, ms: 60_000 },
        // A SIGTERM that came while the worker was still loading (no worker-ready yet): it had taken nothing.
        { how: BEFORE_START, code: null, ms: 40 },
        { how: 'no "stopped" line', code: null, ms: 70 },
      ],
    });
    expect(violations.map((x) => x.kind)).toEqual(['account-paused', 'misattributed', 'stuck', 'stuck', 'stuck', 'stuck']);
    expect(violations.at(-1)?.detail).toBe('SIGTERMed worker: no "stopped" line exit null after 70 ms');
    expect(graceful).toEqual({ drained: 1, 'hung (SIGKILLed after 60 s) exit null': 1, [`${BEFORE_START} exit null`]: 1, 'no "stopped" line exit null': 1 });
  });
});
