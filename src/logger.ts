/**
 * @module logger
 * The one pino logger: JSON lines, and redaction by construction of every place a
 * cookie, token, CSRF token or password could appear.
 */
import pino, { type Logger } from 'pino';
import type { Config } from './config.js';

export const LOG_REDACT = [
  'req.headers.cookie',
  'req.headers.authorization',
  'req.headers["x-csrf-token"]',
  'res.headers["set-cookie"]',
  '*.token',
  '*.password',
  'token',
  'password',
];

export function createLogger(
  config: Pick<Config, 'logLevel'>,
  stream?: NodeJS.WritableStream,
): Logger {
  return pino(
    {
      level: config.logLevel,
      redact: { paths: LOG_REDACT, censor: '[redacted]' },
      serializers: { err: serializeError },
    },
    stream ?? process.stdout,
  );
}

/**
 * An error as pino serializes it, but with each cause's message in `message` once. Pino appends
 * every cause's message to the error's own, and Warden's wrapping errors (store or database
 * unavailable) already say their cause's: the line read "…: no answer in 10000 ms: no answer in
 * 10000 ms".
 */
export function serializeError(err: unknown): unknown {
  if (!(err instanceof Error)) return pino.stdSerializers.err(err as Error);
  const serialized = pino.stdSerializers.err(err);
  let message = err.message;
  const seen = new Set<unknown>([err]);
  for (let cause = err.cause; cause instanceof Error && !seen.has(cause); cause = cause.cause) {
    seen.add(cause);
    if (cause.message && !message.includes(cause.message)) message += `: ${cause.message}`;
  }
  serialized.message = message;
  return serialized;
}
