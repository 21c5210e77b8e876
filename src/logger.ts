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

/** What a line of everyAtMost stands for: itself alone, or `repeats` held ones, the last at `lastAt`. */
export interface Repeats {
  repeats: number;
  /**
   * When the last one it stands for happened, in epoch ms as the line's own `time` (a summary can
   * go out after the outage ended); on a line that stands for itself, its own moment.
   */
  lastAt: number;
}

/**
 * A log line that would repeat for as long as a dependency is down (one per sign-in attempt, one
 * per readiness probe: hundreds in a 12 s Redis pause). The first goes out at once with `repeats`
 * 0; those within `everyMs` after it are held, and when that time is up one line goes out for
 * them, the last one's, with `repeats` saying how many it stands for and `lastAt` when the last
 * happened (the summary of an outage that ended meanwhile comes after the recovery's lines).
 * Nothing held is carried into a later outage.
 */
export function everyAtMost<A extends unknown[]>(
  everyMs: number,
  write: (repeats: Repeats, ...args: A) => void,
): (...args: A) => void {
  let last = Number.NEGATIVE_INFINITY;
  let held = 0;
  let heldArgs: A | undefined;
  let heldAt = 0;
  let timer: NodeJS.Timeout | undefined;
  const release = () => {
    timer = undefined;
    const [repeats, args] = [held, heldArgs!];
    held = 0;
    heldArgs = undefined;
    last = performance.now();
    write({ repeats, lastAt: heldAt }, ...args);
  };
  return (...args) => {
    const now = performance.now();
    if (timer === undefined && now - last >= everyMs) {
      last = now;
      write({ repeats: 0, lastAt: Date.now() }, ...args);
      return;
    }
    held++;
    heldArgs = args;
    heldAt = Date.now();
    if (timer === undefined) {
      timer = setTimeout(release, Math.max(0, last + everyMs - now));
      timer.unref();
    }
  };
}
