/**
 * @module cli/create-superuser
 * `warden create-superuser --email E`: the way in for the first superuser, and the way back
 * in for one who lost their password. An existing account is promoted, approved and given
 * the new password, and its sessions end (they were signed in with the old one).
 */
import type { UserRow } from '../db/schema.js';
import { openRuntime, type Runtime } from '../runtime.js';
import { emailShapeProblem, lookAlikeProblem } from '../users/email.js';
import { hashPassword, passwordProblem } from '../users/passwords.js';
import {
  CLI_ACTOR,
  type CliContext,
  CliError,
  EXIT_OK,
  parseFlags,
  UsageError,
} from './command.js';
import { commandLogger } from './logger.js';
import { askHidden } from './prompt.js';
import { sessionsElsewhere } from './store-check.js';

const COMMAND = 'warden create-superuser';

export const HELP = `Usage: ${COMMAND} --email EMAIL

Creates an approved superuser with this email, who can then open the console.
If the email already has an account, promotes it to approved superuser, sets the
new password and ends its sessions.

The password comes from WARDEN_PASSWORD when set; otherwise it is asked for twice
on the terminal, without echo. At least 10 characters, and not one of the common
passwords Warden ships a list of.

Options:
  --email EMAIL   the superuser's email (required)
  -h, --help      show this help
`;

/** Runs `warden create-superuser`. */
export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const { values } = parseFlags(COMMAND, argv, {
    email: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    ctx.out(HELP);
    return EXIT_OK;
  }
  const email = values.email?.trim();
  if (!email) throw new UsageError(COMMAND, '--email is required');
  const emailIssue = emailShapeProblem(email);
  if (emailIssue) throw new UsageError(COMMAND, `--email ${emailIssue}`);

  const config = ctx.config();
  const password = await readPassword(ctx);
  const passwordIssue = passwordProblem(password);
  if (passwordIssue) throw new CliError(`password ${passwordIssue}`);

  const logger = commandLogger(config);
  const runtime = await openRuntime(config, logger);
  try {
    const elsewhere = await sessionsElsewhere(runtime);
    if (elsewhere) ctx.err(elsewhere);
    const existing = await runtime.userRepo.findByEmail(email);
    // An account made before the look-alike rules can still be promoted or given a password.
    const lookAlike = existing ? null : lookAlikeProblem(email);
    if (lookAlike) throw new UsageError(COMMAND, `--email ${lookAlike}`);
    if (existing) {
      const ended = await promote(runtime, existing, password);
      await runtime.audit.write(
        CLI_ACTOR,
        {
          action: 'users.promote_superuser',
          target: `user:${existing.id}`,
          outcome: 'success',
          details: { previous: { role: existing.role, status: existing.status }, ended },
        },
        logger,
      );
      const was = existing.role === 'superuser' && existing.status === 'approved';
      const did = was ? 'set the password of superuser' : 'promoted to approved superuser';
      const sessions = `${ended} session${ended === 1 ? '' : 's'}`;
      ctx.out(`${did} ${existing.email} (id ${existing.id}); ended ${sessions}\n`);
      return EXIT_OK;
    }

    const user = await runtime.users.register({
      email,
      password,
      role: 'superuser',
      status: 'approved',
    });
    await runtime.audit.write(
      CLI_ACTOR,
      { action: 'users.create_superuser', target: `user:${user.id}`, outcome: 'success' },
      logger,
    );
    ctx.out(`created superuser ${user.email} (id ${user.id})\n`);
    return EXIT_OK;
  } finally {
    await runtime.close();
  }
}

/** WARDEN_PASSWORD, or two matching answers typed on the terminal. */
async function readPassword(ctx: CliContext): Promise<string> {
  const fromEnv = ctx.env.WARDEN_PASSWORD;
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  if (!process.stdin.isTTY) {
    throw new UsageError(
      COMMAND,
      'no password: set WARDEN_PASSWORD, or run it in a terminal to be asked',
    );
  }

  const [first, second] = await askHidden([
    'Password for the new superuser: ',
    'The same password again: ',
  ]);
  if (first !== second) throw new CliError('the two passwords differ; nothing was changed');
  return first;
}

/** Sets the password, role and status, then ends the user's sessions; returns how many. */
async function promote(runtime: Runtime, user: UserRow, password: string): Promise<number> {
  const repo = runtime.userRepo;
  const now = runtime.clock();
  await repo.setPassword(user.id, await hashPassword(password), now);
  if (user.role !== 'superuser') await repo.setRole(user.id, 'superuser', now);
  if (user.status !== 'approved') await repo.setStatus(user.id, 'approved', null, now);

  const report = await runtime.sessions.revokeUser(user.id, {
    actorId: null,
    reason: 'password_changed',
  });
  if (report.counts.failed > 0) {
    throw new CliError(
      `account updated, but ${report.counts.failed} of its sessions could not be ended; ` +
        'run the command again',
    );
  }
  return report.counts.revoked;
}
