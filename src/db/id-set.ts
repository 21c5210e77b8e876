/**
 * @module db/id-set
 * Many ids as one bound parameter, for `in (…)`: a JSON array on SQLite, an array on
 * PostgreSQL. Their number meets no limit on parameters, and the statement's text stays the
 * same whatever the count, so neither database parses a new one for each list.
 */
import { sql } from 'kysely';
import type { Dialect } from './database.js';

export function idSet(dialect: Dialect, ids: readonly number[]) {
  return dialect === 'postgres'
    ? sql<number>`(select unnest(${[...ids]}::integer[]))`
    : sql<number>`(select value from json_each(${JSON.stringify(ids)}))`;
}
