import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/**
 * Every field that can hold a credential, wherever it sits in a log object.
 * Redaction is configuration, not something each call site must remember.
 */
export const REDACT_PATHS = [
  'auth',
  '*.auth',
  '*.*.auth',
  'appKey',
  'appSecret',
  'accessToken',
  'accessSecret',
  'refreshToken',
  'password',
  '*.appKey',
  '*.appSecret',
  '*.accessToken',
  '*.accessSecret',
  '*.refreshToken',
  '*.password',
  'authorization',
  '*.authorization',
  'headers.authorization',
  '*.headers.authorization',
  'boardPassword',
  '*.boardPassword',
];

export function createLogger(opts: { level?: string; name?: string; format?: 'json' | 'pretty' } = {}, destination?: DestinationStream): Logger {
  // pino-pretty is a dev dependency: for humans at a terminal, never in production images.
  if (opts.format === 'pretty' && !destination) destination = pino.transport({ target: 'pino-pretty', options: { colorize: true } }) as DestinationStream;
  return pino(
    {
      name: opts.name ?? 'xactly',
      level: opts.level ?? 'info',
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      // Error objects from HTTP clients carry the signed request; log only
      // what we chose to extract, never `err` wholesale.
      serializers: { err: (e: unknown) => (e instanceof Error ? { type: e.name, message: e.message } : e) },
    },
    destination,
  );
}

export type Fields = Record<string, unknown>;
export interface BoundLogger {
  debug(obj: Fields, msg: string): void;
  info(obj: Fields, msg: string): void;
  warn(obj: Fields, msg: string): void;
  error(obj: Fields, msg: string): void;
  with(more: Fields): BoundLogger;
}

/**
 * A logger with fixed fields, like pino's child(), but without building a
 * child per job: on the hot path most of these calls are below the level.
 */
export function bind(logger: Logger, fields: Fields): BoundLogger {
  const at = (level: 'debug' | 'info' | 'warn' | 'error') => (obj: Fields, msg: string) => {
    if (logger.isLevelEnabled(level)) logger[level]({ ...fields, ...obj }, msg);
  };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), with: (more) => bind(logger, { ...fields, ...more }) };
}
