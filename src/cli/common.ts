import { open } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { type App, openApp } from '../app.js';
import type { Config } from '../config.js';
import { createLogger, type Logger } from '../log.js';

/** Bad usage: exit 2 with the usage text. */
export class UsageError extends Error {
  readonly code = 'USAGE';
}

/** A command's parts (see src/app.ts), closed when it is done, whatever happens. */
export async function withApp<T>(
  config: Config,
  run: (app: App) => Promise<T>,
  logger: Logger = createLogger({ level: 'warn', format: config.logFormat }),
): Promise<T> {
  const app = await openApp(config, logger);
  try {
    return await run(app);
  } finally {
    await app.close();
  }
}

/**
 * The lines of FILE or stdin, read as they are consumed (a 1 GB schedule
 * never sits in memory). The line reader starts only on the first read: one
 * made earlier emits lines while nobody listens, and they are lost.
 */
export async function inputLines(file: string | undefined): Promise<AsyncIterable<string>> {
  const input =
    !file || file === '-'
      ? process.stdin
      : (
          await open(file).catch((err: NodeJS.ErrnoException) => {
            throw new UsageError(`cannot read ${file} (${err.code ?? err.message})`);
          })
        ).createReadStream({ encoding: 'utf8' });
  return (async function* () {
    yield* createInterface({ input, crlfDelay: Infinity });
  })();
}
