/**
 * @module db/capped-count
 * How many rows a query matches: all of them, or at most `upTo` (a LIMIT inside the count, so
 * its cost stops there too), saying when more match. The sessions list and the Ended tab count
 * this way, so a page costs what it shows rather than what the whole table holds.
 */
import { type Kysely, type SelectQueryBuilder, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: any tables; the count selects nothing of them
type Matches = SelectQueryBuilder<any, any, object>;

export async function countMatches(
  // biome-ignore lint/suspicious/noExplicitAny: the database `base` was built on
  db: Kysely<any>,
  base: Matches,
  upTo: number | undefined,
): Promise<{ total: number; totalCapped?: true }> {
  if (upTo === undefined) {
    const row = await base
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    return { total: Number(row.n) };
  }
  const cap = Math.max(0, Math.floor(upTo));
  const row = await db
    .selectFrom(
      base
        .select(sql<number>`1`.as('one'))
        .limit(cap + 1)
        .as('m'),
    )
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  const n = Number(row.n);
  return n > cap ? { total: cap, totalCapped: true } : { total: n };
}
