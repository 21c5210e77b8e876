/**
 * @module main
 * The `warden` command line. Each command lives in `cli/` and is loaded only when named,
 * so `warden migrate` never loads the web server, and a command's `--help` needs no config.
 *
 * Exit codes: 0 done, 1 failed (bad config, unreachable store, partial result), 2 misuse.
 */
import {
  type CliContext,
  CliError,
  EXIT_FAILURE,
  EXIT_OK,
  EXIT_USAGE,
  type RunCommand,
  UsageError,
} from './cli/command.js';
import { type Config, ConfigError, loadConfig } from './config.js';
import { DatabaseOpenError } from './db/migrations.js';
import { reasonOf, WardenError } from './errors.js';
import { RedisUnavailableError } from './runtime.js';

interface CommandEntry {
  summary: string;
  load(): Promise<{ run: RunCommand }>;
}

const COMMANDS: Record<string, CommandEntry> = {
  serve: {
    summary: 'Run the HTTP server: sign-in, the admin console and the JSON API',
    load: () => import('./cli/serve.js'),
  },
  migrate: {
    summary: 'Bring the database schema up to date',
    load: () => import('./cli/migrate.js'),
  },
  'create-superuser': {
    summary: 'Create (or promote) a superuser, who may open the console',
    load: () => import('./cli/create-superuser.js'),
  },
  'seed-demo': {
    summary: 'Fill the database and the session store with demo users and sessions',
    load: () => import('./cli/seed-demo.js'),
  },
  sessions: {
    summary: 'List, revoke and clean up sessions',
    load: () => import('./cli/sessions.js'),
  },
  audit: {
    summary: "Verify the audit log's hash chain",
    load: () => import('./cli/audit.js'),
  },
};

const HELP = `Usage: warden <command> [options]

Commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(18)}${c.summary}`)
  .join('\n')}

Run "warden <command> --help" for a command's options. Settings come from the
environment (DATABASE_URL, REDIS_URL, HOST, PORT, IDLE_TIMEOUT, LOG_LEVEL, ...).
`;

/** Runs one command line and returns the exit code; never throws. */
async function main(argv: string[], ctx: CliContext): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--help' || name === '-h' || name === 'help') {
    ctx.out(HELP);
    return EXIT_OK;
  }
  if (name === undefined) {
    ctx.err('warden: missing command (see warden --help)\n');
    return EXIT_USAGE;
  }
  const entry = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!entry) {
    const problem = name.startsWith('-') ? `unknown option '${name}'` : `unknown command '${name}'`;
    ctx.err(`warden: ${problem} (see warden --help)\n`);
    return EXIT_USAGE;
  }

  try {
    const { run } = await entry.load();
    return await run(rest, ctx);
  } catch (err) {
    return report(name, err, ctx);
  }
}

/** One line for an expected failure; the stack too for anything unexpected. */
function report(command: string, err: unknown, ctx: CliContext): number {
  if (err instanceof UsageError) {
    ctx.err(`${err.message}\n`);
    return EXIT_USAGE;
  }
  if (err instanceof ConfigError) {
    ctx.err(`warden: ${err.message}\n`);
    return EXIT_FAILURE;
  }
  if (err instanceof DatabaseOpenError) {
    ctx.err(`warden ${command}: DATABASE_URL: cannot open the database: ${err.message}\n`);
    return EXIT_FAILURE;
  }
  if (
    err instanceof CliError ||
    err instanceof WardenError ||
    err instanceof RedisUnavailableError
  ) {
    ctx.err(`warden ${command}: ${err.message}\n`);
    return EXIT_FAILURE;
  }
  const message = reasonOf(err);
  ctx.err(`warden ${command}: ${message}\n`);
  if (err instanceof Error && err.stack) ctx.err(`${err.stack}\n`);
  return EXIT_FAILURE;
}

/** The context of the real process: its environment and its two output streams. */
function processContext(): CliContext {
  let config: Config | undefined;
  return {
    env: process.env,
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text),
    config() {
      config ??= loadConfig(process.env);
      return config;
    },
  };
}

/** Resolves once everything written so far has been handed to the OS. */
function flushed(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => stream.write('', () => resolve()));
}

const code = await main(process.argv.slice(2), processContext());
// Every command closes what it opened, but node-redis may still sleep out a reconnect
// back-off it cannot cancel: once the output is out, leave rather than wait for it.
await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
process.exit(code);
