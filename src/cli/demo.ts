import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../config.js';
import { keyId } from '../domain/key.js';
import { startFakeX } from '../fake-x/index.js';
import { dropPrefix } from '../ledger/drop.js';
import { isFinal, POST_STATES, type PostRecord, type PostState } from '../domain/state.js';
import { type ExpectedKey, fakeAccountOf, verify } from '../ops/ground-truth.js';
import { createLogger } from '../log.js';
import { createBoardServer } from '../ops/board.js';
import { startWorkerProcess } from '../ops/worker-process.js';
import { createProducer, connectRedis, openLedger } from '../app.js';
import { type Account, staticCredentialStore } from '../x/credentials.js';
import { TwitterXPort } from '../x/twitter.js';
import { enqueueLines, formatLineResult, type LineResult } from './enqueue.js';
import { type FieldError, formatFieldErrors } from '../domain/request.js';
import { renderTable } from './table.js';

const DEMO_ACCOUNTS: Account[] = [
  {
    id: 'acme',
    userId: '1001',
    auth: { type: 'oauth1', appKey: 'demo-app-key', appSecret: 'demo-app-secret', accessToken: 'demo-acme-token', accessSecret: 'demo-acme-secret' },
  },
  { id: 'globex', userId: '1002', auth: { type: 'oauth2', accessToken: 'demo-globex-token' } },
  { id: 'initech', userId: '1003', auth: { type: 'oauth2', accessToken: 'demo-initech-token' } },
  { id: 'umbrella', userId: '1004', auth: { type: 'oauth2', accessToken: 'demo-umbrella-token' } },
];
const FAN: Account = { id: 'fan', userId: '3001', auth: { type: 'oauth2', accessToken: 'demo-fan-token' } };
const FAN_ID = FAN.userId;
/** A 1×1 PNG: the demo's media post uploads it (a file on disk, as a producer would name it). */
const DEMO_PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==', 'base64');
/** X refuses this reply for good (the fan mentioned initech, not acme). */
const REFUSED_BY_X = new Set(['slot-14/reply']);

/**
 * The main job on a local default: fake X with realistic faults, a worker
 * with reconciliation, a sample schedule across accounts, live progress and
 * a summary checked against the fake X's ground truth.
 */
export async function runDemo(base: Config, opts: { timeoutMs?: number; keepBoard?: boolean } = {}): Promise<number> {
  const config: Config = Object.freeze({
    ...base,
    prefix: `${base.prefix}-demo`,
    xTimeoutMs: 1_500,
    settleWindowMs: 4_000,
    reconcileIntervalMs: 1_000,
    workerConcurrency: 10,
    // Progress and the summary are the demo's output; logs only for trouble.
    logLevel: base.logLevel === 'info' ? 'error' : base.logLevel,
  });
  const redis = await connectRedis(config);
  await dropPrefix(redis, config.prefix);

  const fake = await startFakeX({
    accounts: [...DEMO_ACCOUNTS, FAN].map(fakeAccountOf),
    timelineLagMs: 2_000,
    rateLimitResetSec: 2,
    // As X since 2026-02-23: a reply only where the author mentioned the account.
    replyRestriction: true,
  });
  const credentials = staticCredentialStore(DEMO_ACCOUNTS);
  const now = Date.now();
  const at = (s: number) => new Date(now + s * 1000).toISOString();
  const mediaDir = mkdtempSync(join(tmpdir(), 'xactly-demo-'));
  const photo = join(mediaDir, 'office.png');
  writeFileSync(photo, DEMO_PNG);

  // A post of the fan's to reply to, made outside xactly.
  const fanX = new TwitterXPort({ credentials: staticCredentialStore([FAN]), baseUrl: fake.url, timeoutMs: 2_000 });
  const root = await fanX.createPost('fan', { text: 'Who is launching something this week? @initech' });
  fanX.close();

  const faults: [Parameters<typeof fake.injectNext>[0], string][] = [
    ['commit-then-hang', 'Big news: our spring collection is live https://acme.example/spring'],
    ['hang-before-commit', 'Join our webinar on Thursday & bring questions <3'],
    ['commit-then-reset', 'Happy Monday from all of us at Globex 🚀'],
    ['5xx-with-commit', 'Initech quarterly update: TPS reports are now 30% faster'],
    ['5xx-without-commit', 'Umbrella: we are hiring engineers https://umbrella.example/jobs'],
    ['truncated-201', 'Thanks for 10k followers! 🎉'],
    ['429', 'Reminder: the sale ends tonight'],
  ];
  for (const [kind, text] of faults) fake.injectNext(kind, { text });
  // The thread's second part: its answer is lost after X took it; reconciliation finds it, then part 3 replies to it.
  fake.injectNext('commit-then-reset', { text: 'First, we cached dependencies between CI runs (2/3)' });

  const logger = createLogger({ level: config.logLevel });
  const worker = await startWorkerProcess({ ...config, xApiBaseUrl: fake.url }, logger, { credentials });
  // The board, behind a password made up for this run.
  const password = randomBytes(9).toString('base64url');
  const board = createBoardServer({ redis, config: { ...config, boardUser: 'demo', boardPassword: password }, logger });
  const { url: boardUrl } = await board.listen(config.boardPort, '127.0.0.1').catch(() => board.listen(0, '127.0.0.1'));
  const producer = createProducer({
    connection: redis,
    prefix: config.prefix,
    deadlineWindowMs: 5 * 60_000,
    knownAccount: (id) => DEMO_ACCOUNTS.some((a) => a.id === id),
  });

  const schedule: unknown[] = [
    ...faults.map(([, text], i) => ({
      slotId: `slot-${String(i + 1).padStart(2, '0')}`,
      postId: 'launch',
      accountId: DEMO_ACCOUNTS[i % 4]!.id,
      kind: 'post',
      text,
      scheduledAt: at(1 + (i % 3)),
    })),
    { slotId: 'slot-08', postId: 'hello', accountId: 'acme', kind: 'post', text: 'Good morning from Acme ☀️', scheduledAt: at(1) },
    { slotId: 'slot-09', postId: 'hello', accountId: 'globex', kind: 'post', text: 'Globex office hours at 3pm', scheduledAt: at(2) },
    { slotId: 'slot-10', postId: 'reply', accountId: 'initech', kind: 'reply', text: 'We are! Stay tuned.', inReplyToTweetId: root.id, scheduledAt: at(2) },
    {
      slotId: 'slot-11',
      postId: 'dm',
      accountId: 'umbrella',
      kind: 'dm',
      text: 'Thanks for reaching out, here is the link: https://umbrella.example/help',
      recipientId: FAN_ID,
      scheduledAt: at(3),
    },
    { slotId: 'slot-12', postId: 'hello', accountId: 'umbrella', kind: 'post', text: 'Umbrella weekly digest', scheduledAt: at(3) },
    // A producer retry: same key, same payload → duplicate, posted once.
    { slotId: 'slot-08', postId: 'hello', accountId: 'acme', kind: 'post', text: 'Good morning from Acme ☀️', scheduledAt: at(1) },
    // Same key, different payload → conflict, never a second post.
    { slotId: 'slot-09', postId: 'hello', accountId: 'globex', kind: 'post', text: 'Globex office hours at 4pm', scheduledAt: at(2) },
    // Malformed: over 280 weighted characters and no account.
    { slotId: 'slot-13', postId: 'oops', kind: 'post', text: '🙂'.repeat(141) },
    // A reply X refuses for good (the fan mentioned initech, not acme): fails
    // with X's reason; acme's other posts go out and acme is not paused.
    { slotId: 'slot-14', postId: 'reply', accountId: 'acme', kind: 'reply', text: 'Us too!', inReplyToTweetId: root.id, scheduledAt: at(2) },
    // A thread: three parts, each replying to the one before; a fault on part 2 is resolved before part 3 starts.
    {
      slotId: 'slot-18',
      postId: 'thread',
      accountId: 'globex',
      kind: 'thread',
      scheduledAt: at(2),
      parts: [
        { text: 'How we cut our build times in half, a thread 🧵 (1/3)' },
        { text: 'First, we cached dependencies between CI runs (2/3)' },
        { text: 'Then we split the test suite across four machines (3/3)' },
      ],
    },
    // The calendar changes below: one pulled, one with a typo, one moved up by an hour.
    { slotId: 'slot-15', postId: 'promo', accountId: 'globex', kind: 'post', text: 'Flash sale: 50% off everything', scheduledAt: at(4) },
    { slotId: 'slot-16', postId: 'promo', accountId: 'initech', kind: 'post', text: 'Our new offce opens today', scheduledAt: at(4) },
    { slotId: 'slot-17', postId: 'promo', accountId: 'umbrella', kind: 'post', text: 'Umbrella launch livestream starts now', scheduledAt: at(3_600) },
    // A post with an image: uploaded through X's media API before the create, attached by its media id.
    {
      slotId: 'slot-19',
      postId: 'photo',
      accountId: 'initech',
      kind: 'post',
      text: 'Our new office, in one pixel',
      media: [{ path: photo, altText: 'The new office' }],
      scheduledAt: at(2),
    },
  ];
  console.log(`xactly demo — fake X at ${fake.url}, Redis ${new URL(config.redisUrl).host}, prefix "${config.prefix}"\n`);
  console.log('Enqueueing a sample schedule (due in 1–3 s):');
  const results: LineResult[] = [];
  for await (const r of enqueueLines(
    schedule.map((r) => JSON.stringify(r)),
    producer,
  )) {
    results.push(r);
    console.log('  ' + formatLineResult(r));
  }
  const keys = new Map<string, { slotId: string; postId: string }>();
  for (const r of results)
    if (r.status === 'queued' && r.slotId && r.postId) keys.set(keyId({ slotId: r.slotId, postId: r.postId }), { slotId: r.slotId, postId: r.postId });

  console.log("\nCalendar changes (each atomic with the workers' claims):");
  const changes: [string, Promise<{ status: string }>][] = [
    ['cancel slot-15/promo (the client pulled it)', producer.cancel({ slotId: 'slot-15', postId: 'promo' }, { reason: 'client pulled the sale', by: 'demo' })],
    ['edit slot-16/promo (typo: "offce")', producer.edit({ slotId: 'slot-16', postId: 'promo' }, { text: 'Our new office opens today' })],
    ['reschedule slot-17/promo from +1 h to +2 s', producer.reschedule({ slotId: 'slot-17', postId: 'promo' }, { scheduledAt: at(2) })],
    ['edit slot-08/hello to 330 weighted characters', producer.lifecycle.editRaw({ slotId: 'slot-08', postId: 'hello', text: 'x'.repeat(330) })],
  ];
  for (const [what, answer] of changes) {
    const r = await answer;
    console.log(`  ${what}: ${r.status}${'errors' in r ? ` — ${formatFieldErrors(r.errors as FieldError[])}` : ''}`);
  }
  // Never on X: the cancelled post, and the text an edit replaced.
  const withdrawn = ['Flash sale: 50% off everything', 'Our new offce opens today'];

  console.log('\nInjected faults: ' + faults.map(([f]) => f).join(', ') + '; timeline lag 2 s.\nProgress:');
  const ledger = openLedger(redis, config);
  const started = Date.now();
  const limit = opts.timeoutMs ?? 90_000;
  let records: PostRecord[] = [];
  for (;;) {
    records = (await ledger.getMany([...keys.keys()])).filter((r): r is PostRecord => r !== undefined);
    const counts = Object.fromEntries(POST_STATES.map((st) => [st, 0])) as Record<PostState, number>;
    for (const r of records) counts[r.state]++;
    console.log(
      `  t+${String(Math.round((Date.now() - started) / 1000)).padStart(2)}s  ` +
        Object.entries(counts)
          .filter(([k, v]) => v > 0 || !k.startsWith('cancel'))
          .map(([k, v]) => `${k} ${v}`)
          .join('  '),
    );
    if (records.every((r) => isFinal(r.state)) && records.length === keys.size) break;
    if (Date.now() - started > limit) break;
    await new Promise((r) => setTimeout(r, 1_000));
  }

  const truth = fake.created();
  const trails = await Promise.all(records.map((r) => ledger.auditTrail(r.keyId)));
  const rows = records.map((r, i) => [
    `${r.slotId}/${r.postId}`,
    r.accountId,
    r.kind,
    r.state,
    String(r.attempt),
    r.tweetId ?? '',
    trails[i]!.some((e) => e.event === 'ambiguous') ? 'yes' : '',
    r.reason ? `${r.reason}: ${r.detail ?? ''}` : '',
  ]);
  console.log('\n' + renderTable(['KEY', 'ACCOUNT', 'KIND', 'STATE', 'ATTEMPTS', 'X ID', 'WAS AMBIGUOUS', 'REASON'], rows));

  // The check against what X holds: the one the chaos runs and the tests use.
  const mine = truth.filter((c) => c.id !== root.id);
  const expected: ExpectedKey[] = records.map((r) => ({
    keyId: r.keyId,
    userId: DEMO_ACCOUNTS.find((a) => a.id === r.accountId)?.userId ?? '-',
    kind: r.kind,
    text: r.text,
    ...(r.parts
      ? // A thread's record carries its current part; the check wants the whole thread.
        { text: r.parts[0]!.text, parts: r.parts, ...(r.parts[0]!.inReplyToTweetId && { inReplyToTweetId: r.parts[0]!.inReplyToTweetId }) }
      : { ...(r.inReplyToTweetId && { inReplyToTweetId: r.inReplyToTweetId }), ...(r.recipientId && { recipientId: r.recipientId }) }),
    scheduledAt: r.scheduledAt,
    ...(REFUSED_BY_X.has(`${r.slotId}/${r.postId}`) && { refusedByX: true }),
  }));
  const verdict = verify(expected, records, mine);
  const duplicates = verdict.duplicates;
  // Lost: not where the ledger says (or no record at all), or left in between.
  const lost = verdict.lost + verdict.stuck + (keys.size - records.length);
  const leaked = mine.filter((c) => withdrawn.includes(c.text)).length;
  const cancelled = verdict.cancelled;
  const sent = verdict.sent;
  const failedBy = records.filter((r) => r.state === 'failed').map((r) => r.reason);
  const resolved = trails.filter((t) => t.some((e) => e.event === 'ambiguous') && t.some((e) => e.event === 'reconciled')).length;
  const pngHash = createHash('sha256').update(DEMO_PNG).digest('hex');
  const withMedia = mine.filter((c) => c.media?.length);
  const mediaOk = withMedia.filter((c) => c.media!.length === 1 && c.media![0]!.sha256 === pngHash).length;
  console.log(`\nSummary (checked against the fake X's ground truth):
  accepted keys        ${keys.size} (plus ${results.filter((r) => r.status === 'duplicate').length} duplicate, ${results.filter((r) => r.status === 'conflict').length} conflict, ${results.filter((r) => r.status === 'invalid').length} invalid request refused)
  sent                 ${sent}
  failed               ${failedBy.length}${failedBy.length ? ' (' + failedBy.join(', ') + ')' : ''}
  cancelled            ${cancelled} (cancelled or replaced text on X: ${leaked})
  ambiguous resolved   ${resolved} by reconciliation
  with media on X      ${withMedia.length} (${mediaOk} with exactly the image enqueued, ${fake.uploads().length} upload)
  posts on X           ${mine.length}
  duplicates on X      ${duplicates}
  lost                 ${lost}
  time                 ${((Date.now() - started) / 1000).toFixed(1)} s

Board: ${boardUrl}/board  (user demo, password ${password}; metrics at ${boardUrl}/metrics)
Ledger: ${boardUrl}/ledger  (posts, in doubt ${boardUrl}/ledger/in-doubt, accounts ${boardUrl}/ledger/accounts)
Inspect: XACTLY_PREFIX=${config.prefix} npx xactly posts   ·   XACTLY_PREFIX=${config.prefix} npx xactly post slot-01 launch   ·   the thread, part by part: XACTLY_PREFIX=${config.prefix} npx xactly post slot-18 thread --json`);
  if (verdict.violations.length > 0)
    console.log(`\nViolations:\n${verdict.violations.map((v) => `  ${v.kind.padEnd(22)} ${v.keyId}  ${v.detail}`).join('\n')}`);

  if (opts.keepBoard ?? process.stdout.isTTY) {
    console.log('\nThe board stays up until Ctrl-C.');
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
  }
  await board.close();
  await worker.stop(5_000);
  await producer.close();
  await fake.close();
  rmSync(mediaDir, { recursive: true, force: true });
  redis.disconnect();
  return duplicates === 0 && lost === 0 && leaked === 0 ? 0 : 1;
}
