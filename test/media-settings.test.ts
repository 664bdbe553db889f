/**
 * Media settings and refusals around the upload: the environment's media
 * variables reach the publish worker through openApp (the URL fetch limits,
 * uploads per account, the step-aside wait), and an OAuth 2.0 token
 * without `media.write` fails the key with a detail that says so.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import type { Worker } from 'bullmq';
import { openApp, type App } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { keyId } from '../src/domain/key.js';
import { isFinal, type PostRecord } from '../src/domain/state.js';
import { staticCredentialStore } from '../src/x/credentials.js';
import type { XPort } from '../src/x/port.js';
import { ACCOUNTS, REDIS_URL, type Stack, startStack, waitUntil } from './harness.js';
import { sleep } from './support/wait.js';
import { mediaDir, type MediaServer, png, startMediaServer, writeMedia } from './support/media.js';
import { overrideX } from './support/x.js';

let stack: Stack | undefined;
let app: App | undefined;
let dir: string;
beforeAll(() => {
  dir = mediaDir();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(async () => {
  await app?.close();
  app = undefined;
  await stack?.close();
  stack = undefined;
});

const line = (r: PostRecord) => `${r.slotId} ${r.state}${r.state === 'failed' ? ` ${r.reason}` : ''}`;

async function untilFinal(s: Stack, slots: readonly string[], postId: string, timeoutMs = 30_000): Promise<PostRecord[]> {
  return waitUntil(
    async () => {
      const rs = await s.ledger.getMany(slots.map((slotId) => keyId({ slotId, postId })));
      return rs.every((r) => r && isFinal(r.state)) ? (rs as PostRecord[]) : undefined;
    },
    `${slots.join(', ')} to be final`,
    timeoutMs,
  );
}

describe('media settings from the environment, through openApp to the publish worker', () => {
  let server: MediaServer | undefined;
  let base = '';
  const small = png(16, 12, { seed: 3 });
  const large = png(300, 200, { noise: true });
  beforeAll(async () => {
    server = await startMediaServer(dir, { '/small.png': small, '/large.png': large }, small);
    base = server.base;
  });
  afterAll(() => server?.close());

  it('XACTLY_MEDIA_UPLOADS_PER_ACCOUNT=2 uploads two of an account at once, a third steps aside for XACTLY_MEDIA_WAIT_MS; XACTLY_MEDIA_FETCH_MAX_BYTES and _TIMEOUT_MS bound a URL fetch', async () => {
    expect(small.length).toBeLessThan(1_000);
    expect(large.length).toBeGreaterThan(1_000);
    stack = await startStack({ startWorkers: false, fake: { mediaProcessingMs: 0 } });
    const s = stack;
    const inFlight = new Map<string, number>();
    const most = new Map<string, number>();
    let delayedSeen = false;
    // acme's uploads hold until two are in flight and a third job has stepped aside (or 5 s).
    const counted = (x: XPort): XPort =>
      overrideX(x, {
        uploadMedia: async (accountId, source, opts) => {
          const n = (inFlight.get(accountId) ?? 0) + 1;
          inFlight.set(accountId, n);
          most.set(accountId, Math.max(most.get(accountId) ?? 0, n));
          try {
            if (accountId === 'acme' && source.path.includes('cap-')) {
              const until = Date.now() + 5_000;
              while (Date.now() < until && !((most.get('acme') ?? 0) >= 2 && delayedSeen)) await sleep(20);
            }
            return await x.uploadMedia!(accountId, source, opts);
          } finally {
            inFlight.set(accountId, (inFlight.get(accountId) ?? 1) - 1);
          }
        },
      });
    const config = loadConfig({
      REDIS_URL,
      XACTLY_PREFIX: s.prefix,
      XACTLY_CONCURRENCY: '6',
      XACTLY_MEDIA_UPLOADS_PER_ACCOUNT: '2',
      XACTLY_MEDIA_WAIT_MS: '60000',
      XACTLY_MEDIA_FETCH_MAX_BYTES: '1000',
      XACTLY_MEDIA_FETCH_TIMEOUT_MS: '1500',
    });
    app = await openApp(config, s.logger, { redis: s.redis, x: counted(s.x), credentials: staticCredentialStore(ACCOUNTS) });
    const images = [1, 2, 3].map((i) => writeMedia(dir, `cap-${i}.png`, png(40, 30, { seed: i })));
    const results = await s.producer.enqueueMany(
      images.map((path, i) => ({ slotId: `cap-${i + 1}`, postId: 'set', accountId: 'acme', kind: 'post', text: `capped ${i + 1}`, media: [{ path }] })),
    );
    expect(results.map((r) => r.status)).toEqual(['queued', 'queued', 'queued']);
    const worker: Worker = await app.publishWorker();
    const queue = s.producer.queue;
    // The third job steps aside, delayed by the configured wait (not the default 1 s).
    const [delayed] = await waitUntil(async () => {
      const jobs = await queue.getDelayed();
      return jobs.length > 0 ? jobs : undefined;
    }, 'a job of acme to step aside');
    delayedSeen = true;
    expect(delayed!.delay).toBeGreaterThan(50_000);
    expect(delayed!.delay).toBeLessThanOrEqual(60_000);
    await waitUntil(
      async () =>
        (await s.ledger.getMany([1, 2].map((i) => keyId({ slotId: `cap-${i}`, postId: 'set' })))).filter((r) => r?.state === 'sent').length === 2
          ? true
          : undefined,
      'two sent',
    );
    await delayed!.promote();
    const capped = await untilFinal(s, ['cap-1', 'cap-2', 'cap-3'], 'set');
    expect(capped.map(line)).toEqual(['cap-1 sent', 'cap-2 sent', 'cap-3 sent']);
    expect(most.get('acme'), 'two uploads of acme at once, no more').toBe(2);

    // URL media under the configured limits: a small one goes out, a larger one (still fine for X) and a slow one do not.
    const url = (slotId: string, accountId: string, path: string) => ({
      slotId,
      postId: 'set',
      accountId,
      kind: 'post',
      text: `url ${slotId}`,
      media: [{ url: `${base}${path}` }],
    });
    const more = await s.producer.enqueueMany([url('small', 'acme', '/small.png'), url('large', 'acme', '/large.png'), url('slow', 'globex', '/slow.png')]);
    expect(more.map((r) => r.status)).toEqual(['queued', 'queued', 'queued']);
    const started = Date.now();
    const rs = await untilFinal(s, ['small', 'large', 'slow'], 'set');
    expect(rs.map(line)).toEqual(['small sent', 'large failed media-unavailable', 'slow failed media-unavailable']);
    expect(rs[1]!.detail).toMatch(/large\.png: (\d+ bytes, )?more than the 1000( bytes)? allowed/);
    expect(rs[2]!.detail).toMatch(/slow\.png: no complete answer within 1500 ms/);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(
      s.fake
        .created()
        .map((c) => c.text)
        .sort(),
    ).toEqual(['capped 1', 'capped 2', 'capped 3', 'url small']);
    await worker.close();
  }, 60_000);
});

describe('an OAuth 2.0 token without media.write', () => {
  it("X's 403 on the upload fails the key rejected, its detail naming media.write; text still goes out; OAuth 1.0a is not scoped; granted again, the medium goes out", async () => {
    const globex = ACCOUNTS.find((a) => a.id === 'globex')!;
    const acme = ACCOUNTS.find((a) => a.id === 'acme')!;
    expect([globex.auth.type, acme.auth.type]).toEqual(['oauth2', 'oauth1']);
    stack = await startStack({ fake: { withoutMediaWrite: [globex.userId, acme.userId] } });
    const s = stack;
    const image = writeMedia(dir, 'scoped.png', png(32, 24, { seed: 9 }));
    const req = (slotId: string, accountId: string, media: boolean) => ({
      slotId,
      postId: 'scope',
      accountId,
      kind: 'post',
      text: `scope ${slotId}`,
      ...(media && { media: [{ path: image }] }),
    });
    const results = await s.producer.enqueueMany([req('g-media', 'globex', true), req('g-text', 'globex', false), req('a-media', 'acme', true)]);
    expect(results.map((r) => r.status)).toEqual(['queued', 'queued', 'queued']);
    const rs = await untilFinal(s, ['g-media', 'g-text', 'a-media'], 'scope');
    expect(rs.map(line)).toEqual(['g-media failed rejected', 'g-text sent', 'a-media sent']);
    expect(rs[0]!.detail).toMatch(/403/);
    expect(rs[0]!.detail).toMatch(/media\.write/);
    // Refused once, not retried: a refusal is not a fault of the upload.
    const refused = s.fake.requests().filter((q) => q.userId === globex.userId && q.path.startsWith('/2/media'));
    expect(refused.map((q) => q.status)).toEqual([403]);
    expect(
      s.fake
        .created()
        .map((c) => c.text)
        .sort(),
    ).toEqual(['scope a-media', 'scope g-text']);

    s.fake.setMediaWrite(globex.userId, true);
    expect((await s.producer.enqueue(req('g-again', 'globex', true))).status).toBe('queued');
    const [again] = await untilFinal(s, ['g-again'], 'scope');
    expect(line(again!)).toBe('g-again sent');
    expect(s.fake.created().find((c) => c.text === 'scope g-again')?.media).toHaveLength(1);
  }, 60_000);
});
