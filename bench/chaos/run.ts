/**
 * One chaos run, start to end: the fake X process, K worker processes, two
 * producers racing and re-enqueueing, kills, lag changes, job removal and
 * timed events in the background, then (every key final or the timeout)
 * a final replay, the check against the fake X's ground truth, and the
 * report. Every loop is bounded by the run's timeout.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Ledger, OutcomeEvent } from '../../src/ledger/ledger.js';
import { eventsViolation } from '../../src/ops/ground-truth.js';
import { keyId as keyIdOf, parseJobId } from '../../src/domain/key.js';
import { mulberry32 } from '../../src/fake-x/index.js';
import { openLedger, createProducer } from '../../src/app.js';
import type { PostRecord } from '../../src/ledger/record.js';
import { type EnqueueResult, type Producer } from '../../src/queue/producer.js';
import { accountOf, fakeAccountOf } from '../../test/support/accounts.js';
import { dropPrefix, newRedis } from '../../test/support/redis.js';
import { sleep } from '../../test/support/wait.js';
import type { ChaosOptions } from './options.js';
import { builtPaths, type FakeXControl, startFakeXProcess, type WorkerCrash, WorkerPool } from './processes.js';
import { buildSchedule, type ChaosAccount, type KeySpec, requestOf } from './schedule.js';
import { answerViolation, queuedOnceViolations, runViolations, type Verdict, verify, type Violation } from './verify.js';
import { type CalendarTally, pickCalendar, runCalendar } from './calendar.js';
import { isFinal } from '../../src/domain/state.js';

export interface EnqueueTally {
  queued: number;
  duplicate: number;
  sent: number;
  failed: number;
  /** Keys sent by both producers at the same moment. */
  racing: number;
  /** Re-enqueues of keys whose BullMQ job had been removed. */
  afterRemoval: number;
  /** ... of which the ledger already said `sent`: each must answer `sent` with the same id. */
  afterRemovalSent: number;
  jobsRemoved: number;
  /** Every key re-enqueued by both producers after convergence (answers must be final). */
  finalReplays: number;
}

export interface ChaosReport {
  readonly ok: boolean;
  readonly timedOut: boolean;
  readonly options: Omit<ChaosOptions, 'log' | 'events'>;
  readonly runId: string;
  readonly prefix: string;
  readonly kinds: Record<string, number>;
  readonly enqueue: EnqueueTally;
  /** The cancel / edit / reschedule stream and how the ledger answered. */
  readonly calendar: CalendarTally;
  readonly faults: Record<string, number>;
  readonly writes: number;
  readonly kills: { sigkill: number; sigterm: number; graceful: Record<string, number>; crashes: WorkerCrash[]; duringPass: number };
  /** Longest time one reconciliation lock token stayed in Redis (a pass that died keeps it until its TTL). */
  readonly longestLockHoldS: number;
  readonly verdict: Verdict;
  readonly convergeS: number;
  readonly events: { name: string; atS: number; tookS: number; error?: string }[];
  readonly stats: Record<string, number>;
  readonly lateWrites: number;
  readonly violations: Violation[];
  readonly tempDir?: string;
}

/** Run the whole thing; never throws for a violation (the report says), only for a broken setup. */
export async function runChaos(o: ChaosOptions): Promise<ChaosReport> {
  if (o.settleMs <= o.lagMaxMs + o.xTimeoutMs) {
    throw new Error(`settle window ${o.settleMs} ms must exceed lag ${o.lagMaxMs} ms + X timeout ${o.xTimeoutMs} ms, or "not on the timeline" is no proof`);
  }
  const { cli } = builtPaths();
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first`);
  const log = o.log;
  const rng = mulberry32(o.seed);
  const runId = `r${randomBytes(3).toString('hex')}`;
  const prefix = `chaos-${runId}`;
  const dir = await mkdtemp(join(tmpdir(), 'xactly-chaos-'));
  const logDir = join(dir, 'logs');
  await mkdir(logDir);

  const accounts: ChaosAccount[] = Array.from({ length: o.accounts }, (_, i) => ({
    id: `chaos-${String(i).padStart(3, '0')}`,
    userId: String(700_000 + i),
    token: `chaos-${runId}-${i}-${randomBytes(6).toString('hex')}`,
  }));
  const fan: ChaosAccount = { id: 'fan', userId: '990001', token: `fan-${runId}-${randomBytes(6).toString('hex')}` };
  const accountsFile = join(dir, 'accounts.json');
  await writeFile(accountsFile, JSON.stringify({ accounts: accounts.map((a) => accountOf(a)) }), { mode: 0o600 });

  const monitor = newRedis(o.redisUrl);
  monitor.on('error', () => undefined);
  const ledger = openLedger(monitor, { prefix, retentionMs: 24 * 3_600_000 });
  let fake: FakeXControl | undefined;
  let pool: WorkerPool | undefined;
  const producers: Producer[] = [];
  const onExit = () => pool?.killAllNow();
  process.once('exit', onExit);
  const tasks: Promise<unknown>[] = [];
  let stopChaos = false;
  let stopAll = false;
  const violations: Violation[] = [];
  const eventLog: ChaosReport['events'] = [];
  const tally: EnqueueTally = { queued: 0, duplicate: 0, sent: 0, failed: 0, racing: 0, afterRemoval: 0, afterRemovalSent: 0, jobsRemoved: 0, finalReplays: 0 };
  let timedOut = false;
  let convergeS = Number.NaN;
  let lateWrites = 0;
  let keys: KeySpec[] = [];
  let producerErrors = 0;
  let killsDuringPass = 0;
  let longestLockHoldMs = 0;
  let calendar: CalendarTally = { ops: { cancel: 0, edit: 0, reschedule: 0 }, answers: {}, retried: 0 };

  try {
    // The fake X: faults off until the post to reply to exists.
    const realX = o.realX ?? true;
    const refuser: ChaosAccount = { id: 'quiet', userId: '990002', token: `quiet-${runId}-${randomBytes(6).toString('hex')}` };
    const fakeAccounts = [...accounts, fan, refuser].map(fakeAccountOf);
    fake = await startFakeXProcess(
      {
        accounts: fakeAccounts,
        faultRate: 0,
        ...(o.faultKinds && { faultKinds: [...o.faultKinds] }),
        seed: o.seed,
        lagMs: 0,
        duplicateCheck: o.xDuplicateCheck,
        rateLimitResetSec: 2,
        controlToken: randomBytes(16).toString('hex'),
        ...(realX && { lookupFaultRate: o.faultRate / 3, replyRestriction: true, refusesDms: [refuser.userId] }),
      },
      dir,
    );
    const fanPost = async (text: string): Promise<string> => {
      const res = await fetch(`${fake!.url}/2/tweets`, {
        method: 'POST',
        headers: { authorization: `Bearer ${fan.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ text }),
        signal: AbortSignal.timeout(10_000),
      });
      if (res.status !== 201) throw new Error(`fake X refused the post to reply to: ${res.status} ${await res.text()}`);
      return ((await res.json()) as { data: { id: string } }).data.id;
    };
    // Replies are allowed to the post that mentions every account, refused to the other.
    const rootTweetId = await fanPost(`Who is launching something this week? ${realX ? accounts.map((a) => `@${a.id}`).join(' ') + ' ' : ''}(${runId})`);
    const restrictedRootId = realX ? await fanPost(`Nobody asked you (${runId})`) : undefined;
    await fake.setFaultRate(o.faultRate);
    await fake.setLag(Math.floor(rng() * o.lagMaxMs));

    // The workers: the real CLI, one prefix of our own.
    const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(XACTLY_|X_|REDIS_|BOARD_|LOG_LEVEL)/.test(k)));
    Object.assign(env, {
      REDIS_URL: o.redisUrl,
      XACTLY_PREFIX: prefix,
      XACTLY_ACCOUNTS_FILE: accountsFile,
      X_API_BASE_URL: fake.url,
      X_TIMEOUT_MS: String(o.xTimeoutMs),
      XACTLY_SETTLE_WINDOW_MS: String(o.settleMs),
      XACTLY_RECONCILE_INTERVAL_MS: String(o.reconcileMs),
      XACTLY_CONCURRENCY: String(o.concurrency),
      XACTLY_POST_LIMIT: '100000',
      XACTLY_DM_LIMIT: '100000',
      XACTLY_APP_DAILY_LIMIT: '0',
      LOG_LEVEL: 'info',
      ...o.workerEnv,
    });
    pool = new WorkerPool(env, logDir, log);
    const initial = Array.from({ length: o.workers }, () => pool!.start());
    await pool.ready(initial);
    log(`fake X ${fake.url} (lag <= ${o.lagMaxMs} ms, fault rate ${o.faultRate}), ${o.workers} workers on prefix ${prefix}, logs in ${logDir}`);

    // The schedule, enqueued by two producers on their own connections.
    const start = Date.now();
    keys = buildSchedule({
      runId,
      keys: o.keys,
      accounts,
      rootTweetId,
      fanUserId: fan.userId,
      fanUsername: fan.id,
      start: start + 2_000,
      spreadMs: o.spreadS * 1_000,
      deadlineMs: o.deadlineS * 1_000,
      ...(restrictedRootId && { restrictedRootId, refuserUserId: refuser.userId }),
    });
    const known = new Set(accounts.map((a) => a.id));
    for (let i = 0; i < 2; i++) {
      const p = createProducer({ connection: o.redisUrl, prefix, knownAccount: (id) => known.has(id) });
      // BullMQ prints a Queue's connection errors to stderr when no one listens (a Redis restart is an event of some runs).
      p.queue.on('error', (err) => {
        if (producerErrors++ === 0) log(`producer queue error (Redis away?): ${err.message}`);
      });
      producers.push(p);
    }
    const [pa, pb] = producers as [Producer, Producer];
    const deadlineAt = start + o.timeoutS * 1_000;
    const queuedAnswers = new Map<string, number>();
    const byKeyId = new Map(keys.map((k) => [k.keyId, k]));
    const indexOf = new Map(keys.map((k, i) => [k.keyId, i]));
    // The calendar stream's keys are enqueued again only by the final replay, with what the stream made of them.
    const picked = pickCalendar(keys, o.calendarShare ?? 0, rng);

    const count = (k: KeySpec, r: EnqueueResult, expectFinal: false | PostRecord | undefined) => {
      if (r.status === 'queued') {
        tally.queued++;
        queuedAnswers.set(k.keyId, (queuedAnswers.get(k.keyId) ?? 0) + 1);
      } else if (r.status === 'duplicate') tally.duplicate++;
      else if (r.status === 'sent') tally.sent++;
      else if (r.status === 'failed') tally.failed++;
      const wrong = answerViolation(k, r, expectFinal);
      if (wrong) violations.push(wrong);
    };

    const chunk = 50;
    const enqueuer = async (mine: Producer, other: Producer, parity: number) => {
      for (let c = parity; c * chunk < keys.length; c += 2) {
        const batch = keys.slice(c * chunk, (c + 1) * chunk);
        // A share is sent by both producers at the same moment: one of them must get `queued`, the other `duplicate`.
        const racing = batch.filter(() => rng() < o.dupShare / 2);
        tally.racing += racing.length;
        const [own, raced] = await Promise.all([mine.enqueueMany(batch.map(requestOf)), other.enqueueMany(racing.map(requestOf))]);
        own.forEach((r, i) => count(batch[i]!, r, false));
        raced.forEach((r, i) => count(racing[i]!, r, false));
        // And a share of recent keys again, a little later, while they are being published.
        const earlier = keys.slice(Math.max(0, (c - 3) * chunk), (c + 1) * chunk).filter(() => rng() < o.dupShare / 4);
        (await mine.enqueueMany(earlier.map(requestOf))).forEach((r, i) => count(earlier[i]!, r, false));
      }
    };
    await Promise.all([enqueuer(pa, pb, 0), enqueuer(pb, pa, 1)]);
    log(`enqueued ${keys.length} keys in ${((Date.now() - start) / 1000).toFixed(1)} s (${tally.queued} queued, ${tally.duplicate} duplicate answers)`);

    // Kills, lag changes, job removal + re-enqueue, the calendar stream and timed events, all in the background.
    tasks.push(
      runCalendar({
        keys: () => keys,
        picked,
        lifecycle: pa.lifecycle,
        rng,
        deadlineMs: o.deadlineS * 1_000,
        stopped: () => stopAll || Date.now() > deadlineAt,
        update: (k) => {
          keys[indexOf.get(k.keyId)!] = k;
          byKeyId.set(k.keyId, k);
        },
      }).then((t) => {
        calendar = t;
        log(
          `calendar stream: ${
            Object.entries(t.answers)
              .map(([k, n]) => `${k} ${n}`)
              .join(', ') || 'none'
          }`,
        );
      }),
    );
    tasks.push(
      (async () => {
        if (o.killEveryS <= 0) return;
        while (!stopChaos && !stopAll) {
          await sleep(o.killEveryS * 1_000);
          if (stopChaos || stopAll) break;
          if (o.chaosS !== undefined && Date.now() - start > o.chaosS * 1_000) break;
          const live = pool!.live();
          if (live.length === 0) continue;
          const victim = live[Math.floor(rng() * live.length)]!;
          const signal = rng() < o.termShare ? 'SIGTERM' : 'SIGKILL';
          // A SIGKILL while the reconciliation lock is held may hit the pass holding it.
          if (signal === 'SIGKILL' && (await monitor.exists(ledger.keys.reconcileLock).catch(() => 0))) killsDuringPass++;
          pool!.hit(victim, signal);
        }
      })(),
    );
    tasks.push(
      (async () => {
        while (!stopAll) {
          await sleep(5_000);
          if (stopAll) break;
          await fake!.setLag(Math.floor(rng() * o.lagMaxMs)).catch(() => undefined);
        }
      })(),
    );
    tasks.push(
      (async () => {
        // Remove completed jobs, then re-enqueue some of their keys: BullMQ's
        // dedupe is gone, only the ledger stands between them and X.
        while (!stopAll) {
          await sleep(4_000);
          if (stopAll) break;
          try {
            const removed = await pa.queue.clean(0, 2_000, 'completed');
            tally.jobsRemoved += removed.length;
            const sample = [
              ...new Set(
                removed
                  .map((id) => parseJobId(id))
                  .filter((k) => k !== undefined)
                  .map((k) => keyIdOf(k)),
              ),
            ]
              .filter((id) => !picked.has(id) && rng() < 0.5)
              .slice(0, 100)
              .map((id) => byKeyId.get(id))
              .filter((k): k is KeySpec => k !== undefined);
            if (sample.length === 0) continue;
            const before = await ledger.getMany(sample.map((k) => k.keyId));
            const answers = await pb.enqueueMany(sample.map(requestOf));
            answers.forEach((r, i) => {
              const b = before[i];
              const final = b && isFinal(b.state) ? b : undefined;
              tally.afterRemoval++;
              if (final?.state === 'sent') tally.afterRemovalSent++;
              count(sample[i]!, r, final ?? false);
            });
          } catch (err) {
            // A Redis outage (an event of the run) may fail one round; the next one tries again.
            log(`job removal round failed: ${(err as Error).message}`);
          }
        }
      })(),
    );
    tasks.push(
      (async () => {
        // How long one reconciliation lock is held: a pass takes milliseconds to
        // seconds; a lock held far longer belongs to a process that died mid-pass.
        let token: string | null = null;
        let since = 0;
        while (!stopAll) {
          const now = Date.now();
          const current = await monitor.get(ledger.keys.reconcileLock).catch(() => null);
          if (current !== token) {
            token = current;
            since = now;
          } else if (token !== null) {
            longestLockHoldMs = Math.max(longestLockHoldMs, now - since);
          }
          await sleep(250);
        }
      })(),
    );
    for (const e of o.events ?? []) {
      tasks.push(
        (async () => {
          const wait = start + e.atS * 1_000 - Date.now();
          if (wait > 0) await sleep(wait);
          if (stopAll) return;
          const t0 = Date.now();
          log(`event: ${e.name}`);
          try {
            await e.run({
              redis: monitor,
              prefix,
              hitAllWorkers: (signal) => {
                const live = pool!.live();
                for (const h of live) pool!.hit(h, signal);
                return live.length;
              },
            });
            eventLog.push({ name: e.name, atS: (t0 - start) / 1000, tookS: (Date.now() - t0) / 1000 });
          } catch (err) {
            eventLog.push({ name: e.name, atS: (t0 - start) / 1000, tookS: (Date.now() - t0) / 1000, error: (err as Error).message });
            log(`event ${e.name} failed: ${(err as Error).message}`);
          }
        })(),
      );
    }

    // Wait until every key is final (bounded by the timeout).
    let lastProgress = 0;
    let records: (PostRecord | undefined)[] = [];
    for (;;) {
      records = await getAll(
        ledger,
        keys.map((k) => k.keyId),
      );
      const counts: Record<string, number> = { queued: 0, claimed: 0, ambiguous: 0, sent: 0, failed: 0, missing: 0 };
      for (const r of records) counts[r?.state ?? 'missing'] = (counts[r?.state ?? 'missing'] ?? 0) + 1;
      const final = records.filter((r) => r && isFinal(r.state)).length;
      if (Date.now() - lastProgress > 5_000) {
        lastProgress = Date.now();
        log(
          `t+${Math.round((Date.now() - start) / 1000)}s ${Object.entries(counts)
            .map(([k, v]) => `${k} ${v}`)
            .join(' ')} | workers ${pool.live().length} SIGKILL ${pool.kills} SIGTERM ${pool.terms} crashes ${pool.crashes.length}`,
        );
      }
      const eventsDone = (o.events ?? []).every((e) => eventLog.some((l) => l.name === e.name));
      if (final === keys.length && eventsDone) {
        convergeS = (Date.now() - start) / 1000;
        break;
      }
      if (Date.now() > deadlineAt) {
        timedOut = true;
        log(`timed out after ${o.timeoutS} s with ${keys.length - final} key(s) not final`);
        break;
      }
      await sleep(500);
    }
    stopChaos = true;

    if (!timedOut) {
      // After the fact: clean every finished job, then both producers replay the
      // whole schedule. Every answer must be the ledger's final word, and X must
      // see no new write.
      const settled = await getAll(
        ledger,
        keys.map((k) => k.keyId),
      );
      for (const state of ['completed', 'failed'] as const) tally.jobsRemoved += (await pa.queue.clean(0, 100_000, state)).length;
      const writesBefore = (await fake.created()).length;
      for (let c = 0; c < keys.length; c += 500) {
        const batch = keys.slice(c, c + 500);
        const [ra, rb] = await Promise.all([pa.enqueueMany(batch.map(requestOf)), pb.enqueueMany(batch.map(requestOf))]);
        for (const rs of [ra, rb]) rs.forEach((r, i) => count(batch[i]!, r, settled[c + i] ?? false));
        tally.finalReplays += batch.length * 2;
      }
      await sleep(Math.max(2_000, 2 * o.reconcileMs));
      lateWrites = (await fake.created()).length - writesBefore;
      if (lateWrites > 0) violations.push({ keyId: '-', kind: 'duplicate', detail: `${lateWrites} write(s) reached X after every key was final` });
    }
    stopAll = true;

    violations.push(...queuedOnceViolations(keys, queuedAnswers));

    await pool.stopAll(3 * o.xTimeoutMs + 10_000);
    await Promise.all(tasks);
    records = await getAll(
      ledger,
      keys.map((k) => k.keyId),
    );
    const created = await fake.created();
    const faults = await fake.faults();
    const requests = await fake.requests();
    const writes = Object.entries(requests)
      .filter(([k]) => /^POST \/2\/(tweets|dm_conversations)/.test(k))
      .reduce((n, [, v]) => n + v, 0);
    const verdict = verify(keys, records, created, runId);
    const checked = runViolations({
      verdict,
      accountStatus: await ledger.accountStatus(accounts.map((a) => a.id)),
      crashes: pool.crashes,
      allowWorkerCrashes: o.allowWorkerCrashes,
      events: eventLog,
      graceful: pool.graceful,
    });
    violations.push(...checked.violations);
    violations.push(...(await eventViolations(ledger, keys)));
    const graceful = checked.graceful;
    const stats = await ledger.stats();
    const kinds: Record<string, number> = {};
    for (const k of keys) kinds[k.kind] = (kinds[k.kind] ?? 0) + 1;
    const ok = violations.length === 0 && !timedOut;
    const { log: _log, events: _events, ...options } = o;
    if (!ok) {
      // The audit trails of the first violators, before the prefix goes away.
      const ids = [...new Set(violations.map((v) => v.keyId).filter((id) => id !== '-'))].slice(0, 5);
      for (const id of ids)
        log(`audit trail of ${id}:\n${(await ledger.auditTrail(id)).map((e) => `  ${new Date(e.at).toISOString()} ${JSON.stringify(e)}`).join('\n')}`);
    }
    return {
      ok,
      timedOut,
      options,
      runId,
      prefix,
      kinds,
      enqueue: tally,
      calendar,
      faults,
      writes,
      kills: { sigkill: pool.kills, sigterm: pool.terms, graceful, crashes: pool.crashes, duringPass: killsDuringPass },
      longestLockHoldS: longestLockHoldMs / 1000,
      verdict,
      convergeS,
      events: eventLog,
      stats,
      lateWrites,
      violations,
      ...((!ok || o.keepTemp) && { tempDir: dir }),
    };
  } finally {
    stopAll = true;
    stopChaos = true;
    await pool?.stopAll(5_000).catch(() => undefined);
    await fake?.stop().catch(() => undefined);
    for (const p of producers) await p.close().catch(() => undefined);
    await dropPrefix(monitor, prefix).catch((err: Error) => log(`could not drop prefix ${prefix}: ${err.message}`));
    monitor.disconnect();
    process.removeListener('exit', onExit);
    // Worker logs are kept when something went wrong (the report names the dir).
    if (!o.keepTemp && !(violations.length === 0 && !timedOut && keys.length > 0)) {
      await rm(join(dir, 'accounts.json'), { force: true });
      await rm(join(dir, 'fake-x.json'), { force: true });
    } else if (!o.keepTemp) {
      await rm(dir, { recursive: true, force: true });
    }
  }
}

/** Every key's outcome events against its audit trail: one event per transition, none without one (the scripts write both). */
async function eventViolations(ledger: Ledger, keys: readonly KeySpec[]): Promise<Violation[]> {
  const byKey = new Map<string, OutcomeEvent[]>();
  for (let from = '0'; ;) {
    const batch = await ledger.readEvents(from, 1_000);
    if (batch.length === 0) break;
    for (const e of batch) if (e.key) byKey.set(e.key, [...(byKey.get(e.key) ?? []), e]);
    from = batch.at(-1)!.id;
  }
  const out: Violation[] = [];
  for (const k of keys) {
    const wrong = eventsViolation(await ledger.auditTrail(k.keyId), byKey.get(k.keyId) ?? [], ledger.auditMax);
    if (wrong) out.push({ keyId: k.keyId, kind: 'events', detail: wrong });
  }
  return out;
}

async function getAll(ledger: Ledger, ids: readonly string[]): Promise<(PostRecord | undefined)[]> {
  const out: (PostRecord | undefined)[] = [];
  for (let i = 0; i < ids.length; i += 1_000) out.push(...(await ledger.getMany(ids.slice(i, i + 1_000))));
  return out;
}
