/**
 * @module db/settings
 * Instance-wide values kept in the database so that every instance agrees on them.
 */
import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { DB } from './schema.js';

/**
 * A random secret created once and shared by every instance (cookie signing, CSRF).
 * Two instances starting together may both try to insert; the loser reads the winner's.
 */
export async function sharedSecret(db: Kysely<DB>, key: string): Promise<string> {
  const existing = await db
    .selectFrom('settings')
    .select('value')
    .where('key', '=', key)
    .executeTakeFirst();
  if (existing) return existing.value;

  await db
    .insertInto('settings')
    .values({ key, value: randomBytes(32).toString('base64url') })
    .onConflict((oc) => oc.column('key').doNothing())
    .execute();
  const row = await db
    .selectFrom('settings')
    .select('value')
    .where('key', '=', key)
    .executeTakeFirstOrThrow();
  return row.value;
}
