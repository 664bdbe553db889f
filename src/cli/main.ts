#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, type Config } from '../config.js';
import { keyId } from '../domain/key.js';
import { POST_STATES, type PostState } from '../domain/state.js';
import { accountView, recordView } from '../domain/view.js';
import { createLogger } from '../log.js';
import { startWorkerProcess, type WorkerProcess } from '../ops/worker-process.js';
import { StartupError } from '../app.js';
import { inputLines, UsageError, withApp } from './common.js';
import { cmdCancel, cmdEdit, cmdReschedule, LIFECYCLE_HELP } from './lifecycle.js';
import { cmdWebhooks, WEBHOOKS_HELP } from './webhooks.js';
import { API_HELP, cmdApi, cmdApiToken } from './api.js';
import { CredentialsError, fileCredentialStore } from '../x/credentials.js';
import { reconcileOnce } from '../queue/reconciler.js';
import { enqueueLines, formatLineResult, isRefused } from './enqueue.js';
import { stderr, stdout } from './output.js';
import { renderTable, writeTable } from './table.js';

const USAGE = `xactly — exactly-once publishing of scheduled X posts, replies and DMs

Usage: xactly <command> [options]

Commands:
  worker                     run the publish worker until SIGTERM/SIGINT, then drain
  board [--open]             Bull Board, the ledger pages (/ledger), /metrics, /healthz, /api/posts on BOARD_PORT (BOARD_USER/BOARD_PASSWORD)
  enqueue [FILE|-] [--json]  enqueue publish requests (JSON lines); one result per line
  posts [--state S] [--account A] [--json]
                             list the ledger
  post <slotId> <postId> [--json]
                             one key with its audit trail
  cancel <slotId> <postId> | cancel --file FILE|- | cancel --account ID [--from ISO] [--to ISO]
                             cancel keys: a queued key never goes out; one in flight ends sent or cancelled
  edit FILE|- [--json]       replace the text (or reply target) of queued keys (JSON lines)
  reschedule FILE|- [--json] move queued keys to a new time (JSON lines of {slotId, postId, scheduledAt, deadline?})
  accounts [--json] | accounts resume <id> | accounts resume --app
                             accounts with their pause/rate-limit state; resume a paused one
  api                        the HTTP API on API_PORT (bearer tokens from XACTLY_API_TOKENS_FILE)
  api-token create NAME [--accounts a,b]
                             make an API token (printed once; its hash goes to XACTLY_API_TOKENS_FILE)
  fake-x [--port P] [--host H] [--fault-rate R] [--lag MS] [--seed N]
                             run the fake X API (for demos and rehearsals)
  demo                       run a self-contained demo against local Redis
  reconcile --once           run one reconciliation pass now and print its report
  webhooks [failed [--json] | retry <eventId>|--all | status [--json]]
                             deliver outcome events to XACTLY_WEBHOOK_URLS (the worker does too); dead letters

Environment: REDIS_URL, XACTLY_PREFIX, X_API_BASE_URL, X_TIMEOUT_MS,
XACTLY_ACCOUNTS_FILE, LOG_LEVEL (see README).
Exit codes: 0 ok, 1 operational error, 2 bad input (usage, invalid lines).`;

const HELP: Record<string, string> = {
  ...LIFECYCLE_HELP,
  ...WEBHOOKS_HELP,
  ...API_HELP,
  worker:
    'xactly worker\n  Runs the publish worker. Needs XACTLY_ACCOUNTS_FILE. SIGTERM/SIGINT drains in-flight X calls (bounded); a second signal forces exit.',
  enqueue:
    'xactly enqueue [FILE|-] [--json]\n  Reads JSON publish requests, one per line, from FILE or stdin.\n  Prints one result per input line: queued, duplicate, sent, failed, conflict or invalid.\n  Exit 0 when every line was accepted, 2 when any was invalid or a conflict, 1 on an operational error.',
  posts: `xactly posts [--state ${POST_STATES.join('|')}] [--account ID] [--json]\n  Lists ledger records, oldest first. --json prints one JSON object per line.`,
  post: 'xactly post <slotId> <postId> [--json]\n  Shows one key and its audit trail.',
  reconcile: "xactly reconcile --once [--json]\n  Runs one reconciliation pass now (exclusive with the workers' passes) and prints what it resolved.",
  accounts:
    'xactly accounts [--json]\n  Lists the accounts of XACTLY_ACCOUNTS_FILE with their state: ok, paused (X refused the account: credentials, suspended or locked; their posts fail) or rate-limited until a time (15-minute window or 24-hour cap).\n  When X refused the app itself, or its 24-hour or monthly cap is reached, an APP line comes first: no account publishes.\nxactly accounts resume <id>\n  Resumes a paused account (after fixing it).\nxactly accounts resume --app\n  Resumes the app after X refused it (client-forbidden, client-not-enrolled): its waiting posts go out if their deadline allows.',
  'fake-x':
    "xactly fake-x [--port 4010] [--host 127.0.0.1] [--fault-rate 0.3] [--lag 5000] [--seed 1]\n  Runs the fake X API on 127.0.0.1 with the accounts of XACTLY_ACCOUNTS_FILE\n  (each accessToken authenticates as its account's userId).",
  board:
    'xactly board [--open]\n  Serves Bull Board on /board, the ledger pages on /ledger (posts, in doubt, accounts), Prometheus /metrics, /healthz and /api/posts/<slotId>/<postId>\n  on BOARD_HOST:BOARD_PORT (default 127.0.0.1:3000), behind HTTP Basic auth (BOARD_USER, BOARD_PASSWORD;\n  --open serves without auth when they are unset). Read-only unless BOARD_READ_ONLY=false\n  (then the ledger pages can cancel a post and resume an account or the app).',
  demo: "xactly demo [--no-board-wait]\n  Starts the fake X, a worker, the board and a sample schedule with faults; prints live progress and a summary\n  checked against the fake X's ground truth (exit 1 on any duplicate or lost post). At a terminal the board stays\n  up until Ctrl-C unless --no-board-wait.",
};

async function cmdEnqueue(config: Config, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: { json: { type: 'boolean' } }, allowPositionals: true });
  if (positionals.length > 1) throw new UsageError('enqueue takes at most one FILE');
  const lines = await inputLines(positionals[0]);
  const known = config.accountsFile ? new Set(await (await fileCredentialStore(config.accountsFile)).ids()) : undefined;
  return withApp(config, async (app) => {
    const producer = app.producer(known && { knownAccount: (id: string) => known.has(id) });
    let code = 0;
    for await (const r of enqueueLines(lines, producer)) {
      if (isRefused(r)) code = 2;
      await stdout.line(values.json ? JSON.stringify(r) : formatLineResult(r));
    }
    return code;
  });
}

async function cmdPosts(config: Config, args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { state: { type: 'string' }, account: { type: 'string' }, json: { type: 'boolean' } } });
  if (values.state && !POST_STATES.includes(values.state as PostState)) throw new UsageError(`--state must be one of ${POST_STATES.join(', ')}`);
  return withApp(config, async ({ ledger }) => {
    const records = ledger.list({ state: values.state as PostState | undefined, accountId: values.account });
    if (values.json) {
      for await (const r of records) await stdout.line(JSON.stringify(recordView(r)));
      return 0;
    }
    const rows = (async function* () {
      for await (const r of records) {
        yield [
          r.slotId,
          r.postId,
          r.accountId,
          r.kind,
          r.state,
          String(r.attempt),
          r.tweetId ?? '',
          r.reason ? `${r.reason}${r.detail ? ': ' + r.detail : ''}` : (r.detail ?? ''),
        ];
      }
    })();
    if ((await writeTable(stdout, ['SLOT', 'POST', 'ACCOUNT', 'KIND', 'STATE', 'ATTEMPTS', 'X ID', 'REASON'], rows)) === 0) await stdout.line('no posts');
    return 0;
  });
}

async function cmdPost(config: Config, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: { json: { type: 'boolean' } }, allowPositionals: true });
  if (positionals.length !== 2) throw new UsageError('post needs <slotId> <postId>');
  return withApp(config, async ({ ledger }) => {
    const id = keyId({ slotId: positionals[0]!, postId: positionals[1]! });
    const record = await ledger.get(id);
    if (!record) {
      await stderr.line(`no such key: ${positionals[0]}/${positionals[1]}`);
      return 1;
    }
    const audit = await ledger.auditTrail(id);
    if (values.json) await stdout.line(JSON.stringify({ ...recordView(record), text: record.text, audit }));
    else {
      for (const [k, v] of Object.entries({ ...recordView(record), text: record.text })) await stdout.line(`${k.padEnd(12)} ${String(v)}`);
      await stdout.line('\naudit trail:');
      for (const { at, event, ...rest } of audit) await stdout.line(`  ${new Date(at).toISOString()}  ${event.padEnd(13)} ${JSON.stringify(rest)}`);
    }
    return 0;
  });
}

async function cmdAccounts(config: Config, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: { json: { type: 'boolean' }, app: { type: 'boolean' } }, allowPositionals: true });
  return withApp(config, async (app) => {
    const { ledger } = app;
    if (positionals[0] === 'resume' && values.app) {
      if (positionals.length !== 1) throw new UsageError('accounts resume --app takes no account id');
      await stdout.line((await ledger.resumeApp()) ? 'app resumed: every account publishes again' : 'the app was not paused');
      return 0;
    }
    if (positionals[0] === 'resume') {
      if (positionals.length !== 2) throw new UsageError('accounts resume needs one <id> (or --app)');
      const resumed = await ledger.resumeAccount(positionals[1]!);
      await stdout.line(resumed ? `account ${positionals[1]} resumed` : `account ${positionals[1]} was not paused`);
      return 0;
    }
    if (positionals.length > 0) throw new UsageError(`unknown accounts subcommand "${positionals[0]}"`);
    const ids = [...(await (await app.credentials()).ids())];
    const status = await ledger.accountStatus(ids);
    // The app's state first: when X refused the app or its cap is reached, no account publishes.
    const appState = await ledger.appStatus();
    if (appState.paused || appState.blockedUntil) {
      const { paused, blockedUntil } = appState;
      const row = {
        app: true,
        state: paused ? 'paused' : 'rate-limited',
        ...(paused && { reason: paused }),
        ...(blockedUntil && { until: new Date(blockedUntil).toISOString() }),
      };
      if (values.json) await stdout.line(JSON.stringify(row));
      else await stdout.line(`APP ${row.state.toUpperCase()}: ${row.reason ?? `every account waits until ${row.until}`}\n`);
    }
    const rows = ids.map((id) => accountView(id, status.get(id)));
    if (values.json) for (const r of rows) await stdout.line(JSON.stringify(r));
    else
      await stdout.line(
        renderTable(
          ['ACCOUNT', 'STATE', 'DETAIL'],
          rows.map((r) => [r.id, r.state, r.reason ?? r.until ?? '']),
        ),
      );
    return 0;
  });
}

async function cmdReconcile(config: Config, args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { once: { type: 'boolean' }, json: { type: 'boolean' } } });
  if (!values.once) throw new UsageError('reconcile runs one pass: use `xactly reconcile --once` (the worker runs it every XACTLY_RECONCILE_INTERVAL_MS)');
  const logger = createLogger({ level: config.logLevel === 'info' ? 'warn' : config.logLevel, format: config.logFormat });
  return withApp(
    config,
    async (app) => {
      await app.credentials(); // a missing accounts file fails before any pass
      const report = await reconcileOnce(await app.reconcileDeps());
      if (values.json) await stdout.line(JSON.stringify(report));
      else if (!report.ran) await stdout.line('another reconciliation pass is running; nothing done');
      else {
        const o = report.outcomes;
        await stdout.line(
          `examined ${report.examined} key(s) in ${report.durationMs} ms with ${report.lookups} lookup(s) over ${report.accounts} account(s): ` +
            `sent ${o.sent}, released ${o.released}, expired ${o.expired}, unresolved ${o.unresolved}, cancelled ${o.cancelled}, deferred ${o.deferred}, requeued ${o.requeued}`,
        );
      }
      return 0;
    },
    logger,
  );
}

async function cmdWorker(config: Config): Promise<number> {
  const logger = createLogger({ level: config.logLevel, format: config.logFormat });
  // The handlers come first: a SIGTERM while the worker starts (its queue
  // workers may already take jobs) is a stop once started, never a kill.
  const started: { proc?: WorkerProcess } = {};
  let signals = 0;
  let done: (code: number) => void = () => {};
  const finished = new Promise<number>((resolve) => (done = resolve));
  const stop = (p: WorkerProcess) =>
    p.stop().then(
      () => done(0),
      (err: unknown) => {
        logger.error({ err, event: 'worker-stop-failed' }, 'stopping failed; exiting');
        done(1);
      },
    );
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      logger.warn({ sig }, 'second signal: exiting now; claims in flight are left to reconciliation');
      process.exit(1);
    }
    if (started.proc) void stop(started.proc);
    else logger.info({ sig }, 'signal while starting: stopping once started');
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('SIGHUP', () => {
    started.proc?.reloadCredentials().catch((err: unknown) => logger.error({ err, event: 'accounts-reload-failed' }, 'could not reload the accounts file'));
  });
  started.proc = await startWorkerProcess(config, logger);
  if (signals > 0) void stop(started.proc);
  return finished;
}

async function cmdBoard(config: Config, args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { open: { type: 'boolean' } } });
  const { boardCredentials, createBoardServer } = await import('../ops/board.js');
  const { webhookPages } = await import('../ops/board-webhooks.js');
  boardCredentials(config, values.open); // fail before connecting to anything
  const logger = createLogger({ level: config.logLevel, format: config.logFormat });
  return withApp(
    config,
    async ({ redis, ledger }) => {
      // The Accounts page lists the file's ids (only ids reach a page); without a readable file, those with a standing.
      const accounts = config.accountsFile
        ? await fileCredentialStore(config.accountsFile).catch((err: unknown) => {
            logger.warn({ err: (err as Error).message }, 'board: cannot read the accounts file; the Accounts page lists only paused or rate-limited accounts');
            return undefined;
          })
        : undefined;
      const board = createBoardServer({
        redis,
        config,
        logger,
        open: values.open,
        readOnly: config.boardReadOnly,
        metricsOpen: config.boardMetricsOpen,
        ...(accounts && { accountIds: () => accounts.ids() }),
        // The Webhooks page reads what the deliverers recorded in Redis: it needs neither the URLs nor the secret.
        pages: [webhookPages({ redis, keys: ledger.keys })],
      });
      const { url } = await board.listen(config.boardPort, config.boardHost);
      await stdout.line(`board on ${url}/board (ledger ${url}/ledger, webhooks ${url}/ledger/webhooks, metrics ${url}/metrics, health ${url}/healthz)`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await board.close();
      return 0;
    },
    logger,
  );
}

async function cmdFakeX(config: Config, args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { port: { type: 'string' }, host: { type: 'string' }, 'fault-rate': { type: 'string' }, lag: { type: 'string' }, seed: { type: 'string' } },
  });
  const { startFakeX } = await import('../fake-x/index.js');
  const num = (name: string, v: string | undefined, dflt: number) => {
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new UsageError(`--${name} must be a non-negative number (got "${v}")`);
    return n;
  };
  const store = config.accountsFile ? await fileCredentialStore(config.accountsFile) : undefined;
  const accounts = [];
  for (const id of (await store?.ids()) ?? []) {
    const a = (await store!.get(id))!;
    accounts.push({ userId: a.userId, username: a.id, tokens: [a.auth.accessToken] });
  }
  const fake = await startFakeX({
    accounts,
    port: num('port', values.port, 4010),
    // --host is the explicit opt-in to listen beyond loopback (a demo container).
    ...(values.host && { host: values.host, exposeBeyondLoopback: true }),
    faultRate: num('fault-rate', values['fault-rate'], 0),
    timelineLagMs: num('lag', values.lag, 0),
    seed: num('seed', values.seed, 1),
  });
  await stdout.line(`fake X listening on ${fake.url} with ${accounts.length} account(s); set X_API_BASE_URL=${fake.url}`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await fake.close();
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    await stdout.line(USAGE);
    return command ? 0 : 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    if (!HELP[command]) throw new UsageError(`unknown command "${command}"`);
    await stdout.line(HELP[command]);
    return 0;
  }
  const config = loadConfig();
  switch (command) {
    case 'worker':
      return cmdWorker(config);
    case 'enqueue':
      return cmdEnqueue(config, rest);
    case 'posts':
      return cmdPosts(config, rest);
    case 'post':
      return cmdPost(config, rest);
    case 'accounts':
      return cmdAccounts(config, rest);
    case 'cancel':
      return cmdCancel(config, rest);
    case 'edit':
      return cmdEdit(config, rest);
    case 'reschedule':
      return cmdReschedule(config, rest);
    case 'reconcile':
      return cmdReconcile(config, rest);
    case 'board':
      return cmdBoard(config, rest);
    case 'webhooks':
      return cmdWebhooks(config, rest);
    case 'api':
      return cmdApi(config);
    case 'api-token':
      return cmdApiToken(config, rest);
    case 'fake-x':
      return cmdFakeX(config, rest);
    case 'demo': {
      const { values } = parseArgs({ args: rest, options: { 'no-board-wait': { type: 'boolean' } } });
      const { runDemo } = await import('./demo.js');
      return runDemo(config, values['no-board-wait'] ? { keepBoard: false } : {});
    }
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

/** How long a finished command may take to exit by itself before it is made to. */
const EXIT_GRACE_MS = 5_000;

/**
 * Ends with `process.exitCode`, never `process.exit`: the process exits once
 * stdout has reached its reader and every connection is closed. Should a
 * handle still be open (a bug), it exits anyway after a grace, saying so.
 */
async function finish(code: number, message?: string): Promise<void> {
  process.exitCode = code;
  if (message) await stderr.line(message);
  await Promise.all([stdout.flushed(), stderr.flushed()]);
  setTimeout(() => {
    process.stderr.write(`xactly: still running ${EXIT_GRACE_MS / 1000} s after the command finished (a handle was left open); exiting\n`);
    process.exit(code);
  }, EXIT_GRACE_MS).unref();
}

main(process.argv.slice(2)).then(
  (code) => finish(code),
  (err: unknown) => {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      return finish(2, `xactly: ${(err as Error).message}\n\n${USAGE}`);
    }
    if (err instanceof ConfigError || err instanceof StartupError || err instanceof CredentialsError) {
      return finish(1, `xactly: ${err.message}`);
    }
    return finish(1, `xactly: unexpected error: ${(err as Error)?.stack ?? String(err)}`);
  },
);
