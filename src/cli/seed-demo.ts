/**
 * @module cli/seed-demo
 * `warden seed-demo --users N --sessions M`: demo data for trying the console and for
 * benchmarks. Progress goes to stderr, the summary and the demo password to stdout.
 */
import { randomBytes } from 'node:crypto';
import { openRuntime } from '../runtime.js';
import { countNonDemoUsers, type SeedProgress, seedDemo } from '../seed/seed-demo.js';
import { passwordProblem } from '../users/passwords.js';
import {
  CLI_ACTOR,
  type CliContext,
  CliError,
  EXIT_OK,
  intFlag,
  parseFlags,
  UsageError,
} from './command.js';
import { commandLogger } from './logger.js';

const COMMAND = 'warden seed-demo';
const DEFAULT_USERS = 1_000;
const DEFAULT_SESSIONS = 5_000;
const MAX_USERS = 10_000_000;
const MAX_SESSIONS = 100_000_000;
// At most one progress line per this many milliseconds.
const PROGRESS_EVERY_MS = 1_000;

export const HELP = `Usage: ${COMMAND} [--users N] [--sessions M] [--force]

Adds N demo users (default ${DEFAULT_USERS}) with emails like ada.silva12@example.test,
mostly approved users, some admins and superusers, some pending, rejected or disabled;
and M sessions (default ${DEFAULT_SESSIONS}) of the approved ones, live and expired, in the
configured session store, each with its sign-in in the session history.

Every demo user has the same password: WARDEN_DEMO_PASSWORD when set (at least 10
characters), otherwise a generated one, printed at the end.

Demo accounts can sign in, superusers among them. So the command refuses a database
that holds other accounts than demo users and superusers, unless given --force.

On SQLite the sessions are written in one transaction, which holds the database's
write lock until the seed ends: a few tens of thousands go in beside a running server,
but from about 150,000 on, seed with the server stopped, whose writes would otherwise
wait five seconds and then fail.

Options:
  --users N      how many users to add (0 to ${MAX_USERS})
  --sessions M   how many sessions to add (0 to ${MAX_SESSIONS})
  --force        seed even a database with other accounts
  -h, --help     show this help
`;

/** Runs `warden seed-demo`. */
export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const { values } = parseFlags(COMMAND, argv, {
    users: { type: 'string' },
    sessions: { type: 'string' },
    force: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    ctx.out(HELP);
    return EXIT_OK;
  }
  const users = intFlag(COMMAND, 'users', values.users, {
    min: 0,
    max: MAX_USERS,
    fallback: DEFAULT_USERS,
  });
  const sessions = intFlag(COMMAND, 'sessions', values.sessions, {
    min: 0,
    max: MAX_SESSIONS,
    fallback: DEFAULT_SESSIONS,
  });

  // Every session belongs to a demo user of this run: none would be made, and none said why.
  if (users === 0 && sessions > 0) {
    throw new UsageError(
      COMMAND,
      '--sessions needs demo users to own them: give --users 1 or more',
    );
  }

  const config = ctx.config();
  const given = ctx.env.WARDEN_DEMO_PASSWORD;
  // Hex: nothing a shell or a form treats specially, and still 64 bits of chance.
  const password = given || randomBytes(8).toString('hex');
  const problem = passwordProblem(password);
  if (problem) throw new CliError(`WARDEN_DEMO_PASSWORD ${problem}`);

  const logger = commandLogger(config);
  const runtime = await openRuntime(config, logger);
  try {
    const others = await countNonDemoUsers(runtime.database.db);
    if (others > 0 && !values.force) {
      throw new CliError(
        `the database has ${others} account${others === 1 ? '' : 's'} besides demo users and superusers; ` +
          'demo accounts with a known password could sign in beside them ' +
          '(use --force to seed anyway)',
      );
    }

    const started = performance.now();
    const report = await seedDemo(runtime, {
      users,
      sessions,
      password,
      policy: config,
      now: runtime.clock(),
      onProgress: progressPrinter(ctx, started),
    });
    const seconds = ((performance.now() - started) / 1000).toFixed(1);

    await runtime.audit.write(
      CLI_ACTOR,
      {
        action: 'demo.seed',
        outcome: 'success',
        details: { counts: { users: report.users, sessions: report.sessions } },
        durationMs: Math.round(performance.now() - started),
      },
      logger,
    );

    const roles = Object.entries(report.byRole).map(([k, n]) => `${n} ${k}`);
    const statuses = Object.entries(report.byStatus).map(([k, n]) => `${n} ${k}`);
    ctx.out(
      `seeded ${report.users} users (${roles.join(', ')}; ${statuses.join(', ')}) and ` +
        `${report.sessions} ${runtime.store.kind} sessions (${report.expiredSessions} expired) ` +
        `in ${seconds} s\n`,
    );
    if (report.skippedUsers > 0) {
      ctx.out(`${report.skippedUsers} generated emails already existed and were skipped\n`);
    }
    ctx.out(
      given
        ? 'every demo user signs in with the password in WARDEN_DEMO_PASSWORD\n'
        : `every demo user signs in with the password: ${password}\n`,
    );
    return EXIT_OK;
  } finally {
    await runtime.close();
  }
}

/** Prints "users 20000/100000 (20%)" lines to stderr, at most one a second per phase. */
function progressPrinter(ctx: CliContext, started: number) {
  let lastAt = 0;
  let lastPhase = '';
  return (p: SeedProgress) => {
    const at = performance.now();
    const finished = p.done === p.total;
    if (p.phase === lastPhase && !finished && at - lastAt < PROGRESS_EVERY_MS) return;
    lastAt = at;
    lastPhase = p.phase;
    const percent = p.total === 0 ? 100 : Math.floor((p.done / p.total) * 100);
    const seconds = ((at - started) / 1000).toFixed(1);
    ctx.err(`seed-demo: ${p.phase} ${p.done}/${p.total} (${percent}%) ${seconds} s\n`);
  };
}
