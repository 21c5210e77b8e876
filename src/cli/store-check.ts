/**
 * @module cli/store-check
 * A command run without the servers' `REDIS_URL` reads sessions from the database, where a
 * Redis deployment keeps none: `create-superuser` reset a password and said "ended 0
 * sessions" while the old ones stayed valid. The history tells: the newest sign-in's session
 * is neither stored here nor ended in the history, so it lives in a store this command does
 * not see.
 */
import type { Runtime } from '../runtime.js';

/** A warning for stderr when sessions seem to live in a store this command does not read. */
export async function sessionsElsewhere(runtime: Runtime): Promise<string | null> {
  if (runtime.redis !== undefined) return null;
  const db = runtime.database.db;
  const newest = await db
    .selectFrom('session_events')
    .select('session_id')
    .where('kind', '=', 'signed_in')
    .orderBy('at', 'desc')
    .limit(1)
    .executeTakeFirst();
  if (!newest) return null;
  const stored = await db
    .selectFrom('sessions')
    .select('id')
    .where('id', '=', newest.session_id)
    .executeTakeFirst();
  if (stored) return null;
  const ended = await db
    .selectFrom('session_events')
    .select('id')
    .where('session_id', '=', newest.session_id)
    .where('kind', '!=', 'signed_in')
    .limit(1)
    .executeTakeFirst();
  if (ended) return null;
  return (
    'warning: the newest sign-in in the history has no session in this database and no end: ' +
    "if Warden's servers keep sessions in Redis, run this command with their REDIS_URL (and " +
    'REDIS_PREFIX), or it sees none of those sessions\n'
  );
}
