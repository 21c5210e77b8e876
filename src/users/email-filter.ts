/**
 * @module users/email-filter
 * The console's email filter as a condition on the users table, one definition for the users
 * page, the user ids the Redis store asks for and the SQL store's sessions page: a substring
 * test of the normalized address (`%` and `_` typed in the filter are plain characters), served
 * by an index of the addresses' trigrams where the database has one.
 */
import { type Expression, type Kysely, type SqlBool, sql } from 'kysely';
import type { Dialect } from '../db/database.js';
import type { DB } from '../db/schema.js';

// Users the filter may name through SQLite's trigram index (migration 0010) before a plain test
// of every address is the cheaper way: reading 10% of 100,000 users through that index costs
// about twice the plain test of all. Well under SQLite's 32,766 parameters.
const SQLITE_CANDIDATES = 2_000;

/** `needle` is already normalized (users/email.ts). */
export async function emailCondition(
  db: Kysely<DB>,
  dialect: Dialect,
  needle: string,
): Promise<Expression<SqlBool>> {
  return (await emailMatch(db, dialect, needle)).condition;
}

/**
 * The condition, and how many users it is already known to match at least: on SQLite, more
 * than SQLITE_CANDIDATES when the trigram index named more (it matches exactly when the needle
 * holds no LIKE wildcard); otherwise 0, nothing known.
 */
export async function emailMatch(
  db: Kysely<DB>,
  dialect: Dialect,
  needle: string,
): Promise<{ condition: Expression<SqlBool>; atLeast: number }> {
  const known = (condition: Expression<SqlBool>, atLeast = 0) => ({ condition, atLeast });
  const address = sql.ref<string>('users.email_normalized');
  // A whole address shares its domain's trigrams with every user of that domain (often all of
  // them): both trigram indexes are asked for the part before the @ when it is long enough.
  const local = needle.slice(0, Math.max(needle.indexOf('@'), 0));
  if (dialect === 'postgres') {
    // LIKE with every wildcard escaped is still a plain substring test, and unlike strpos it
    // can use the trigram index of migration 0005 (needles of 3 characters or more).
    const like = (part: string) =>
      sql<SqlBool>`like ${`%${part.replace(/[\\%_]/g, (c) => `\\${c}`)}%`} escape '\\'`;
    if (local.length < 3) return known(sql<SqlBool>`${address} ${like(needle)}`);
    // The whole needle is tested with strpos, which no index serves, on the users it names.
    return known(sql<SqlBool>`${sql.ref('users.id')} in (select u.id from users u
      where u.email_normalized ${like(local)}) and strpos(${address}, ${needle}) > 0`);
  }
  const contains = sql<SqlBool>`instr(${address}, ${needle}) > 0`;
  if ([...needle].length < 3) return known(contains);
  // 0.35 ms for the part before the @, against 1.1 ms for a whole address at 100,000 users.
  const asked = [...local].length >= 3 ? local : needle;
  // The trigram index's LIKE may take a % or _ of the needle as a wildcard: more candidates,
  // never fewer, and instr keeps only the real matches.
  const { rows } = await sql<{ id: number }>`select rowid as id from users_email_search
    where email_normalized like ${`%${asked}%`} limit ${SQLITE_CANDIDATES + 1}`.execute(db);
  if (rows.length > SQLITE_CANDIDATES) {
    return known(contains, asked !== needle || /[%_]/.test(needle) ? 0 : rows.length);
  }
  if (rows.length === 0) return known(sql<SqlBool>`0`);
  const ids = sql.join(rows.map((r) => r.id));
  return known(sql<SqlBool>`${sql.ref('users.id')} in (${ids}) and ${contains}`);
}
