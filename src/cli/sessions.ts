/**
 * @module cli/sessions
 * `warden sessions list | revoke | cleanup`: the console's session actions for scripts and
 * for a shell on the server. Revocations and cleanup go through SessionService, as the
 * console's do, so history rows, exact counts and the audit row are the same.
 */
import type { Logger } from 'pino';
import { parseUserAgent } from '../admin/user-agent.js';
import { reasonOf } from '../errors.js';
import type { AuditEntry } from '../events/audit.js';
import { openRuntime, type Runtime } from '../runtime.js';
import {
  type BulkRevokeReport,
  type RevokeStatus,
  revocationDetails,
  revocationOutcome,
} from '../sessions/session-service.js';
import { expiresAt, type SessionRecord, statusOf } from '../sessions/session-store.js';
import { normalizeEmail } from '../users/email.js';
import {
  CLI_ACTOR,
  type CliContext,
  CliError,
  EXIT_FAILURE,
  EXIT_OK,
  intFlag,
  parseFlags,
  UsageError,
} from './command.js';
import { commandLogger } from './logger.js';
import { sessionsElsewhere } from './store-check.js';

const COMMAND = 'warden sessions';
const DEFAULT_LIST_LIMIT = 50;
const MAX_LIST_LIMIT = 10_000;

export const HELP = `Usage: ${COMMAND} <list|revoke|cleanup> [options]

  list      list sessions, newest first
  revoke    end sessions by id, or every session of one user
  cleanup   remove expired sessions

Run "${COMMAND} <subcommand> --help" for its options.
`;

const LIST_HELP = `Usage: ${COMMAND} list [--email TEXT] [--status S] [--limit N] [--json]

Lists sessions, newest first, with their user, status, times, address and browser.

Options:
  --email TEXT   only users whose email contains TEXT (case-insensitive)
  --status S     active (default), expired or all
  --limit N      at most N sessions (default ${DEFAULT_LIST_LIMIT}, at most ${MAX_LIST_LIMIT})
  --json         one JSON object: { total, skipped, items: [...] }, times in ISO 8601
  -h, --help     show this help
`;

const REVOKE_HELP = `Usage: ${COMMAND} revoke <session-id>... [--json]
       ${COMMAND} revoke --user-email EMAIL [--json]

Ends sessions at once: by id (the 64-digit digest the console shows), or every session
of the user with exactly this email. Prints how many were revoked, already ended, not
found, not session ids, or failed; exits 1 if any failed or was not a session id.
Running it again is safe. Each run is written to the audit log (actor "cli").

Options:
  --user-email EMAIL   revoke every session of this user
  --json               print { counts, results } instead of text
  -h, --help           show this help
`;

const CLEANUP_HELP = `Usage: ${COMMAND} cleanup [--json]

Removes every expired session, records each in the session history, and prints how
many were removed; entries no listing can read go too, as the console's cleanup removes
them. Safe to run at any time. Written to the audit log (actor "cli").

Options:
  --json       print { removed, unreadable } instead of text
  -h, --help   show this help
`;

const LABELS: Record<RevokeStatus, string> = {
  revoked: 'revoked',
  already_ended: 'already ended',
  not_found: 'not found',
  invalid: 'not a session id',
  kept_own: 'kept',
  failed: 'failed',
};

/** Runs `warden sessions <subcommand>`. */
export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'list') return list(rest, ctx);
  if (sub === 'revoke') return revoke(rest, ctx);
  if (sub === 'cleanup') return cleanup(rest, ctx);
  if (sub === '--help' || sub === '-h' || sub === 'help') {
    ctx.out(HELP);
    return EXIT_OK;
  }
  if (sub === undefined) throw new UsageError(COMMAND, 'missing subcommand');
  const what = sub.startsWith('-') ? 'option' : 'subcommand';
  throw new UsageError(COMMAND, `unknown ${what} '${sub}'`);
}

async function list(argv: string[], ctx: CliContext): Promise<number> {
  const command = `${COMMAND} list`;
  const { values } = parseFlags(command, argv, {
    email: { type: 'string' },
    status: { type: 'string' },
    limit: { type: 'string' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    ctx.out(LIST_HELP);
    return EXIT_OK;
  }
  const status = values.status ?? 'active';
  if (status !== 'active' && status !== 'expired' && status !== 'all') {
    throw new UsageError(command, `--status "${status}" is not active, expired or all`);
  }
  const limit = intFlag(command, 'limit', values.limit, {
    min: 1,
    max: MAX_LIST_LIMIT,
    fallback: DEFAULT_LIST_LIMIT,
  });
  const email = values.email === undefined ? undefined : normalizeEmail(values.email);

  return withRuntime(ctx, async (runtime) => {
    const now = runtime.clock();
    const page = await runtime.store.list({
      user: email ? { email } : undefined,
      status,
      now,
      offset: 0,
      limit,
    });
    const owners = await runtime.userRepo.findMany(page.items.map((s) => s.userId));
    const rows = page.items.map((s) => ({ session: s, email: owners.get(s.userId)?.email }));

    if (values.json) {
      const items = rows.map((r) => sessionJson(r.session, r.email, now));
      ctx.out(`${JSON.stringify({ total: page.total, skipped: page.skipped, items })}\n`);
      return EXIT_OK;
    }
    if (rows.length > 0) ctx.out(sessionTable(rows, now));
    const shown = `${page.items.length} of ${page.total} ${status === 'all' ? '' : `${status} `}`;
    ctx.out(`${shown}session${page.total === 1 ? '' : 's'}\n`);
    if (page.skipped > 0) ctx.out(`${page.skipped} unreadable entries were left out\n`);
    return EXIT_OK;
  });
}

async function revoke(argv: string[], ctx: CliContext): Promise<number> {
  const command = `${COMMAND} revoke`;
  const { values, positionals } = parseFlags(
    command,
    argv,
    {
      'user-email': { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    true,
  );
  if (values.help) {
    ctx.out(REVOKE_HELP);
    return EXIT_OK;
  }
  const userEmail = values['user-email'];
  if (userEmail !== undefined && positionals.length > 0) {
    throw new UsageError(command, 'give session ids or --user-email, not both');
  }
  if (userEmail === undefined && positionals.length === 0) {
    throw new UsageError(command, 'give at least one session id, or --user-email');
  }

  return withRuntime(ctx, async (runtime, logger) => {
    const started = performance.now();
    let action: string;
    let target: string | null = null;
    let report: BulkRevokeReport;
    if (userEmail !== undefined) {
      const user = await runtime.userRepo.findByEmail(userEmail);
      if (!user) throw new CliError(`no user has the email ${userEmail}`);
      action = 'sessions.revoke_user';
      target = `user:${user.id}`;
      report = await audited(runtime, logger, { action, target }, () =>
        runtime.sessions.revokeUser(user.id, { actorId: null }),
      );
    } else {
      action = positionals.length === 1 ? 'sessions.revoke' : 'sessions.bulk_revoke';
      target = positionals.length === 1 ? positionals[0] : null;
      report = await audited(runtime, logger, { action, target }, () =>
        runtime.sessions.revokeIds(positionals, { actorId: null }),
      );
    }

    await runtime.audit.write(
      CLI_ACTOR,
      {
        action,
        target,
        outcome: revocationOutcome(report.counts),
        details: revocationDetails(report),
        durationMs: Math.round(performance.now() - started),
      },
      logger,
    );

    if (values.json) {
      ctx.out(`${JSON.stringify({ counts: report.counts, results: report.results })}\n`);
    } else {
      ctx.out(`${describeCounts(report)}\n`);
      // Ids typed by hand are each answered; of a user's sessions only the failed ones are,
      // as the counts tell the rest (a line per expired session was a page of noise).
      const listed = (status: string) =>
        userEmail === undefined ? status !== 'revoked' : status === 'failed';
      for (const r of report.results) {
        if (!listed(r.status)) continue;
        const why = r.reason && r.reason !== LABELS[r.status] ? ` (${r.reason})` : '';
        ctx.out(`  ${r.id}  ${LABELS[r.status]}${why}\n`);
      }
    }
    return report.counts.failed + report.counts.invalid > 0 ? EXIT_FAILURE : EXIT_OK;
  });
}

async function cleanup(argv: string[], ctx: CliContext): Promise<number> {
  const command = `${COMMAND} cleanup`;
  const { values } = parseFlags(command, argv, {
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    ctx.out(CLEANUP_HELP);
    return EXIT_OK;
  }

  return withRuntime(ctx, async (runtime, logger) => {
    const started = performance.now();
    const entry = { action: 'sessions.cleanup_expired', target: null };
    const { removed, unreadable } = await audited(runtime, logger, entry, async () => ({
      removed: await runtime.sessions.cleanupExpired(runtime.clock(), null),
      unreadable: await runtime.sessions.cleanupUnreadable(),
    }));
    await runtime.audit.write(
      CLI_ACTOR,
      {
        ...entry,
        outcome: 'success',
        details: { counts: { removed, unreadable } },
        durationMs: Math.round(performance.now() - started),
      },
      logger,
    );

    if (values.json) ctx.out(`${JSON.stringify({ removed, unreadable })}\n`);
    else {
      const also =
        unreadable > 0
          ? `, and ${unreadable} unreadable entr${unreadable === 1 ? 'y' : 'ies'}`
          : '';
      ctx.out(`removed ${removed} expired session${removed === 1 ? '' : 's'}${also}\n`);
    }
    return EXIT_OK;
  });
}

async function withRuntime(
  ctx: CliContext,
  body: (runtime: Runtime, logger: Logger) => Promise<number>,
): Promise<number> {
  const config = ctx.config();
  const logger = commandLogger(config);
  const runtime = await openRuntime(config, logger);
  try {
    const elsewhere = await sessionsElsewhere(runtime);
    if (elsewhere) ctx.err(elsewhere);
    return await body(runtime, logger);
  } finally {
    await runtime.close();
  }
}

/**
 * Runs an action; if it throws (the store is down), writes a failure row before passing the
 * error on, so the audit log shows the attempt too.
 */
async function audited<T>(
  runtime: Runtime,
  logger: Logger,
  entry: Pick<AuditEntry, 'action' | 'target'>,
  action: () => Promise<T>,
): Promise<T> {
  try {
    return await action();
  } catch (err) {
    const error = reasonOf(err);
    await runtime.audit
      .write(CLI_ACTOR, { ...entry, outcome: 'failure', details: { error } }, logger)
      .catch((auditErr: unknown) => {
        logger.error({ event: 'audit_write_failed', err: auditErr }, 'audit row not written');
      });
    throw err;
  }
}

/** "3 revoked, 1 already ended, 1 not found"; always names the revoked count. */
export function describeCounts(report: BulkRevokeReport): string {
  return (Object.keys(LABELS) as RevokeStatus[])
    .filter((k) => k === 'revoked' || report.counts[k] > 0)
    .map((k) => `${report.counts[k]} ${LABELS[k]}`)
    .join(', ');
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function sessionJson(s: SessionRecord, email: string | undefined, now: number) {
  return {
    id: s.id,
    userId: s.userId,
    email: email ?? null,
    status: statusOf(s, now),
    createdAt: iso(s.createdAt),
    lastSeenAt: iso(s.lastSeenAt),
    idleExpiresAt: iso(s.idleExpiresAt),
    absoluteExpiresAt: iso(s.absoluteExpiresAt),
    expiresAt: iso(expiresAt(s)),
    ip: s.ip,
    userAgent: s.userAgent,
  };
}

/** Aligned columns; times in UTC to the minute. */
function sessionTable(rows: { session: SessionRecord; email?: string }[], now: number): string {
  const minute = (ms: number) => `${iso(ms).slice(0, 16).replace('T', ' ')}Z`;
  const table = [
    ['ID', 'STATUS', 'USER', 'CREATED', 'LAST SEEN', 'IP', 'CLIENT'],
    ...rows.map(({ session: s, email }) => {
      const client = parseUserAgent(s.userAgent);
      return [
        s.id,
        statusOf(s, now),
        email ?? `(user ${s.userId})`,
        minute(s.createdAt),
        minute(s.lastSeenAt),
        s.ip,
        `${client.browser} on ${client.os}`,
      ];
    }),
  ];
  const widths = table[0].map((_, c) => Math.max(...table.map((row) => row[c].length)));
  return table
    .map((row) =>
      row
        .map((cell, c) => cell.padEnd(widths[c]))
        .join('  ')
        .trimEnd(),
    )
    .map((line) => `${line}\n`)
    .join('');
}
