import type { ChildProcess } from 'node:child_process';
import type { Ledger } from '../src/ledger/ledger.js';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { keyId } from '../src/domain/key.js';
import { type FakeX, startFakeX } from '../src/fake-x/index.js';
import { openLedger, createProducer, createPublishWorker } from '../src/app.js';
import { type Producer } from '../src/queue/producer.js';
import { type Account, fileCredentialStore, memoryCredentialStore, parseAccounts } from '../src/x/credentials.js';
import { TokenRefresher } from '../src/x/refresh.js';
import { TwitterXPort } from '../src/x/twitter.js';
import { captureLogs, dropPrefix, newRedis, REDIS_URL, uniquePrefix, waitUntil } from './harness.js';
import { spawnWorker } from './support/workers.js';

const OAUTH2: Account = {
  id: 'brand',
  userId: '3001',
  auth: {
    type: 'oauth2',
    accessToken: 'brand-at-0',
    refreshToken: 'brand-rt-0',
    clientId: 'client-1',
    clientSecret: 'client-secret-1',
    expiresAt: Date.now() + 3_600_000,
  },
};
const OTHER: Account = { id: 'other', userId: '3002', auth: { type: 'oauth2', accessToken: 'other-at' } };
const FAKE = [
  { userId: '3001', username: 'brand', tokens: ['brand-at-0'], refreshToken: 'brand-rt-0' },
  { userId: '3002', username: 'other', tokens: ['other-at'] },
];

interface Rig {
  fake: FakeX;
  redis: Redis;
  prefix: string;
  producer: Producer;
  ledger: Ledger;
  workers: Worker[];
  conns: Redis[];
  ports: TwitterXPort[];
  logs: string[];
}
let rig: Rig | undefined;
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  if (!rig) return;
  await Promise.all(rig.workers.map((w) => w.close(true)));
  await rig.producer.close();
  await rig.fake.close();
  for (const p of rig.ports) p.close();
  await dropPrefix(rig.redis, rig.prefix);
  await Promise.all(rig.conns.map((c) => c.quit()));
  await rig.redis.quit();
  rig = undefined;
});

/** N workers, each with its own X adapter and refresher (as separate processes would have), one shared token store. */
async function startRig(workers: number, accounts: Account[]): Promise<Rig & { store: ReturnType<typeof memoryCredentialStore> }> {
  const prefix = uniquePrefix('cred');
  const redis = newRedis();
  const fake = await startFakeX({ accounts: FAKE });
  const store = memoryCredentialStore(accounts);
  const ledger = openLedger(redis, { prefix, retentionMs: 3_600_000 });
  const { logger, lines } = captureLogs('info');
  const r: Rig = { fake, redis, prefix, producer: createProducer({ connection: redis, prefix }), ledger, workers: [], conns: [], ports: [], logs: lines };
  for (let i = 0; i < workers; i++) {
    const conn = newRedis();
    const wledger = openLedger(conn, { prefix, retentionMs: 3_600_000 });
    const refresher = new TokenRefresher({ redis: conn, keys: wledger.keys, credentials: store, baseUrl: fake.url, timeoutMs: 2_000 });
    const x = new TwitterXPort({ credentials: store, baseUrl: fake.url, timeoutMs: 2_000, refresher });
    const w = createPublishWorker({
      connection: conn,
      ledger: wledger,
      x,
      logger,
      concurrency: 10,
      leaseMs: 30_000,
      settleWindowMs: 5_000,
      retry: { baseMs: 50, maxMs: 200 },
    });
    w.on('error', () => undefined);
    r.workers.push(w);
    r.conns.push(conn);
    r.ports.push(x);
  }
  rig = r;
  return { ...r, store };
}

const posts = (from: number, n: number, accountId = 'brand') =>
  Array.from({ length: n }, (_, i) => ({ slotId: `s${from + i}`, postId: 'p', accountId, kind: 'post', text: `${accountId} post ${from + i}` }));
const states = async (r: Rig, reqs: { slotId: string }[]) =>
  (await r.ledger.getMany(reqs.map((q) => keyId({ slotId: q.slotId, postId: 'p' })))).map((x) => x?.state);

describe('OAuth 2.0 token refresh', () => {
  it('a token that expires mid-run is refreshed once per account across workers; no publish is sent twice', async () => {
    const r = await startRig(3, [OAUTH2, OTHER]);
    const first = posts(0, 10);
    await r.producer.enqueueMany(first);
    await waitUntil(async () => (await states(r, first)).every((s) => s === 'sent'), 'first batch');
    r.fake.expireTokens('3001');
    const second = posts(10, 30);
    await r.producer.enqueueMany(second);
    await waitUntil(async () => (await states(r, second)).every((s) => s === 'sent'), 'second batch after expiry', 30_000);

    expect(r.fake.refreshes()).toEqual({ '3001': 1 });
    const created = r.fake.created();
    expect(created).toHaveLength(40);
    expect(new Set(created.map((c) => c.text)).size).toBe(40);
    // The store holds the rotated tokens; the 401'd attempts were released, never replayed.
    const stored = await r.store.get('brand');
    expect(stored!.auth).toMatchObject({ type: 'oauth2', refreshToken: 'fx-rt-3001-1' });
    expect(stored!.auth.accessToken).toBe('fx-at-3001-1');
    const trails = await Promise.all(second.map((q) => r.ledger.auditTrail(keyId({ slotId: q.slotId, postId: 'p' }))));
    const released = trails.filter((t) => t.some((e) => e.event === 'released' && String(e.cause).startsWith('http-401')));
    expect(released.length).toBeGreaterThan(0);
    for (const t of released) expect(t.filter((e) => e.event === 'sent')).toHaveLength(1);
  });

  it('a token known to be expiring is refreshed before the first publish', async () => {
    const r = await startRig(2, [{ ...OAUTH2, auth: { ...OAUTH2.auth, expiresAt: Date.now() - 1 } as Account['auth'] }, OTHER]);
    const batch = posts(0, 20);
    await r.producer.enqueueMany(batch);
    await waitUntil(async () => (await states(r, batch)).every((s) => s === 'sent'), 'batch sent');
    expect(r.fake.refreshes()).toEqual({ '3001': 1 });
    expect(r.fake.requests().filter((q) => q.status === 401)).toHaveLength(0);
  });

  it('a refresh token that X refuses pauses only that account, with a reason', async () => {
    const r = await startRig(1, [OAUTH2, OTHER]);
    r.fake.revoke('3001');
    const batch = [...posts(0, 3), ...posts(100, 3, 'other')];
    await r.producer.enqueueMany(batch);
    await waitUntil(async () => (await states(r, batch)).every((s) => s === 'sent' || s === 'failed'), 'all settled');
    const records = await r.ledger.getMany(batch.map((q) => keyId({ slotId: q.slotId, postId: 'p' })));
    const brand = records.filter((x) => x!.accountId === 'brand');
    expect(brand.every((x) => x!.state === 'failed')).toBe(true);
    expect(brand.map((x) => x!.detail).join(' ')).toContain('token refresh refused by X (http-400)');
    expect(records.filter((x) => x!.accountId === 'other').every((x) => x!.state === 'sent')).toBe(true);
    expect((await r.ledger.accountStatus(['brand', 'other'])).get('brand')?.paused).toContain('account-auth');
    expect(r.fake.created().every((c) => c.authorId === '3002')).toBe(true);
  });
});

describe('the accounts file', () => {
  it('limits.textLength: the longest post an account may publish, 1 to 25,000 weighted characters; the error names the path', () => {
    const doc = (limits: unknown) => ({ accounts: [{ ...OTHER, limits }] });
    expect(parseAccounts(doc({ textLength: 25_000 }))[0]?.limits).toEqual({ textLength: 25_000 });
    expect(parseAccounts(doc({ post: 50, textLength: 4_000 }))[0]?.limits).toEqual({ post: 50, textLength: 4_000 });
    expect(() => parseAccounts(doc({ textLength: 25_001 }))).toThrow(/accounts\.0\.limits\.textLength must be at most 25000/);
    expect(() => parseAccounts(doc({ textLength: 280.5 }))).toThrow(/accounts\.0\.limits\.textLength must be a whole number/);
    expect(() => parseAccounts(doc({ textLength: '4000' }))).toThrow(/accounts\.0\.limits\.textLength/);
  });

  it('is re-read when it changes, and a refresh rewrites it atomically', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'xactly-acc-'));
    const path = join(dir, 'accounts.json');
    await writeFile(path, JSON.stringify({ accounts: [OTHER] }));
    const store = await fileCredentialStore(path);
    const changes: (string[] | Error)[] = [];
    store.watch((c) => changes.push(c), 50);
    await writeFile(path, JSON.stringify({ accounts: [{ ...OTHER, auth: { type: 'oauth2', accessToken: 'rotated' } }] }));
    await waitUntil(() => changes.length > 0, 'file change seen');
    expect(changes[0]).toEqual(['other']);
    expect((await store.get('other'))!.auth.accessToken).toBe('rotated');
    await writeFile(path, '{ not json');
    await waitUntil(() => changes.length > 1, 'bad file seen');
    expect(changes[1]).toBeInstanceOf(Error);
    expect((await store.get('other'))!.auth.accessToken).toBe('rotated'); // the last good accounts stay
    await store.update!({ ...OTHER, auth: { type: 'oauth2', accessToken: 'from-refresh' } });
    expect(JSON.parse(await readFile(path, 'utf8')).accounts[0].auth.accessToken).toBe('from-refresh');
    store.close();
  });

  it('two `xactly worker` processes sharing the file refresh an expired token once', async () => {
    const prefix = uniquePrefix('cred2');
    const redis = newRedis();
    const fake = await startFakeX({ accounts: FAKE.map((a) => (a.userId === '3001' ? { ...a, tokensExpireAt: 0 } : a)) });
    const producer = createProducer({ connection: redis, prefix });
    rig = { fake, redis, prefix, producer, ledger: openLedger(redis, { prefix, retentionMs: 3_600_000 }), workers: [], conns: [], ports: [], logs: [] };
    const dir = await mkdtemp(join(tmpdir(), 'xactly-acc-'));
    const path = join(dir, 'accounts.json');
    await writeFile(path, JSON.stringify({ accounts: [OAUTH2, OTHER] }));
    const env = {
      ...process.env,
      REDIS_URL,
      XACTLY_PREFIX: prefix,
      XACTLY_ACCOUNTS_FILE: path,
      X_API_BASE_URL: fake.url,
      X_TIMEOUT_MS: '2000',
      XACTLY_SETTLE_WINDOW_MS: '5000',
      LOG_LEVEL: 'info',
    };
    const workers = [0, 1].map(() => spawnWorker(env));
    children.push(...workers.map((w) => w.child));
    await Promise.all(workers.map((w) => w.ready()));
    const logs = () => workers.map((w) => w.output()).join('');
    const batch = posts(0, 20);
    await producer.enqueueMany(batch);
    await waitUntil(async () => (await states(rig!, batch)).every((s) => s === 'sent'), 'all sent', 40_000);
    expect(fake.refreshes()).toEqual({ '3001': 1 });
    expect(fake.created()).toHaveLength(20);
    const onDisk = JSON.parse(await readFile(path, 'utf8')).accounts.find((a: Account) => a.id === 'brand');
    expect(onDisk.auth.refreshToken).toBe('fx-rt-3001-1');
    for (const secret of ['brand-at-0', 'brand-rt-0', 'client-secret-1', 'fx-at-3001-1', 'fx-rt-3001-1']) expect(logs()).not.toContain(secret);

    // SIGHUP re-reads the file: new credentials for a paused account resume it.
    const ledger = openLedger(redis, { prefix, retentionMs: 3_600_000 });
    await ledger.pauseAccount('other', 'test pause');
    await writeFile(path, JSON.stringify({ accounts: [onDisk, { ...OTHER, auth: { type: 'oauth2', accessToken: 'other-at-2' } }] }));
    for (const c of children) c.kill('SIGHUP');
    await waitUntil(async () => !(await ledger.accountStatus(['other'])).get('other')?.paused, 'account resumed');
    // The worker logs it after the resume is written: wait for the line to come through its pipe.
    await waitUntil(() => logs().includes('account resumed: credentials changed'), 'the resume to be logged');
    // Resumed once, by one of the two workers: one account-resumed event.
    expect((await ledger.readEvents('0', 1_000)).filter((e) => e.type === 'account-resumed' && e.account === 'other')).toHaveLength(1);
  });
});
