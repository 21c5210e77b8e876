/**
 * @module cli/migrate
 * `warden migrate`: brings the schema up to date and says what it applied. Every other
 * command migrates on start as well; this one is for deploy scripts that migrate first.
 */
import type { Kysely } from 'kysely';
import type { Database as DatabaseConfig } from '../config.js';
import { openDatabase } from '../db/database.js';
import { migrateToLatest } from '../db/migrations.js';
import { type CliContext, EXIT_OK, parseFlags } from './command.js';

const COMMAND = 'warden migrate';

export const HELP = `Usage: ${COMMAND}

Applies the migrations the database (DATABASE_URL) has not had yet, then lists them.
Running it again is safe: an up-to-date database is left as it is.
`;

/** Runs `warden migrate`. */
export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const { values } = parseFlags(COMMAND, argv, { help: { type: 'boolean', short: 'h' } });
  if (values.help) {
    ctx.out(HELP);
    return EXIT_OK;
  }

  const config = ctx.config();
  const database = openDatabase(config.database);
  try {
    const result = await migrateToLatest(
      database.db as unknown as Kysely<unknown>,
      database.dialect,
    );
    const applied = (result.results ?? []).filter((r) => r.status === 'Success');
    const where = describeDatabase(config.database);
    if (applied.length === 0) ctx.out(`${where} is up to date\n`);
    for (const r of applied) ctx.out(`${where}: applied ${r.migrationName}\n`);
  } finally {
    await database.close();
  }

  return EXIT_OK;
}

/** Names the database without its password. */
export function describeDatabase(config: DatabaseConfig): string {
  if (config.kind === 'sqlite') return `sqlite:${config.file}`;
  const url = new URL(config.url);
  if (url.password) url.password = '***';
  return url.toString();
}
