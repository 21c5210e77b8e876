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
    { level: config.logLevel, redact: { paths: LOG_REDACT, censor: '[redacted]' } },
    stream ?? process.stdout,
  );
}
