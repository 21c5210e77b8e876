/**
 * @module cli/command
 * What every `warden` command receives and how it fails. Commands write through the
 * context rather than to `process` directly, so the exit code and the stream each line
 * goes to are decided in one place (`main.ts`).
 */
import { type ParseArgsConfig, parseArgs } from 'node:util';
import type { Config } from '../config.js';
import type { Actor } from '../events/audit.js';

/** Exit codes: 0 done, 1 failed (config, store, database, partial result), 2 misuse. */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** Who the audit log names for every action taken from the command line. */
export const CLI_ACTOR: Actor = Object.freeze({ id: null, email: 'cli', ip: null });

export interface CliContext {
  /** The process environment; only `main.ts` reads `process.env` to fill it. */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Results, for people and scripts (stdout). */
  out(text: string): void;
  /** Progress, prompts and warnings (stderr). */
  err(text: string): void;
  /** The validated config; throws ConfigError naming the first bad variable. */
  config(): Config;
}

/** A command's entry point: the arguments after its name, and the exit code to end with. */
export type RunCommand = (argv: string[], ctx: CliContext) => Promise<number>;

/** Misuse of the command line (unknown flag, missing value): exit 2, with a hint. */
export class UsageError extends Error {
  override name = 'UsageError';
  constructor(
    readonly command: string,
    problem: string,
  ) {
    super(`${command}: ${problem} (see ${command} --help)`);
  }
}

/** An expected failure with a message that says it all: one line, exit 1. */
export class CliError extends Error {
  override name = 'CliError';
}

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * node:util parseArgs in strict mode, with its errors turned into one-line UsageErrors.
 * @example parseFlags('warden migrate', argv, { help: { type: 'boolean', short: 'h' } })
 */
export function parseFlags<O extends Options>(
  command: string,
  argv: string[],
  options: O,
  allowPositionals = false,
) {
  try {
    return parseArgs({ args: argv, options, allowPositionals, strict: true });
  } catch (err) {
    const e = err as { code?: string; message?: string };
    if (!e.code?.startsWith('ERR_PARSE_ARGS_')) throw err;
    // Node's messages run on with advice about `--`; the first sentence is the problem.
    const first = (e.message ?? 'invalid arguments').split('. ')[0];
    throw new UsageError(command, first.charAt(0).toLowerCase() + first.slice(1));
  }
}

/** A whole number flag within bounds, or a UsageError naming the flag. */
export function intFlag(
  command: string,
  flag: string,
  raw: string | undefined,
  bounds: { min: number; max: number; fallback: number },
): number {
  if (raw === undefined) return bounds.fallback;
  if (!/^\d+$/.test(raw)) throw new UsageError(command, `--${flag} "${raw}" is not a whole number`);
  const value = Number(raw);
  if (value < bounds.min || value > bounds.max) {
    throw new UsageError(command, `--${flag} must be between ${bounds.min} and ${bounds.max}`);
  }
  return value;
}
