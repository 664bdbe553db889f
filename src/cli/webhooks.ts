import { parseArgs } from 'node:util';
import { StartupError } from '../app.js';
import type { Config } from '../config.js';
import { createLogger } from '../log.js';
import { deadLetters, retryDeadLetters, webhookStatus } from '../webhooks/store.js';
import { UsageError, withApp } from './common.js';
import { stdout } from './output.js';
import { renderTable, writeTable } from './table.js';

/**
 * `xactly webhooks`: run the webhook deliverer alone (`xactly worker` runs
 * one too when XACTLY_WEBHOOK_URLS is set), list the dead letters, put them
 * back, or show each URL's counts.
 */
export const WEBHOOKS_HELP: Record<string, string> = {
  webhooks:
    'xactly webhooks\n' +
    '  Delivers outcome events to XACTLY_WEBHOOK_URLS (signed with XACTLY_WEBHOOK_SECRET) until SIGTERM/SIGINT.\n' +
    '  `xactly worker` runs the same deliverer when the URLs are set; any number may run at once.\n' +
    'xactly webhooks failed [--url ID] [--json]\n' +
    '  Lists the dead letters (events given up on after XACTLY_WEBHOOK_MAX_TRIES), newest first per URL.\n' +
    'xactly webhooks retry <eventId> [--url ID] | xactly webhooks retry --all [--url ID]\n' +
    '  Puts dead letters back for delivery, with a fresh count of tries (a running deliverer picks them up within a second).\n' +
    'xactly webhooks status [--json]\n' +
    '  Each URL served so far (id, host): delivered, retried, dead-lettered, skipped (trimmed before delivery), pending.',
};

export async function cmdWebhooks(config: Config, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { json: { type: 'boolean' }, all: { type: 'boolean' }, url: { type: 'string' } },
    allowPositionals: true,
  });
  const [sub, ...rest] = positionals;
  switch (sub) {
    case undefined:
      if (values.json || values.all || values.url) throw new UsageError('webhooks (the deliverer) takes no options');
      return runDeliverer(config);
    case 'failed':
      if (rest.length) throw new UsageError('webhooks failed takes no arguments');
      return listFailed(config, values.url, values.json ?? false);
    case 'retry':
      if (values.all ? rest.length !== 0 : rest.length !== 1) throw new UsageError('webhooks retry needs one <eventId>, or --all');
      return retry(config, { ...(values.all ? { all: true } : { eventId: rest[0]! }), ...(values.url && { urlId: values.url }) });
    case 'status':
      return status(config, values.json ?? false);
    default:
      throw new UsageError(`unknown webhooks subcommand "${sub}"`);
  }
}

async function runDeliverer(config: Config): Promise<number> {
  if (!config.webhooks) throw new StartupError('XACTLY_WEBHOOK_URLS is not set: name the URLs to deliver outcome events to (see README, "Webhooks").');
  const logger = createLogger({ level: config.logLevel, format: config.logFormat });
  return withApp(
    config,
    async (app) => {
      const deliverer = await app.webhookDeliverer();
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await deliverer.stop();
      return 0;
    },
    logger,
  );
}

async function listFailed(config: Config, urlId: string | undefined, json: boolean): Promise<number> {
  return withApp(config, async ({ redis, ledger }) => {
    const letters = deadLetters(redis, ledger.keys, urlId);
    if (json) {
      for await (const d of letters) await stdout.line(JSON.stringify(d));
      return 0;
    }
    const rows = (async function* () {
      for await (const d of letters) {
        yield [
          d.id,
          `${d.urlId} ${d.host}`,
          d.type,
          d.slotId !== undefined ? `${d.slotId}/${d.postId}` : (d.accountId ?? ''),
          String(d.tries),
          d.deadAt ?? '',
          d.error ?? '',
        ];
      }
    })();
    if ((await writeTable(stdout, ['EVENT', 'URL', 'TYPE', 'KEY', 'TRIES', 'DEAD SINCE', 'LAST ERROR'], rows)) === 0) await stdout.line('no dead letters');
    return 0;
  });
}

async function retry(config: Config, which: { eventId?: string; all?: boolean; urlId?: string }): Promise<number> {
  return withApp(config, async ({ redis, ledger, clock }) => {
    const done = await retryDeadLetters(redis, ledger.keys, which, clock());
    const total = [...done.values()].reduce((a, b) => a + b, 0);
    if (total === 0) {
      await stdout.line(which.eventId ? `no dead letter ${which.eventId}${which.urlId ? ` for URL ${which.urlId}` : ''}` : 'no dead letters');
      return which.eventId ? 1 : 0;
    }
    for (const [urlId, n] of done) if (n > 0) await stdout.line(`URL ${urlId}: ${n} event(s) put back for delivery`);
    return 0;
  });
}

async function status(config: Config, json: boolean): Promise<number> {
  return withApp(config, async ({ redis, ledger }) => {
    const all = await webhookStatus(redis, ledger.keys, { limit: 0 });
    if (json) {
      for (const s of all)
        await stdout.line(JSON.stringify({ urlId: s.urlId, host: s.host, url: s.label, cursor: s.cursor, ...s.counts, pending: s.pending, dead: s.dead }));
      return 0;
    }
    if (all.length === 0) {
      await stdout.line('no webhook URL served yet');
      return 0;
    }
    await stdout.line(
      renderTable(
        ['URL', 'ID', 'DELIVERED', 'RETRIED', 'DEAD-LETTERED', 'SKIPPED', 'PENDING', 'DEAD NOW'],
        all.map((s) => [s.label, s.urlId, ...[s.counts.delivered, s.counts.retried, s.counts.deadLettered, s.counts.skipped, s.pending, s.dead].map(String)]),
      ),
    );
    return 0;
  });
}
