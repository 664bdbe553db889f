import { parseArgs } from 'node:util';
import { createApiServer } from '../api/server.js';
import { createToken, fileTokenStore, TokensFileError } from '../api/tokens.js';
import { StartupError } from '../app.js';
import type { Config } from '../config.js';
import { createLogger } from '../log.js';
import { UsageError, withApp } from './common.js';
import { stderr, stdout } from './output.js';

/** `xactly api` (the HTTP API) and `xactly api-token create` (a token for it). */
export const API_HELP: Record<string, string> = {
  api:
    'xactly api\n' +
    '  Serves the HTTP API on API_HOST:API_PORT (default 127.0.0.1:3001): POST/GET /v1/posts, GET/PATCH/DELETE /v1/posts/<slotId>/<postId>,\n' +
    '  POST /v1/accounts/<id>/cancel-queued, GET /v1/events, and its OpenAPI document at /v1/openapi.json.\n' +
    '  Bearer tokens from XACTLY_API_TOKENS_FILE (re-read when it changes), each limited to API_RATE_LIMIT requests per API_RATE_WINDOW_MS.\n' +
    '  With XACTLY_ACCOUNTS_FILE, requests for unknown accounts are refused (SIGHUP re-reads it). Runs until SIGTERM/SIGINT.',
  'api-token':
    'xactly api-token create NAME [--accounts a,b]\n' +
    '  Makes a token, prints it once, and adds its SHA-256 (never the token) under NAME to XACTLY_API_TOKENS_FILE\n' +
    '  (created when missing, written atomically). --accounts limits it to those accounts (403 for the others).\n' +
    '  A running `xactly api` picks it up within a second.',
};

function tokensFileOf(config: Config): string {
  const file = config.api.tokensFile;
  if (!file) throw new StartupError('XACTLY_API_TOKENS_FILE is not set: point it at the tokens file (`xactly api-token create NAME` makes one)');
  return file;
}

export async function cmdApi(config: Config): Promise<number> {
  const tokens = await fileTokenStore(tokensFileOf(config)).catch((err: unknown) => {
    throw err instanceof TokensFileError ? new StartupError(err.message) : err;
  });
  if (tokens.size === 0) throw new StartupError(`${config.api.tokensFile} holds no token: make one with \`xactly api-token create NAME\``);
  const logger = createLogger({ level: config.logLevel, format: config.logFormat });
  return withApp(
    config,
    async (app) => {
      const store = config.accountsFile ? await app.accountsFile() : undefined;
      let known = store ? new Set(await store.ids()) : undefined;
      const producer = app.producer(known ? { knownAccount: (id) => known!.has(id) } : {});
      const server = createApiServer({ producer, redis: app.redis, tokens, logger, limits: config.api, clock: app.clock });
      const { url } = await server.listen(config.api.port, config.api.host);
      await stdout.line(`api on ${url}/v1 (OpenAPI ${url}/v1/openapi.json)`);
      const onHup = () => {
        if (!store) return;
        store
          .reload()
          .then(async () => (known = new Set(await store.ids())))
          .catch((err: unknown) => logger.error({ err, event: 'accounts-reload-failed' }, 'could not reload the accounts file'));
      };
      process.on('SIGHUP', onHup);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      process.off('SIGHUP', onHup);
      await server.close();
      return 0;
    },
    logger,
  );
}

export async function cmdApiToken(config: Config, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: { accounts: { type: 'string' } }, allowPositionals: true });
  if (positionals[0] !== 'create' || positionals.length !== 2) throw new UsageError('usage: xactly api-token create NAME [--accounts a,b]');
  const accounts = values.accounts
    ?.split(',')
    .map((a) => a.trim())
    .filter(Boolean);
  if (values.accounts !== undefined && !accounts?.length) throw new UsageError('--accounts needs at least one account id');
  const file = tokensFileOf(config);
  const token = await createToken(file, positionals[1]!, accounts).catch((err: unknown) => {
    throw err instanceof TokensFileError ? new UsageError(err.message) : err;
  });
  await stdout.line(token);
  await stderr.line(
    `token "${positionals[1]}" added to ${file}${accounts ? ` (accounts: ${accounts.join(', ')})` : ' (all accounts)'}; it is shown only now: keep it somewhere safe`,
  );
  return 0;
}
