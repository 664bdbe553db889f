import type { Worker } from 'bullmq';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { startHeartbeat, workerId } from './health.js';
import type { ReconcileReport } from '../queue/reconciler.js';
import { type App, type AppOverrides, openApp } from '../app.js';

export interface WorkerProcess {
  readonly workers: readonly Worker[];
  /** Stop taking jobs, let in-flight X calls finish (bounded), close. Idempotent. */
  stop(graceMs?: number): Promise<'drained' | 'forced'>;
  /** Re-read the accounts file (SIGHUP); accounts whose credentials changed are resumed. */
  reloadCredentials(): Promise<void>;
}

/** Overrides for tests and embedders (see `openApp`). */
export interface WorkerProcessOptions extends AppOverrides {
  readonly onReconcile?: (report: ReconcileReport) => void;
}

export async function startWorkerProcess(config: Config, logger: Logger, opts: WorkerProcessOptions = {}): Promise<WorkerProcess> {
  const app = await openApp(config, logger, opts);
  // A process that cannot start (a bad accounts file, ...) must not keep its connection open.
  return startOn(app, config, logger, opts).catch(async (err: unknown) => {
    await app.close();
    throw err;
  });
}

async function startOn(app: App, config: Config, logger: Logger, opts: WorkerProcessOptions): Promise<WorkerProcess> {
  const { redis, ledger } = app;
  const file = await app.accountsFile();

  // New credentials for an account are a reason to try it again.
  const onCredentialsChanged = async (changed: string[] | Error) => {
    if (changed instanceof Error) return logger.error({ err: changed, event: 'accounts-file-invalid' }, 'accounts file invalid; keeping the previous accounts');
    for (const id of changed) if (await ledger.resumeAccount(id)) logger.info({ accountId: id }, 'account resumed: credentials changed');
    if (changed.length) logger.info({ changed: changed.length }, 'credentials reloaded');
  };
  file?.watch((c) => void onCredentialsChanged(c));

  const publish = await app.publishWorker();
  const reconciler = await app.reconciler({ ...(opts.onReconcile && { onReport: opts.onReconcile }) });
  const workers: Worker[] = [publish, reconciler.worker];
  // Webhooks ride along when configured; they only read the events stream, so publishing never waits on a receiver.
  const webhooks = config.webhooks ? await app.webhookDeliverer() : undefined;
  // Tells /healthz and /metrics this process is alive.
  const heartbeat = startHeartbeat({ redis, keys: ledger.keys, logger });
  logger.info(
    { event: 'worker-ready', prefix: config.prefix, concurrency: config.workerConcurrency, webhooks: webhooks?.targets.length ?? 0 },
    'worker started',
  );

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
        const bound = new Promise<'forced'>((resolve) => {
          timer = setTimeout(() => resolve('forced'), graceMs);
        });
        // Webhook tries in flight get the same window; the rest keep their leases and are tried again by another deliverer.
        const hooksStopped = webhooks?.stop(graceMs);
        const drained = Promise.all(workers.map((w) => w.close())).then(() => 'drained' as const);
        const how = await Promise.race([drained, bound]);
        clearTimeout(timer);
        // Forced: in-flight calls keep their claims; their leases expire and
        // reconciliation resolves them. Nothing is lost either way.
        if (how === 'forced') await Promise.all(workers.map((w) => w.close(true)));
        await hooksStopped;
        await heartbeat.stop();
        // The structured record of this stop (a log line may be lost by a supervisor).
        await redis
          .set(ledger.keys.workerStopped(workerId()), JSON.stringify({ how, stoppingAt, stoppedAt: Date.now() }), 'PX', 3_600_000)
          .catch((err: unknown) => logger.warn({ err }, 'could not record the stop'));
        await app.close();
        logger.info({ how }, 'stopped');
        return how;
      })();
      return stopping;
    },
  };
}
