/**
 * @module cli/audit
 * `warden audit verify`: walks the audit log's hash chain and names the first row that
 * breaks it. Needs only the database, so it runs while the session store is down.
 */
import type { Kysely } from 'kysely';
import { openDatabase } from '../db/database.js';
import { migrateToLatest } from '../db/migrations.js';
import { AuditLog } from '../events/audit.js';
import { type CliContext, EXIT_FAILURE, EXIT_OK, parseFlags, UsageError } from './command.js';

const COMMAND = 'warden audit';

export const HELP = `Usage: ${COMMAND} verify [--json]

Checks every row of the audit log against the row before it (a hash chain), oldest
first. Prints "N entries, chain intact" and the head hash when it is; names the first
broken row and exits 1 otherwise. Keep the head hash somewhere else (a ticket,
another log): then dropping the newest rows is detectable too.

Options:
  --json       print the result as one JSON object
  -h, --help   show this help
`;

/** Runs `warden audit <subcommand>`. */
export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === '--help' || sub === '-h' || sub === 'help') {
    ctx.out(HELP);
    return EXIT_OK;
  }
  if (sub === undefined) throw new UsageError(COMMAND, 'missing subcommand');
  if (sub !== 'verify') throw new UsageError(COMMAND, `unknown subcommand '${sub}'`);

  const command = `${COMMAND} verify`;
  const { values } = parseFlags(command, rest, {
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    ctx.out(HELP);
    return EXIT_OK;
  }

  const config = ctx.config();
  const database = openDatabase(config.database);
  try {
    await migrateToLatest(database.db as unknown as Kysely<unknown>, database.dialect);
    const audit = new AuditLog(database.db, Date.now, database.dialect);
    const check = await audit.verify();

    if (values.json) {
      ctx.out(`${JSON.stringify(check)}\n`);
    } else if (check.intact) {
      ctx.out(`${check.count} entries, chain intact (head ${check.head})\n`);
    } else {
      const { id, at, action, reason } = check.broken;
      ctx.out(
        `audit log broken at row ${id} (${new Date(at).toISOString()}, ${action}): ${reason}; ` +
          `the ${check.count} entr${check.count === 1 ? 'y' : 'ies'} before it verified\n`,
      );
    }
    return check.intact ? EXIT_OK : EXIT_FAILURE;
  } finally {
    await database.close();
  }
}
