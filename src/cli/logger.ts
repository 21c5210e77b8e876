/**
 * @module cli/logger
 * The logger of a CLI process, from the one redacting logger (`src/logger.ts`). `serve`
 * logs to stdout like any server; every other command keeps stdout for its results
 * (`--json` must parse) and logs to stderr.
 */
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { createLogger } from '../logger.js';

// One-shot commands print their own results; at info they would also print a JSON line
// per audit row. Levels more verbose than info (debug, trace) are honoured as asked.
const QUIET_LEVELS = new Set(['info', 'warn']);

/** A logger for `serve`: stdout, at the configured level. */
export function serverLogger(config: Config): Logger {
  return createLogger(config);
}

/** A logger for one-shot commands: stderr, warnings and up unless LOG_LEVEL asks for more. */
export function commandLogger(config: Config): Logger {
  const logLevel = QUIET_LEVELS.has(config.logLevel) ? 'warn' : config.logLevel;
  return createLogger({ logLevel }, process.stderr);
}
