import type { Worker } from 'bullmq';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { Queue } from 'bullmq';
import { QUEUE_NAMES } from '../ledger/keys.js';
import type { PublishJobData } from '../queue/jobs.js';
import { startHeartbeat, workerId } from './health.js';
import { createPublishWorker } from '../queue/publisher.js';
import { type ReconcileReport, startReconciler } from '../queue/reconciler.js';
import { connectRedis, leaseFor, ledgerFor, loadCredentials, xPortFor } from '../runtime.js';
import type { CredentialStore } from '../x/credentials.js';
import type { XPort } from '../x/port.js';

export interface WorkerProcess {
  readonly workers: readonly Worker[];
  /** Stop taking jobs, let in-flight X calls finish (bounded), close. Idempotent. */
  stop(graceMs?: number): Promise<'drained' | 'forced'>;
  /** Re-read the accounts file (SIGHUP); accounts whose credentials changed are resumed. */
  reloadCredentials(): Promise<void>;
}

export interface WorkerProcessOptions {
  readonly credentials?: CredentialStore;
  readonly x?: XPort;
  readonly onReconcile?: (report: ReconcileReport) => void;
}

export async function startWorkerProcess(config: Config, logger: Logger, opts: WorkerProcessOptions = {}): Promise<WorkerProcess> {
  const file = opts.credentials ? undefined : await loadCredentials(config);
  const credentials = opts.credentials ?? file!;
  const redis = await connectRedis(config);
  const ledger = ledgerFor(redis, config);
  const twitter = opts.x ? undefined : xPortFor(config, credentials, redis, ledger, logger);
  const x = opts.x ?? twitter!;

  // New credentials for an account are a reason to try it again.
  const onCredentialsChanged = async (changed: string[] | Error) => {
    if (changed instanceof Error) return logger.error({ err: changed, event: 'accounts-file-invalid' }, 'accounts file invalid; keeping the previous accounts');
    for (const id of changed) if (await ledger.resumeAccount(id)) logger.info({ accountId: id }, 'account resumed: credentials changed');
    if (changed.length) logger.info({ changed: changed.length }, 'credentials reloaded');
  };
  file?.watch((c) => void onCredentialsChanged(c));

  const publish = createPublishWorker({
    connection: redis,
    ledger,
    x,
    logger,
    concurrency: config.workerConcurrency,
    leaseMs: leaseFor(config),
    settleWindowMs: config.settleWindowMs,
    budget: config.budget,
    accountLimits: async (id) => (await credentials.get(id))?.limits,
  });
  publish.on('error', (err) => logger.error({ err, event: 'publish-worker-error' }, 'publish worker error'));
  const publishQueue = new Queue<PublishJobData>(QUEUE_NAMES.publish, { connection: redis as never, prefix: ledger.keys.bullPrefix });
  // Without a listener BullMQ prints connection errors raw to the console.
  publishQueue.on('error', (err) => logger.warn({ err, event: 'publish-queue-error' }, 'publish queue error'));
  const reconciler = await startReconciler({
    connection: redis,
    ledger,
    x,
    queue: publishQueue,
    logger,
    intervalMs: config.reconcileIntervalMs,
    settleWindowMs: config.settleWindowMs,
    unresolvedGraceMs: config.unresolvedGraceMs,
    passBudgetMs: config.reconcileBudgetMs,
    ...(opts.onReconcile && { onReport: opts.onReconcile }),
  });
  const workers: Worker[] = [publish, reconciler.worker];
  // Tells /healthz and /metrics this process is alive.
  const heartbeat = startHeartbeat({ redis, keys: ledger.keys, logger });
  logger.info({ prefix: config.prefix, concurrency: config.workerConcurrency }, 'worker started');

  let stopping: Promise<'drained' | 'forced'> | undefined;
  return {
    workers,
    async reloadCredentials() {
      if (!file) return;
      await file.reload().then(onCredentialsChanged, (err: Error) => onCredentialsChanged(err));
    },
    stop(graceMs = 2 * config.xTimeoutMs + 5_000) {
      stopping ??= (async () => {
        const stoppingAt = Date.now();
        logger.info({ graceMs }, 'stopping: no new jobs; waiting for in-flight X calls');
        let timer: NodeJS.Timeout | undefined;
        const bound = new Promise<'forced'>((resolve) => { timer = setTimeout(() => resolve('forced'), graceMs); });
        const drained = Promise.all(workers.map((w) => w.close())).then(() => 'drained' as const);
        const how = await Promise.race([drained, bound]);
        clearTimeout(timer);
        // Forced: in-flight calls keep their claims; their leases expire and
        // reconciliation resolves them. Nothing is lost either way.
        if (how === 'forced') await Promise.all(workers.map((w) => w.close(true)));
        await reconciler.queue.close();
        await publishQueue.close();
        twitter?.close();
        file?.close();
        await heartbeat.stop();
        // The structured record of this stop (a log line may be lost by a supervisor).
        await redis
          .set(ledger.keys.workerStopped(workerId()), JSON.stringify({ how, stoppingAt, stoppedAt: Date.now() }), 'PX', 3_600_000)
          .catch((err: unknown) => logger.warn({ err }, 'could not record the stop'));
        redis.disconnect();
        logger.info({ how }, 'stopped');
        return how;
      })();
      return stopping;
    },
  };
}
