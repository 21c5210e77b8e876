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
  if (!isErrorLike(err)) return pino.stdSerializers.err(err as Error);
  const serialized = pino.stdSerializers.err(err as Error);
  let message = err.message;
  const seen = new Set<unknown>([err]);
  for (let cause = err.cause; isErrorLike(cause) && !seen.has(cause); cause = cause.cause) {
    seen.add(cause);
    // Said already only where the wrapper ends with it ("…during take: <cause>").
    if (cause.message && !message.endsWith(cause.message)) message += `: ${cause.message}`;
  }
  serialized.message = message;
  return serialized;
}

/** What pino serializes as an error: an Error, or an object with a string message. */
function isErrorLike(value: unknown): value is { message: string; cause?: unknown } {
  return (
    value instanceof Error ||
    (typeof value === 'object' &&
      value !== null &&
      typeof (value as { message?: unknown }).message === 'string')
  );
}

/** How often a line that repeats while a dependency is down goes out (see everyAtMost). */
export const LOG_REPEAT_MS = 10_000;

/**
 * A log line that would repeat for as long as a dependency is down (one per sign-in attempt, one
 * per readiness probe: hundreds in a 12 s Redis pause): the first goes out, those within
 * `everyMs` after it are counted, and the next line that goes out says how many it stands for
 * (`repeats`).
 */
export function everyAtMost<A extends unknown[]>(
  everyMs: number,
  write: (repeats: number, ...args: A) => void,
): (...args: A) => void {
  let last = Number.NEGATIVE_INFINITY;
  let held = 0;
  return (...args) => {
    const now = performance.now();
    if (now - last < everyMs) {
      held++;
      return;
    }
    last = now;
    const repeats = held;
    held = 0;
    write(repeats, ...args);
  };
}
